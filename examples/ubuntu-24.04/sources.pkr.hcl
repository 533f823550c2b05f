source "qemu" "ubuntu" {
  vm_name          = "${local.vm_name}.qcow2"
  output_directory = "output-${local.vm_name}"
  iso_url          = "${local.iso_dir}/ubuntu-${var.ubuntu_version}-live-server-amd64.iso"
  # The mirror's checksum file, fetched and read for the ISO's name.
  iso_checksum = "file:${local.iso_dir}/SHA256SUMS"
  disk_size    = var.disk_size
  format       = "qcow2"
  memory       = var.memory
  cpus         = var.cpus
  headless     = true

  # kiln serves user-data and meta-data; the installer's nocloud data
  # source fetches both from the seed URL given on the kernel command line.
  http_directory = "${path.root}/../../http/ubuntu-24.04"
  boot_wait      = "5s"
  # GRUB's command line: the quotes keep `;` from ending the command.
  boot_command = [
    "c<wait>",
    "linux /casper/vmlinuz --- autoinstall ds='nocloud;s=http://{{ .HTTPIP }}:{{ .HTTPPort }}/'<enter><wait>",
    "initrd /casper/initrd<enter><wait>",
    "boot<enter>",
  ]

  ssh_username     = var.ssh_username
  ssh_password     = var.ssh_password
  ssh_timeout      = "60m"
  shutdown_command = "sudo systemctl poweroff"
}
