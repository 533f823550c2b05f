//! `kiln cache …` and the ISO step of `kiln build`, through the binary.

use std::path::Path;

use crate::support::run_with_env;

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn template(dir: &Path, url: &str, checksum: &str) -> std::path::PathBuf {
    let path = dir.join("t.json");
    let text = format!(
        r#"{{"builders": [{{"type": "qemu", "iso_url": "{url}", "iso_checksum": "{checksum}", "ssh_username": "root"}}]}}"#
    );
    std::fs::write(&path, text).expect("write template");
    path
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn offline_fetch_names_the_missing_iso_then_works_once_added() {
    let work = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let iso = b"not really an installer, but bytes all the same".repeat(100);
    let digest = sha256_hex(&iso);
    let usb = work.path().join("usb-stick.iso");
    std::fs::write(&usb, &iso).expect("write iso");
    // A URL that cannot be reached: offline mode must not even try it.
    template(
        work.path(),
        "http://127.0.0.1:9/installer.iso",
        &format!("sha256:{digest}"),
    );
    let env = [("KILN_CACHE_DIR", cache.path())];

    let out = run_with_env(
        work.path(),
        &["cache", "fetch", "--offline", "t.json"],
        &env,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("http://127.0.0.1:9/installer.iso"), "{t}");
    assert!(t.contains("kiln cache add"), "{t}");

    let checksum = format!("sha256:{digest}");
    let out = run_with_env(
        work.path(),
        &["cache", "add", "usb-stick.iso", "--checksum", &checksum],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = run_with_env(
        work.path(),
        &["cache", "fetch", "--offline", "t.json"],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains(&digest), "{}", text(&out));

    let out = run_with_env(work.path(), &["cache", "list"], &env);
    assert!(text(&out).contains(&digest), "{}", text(&out));
}

#[test]
fn build_refuses_a_local_iso_with_the_wrong_checksum() {
    let work = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    std::fs::write(work.path().join("local.iso"), b"contents").expect("write");
    let wrong = "0".repeat(64);
    template(work.path(), "local.iso", &format!("sha256:{wrong}"));
    let out = run_with_env(
        work.path(),
        &["build", "t.json"],
        &[("KILN_CACHE_DIR", cache.path())],
    );
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(
        t.contains(&wrong) && t.contains(&sha256_hex(b"contents")),
        "expected and actual digests: {t}"
    );
}

#[test]
fn a_bad_checksum_is_a_validation_error_with_position() {
    let work = tempfile::tempdir().expect("tempdir");
    template(work.path(), "local.iso", "sha256:abc");
    let out = run_with_env(work.path(), &["validate", "t.json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(t.contains("t.json:1:") && t.contains("3 hex digits"), "{t}");
}

/// An entry modified after its stamp is listed as changed, not "verified".
#[test]
fn list_shows_an_entry_changed_since_its_stamp() {
    let work = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let iso = b"an installer".repeat(100);
    std::fs::write(work.path().join("a.iso"), &iso).expect("write");
    let env = [("KILN_CACHE_DIR", cache.path())];
    let out = run_with_env(work.path(), &["cache", "add", "a.iso"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let entry = cache
        .path()
        .join("sha256")
        .join(format!("{}.iso", sha256_hex(&iso)));

    let out = run_with_env(work.path(), &["cache", "list"], &env);
    assert!(text(&out).starts_with("verified"), "{}", text(&out));

    // Same bytes, new mtime (and ctime): the stamp no longer matches.
    std::fs::File::options()
        .append(true)
        .open(&entry)
        .and_then(|f| f.set_modified(std::time::SystemTime::UNIX_EPOCH))
        .expect("touch the entry");
    let out = run_with_env(work.path(), &["cache", "list"], &env);
    let t = text(&out);
    assert!(t.starts_with("changed"), "{t}");
    assert!(!t.contains("verified "), "{t}");
    assert!(t.contains("re-hashes"), "{t}");
}

/// A stamp that cannot be written is a warning: the ISO is good, so the
/// fetch succeeds (every later fetch used to fail) and re-hashes next time.
#[test]
fn an_unwritable_stamp_is_a_warning_and_the_iso_is_used() {
    let work = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let iso = b"a good installer".repeat(100);
    let digest = sha256_hex(&iso);
    std::fs::write(work.path().join("a.iso"), &iso).expect("write");
    let env = [("KILN_CACHE_DIR", cache.path())];
    let out = run_with_env(work.path(), &["cache", "add", "a.iso"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let entry = cache.path().join("sha256").join(format!("{digest}.iso"));
    // A non-empty directory where the stamp goes: renaming a stamp over it
    // fails, even for root. The entry is touched so the next use re-hashes.
    let stamp = cache
        .path()
        .join("sha256")
        .join(format!("{digest}.iso.stamp"));
    std::fs::remove_file(&stamp).expect("remove stamp");
    std::fs::create_dir(&stamp).expect("mkdir");
    std::fs::write(stamp.join("keep"), b"").expect("write");
    std::fs::File::options()
        .append(true)
        .open(&entry)
        .and_then(|f| f.set_modified(std::time::SystemTime::UNIX_EPOCH))
        .expect("touch the entry");
    // Unreachable: only the cache can answer.
    template(
        work.path(),
        "http://127.0.0.1:9/a.iso",
        &format!("sha256:{digest}"),
    );
    for _ in 0..2 {
        let out = run_with_env(work.path(), &["cache", "fetch", "-offline", "t.json"], &env);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{t}");
        assert!(t.contains("cannot write stamp"), "{t}");
        assert!(t.contains("re-hashed on its next use"), "{t}");
        assert!(
            t.contains(&format!("ISO ready: {}", entry.display())),
            "{t}"
        );
    }
}

/// A download that fills the cache's disk: the error gives the ISO's size,
/// the free space and the command that removes interrupted downloads. The
/// cache is a 1 MiB tmpfs in a private mount namespace (`unshare -m`), so
/// the machine's mounts are untouched.
#[test]
fn a_full_disk_names_the_size_the_free_space_and_prune_parts() {
    use crate::iso_support::{Mode, TestServer, data};
    let probe = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "true"])
        .stderr(std::process::Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("\n!!! SKIPPED: `unshare -m` does not work here (no mount namespaces)\n");
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start();
    let iso = data(3 << 20, 7);
    server.route("/big.iso", iso.clone(), Mode::Normal);
    template(
        work.path(),
        &server.url("/big.iso"),
        &format!("sha256:{}", sha256_hex(&iso)),
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=1m kiln-test "$1" && exec "$2" cache fetch t.json"#)
        .arg("sh")
        .arg(cache.path())
        .arg(crate::support::kiln_bin())
        .current_dir(work.path())
        .env("KILN_CACHE_DIR", cache.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("unshare runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("the disk is full"), "{t}");
    assert!(t.contains("the ISO is 3.0 MiB"), "{t}");
    assert!(t.contains("is free there"), "{t}");
    assert!(t.contains("kiln cache prune --parts"), "{t}");
}
