//! The registry of VMs and media, option parsing, `modifyvm`, the
//! `showvminfo --machinereadable` text, and errors as VBoxManage prints them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A failure: lines printed as `VBoxManage: error: …`, exit 1.
#[derive(Debug)]
pub struct Fail(Vec<String>);

impl Fail {
    pub fn new(lines: &[&str]) -> Self {
        Self(lines.iter().map(|l| (*l).to_owned()).collect())
    }

    pub fn syntax(msg: &str) -> Self {
        Self::new(&[msg])
    }

    pub fn unknown_option(opt: &str) -> Self {
        Self::new(&[&format!("Unknown option: {opt}")])
    }

    pub fn locked(name: &str) -> Self {
        Self::new(&[
            &format!("The machine '{name}' is already locked for a session (or being unlocked)"),
            "Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component MachineWrap, interface IMachine",
        ])
    }

    pub fn not_running(name: &str) -> Self {
        Self::new(&[&format!("Machine '{name}' is not currently running")])
    }

    pub fn no_controller(name: &str) -> Self {
        Self::new(&[&format!("Could not find a controller named '{name}'")])
    }

    pub fn io(what: &str, e: &std::io::Error) -> Self {
        Self::new(&[&format!("Could not {what}: {e}")])
    }

    pub fn print(&self) {
        for line in &self.0 {
            eprintln!("VBoxManage: error: {line}");
        }
    }
}

/// `--opt=value` → `--opt value` (VBoxManage accepts both).
pub fn split_equals(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for a in args {
        match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => {
                out.push(k.to_owned());
                out.push(v.to_owned());
            }
            _ => out.push(a.clone()),
        }
    }
    out
}

pub fn absolute(p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_owned()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    }
}

/// Reads `--opt value …` lists.
pub struct Opts<'a> {
    args: &'a [String],
    i: usize,
}

impl<'a> Opts<'a> {
    pub fn new(args: &'a [String]) -> Self {
        Self { args, i: 0 }
    }

    pub fn next_opt(&mut self) -> Result<Option<String>, Fail> {
        let Some(a) = self.args.get(self.i) else {
            return Ok(None);
        };
        self.i += 1;
        if !a.starts_with('-') {
            return Err(Fail::syntax(&format!("Invalid parameter '{a}'")));
        }
        Ok(Some(a.clone()))
    }

    pub fn value(&mut self, opt: &str) -> Result<String, Fail> {
        let v = self
            .args
            .get(self.i)
            .ok_or_else(|| Fail::syntax(&format!("Option {opt} requires an argument")))?;
        self.i += 1;
        Ok(v.clone())
    }

    pub fn number(&mut self, opt: &str) -> Result<u64, Fail> {
        let v = self.value(opt)?;
        v.parse()
            .map_err(|_| Fail::syntax(&format!("Invalid number '{v}' for {opt} (VERR_NO_DIGITS)")))
    }

    pub fn on_off(&mut self, opt: &str) -> Result<bool, Fail> {
        match self.value(opt)?.as_str() {
            "on" => Ok(true),
            "off" => Ok(false),
            other => Err(Fail::syntax(&format!(
                "Invalid {opt} argument '{other}' (expected on or off)"
            ))),
        }
    }

    fn one_of(&mut self, opt: &str, allowed: &[&str]) -> Result<String, Fail> {
        let v = self.value(opt)?;
        if allowed.iter().any(|a| a.eq_ignore_ascii_case(&v)) {
            Ok(v.to_lowercase())
        } else {
            Err(Fail::new(&[&format!("Invalid {opt} argument '{v}'")]))
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Registry {
    pub vms: Vec<Vm>,
    pub media: Vec<Medium>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Medium {
    pub uuid: String,
    pub path: PathBuf,
    pub size_mib: u64,
    /// Made by `createmedium` (qcow2 inside); other media are probed by qemu.
    pub qcow2: bool,
    /// A differencing image's parent (its UUID): made by `snapshot take`,
    /// a qcow2 whose backing file is the parent's.
    #[serde(default)]
    pub parent: Option<String>,
}

/// A snapshot: its name, and for each hard disk it froze the differencing
/// image the VM has written to since and the medium that image grows from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub name: String,
    pub uuid: String,
    pub description: String,
    pub disks: Vec<SnapshotDisk>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotDisk {
    pub diff: PathBuf,
    pub parent: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Controller {
    pub name: String,
    /// `ide`, `sata`, `scsi`, `pcie`, `virtio`, `floppy`, `sas`, `usb`.
    pub bus: String,
    /// PIIX4, IntelAhci, LsiLogic, NVMe, VirtioSCSI, …
    pub chip: String,
    pub port_count: u32,
}

impl Controller {
    pub fn new(
        name: &str,
        bus: &str,
        chip: Option<&str>,
        ports: Option<u32>,
    ) -> Result<Self, Fail> {
        let (default_chip, default_ports, max_ports) = match bus {
            "ide" => ("PIIX4", 2, 2),
            "sata" => ("IntelAhci", 30, 30),
            "scsi" => ("LsiLogic", 16, 16),
            "sas" => ("LsiLogicSas", 8, 255),
            "pcie" => ("NVMe", 1, 255),
            "virtio" => ("VirtioSCSI", 1, 255),
            "floppy" => ("I82078", 1, 1),
            "usb" => ("USB", 8, 8),
            other => {
                return Err(Fail::new(&[&format!("Invalid --add argument '{other}'")]));
            }
        };
        let chip = chip.unwrap_or(default_chip);
        let known = [
            "PIIX3",
            "PIIX4",
            "ICH6",
            "IntelAhci",
            "LsiLogic",
            "BusLogic",
            "LsiLogicSas",
            "NVMe",
            "VirtIO",
            "VirtioSCSI",
            "I82078",
            "USB",
        ];
        if !known.iter().any(|k| k.eq_ignore_ascii_case(chip)) {
            return Err(Fail::new(&[&format!("Invalid --type argument '{chip}'")]));
        }
        let port_count = ports.unwrap_or(default_ports);
        if port_count == 0 || port_count > max_ports {
            return Err(Fail::new(&[&format!(
                "Invalid --portcount argument '{port_count}' (1..{max_ports})"
            )]));
        }
        Ok(Self {
            name: name.to_owned(),
            bus: bus.to_owned(),
            chip: chip.to_owned(),
            port_count,
        })
    }

    /// (ports, devices per port).
    pub fn limits(&self) -> (u32, u32) {
        match self.bus.as_str() {
            "ide" => (2, 2),
            _ => (self.port_count, 1),
        }
    }

    /// The most ports the bus can have (`--portcount` and growth stop there).
    pub fn max_ports(&self) -> u32 {
        match self.bus.as_str() {
            "ide" => 2,
            "sata" => 30,
            "scsi" => 16,
            "usb" => 8,
            "floppy" => 1,
            _ => 255,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    pub controller: String,
    pub port: u32,
    pub device: u32,
    /// `hdd`, `dvddrive`, `fdd`.
    pub kind: String,
    /// None: an empty DVD drive.
    pub medium: Option<PathBuf>,
    pub nonrotational: bool,
    pub discard: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Vm {
    pub name: String,
    pub uuid: String,
    pub ostype: String,
    pub dir: PathBuf,
    pub memory: u64,
    pub cpus: u64,
    pub vram: u64,
    pub chipset: String,
    pub firmware: String,
    pub boot: [String; 4],
    pub usb: bool,
    pub audio: String,
    pub graphicscontroller: String,
    pub nic1: String,
    pub nictype1: String,
    pub macaddress1: String,
    pub natpf1: Vec<String>,
    /// `--uart1 IO IRQ` when set.
    pub uart1: Option<(String, String)>,
    /// `--uartmode1 file PATH` (the only mode that matters here).
    pub uartmode1_file: Option<PathBuf>,
    pub controllers: Vec<Controller>,
    pub attachments: Vec<Attachment>,
    pub state_change_time: String,
    /// The VRDE (remote display) server: `--vrde`, `--vrdeport`,
    /// `--vrdeaddress`, `--vrdeauthtype`.
    #[serde(default)]
    pub vrde: bool,
    #[serde(default)]
    pub vrdeport: String,
    #[serde(default)]
    pub vrdeaddress: String,
    #[serde(default)]
    pub vrdeauthtype: String,
    /// The qemu pid while it was last seen running.
    pub pid: Option<u32>,
    /// Set by `showvminfo` when qemu reports the guest stopped (`pause`,
    /// or a disk error that suspends it, as VirtualBox does).
    #[serde(default)]
    pub paused: bool,
    /// On/off settings kiln only sets (`rtcuseutc`, `nested-hw-virt`,
    /// `accelerate3d`, `ehci`, `xhci`…), by their `--machinereadable` name.
    #[serde(default)]
    pub flags: std::collections::BTreeMap<String, String>,
    /// `audio_controller`, as VirtualBox prints it (`AC97`, `HDA`, `SB16`).
    #[serde(default)]
    pub audio_controller: String,
    /// `setextradata` keys and values.
    #[serde(default)]
    pub extradata: std::collections::BTreeMap<String, String>,
    /// Snapshots, oldest first (a chain: each one the next's parent).
    #[serde(default)]
    pub snapshots: Vec<Snapshot>,
}

impl Vm {
    pub fn new(name: &str, uuid: &str, ostype: &str, dir: &Path) -> Self {
        let mac_tail = &uuid.replace('-', "")[..6];
        Self {
            name: name.to_owned(),
            uuid: uuid.to_owned(),
            ostype: ostype.to_owned(),
            dir: dir.to_owned(),
            memory: 128,
            cpus: 1,
            vram: 8,
            chipset: "piix3".into(),
            firmware: "bios".into(),
            boot: ["floppy", "dvd", "disk", "none"].map(String::from),
            usb: false,
            audio: "none".into(),
            graphicscontroller: "vboxvga".into(),
            nic1: "nat".into(),
            nictype1: "82540EM".into(),
            macaddress1: format!("080027{}", mac_tail.to_uppercase()),
            natpf1: Vec::new(),
            uart1: None,
            uartmode1_file: None,
            controllers: Vec::new(),
            attachments: Vec::new(),
            state_change_time: timestamp_now(),
            vrde: false,
            vrdeport: "3389".into(),
            vrdeaddress: String::new(),
            vrdeauthtype: "null".into(),
            pid: None,
            paused: false,
            flags: Default::default(),
            audio_controller: String::new(),
            extradata: Default::default(),
            snapshots: Vec::new(),
        }
    }
}

impl Registry {
    /// Registers a medium on first use, as attaching one does in VirtualBox.
    pub fn ensure_medium(&mut self, path: &Path) {
        if self.media.iter().any(|m| m.path == path) {
            return;
        }
        let size_mib = std::fs::metadata(path).map_or(0, |m| m.len() / (1024 * 1024));
        // A disk kiln made here (createmedium, clonemedium) and closed is
        // qcow2 inside; opened again by path it is known by its magic.
        let mut magic = [0u8; 4];
        let qcow2 = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
            .is_ok()
            && magic == *b"QFI\xfb";
        self.media.push(Medium {
            uuid: uuid::Uuid::new_v4().to_string(),
            path: path.to_owned(),
            size_mib,
            qcow2,
            parent: None,
        });
    }

    /// A registered medium by UUID or path (`{…}` braces allowed).
    pub fn medium(&self, uuid_or_path: &str) -> Option<usize> {
        let bare = uuid_or_path.trim_matches(|c| c == '{' || c == '}');
        let path = absolute(uuid_or_path);
        self.media
            .iter()
            .position(|m| m.uuid == bare || m.path == path)
    }

    fn path(home: &Path) -> PathBuf {
        home.join("registry.json")
    }

    pub fn load(home: &Path) -> Result<Self, Fail> {
        match std::fs::read(Self::path(home)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Fail::new(&[&format!("corrupt fake registry: {e}")])),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Fail::io("read the registry", &e)),
        }
    }

    pub fn save(&self, home: &Path) -> Result<(), Fail> {
        let tmp = home.join("registry.json.tmp");
        let text = serde_json::to_vec_pretty(self).map_err(|e| Fail::syntax(&e.to_string()))?;
        std::fs::write(&tmp, text).map_err(|e| Fail::io("write the registry", &e))?;
        std::fs::rename(&tmp, Self::path(home)).map_err(|e| Fail::io("write the registry", &e))
    }

    /// A VM by name or UUID, as VBoxManage looks them up.
    pub fn find(&self, name_or_uuid: &str) -> Result<usize, Fail> {
        let bare = name_or_uuid.trim_matches(|c| c == '{' || c == '}');
        self.vms
            .iter()
            .position(|v| v.name == name_or_uuid || v.uuid == bare)
            .ok_or_else(|| {
                Fail::new(&[
                    &format!("Could not find a registered machine named '{name_or_uuid}'"),
                    "Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component VirtualBoxWrap, interface IVirtualBox, callee nsISupports",
                    "Context: \"FindMachine(Bstr(VMNameOrUuid).raw(), machine.asOutParam())\" at line 2967 of file VBoxManageInfo.cpp",
                ])
            })
    }
}

/// The OS types kiln's templates and tests use, with the description
/// `showvminfo` prints for them.
pub fn os_type_description(id: &str) -> Option<&'static str> {
    const TYPES: &[(&str, &str)] = &[
        ("Other", "Other/Unknown"),
        ("Other_64", "Other/Unknown (64-bit)"),
        ("Linux", "Other Linux"),
        ("Linux_64", "Other Linux (64-bit)"),
        ("Linux26_64", "Linux 2.6 / 3.x / 4.x / 5.x (64-bit)"),
        ("Debian", "Debian (32-bit)"),
        ("Debian_64", "Debian (64-bit)"),
        ("Debian12_64", "Debian 12 Bookworm (64-bit)"),
        ("Ubuntu", "Ubuntu (32-bit)"),
        ("Ubuntu_64", "Ubuntu (64-bit)"),
        ("RedHat_64", "Red Hat (64-bit)"),
        ("Fedora_64", "Fedora (64-bit)"),
        ("OpenSUSE_64", "openSUSE (64-bit)"),
        ("ArchLinux_64", "Arch Linux (64-bit)"),
        ("FreeBSD_64", "FreeBSD (64-bit)"),
        ("OpenBSD_64", "OpenBSD (64-bit)"),
        ("Windows10_64", "Windows 10 (64-bit)"),
        ("Windows11_64", "Windows 11 (64-bit)"),
        ("Windows2019_64", "Windows 2019 (64-bit)"),
        ("Windows2022_64", "Windows 2022 (64-bit)"),
    ];
    TYPES
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(id))
        .map(|(_, d)| *d)
}

const NIC_TYPES: &[&str] = &[
    "Am79C970A",
    "Am79C973",
    "Am79C960",
    "82540EM",
    "82543GC",
    "82545EM",
    "virtio",
];

/// One `modifyvm` option.
pub fn modify(vm: &mut Vm, opt: &str, opts: &mut Opts<'_>) -> Result<(), Fail> {
    match opt {
        "--memory" => {
            let mib = opts.number(opt)?;
            if !(4..=2_097_152).contains(&mib) {
                return Err(Fail::new(&[&format!(
                    "Invalid RAM size: {mib} MB (must be in range [4, 2097152] MB)"
                )]));
            }
            vm.memory = mib;
        }
        "--cpus" => {
            let n = opts.number(opt)?;
            if !(1..=64).contains(&n) {
                return Err(Fail::new(&[&format!("Invalid number of CPUs: {n}")]));
            }
            vm.cpus = n;
        }
        "--vram" => vm.vram = opts.number(opt)?,
        "--boot1" | "--boot2" | "--boot3" | "--boot4" => {
            let i = usize::from(opt.as_bytes()[6] - b'1');
            vm.boot[i] = opts.one_of(opt, &["none", "floppy", "dvd", "disk", "net"])?;
        }
        "--usb" | "--usbohci" => vm.usb = opts.on_off(opt)?,
        "--usbehci" | "--usbxhci" | "--rtcuseutc" | "--nested-hw-virt" | "--accelerate3d" => {
            let key = match opt {
                "--usbehci" => "ehci",
                "--usbxhci" => "xhci",
                other => &other[2..],
            };
            let on = opts.on_off(opt)?;
            vm.flags.insert(key.to_owned(), on_off(on).to_owned());
        }
        "--audiocontroller" => {
            let c = opts.one_of(opt, &["ac97", "hda", "sb16"])?;
            vm.audio_controller = c.to_uppercase();
        }
        "--acpi"
        | "--ioapic"
        | "--pae"
        | "--hwvirtex"
        | "--nested-paging"
        | "--audioin"
        | "--audioout"
        | "--audio-in"
        | "--audio-out"
        | "--audio-enabled"
        | "--nat-localhostreachable1"
        | "--cableconnected1"
        | "--x2apic"
        | "--largepages"
        | "--hpet" => {
            opts.on_off(opt)?;
        }
        "--audio" | "--audio-driver" => {
            vm.audio = opts.one_of(
                opt,
                &[
                    "none",
                    "null",
                    "default",
                    "pulse",
                    "alsa",
                    "oss",
                    "dsound",
                    "coreaudio",
                    "was",
                ],
            )?;
        }
        "--chipset" => vm.chipset = opts.one_of(opt, &["piix3", "ich9"])?,
        "--firmware" => vm.firmware = opts.one_of(opt, &["bios", "efi", "efi32", "efi64"])?,
        "--graphicscontroller" => {
            vm.graphicscontroller = opts.one_of(opt, &["none", "vboxvga", "vmsvga", "vboxsvga"])?;
        }
        "--nic1" => {
            vm.nic1 = opts.one_of(
                opt,
                &[
                    "none",
                    "null",
                    "nat",
                    "bridged",
                    "intnet",
                    "hostonly",
                    "natnetwork",
                ],
            )?;
        }
        "--nictype1" => {
            let v = opts.value(opt)?;
            let Some(t) = NIC_TYPES.iter().find(|t| t.eq_ignore_ascii_case(&v)) else {
                return Err(Fail::new(&[&format!(
                    "Invalid NIC type '{v}' specified for NIC 1"
                )]));
            };
            vm.nictype1 = (*t).to_owned();
        }
        "--macaddress1" => vm.macaddress1 = opts.value(opt)?.to_uppercase(),
        "--natpf1" => natpf1(vm, opts)?,
        "--uart1" => {
            let io = opts.value(opt)?;
            if io == "off" {
                vm.uart1 = None;
            } else {
                let irq = opts.value(opt)?;
                vm.uart1 = Some((io, irq));
            }
        }
        "--uartmode1" => {
            let mode = opts.value(opt)?;
            match mode.as_str() {
                "disconnected" => vm.uartmode1_file = None,
                "file" => vm.uartmode1_file = Some(absolute(&opts.value(opt)?)),
                "server" | "client" | "tcpserver" | "tcpclient" => {
                    opts.value(opt)?;
                    vm.uartmode1_file = None;
                }
                other => {
                    return Err(Fail::new(&[&format!(
                        "Invalid --uartmode1 argument '{other}'"
                    )]));
                }
            }
        }
        "--ostype" => {
            let t = opts.value(opt)?;
            if os_type_description(&t).is_none() {
                return Err(Fail::new(&[&format!("Guest OS type '{t}' is invalid")]));
            }
            vm.ostype = t;
        }
        "--vrde" => vm.vrde = opts.on_off(opt)?,
        "--vrdeport" | "--vrde-port" => vm.vrdeport = opts.value(opt)?,
        "--vrdeaddress" | "--vrde-address" => vm.vrdeaddress = opts.value(opt)?,
        "--vrdeauthtype" | "--vrde-auth-type" => {
            vm.vrdeauthtype = opts.one_of(opt, &["null", "external", "guest"])?;
        }
        "--description" | "--rtc-use-utc" | "--groups" => {
            opts.value(opt)?;
        }
        _ => return Err(Fail::unknown_option(opt)),
    }
    Ok(())
}

/// `--natpf1 NAME,PROTO,HOSTIP,HOSTPORT,GUESTIP,GUESTPORT` or `--natpf1 delete NAME`.
fn natpf1(vm: &mut Vm, opts: &mut Opts<'_>) -> Result<(), Fail> {
    let v = opts.value("--natpf1")?;
    if v == "delete" {
        let name = opts.value("--natpf1")?;
        let before = vm.natpf1.len();
        vm.natpf1
            .retain(|r| r.split(',').next() != Some(name.as_str()));
        if vm.natpf1.len() == before {
            return Err(Fail::new(&[
                "A NAT rule with this name does not exist",
                "Details: code NS_ERROR_INVALID_ARG (0x80070057), component NATEngineWrap, interface INATEngine",
            ]));
        }
        return Ok(());
    }
    let parts: Vec<&str> = v.split(',').collect();
    let valid = parts.len() == 6
        && !parts[0].is_empty()
        && matches!(parts[1], "tcp" | "udp")
        && parts[3].parse::<u16>().is_ok()
        && parts[5].parse::<u16>().is_ok();
    if !valid {
        return Err(Fail::new(&[&format!("Invalid NAT rule '{v}'")]));
    }
    if vm
        .natpf1
        .iter()
        .any(|r| r.split(',').next() == Some(parts[0]))
    {
        return Err(Fail::new(&[
            "A NAT rule of this name already exists",
            "Details: code NS_ERROR_INVALID_ARG (0x80070057), component NATEngineWrap, interface INATEngine",
        ]));
    }
    vm.natpf1.push(v);
    Ok(())
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// `showvminfo --machinereadable`, the keys in the order VirtualBox 7.0
/// prints them (those it prints and kiln may read; many more are omitted).
pub fn machinereadable(vm: &Vm, media: &[Medium]) -> String {
    let mut s = String::new();
    let mut kv = |k: &str, v: &str| {
        s.push_str(&format!(
            "{k}=\"{}\"\n",
            v.replace('\\', "\\\\").replace('"', "\\\"")
        ))
    };
    kv("name", &vm.name);
    kv("Encryption", "disabled");
    kv("groups", "/");
    kv(
        "ostype",
        os_type_description(&vm.ostype).unwrap_or("Other/Unknown"),
    );
    kv("UUID", &vm.uuid);
    kv(
        "CfgFile",
        &vm.dir.join(format!("{}.vbox", vm.name)).to_string_lossy(),
    );
    kv("SnapFldr", &vm.dir.join("Snapshots").to_string_lossy());
    kv("LogFldr", &vm.dir.join("Logs").to_string_lossy());
    kv("hardwareuuid", &vm.uuid);
    let mut out = s;
    out.push_str(&format!("memory={}\n", vm.memory));
    out.push_str("pagefusion=\"off\"\n");
    out.push_str(&format!("vram={}\n", vm.vram));
    out.push_str("cpuexecutioncap=100\n");
    out.push_str("hpet=\"off\"\n");
    out.push_str(&format!("chipset=\"{}\"\n", vm.chipset));
    let fw = match vm.firmware.as_str() {
        "bios" => "BIOS",
        "efi" => "EFI",
        "efi32" => "EFI32",
        _ => "EFI64",
    };
    out.push_str(&format!("firmware=\"{fw}\"\n"));
    out.push_str(&format!("cpus={}\n", vm.cpus));
    for (i, b) in vm.boot.iter().enumerate() {
        out.push_str(&format!("boot{}=\"{b}\"\n", i + 1));
    }
    out.push_str("acpi=\"on\"\nioapic=\"on\"\n");
    let state = if vm.pid.is_some() && vm.paused {
        "paused"
    } else if vm.pid.is_some() {
        "running"
    } else {
        "poweroff"
    };
    out.push_str(&format!("VMState=\"{state}\"\n"));
    out.push_str(&format!("VMStateChangeTime=\"{}\"\n", vm.state_change_time));
    out.push_str(&format!(
        "graphicscontroller=\"{}\"\n",
        vm.graphicscontroller
    ));
    for (i, c) in vm.controllers.iter().enumerate() {
        out.push_str(&format!("storagecontrollername{i}=\"{}\"\n", c.name));
        out.push_str(&format!("storagecontrollertype{i}=\"{}\"\n", c.chip));
        out.push_str(&format!("storagecontrollerinstance{i}=\"0\"\n"));
        let (ports, _) = c.limits();
        out.push_str(&format!(
            "storagecontrollermaxportcount{i}=\"{}\"\n",
            if c.bus == "ide" {
                2
            } else {
                c.port_count.max(ports)
            }
        ));
        out.push_str(&format!("storagecontrollerportcount{i}=\"{ports}\"\n"));
        out.push_str(&format!("storagecontrollerbootable{i}=\"on\"\n"));
    }
    for c in &vm.controllers {
        let (ports, devices) = c.limits();
        for port in 0..ports {
            for device in 0..devices {
                let a = vm
                    .attachments
                    .iter()
                    .find(|a| a.controller == c.name && a.port == port && a.device == device);
                let key = format!("\"{}-{port}-{device}\"", c.name);
                match a {
                    None => out.push_str(&format!("{key}=\"none\"\n")),
                    Some(a) => {
                        let value = match &a.medium {
                            Some(p) => p.to_string_lossy().into_owned(),
                            None => "emptydrive".into(),
                        };
                        out.push_str(&format!("{key}=\"{value}\"\n"));
                        if let Some(m) = a
                            .medium
                            .as_ref()
                            .and_then(|p| media.iter().find(|m| &m.path == p))
                        {
                            out.push_str(&format!(
                                "\"{}-ImageUUID-{port}-{device}\"=\"{}\"\n",
                                c.name, m.uuid
                            ));
                        }
                        if a.kind == "dvddrive" {
                            out.push_str(&format!("\"{}-IsEjected\"=\"off\"\n", c.name));
                        }
                        if a.kind == "hdd" {
                            out.push_str(&format!(
                                "\"{}-nonrotational-{port}-{device}\"=\"{}\"\n\"{}-discard-{port}-{device}\"=\"{}\"\n",
                                c.name,
                                on_off(a.nonrotational),
                                c.name,
                                on_off(a.discard)
                            ));
                        }
                    }
                }
            }
        }
    }
    if vm.nic1 == "nat" {
        out.push_str("natnet1=\"nat\"\n");
    }
    out.push_str(&format!("macaddress1=\"{}\"\n", vm.macaddress1));
    out.push_str(&format!(
        "vrde=\"{}\"\nvrdeport={}\nvrdeaddress=\"{}\"\nvrdeauthtype=\"{}\"\n",
        if vm.vrde { "on" } else { "off" },
        vm.vrdeport,
        vm.vrdeaddress,
        vm.vrdeauthtype
    ));
    out.push_str("cableconnected1=\"on\"\n");
    out.push_str(&format!("nic1=\"{}\"\n", vm.nic1));
    out.push_str(&format!("nictype1=\"{}\"\n", vm.nictype1));
    out.push_str("nicspeed1=\"0\"\n");
    for (i, rule) in vm.natpf1.iter().enumerate() {
        out.push_str(&format!("Forwarding({i})=\"{rule}\"\n"));
    }
    for n in 2..=8 {
        out.push_str(&format!("nic{n}=\"none\"\n"));
    }
    match (&vm.uart1, &vm.uartmode1_file) {
        (Some((io, irq)), file) => {
            out.push_str(&format!("uart1=\"{io},{irq}\"\n"));
            match file {
                Some(p) => out.push_str(&format!("uartmode1=\"file,{}\"\n", p.display())),
                None => out.push_str("uartmode1=\"disconnected\"\n"),
            }
        }
        (None, _) => out.push_str("uart1=\"off\"\n"),
    }
    out.push_str(&format!(
        "audio=\"{}\"\n",
        if vm.audio == "none" {
            "none"
        } else {
            &vm.audio
        }
    ));
    out.push_str(&format!("usb=\"{}\"\n", on_off(vm.usb)));
    if !vm.audio_controller.is_empty() {
        out.push_str(&format!("audio_controller=\"{}\"\n", vm.audio_controller));
    }
    for (k, v) in &vm.flags {
        out.push_str(&format!("{k}=\"{v}\"\n"));
    }
    out.push_str(&snapshot_lines(&vm.snapshots));
    out
}

/// The snapshot tree as `showvminfo --machinereadable` prints it: the
/// root as `SnapshotName`, each child with `-1` appended (a chain here),
/// then the current one and the key of its node.
pub fn snapshot_lines(snapshots: &[Snapshot]) -> String {
    let mut out = String::new();
    let mut node = "SnapshotName".to_owned();
    let mut suffix = String::new();
    for (i, snap) in snapshots.iter().enumerate() {
        if i > 0 {
            suffix.push_str("-1");
        }
        node = format!("SnapshotName{suffix}");
        out.push_str(&format!("{node}=\"{}\"\n", snap.name));
        out.push_str(&format!("SnapshotUUID{suffix}=\"{}\"\n", snap.uuid));
        if !snap.description.is_empty() {
            out.push_str(&format!(
                "SnapshotDescription{suffix}=\"{}\"\n",
                snap.description
            ));
        }
    }
    if let Some(current) = snapshots.last() {
        out.push_str(&format!("CurrentSnapshotName=\"{}\"\n", current.name));
        out.push_str(&format!("CurrentSnapshotUUID=\"{}\"\n", current.uuid));
        out.push_str(&format!("CurrentSnapshotNode=\"{node}\"\n"));
    }
    out
}

/// `2026-11-24T00:23:03.000000000`, as VirtualBox prints state change times (UTC).
pub fn timestamp_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_nanos()
    )
}
