# django.json as an HCL2 template (Packer >= 1.7): the same bake on the
# Debian base image, with the same files and scripts. Run it from
# examples/django:
#   kiln build -var base_image=… -var django_admin_password=… django.pkr.hcl

packer {
  required_plugins {
    qemu = {
      version = ">= 1.0.0"
      source  = "github.com/hashicorp/qemu"
    }
  }
}

variable "base_image" {
  type        = string
  description = "The Debian base qcow2 printed by scripts/build-debian-base"
}

variable "ssh_password" {
  type      = string
  default   = "kiln"
  sensitive = true
}

variable "django_admin_password" {
  type      = string
  sensitive = true
}

source "qemu" "django" {
  vm_name          = "django.qcow2"
  output_directory = "output-django"
  disk_image       = true
  iso_url          = var.base_image
  iso_checksum     = "file:${var.base_image}.sha256"
  skip_resize_disk = true
  format           = "qcow2"
  memory           = 512
  cpus             = 1
  headless         = true
  ssh_username     = "kiln"
  ssh_password     = var.ssh_password
  ssh_timeout      = "10m"
  shutdown_command = "echo '${var.ssh_password}' | sudo -S systemctl poweroff"
}

build {
  description = "Debian 12 that serves a Django site on port 7777 when it boots"
  sources     = ["source.qemu.django"]

  provisioner "file" {
    source      = "files/django-site.service"
    destination = "/tmp/django-site.service"
  }

  provisioner "file" {
    source      = "files/kiln-django.nft"
    destination = "/tmp/kiln-django.nft"
  }

  provisioner "shell" {
    execute_command  = "echo '${var.ssh_password}' | {{.Vars}} sudo -S -E sh -eu '{{.Path}}'"
    environment_vars = ["DJANGO_SUPERUSER_PASSWORD=${var.django_admin_password}", "DJANGO_PORT=7777"]
    scripts          = ["scripts/install-django.sh", "scripts/firewall.sh"]
  }

  provisioner "shell" {
    execute_command = "echo '${var.ssh_password}' | {{.Vars}} sudo -S -E sh -eu '{{.Path}}'"
    inline = [
      "systemctl is-enabled django-site",
      "cd /srv/site && python3 manage.py shell -c \"from django.contrib.auth.models import User; print('superuser:', User.objects.get(username='django', is_superuser=True).email)\"",
      "curl -fsS --retry 60 --retry-connrefused --retry-delay 1 -o /dev/null -w 'site answers: HTTP %%{http_code}\\n' http://127.0.0.1:7777/admin/login/",
    ]
  }
}
