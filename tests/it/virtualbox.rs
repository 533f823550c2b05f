//! The VirtualBox driver against the simulated VBoxManage
//! (`tests/fake-vboxmanage`), which keeps its registry in a temporary
//! directory and runs VMs as TCG QEMU processes; one test boots the tiny
//! installer through it and types the boot line as scancodes.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kiln::bootcmd::scancode::MAX_CODES_PER_CALL;
use kiln::hypervisor::virtualbox::command::{
    self, BootCommandStep, DiskSpec, IsoAttachment, NatRule, StorageBus, VBoxCommand, VmSpec,
};
use kiln::hypervisor::virtualbox::{VBoxError, VBoxManage, VBoxManageCli, VmState};

/// A private VirtualBox: a `bin/VBoxManage` wrapper that runs the simulator
/// with `FAKE_VBOX_HOME` pointing into this directory.
pub(crate) struct FakeVbox {
    dir: tempfile::TempDir,
    pub(crate) cli: VBoxManageCli,
}

impl FakeVbox {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("bin dir");
        let wrapper = bin.join("VBoxManage");
        crate::support::write_executable(
            &wrapper,
            &format!(
                "#!/bin/sh\nFAKE_VBOX_HOME='{}' exec '{}' \"$@\"\n",
                dir.path().join("home").display(),
                env!("CARGO_BIN_EXE_fake-vboxmanage")
            ),
        );
        let path = bin.clone().into_os_string();
        let cli = VBoxManageCli::locate_with(&|k| (k == "PATH").then(|| path.clone()))
            .expect("finds VBoxManage on PATH");
        Self { dir, cli }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Every recorded invocation's argv.
    pub(crate) fn calls(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.path("home/calls.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("argv JSON"))
            .collect()
    }

    fn run_all(&self, commands: &[VBoxCommand]) {
        for c in commands {
            self.cli
                .run_command(c)
                .unwrap_or_else(|e| panic!("{c}: {e}"));
        }
    }
}

fn argv(c: &VBoxCommand) -> Vec<String> {
    c.args()
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

fn vm_spec(name: &str) -> VmSpec {
    VmSpec {
        name: name.into(),
        os_type: "Debian_64".into(),
        cpus: 1,
        memory_mib: 256,
        usb: false,
        audio: "none".into(),
        chipset: "piix3".into(),
        firmware: "bios".into(),
        nic_type: None,
        gfx_controller: None,
        gfx_vram_mib: None,
        accelerate_3d: None,
        efi_resolution: None,
        nested_virt: None,
        rtc_utc: None,
        audio_controller: None,
        usb_controllers: Vec::new(),
    }
}

fn disk_spec(path: PathBuf) -> DiskSpec {
    DiskSpec {
        path,
        size_mib: 64,
        bus: StorageBus::Ide,
        iso_bus: StorageBus::Ide,
        additions_bus: None,
        cd_files: false,
        sata_port_count: 1,
        nvme_port_count: 1,
        nonrotational: false,
        discard: false,
        additional: Vec::new(),
    }
}

#[test]
fn version_of_the_simulator() {
    let vbox = FakeVbox::new();
    let v = vbox.cli.version().expect("version");
    assert_eq!(v.number(), "7.0.20");
    assert_eq!(v.revision, Some(163906));
    assert_eq!(vbox.calls(), vec![vec!["--version".to_owned()]]);
}

#[test]
fn create_register_showvminfo_round_trip() {
    let vbox = FakeVbox::new();
    let name = "kiln test vm";
    let disk = vbox.path("out/disk.vdi");
    std::fs::create_dir_all(vbox.path("out")).expect("out dir");
    let iso = vbox.path("boot.iso");
    std::fs::write(&iso, vec![0u8; 4096]).expect("iso");

    let mut commands = vm_spec(name).create_commands();
    commands.extend(disk_spec(disk.clone()).create_commands(name));
    commands.push(IsoAttachment::boot_iso(StorageBus::Ide).attach(name, &iso));
    commands.extend(NatRule::ssh(2222, 22).add_commands(name));
    vbox.run_all(&commands);

    assert!(disk.is_file(), "createmedium makes the disk file");
    let info = vbox.cli.showvminfo_machinereadable(name).expect("info");
    assert_eq!(info["name"], name);
    assert_eq!(info["ostype"], "Debian (64-bit)");
    assert_eq!(info["memory"], "256");
    assert_eq!(info["cpus"], "1");
    assert_eq!(info["boot1"], "disk");
    assert_eq!(info["boot2"], "dvd");
    assert_eq!(info["nic1"], "nat");
    assert_eq!(info["Forwarding(0)"], "packercomm,tcp,127.0.0.1,2222,,22");
    assert_eq!(info["IDE Controller-0-0"], disk.to_string_lossy());
    assert_eq!(info["IDE Controller-0-1"], iso.to_string_lossy());
    assert!(info["macaddress1"].starts_with("080027"), "{info:?}");
    assert!(info.contains_key("VMStateChangeTime"));
    assert_eq!(vbox.cli.vm_state(name).expect("state"), VmState::PowerOff);

    let vms = vbox.cli.list_vms().expect("list");
    assert_eq!(vms.len(), 1);
    assert_eq!(vms[0].name, name);
    assert_eq!(vms[0].uuid, info["UUID"]);

    // Every call is logged, in order, exactly as kiln built it.
    let logged = vbox.calls();
    let built: Vec<Vec<String>> = commands.iter().map(argv).collect();
    assert_eq!(logged[..built.len()], built[..]);

    // A second rule of the same name is refused; deleting it frees the name (the export step deletes it).
    let nat = NatRule::ssh(2222, 22);
    let again = vbox
        .cli
        .run_command(&nat.add_commands(name)[1])
        .expect_err("duplicate rule");
    assert!(
        again
            .stderr()
            .is_some_and(|s| s.contains("A NAT rule of this name already exists")),
        "{again}"
    );
    vbox.run_all(&[nat.delete_command(name)]);
    let info = vbox.cli.showvminfo_machinereadable(name).expect("info");
    assert!(!info.contains_key("Forwarding(0)"));

    vbox.run_all(&[command::unregister_delete(name)]);
    assert!(vbox.cli.list_vms().expect("list").is_empty());
    assert!(!disk.exists(), "--delete removes the attached disk");
    assert!(iso.exists(), "but not the ISO");
}

#[test]
fn failures_carry_vboxmanages_stderr() {
    let vbox = FakeVbox::new();
    let create = &vm_spec("twice").create_commands()[0];
    vbox.run_all(std::slice::from_ref(create));
    let err = vbox.cli.run_command(create).expect_err("exists already");
    let VBoxError::Failed { status, stderr, .. } = &err else {
        panic!("not Failed: {err:?}");
    };
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.starts_with("VBoxManage: error: Machine settings file"),
        "{stderr}"
    );
    let shown = err.to_string();
    assert!(shown.contains("createvm --name twice"), "{shown}");
    assert!(shown.contains("already exists"), "{shown}");

    let bad = vbox
        .cli
        .run(&[
            OsString::from("modifyvm"),
            "twice".into(),
            "--memory".into(),
            "lots".into(),
        ])
        .expect_err("not a number");
    assert!(bad.to_string().contains("Invalid number 'lots'"), "{bad}");
}

#[test]
fn unknown_vm_is_its_own_error() {
    let vbox = FakeVbox::new();
    let err = vbox.cli.vm_state("nope").expect_err("no such VM");
    let VBoxError::UnknownVm { name, stderr } = &err else {
        panic!("not UnknownVm: {err:?}");
    };
    assert_eq!(name, "nope");
    assert!(
        stderr.contains("Could not find a registered machine named 'nope'"),
        "{stderr}"
    );
    let err = vbox
        .cli
        .run_command(&command::poweroff("nope"))
        .expect_err("no such VM");
    assert!(err.stderr().is_some_and(|s| s.contains("'nope'")), "{err}");
}

#[test]
fn missing_vboxmanage_says_how_to_install_virtualbox() {
    let empty = tempfile::tempdir().expect("tempdir");
    let path = empty.path().as_os_str().to_owned();
    let err = VBoxManageCli::locate_with(&|k| (k == "PATH").then(|| path.clone()))
        .expect_err("not installed");
    assert!(matches!(err, VBoxError::NotInstalled { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("VBoxManage was not found"), "{text}");
    assert!(text.contains("install VirtualBox"), "{text}");
    assert!(
        text.contains("kiln drives VirtualBox through its VBoxManage"),
        "{text}"
    );
}

#[test]
fn vbox_install_path_comes_before_path() {
    let vbox = FakeVbox::new();
    let other = tempfile::tempdir().expect("tempdir");
    let decoy = other.path().join("VBoxManage");
    crate::support::write_executable(&decoy, "#!/bin/sh\nexit 3\n");
    let install = vbox.path("bin").into_os_string();
    let path = other.path().as_os_str().to_owned();
    let cli = VBoxManageCli::locate_with(&|k| match k {
        "VBOX_INSTALL_PATH" => Some(install.clone()),
        "PATH" => Some(path.clone()),
        _ => None,
    })
    .expect("found");
    assert_eq!(cli.program(), vbox.path("bin/VBoxManage"));
}

// --- a real guest -----------------------------------------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tiny installer ISO (built once, cached in iso-cache/).
fn tiny_iso() -> PathBuf {
    let out = Command::new(repo().join("scripts/build-tiny-installer"))
        .output()
        .expect("scripts/build-tiny-installer runs");
    assert!(
        out.status.success(),
        "building the tiny installer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().next().expect("ISO path line"))
}

fn wait_for_text(path: &Path, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
        if text.contains(needle) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// Kills the VM's qemu if a failed assertion left it running.
struct KillOnDrop(Option<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0.filter(|&p| alive(p))
            && let Some(pid) = rustix::process::Pid::from_raw(pid as i32)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

#[test]
fn vm_boot_command_typed_as_scancodes_starts_the_tiny_installer() {
    // A VM test like any other: one guest at a time, or a loaded machine
    // stretches each boot past any bound.
    let _vm = crate::vm::vm_lock();
    let iso = tiny_iso();
    let vbox = FakeVbox::new();
    let name = "tiny";
    let serial = vbox.path("serial.log");
    std::fs::create_dir_all(vbox.path("out")).expect("out dir");

    let mut commands = vm_spec(name).create_commands();
    commands.extend(disk_spec(vbox.path("out/tiny.vdi")).create_commands(name));
    commands.push(IsoAttachment::boot_iso(StorageBus::Ide).attach(name, &iso));
    let port = kiln::host::port::find_free_port(2200, 2900).expect("a free port");
    commands.extend(NatRule::ssh(port, 22).add_commands(name));
    // What a template's `vboxmanage` rows do to get a serial log.
    commands.push(VBoxCommand::verbatim(vec![
        "modifyvm".into(),
        name.into(),
        "--uart1".into(),
        "0x3F8".into(),
        "4".into(),
        "--uartmode1".into(),
        "file".into(),
        serial.to_string_lossy().into_owned(),
    ]));
    commands.push(command::startvm(name, true));
    vbox.run_all(&commands);

    let vm_dir = vbox.path("home/VirtualBox VMs/tiny");
    let pid: u32 = std::fs::read_to_string(vm_dir.join("qemu.pid"))
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    let _guard = KillOnDrop(Some(pid));
    assert!(alive(pid), "qemu runs after startvm returned");
    assert_eq!(vbox.cli.vm_state(name).expect("state"), VmState::Running);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    assert!(
        String::from_utf8_lossy(&cmdline).contains(&format!("hostfwd=tcp:127.0.0.1:{port}-:22")),
        "the NAT rule becomes a loopback hostfwd"
    );

    // Generous bounds on events: under TCG on a loaded machine (a load
    // average of 20 was seen) the kernel alone took over a minute to boot.
    let text = wait_for_text(&serial, "boot:", Duration::from_secs(300));
    assert!(text.contains("boot:"), "no isolinux prompt: {text}");

    // Typed as the builder types it: calls of at most MAX_CODES_PER_CALL
    // codes. The test then waits for ISOLINUX to echo what was typed so far
    // before the next piece (an event, where the builder waits
    // boot_keygroup_interval), so a guest slowed by a loaded host cannot
    // make the check fail.
    let line = "install url=http://10.0.2.2:9/none.cfg";
    let mut typed = String::new();
    let mut calls = 0;
    for piece in line.as_bytes().chunks(10) {
        let piece = std::str::from_utf8(piece).expect("ASCII");
        let actions = kiln::bootcmd::parse(piece).expect("boot command");
        for step in command::boot_command_steps(name, &actions, MAX_CODES_PER_CALL) {
            match step {
                BootCommandStep::Run(c) => {
                    calls += 1;
                    vbox.run_all(std::slice::from_ref(&c));
                }
                BootCommandStep::Wait(d) => std::thread::sleep(d),
            }
        }
        typed.push_str(piece);
        let echo = format!("boot: {typed}");
        let text = wait_for_text(&serial, &echo, Duration::from_secs(120));
        assert!(
            text.contains(&echo),
            "the typed text is echoed at the prompt: {text}"
        );
    }
    assert!(calls >= 4, "the line is split into several calls: {calls}");
    let enter = kiln::bootcmd::parse("<enter>").expect("boot command");
    for step in command::boot_command_steps(name, &enter, MAX_CODES_PER_CALL) {
        if let BootCommandStep::Run(c) = step {
            vbox.run_all(std::slice::from_ref(&c));
        }
    }
    let text = wait_for_text(&serial, "tiny-installer:", Duration::from_secs(600));
    assert!(
        text.contains("boot: install url=http://10.0.2.2:9/none.cfg"),
        "the typed line is echoed at the prompt: {text}"
    );
    assert!(
        text.contains("tiny-installer:"),
        "installer did not start: {text}"
    );

    vbox.run_all(&[command::poweroff(name)]);
    assert_eq!(vbox.cli.vm_state(name).expect("state"), VmState::PowerOff);
    assert!(!alive(pid), "poweroff ends qemu");
    let err = vbox
        .cli
        .run_command(&command::poweroff(name))
        .expect_err("not running");
    assert!(
        err.stderr()
            .is_some_and(|s| s.contains("is not currently running")),
        "{err}"
    );

    // Export as Packer would (an OVA with a manifest), then clean up.
    let ova = vbox.path("out/tiny.ova");
    let export = command::ExportSpec {
        output: ova.clone(),
        manifest: true,
        options: vec![],
    };
    vbox.run_all(&[
        IsoAttachment::boot_iso(StorageBus::Ide).detach(name),
        export.command(name),
    ]);
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(&ova)
        .output()
        .expect("tar runs");
    assert_eq!(
        String::from_utf8_lossy(&listing.stdout),
        "tiny.ovf\ntiny.mf\ntiny-disk001.vmdk\n"
    );
    vbox.run_all(&[command::unregister_delete(name)]);
    assert!(!vm_dir.exists());
    assert!(iso.exists());
}

#[test]
fn sata_disk_and_dvd_as_kiln_builds_them() {
    let vbox = FakeVbox::new();
    let name = "sata";
    let iso = vbox.path("boot.iso");
    std::fs::write(&iso, vec![0u8; 4096]).expect("iso");
    let disk = DiskSpec {
        bus: StorageBus::Sata,
        iso_bus: StorageBus::Sata,
        sata_port_count: 2,
        nonrotational: true,
        discard: true,
        ..disk_spec(vbox.path("sata.vdi"))
    };
    let vm = VmSpec {
        firmware: "efi".into(),
        chipset: "ich9".into(),
        nic_type: Some("virtio".into()),
        gfx_controller: Some("vmsvga".into()),
        gfx_vram_mib: Some(16),
        usb: true,
        ..vm_spec(name)
    };
    let boot_iso = IsoAttachment::boot_iso(disk.iso_bus);
    let mut commands = vm.create_commands();
    commands.extend(disk.create_commands(name));
    commands.push(boot_iso.attach(name, &iso));
    vbox.run_all(&commands);

    let info = vbox.cli.showvminfo_machinereadable(name).expect("info");
    assert_eq!(info["firmware"], "EFI");
    assert_eq!(info["chipset"], "ich9");
    assert_eq!(info["nictype1"], "virtio");
    assert_eq!(info["graphicscontroller"], "vmsvga");
    assert_eq!(info["storagecontrollername1"], "SATA Controller");
    // The DVD at Packer's port 13 grew the count from 2, as VBoxManage does.
    assert_eq!(info["storagecontrollerportcount1"], "14");
    assert_eq!(info["SATA Controller-0-0"], disk.path.to_string_lossy());
    assert_eq!(info["SATA Controller-nonrotational-0-0"], "on");
    assert_eq!(info["SATA Controller-13-0"], iso.to_string_lossy());

    vbox.run_all(&[boot_iso.detach(name)]);
    let info = vbox.cli.showvminfo_machinereadable(name).expect("info");
    assert_eq!(info["SATA Controller-13-0"], "none");

    // A port beyond SATA's 30 is refused, as VirtualBox does.
    let beyond = IsoAttachment {
        port: 30,
        ..boot_iso.clone()
    };
    let err = vbox
        .cli
        .run_command(&beyond.attach(name, &iso))
        .expect_err("no port 30");
    assert!(
        err.stderr().is_some_and(|s| s.contains("out of range")),
        "{err}"
    );
}

#[test]
fn bento_hardware_rows_are_accepted_by_vboxmanage() {
    let vbox = FakeVbox::new();
    let name = "bento";
    std::fs::create_dir_all(vbox.path("out")).expect("out dir");
    let vm = VmSpec {
        nested_virt: Some(true),
        rtc_utc: Some(true),
        audio_controller: Some("hda".into()),
        accelerate_3d: Some(false),
        efi_resolution: Some("1920x1080".into()),
        usb_controllers: vec!["ehci".into(), "xhci".into()],
        ..vm_spec(name)
    };
    let extra = vbox.path("out/bento-1.vdi");
    let disk = DiskSpec {
        bus: StorageBus::Sata,
        additional: vec![(extra.clone(), 32)],
        ..disk_spec(vbox.path("out/bento-0.vdi"))
    };
    let mut commands = vm.create_commands();
    commands.extend(disk.create_commands(name));
    vbox.run_all(&commands);

    let info = vbox.cli.showvminfo_machinereadable(name).expect("info");
    assert_eq!(info["nested-hw-virt"], "on");
    assert_eq!(info["rtcuseutc"], "on");
    assert_eq!(info["audio_controller"], "HDA");
    assert_eq!(info["accelerate3d"], "off");
    assert_eq!(info["ehci"], "on");
    assert_eq!(info["xhci"], "on");
    assert!(extra.is_file(), "the additional disk is created");
    assert_eq!(info["SATA Controller-1-0"], extra.to_string_lossy());
    let got = std::process::Command::new(vbox.path("bin/VBoxManage"))
        .args(["getextradata", name, "VBoxInternal2/EfiGraphicsResolution"])
        .output()
        .expect("runs");
    assert_eq!(
        String::from_utf8_lossy(&got.stdout).trim(),
        "Value: 1920x1080"
    );
}

/// `VBoxManage ARGS` through the simulator: (exit code, stdout, stderr).
fn vboxmanage(vbox: &FakeVbox, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(vbox.path("bin/VBoxManage"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `qemu-io -c CMD` on a simulated disk (qcow2 inside): true on success.
fn qemu_io(disk: &Path, command: &str) -> bool {
    let out = Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", command])
        .arg(disk)
        .output()
        .expect("qemu-io runs");
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success()
        && !text.contains("Pattern verification failed")
        && !text.contains("failed")
}

/// The commands kiln's virtualbox-iso checkpoints use: a snapshot freezes
/// the disk, the frozen disk is cloned, the snapshot is merged back, and
/// media are closed; each as VBoxManage words its output and errors.
#[test]
fn snapshot_clonemedium_and_closemedium_as_checkpoints_use_them() {
    let vbox = FakeVbox::new();
    let name = "cp";
    let disk = vbox.path("out/cp.vdi");
    std::fs::create_dir_all(vbox.path("out")).expect("out dir");
    let mut commands = vm_spec(name).create_commands();
    commands.extend(disk_spec(disk.clone()).create_commands(name));
    vbox.run_all(&commands);
    assert!(qemu_io(&disk, "write -P 0xab 0 1M"), "the install's data");

    let (code, out, _) = vboxmanage(
        &vbox,
        &["snapshot", name, "take", "installed", "--description", "x"],
    );
    assert_eq!(code, 0);
    assert!(out.starts_with("Snapshot taken. UUID: "), "{out}");
    let info = vbox.cli.showvminfo_machinereadable(name).expect("info");
    assert_eq!(info["SnapshotName"], "installed");
    assert_eq!(info["CurrentSnapshotName"], "installed");
    assert_eq!(info["CurrentSnapshotNode"], "SnapshotName");
    let diff = PathBuf::from(&info["IDE Controller-0-0"]);
    assert!(
        diff.starts_with(vbox.path("home/VirtualBox VMs/cp/Snapshots")),
        "{}",
        diff.display()
    );
    assert!(
        qemu_io(&diff, "write -P 0xcd 0 64k"),
        "the provisioning's data"
    );

    // The frozen parent clones; the clone holds the install, not what came after.
    let clone = vbox.path("cache/disk.vdi");
    std::fs::create_dir_all(vbox.path("cache")).expect("cache dir");
    let (code, out, err) = vboxmanage(
        &vbox,
        &[
            "clonemedium",
            "disk",
            &disk.to_string_lossy(),
            &clone.to_string_lossy(),
            "--format",
            "VDI",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Clone medium created in format 'VDI'. UUID: "),
        "{out}"
    );
    assert!(qemu_io(&clone, "read -P 0xab 0 1M"));
    let (code, _, err) = vboxmanage(
        &vbox,
        &[
            "clonemedium",
            "disk",
            &disk.to_string_lossy(),
            &clone.to_string_lossy(),
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("VERR_ALREADY_EXISTS"), "{err}");
    let (code, _, err) = vboxmanage(&vbox, &["clonemedium", "disk", "/nowhere/x.vdi", "y.vdi"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("VBoxManage: error: Could not find file for the medium '/nowhere/x.vdi' (VERR_FILE_NOT_FOUND)"), "{err}");

    // Media in use are not closed.
    let (code, _, err) = vboxmanage(&vbox, &["closemedium", "disk", &diff.to_string_lossy()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("because it is still attached to 1 virtual machines"),
        "{err}"
    );
    let (code, _, err) = vboxmanage(&vbox, &["closemedium", "disk", &disk.to_string_lossy()]);
    assert_eq!(code, 1);
    assert!(err.contains("because it has 1 child media"), "{err}");

    // Deleting the snapshot merges: the disk is one image again, with
    // everything written since.
    let (code, _, err) = vboxmanage(&vbox, &["snapshot", name, "delete", "gone"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("VBoxManage: error: Could not find a snapshot named 'gone'"),
        "{err}"
    );
    let (code, _, err) = vboxmanage(&vbox, &["snapshot", name, "delete", "installed"]);
    assert_eq!(code, 0, "{err}");
    let info = vbox.cli.showvminfo_machinereadable(name).expect("info");
    assert_eq!(PathBuf::from(&info["IDE Controller-0-0"]), disk);
    assert!(!info.contains_key("SnapshotName"));
    assert!(
        !diff.exists(),
        "the differencing image is merged and removed"
    );
    assert!(qemu_io(&disk, "read -P 0xcd 0 64k"));

    // A closed clone stays on disk, unknown to VirtualBox; cloned again by
    // path, it is opened, and the copy gets a UUID of its own.
    let (code, _, err) = vboxmanage(&vbox, &["closemedium", "disk", &clone.to_string_lossy()]);
    assert_eq!(code, 0, "{err}");
    assert!(clone.is_file());
    let (_, hdds, _) = vboxmanage(&vbox, &["list", "hdds"]);
    assert!(!hdds.contains(&*clone.to_string_lossy()), "{hdds}");
    let again = vbox.path("out/again.vdi");
    let (code, out, err) = vboxmanage(
        &vbox,
        &[
            "clonemedium",
            &clone.to_string_lossy(),
            &again.to_string_lossy(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(qemu_io(&again, "read -P 0xab 64k 960k"));
    let uuid_of = |path: &Path| {
        let (_, hdds, _) = vboxmanage(&vbox, &["list", "hdds"]);
        let block = hdds
            .split("\n\n")
            .find(|b| b.contains(&*path.to_string_lossy()))
            .map(str::to_owned);
        block.and_then(|b| {
            b.lines()
                .next()
                .map(|l| l.trim_start_matches("UUID:").trim().to_owned())
        })
    };
    let (a, b) = (uuid_of(&clone), uuid_of(&again));
    assert!(a.is_some() && b.is_some() && a != b, "{a:?} {b:?}; {out}");
}
