packer {
  required_version = ">= 1.7.0"
  required_plugins {
    qemu = {
      version = ">= 1.0.0"
      source  = "github.com/hashicorp/qemu"
    }
    vagrant = {
      version = ">= 1.0.0"
      source  = "github.com/hashicorp/vagrant"
    }
  }
}

source "qemu" "tiny" {
  vm_name          = "tiny.qcow2"
  output_directory = local.output_dir
  iso_url          = var.iso_url
  iso_checksum     = var.iso_checksum
  accelerator      = var.accelerator
  memory           = var.memory
  disk_size        = "1G"
  format           = "qcow2"
  headless         = true
  http_content = {
    "/install.cfg" = local.install_cfg
  }
  boot_wait = "5s"
  boot_command = [
    "install url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.cfg<enter>",
  ]
  ssh_username     = "root"
  ssh_password     = var.password
  ssh_timeout      = "5m"
  shutdown_command = "poweroff"
}
