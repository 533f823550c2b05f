//! Hostile or unusual input files: a minified template with thousands of
//! errors, huge keys, endless or writerless files. Each must give a bounded,
//! clear answer.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::run_in;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// One line, `n` unknown keys: every error points into the same long line.
fn minified_with_unknown_keys(dir: &Path, n: usize) {
    let keys: Vec<String> = (0..n)
        .map(|i| format!(r#""unknown_key_{i:05}":1"#))
        .collect();
    let text = format!(
        r#"{{"builders":[{{"type":"qemu","iso_url":"x.iso","iso_checksum":"none","ssh_username":"root",{}}}]}}"#,
        keys.join(",")
    );
    std::fs::write(dir.join("t.json"), text).expect("write");
}

#[test]
fn a_minified_template_with_many_errors_gives_a_bounded_report() {
    let work = tempfile::tempdir().expect("tempdir");
    // 2,000 errors in a 44 KB line: reprinting the line for each was 260 MB.
    minified_with_unknown_keys(work.path(), 2000);
    let out = run_in(work.path(), &["validate", "t.json"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(text.len() < 64 * 1024, "{} bytes of stderr", text.len());
    assert!(
        text.contains("... and 1950 more errors not shown"),
        "says how many more: {}",
        &text[text.len().saturating_sub(500)..]
    );
    assert!(text.contains("2000 errors in t.json"), "the total");
    // Each quoted line is a window around its column, not the whole line.
    let longest = text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(longest < 300, "a {longest}-character line");
    // The window still shows the key the caret points at.
    assert!(
        text.contains(r#""unknown_key_00007":1"#),
        "{}",
        &text[..2000]
    );
}

#[test]
fn a_megabyte_key_is_quoted_short_and_suggested_quickly() {
    let work = tempfile::tempdir().expect("tempdir");
    let key = "memroy".repeat(180_000);
    let text = format!(
        r#"{{"builders":[{{"type":"qemu","iso_url":"x.iso","iso_checksum":"none","ssh_username":"root","{key}":1}}]}}"#
    );
    std::fs::write(work.path().join("t.json"), text).expect("write");
    // The same megabyte as a value of a known key: reading and reporting
    // it is the baseline the did-you-mean must stay near, on any load.
    let value = "memroy".repeat(180_000);
    std::fs::write(
        work.path().join("baseline.json"),
        format!(
            r#"{{"builders":[{{"type":"qemu","iso_url":"x.iso","iso_checksum":"none","ssh_username":"root","vm_name":"{value}","memory":"x"}}]}}"#
        ),
    )
    .expect("write");
    let started = Instant::now();
    let baseline = run_in(work.path(), &["validate", "baseline.json"]);
    let baseline_took = started.elapsed();
    assert_eq!(baseline.status.code(), Some(1), "{}", stderr(&baseline));
    let started = Instant::now();
    let out = run_in(work.path(), &["validate", "t.json"]);
    let took = started.elapsed();
    let text = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        &text[..text.len().min(2000)]
    );
    assert!(text.len() < 8 * 1024, "{} bytes of stderr", text.len());
    assert!(text.contains("(1080000 bytes)"), "{text}");
    // Unbounded, the suggestion cost seconds over a ~0.1 s baseline.
    assert!(
        took < baseline_took * 4 + Duration::from_secs(1),
        "took {took:?}, the baseline {baseline_took:?}"
    );
}

const TEMPLATE: &str = r#"{"variables": {"v": "x"}, "builders": [{"type": "qemu", "iso_url": "x.iso", "iso_checksum": "none", "ssh_username": "root"}]}"#;

/// Runs `kiln validate` on an endless device and checks it stops with the limit.
fn assert_refused_endless(args: &[&str]) {
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::write(work.path().join("t.json"), TEMPLATE).expect("write");
    let started = Instant::now();
    let out = run_in(work.path(), args);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("/dev/zero") && text.contains("larger than 64 MiB"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn an_endless_template_is_refused_at_the_size_limit() {
    assert_refused_endless(&["validate", "/dev/zero"]);
}

#[test]
fn an_endless_var_file_is_refused_at_the_size_limit() {
    assert_refused_endless(&["validate", "-var-file=/dev/zero", "t.json"]);
}

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs")
        .success();
    assert!(ok);
}

/// A FIFO nobody writes to: kiln waits its bound (10 s), then says so.
fn assert_writerless_fifo_refused(args: &[&str]) {
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::write(work.path().join("t.json"), TEMPLATE).expect("write");
    mkfifo(&work.path().join("pipe"));
    let out = run_in(work.path(), args);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("pipe") && text.contains("nothing opened it for writing within 10 s"),
        "{text}"
    );
}

#[test]
fn a_template_fifo_without_a_writer_is_an_error() {
    assert_writerless_fifo_refused(&["validate", "pipe"]);
}

#[test]
fn a_var_file_fifo_without_a_writer_is_an_error() {
    assert_writerless_fifo_refused(&["validate", "-var-file=pipe", "t.json"]);
}

#[test]
fn process_substitution_still_works() {
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::write(work.path().join("t.json"), TEMPLATE).expect("write");
    let script = format!(
        r#"{} validate -var-file=<(echo '{{"v": "y"}}') <(cat t.json)"#,
        crate::support::kiln_bin().display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .current_dir(work.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("bash runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Template validated successfully"), "{text}");
}
