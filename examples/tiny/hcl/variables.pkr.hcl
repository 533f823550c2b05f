# The tiny example as an HCL2 directory, in Chef Bento's layout: variables,
# sources and the build in separate files, values in a *.pkrvars.hcl.
# Run it from examples/tiny (the file paths are relative to it, as in
# tiny.json):
#   kiln build -var-file=hcl/tiny.pkrvars.hcl -var iso_url=… -var iso_checksum=… hcl

variable "iso_url" {
  type        = string
  description = "The tiny installer ISO (scripts/build-tiny-installer prints its path)"
}

variable "iso_checksum" {
  type = string
  validation {
    condition     = can(regex("^(sha256|file):", var.iso_checksum))
    error_message = "The checksum is sha256:HEX or file:PATH."
  }
}

variable "password" {
  type      = string
  default   = "kiln-tiny"
  sensitive = true
}

variable "accelerator" {
  type    = string
  default = "auto"
}

variable "memory" {
  type    = number
  default = 256
}

locals {
  output_dir = "output-tiny"
  install_cfg = join("\n", [
    "disk=auto",
    "hostname=tiny",
    "username=root",
    "password=${var.password}",
    "finish=reboot",
    "",
  ])
}
