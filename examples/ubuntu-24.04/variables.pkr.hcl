# Ubuntu 24.04 LTS installed from the live-server ISO by autoinstall, in
# Chef Bento's layout: variables, sources and the build in separate files,
# values in ubuntu.pkrvars.hcl. The answer file is http/ubuntu-24.04/user-data
# at the top of the repository. From this directory:
#   kiln build -var-file=ubuntu.pkrvars.hcl .

variable "ubuntu_release" {
  type        = string
  description = "The release directory on the mirror (24.04)"
}

variable "ubuntu_version" {
  type        = string
  description = "The point release whose ISO is installed (24.04.3)"
}

variable "iso_mirror" {
  type    = string
  default = "https://releases.ubuntu.com"
}

variable "ssh_username" {
  type    = string
  default = "vagrant"
}

# The plain password: user-data holds only its SHA-512 crypt hash.
variable "ssh_password" {
  type      = string
  sensitive = true
}

variable "memory" {
  type    = number
  default = 3072
}

variable "cpus" {
  type    = number
  default = 2
}

variable "disk_size" {
  type    = string
  default = "16G"
}

locals {
  iso_dir = "${var.iso_mirror}/${var.ubuntu_release}"
  vm_name = "ubuntu-${var.ubuntu_version}"
}
