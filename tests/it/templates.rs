//! Every case in tests/fixtures/templates: a `.args` file holds one kiln
//! command line (run in that directory); its transcript is the snapshot.

use crate::support::{fixtures, run_in, transcript};

#[test]
fn template_fixtures() {
    let dir = fixtures().join("templates");
    insta::glob!("../fixtures/templates", "*.args", |path| {
        let text = std::fs::read_to_string(path).expect("args file");
        let args: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let output = run_in(&dir, &args);
        // Never a panic, whatever the input.
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "exit status {:?}",
            output.status
        );
        insta::with_settings!({filters => vec![
            (r"(?m)^\d{10},", "[TIMESTAMP],"),
            (r"\b\d{10}\b", "[UNIX-TIME]"),
            (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[UUID]"),
            // How long a (failed) run took depends on the machine's load.
            (r"build\(s\) succeeded in [0-9.]+m?s", "build(s) succeeded in [DURATION]"),
        ]}, {
            insta::assert_snapshot!(transcript(&output, &dir));
        });
    });
}

/// Content over 1.44 MB is refused at validation, with its size and its
/// place; files are found beside the template when not in the working
/// directory (the fixtures cannot hold such a file).
#[test]
fn a_floppy_that_does_not_fit_is_refused_at_validation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let beside = dir.path().join("template");
    std::fs::create_dir(&beside).expect("dir");
    std::fs::write(beside.join("big.bin"), vec![7u8; 1_000_000]).expect("big");
    std::fs::write(beside.join("more.bin"), vec![9u8; 500_000]).expect("more");
    let template = r#"{
  "builders": [{"type": "qemu", "iso_url": "a.iso", "iso_checksum": "none", "communicator": "none",
    "floppy_files": ["big.bin", "more.bin"]}]
}"#;
    std::fs::write(beside.join("t.json"), template).expect("template");
    let output = run_in(dir.path(), &["validate", "template/t.json"]);
    let text = transcript(&output, dir.path());
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("floppy: the files take 1500672 bytes but a 1.44 MB floppy holds 1457664")
            && text.contains("template/t.json:3:21"),
        "{text}"
    );
    // One file fits.
    std::fs::write(
        beside.join("t.json"),
        template.replace(r#", "more.bin""#, ""),
    )
    .expect("template");
    let output = run_in(dir.path(), &["validate", "template/t.json"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        transcript(&output, dir.path())
    );
}
