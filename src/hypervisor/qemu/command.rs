//! The `qemu-system` command line, built in order from a typed description.
//!
//! Packer's `qemuargs` are applied the way Packer applies them: each row is
//! a switch followed by parts that are concatenated into its value; a switch
//! the user names replaces every value kiln would have given it, and other
//! switches are added after kiln's. Unlike Packer (which flattens a Go map,
//! so its order changes from run to run) the result here is deterministic:
//! a replaced switch keeps the place of kiln's first use of it.

use std::path::{Path, PathBuf};

use crate::vm::{Accelerator, ImageFormat};

/// How a hard disk is attached (`disk_interface`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskInterface {
    Virtio,
    Ide,
    Scsi,
    /// A `virtio-scsi-pci` controller with `scsi-hd` disks on it.
    VirtioScsi,
}

impl DiskInterface {
    fn if_name(self) -> &'static str {
        match self {
            Self::Virtio => "virtio",
            Self::Ide => "ide",
            Self::Scsi => "scsi",
            Self::VirtioScsi => "none",
        }
    }
}

/// A hard disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskDrive {
    pub path: PathBuf,
    pub format: ImageFormat,
    pub interface: DiskInterface,
    /// `disk_cache`: writeback, writethrough, none, unsafe, directsync.
    pub cache: String,
    /// `disk_discard`: unmap or ignore.
    pub discard: String,
    /// `disk_detect_zeroes`: off, on or unmap; `off` is not written.
    pub detect_zeroes: String,
}

impl DiskDrive {
    /// A disk with Packer's defaults (virtio, writeback, no discard).
    pub fn new(path: impl Into<PathBuf>, format: ImageFormat) -> Self {
        Self {
            path: path.into(),
            format,
            interface: DiskInterface::Virtio,
            cache: "writeback".into(),
            discard: "ignore".into(),
            detect_zeroes: "off".into(),
        }
    }
}

/// A CD-ROM (the installer ISO, or a `cd_files` image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdromDrive {
    pub path: PathBuf,
    /// `cdrom_interface`; QEMU's default (IDE on `pc`) when absent.
    pub interface: Option<DiskInterface>,
}

/// Where the guest's network goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetBackend {
    /// QEMU user networking (slirp), optionally forwarding a host port on
    /// loopback to the guest's SSH port.
    User { ssh_forward: Option<SshForward> },
    /// `net_bridge`: a host bridge through qemu-bridge-helper.
    Bridge(String),
}

/// `hostfwd=tcp:127.0.0.1:HOST-:GUEST`: only loopback can reach the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SshForward {
    pub host_port: u16,
    pub guest_port: u16,
}

/// The guest's network card and what it is plugged into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDevice {
    /// `net_device`: the QEMU device model (virtio-net, e1000, …).
    pub model: String,
    pub backend: NetBackend,
}

/// Whether and how the VM shows its screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Display {
    /// `-display none`: kiln types keys and reads the serial log through QMP
    /// and files, so a headless build needs no window and no VNC.
    Headless,
    /// No `-display`: QEMU picks (`use_default_display`).
    QemuDefault,
    /// `-display NAME` (gtk, sdl, cocoa, …).
    Named(String),
}

/// QEMU's VNC server, for a person to watch (kiln itself types through QMP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vnc {
    /// The address to listen on (`vnc_bind_address`).
    pub bind: std::net::IpAddr,
    /// The TCP port; QEMU takes it as display `port - 5900`.
    pub port: u16,
    /// `password=on`: no client gets in until QMP `change-vnc-password`.
    pub password: bool,
}

/// The first port of QEMU's VNC displays: `-vnc HOST:N` listens on 5900 + N.
pub const VNC_BASE_PORT: u16 = 5900;

impl Vnc {
    /// The `-vnc` value: `HOST:DISPLAY[,password=on]`, an IPv6 host in brackets.
    fn arg(&self) -> Result<String, CommandError> {
        let display = self
            .port
            .checked_sub(VNC_BASE_PORT)
            .ok_or(CommandError::VncPortBelowBase { port: self.port })?;
        let host = match self.bind {
            std::net::IpAddr::V4(a) => a.to_string(),
            std::net::IpAddr::V6(a) => format!("[{a}]"),
        };
        let password = if self.password { ",password=on" } else { "" };
        Ok(format!("{host}:{display}{password}"))
    }

    /// `vnc://HOST:PORT`, for the user's VNC client.
    pub fn url(&self) -> String {
        match self.bind {
            std::net::IpAddr::V6(a) => format!("vnc://[{a}]:{}", self.port),
            a => format!("vnc://{a}:{}", self.port),
        }
    }
}

/// A TPM emulated by swtpm: its control socket and the guest device
/// (`tpm-tis`, `tpm-crb`, `tpm-tis-device`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tpm {
    pub socket: PathBuf,
    pub device: String,
}

/// What the VM boots its firmware from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Firmware {
    /// QEMU's built-in SeaBIOS.
    #[default]
    Default,
    /// `-bios PATH` (Packer's `firmware`).
    Bios(PathBuf),
    /// UEFI from flash: read-only code and a private, writable copy of the
    /// variable store (never the system's template file).
    Pflash { code: PathBuf, vars: PathBuf },
    /// One read-only flash drive and no variable store: `firmware` with
    /// `use_pflash`, or UEFI code with `efi_drop_efivars` (Packer's keys).
    PflashCode(PathBuf),
}

/// The CPU topology; `None` leaves a count to QEMU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTopology {
    pub sockets: Option<u32>,
    pub cores: Option<u32>,
    pub threads: Option<u32>,
}

/// An error in turning the description into argv.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("qemuargs: row {row} is empty; each row starts with a switch such as \"-m\"")]
    EmptyQemuArgsRow { row: usize },
    #[error("the path {path:?} is not valid UTF-8, which QEMU's option syntax cannot carry")]
    NonUtf8Path { path: PathBuf },
    #[error("VNC port {port} is below 5900, where QEMU's VNC displays start")]
    VncPortBelowBase { port: u16 },
}

/// Everything kiln puts on the `qemu-system` command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuCommand {
    pub binary: String,
    pub name: Option<String>,
    pub machine_type: String,
    pub accel: Accelerator,
    pub cpus: u32,
    /// `-smp`'s sockets, cores and threads (`sockets`, `cores`, `threads`).
    pub topology: CpuTopology,
    /// `-cpu MODEL` (`cpu_model`); QEMU's default model when none.
    pub cpu_model: Option<String>,
    /// `-vga TYPE` (`vga`).
    pub vga: Option<String>,
    pub memory_mib: u64,
    pub firmware: Firmware,
    /// `-boot VALUE`: `once=d` boots the CD-ROM once, then the disk after the
    /// installer reboots; `c` boots a disk image.
    pub boot: Option<String>,
    pub disks: Vec<DiskDrive>,
    pub cdroms: Vec<CdromDrive>,
    /// A 1.44 MB floppy image in drive A (`floppy_files`).
    pub floppy: Option<PathBuf>,
    pub net: Option<NetDevice>,
    pub display: Display,
    /// `-vnc`: none when `disable_vnc` (QEMU then serves no VNC at all).
    pub vnc: Option<Vnc>,
    /// `-qmp unix:PATH,server=on,wait=off`.
    pub qmp_socket: Option<PathBuf>,
    /// A TPM from swtpm's socket (`vtpm`), as the given device.
    pub tpm: Option<Tpm>,
    /// A second `-qmp` socket for the user (`qmp_enable`); kiln's own is
    /// `qmp_socket`, and a QMP socket serves one client at a time.
    pub user_qmp_socket: Option<PathBuf>,
    /// `-serial file:PATH`: the guest's serial console, for the log.
    pub serial_log: Option<PathBuf>,
    /// `-no-reboot`: a guest reboot makes QEMU exit instead.
    pub no_reboot: bool,
    /// `-S -incoming defer`: QEMU starts paused and waits for a migration
    /// stream (`migrate-incoming`) instead of booting: a memory-state resume.
    pub incoming_deferred: bool,
    /// The user's `qemuargs`, already interpolated.
    pub qemuargs: Vec<Vec<String>>,
}

impl QemuCommand {
    /// A VM with nothing attached, headless, under `accel`.
    pub fn new(binary: impl Into<String>, accel: Accelerator) -> Self {
        Self {
            binary: binary.into(),
            name: None,
            machine_type: "pc".into(),
            accel,
            cpus: 1,
            topology: CpuTopology::default(),
            cpu_model: None,
            vga: None,
            memory_mib: 512,
            firmware: Firmware::Default,
            boot: None,
            disks: Vec::new(),
            cdroms: Vec::new(),
            floppy: None,
            net: None,
            display: Display::Headless,
            vnc: None,
            qmp_socket: None,
            tpm: None,
            user_qmp_socket: None,
            serial_log: None,
            no_reboot: false,
            incoming_deferred: false,
            qemuargs: Vec::new(),
        }
    }

    /// `-smp`: one socket per CPU unless a topology is given (Packer's
    /// default), then QEMU checks that sockets × cores × threads fit.
    fn smp(&self) -> Option<String> {
        let t = &self.topology;
        if t == &CpuTopology::default() {
            return (self.cpus > 1).then(|| format!("cpus={0},sockets={0}", self.cpus));
        }
        let mut smp = format!("cpus={}", self.cpus);
        for (name, v) in [
            ("sockets", t.sockets),
            ("cores", t.cores),
            ("threads", t.threads),
        ] {
            if let Some(v) = v {
                smp.push_str(&format!(",{name}={v}"));
            }
        }
        Some(smp)
    }

    /// kiln's own switches, in order, before `qemuargs` are applied.
    fn default_switches(&self) -> Result<Vec<(&'static str, Option<String>)>, CommandError> {
        let mut out: Vec<(&'static str, Option<String>)> = Vec::new();
        let mut push = |switch: &'static str, value: String| out.push((switch, Some(value)));

        if let Some(name) = &self.name {
            push("-name", name.clone());
        }
        push(
            "-machine",
            match self.accel {
                Accelerator::None => format!("type={}", self.machine_type),
                a => format!("type={},accel={a}", self.machine_type),
            },
        );
        if let Some(smp) = self.smp() {
            push("-smp", smp);
        }
        if let Some(model) = &self.cpu_model {
            push("-cpu", model.clone());
        }
        push("-m", format!("{}M", self.memory_mib));
        match &self.firmware {
            Firmware::Default => {}
            Firmware::Bios(path) => push("-bios", utf8(path)?.to_owned()),
            Firmware::Pflash { code, vars } => {
                push(
                    "-drive",
                    format!(
                        "if=pflash,unit=0,format=raw,readonly=on,file={}",
                        opt_path(code)?
                    ),
                );
                push(
                    "-drive",
                    format!("if=pflash,unit=1,format=raw,file={}", opt_path(vars)?),
                );
            }
            Firmware::PflashCode(code) => push(
                "-drive",
                format!(
                    "if=pflash,unit=0,format=raw,readonly=on,file={}",
                    opt_path(code)?
                ),
            ),
        }
        if let Some(boot) = &self.boot {
            push("-boot", boot.clone());
        }
        if let Some(vga) = &self.vga {
            push("-vga", vga.clone());
        }
        if let Some(tpm) = &self.tpm {
            push(
                "-chardev",
                format!("socket,id=chrtpm,path={}", utf8(&tpm.socket)?),
            );
            push("-tpmdev", "emulator,id=tpm0,chardev=chrtpm".to_owned());
            push("-device", format!("{},tpmdev=tpm0", tpm.device));
        }

        let mut devices = Vec::new();
        let mut scsi_controller = false;
        for (i, d) in self.disks.iter().enumerate() {
            let file = opt_path(&d.path)?;
            let mut spec = if d.interface == DiskInterface::VirtioScsi {
                if !scsi_controller {
                    devices.push("virtio-scsi-pci,id=scsi0".to_owned());
                    scsi_controller = true;
                }
                devices.push(format!("scsi-hd,bus=scsi0.0,drive=drive{i}"));
                format!("if=none,file={file},id=drive{i}")
            } else {
                format!("file={file},if={}", d.interface.if_name())
            };
            spec.push_str(&format!(
                ",cache={},discard={},format={}",
                d.cache,
                d.discard,
                d.format.as_str()
            ));
            if d.detect_zeroes != "off" {
                spec.push_str(&format!(",detect-zeroes={}", d.detect_zeroes));
            }
            push("-drive", spec);
        }
        // No `index=`: QEMU gives each CD the next free unit on its bus, so
        // an IDE disk and an IDE CD-ROM cannot both claim unit 0.
        for (i, cd) in self.cdroms.iter().enumerate() {
            let file = opt_path(&cd.path)?;
            let spec = match cd.interface {
                None => format!("file={file},media=cdrom"),
                Some(DiskInterface::VirtioScsi) => {
                    if !scsi_controller {
                        devices.push("virtio-scsi-pci,id=scsi0".to_owned());
                        scsi_controller = true;
                    }
                    devices.push(format!("scsi-cd,bus=scsi0.0,drive=cdrom{i}"));
                    format!("file={file},if=none,id=cdrom{i},media=cdrom")
                }
                Some(iface) => {
                    format!("file={file},if={},id=cdrom{i},media=cdrom", iface.if_name())
                }
            };
            push("-drive", spec);
        }
        // Packer's `-fda`, spelled out: an explicit format (no probing
        // warning). QEMU adds the ISA floppy controller for an if=floppy
        // drive on q35 as well as on pc.
        if let Some(floppy) = &self.floppy {
            push(
                "-drive",
                format!("file={},if=floppy,format=raw,index=0", opt_path(floppy)?),
            );
        }
        if let Some(net) = &self.net {
            devices.push(format!("{},netdev=user.0", net.model));
        }
        for d in devices {
            push("-device", d);
        }
        if let Some(net) = &self.net {
            push(
                "-netdev",
                match &net.backend {
                    NetBackend::User { ssh_forward: None } => "user,id=user.0".to_owned(),
                    NetBackend::User {
                        ssh_forward: Some(f),
                    } => format!(
                        "user,id=user.0,hostfwd=tcp:127.0.0.1:{}-:{}",
                        f.host_port, f.guest_port
                    ),
                    NetBackend::Bridge(br) => format!("bridge,id=user.0,br={br}"),
                },
            );
        }
        match &self.display {
            Display::Headless => push("-display", "none".into()),
            Display::QemuDefault => {}
            Display::Named(name) => push("-display", name.clone()),
        }
        if let Some(vnc) = &self.vnc {
            push("-vnc", vnc.arg()?);
        }
        if let Some(sock) = &self.qmp_socket {
            push(
                "-qmp",
                format!("unix:{},server=on,wait=off", opt_path(sock)?),
            );
        }
        if let Some(sock) = &self.user_qmp_socket {
            push(
                "-qmp",
                format!("unix:{},server=on,wait=off", opt_path(sock)?),
            );
        }
        if let Some(log) = &self.serial_log {
            push("-serial", format!("file:{}", utf8(log)?));
        }
        if self.no_reboot {
            out.push(("-no-reboot", None));
        }
        if self.incoming_deferred {
            out.push(("-S", None));
            out.push(("-incoming", Some("defer".to_owned())));
        }
        Ok(out)
    }

    /// The arguments after the program name, in order.
    pub fn args(&self) -> Result<Vec<String>, CommandError> {
        let defaults = self.default_switches()?;

        // The user's rows, grouped by switch in first-seen order; a row's
        // parts after the switch are concatenated (Packer joins them with "").
        let mut user: Vec<(String, Vec<String>)> = Vec::new();
        for (row_no, row) in self.qemuargs.iter().enumerate() {
            let Some((switch, parts)) = row.split_first() else {
                return Err(CommandError::EmptyQemuArgsRow { row: row_no + 1 });
            };
            let value = parts.concat();
            let i = match user.iter().position(|(s, _)| s == switch) {
                Some(i) => i,
                None => {
                    user.push((switch.clone(), Vec::new()));
                    user.len() - 1
                }
            };
            if !value.is_empty() {
                user[i].1.push(value);
            }
        }
        // Packer re-adds the network card when the user's -device rows leave
        // it out, so `qemuargs: [["-device", "virtio-rng-pci"]]` keeps networking.
        if let Some(net) = &self.net
            && let Some((_, values)) = user.iter_mut().find(|(s, _)| s == "-device")
            && !values.iter().any(|v| v.contains(&net.model))
        {
            values.push(format!("{},netdev=user.0", net.model));
        }
        // The TPM device likewise: `vtpm` asked for it, a -device row for
        // something else should not drop it.
        if let Some(tpm) = &self.tpm
            && let Some((_, values)) = user.iter_mut().find(|(s, _)| s == "-device")
            && !values.iter().any(|v| v.contains("tpmdev=tpm0"))
        {
            values.push(format!("{},tpmdev=tpm0", tpm.device));
        }

        let mut argv = Vec::new();
        let mut placed: Vec<&str> = Vec::new();
        for (switch, value) in &defaults {
            if let Some((_, values)) = user.iter().find(|(s, _)| s == switch) {
                if !placed.contains(switch) {
                    placed.push(switch);
                    push_switch(&mut argv, switch, values);
                }
                continue;
            }
            argv.push((*switch).to_owned());
            argv.extend(value.iter().cloned());
        }
        for (switch, values) in &user {
            if !defaults.iter().any(|(s, _)| s == switch) {
                push_switch(&mut argv, switch, values);
            }
        }
        Ok(argv)
    }
}

/// `-s v1 -s v2`, or a bare `-s` when the user gave no value.
fn push_switch(argv: &mut Vec<String>, switch: &str, values: &[String]) {
    if values.is_empty() {
        argv.push(switch.to_owned());
    }
    for v in values {
        argv.push(switch.to_owned());
        argv.push(v.clone());
    }
}

fn utf8(path: &Path) -> Result<&str, CommandError> {
    path.to_str().ok_or_else(|| CommandError::NonUtf8Path {
        path: path.to_owned(),
    })
}

/// A path inside a QEMU option list, where a comma is written twice.
fn opt_path(path: &Path) -> Result<String, CommandError> {
    Ok(utf8(path)?.replace(',', ",,"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the qemu builder starts for an ISO install with Packer's defaults.
    fn installer() -> QemuCommand {
        let mut c = QemuCommand::new("qemu-system-x86_64", Accelerator::Tcg);
        c.name = Some("packer-tiny".into());
        c.boot = Some("once=d".into());
        c.disks = vec![DiskDrive::new("out/packer-tiny", ImageFormat::Qcow2)];
        c.cdroms = vec![CdromDrive {
            path: "/cache/tiny.iso".into(),
            interface: None,
        }];
        c.net = Some(NetDevice {
            model: "virtio-net".into(),
            backend: NetBackend::User {
                ssh_forward: Some(SshForward {
                    host_port: 3456,
                    guest_port: 22,
                }),
            },
        });
        c.qmp_socket = Some("/tmp/kiln-x/qmp.sock".into());
        c.serial_log = Some("out/serial.log".into());
        c
    }

    fn args(c: &QemuCommand) -> Vec<String> {
        c.args().expect("valid command")
    }

    #[test]
    fn default_installer() {
        assert_eq!(
            args(&installer()),
            [
                "-name",
                "packer-tiny",
                "-machine",
                "type=pc,accel=tcg",
                "-m",
                "512M",
                "-boot",
                "once=d",
                "-drive",
                "file=out/packer-tiny,if=virtio,cache=writeback,discard=ignore,format=qcow2",
                "-drive",
                "file=/cache/tiny.iso,media=cdrom",
                "-device",
                "virtio-net,netdev=user.0",
                "-netdev",
                "user,id=user.0,hostfwd=tcp:127.0.0.1:3456-:22",
                "-display",
                "none",
                "-qmp",
                "unix:/tmp/kiln-x/qmp.sock,server=on,wait=off",
                "-serial",
                "file:out/serial.log",
            ]
        );
    }

    #[test]
    fn a_memory_resume_starts_paused_waiting_for_the_state() {
        let mut c = installer();
        let plain = args(&c);
        assert!(!plain.iter().any(|a| a == "-incoming"), "{plain:?}");
        c.incoming_deferred = true;
        let a = args(&c);
        let at = a.iter().position(|x| x == "-incoming").expect("-incoming");
        assert_eq!(a[at + 1], "defer", "{a:?}");
        assert!(a.iter().any(|x| x == "-S"), "{a:?}");
        // The devices are the install's: the same switches, plus those two.
        assert_eq!(a.len(), plain.len() + 3, "{a:?}");
    }

    #[test]
    fn ide_disk_raw_format_ide_cdrom_smp_no_reboot() {
        let mut c = installer();
        c.cpus = 2;
        c.no_reboot = true;
        c.disks[0].interface = DiskInterface::Ide;
        c.disks[0].format = ImageFormat::Raw;
        c.disks[0].discard = "unmap".into();
        c.disks[0].detect_zeroes = "unmap".into();
        c.cdroms[0].interface = Some(DiskInterface::Ide);
        c.display = Display::Named("gtk".into());
        let a = args(&c);
        assert_eq!(a[4..8], ["-smp", "cpus=2,sockets=2", "-m", "512M"], "{a:?}");

        // A topology and a CPU model, as Bento's templates set them.
        c.cpus = 4;
        c.topology = CpuTopology {
            sockets: Some(1),
            cores: Some(2),
            threads: Some(2),
        };
        c.cpu_model = Some("host".into());
        c.vga = Some("virtio".into());
        let a = c.args().expect("args");
        assert_eq!(
            a[4..10],
            [
                "-smp",
                "cpus=4,sockets=1,cores=2,threads=2",
                "-cpu",
                "host",
                "-m",
                "512M"
            ],
            "{a:?}"
        );
        let vga = a.iter().position(|x| x == "-vga").expect("-vga");
        assert_eq!(a[vga + 1], "virtio");
        assert!(a.windows(2).any(|w| w
            == [
                "-drive",
                "file=out/packer-tiny,if=ide,cache=writeback,discard=unmap,format=raw,detect-zeroes=unmap"
            ]));
        assert!(a.windows(2).any(|w| w
            == [
                "-drive",
                "file=/cache/tiny.iso,if=ide,id=cdrom0,media=cdrom"
            ]));
        assert!(a.windows(2).any(|w| w == ["-display", "gtk"]));
        assert_eq!(a.last().map(String::as_str), Some("-no-reboot"));
    }

    #[test]
    fn virtio_scsi_disks_and_cdrom_share_one_controller() {
        let mut c = installer();
        c.disks[0].interface = DiskInterface::VirtioScsi;
        c.disks.push(DiskDrive {
            interface: DiskInterface::VirtioScsi,
            ..DiskDrive::new("out/packer-tiny-1", ImageFormat::Qcow2)
        });
        c.cdroms[0].interface = Some(DiskInterface::VirtioScsi);
        let a = args(&c);
        let devices: Vec<&str> = a
            .windows(2)
            .filter(|w| w[0] == "-device")
            .map(|w| w[1].as_str())
            .collect();
        assert_eq!(
            devices,
            [
                "virtio-scsi-pci,id=scsi0",
                "scsi-hd,bus=scsi0.0,drive=drive0",
                "scsi-hd,bus=scsi0.0,drive=drive1",
                "scsi-cd,bus=scsi0.0,drive=cdrom0",
                "virtio-net,netdev=user.0"
            ]
        );
        assert!(a.windows(2).any(|w| w
            == [
                "-drive",
                "if=none,file=out/packer-tiny,id=drive0,cache=writeback,discard=ignore,format=qcow2"
            ]));
    }

    #[test]
    fn qemuargs_replace_memory_and_devices_and_append_others() {
        let mut c = installer();
        c.qemuargs = vec![
            vec!["-m".into(), "1024".into(), "M".into()],
            vec!["-device".into(), "virtio-rng-pci".into()],
            vec!["-device".into(), "e1000,netdev=user.0".into()],
            vec!["-cpu".into(), "host".into()],
            vec!["-no-reboot".into()],
        ];
        c.net = Some(NetDevice {
            model: "e1000".into(),
            backend: NetBackend::User { ssh_forward: None },
        });
        assert_eq!(
            args(&c),
            [
                "-name",
                "packer-tiny",
                "-machine",
                "type=pc,accel=tcg",
                "-m",
                "1024M",
                "-boot",
                "once=d",
                "-drive",
                "file=out/packer-tiny,if=virtio,cache=writeback,discard=ignore,format=qcow2",
                "-drive",
                "file=/cache/tiny.iso,media=cdrom",
                "-device",
                "virtio-rng-pci",
                "-device",
                "e1000,netdev=user.0",
                "-netdev",
                "user,id=user.0",
                "-display",
                "none",
                "-qmp",
                "unix:/tmp/kiln-x/qmp.sock,server=on,wait=off",
                "-serial",
                "file:out/serial.log",
                "-cpu",
                "host",
                "-no-reboot",
            ]
        );
    }

    #[test]
    fn qemuargs_device_without_the_nic_gets_it_back() {
        let mut c = installer();
        c.qemuargs = vec![vec!["-device".into(), "virtio-rng-pci".into()]];
        let a = args(&c);
        let devices: Vec<&str> = a
            .windows(2)
            .filter(|w| w[0] == "-device")
            .map(|w| w[1].as_str())
            .collect();
        assert_eq!(devices, ["virtio-rng-pci", "virtio-net,netdev=user.0"]);
    }

    #[test]
    fn a_vtpm_is_swtpms_socket_as_a_tis_or_crb_device_kept_beside_user_devices() {
        let mut c = installer();
        c.tpm = Some(Tpm {
            socket: "/run/kiln-vm-x/swtpm.sock".into(),
            device: "tpm-crb".into(),
        });
        let a = args(&c);
        let pairs: Vec<(&str, &str)> = a
            .windows(2)
            .filter(|w| {
                ["-chardev", "-tpmdev"].contains(&w[0].as_str())
                    || (w[0] == "-device" && w[1].contains("tpm"))
            })
            .map(|w| (w[0].as_str(), w[1].as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                (
                    "-chardev",
                    "socket,id=chrtpm,path=/run/kiln-vm-x/swtpm.sock"
                ),
                ("-tpmdev", "emulator,id=tpm0,chardev=chrtpm"),
                ("-device", "tpm-crb,tpmdev=tpm0"),
            ]
        );
        c.qemuargs = vec![vec!["-device".into(), "virtio-rng-pci".into()]];
        let a = args(&c);
        assert!(
            a.windows(2)
                .any(|w| w == ["-device", "tpm-crb,tpmdev=tpm0"]),
            "{a:?}"
        );
    }

    #[test]
    fn efi_firmware_from_pflash_kvm_and_no_accel() {
        let mut c = QemuCommand::new("qemu-system-x86_64", Accelerator::Kvm);
        c.machine_type = "q35".into();
        c.firmware = Firmware::Pflash {
            code: "/usr/share/OVMF/OVMF_CODE_4M.fd".into(),
            vars: "out/efivars.fd".into(),
        };
        c.disks = vec![DiskDrive::new("out/disk", ImageFormat::Qcow2)];
        c.display = Display::QemuDefault;
        assert_eq!(
            args(&c),
            [
                "-machine",
                "type=q35,accel=kvm",
                "-m",
                "512M",
                "-drive",
                "if=pflash,unit=0,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
                "-drive",
                "if=pflash,unit=1,format=raw,file=out/efivars.fd",
                "-drive",
                "file=out/disk,if=virtio,cache=writeback,discard=ignore,format=qcow2",
            ]
        );
        c.accel = Accelerator::None;
        c.firmware = Firmware::Bios("/opt/bios.bin".into());
        let a = args(&c);
        assert_eq!(a[..2], ["-machine", "type=q35"]);
        assert!(a.windows(2).any(|w| w == ["-bios", "/opt/bios.bin"]));
        c.firmware = Firmware::PflashCode("/opt/bios.bin".into());
        let a = args(&c);
        assert!(!a.iter().any(|x| x == "-bios"), "{a:?}");
        let drives: Vec<&str> = a
            .windows(2)
            .filter(|w| w[0] == "-drive" && w[1].contains("pflash"))
            .map(|w| w[1].as_str())
            .collect();
        assert_eq!(
            drives,
            ["if=pflash,unit=0,format=raw,readonly=on,file=/opt/bios.bin"]
        );
    }

    #[test]
    fn a_floppy_goes_in_drive_a_after_the_cdroms_on_pc_and_q35() {
        let mut c = installer();
        c.floppy = Some("/tmp/kiln-floppy-x/floppy,1.img".into());
        for machine in ["pc", "q35"] {
            c.machine_type = machine.into();
            let drives: Vec<String> = args(&c)
                .windows(2)
                .filter(|w| w[0] == "-drive")
                .map(|w| w[1].clone())
                .collect();
            assert_eq!(
                drives,
                [
                    "file=out/packer-tiny,if=virtio,cache=writeback,discard=ignore,format=qcow2",
                    "file=/cache/tiny.iso,media=cdrom",
                    "file=/tmp/kiln-floppy-x/floppy,,1.img,if=floppy,format=raw,index=0",
                ]
            );
        }
    }

    #[test]
    fn commas_in_paths_are_doubled_and_empty_rows_rejected() {
        let mut c = QemuCommand::new("qemu", Accelerator::Tcg);
        c.disks = vec![DiskDrive::new("out/a,b", ImageFormat::Raw)];
        assert!(args(&c).iter().any(|a| a.starts_with("file=out/a,,b,")));
        c.qemuargs = vec![vec!["-m".into(), "64".into()], vec![]];
        assert_eq!(c.args(), Err(CommandError::EmptyQemuArgsRow { row: 2 }));
    }

    #[test]
    fn vnc_on_loopback_with_and_without_a_password_and_a_user_qmp_socket() {
        let mut c = installer();
        c.vnc = Some(Vnc {
            bind: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 5907,
            password: false,
        });
        let a = args(&c);
        let display = a.iter().position(|x| x == "-display").expect("-display");
        assert_eq!(
            a[display..display + 4],
            ["-display", "none", "-vnc", "127.0.0.1:7"],
            "{a:?}"
        );
        c.vnc = Some(Vnc {
            bind: "::1".parse().expect("ip"),
            port: 6000,
            password: true,
        });
        assert!(
            args(&c)
                .windows(2)
                .any(|w| w == ["-vnc", "[::1]:100,password=on"])
        );
        assert_eq!(
            c.vnc.as_ref().map(Vnc::url).as_deref(),
            Some("vnc://[::1]:6000")
        );
        c.user_qmp_socket = Some("out/packer-tiny.monitor".into());
        let a = args(&c);
        let qmp: Vec<&str> = a
            .windows(2)
            .filter(|w| w[0] == "-qmp")
            .map(|w| w[1].as_str())
            .collect();
        assert_eq!(
            qmp,
            [
                "unix:/tmp/kiln-x/qmp.sock,server=on,wait=off",
                "unix:out/packer-tiny.monitor,server=on,wait=off"
            ]
        );
        // A user's own -vnc row replaces kiln's, as qemuargs rows do.
        c.qemuargs = vec![vec!["-vnc".into(), "none".into()]];
        let a = args(&c);
        assert_eq!(a.iter().filter(|x| *x == "-vnc").count(), 1, "{a:?}");
        assert!(a.windows(2).any(|w| w == ["-vnc", "none"]));
        c.vnc = Some(Vnc {
            bind: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 5899,
            password: false,
        });
        assert_eq!(c.args(), Err(CommandError::VncPortBelowBase { port: 5899 }));
    }
}
