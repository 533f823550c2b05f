//! `kiln build` of virtualbox-iso templates against the simulated
//! VBoxManage (tests/fake-vboxmanage): a whole build of the tiny installer,
//! the exact VBoxManage calls it makes, and the ways it can fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::virtualbox::FakeVbox;
use crate::vm::{
    READ_CD, READ_FLOPPY, build_in, interrupt_when_checking, private_mounts_work,
    qemu_processes_with, run_on_small_tmpfs, text, tiny_iso, vm_lock,
};
use kiln::hypervisor::virtualbox::VBoxManage;

/// The HTTP server's port in these builds: fixed so the boot command (typed
/// as scancodes) is the same in every run, and below Linux's ephemeral
/// range so no other test's socket can hold it.
const HTTP_PORT: u16 = 8719;

/// VirtualBox's version as the simulator prints it.
const VERSION: &str = "7.0.20";

/// How the guest ends its part of a build.
#[derive(Clone, Copy, PartialEq)]
enum Guest {
    /// Reboots into the installed system and is reached over SSH.
    Ssh,
    /// Powers off when installed; there is no communicator.
    PowersOffAlone,
    /// No communicator and no shutdown settings: the build goes straight
    /// from the boot command to stopping the VM.
    Unreached,
}

/// A virtualbox-iso template for the tiny installer; `extra` adds builder
/// keys (each ending in a comma), `rest` top-level sections after
/// `builders` (each starting with a comma).
fn template(vm_name: &str, extra: &str, rest: &str) -> String {
    template_for(Guest::Ssh, vm_name, extra, rest)
}

fn template_for(guest: Guest, vm_name: &str, extra: &str, rest: &str) -> String {
    let (iso, sum) = tiny_iso();
    let (finish, communicator) = match guest {
        Guest::Ssh => (
            "reboot",
            r#""ssh_username": "root", "ssh_password": "kiln-tiny", "ssh_timeout": "4m",
    "shutdown_command": "poweroff""#,
        ),
        Guest::PowersOffAlone => (
            "poweroff",
            r#""communicator": "none", "disable_shutdown": true, "shutdown_timeout": "3m""#,
        ),
        Guest::Unreached => ("poweroff", r#""communicator": "none""#),
    };
    format!(
        r#"{{
  "builders": [{{
    "type": "virtualbox-iso", "vm_name": "{vm_name}", "guest_os_type": "Linux_64",
    "iso_url": "{iso}", "iso_checksum": "sha256:{sum}",
    "memory": 256, "disk_size": 1024, "headless": true,
    "http_content": {{"/install.cfg": "disk=auto\nusername=root\npassword=kiln-tiny\nfinish={finish}\n"}},
    "http_port_min": {HTTP_PORT}, "http_port_max": {HTTP_PORT},
    "boot_wait": "2s",
    "boot_command": ["install url=http://{{{{ .HTTPIP }}}}:{{{{ .HTTPPort }}}}/install.cfg<enter>"],
    {extra}
    {communicator}
  }}]{rest}
}}"#,
        iso = iso.display()
    )
}

/// `kiln build` of `template` in the fake VirtualBox's directory, with its
/// VBoxManage first on PATH.
fn build(vbox: &FakeVbox, template_text: &str, flags: &[&str]) -> Command {
    let dir = vbox.path("");
    std::fs::write(dir.join("vbox.json"), template_text).expect("template");
    let path = format!(
        "{}:{}",
        vbox.path("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = build_in(&dir, flags, Path::new("vbox.json"));
    cmd.env("PATH", path)
        .env("NO_COLOR", "1")
        .env_remove("VBOX_INSTALL_PATH")
        .env_remove("VBOX_MSI_INSTALL_PATH");
    cmd
}

fn registered(vbox: &FakeVbox) -> Vec<String> {
    vbox.cli
        .list_vms()
        .expect("list vms")
        .into_iter()
        .map(|vm| vm.name)
        .collect()
}

/// One member of a tar archive as text (`flags`: `-xOf`, or `-xzOf` gzipped).
fn tar_member(archive: &Path, member: &str, flags: &str) -> String {
    let out = Command::new("tar")
        .arg(flags)
        .arg(archive)
        .arg(member)
        .output()
        .expect("tar runs");
    assert!(
        out.status.success(),
        "{member} in {}: {}",
        archive.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sha256_hex(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).expect("read");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The guest additions ISO the simulated VirtualBox "installed": what
/// `list systemproperties` reports. Any bytes do: the build only moves it.
fn install_guest_additions(vbox: &FakeVbox) -> PathBuf {
    let iso = vbox.path("home/additions/VBoxGuestAdditions.iso");
    std::fs::create_dir_all(iso.parent().expect("parent")).expect("dir");
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(&iso, bytes).expect("guest additions");
    iso
}

/// The calls log with this run's variable parts named: the work directory,
/// the tiny ISO, the `cd_files` and floppy images, the SSH and VRDP host
/// ports, the install checkpoint's partial directory and key. Repeated
/// state polls (their number depends on timing) are collapsed into one
/// line.
fn normalised_calls(vbox: &FakeVbox) -> String {
    let work = std::fs::canonicalize(vbox.path("")).expect("work dir");
    let work = work.display().to_string();
    let (iso, _) = tiny_iso();
    let iso = std::fs::canonicalize(iso)
        .expect("iso")
        .display()
        .to_string();
    let mut lines: Vec<String> = Vec::new();
    for argv in vbox.calls() {
        let mut previous_was_vrdeport = false;
        let line = argv
            .iter()
            .map(|a| {
                let a = a.replace(&iso, "$TINY_ISO").replace(&work, "$WORK");
                // Scratch folders are `kiln-<pid>-<what>-XXXXXX` (host::scratch).
                if a.contains("/kiln-") && a.contains("-cd-") && a.ends_with("/cd.iso") {
                    return "$CD_ISO".to_owned();
                }
                if a.contains("/kiln-") && a.contains("-floppy-") && a.ends_with("/floppy.img") {
                    return "$FLOPPY".to_owned();
                }
                // The install checkpoint being written, and its key.
                if a.contains("/checkpoints/.partial-") && a.ends_with("/disk.vdi") {
                    return "$CHECKPOINT_PARTIAL/disk.vdi".to_owned();
                }
                if a.starts_with("kiln install checkpoint ") {
                    return "'kiln install checkpoint $KEY'".to_owned();
                }
                if previous_was_vrdeport {
                    previous_was_vrdeport = false;
                    return "$VRDP_PORT".to_owned();
                }
                previous_was_vrdeport = a == "--vrdeport";
                match a.strip_prefix("packercomm,tcp,127.0.0.1,") {
                    Some(rest) => format!(
                        "packercomm,tcp,127.0.0.1,$SSH_PORT,{}",
                        rest.split_once(',').map(|(_, r)| r).unwrap_or_default()
                    ),
                    None if a.contains(' ') || a.is_empty() => format!("'{a}'"),
                    None => a,
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        if lines.last() != Some(&line) {
            lines.push(line);
        }
    }
    lines.join("\n") + "\n"
}

#[test]
fn vm_virtualbox_iso_build_makes_an_ova_and_a_box_through_the_simulated_vboxmanage() {
    let _vm = vm_lock();
    let vbox = FakeVbox::new();
    let additions = install_guest_additions(&vbox);
    let template = template(
        "kiln-vbox-test",
        r#""format": "ova", "guest_additions_path": "VBoxGuestAdditions_{{ .Version }}.iso",
           "cd_content": {"hello.txt": "read from the cd_files CD", "meta-data": "instance-id: vbox"},
           "cd_label": "cidata",
           "floppy_content": {"hello.txt": "read from the floppy", "meta-data": "instance-id: vbox-floppy",
                              "drivers/net/setup.inf": "[vbox floppy driver]"},
           "vboxmanage": [["modifyvm", "{{ .Name }}", "--vram", "16"]],
           "vboxmanage_post": [["modifyvm", "{{ .Name }}", "--description", "built by kiln"]],"#,
        &format!(
            r#",
  "provisioners": [{{"type": "shell", "inline": [
    "echo provisioned in the simulated VirtualBox",
    "echo version $(cat .vbox_version)",
    "sha256sum VBoxGuestAdditions_$(cat .vbox_version).iso",
    {read_floppy},
    {read_cd}]}}],
  "post-processors": [{{"type": "vagrant", "output": "vbox.box", "keep_input_artifact": true}}]"#,
            read_cd = serde_json::to_string(READ_CD).expect("json"),
            read_floppy = serde_json::to_string(READ_FLOPPY).expect("json")
        ),
    );
    let out = build(&vbox, &template, &[]).output().expect("kiln runs");
    let t = text(&out);
    let calls = normalised_calls(&vbox);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("provisioned in the simulated VirtualBox"), "{t}");
    assert!(
        t.contains("read from the cd_files CD") && t.contains("instance-id: vbox"),
        "the guest reads the cd_files CD: {t}"
    );
    assert!(
        t.contains("read from the floppy")
            && t.contains("instance-id: vbox-floppy")
            && t.contains("[vbox floppy driver]"),
        "the guest reads the floppy in its floppy drive: {t}"
    );
    let floppy = crate::vm::floppy_path_in(&t);
    assert!(
        !floppy.exists(),
        "the floppy is removed: {}",
        floppy.display()
    );
    let rdp_port = t
        .split("connect an RDP client (no password) to rdp://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .and_then(|port| port.trim().parse::<u16>().ok());
    assert!(
        rdp_port.is_some_and(|p| (5900..=6000).contains(&p)),
        "a headless build says where to watch it, on a port of vrdp_port_min..max: {t}"
    );
    assert!(
        t.contains(&format!("version {VERSION}")),
        "the version file: {t}"
    );
    assert!(
        t.contains(&format!(
            "{}  VBoxGuestAdditions_{VERSION}.iso",
            sha256_hex(&additions)
        )),
        "the guest additions arrive whole, under the interpolated name: {t}"
    );

    // The OVA alone is left in the output directory: the VM and its disk
    // were deleted with it.
    let output = vbox.path("output-virtualbox-iso");
    let mut left: Vec<String> = std::fs::read_dir(&output)
        .expect("output")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    // Beside it, the build record that makes the next run "up to date".
    assert_eq!(left, [".kiln-build.json", "kiln-vbox-test.ova"], "{t}");
    let ova = output.join("kiln-vbox-test.ova");
    crate::support::ova_members(&ova);
    // The disk inside is one qemu-img reads: the installed 1 GiB disk.
    let unpacked = tempfile::tempdir().expect("tempdir");
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&ova)
        .arg("-C")
        .arg(unpacked.path())
        .status()
        .expect("tar runs");
    assert!(status.success());
    let info = Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(unpacked.path().join("kiln-vbox-test-disk001.vmdk"))
        .output()
        .expect("qemu-img runs");
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("qemu-img JSON");
    assert_eq!(info["format"], "vmdk", "{info}");
    assert_eq!(info["virtual-size"], 1024 * 1024 * 1024, "{info}");
    let ovf = tar_member(&ova, "kiln-vbox-test.ovf", "-xOf");
    assert!(ovf.contains("MACAddress=\"080027"), "{ovf}");
    assert!(
        !ovf.contains("packercomm"),
        "the build's SSH forward is deleted before the export: {ovf}"
    );

    // The box made from the OVA is one Vagrant accepts.
    let boxfile = vbox.path("vbox.box");
    let vagrant_home = tempfile::tempdir().expect("tempdir");
    let list = crate::support::vagrant_box_add(vagrant_home.path(), "kiln/vbox", &boxfile);
    assert!(
        list.contains("kiln/vbox") && list.contains("virtualbox"),
        "{list}"
    );
    let vagrantfile = tar_member(&boxfile, "Vagrantfile", "-xzOf");
    assert!(
        vagrantfile.contains("config.vm.base_mac = \"080027"),
        "{vagrantfile}"
    );

    assert!(registered(&vbox).is_empty(), "the VM is unregistered");
    assert!(qemu_processes_with("kiln-vbox-test").is_empty());
    insta::assert_snapshot!("virtualbox_iso_full_build_calls", calls);
}

#[test]
fn vm_ctrl_c_while_waiting_for_ssh_unregisters_the_vm_and_deletes_its_files() {
    let _vm = vm_lock();
    let vbox = FakeVbox::new();
    let additions = install_guest_additions(&vbox);
    let template = template(
        "kiln-vbox-sigint",
        r#""guest_additions_mode": "attach","#,
        "",
    );
    let cmd = build(&vbox, &template, &[]);
    let additions_text = additions.display().to_string();
    let (out, took) = interrupt_when_checking(cmd, "Waiting for SSH", "kiln-vbox-sigint", || {
        // The guest additions are in the running VM's second DVD drive.
        let running = registered(&vbox);
        let qemu = qemu_processes_with(&additions_text);
        match (running.as_slice(), qemu.len()) {
            ([name], 1) if name == "kiln-vbox-sigint" => Ok(()),
            _ => Err(format!(
                "registered: {running:?}, qemu with the guest additions: {qemu:?}"
            )),
        }
    });
    let t = text(&out);
    assert_ne!(out.status.code(), Some(0), "{t}");
    assert!(took < Duration::from_secs(30), "cleanup took {took:?}");
    assert!(registered(&vbox).is_empty(), "unregistered: {t}");
    assert!(
        !vbox.path("output-virtualbox-iso").exists(),
        "the output directory (VM folder, disk) is removed: {t}"
    );
    let calls = vbox.calls();
    let storage = |port: &str, device: &str| {
        calls.iter().any(|c| {
            c.first().is_some_and(|c| c == "storageattach")
                && c.windows(2).any(|w| w == ["--port", port])
                && c.windows(2).any(|w| w == ["--device", device])
                && c.last().is_some_and(|m| m == &additions_text)
        })
    };
    assert!(storage("1", "0"), "guest additions on IDE 1:0: {calls:?}");
    assert!(
        calls
            .iter()
            .any(|c| c.first().is_some_and(|c| c == "unregistervm")
                && c.iter().any(|a| a == "--delete")),
        "{calls:?}"
    );
    assert!(additions.is_file(), "VirtualBox's own ISO is left alone");
}

#[test]
fn vm_keep_registered_skip_export_and_bundle_iso_leave_the_vm_for_the_user() {
    let _vm = vm_lock();
    let vbox = FakeVbox::new();
    let template = template_for(
        Guest::PowersOffAlone,
        "kiln-vbox-kept",
        r#""keep_registered": true, "skip_export": true, "bundle_iso": true,
           "guest_additions_mode": "disable", "virtualbox_version_file": "","#,
        "",
    );
    let out = build(&vbox, &template, &[]).output().expect("kiln runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("skip_export"), "{t}");
    assert_eq!(registered(&vbox), ["kiln-vbox-kept"], "{t}");
    let state = vbox.cli.vm_state("kiln-vbox-kept").expect("state");
    assert!(!state.is_running(), "powered off: {state:?}");
    let info = vbox
        .cli
        .showvminfo_machinereadable("kiln-vbox-kept")
        .expect("showvminfo");
    let (iso, _) = tiny_iso();
    let iso = std::fs::canonicalize(iso).expect("iso");
    assert_eq!(
        info.get("IDE Controller-0-1").map(String::as_str),
        iso.to_str(),
        "bundle_iso leaves the boot ISO in its drive"
    );
    assert_eq!(info.get("vrde").map(String::as_str), Some("on"), "VRDP");
    assert_eq!(
        info.get("vrdeaddress").map(String::as_str),
        Some("127.0.0.1")
    );
    let calls = vbox.calls();
    for absent in ["export", "unregistervm"] {
        assert!(
            !calls.iter().any(|c| c.first().is_some_and(|c| c == absent)),
            "no {absent}: {calls:?}"
        );
    }
    assert!(
        vbox.path("output-virtualbox-iso/kiln-vbox-kept.vdi")
            .is_file(),
        "the disk stays with the VM"
    );
    assert!(qemu_processes_with("kiln-vbox-kept").is_empty());
}

#[test]
fn vm_without_a_shutdown_command_the_vm_is_powered_off_or_times_out_on_acpi() {
    let _vm = vm_lock();
    // Neither shutdown_command nor acpi_shutdown: pulled out, as in Packer.
    let vbox = FakeVbox::new();
    let template = template_for(
        Guest::Unreached,
        "kiln-vbox-plug",
        r#""guest_additions_mode": "disable", "virtualbox_version_file": "", "skip_export": true,"#,
        "",
    );
    let out = build(&vbox, &template, &[]).output().expect("kiln runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("powering the VM off"), "{t}");
    let calls = vbox.calls();
    assert!(
        calls.iter().any(|c| c.ends_with(&["poweroff".to_owned()])),
        "{calls:?}"
    );
    assert!(
        !calls
            .iter()
            .any(|c| c.iter().any(|a| a == "acpipowerbutton"))
    );

    // acpi_shutdown, but the installer ignores the power button: the
    // timeout is an error, and the VM still goes.
    let vbox = FakeVbox::new();
    let template = template_for(
        Guest::Unreached,
        "kiln-vbox-acpi",
        r#""guest_additions_mode": "disable", "virtualbox_version_file": "",
           "acpi_shutdown": true, "shutdown_timeout": "3s","#,
        "",
    );
    let (_, t) = failing_build(&vbox, &template);
    assert!(t.contains("did not stop within shutdown_timeout"), "{t}");
    assert!(
        vbox.calls()
            .iter()
            .any(|c| c.iter().any(|a| a == "acpipowerbutton")),
        "{t}"
    );
    assert!(registered(&vbox).is_empty(), "{t}");
    assert!(qemu_processes_with("kiln-vbox-acpi").is_empty(), "{t}");
}

/// Issue #16: VirtualBox suspends a VM whose host disk is full and logs
/// the runtime error `DrvVD_DISKFULL` in VBox.log (the simulator does as
/// well: its qemu stops on ENOSPC). kiln must fail at once, naming the
/// disk, the error and the free space, as it does for QEMU, rather than
/// wait out `ssh_timeout`.
#[test]
fn vm_a_full_host_disk_fails_the_build_at_once_naming_the_disk() {
    if !private_mounts_work() {
        eprintln!("\n!!! SKIPPED: `unshare -m` does not work here (needs root)\n");
        return;
    }
    let _vm = vm_lock();
    let vbox = FakeVbox::new();
    let template = template(
        "kiln-vbox-full",
        r#""output_directory": "small/output-vbox", "ssh_timeout": "30m",
           "guest_additions_mode": "disable","#,
        "",
    )
    .replace(r#""ssh_timeout": "4m","#, "");
    std::fs::create_dir(vbox.path("small")).expect("mkdir");
    let inner = build(&vbox, &template, &[]);
    // A private tmpfs of 6 MiB: the empty disk and the VM's files fit, the
    // install's writes do not. Far below ssh_timeout: the install fills the
    // disk within a minute or two under TCG, and the VM's state is polled
    // every half second.
    let bound = Duration::from_secs(300);
    let started = std::time::Instant::now();
    let (out, finished) = run_on_small_tmpfs(&inner, &vbox.path(""), bound);
    let t = text(&out);
    eprintln!("kiln finished after {:?}", started.elapsed());
    assert!(finished, "kiln was still waiting after {bound:?}:\n{t}");
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("the VM stopped before SSH became available"),
        "{t}"
    );
    assert!(
        t.contains("small/output-vbox/kiln-vbox-full.vdi is full: no space left on device"),
        "{t}"
    );
    assert!(
        t.contains(" free on ") && t.contains("small/output-vbox)"),
        "{t}"
    );
    assert!(t.contains("output_directory on a larger filesystem"), "{t}");
    assert!(registered(&vbox).is_empty(), "unregistered: {t}");
    assert!(
        qemu_processes_with("kiln-vbox-full").is_empty(),
        "the VM is killed"
    );
}

fn failing_build(vbox: &FakeVbox, template_text: &str) -> (Output, String) {
    let out = build(vbox, template_text, &[]).output().expect("kiln runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    (out, t)
}

#[test]
fn without_vboxmanage_the_build_says_how_to_install_virtualbox() {
    let vbox = FakeVbox::new();
    let mut cmd = build(&vbox, &template("kiln-vbox-none", "", ""), &[]);
    // A PATH with every usual tool but no VBoxManage.
    cmd.env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    let out = cmd.output().expect("kiln runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("VBoxManage was not found"), "{t}");
    assert!(t.contains("install VirtualBox"), "{t}");
    assert!(t.contains("VBOX_INSTALL_PATH"), "{t}");
    assert!(!vbox.path("output-virtualbox-iso").exists(), "{t}");
}

/// A build with a CD whose `vboxmanage` row VBoxManage refuses, after the
/// VM, its disk and its DVDs exist and before it starts.
fn failing_row_template(vm_name: &str) -> String {
    template(
        vm_name,
        r#""guest_additions_mode": "disable", "cd_content": {"meta-data": "x"},
           "floppy_content": {"ks.cfg": "text"},
           "vboxmanage": [["modifyvm", "{{ .Name }}", "--no-such-option", "on"]],"#,
        "",
    )
}

#[test]
fn vm_a_failing_vboxmanage_call_shows_its_stderr_and_removes_the_vm() {
    // Reaches the HTTP server (HTTP_PORT): takes turns with the VM tests.
    let _vm = vm_lock();
    let vbox = FakeVbox::new();
    let template = failing_row_template("kiln-vbox-fail");
    let (_, t) = failing_build(&vbox, &template);
    let cd = vbox
        .calls()
        .into_iter()
        .filter_map(|c| c.last().cloned())
        .find(|m| m.ends_with("/cd.iso"))
        .map(PathBuf::from)
        .expect("the CD was attached");
    assert!(
        cd.parent().is_some_and(|d| !d.exists()),
        "the CD's folder is removed: {}",
        cd.display()
    );
    let floppy = crate::vm::floppy_path_in(&t);
    assert!(
        floppy.parent().is_some_and(|d| !d.exists()),
        "the floppy's folder is removed: {}",
        floppy.display()
    );
    assert_eq!(
        t.matches("Unknown option: --no-such-option").count(),
        1,
        "the stderr is shown once, not once per error layer: {t}"
    );
    assert!(
        t.contains("VBoxManage: error: Unknown option: --no-such-option"),
        "the simulator's stderr is shown: {t}"
    );
    assert!(registered(&vbox).is_empty(), "{t}");
    assert!(!vbox.path("output-virtualbox-iso").exists(), "{t}");
    assert!(
        std::fs::read_dir(vbox.path("home/VirtualBox VMs"))
            .map(|d| d.count() == 0)
            .unwrap_or(true),
        "no VM folder is left"
    );
}

#[test]
fn vm_on_error_abort_leaves_the_failed_vm_registered_for_inspection() {
    let _vm = vm_lock();
    let vbox = FakeVbox::new();
    let template = failing_row_template("kiln-vbox-abort");
    let out = build(&vbox, &template, &["-on-error=abort"])
        .output()
        .expect("kiln runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("leaving kiln-vbox-abort registered"), "{t}");
    assert_eq!(registered(&vbox), ["kiln-vbox-abort"], "{t}");
    assert!(
        vbox.path("output-virtualbox-iso/kiln-vbox-abort.vdi")
            .is_file(),
        "the disk is kept: {t}"
    );
    let info = vbox
        .cli
        .showvminfo_machinereadable("kiln-vbox-abort")
        .expect("showvminfo");
    let cd = info
        .get("IDE Controller-1-1")
        .map(PathBuf::from)
        .expect("the cd_files CD is attached");
    assert!(cd.is_file(), "the CD the kept VM uses is kept: {t}");
    assert!(t.contains("keeping the CD in"), "{t}");
    if let Some(dir) = cd.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
    let floppy = info
        .get("Floppy Controller-0-0")
        .map(PathBuf::from)
        .expect("the floppy is attached");
    assert!(floppy.is_file(), "the floppy the kept VM uses is kept: {t}");
    assert!(t.contains("keeping the floppy in"), "{t}");
    if let Some(dir) = floppy.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_vm_of_the_same_name_is_refused_and_left_registered() {
    let vbox = FakeVbox::new();
    vbox.cli
        .run(&[
            "createvm".into(),
            "--name".into(),
            "kiln-vbox-taken".into(),
            "--register".into(),
        ])
        .expect("createvm");
    let template = template(
        "kiln-vbox-taken",
        r#""guest_additions_mode": "disable","#,
        "",
    );
    let (_, t) = failing_build(&vbox, &template);
    assert!(t.contains("already exists"), "{t}");
    assert_eq!(
        registered(&vbox),
        ["kiln-vbox-taken"],
        "someone else's VM is not deleted: {t}"
    );
}

#[test]
fn a_wrong_guest_additions_checksum_fails_before_any_vm_exists() {
    let vbox = FakeVbox::new();
    let additions = install_guest_additions(&vbox);
    let template = template(
        "kiln-vbox-sum",
        &format!(
            r#""guest_additions_url": "{}", "guest_additions_sha256": "{}","#,
            additions.display(),
            "0".repeat(64)
        ),
        "",
    );
    let (_, t) = failing_build(&vbox, &template);
    assert!(t.contains("cannot get the guest additions"), "{t}");
    assert!(t.contains("checksum mismatch"), "{t}");
    assert!(
        t.contains(&sha256_hex(&additions)),
        "the actual digest is named: {t}"
    );
    assert!(
        !vbox
            .calls()
            .iter()
            .any(|c| c.first().is_some_and(|c| c == "createvm")),
        "no VM was created"
    );
}

#[test]
fn offline_guest_additions_name_what_to_add_to_the_cache() {
    // No ISO installed with this VirtualBox and -offline: the build cannot
    // reach virtualbox.org and says what to put in the cache instead.
    let vbox = FakeVbox::new();
    let out = build(&vbox, &template("kiln-vbox-offline", "", ""), &["-offline"])
        .output()
        .expect("kiln runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!(
            "https://download.virtualbox.org/virtualbox/{VERSION}/VBoxGuestAdditions_{VERSION}.iso"
        )),
        "{t}"
    );
    assert!(t.contains("kiln cache add"), "{t}");
    assert!(registered(&vbox).is_empty(), "{t}");
}

/// `boot_steps` on virtualbox-iso: the installer's command typed as two
/// described steps, each announced before its keys, reaches the guest (it
/// installs and powers off by itself), as scancodes through VBoxManage.
#[test]
fn vm_boot_steps_are_announced_and_typed_as_scancodes() {
    let _vm = vm_lock();
    let vbox = FakeVbox::new();
    let template = template_for(
        Guest::PowersOffAlone,
        "kiln-vbox-steps",
        r#""guest_additions_mode": "disable", "virtualbox_version_file": "", "skip_export": true,"#,
        "",
    )
    .replace(
        r#""boot_command": ["install url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.cfg<enter>"],"#,
        r#""boot_steps": [
      ["install url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.cfg", "Type the installer's command"],
      ["<enter>", "Start the install"]
    ],"#,
    );
    assert!(template.contains("boot_steps"), "{template}");
    let out = build(&vbox, &template, &[]).output().expect("kiln runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let first = t.find("Boot step 1/2: Type the installer's command");
    let second = t.find("Boot step 2/2: Start the install");
    assert!(
        matches!((first, second), (Some(a), Some(b)) if a < b),
        "{t}"
    );
    let scancodes = vbox
        .calls()
        .iter()
        .filter(|c| c.iter().any(|a| a == "keyboardputscancode"))
        .count();
    assert!(scancodes >= 2, "{t}");
    assert!(qemu_processes_with("kiln-vbox-steps").is_empty(), "{t}");
}
