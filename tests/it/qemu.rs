//! QEMU driver tests against the real qemu-system-x86_64 and qemu-img,
//! with one-sector guests under TCG (KVM here hangs ordinary guests).
//!
//! Every VM is tiny (16 MiB, no devices but a raw one-sector disk), so the
//! whole module runs in seconds.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln::hypervisor::qemu::probe::{self, boot_sector};
use kiln::hypervisor::qemu::{
    Backing, ConvertOptions, DiskDrive, DiskInterface, ImageFormat, InputEvent, KeyValue,
    ProcessError, QemuCommand, QemuImg, QemuImgCli, QemuImgError, QemuProcess,
};
use kiln::vm::Accelerator;

const QEMU: &str = "qemu-system-x86_64";

/// `sti; hlt; jmp $-1`: idles forever, waking only for interrupts.
const IDLE: &[u8] = &[0xfb, 0xf4, 0xeb, 0xfd];

/// Polls the keyboard controller with interrupts off, and exits QEMU with
/// the first scancode: `cli; l: in al,0x64; test al,1; jz l; in al,0x60;
/// out 0xf4,al; hlt`. Exit status is `(scancode << 1) | 1`.
const FIRST_SCANCODE_EXITS: &[u8] = &[
    0xfa, 0xe4, 0x64, 0xa8, 0x01, 0x74, 0xfa, 0xe4, 0x60, 0xe6, 0xf4, 0xf4,
];

struct Guest {
    dir: tempfile::TempDir,
    cmd: QemuCommand,
}

impl Guest {
    /// A TCG VM whose only disk is a boot sector running `code`.
    fn new(code: &[u8]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = dir.path().join("boot.img");
        std::fs::write(&disk, boot_sector(code)).expect("writes the sector");
        let mut cmd = QemuCommand::new(QEMU, Accelerator::Tcg);
        cmd.name = Some("kiln-test".into());
        cmd.memory_mib = 16;
        // IDE: SeaBIOS cannot read a one-sector virtio-blk disk ("could not
        // read the boot disk"); real, larger disks boot from virtio fine.
        cmd.disks = vec![DiskDrive {
            interface: DiskInterface::Ide,
            ..DiskDrive::new(&disk, ImageFormat::Raw)
        }];
        cmd.qmp_socket = Some(dir.path().join("qmp.sock"));
        cmd.qemuargs = vec![
            vec!["-nodefaults".into()],
            vec![
                "-device".into(),
                "isa-debug-exit,iobase=0xf4,iosize=0x04".into(),
            ],
        ];
        Self { dir, cmd }
    }

    fn qmp_socket(&self) -> PathBuf {
        self.dir.path().join("qmp.sock")
    }
}

/// True while `pid` is a live process (not a zombie): its /proc entry exists
/// and its state is not Z.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn gone_within(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    !alive(pid)
}

#[test]
fn qemu_img_create_info_resize_convert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = QemuImgCli::default();
    let base = dir.path().join("base.qcow2");
    img.create(&base, ImageFormat::Qcow2, 64, None, &[])
        .expect("creates");
    let info = img.info(&base).expect("info");
    assert_eq!(
        (info.virtual_size, info.format.as_str()),
        (64 << 20, "qcow2")
    );
    assert!(info.backing.is_none());

    img.resize(&base, ImageFormat::Qcow2, 96, &[])
        .expect("resizes");
    assert_eq!(img.info(&base).expect("info").virtual_size, 96 << 20);

    let overlay = dir.path().join("overlay.qcow2");
    img.create(
        &overlay,
        ImageFormat::Qcow2,
        128,
        Some(Backing {
            path: &base,
            format: ImageFormat::Qcow2,
        }),
        &[],
    )
    .expect("creates an overlay");
    let info = img.info(&overlay).expect("info");
    assert_eq!(info.backing.as_deref(), Some(base.as_path()));
    assert_eq!(info.backing_format.as_deref(), Some("qcow2"));

    let raw = dir.path().join("flat.raw");
    img.convert(
        &overlay,
        &raw,
        ImageFormat::Raw,
        &ConvertOptions::default(),
        &[],
    )
    .expect("converts to raw");
    assert_eq!(img.info(&raw).expect("info").format, "raw");

    let compressed = dir.path().join("small.qcow2");
    let opts = ConvertOptions {
        compress: true,
        ..ConvertOptions::default()
    };
    img.convert(&overlay, &compressed, ImageFormat::Qcow2, &opts, &[])
        .expect("converts compressed");
    let info = img.info(&compressed).expect("info");
    assert!(info.backing.is_none(), "convert flattens the backing chain");

    let vmdk = dir.path().join("disk.vmdk");
    img.convert(
        &raw,
        &vmdk,
        ImageFormat::Vmdk,
        &ConvertOptions::vmdk_stream_optimized(),
        &[],
    )
    .expect("converts to a stream-optimized vmdk");
    assert_eq!(img.info(&vmdk).expect("info").format, "vmdk");
}

#[test]
fn qemu_img_errors_carry_the_command_and_stderr() {
    let err = QemuImgCli::default()
        .info(Path::new("/nonexistent/disk.qcow2"))
        .expect_err("no such file");
    assert!(matches!(err, QemuImgError::Failed { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("qemu-img info --output=json /nonexistent/disk.qcow2"),
        "{msg}"
    );
    assert!(msg.contains("No such file"), "{msg}");

    let err = QemuImgCli::new("/nonexistent/qemu-img")
        .info(Path::new("x"))
        .expect_err("no program");
    assert!(matches!(err, QemuImgError::Spawn { .. }), "{err:?}");
}

/// The probe guest itself works: under TCG it always reaches its exit.
#[tokio::test]
async fn vm_probe_guest_exits_under_tcg() {
    let elapsed = probe::run_probe_guest(QEMU, Accelerator::Tcg, Duration::from_secs(20))
        .await
        .expect("the probe runs under TCG");
    eprintln!("probe under TCG: {} ms", elapsed.as_millis());
}

/// `auto` never hangs: within the probe's timeout it picks KVM (where KVM
/// works) or TCG with a reason; the verdict is cached, and `kvm` agrees
/// with it (failing clearly where KVM is broken, as on this machine).
#[tokio::test]
async fn vm_auto_probe_decides_quickly_and_is_cached() {
    // QEMU behind a wrapper that counts its starts: the cache is seen in
    // the count, not guessed from a clock.
    let work = tempfile::tempdir().expect("tempdir");
    let starts = work.path().join("starts");
    let wrapper = work.path().join("qemu-counting");
    crate::support::write_executable(
        &wrapper,
        &format!(
            "#!/bin/sh\necho start >> '{}'\nexec {QEMU} \"$@\"\n",
            starts.display()
        ),
    );
    let counted = wrapper.display().to_string();
    let count_starts = || {
        std::fs::read_to_string(&starts)
            .map(|text| text.lines().count())
            .unwrap_or(0)
    };

    let start = Instant::now();
    let auto = probe::probe_accelerator(None, &counted)
        .await
        .expect("auto always decides");
    let first = start.elapsed();
    eprintln!("auto probe: {} ms -> {auto:?}", first.as_millis());
    // Bounded by the probe's own timeout; the slack is for starting and
    // killing QEMU on a loaded machine.
    assert!(
        first < probe::KVM_PROBE_TIMEOUT + Duration::from_secs(30),
        "{first:?}"
    );
    let probed = count_starts();
    // Where KVM exists but cannot run guests (this machine), auto decided
    // by booting a guest: the count below would prove nothing otherwise.
    if auto.reason.contains("KVM cannot run guests") {
        assert!(probed >= 1, "auto decided without starting QEMU");
    }
    match auto.chosen {
        Accelerator::Kvm => assert!(!auto.fell_back),
        Accelerator::Tcg => {
            assert!(auto.fell_back);
            assert!(
                auto.reason.contains("KVM cannot run guests"),
                "{}",
                auto.reason
            );
        }
        other => panic!("auto chose {other}"),
    }

    let again = probe::probe_accelerator(None, &counted)
        .await
        .expect("cached");
    assert_eq!(again, auto);
    assert_eq!(
        count_starts(),
        probed,
        "the second probe started QEMU again"
    );

    let kvm = probe::probe_accelerator(Some(Accelerator::Kvm), &counted).await;
    assert_eq!(count_starts(), probed, "`kvm` reuses the verdict");
    match auto.chosen {
        Accelerator::Kvm => assert_eq!(kvm.map(|r| r.chosen), Ok(Accelerator::Kvm)),
        _ => {
            let err = kvm.expect_err("explicit kvm fails where KVM is broken");
            assert!(
                err.to_string()
                    .starts_with("accelerator: kvm was requested, but KVM cannot run guests here"),
                "{err}"
            );
        }
    }
}

#[tokio::test]
async fn vm_qmp_drives_a_running_guest_and_quit_ends_it() {
    let guest = Guest::new(IDLE);
    let start = Instant::now();
    let mut qemu = QemuProcess::spawn(&guest.cmd).expect("spawns");
    let mut qmp = qemu
        .connect_qmp(&guest.qmp_socket(), Duration::from_secs(10))
        .await
        .expect("QMP comes up");
    eprintln!("spawn -> QMP ready: {} ms", start.elapsed().as_millis());

    let status = qmp.query_status().await.expect("query-status");
    assert!(status.running, "{status:?}");
    assert_eq!(status.status, "running");

    qmp.send_key(&[KeyValue::qcode("shift"), KeyValue::qcode("a")], Some(50))
        .await
        .expect("send-key");
    qmp.input_send_event(&[
        InputEvent::Key {
            down: true,
            key: KeyValue::qcode("ctrl"),
        },
        InputEvent::Key {
            down: false,
            key: KeyValue::qcode("ctrl"),
        },
    ])
    .await
    .expect("input-send-event");
    let err = qmp
        .send_key(&[KeyValue::qcode("no-such-key")], None)
        .await
        .expect_err("QEMU rejects an unknown qcode");
    assert!(err.to_string().contains("no-such-key"), "{err}");

    qmp.system_powerdown().await.expect("system_powerdown");
    let ev = qmp
        .wait_event("POWERDOWN", Duration::from_secs(5))
        .await
        .expect("reads events");
    assert!(ev.is_some(), "no POWERDOWN event");
    // A boot sector ignores the ACPI button; quit is the way out.
    let hmp = qmp.human_monitor_command("info status").await.expect("hmp");
    assert!(hmp.contains("running"), "{hmp}");

    qmp.quit().await.expect("quit");
    let status = qemu
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("waits")
        .expect("QEMU exits after quit");
    assert!(status.success(), "{status:?}");
}

/// The keys QMP sends reach the guest's keyboard controller.
#[tokio::test]
async fn vm_send_key_reaches_the_guest() {
    let guest = Guest::new(FIRST_SCANCODE_EXITS);
    let mut qemu = QemuProcess::spawn(&guest.cmd).expect("spawns");
    let mut qmp = qemu
        .connect_qmp(&guest.qmp_socket(), Duration::from_secs(10))
        .await
        .expect("QMP comes up");
    // Keys typed while the BIOS still owns the keyboard are eaten by it,
    // so type until the boot sector has one (as a boot command's wait does).
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = qemu
            .wait_exit(Duration::from_millis(200))
            .await
            .expect("waits")
        {
            break status;
        }
        assert!(Instant::now() < deadline, "the guest never saw a key");
        // QEMU may exit between the check and the key.
        let _ = qmp.send_key(&[KeyValue::qcode("a")], None).await;
    };
    // `a` is set-1 scancode 0x1e after the controller's translation.
    assert_eq!(status.code(), Some((0x1e << 1) | 1), "{status:?}");
}

#[tokio::test]
async fn vm_kill_stops_qemu_with_sigterm() {
    let guest = Guest::new(IDLE);
    let mut qemu = QemuProcess::spawn(&guest.cmd).expect("spawns");
    let pid = qemu.pid();
    qemu.connect_qmp(&guest.qmp_socket(), Duration::from_secs(10))
        .await
        .expect("QMP comes up");
    let status = qemu.kill().await.expect("kills");
    // kill() sends SIGKILL only when SIGTERM was not enough.
    assert_ne!(status.signal(), Some(9), "SIGTERM was enough: {status:?}");
    assert!(status.success() || status.signal().is_some(), "{status:?}");
    assert!(!alive(pid));
}

#[tokio::test]
async fn vm_dropping_the_handle_kills_qemu() {
    let guest = Guest::new(IDLE);
    let qemu = QemuProcess::spawn(&guest.cmd).expect("spawns");
    let pid = qemu.pid();
    assert!(alive(pid));
    drop(qemu);
    assert!(gone_within(pid, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn vm_a_panicking_owner_task_takes_qemu_with_it() {
    let guest = Guest::new(IDLE);
    let cmd = guest.cmd.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let qemu = QemuProcess::spawn(&cmd).expect("spawns");
        let _ = tx.send(qemu.pid());
        tokio::time::sleep(Duration::from_millis(50)).await;
        panic!("the build step failed");
    });
    let pid = rx.await.expect("pid");
    let joined = task.await;
    assert!(joined.is_err_and(|e| e.is_panic()));
    assert!(gone_within(pid, Duration::from_secs(5)).await);
}

/// Set in the environment of the child test process that owns a QEMU and
/// is then killed with SIGKILL (so no Drop runs).
const ORPHAN_ENV: &str = "KILN_TEST_QEMU_ORPHAN_DIR";

/// Only does something as the child of `vm_qemu_dies_with_a_killed_kiln`.
#[test]
fn orphan_helper() {
    let Some(dir) = std::env::var_os(ORPHAN_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let guest = Guest::new(IDLE);
        let mut qemu = QemuProcess::spawn(&guest.cmd).expect("spawns");
        qemu.connect_qmp(&guest.qmp_socket(), Duration::from_secs(10))
            .await
            .expect("QMP comes up");
        std::fs::write(Path::new(&dir).join("pid"), qemu.pid().to_string()).expect("writes");
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
}

/// PR_SET_PDEATHSIG: a kiln killed with SIGKILL runs no destructors, yet
/// its VM goes with it.
#[tokio::test]
async fn vm_qemu_dies_with_a_killed_kiln() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "qemu::orphan_helper", "--nocapture"])
        .env(ORPHAN_ENV, dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("starts the helper");
    let pid_file = dir.path().join("pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid: u32 = loop {
        if let Ok(s) = std::fs::read_to_string(&pid_file)
            && let Ok(pid) = s.trim().parse()
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the helper never started QEMU");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(alive(pid));
    child.kill().expect("SIGKILL the helper");
    child.wait().expect("reaps the helper");
    assert!(
        gone_within(pid, Duration::from_secs(5)).await,
        "QEMU {pid} outlived its owner"
    );
}

#[tokio::test]
async fn vm_qemu_failing_to_start_reports_its_stderr() {
    let mut guest = Guest::new(IDLE);
    guest.cmd.disks[0].path = "/nonexistent/boot.img".into();
    let mut qemu = QemuProcess::spawn(&guest.cmd).expect("spawns");
    let err = qemu
        .connect_qmp(&guest.qmp_socket(), Duration::from_secs(10))
        .await
        .expect_err("QEMU exits");
    assert!(matches!(err, ProcessError::Exited { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/boot.img"), "{msg}");
}

/// `-vnc` from the typed command: QEMU serves RFB 3.8 on the loopback
/// port asked for, with no authentication when no password is asked for.
#[tokio::test]
async fn vm_vnc_serves_rfb_on_the_chosen_loopback_port() {
    let mut guest = Guest::new(IDLE);
    let localhost = std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST);
    let port = kiln::host::port::find_free_port_on(localhost, 5900, 6000).expect("a free port");
    guest.cmd.vnc = Some(kiln::hypervisor::qemu::Vnc {
        bind: localhost,
        port,
        password: false,
    });
    let mut qemu = QemuProcess::spawn(&guest.cmd).expect("spawns");
    // QMP answering means QEMU has set up its displays.
    let _qmp = qemu
        .connect_qmp(&guest.qmp_socket(), Duration::from_secs(10))
        .await
        .expect("QMP comes up");
    let (banner, types) = tokio::task::spawn_blocking(move || crate::vm::rfb_handshake(port))
        .await
        .expect("joins")
        .expect("RFB handshake");
    assert_eq!(banner, "RFB 003.008\n");
    assert_eq!(types, [1], "no authentication without vnc_use_password");
    qemu.kill().await.expect("kills");
}

/// UEFI as `efi_boot` runs it: OVMF found from QEMU's firmware
/// descriptors, read-only code and a private copy of the variable store on
/// pflash. The firmware reaches its boot manager (printed on the serial
/// console) and the system's template is left untouched.
#[tokio::test]
async fn vm_ovmf_from_the_descriptors_boots_with_a_private_variable_store() {
    use kiln::hypervisor::qemu::Firmware;
    use kiln::hypervisor::qemu::firmware::{DESCRIPTOR_DIR, find_uefi};
    // scripts/bootstrap installs Debian's ovmf: a skip here would pass unseen.
    let fw = find_uefi(Path::new(DESCRIPTOR_DIR), "x86_64", "q35")
        .expect("a UEFI firmware descriptor (run scripts/bootstrap: Debian's ovmf package)");
    let dir = tempfile::tempdir().expect("tempdir");
    let vars = dir.path().join("efivars.fd");
    std::fs::copy(&fw.vars_template, &vars).expect("copies the store");
    let template_before = std::fs::read(&fw.vars_template).expect("template");
    let mut cmd = QemuCommand::new(QEMU, Accelerator::Tcg);
    cmd.machine_type = "q35".into();
    cmd.memory_mib = 128;
    cmd.firmware = Firmware::Pflash {
        code: fw.code.clone(),
        vars: vars.clone(),
    };
    cmd.qmp_socket = Some(dir.path().join("qmp.sock"));
    let serial = dir.path().join("serial.log");
    cmd.serial_log = Some(serial.clone());
    cmd.qemuargs = vec![vec!["-nodefaults".into()]];
    let mut qemu = QemuProcess::spawn(&cmd).expect("spawns");
    let mut qmp = qemu
        .connect_qmp(&dir.path().join("qmp.sock"), Duration::from_secs(30))
        .await
        .expect("QMP comes up");
    // OVMF under TCG takes some seconds to reach its boot manager.
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = String::from_utf8_lossy(&std::fs::read(&serial).unwrap_or_default()).into_owned();
        if text.contains("BdsDxe") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    qmp.quit().await.expect("quit");
    let _ = qemu.wait_exit(Duration::from_secs(10)).await;
    assert!(
        text.contains("BdsDxe"),
        "OVMF did not reach its boot manager: {text}"
    );
    assert_eq!(
        std::fs::read(&fw.vars_template).expect("template"),
        template_before,
        "the system's variable store template must not change"
    );
}

/// `vtpm`: QEMU gets swtpm's TPM 2.0 as the asked device, and swtpm ends
/// when QEMU does (`--terminate`), so no TPM outlives its VM.
#[tokio::test]
async fn a_vtpm_from_swtpm_is_the_guests_tpm_and_ends_with_qemu() {
    use kiln::hypervisor::qemu::swtpm::{SOCKET_TIMEOUT, Swtpm};
    if std::process::Command::new("swtpm")
        .arg("--version")
        .output()
        .is_err()
    {
        // scripts/bootstrap installs it: a skip here would pass unseen.
        panic!("swtpm is not installed: run scripts/bootstrap (apt-get install swtpm swtpm-tools)");
    }
    let mut guest = Guest::new(IDLE);
    let tpm = Swtpm::start(guest.dir.path(), SOCKET_TIMEOUT)
        .await
        .expect("swtpm starts");
    let swtpm_pid = tpm.pid();
    guest.cmd.tpm = Some(kiln::hypervisor::qemu::command::Tpm {
        socket: tpm.socket().to_owned(),
        device: "tpm-tis".into(),
    });
    let mut qemu = QemuProcess::spawn(&guest.cmd).expect("spawns");
    let mut qmp = qemu
        .connect_qmp(&guest.qmp_socket(), Duration::from_secs(30))
        .await
        .expect("QMP comes up");
    let tpms = qmp.execute("query-tpm", None).await.expect("query-tpm");
    let text = tpms.to_string();
    assert!(text.contains("tpm-tis"), "{text}");
    assert!(text.contains("emulator"), "{text}");

    qmp.quit().await.expect("quit");
    qemu.wait_exit(Duration::from_secs(30))
        .await
        .expect("waits")
        .expect("QEMU exits after quit");
    assert!(
        gone_within(swtpm_pid, Duration::from_secs(30)).await,
        "swtpm outlived QEMU"
    );
    drop(tpm);
}
