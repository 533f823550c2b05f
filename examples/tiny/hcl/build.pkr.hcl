build {
  description = "kiln's smallest real build, as HCL2: the tiny installer installs a system, which is provisioned over SSH and shut down"
  sources     = ["source.qemu.tiny"]

  provisioner "shell" {
    inline = [
      "echo provisioned by kiln > /root/kiln-marker",
      "uname -sr",
    ]
  }

  provisioner "file" {
    source      = "files/motd"
    destination = "/etc/motd"
  }

  provisioner "shell" {
    script           = "scripts/greet.sh"
    environment_vars = ["GREETING=hello from ${source.type}"]
  }

  post-processors {
    post-processor "vagrant" {
      output              = "${local.output_dir}/tiny-{{.Provider}}.box"
      keep_input_artifact = true
    }
    post-processor "checksum" {
      checksum_types = ["sha256"]
      output         = "${local.output_dir}/tiny-${source.type}.{{.ChecksumType}}"
    }
  }

  post-processor "manifest" {
    output = "${local.output_dir}/manifest.json"
  }
}
