//! A real tiny-installer build with no password: kiln makes a temporary
//! key pair, the answer file installs `{{ .SSHPublicKey }}`, kiln logs in
//! with it. The build runs with `-machine-readable` and its stdout is read
//! the way CI scripts read Packer's: split on commas, escapes undone.
//! With `ssh_clear_authorized_keys` the key is removed from the guest after
//! provisioning. Boots a VM: run under `flock /tmp/kiln-vm.lock`.

use std::path::Path;

use crate::machine_readable::{Record, parse_records};
use crate::vm::{build_in, text, tiny_iso, vm_lock};

fn template(dir: &Path) -> std::path::PathBuf {
    let (iso, sum) = tiny_iso();
    let template = serde_json::json!({
        "builders": [{
            "type": "qemu",
            "name": "tmpkey",
            "vm_name": "tmpkey.qcow2",
            "iso_url": iso.display().to_string(),
            "iso_checksum": format!("sha256:{sum}"),
            "accelerator": "tcg",
            "memory": 256,
            "disk_size": "1G",
            "format": "qcow2",
            "headless": true,
            "http_content": {
                "/install.cfg": "hostname=tmpkey\nusername=root\nauthorized_key={{ .SSHPublicKey }}\nfinish=reboot\n"
            },
            "boot_wait": "5s",
            "boot_key_interval": "100ms",
            "boot_command": ["install url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.cfg<enter>"],
            "ssh_username": "root",
            "ssh_timeout": "5m",
            "ssh_clear_authorized_keys": true,
            "shutdown_command": "poweroff"
        }],
        "provisioners": [{
            "type": "shell",
            "inline": ["echo logged in with, $(grep -c kiln_ /root/.ssh/authorized_keys) temporary key"]
        }]
    });
    let path = dir.join("tmpkey.json");
    std::fs::write(&path, template.to_string()).expect("write template");
    path
}

#[test]
fn vm_a_build_without_password_logs_in_with_a_temporary_key_and_reports_machine_readable() {
    let _vm = vm_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let template = template(dir.path());
    let out = build_in(dir.path(), &["-machine-readable"], &template)
        .output()
        .expect("kiln runs");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        !all.contains("PRIVATE KEY"),
        "the private key is never shown"
    );

    let stdout = String::from_utf8_lossy(&out.stdout);
    let records = parse_records(&stdout);
    let ui = |kind: &str, needle: &str| {
        records.iter().any(|r| {
            r.kind == "ui"
                && r.data.first().is_some_and(|k| k == kind)
                && r.data[1].contains(needle)
        })
    };
    assert!(
        ui(
            "message",
            "Creating a temporary rsa SSH key pair (4096 bits)"
        ),
        "{stdout}"
    );
    assert!(ui("say", "==> tmpkey: Waiting for SSH"), "{stdout}");
    // A comma in guest output comes back whole after the split.
    assert!(ui("message", "logged in with, 1 temporary key"), "{stdout}");

    let artifact: Vec<&Record> = records
        .iter()
        .filter(|r| r.target == "tmpkey" && r.kind.starts_with("artifact"))
        .collect();
    assert_eq!(artifact[0].kind, "artifact-count", "{stdout}");
    assert_eq!(artifact[0].data, ["1"], "{stdout}");
    let field = |name: &str| -> Vec<Vec<String>> {
        artifact
            .iter()
            .filter(|r| r.kind == "artifact" && r.data[0] == "0" && r.data[1] == name)
            .map(|r| r.data[2..].to_vec())
            .collect()
    };
    assert_eq!(field("builder-id"), [["transcend.qemu"]], "{stdout}");
    assert_eq!(field("id"), [["tmpkey.qcow2"]], "{stdout}");
    assert_eq!(field("end"), [Vec::<String>::new()], "{stdout}");
    let count: usize = field("files-count")[0][0].parse().expect("a count");
    let files = field("file");
    assert_eq!(files.len(), count, "{stdout}");
    assert!(count >= 1, "{stdout}");
    for (i, f) in files.iter().enumerate() {
        assert_eq!(f[0], i.to_string());
        let path = dir.path().join(&f[1]);
        assert!(path.is_file(), "artifact file {} exists", path.display());
    }
    assert!(
        files.iter().any(|f| f[1].ends_with("tmpkey.qcow2")),
        "{stdout}"
    );
    assert!(
        records.iter().all(|r| r.kind != "error"),
        "no error record on success: {stdout}"
    );

    // ssh_clear_authorized_keys: the image no longer trusts the key.
    assert!(
        ui("say", "==> tmpkey: Removing the temporary SSH key"),
        "{stdout}"
    );
    let ssh_dir = guest_files(
        &dir.path().join("output-tmpkey/tmpkey.qcow2"),
        &["cat /root/.ssh/authorized_keys", "ls /root/.ssh"],
    );
    assert!(
        ssh_dir.contains("authorized_keys") && !ssh_dir.contains("kiln_"),
        "the key's line is gone, the file stays: {ssh_dir}"
    );
    assert!(!ssh_dir.contains("authorized_keys.bak"), "{ssh_dir}");
}

/// Reads the installed system's files without booting it: the qcow2 as raw,
/// then `debugfs` on the ext2 partition (the tiny installer puts it at 1 MiB).
fn guest_files(image: &Path, requests: &[&str]) -> String {
    let raw = image.with_extension("raw");
    let convert = std::process::Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(image)
        .arg(&raw)
        .output()
        .expect("qemu-img runs");
    assert!(convert.status.success(), "{convert:?}");
    let mut out = String::new();
    for request in requests {
        let debugfs = std::process::Command::new("debugfs")
            .args(["-R", request])
            .arg(format!("{}?offset=1048576", raw.display()))
            .output()
            .expect("debugfs (e2fsprogs) runs");
        out.push_str(&String::from_utf8_lossy(&debugfs.stdout));
        out.push_str(&String::from_utf8_lossy(&debugfs.stderr));
    }
    assert!(!out.contains("not found"), "{out}");
    out
}
