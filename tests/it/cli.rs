//! The command line itself: help, version, exit statuses, Packer's flags.

use crate::support::{fixtures, run_in};

#[test]
fn help_lists_every_command() {
    let out = run_in(&fixtures(), &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    // Each command has its own line in the "Commands:" list.
    for cmd in [
        "build",
        "validate",
        "inspect",
        "fix",
        "fmt",
        "hcl2_upgrade",
        "init",
        "cache",
        "version",
    ] {
        assert!(
            text.lines().any(|l| l
                .strip_prefix("  ")
                .is_some_and(|l| l.starts_with(&format!("{cmd} ")))),
            "{cmd} missing from help:\n{text}"
        );
    }
}

#[test]
fn version_names_the_packer_release_followed() {
    let out = run_in(&fixtures(), &["version"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("kiln ") && text.contains("1.6.6"),
        "{text}"
    );
    // The commit it was built from (build.rs), when built in a checkout.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let expected = head.unwrap_or_else(|| "unknown".to_owned());
    assert!(text.contains(&format!("(commit {expected};")), "{text}");
}

#[test]
fn build_help_shows_packer_flags() {
    let out = run_in(&fixtures(), &["build", "-help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--var",
        "--var-file",
        "--only",
        "--except",
        "--force",
        "--on-error",
        "--parallel-builds",
        "--debug",
        "--offline",
    ] {
        assert!(text.contains(flag), "{flag} missing:\n{text}");
    }
}

#[test]
fn bad_flag_values_exit_1_without_panicking() {
    for args in [
        &["build", "-on-error=explode", "t.json"][..],
        &["build", "-parallel-builds=many", "t.json"],
        &["validate", "-only=a", "-except=b", "t.json"],
        &["validate", "-color=maybe", "t.json"],
    ] {
        let out = run_in(&fixtures(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}

#[test]
fn every_shipped_example_validates() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).expect("examples/") {
        let dir = entry.expect("entry").path();
        for file in std::fs::read_dir(&dir).expect("example dir") {
            let path = file.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            if !name.ends_with(".json") || name == "variables.json" {
                continue;
            }
            let mut args = vec!["validate".to_owned()];
            if dir.join("variables.json").is_file() {
                args.push("-var-file=variables.json".into());
            }
            if name == "tiny.json" || name == "debian-12-debootstrap.json" {
                // Their ISOs are built by scripts/build-tiny-installer and
                // scripts/build-debootstrap-installer; any path will do here.
                args.extend([
                    "-var=iso_url=tiny.iso".into(),
                    format!("-var=iso_checksum=sha256:{}", "0".repeat(64)),
                ]);
            }
            if dir.ends_with("django") {
                // Its base image is built by scripts/build-debian-base; the
                // admin password has no default (a required variable).
                args.extend([
                    "-var=base_image=debian-base.qcow2".into(),
                    "-var=django_admin_password=validate-only".into(),
                ]);
            }
            args.push(name.clone());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = run_in(&dir, &args);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} examples found");

    // The tiny example as an HCL2 directory, with its var file.
    let tiny = examples.join("tiny");
    let checksum = format!("-var=iso_checksum=sha256:{}", "0".repeat(64));
    let out = run_in(
        &tiny,
        &[
            "validate",
            "-var-file=hcl/tiny.pkrvars.hcl",
            "-var=iso_url=tiny.iso",
            &checksum,
            "hcl",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "examples/tiny/hcl: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The Django bake as an HCL2 file beside its JSON template.
    let out = run_in(
        &examples.join("django"),
        &[
            "validate",
            "-var=base_image=debian-base.qcow2",
            "-var=django_admin_password=validate-only",
            "django.pkr.hcl",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "examples/django/django.pkr.hcl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `fix` had no test of its failure: a template it cannot read or parse
/// exits 1 and says where, and nothing is printed on stdout.
#[test]
fn fix_of_a_broken_or_missing_template_exits_1() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("broken.json"),
        "{\n  \"builders\": [,]\n}\n",
    )
    .expect("write");
    let out = run_in(dir.path(), &["fix", "broken.json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("broken.json:2:"), "{stderr}");
    assert!(out.stdout.is_empty());

    let out = run_in(dir.path(), &["fix", "missing.json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing.json"), "{stderr}");
}
