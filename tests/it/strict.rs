//! `-strict` and `KILN_STRICT`: the compatibility cases become errors; the
//! README lists every case the code knows.

use std::process::Command;

use crate::support::{fixtures, kiln_bin};

fn validate_with_env(template: &str, strict_env: Option<&str>) -> (Option<i32>, String) {
    let mut cmd = Command::new(kiln_bin());
    cmd.args(["validate", template])
        .current_dir(fixtures().join("templates"))
        .env_remove("KILN_STRICT")
        .env("NO_COLOR", "1");
    if let Some(v) = strict_env {
        cmd.env("KILN_STRICT", v);
    }
    let out = cmd.output().expect("kiln runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn kiln_strict_in_the_environment_turns_compatibility_warnings_into_errors() {
    let template = "compat/push-and-comments.json";
    let (code, text) = validate_with_env(template, None);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("warning[push-ignored]"), "{text}");

    let (code, text) = validate_with_env(template, Some("1"));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("error[push-ignored]"), "{text}");
    assert!(text.contains("error[root-comment-not-string]"), "{text}");
    assert!(text.contains("error[comment-in-section]"), "{text}");

    let (code, text) = validate_with_env(template, Some("0"));
    assert_eq!(code, Some(0), "KILN_STRICT=0 is off: {text}");
}

#[test]
fn the_readme_lists_every_compatibility_case_and_no_other() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let table = readme
        .split_once("| case | what kiln does without `-strict` |")
        .map(|(_, rest)| rest)
        .expect("README has the -strict table");
    let listed: Vec<&str> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |").map(|(id, _)| id))
        .collect();
    let known: Vec<&str> = kiln::template::compat::ALL.iter().map(|c| c.id()).collect();
    for id in &known {
        assert!(listed.contains(id), "README's -strict table lacks `{id}`");
    }
    for id in &listed {
        assert!(
            known.contains(id),
            "README lists `{id}`, which is not a compatibility case in the code"
        );
    }
}
