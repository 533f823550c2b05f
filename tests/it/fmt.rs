//! `kiln fmt` through the binary: messy HCL2 files in tests/fixtures/fmt/in
//! come out as tests/fixtures/fmt/out (hclwrite's layout), and the flags
//! and exit statuses are Packer's.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::support::{fixtures, run_in};

fn copy_inputs(to: &Path) {
    for entry in std::fs::read_dir(fixtures().join("fmt/in")).expect("fixtures") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn sorted_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_directory_is_formatted_as_packer_fmt_writes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_inputs(dir.path());
    let out = run_in(dir.path(), &["fmt", "."]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let names = sorted_names(&fixtures().join("fmt/out"));
    // Every file is listed, as Packer lists what it changed.
    let listed: Vec<String> = stdout(&out)
        .lines()
        .map(|l| l.trim_start_matches("./").to_owned())
        .collect();
    assert_eq!(listed, names);
    for name in &names {
        let got = std::fs::read_to_string(dir.path().join(name)).expect("formatted");
        let want = std::fs::read_to_string(fixtures().join("fmt/out").join(name)).expect("golden");
        assert_eq!(got, want, "{name} differs from its golden output");
    }
    // Formatting twice is formatting once.
    let again = run_in(dir.path(), &["fmt", "-check", "."]);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
    assert_eq!(stdout(&again), "");
}

#[test]
fn check_lists_what_is_not_formatted_exits_3_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_inputs(dir.path());
    let before = std::fs::read_to_string(dir.path().join("nested.pkr.hcl")).expect("read");
    let out = run_in(dir.path(), &["fmt", "-check", "nested.pkr.hcl"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "nested.pkr.hcl\n");
    let after = std::fs::read_to_string(dir.path().join("nested.pkr.hcl")).expect("read");
    assert_eq!(before, after);
    // A formatted file passes the check.
    let golden = fixtures().join("fmt/out/nested.pkr.hcl");
    let ok = run_in(
        dir.path(),
        &["fmt", "-check", golden.to_str().expect("utf-8")],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
}

#[test]
fn diff_prints_a_unified_diff_and_write_false_keeps_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.pkr.hcl"), "a=1\nlonger = 2\n").expect("write");
    let out = run_in(dir.path(), &["fmt", "-diff", "-write=false", "a.pkr.hcl"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "a.pkr.hcl\n--- old/a.pkr.hcl\n+++ new/a.pkr.hcl\n@@ -1,2 +1,2 @@\n-a=1\n+a      = 1\n longer = 2\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.pkr.hcl")).expect("read"),
        "a=1\nlonger = 2\n"
    );
}

#[test]
fn recursive_reaches_subdirectories_and_only_hcl2_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("os/debian");
    std::fs::create_dir_all(&sub).expect("mkdir");
    std::fs::write(dir.path().join("top.pkr.hcl"), "a  = 1\n").expect("write");
    std::fs::write(sub.join("deep.pkrvars.hcl"), "b  = 2\n").expect("write");
    std::fs::write(sub.join("other.hcl"), "c  = 3\n").expect("write");
    std::fs::write(sub.join("t.json"), "{ }").expect("write");

    let flat = run_in(dir.path(), &["fmt", "."]);
    assert_eq!(stdout(&flat), "./top.pkr.hcl\n");
    assert_eq!(
        std::fs::read_to_string(sub.join("deep.pkrvars.hcl")).expect("read"),
        "b  = 2\n"
    );

    let deep = run_in(dir.path(), &["fmt", "-recursive", "."]);
    assert_eq!(deep.status.code(), Some(0), "{}", stderr(&deep));
    assert_eq!(stdout(&deep), "./os/debian/deep.pkrvars.hcl\n");
    assert_eq!(
        std::fs::read_to_string(sub.join("deep.pkrvars.hcl")).expect("read"),
        "b = 2\n"
    );
    assert_eq!(
        std::fs::read_to_string(sub.join("other.hcl")).expect("read"),
        "c  = 3\n"
    );
}

#[test]
fn a_syntax_error_is_reported_at_its_place_and_the_file_is_not_rewritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = "source \"qemu\" \"a\" {\n  cpus  = 2\n  memory = \n}\n";
    std::fs::write(dir.path().join("broken.pkr.hcl"), broken).expect("write");
    std::fs::write(dir.path().join("fine.pkr.hcl"), "a  = 1\n").expect("write");
    let out = run_in(dir.path(), &["fmt", "."]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("invalid HCL"), "{err}");
    assert!(err.contains("broken.pkr.hcl:3:"), "{err}");
    assert!(err.contains("kiln fmt leaves the file as it is"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("broken.pkr.hcl")).expect("read"),
        broken
    );
    // The other files are still formatted.
    assert_eq!(stdout(&out), "./fine.pkr.hcl\n");
}

#[test]
fn a_json_template_is_refused_with_what_fmt_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("t.json"), "{}").expect("write");
    let out = run_in(dir.path(), &["fmt", "t.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("t.json is a JSON template"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_in(dir.path(), &["fmt", "nope.pkr.hcl"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read nope.pkr.hcl"),
        "{}",
        stderr(&out)
    );
}

fn fmt_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(crate::support::kiln_bin())
        .arg("fmt")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kiln runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("kiln ends")
}

#[test]
fn a_dash_formats_stdin_to_stdout() {
    let out = fmt_stdin(&["-"], "a=1\nbb = [ 1 ,2 ]\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "a  = 1\nbb = [1, 2]\n");
    let check = fmt_stdin(&["-check", "-"], "a=1\n");
    assert_eq!(check.status.code(), Some(3));
    let broken = fmt_stdin(&["-"], "a = [\n");
    assert_eq!(broken.status.code(), Some(1));
    assert!(stderr(&broken).contains("<stdin>:"), "{}", stderr(&broken));
}

/// Writing renames a new file over the old one: the mode is kept.
#[test]
fn a_rewritten_file_keeps_its_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.pkr.hcl");
    std::fs::write(&path, "a=1\n").expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let out = run_in(dir.path(), &["fmt", "m.pkr.hcl"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let meta = std::fs::metadata(&path).expect("meta");
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "a = 1\n");
    // No temporary file is left beside it.
    assert_eq!(sorted_names(dir.path()), vec!["m.pkr.hcl".to_owned()]);
}

/// The examples and fixtures kiln ships are formatted.
#[test]
fn the_shipped_hcl2_examples_are_formatted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run_in(root, &["fmt", "-check", "-recursive", "examples"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}
