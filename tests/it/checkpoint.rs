//! Install checkpoints (#13). The first tests never boot a VM: their QEMU
//! binary does not exist, so a build stops at "Starting the VM", after the
//! checkpoint was looked up. The VM test at the end installs the tiny
//! installer for real (under TCG) and resumes from its checkpoint.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::kiln_bin;
use crate::vm::{interrupt_when, qemu_processes_with, text, tiny_iso, vm_lock};

/// A template whose ISO is a few verified bytes and whose QEMU does not
/// exist; `extra` is merged into the builder.
fn unbootable(dir: &Path, extra: serde_json::Value) -> PathBuf {
    crate::support::unbootable_qemu_template(
        dir,
        "cp",
        serde_json::json!({
            "communicator": "ssh",
            "ssh_username": "root",
            "ssh_password": "secret",
            "boot_command": ["install url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/x<enter>"],
            "http_content": { "/x": "disk=auto\n" }
        }),
    );
    let path = dir.join("t.json");
    let mut t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    if let (Some(b), serde_json::Value::Object(e)) = (t["builders"][0].as_object_mut(), extra) {
        if e.contains_key("http_directory") {
            b.remove("http_content");
        }
        b.extend(e);
    }
    std::fs::write(&path, t.to_string()).expect("write");
    path
}

fn build(dir: &Path, flags: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(kiln_bin())
        .current_dir(dir)
        .env("KILN_CACHE_DIR", dir.join("cache"))
        .env_remove("KILN_NO_CHECKPOINT")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .arg("build")
        .args(flags)
        .arg("t.json")
        .output()
        .expect("kiln runs")
}

/// The install key kiln printed ("… (key <hex>) …").
fn key_of(out: &Output) -> String {
    let t = text(out);
    let at = t
        .find("(key ")
        .unwrap_or_else(|| panic!("no key printed:\n{t}"));
    t[at + 5..at + 5 + 64].to_owned()
}

fn key_with(extra: serde_json::Value, setup: impl FnOnce(&Path)) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    unbootable(dir.path(), extra);
    key_of(&build(dir.path(), &[], &[]))
}

#[test]
fn the_key_follows_the_install_inputs_and_nothing_else() {
    let base = key_with(serde_json::json!({}), |_| {});
    assert_eq!(base, key_with(serde_json::json!({}), |_| {}), "stable");
    // Not install inputs: the accelerator, the VM's name on the host, ports.
    assert_eq!(
        base,
        key_with(
            serde_json::json!({"accelerator": "kvm", "host_port_min": 3000, "ssh_password": "other"}),
            |_| {}
        )
    );
    for changed in [
        serde_json::json!({"boot_command": ["install url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/y<enter>"]}),
        serde_json::json!({"http_content": {"/x": "disk=manual\n"}}),
        serde_json::json!({"memory": 1024}),
        serde_json::json!({"disk_size": "32M"}),
        serde_json::json!({"boot_wait": "3s"}),
        serde_json::json!({"qemuargs": [["-cpu", "max"]]}),
    ] {
        assert_ne!(base, key_with(changed.clone(), |_| {}), "{changed}");
    }
    // A served file's content is in the key, not only its name.
    let served = |content: &'static str| {
        key_with(serde_json::json!({"http_directory": "http"}), move |d| {
            std::fs::create_dir(d.join("http")).expect("mkdir");
            std::fs::write(d.join("http/preseed.cfg"), content).expect("write");
        })
    };
    assert_ne!(served("a"), served("b"));
}

#[test]
fn a_value_that_changes_every_run_is_warned_about() {
    let dir = tempfile::tempdir().expect("tempdir");
    unbootable(
        dir.path(),
        serde_json::json!({"boot_command": ["install id={{ timestamp }}<enter>"]}),
    );
    let t = text(&build(dir.path(), &[], &[]));
    assert!(
        t.contains("boot_command uses {{ timestamp }}, whose value changes every run"),
        "{t}"
    );
}

#[test]
fn checkpoints_can_be_switched_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    unbootable(dir.path(), serde_json::json!({"checkpoint": false}));
    let t = text(&build(dir.path(), &[], &[]));
    assert!(
        t.contains("install checkpoints are off (\"checkpoint\": false)"),
        "{t}"
    );
    assert!(!t.contains("(key "), "{t}");

    let dir = tempfile::tempdir().expect("tempdir");
    unbootable(dir.path(), serde_json::json!({}));
    let t = text(&build(dir.path(), &[], &[("KILN_NO_CHECKPOINT", "1")]));
    assert!(
        t.contains("install checkpoints are off (KILN_NO_CHECKPOINT is set)"),
        "{t}"
    );

    // Without SSH nothing says when the install is over.
    let dir = tempfile::tempdir().expect("tempdir");
    unbootable(dir.path(), serde_json::json!({"communicator": "none"}));
    let t = text(&build(dir.path(), &[], &[]));
    assert!(
        t.contains("no install checkpoint: without an SSH communicator"),
        "{t}"
    );

    // A wrong type is an error at its place, like any other key.
    let dir = tempfile::tempdir().expect("tempdir");
    unbootable(dir.path(), serde_json::json!({"checkpoint": "maybe"}));
    let out = build(dir.path(), &[], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("checkpoint"), "{}", text(&out));
}

#[test]
fn hcl2_sources_accept_the_checkpoint_switch() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("t.pkr.hcl"),
        r#"
source "qemu" "cp" {
  iso_url      = "fake.iso"
  iso_checksum = "none"
  ssh_username = "root"
  ssh_password = "x"
  checkpoint   = false
}
build { sources = ["source.qemu.cp"] }
"#,
    )
    .expect("write");
    std::fs::write(dir.path().join("fake.iso"), "x").expect("write");
    let out = Command::new(kiln_bin())
        .current_dir(dir.path())
        .args(["validate", "t.pkr.hcl"])
        .output()
        .expect("kiln runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// Puts a checkpoint for `key` in the cache: a real (empty) qcow2 and its
/// digest, as kiln writes them.
fn plant(cache: &Path, key: &str, damage: bool) -> PathBuf {
    use sha2::Digest;
    let dir = cache.join("checkpoints").join(key);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let disk = dir.join("disk.qcow2");
    let st = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&disk)
        .arg("16M")
        .status()
        .expect("qemu-img runs");
    assert!(st.success());
    let data = std::fs::read(&disk).expect("read");
    let sum: String = sha2::Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(
        dir.join("disk.qcow2.sha256"),
        format!("sha256:{sum} {}\n", data.len()),
    )
    .expect("write");
    if damage {
        let mut bad = data.clone();
        bad[100] ^= 0xff;
        std::fs::write(&disk, bad).expect("damage");
    }
    dir
}

#[test]
fn a_verified_checkpoint_is_resumed_and_a_damaged_one_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    unbootable(dir.path(), serde_json::json!({}));
    let key = key_of(&build(dir.path(), &[], &[]));
    let cache = dir.path().join("cache");

    let planted = plant(&cache, &key, false);
    let t = text(&build(dir.path(), &[], &[]));
    assert!(t.contains("Resuming from the install checkpoint"), "{t}");
    assert!(
        t.contains("from the install checkpoint)"),
        "the disk is an overlay: {t}"
    );
    assert!(planted.is_dir());

    // -force-install does not use it (and would replace it).
    let t = text(&build(dir.path(), &["-force-install"], &[]));
    assert!(t.contains("-force-install: installing from the ISO"), "{t}");
    assert!(!t.contains("Resuming from"), "{t}");

    std::fs::remove_dir_all(&planted).expect("rm");
    let planted = plant(&cache, &key, true);
    let t = text(&build(dir.path(), &[], &[]));
    assert!(t.contains("is damaged (its disk's sha256 is"), "{t}");
    assert!(!t.contains("Resuming from"), "{t}");
    assert!(!planted.exists(), "a damaged checkpoint is removed");
}

#[test]
fn cache_lists_verifies_and_prunes_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let good = plant(&cache, &"a".repeat(64), false);
    let bad = plant(&cache, &"b".repeat(64), true);
    let kiln = |args: &[&str]| {
        let out = Command::new(kiln_bin())
            .env("KILN_CACHE_DIR", &cache)
            .env("NO_COLOR", "1")
            .arg("cache")
            .args(args)
            .output()
            .expect("kiln runs");
        (out.status.code(), text(&out))
    };
    let (code, t) = kiln(&["list"]);
    assert_eq!(code, Some(0), "{t}");
    assert!(
        t.contains(&format!("{}", good.display())) && t.contains("install"),
        "{t}"
    );
    let (_, t) = kiln(&["verify"]);
    assert!(
        t.contains(&format!("ok           {}", good.display())),
        "{t}"
    );
    assert!(
        t.contains(&format!("removed      {}", bad.display())),
        "{t}"
    );
    assert!(good.exists() && !bad.exists());
    let (code, t) = kiln(&["prune", "--checkpoints"]);
    assert_eq!(code, Some(0), "{t}");
    assert!(t.contains(&format!("removed  {}", good.display())), "{t}");
    assert!(!good.exists());
}

/// A tiny-installer template with no post-processors: `provision` runs
/// after the install, `hostname` is served in the answer file.
fn tiny_template(dir: &Path, hostname: &str, provision: &[&str]) {
    let (iso, sum) = tiny_iso();
    let t = serde_json::json!({
        "builders": [{
            "type": "qemu", "vm_name": "cp.qcow2", "output_directory": "out",
            "iso_url": iso, "iso_checksum": format!("sha256:{sum}"),
            "accelerator": "tcg", "memory": 256, "disk_size": "1G", "headless": true,
            "http_content": {
                "/install.cfg": format!("disk=auto\nhostname={hostname}\nusername=root\npassword=kiln-tiny\nfinish=reboot\n")
            },
            "boot_wait": "5s",
            "boot_command": ["install url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.cfg<enter>"],
            "ssh_username": "root", "ssh_password": "kiln-tiny", "ssh_timeout": "5m",
            "shutdown_command": "poweroff"
        }],
        "provisioners": [{"type": "shell", "inline": provision}]
    });
    std::fs::write(dir.join("t.json"), t.to_string()).expect("write");
}

/// What the provisioner leaves, printed by the build for comparison.
const PROVISION: &[&str] = &[
    "echo provisioned > /root/marker",
    "hostname > /root/host",
    "echo SUMS $(cat /root/marker /root/host /etc/hostname | sha256sum)",
];

pub(crate) fn sums(t: &str) -> String {
    t.lines()
        .find_map(|l| l.split_once("SUMS ").map(|(_, s)| s.trim().to_owned()))
        .unwrap_or_else(|| panic!("no SUMS line:\n{t}"))
}

pub(crate) fn checkpoints_in(cache: &Path) -> Vec<String> {
    std::fs::read_dir(cache.join("checkpoints"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "locks")
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn vm_installs_once_then_resumes_from_the_checkpoint() {
    let _vm = vm_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    tiny_template(dir.path(), "tiny", PROVISION);

    // Ctrl-C while the checkpoint is written: nothing is left of it.
    let mut cmd = Command::new(kiln_bin());
    cmd.current_dir(dir.path())
        .env("KILN_CACHE_DIR", &cache)
        .env("NO_COLOR", "1")
        .env("KILN_TEST_PAUSE_BEFORE_CHECKPOINT_RENAME", "1")
        .args(["build", "t.json"]);
    let (out, _) = interrupt_when(cmd, "test hook: the checkpoint is written", "cp.qcow2");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        checkpoints_in(&cache),
        Vec::<String>::new(),
        "{}",
        text(&out)
    );

    // The full build saves one.
    let full = build(dir.path(), &[], &[]);
    let t = text(&full);
    assert_eq!(full.status.code(), Some(0), "{t}");
    assert!(t.contains("Saved the install checkpoint"), "{t}");
    assert!(t.contains("Typed "), "{t}");
    let full_sums = sums(&t);
    let saved = checkpoints_in(&cache);
    assert_eq!(saved.len(), 1, "{saved:?}");

    // A provisioner-only change resumes: no boot command is typed, and
    // what was provisioned is the same as after the full build.
    let mut changed = PROVISION.to_vec();
    changed.push("echo a new provisioner line");
    tiny_template(dir.path(), "tiny", &changed);
    let resumed = build(dir.path(), &["-force"], &[]);
    let t = text(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{t}");
    assert!(t.contains("Resuming from the install checkpoint"), "{t}");
    assert!(
        t.contains("no boot command to type") && !t.contains("Typed "),
        "{t}"
    );
    assert!(t.contains("a new provisioner line"), "{t}");
    assert_eq!(sums(&t), full_sums, "{t}");
    // The artifact stands alone: no backing file on the checkpoint.
    let info = Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(dir.path().join("out/cp.qcow2"))
        .output()
        .expect("qemu-img runs");
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(!info.contains("backing-filename"), "{info}");

    // A damaged checkpoint is refused, the install runs again and saves a
    // new one.
    let disk = cache.join("checkpoints").join(&saved[0]).join("disk.qcow2");
    let len = std::fs::metadata(&disk).expect("disk").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&disk)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    let rebuilt = build(dir.path(), &["-force"], &[]);
    let t = text(&rebuilt);
    assert_eq!(rebuilt.status.code(), Some(0), "{t}");
    assert!(t.contains("is damaged (its disk is"), "{t}");
    assert!(
        t.contains("Typed ") && t.contains("Saved the install checkpoint"),
        "{t}"
    );
    assert_eq!(checkpoints_in(&cache), saved);

    // A changed served file is a different install: the boot command is
    // typed (the install has begun; stopped there, it saves nothing).
    tiny_template(dir.path(), "tiny2", PROVISION);
    let mut cmd = Command::new(kiln_bin());
    cmd.current_dir(dir.path())
        .env("KILN_CACHE_DIR", &cache)
        .env("NO_COLOR", "1")
        .args(["build", "-force", "t.json"]);
    let (other, _) = interrupt_when(cmd, "Typed ", "cp.qcow2");
    let t = text(&other);
    assert_eq!(other.status.code(), Some(1), "{t}");
    assert!(t.contains("No install checkpoint yet"), "{t}");
    assert!(!t.contains("Resuming from the install checkpoint"), "{t}");
    assert_eq!(checkpoints_in(&cache), saved);
    assert!(qemu_processes_with("cp.qcow2").is_empty());
}

#[test]
fn vm_two_parallel_builds_share_one_checkpoint() {
    let _vm = vm_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    tiny_template(dir.path(), "tiny", PROVISION);
    // The same install twice in one template, run at once.
    let path = dir.path().join("t.json");
    let mut t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    let mut second = t["builders"][0].clone();
    t["builders"][0]["name"] = "one".into();
    t["builders"][0]["output_directory"] = "out-one".into();
    second["name"] = "two".into();
    second["output_directory"] = "out-two".into();
    t["builders"].as_array_mut().expect("builders").push(second);
    std::fs::write(&path, t.to_string()).expect("write");
    let out = build(dir.path(), &["-parallel-builds=2"], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert_eq!(t.matches("Saved the install checkpoint").count(), 1, "{t}");
    assert_eq!(t.matches("is already there").count(), 1, "{t}");
    assert_eq!(checkpoints_in(&cache).len(), 1);
}

/// A tiny-installer build whose provisioner is a script file and whose
/// checksum post-processor writes outside the output directory.
fn tiny_scripted(dir: &Path, script: &str) {
    tiny_template(dir, "tiny", &[]);
    let path = dir.join("t.json");
    let mut t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    t["provisioners"] = serde_json::json!([{"type": "shell", "script": "scripts/p.sh"}]);
    t["post-processors"] = serde_json::json!([{
        "type": "checksum", "checksum_types": ["sha256"],
        "output": "sums/{{.BuildName}}.{{.ChecksumType}}"
    }]);
    std::fs::write(&path, t.to_string()).expect("write");
    std::fs::create_dir_all(dir.join("scripts")).expect("mkdir");
    std::fs::write(dir.join("scripts/p.sh"), script).expect("write script");
}

fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An unchanged build, timed: up to date, no VM, nothing rewritten.
fn assert_up_to_date(dir: &Path, artifacts: &[PathBuf]) -> std::time::Duration {
    let before: Vec<_> = artifacts.iter().map(|a| mtime(a)).collect();
    let started = std::time::Instant::now();
    let out = build(dir, &[], &[]);
    let took = started.elapsed();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("Up to date: its inputs are unchanged"), "{t}");
    assert!(t.contains("up to date, nothing to do"), "{t}");
    assert!(
        !t.contains("Starting the VM") && !t.contains("Fetching"),
        "{t}"
    );
    let after: Vec<_> = artifacts.iter().map(|a| mtime(a)).collect();
    assert_eq!(before, after, "an up-to-date build rewrote an artifact");
    eprintln!("up-to-date build took {took:?}");
    took
}

#[test]
fn vm_an_unchanged_build_is_up_to_date_until_an_input_or_artifact_changes() {
    let _vm = vm_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    tiny_scripted(d, "echo first script run\n");
    let disk = d.join("out/cp.qcow2");
    let sums = d.join("sums/qemu.sha256");
    let artifacts = [disk.clone(), sums.clone()];

    let full = build(d, &[], &[]);
    let t = text(&full);
    assert_eq!(full.status.code(), Some(0), "{t}");
    assert!(t.contains("Saved the install checkpoint"), "{t}");
    assert!(sums.is_file(), "{t}");

    let took = assert_up_to_date(d, &artifacts);
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    // -machine-readable: Packer's records for the last run's artifacts,
    // and a say line a CI job can grep.
    let mr = build(d, &["-machine-readable"], &[]);
    let stdout = String::from_utf8_lossy(&mr.stdout);
    assert_eq!(mr.status.code(), Some(0), "{}", text(&mr));
    assert!(stdout.contains(",qemu,artifact-count,2"), "{stdout}");
    assert!(
        stdout.contains(",ui,say,--> qemu: up to date%!(PACKER_COMMA) nothing to do"),
        "{stdout}"
    );

    // -force on an unchanged build rebuilds, from the install checkpoint.
    let forced = build(d, &["-force"], &[]);
    let t = text(&forced);
    assert_eq!(forced.status.code(), Some(0), "{t}");
    assert!(t.contains("Resuming from the install checkpoint"), "{t}");
    assert!(t.contains("first script run"), "{t}");
    assert_up_to_date(d, &artifacts);

    // A deleted artifact outside the output directory, then a modified
    // one inside it (same size): not up to date, and the error names it.
    let kept = std::fs::read(&sums).expect("read sums");
    std::fs::remove_file(&sums).expect("rm sums");
    let t = text(&build(d, &[], &[]));
    assert!(
        t.contains("already exists (not up to date: sums/qemu.sha256: it is gone)"),
        "{t}"
    );
    std::fs::write(&sums, kept).expect("restore sums");
    let len = std::fs::metadata(&disk).expect("disk").len();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&disk)
            .expect("open disk");
        f.seek(SeekFrom::Start(len - 1)).expect("seek");
        f.write_all(&[0xAA]).expect("poke");
    }
    let out = build(d, &[], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("(not up to date: out/cp.qcow2: its content changed (sha256 differs))"),
        "{t}"
    );

    // A provisioner's script edited: Packer's error, naming the change;
    // -force rebuilds from the install checkpoint and runs the new script.
    std::fs::write(d.join("scripts/p.sh"), "echo second script run\n").expect("edit");
    let out = build(d, &[], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("already exists (not up to date: provisioner 1 (shell) script scripts/p.sh changed); remove it or run with -force"),
        "{t}"
    );
    let forced = build(d, &["-force"], &[]);
    let t = text(&forced);
    assert_eq!(forced.status.code(), Some(0), "{t}");
    assert!(
        t.contains("Resuming from the install checkpoint") && t.contains("second script run"),
        "{t}"
    );
    assert_up_to_date(d, &artifacts);
    assert!(qemu_processes_with("cp.qcow2").is_empty());
}

/// The host's clock, in seconds since the epoch.
fn host_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// The guest's clock as the provisioner printed it ("CLOCK <secs>").
fn guest_clock(t: &str) -> u64 {
    t.lines()
        .find_map(|l| l.split_once("CLOCK ").map(|(_, s)| s.trim().to_owned()))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no CLOCK line:\n{t}"))
}

/// Rewrites a checkpoint's memory state with `bytes` and seals it again
/// (digest and size), so it passes verification and only QEMU can tell.
fn reseal_memory(entry: &Path, bytes: &[u8]) {
    use sha2::Digest;
    let sum: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(entry.join("memory.bin"), bytes).expect("write memory");
    std::fs::write(
        entry.join("memory.bin.sha256"),
        format!("sha256:{sum} {}\n", bytes.len()),
    )
    .expect("write digest");
    let _ = std::fs::remove_file(entry.join("memory.bin.stamp"));
}

#[test]
fn vm_a_provisioner_change_resumes_the_running_guest_from_its_memory_state() {
    let _vm = vm_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let cache = d.join("cache");
    let mut provision = PROVISION.to_vec();
    provision.push("echo CLOCK $(date +%s)");
    tiny_template(d, "tiny", &provision);

    let full = build(d, &[], &[]);
    let t = text(&full);
    assert_eq!(full.status.code(), Some(0), "{t}");
    assert!(
        t.contains("Saved the install checkpoint") && t.contains("memory state"),
        "{t}"
    );
    let full_sums = sums(&t);
    let saved = checkpoints_in(&cache);
    assert_eq!(saved.len(), 1, "{saved:?}");
    let entry = cache.join("checkpoints").join(&saved[0]);
    assert!(entry.join("memory.bin").is_file(), "{t}");

    // `kiln cache list` shows both parts.
    let listed = Command::new(kiln_bin())
        .env("KILN_CACHE_DIR", &cache)
        .args(["cache", "list"])
        .output()
        .expect("kiln runs");
    let l = text(&listed);
    assert!(l.contains("(disk ") && l.contains(" + memory "), "{l}");

    // The build record's digests are keyed by the cache's private key.
    let key_file = cache.join("record-key");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("record-key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A stream QEMU cannot load (sealed again, so only QEMU can tell):
    // the disk boots instead, with the cause, and no QEMU is left over.
    let original = std::fs::read(entry.join("memory.bin")).expect("read memory");
    let mut stream = original.clone();
    let mid = stream.len() / 2;
    for b in &mut stream[mid..mid + 4096] {
        *b ^= 0x5a;
    }
    reseal_memory(&entry, &stream);
    let fell_back = build(d, &["-force"], &[]);
    let t = text(&fell_back);
    assert_eq!(fell_back.status.code(), Some(0), "{t}");
    assert!(
        t.contains("resuming the checkpoint's memory state failed (")
            && t.contains("booting its disk instead"),
        "{t}"
    );
    assert!(!t.contains("Typed "), "{t}");
    assert_eq!(sums(&t), full_sums, "{t}");
    assert!(crate::vm::qemu_processes_in(d).is_empty());
    reseal_memory(&entry, &original);

    // Another QEMU, as after an upgrade (a `qemu_binary` whose --version
    // differs; qemu_binary is not in the install key): the stream is not
    // tried, the disk boots, and the warning names both versions.
    let wrapper = d.join("qemu-upgraded");
    crate::support::write_executable(
        &wrapper,
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'QEMU emulator version 99.0.0'; exit 0; fi\nexec qemu-system-x86_64 \"$@\"\n",
    );
    let path = d.join("t.json");
    let template = std::fs::read(&path).expect("read");
    let mut tpl: serde_json::Value = serde_json::from_slice(&template).expect("json");
    tpl["builders"][0]["qemu_binary"] = wrapper.display().to_string().into();
    std::fs::write(&path, tpl.to_string()).expect("write");
    let other_qemu = build(d, &["-force"], &[]);
    let t = text(&other_qemu);
    assert_eq!(other_qemu.status.code(), Some(0), "{t}");
    assert!(
        t.contains("the checkpoint's memory state was saved by \"kiln-memory v1; QEMU emulator version")
            && t.contains("this build runs \"kiln-memory v1; QEMU emulator version 99.0.0; accel Tcg\": booting its disk instead"),
        "{t}"
    );
    assert!(!t.contains("Typed "), "{t}");
    assert_eq!(sums(&t), full_sums, "{t}");
    std::fs::write(&path, &template).expect("restore");

    // A provisioner-only change: the installed guest runs on from its
    // memory state (no boot), its clock is the host's (without the fix it
    // would show the checkpoint's time, a full build and a disk boot
    // earlier), and what it provisioned equals the full build's.
    let mut changed = provision.clone();
    changed.insert(0, "echo a new provisioner line");
    tiny_template(d, "tiny", &changed);
    let started = host_now();
    let resumed = build(d, &["-force"], &[]);
    let ended = host_now();
    let t = text(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{t}");
    assert!(
        t.contains("Resumed the installed guest from the checkpoint's memory state"),
        "{t}"
    );
    assert!(
        !t.contains("Typed ") && !t.contains("booting its disk"),
        "{t}"
    );
    assert!(t.contains("Set the resumed guest's clock"), "{t}");
    assert_eq!(sums(&t), full_sums, "{t}");
    let clock = guest_clock(&t);
    assert!(
        clock + 5 >= started && clock <= ended + 5,
        "the guest's clock ({clock}) is not the host's ({started}..{ended}):\n{t}"
    );

    // Without the cache's record key the record vouches for nothing.
    std::fs::remove_file(&key_file).expect("rm record-key");
    let out = build(d, &[], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("not up to date"), "{t}");

    // A changed memory size is another install, whose memory state could
    // not load anyway: it does not resume. Then a damaged memory state
    // (its digest no longer matches) condemns the entry. Each build is
    // stopped once it has said so.
    let interrupted = |marker: &str| {
        let mut cmd = Command::new(kiln_bin());
        cmd.current_dir(d)
            .env("KILN_CACHE_DIR", &cache)
            .env("NO_COLOR", "1")
            .args(["build", "-force", "t.json"]);
        text(&interrupt_when(cmd, marker, "cp.qcow2").0)
    };
    let path = d.join("t.json");
    let template = std::fs::read(&path).expect("read");
    let mut tpl: serde_json::Value = serde_json::from_slice(&template).expect("json");
    tpl["builders"][0]["memory"] = 320.into();
    std::fs::write(&path, tpl.to_string()).expect("write");
    let t = interrupted("No install checkpoint yet");
    assert!(!t.contains("Resum"), "{t}");
    assert_eq!(checkpoints_in(&cache), saved, "{t}");

    std::fs::write(&path, template).expect("restore");
    let mut stream = std::fs::read(entry.join("memory.bin")).expect("read memory");
    stream[0] ^= 0xff;
    std::fs::write(entry.join("memory.bin"), &stream).expect("damage");
    let t = interrupted("not used, installing again");
    assert!(
        t.contains("is damaged (its memory state's sha256 is"),
        "{t}"
    );
    assert!(checkpoints_in(&cache).is_empty(), "{t}");
    assert!(crate::vm::qemu_processes_in(d).is_empty());
}
