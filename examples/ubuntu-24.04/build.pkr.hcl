build {
  description = "Ubuntu 24.04 LTS from the live-server ISO, answered by http/ubuntu-24.04/user-data"
  sources     = ["source.qemu.ubuntu"]

  provisioner "shell" {
    execute_command = "sudo -S -E sh -eux '{{ .Path }}'"
    inline = [
      "apt-get update",
      "apt-get -y upgrade",
      "apt-get -y clean",
    ]
  }

  post-processor "manifest" {
    output = "output-${local.vm_name}/manifest.json"
  }
}
