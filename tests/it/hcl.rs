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
