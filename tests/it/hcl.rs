//! HCL2 templates through the kiln binary: where variable values come
//! from and in which order, and sensitive values kept out of the output.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::kiln_bin;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
}

fn validate(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out: Output = Command::new(kiln_bin())
        .arg("validate")
        .args(args)
        .arg(".")
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .expect("kiln runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    text
}

/// A validation rule that always fails and says the value, so each run
/// shows which value won.
const TEMPLATE: &str = r#"
variable "x" {
  type    = string
  default = "from-default"
  validation {
    condition     = var.x == "never"
    error_message = "x is ${var.x}."
  }
}

variable "disks" {
  type    = list(string)
  default = []
  validation {
    condition     = length(var.disks) != 2
    error_message = "two disks: ${join(" and ", var.disks)}."
  }
}

source "qemu" "a" {}

build {
  sources = ["source.qemu.a"]
}
"#;

#[test]
fn variable_values_follow_packers_precedence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(d, "t.pkr.hcl", TEMPLATE);
    assert!(validate(d, &[], &[]).contains("x is from-default."));

    let env = [("PKR_VAR_x", "from-env")];
    assert!(validate(d, &[], &env).contains("x is from-env."));

    write(d, "b.auto.pkrvars.hcl", "x = \"from-auto-b\"\n");
    write(d, "a.auto.pkrvars.hcl", "x = \"from-auto-a\"\n");
    // Auto files in name order: b wins over a, and both over the environment.
    assert!(validate(d, &[], &env).contains("x is from-auto-b."));

    write(d, "given.pkrvars.json", r#"{"x": "from-var-file"}"#);
    let text = validate(d, &["-var-file=given.pkrvars.json"], &env);
    assert!(text.contains("x is from-var-file."), "{text}");

    let text = validate(
        d,
        &["-var-file=given.pkrvars.json", "-var", "x=from-cli"],
        &env,
    );
    assert!(text.contains("x is from-cli."), "{text}");
}

#[test]
fn collection_values_on_the_command_line_are_hcl_expressions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(d, "t.pkr.hcl", TEMPLATE);
    let text = validate(d, &["-var", r#"disks=["1G", "2G"]"#], &[]);
    assert!(text.contains("two disks: 1G and 2G."), "{text}");
    let text = validate(d, &["-var", "disks=[1G"], &[]);
    assert!(text.contains("is not a valid list(string) value"), "{text}");
    let env = [("PKR_VAR_disks", r#"["3G","4G"]"#)];
    assert!(validate(d, &[], &env).contains("two disks: 3G and 4G."));
}

#[test]
fn undeclared_variables_on_the_command_line_are_errors_and_in_files_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(d, "t.pkr.hcl", TEMPLATE);
    let text = validate(d, &["-var", "y=1"], &[]);
    assert!(text.contains("error: -var: `y` is not declared"), "{text}");
    write(d, "extra.pkrvars.hcl", "xx = 1\n");
    let text = validate(d, &["-var-file=extra.pkrvars.hcl"], &[]);
    assert!(
        text.contains(
            "warning: var-file extra.pkrvars.hcl: `xx` is set but no variable block declares it"
        ),
        "{text}"
    );
    assert!(text.contains("did you mean `x`?"), "{text}");
}

#[test]
fn sensitive_values_are_masked_in_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(
        d,
        "t.pkr.hcl",
        r#"
variable "secret" {
  type      = string
  default   = "s3cret-value"
  sensitive = true
}

source "qemu" "a" {
  iso_url      = "http://127.0.0.1/x.iso"
  iso_checksum = "sha256:${var.secret}"
}

build {
  sources = ["source.qemu.a"]
}
"#,
    );
    let text = validate(d, &[], &[]);
    assert!(text.contains("iso_checksum"), "{text}");
    assert!(!text.contains("s3cret-value"), "{text}");
    assert!(text.contains("<sensitive>"), "{text}");
}

/// `PACKER_BUILD_NAME`, `{{build_name}}` and `{{.BuildName}}` at run time
/// are the source's own name (Packer's `packer_build_name`: in HCL2 the
/// source block's label, not the build's `name` nor the `name` given where
/// the build uses it; in JSON the builder's name), while the output lines
/// carry the full build name. Both front ends, each a one-sector guest
/// that powers off at once (communicator none: only host-side steps).
#[test]
fn vm_packer_build_name_at_run_time_is_the_sources_own_name() {
    let _vm = crate::vm::vm_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    crate::amazon_import::power_button_boot_disk(&dir.path().join("boot.raw"));
    let source = r#"
  vm_name          = "boot"
  disk_image       = true
  iso_url          = "boot.raw"
  iso_checksum     = "none"
  disk_size        = "8M"
  accelerator      = "tcg"
  memory           = 64
  headless         = true
  communicator     = "none"
  shutdown_timeout = "2m"
"#;
    let echo = "env=$PACKER_BUILD_NAME tmpl={{build_name}} type=$PACKER_BUILDER_TYPE";
    write(
        dir.path(),
        "t.pkr.hcl",
        &format!(
            r#"source "qemu" "x" {{{source}}}
build {{
  name = "b"
  source "source.qemu.x" {{
    name = "y"
  }}
  provisioner "shell-local" {{
    inline = ["echo provisioner: {echo}"]
  }}
  post-processor "shell-local" {{
    inline = ["echo post-processor: {echo}"]
  }}
  post-processor "checksum" {{}}
}}
"#
        ),
    );
    let out = crate::vm::build_in(dir.path(), &[], Path::new("t.pkr.hcl"))
        .env("NO_COLOR", "1")
        .output()
        .expect("kiln runs");
    let t = crate::vm::text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    for line in [
        "b.qemu.y: provisioner: env=x tmpl=x type=qemu",
        "b.qemu.y: post-processor: env=x tmpl=x type=qemu",
    ] {
        assert!(t.contains(line), "no `{line}` in:\n{t}");
    }
    // The checksum's default output, `packer_{{.BuildName}}_{{.BuilderType}}_…`.
    assert!(
        dir.path().join("packer_x_qemu_md5.checksum").is_file(),
        "{t}"
    );
    assert!(dir.path().join("output-x/boot").is_file(), "{t}");

    // JSON: the builder's (rendered) name is both the full name and
    // packer_build_name, as in Packer 1.6.6's core.
    let dir = tempfile::tempdir().expect("tempdir");
    crate::amazon_import::power_button_boot_disk(&dir.path().join("boot.raw"));
    let template = serde_json::json!({
        "variables": {"os": "tiny"},
        "builders": [{
            "type": "qemu", "name": "{{user `os`}}-vm", "vm_name": "boot", "disk_image": true,
            "iso_url": "boot.raw", "iso_checksum": "none", "disk_size": "8M",
            "accelerator": "tcg", "memory": 64, "headless": true,
            "communicator": "none", "shutdown_timeout": "2m"
        }],
        "provisioners": [{"type": "shell-local", "inline": [format!("echo provisioner: {echo}")]}],
        "post-processors": [
            {"type": "shell-local", "inline": [format!("echo post-processor: {echo}")]},
            {"type": "checksum"}
        ]
    });
    write(dir.path(), "t.json", &template.to_string());
    let out = crate::vm::build_in(dir.path(), &[], Path::new("t.json"))
        .env("NO_COLOR", "1")
        .output()
        .expect("kiln runs");
    let t = crate::vm::text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    for line in [
        "tiny-vm: provisioner: env=tiny-vm tmpl=tiny-vm type=qemu",
        "tiny-vm: post-processor: env=tiny-vm tmpl=tiny-vm type=qemu",
    ] {
        assert!(t.contains(line), "no `{line}` in:\n{t}");
    }
    assert!(
        dir.path()
            .join("packer_tiny-vm_qemu_md5.checksum")
            .is_file(),
        "{t}"
    );
}
