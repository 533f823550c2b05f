# Values for the Ubuntu 24.04 build (Bento keeps one such file per OS).
ubuntu_release = "24.04"
ubuntu_version = "24.04.3"
ssh_password   = "vagrant"
