//! Install checkpoints for virtualbox-iso (#13), through the simulated
//! VBoxManage. The first tests boot nothing: the simulator's QEMU is
//! `false`, so a build stops at "Starting the VM", after the checkpoint was
//! looked up and the disk made. The VM test installs the tiny installer,
//! then resumes from its checkpoint.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::virtualbox::FakeVbox;
use crate::vm::{build_in, text, tiny_iso, vm_lock};
use kiln::hypervisor::virtualbox::VBoxManage;

/// `kiln build t.json` in the fake VirtualBox's directory, its VBoxManage
/// first on PATH; `env` adds variables (FAKE_VBOX_QEMU=false: no VM).
fn build(vbox: &FakeVbox, flags: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = vbox.path("");
    let path = format!(
        "{}:{}",
        vbox.path("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    build_in(&dir, flags, Path::new("t.json"))
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .env_remove("KILN_NO_CHECKPOINT")
        .env_remove("VBOX_INSTALL_PATH")
        .env_remove("VBOX_MSI_INSTALL_PATH")
        .envs(env.iter().copied())
        .output()
        .expect("kiln runs")
}

const NO_VM: &[(&str, &str)] = &[("FAKE_VBOX_QEMU", "false")];

/// A virtualbox-iso template; `iso` and its sha256, `builder` merged into
/// the builder, `provision` the shell provisioner's lines.
fn write_template(
    vbox: &FakeVbox,
    (iso, sum): (&Path, &str),
    builder: serde_json::Value,
    provision: &[&str],
) {
    let mut b = serde_json::json!({
        "type": "virtualbox-iso", "vm_name": "kiln-cp", "guest_os_type": "Linux_64",
        "output_directory": "out",
        "iso_url": iso, "iso_checksum": format!("sha256:{sum}"),
        "memory": 256, "disk_size": 1024, "headless": true,
        "http_content": {
            "/install.cfg": "disk=auto\nusername=root\npassword=kiln-tiny\nfinish=reboot\n"
        },
        "boot_wait": "2s",
        "boot_command": ["install url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.cfg<enter>"],
        "ssh_username": "root", "ssh_password": "kiln-tiny", "ssh_timeout": "4m",
        "shutdown_command": "poweroff", "guest_additions_mode": "disable"
    });
    if let (Some(b), serde_json::Value::Object(extra)) = (b.as_object_mut(), builder) {
        b.extend(extra);
    }
    let t = serde_json::json!({
        "builders": [b],
        "provisioners": [{"type": "shell", "inline": provision}]
    });
    std::fs::write(vbox.path("t.json"), t.to_string()).expect("template");
}

/// A few verified bytes as the ISO: nothing boots it here.
fn fake_iso(vbox: &FakeVbox) -> (PathBuf, String) {
    let iso = vbox.path("x.iso");
    std::fs::write(&iso, b"not an installer").expect("iso");
    let sum = kiln::digest::hex(&sha2_digest(b"not an installer"));
    (iso, sum)
}

fn sha2_digest(bytes: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).to_vec()
}

/// The install key kiln printed ("… (key <hex>) …").
fn key_of(t: &str) -> String {
    let at = t
        .find("(key ")
        .unwrap_or_else(|| panic!("no key printed:\n{t}"));
    t[at + 5..at + 5 + 64].to_owned()
}

/// The key of a build of the base template with `builder` merged in and
/// `provision` as its provisioner (in a fresh fake VirtualBox).
fn key_with(builder: serde_json::Value, provision: &[&str]) -> String {
    let vbox = FakeVbox::new();
    let (iso, sum) = fake_iso(&vbox);
    write_template(&vbox, (&iso, &sum), builder, provision);
    let out = build(&vbox, &[], NO_VM);
    key_of(&text(&out))
}

#[test]
fn the_virtualbox_install_key_follows_the_install_inputs_and_nothing_else() {
    let none = serde_json::json!({});
    let base = key_with(none.clone(), &["echo one"]);
    assert_eq!(base, key_with(none.clone(), &["echo one"]), "stable");
    // Not install inputs: the provisioners, the VM's name, the output
    // directory.
    assert_eq!(base, key_with(none.clone(), &["echo two"]));
    assert_eq!(
        base,
        key_with(
            serde_json::json!({"vm_name": "other", "output_directory": "elsewhere"}),
            &["echo one"]
        )
    );
    // Install inputs.
    for changed in [
        serde_json::json!({"boot_command": ["install url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.cfg quiet<enter>"]}),
        serde_json::json!({"http_content": {"/install.cfg": "disk=auto\n"}}),
        serde_json::json!({"memory": 512}),
        serde_json::json!({"disk_size": 2048}),
        serde_json::json!({"hard_drive_interface": "sata"}),
        serde_json::json!({"firmware": "efi"}),
        serde_json::json!({"vboxmanage": [["modifyvm", "{{ .Name }}", "--vram", "16"]]}),
    ] {
        assert_ne!(base, key_with(changed.clone(), &["echo one"]), "{changed}");
    }
}

#[test]
fn virtualbox_checkpoints_can_be_switched_off() {
    let vbox = FakeVbox::new();
    let (iso, sum) = fake_iso(&vbox);
    write_template(
        &vbox,
        (&iso, &sum),
        serde_json::json!({"checkpoint": false}),
        &["true"],
    );
    let t = text(&build(&vbox, &[], NO_VM));
    assert!(
        t.contains("install checkpoints are off (\"checkpoint\": false)"),
        "{t}"
    );
    write_template(&vbox, (&iso, &sum), serde_json::json!({}), &["true"]);
    let t = text(&build(
        &vbox,
        &["-force"],
        &[NO_VM[0], ("KILN_NO_CHECKPOINT", "1")],
    ));
    assert!(
        t.contains("install checkpoints are off (KILN_NO_CHECKPOINT is set)"),
        "{t}"
    );
}

/// Puts a checkpoint for `key` in the cache: a VDI (qcow2 inside, as the
/// simulator's disks are) and its digest; `damage` leaves a wrong digest.
fn plant(vbox: &FakeVbox, key: &str, damage: bool) -> PathBuf {
    let dir = vbox.path("cache/checkpoints").join(key);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let disk = dir.join("disk.vdi");
    let status = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&disk)
        .arg("1G")
        .status()
        .expect("qemu-img");
    assert!(status.success());
    let bytes = std::fs::read(&disk).expect("read");
    let mut sum = kiln::digest::hex(&sha2_digest(&bytes));
    if damage {
        sum = sum.replace(|c: char| c != '0', "0");
    }
    std::fs::write(
        dir.join("disk.vdi.sha256"),
        format!("sha256:{sum} {}\n", bytes.len()),
    )
    .expect("digest");
    disk
}

#[test]
fn a_verified_virtualbox_checkpoint_is_cloned_and_a_damaged_one_refused() {
    let vbox = FakeVbox::new();
    let (iso, sum) = fake_iso(&vbox);
    write_template(&vbox, (&iso, &sum), serde_json::json!({}), &["true"]);
    let key = key_of(&text(&build(&vbox, &[], NO_VM)));

    let disk = plant(&vbox, &key, false);
    let calls_before = vbox.calls().len();
    let t = text(&build(&vbox, &["-force"], NO_VM));
    assert!(t.contains("Resuming from the install checkpoint"), "{t}");
    let calls = &vbox.calls()[calls_before..];
    let disk_text = disk.display().to_string();
    let clone = calls
        .iter()
        .find(|c| c.first().is_some_and(|c| c == "clonemedium"))
        .unwrap_or_else(|| panic!("no clonemedium: {calls:?}"));
    assert_eq!(clone[2], disk_text, "{clone:?}");
    assert!(clone[3].ends_with("out/kiln-cp.vdi"), "{clone:?}");
    assert!(
        !calls
            .iter()
            .any(|c| c.first().is_some_and(|c| c == "createmedium")),
        "the boot disk is not created empty: {calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.first().is_some_and(|c| c == "closemedium") && c.contains(&disk_text)),
        "the checkpoint is closed again: {calls:?}"
    );
    let hdds = vbox
        .cli
        .run(&["list".into(), "hdds".into()])
        .expect("list hdds");
    assert!(!format!("{hdds:?}").contains("checkpoints"), "{hdds:?}");
    assert!(disk.is_file(), "the checkpoint stays in the cache");

    // A damaged checkpoint is never cloned: removed, and the build installs.
    std::fs::remove_dir_all(disk.parent().expect("dir")).expect("rm");
    let damaged = plant(&vbox, &key, true);
    let calls_before = vbox.calls().len();
    let t = text(&build(&vbox, &["-force"], NO_VM));
    assert!(
        t.contains("is damaged") && t.contains("installing again"),
        "{t}"
    );
    assert!(!damaged.exists(), "the damaged checkpoint is removed");
    let calls = &vbox.calls()[calls_before..];
    assert!(
        calls
            .iter()
            .any(|c| c.first().is_some_and(|c| c == "createmedium")),
        "{calls:?}"
    );
}

/// What the provisioner leaves, printed by the build for comparison.
const PROVISION: &[&str] = &[
    "echo provisioned > /root/marker",
    "echo SUMS $(cat /root/marker /etc/hostname /etc/passwd | sha256sum)",
];

use crate::checkpoint::{checkpoints_in, sums};

fn ran(calls: &[Vec<String>], command: &str) -> bool {
    calls
        .iter()
        .any(|c| c.first().is_some_and(|c| c == command))
}

#[test]
fn vm_virtualbox_iso_installs_once_then_resumes_from_the_checkpoint() {
    let _vm = vm_lock();
    let vbox = FakeVbox::new();
    let (iso, sum) = tiny_iso();
    let tiny = (iso.as_path(), sum.as_str());
    let cache = vbox.path("cache");

    // The first build installs and saves the checkpoint through a snapshot.
    write_template(&vbox, tiny, serde_json::json!({}), PROVISION);
    let out = build(&vbox, &[], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("Saved the install checkpoint"), "{t}");
    let full = sums(&t);
    let saved = checkpoints_in(&cache);
    assert_eq!(saved.len(), 1, "{saved:?}");
    let checkpoint = cache.join("checkpoints").join(&saved[0]).join("disk.vdi");
    assert!(checkpoint.is_file());
    let calls = vbox.calls();
    for command in [
        "snapshot",
        "clonemedium",
        "closemedium",
        "keyboardputscancode",
    ] {
        assert!(
            ran(&calls, command) || calls.iter().flatten().any(|a| a == command),
            "{command}: {calls:?}"
        );
    }
    let hdds = vbox
        .cli
        .run(&["list".into(), "hdds".into()])
        .expect("list hdds");
    assert!(
        !format!("{hdds:?}").contains("checkpoints"),
        "VirtualBox does not keep the cache's file registered: {hdds:?}"
    );

    // A provisioner-only change resumes: no boot command, the same files.
    write_template(
        &vbox,
        tiny,
        serde_json::json!({}),
        &[PROVISION[0], PROVISION[1], "echo second"],
    );
    let before = vbox.calls().len();
    let out = build(&vbox, &["-force"], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("Resuming from the install checkpoint"), "{t}");
    assert!(t.contains("no boot command to type"), "{t}");
    assert!(t.contains("second"), "{t}");
    assert_eq!(
        sums(&t),
        full,
        "the resumed build provisions the same system"
    );
    let calls = &vbox.calls()[before..];
    assert!(!ran(calls, "snapshot"), "no second checkpoint: {calls:?}");
    assert!(
        !calls
            .iter()
            .any(|c| c.get(2).is_some_and(|s| s == "keyboardputscancode")),
        "nothing typed: {calls:?}"
    );
    assert!(
        out_ova_or_ovf(&vbox.path("out")),
        "the artifact is exported"
    );

    // Unchanged: up to date, not one VBoxManage call.
    let before = vbox.calls().len();
    let started = std::time::Instant::now();
    let out = build(&vbox, &[], &[]);
    let took = started.elapsed();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("Up to date"), "{t}");
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    assert_eq!(vbox.calls().len(), before, "{t}");

    // A changed boot command does not match (stopped before a VM boots).
    write_template(
        &vbox,
        tiny,
        serde_json::json!({"boot_command": ["install url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.cfg quiet<enter>"]}),
        PROVISION,
    );
    let t = text(&build(&vbox, &["-force"], NO_VM));
    assert!(t.contains("No install checkpoint yet"), "{t}");
    assert!(!t.contains("Resuming"), "{t}");
    assert_eq!(checkpoints_in(&cache), saved);
}

fn out_ova_or_ovf(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            e.path()
                .extension()
                .is_some_and(|x| x == "ovf" || x == "ova")
        })
}
