//! Sensitive variables never reach the terminal: every command's final
//! error goes through the same mask as `kiln build`'s output.

use std::path::Path;
use std::process::Output;

use crate::iso_support::{Mode, TestServer, data};
use crate::support::run_with_env;

const SECRET: &str = "Tr0ub4dor-and-3";

/// A template whose ISO URL carries the sensitive password as userinfo.
fn template(dir: &Path, url: &str, checksum: &str) {
    let text = format!(
        r#"{{
  "variables": {{"password": null}},
  "sensitive-variables": ["password"],
  "builders": [{{"type": "qemu", "iso_url": "{url}", "iso_checksum": "{checksum}",
                 "ssh_username": "root", "ssh_password": "{{{{user `password`}}}}"}}]
}}"#
    );
    std::fs::write(dir.join("t.json"), text).expect("write template");
}

/// `http://root:{{user `password`}}@127.0.0.1:PORT/x.iso`
fn url_with_secret(base: &str) -> String {
    base.replacen("http://", "http://root:{{user `password`}}@", 1)
}

fn run(dir: &Path, cache: &Path, args: &[&str]) -> (Output, String) {
    let var = format!("password={SECRET}");
    let mut argv: Vec<&str> = args.to_vec();
    let template = argv.pop().expect("a template argument");
    argv.extend(["-var", &var, template]);
    let out = run_with_env(dir, &argv, &[("KILN_CACHE_DIR", cache)]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// Runs `args` and checks it failed, said `expected`, and never showed the secret.
fn assert_fails_masked(dir: &Path, args: &[&str], expected: &str) {
    let cache = tempfile::tempdir().expect("tempdir");
    let (out, text) = run(dir, cache.path(), args);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(expected), "expected `{expected}` in:\n{text}");
    assert!(!text.contains(SECRET), "the secret was printed:\n{text}");
    let last = text
        .lines()
        .rfind(|l| l.starts_with("error:") || l.starts_with("-->"));
    assert!(last.is_some(), "a final error line:\n{text}");
}

#[test]
fn cache_fetch_masks_an_unreachable_url() {
    let work = tempfile::tempdir().expect("tempdir");
    // Port 9 (discard) is closed on loopback: the connection is refused.
    template(
        work.path(),
        &url_with_secret("http://127.0.0.1:9/x.iso"),
        &format!("sha256:{}", "a".repeat(64)),
    );
    assert_fails_masked(work.path(), &["cache", "fetch", "t.json"], "<sensitive>");
}

#[test]
fn cache_fetch_masks_a_404() {
    let work = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start();
    template(
        work.path(),
        &url_with_secret(&server.url("/missing.iso")),
        &format!("sha256:{}", "a".repeat(64)),
    );
    assert_fails_masked(work.path(), &["cache", "fetch", "t.json"], "404");
}

#[test]
fn cache_fetch_masks_a_checksum_mismatch() {
    let work = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start();
    server.route("/x.iso", data(4096, 1), Mode::Normal);
    template(
        work.path(),
        &url_with_secret(&server.url("/x.iso")),
        &format!("sha256:{}", "a".repeat(64)),
    );
    assert_fails_masked(
        work.path(),
        &["cache", "fetch", "t.json"],
        "checksum mismatch",
    );
}

#[test]
fn cache_fetch_masks_an_offline_miss() {
    let work = tempfile::tempdir().expect("tempdir");
    template(
        work.path(),
        &url_with_secret("http://127.0.0.1:9/x.iso"),
        &format!("sha256:{}", "a".repeat(64)),
    );
    assert_fails_masked(
        work.path(),
        &["cache", "fetch", "-offline", "t.json"],
        "kiln cache add",
    );
}

#[test]
fn build_masks_a_failed_fetch() {
    let work = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start();
    template(
        work.path(),
        &url_with_secret(&server.url("/missing.iso")),
        &format!("sha256:{}", "a".repeat(64)),
    );
    assert_fails_masked(work.path(), &["build", "t.json"], "404");
}

#[test]
fn validate_masks_a_secret_in_an_error() {
    let work = tempfile::tempdir().expect("tempdir");
    // memory is not a number: the error quotes the rendered value.
    let text = r#"{"variables": {"password": null}, "sensitive-variables": ["password"],
"builders": [{"type": "qemu", "iso_url": "x.iso", "iso_checksum": "none", "ssh_username": "root", "memory": "{{user `password`}}"}]}"#;
    std::fs::write(work.path().join("t.json"), text).expect("write");
    assert_fails_masked(work.path(), &["validate", "t.json"], "<sensitive>");
}

/// A secret written in the template itself, on the line an error points
/// into: the caret must sit under the error in the line as printed (masked),
/// or its offset would give the secret's length away.
#[test]
fn the_caret_lines_up_with_the_masked_line() {
    let work = tempfile::tempdir().expect("tempdir");
    let text = r#"{"variables":{"password":"hunter2-is-long"},"sensitive-variables":["password"],"builders":[{"type":"qemu","memroy":1}]}"#;
    std::fs::write(work.path().join("t.json"), text).expect("write");
    let out = run_with_env(work.path(), &["validate", "t.json"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("hunter2-is-long"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let headline = lines
        .iter()
        .position(|l| l.contains("unknown key `memroy`"))
        .unwrap_or_else(|| panic!("the error is reported:\n{stderr}"));
    let shown = headline + 3;
    assert!(
        lines[shown].contains("<sensitive>"),
        "the masked line is quoted:\n{stderr}"
    );
    let caret = lines[shown + 1].find('^').expect("a caret line");
    let key = lines[shown].find(r#""memroy""#).expect("the key");
    assert_eq!(caret, key, "caret under the key:\n{stderr}");
}

/// `inspect` masks a sensitive default quoted in an error (it printed the
/// template's lines unmasked).
#[test]
fn inspect_masks_a_sensitive_default_in_an_error() {
    let work = tempfile::tempdir().expect("tempdir");
    let text = r#"{"variables":{"pw":"hunter2-xyz"},"sensitive-variables":["pw"],"builderz":[]}"#;
    std::fs::write(work.path().join("t.json"), text).expect("write");
    let out = run_with_env(work.path(), &["inspect", "t.json"], &[]);
    let t = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("unknown top-level key `builderz`"), "{t}");
    assert!(
        t.contains("<sensitive>") && !t.contains("hunter2-xyz"),
        "{t}"
    );
}

/// A one-letter password is not masked (it would turn `-except` into
/// `-e<sensitive>cept`); kiln says so instead of garbling its output.
#[test]
fn a_secret_too_short_to_mask_is_left_and_warned_about() {
    let work = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    template(work.path(), "http://127.0.0.1:9/x.iso", "none");
    let out = run_with_env(
        work.path(),
        &["validate", "-var", "password=e", "t.json"],
        &[("KILN_CACHE_DIR", cache.path())],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("1 sensitive value(s) shorter than 4 characters are not masked"),
        "{text}"
    );
    assert!(!text.contains("<sensitive>cept"), "{text}");
    assert!(text.contains("valid"), "{text}");
}
