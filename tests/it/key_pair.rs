//! The SSH key pair step, where it fails before a VM exists: a key file
//! that is not a private key stops the build at once, naming the file.
//! (The temporary key logging in to a real guest is in `temporary_key.rs`.)

use crate::support::{run_with_env, unbootable_qemu_template};

#[test]
fn an_unreadable_private_key_file_stops_the_build_before_the_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("not-a-key"), "hello\n").expect("write");
    unbootable_qemu_template(
        dir.path(),
        "badkey",
        serde_json::json!({
            "communicator": "ssh",
            "ssh_username": "root",
            "ssh_private_key_file": "not-a-key"
        }),
    );
    let cache = dir.path().join("cache");
    let out = run_with_env(
        dir.path(),
        &["build", "t.json"],
        &[("KILN_CACHE_DIR", cache.as_path())],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Choosing the SSH key pair: FAILED")
            && stderr.contains("ssh_private_key_file: cannot use")
            && stderr.contains("not-a-key"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("==> Creating the disk"),
        "stopped before the disk: {stderr}"
    );
    assert!(
        !dir.path().join("output-badkey").exists(),
        "the output directory is removed: {stderr}"
    );
}
