//! The command line itself: help, version, exit statuses, Packer's flags.

use crate::support::{fixtures, run_in};

#[test]
fn help_lists_every_command() {
    let out = run_in(&fixtures(), &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["build", "validate", "inspect", "fix", "version"] {
        assert!(text.contains(cmd), "{cmd} missing from help:\n{text}");
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
