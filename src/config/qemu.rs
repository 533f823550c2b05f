//! The `qemu` builder's configuration (Packer's qemu builder options).

use std::path::PathBuf;

use super::common::{
    BootConfig, Communicator, HostPortConfig, HttpConfig, IsoConfig, MediaConfig, ShutdownConfig,
    output_directory,
};
use super::decode::{Deferred, Fields};
use crate::vm::{Accelerator, ImageFormat};

/// Template fields `qemuargs` can use, as Packer provides them.
pub const QEMUARGS_FIELDS: &[&str] = &[
    "HTTPIP",
    "HTTPPort",
    "HTTPDir",
    "OutputDir",
    "Name",
    "SSHHostPort",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Ova,
    Ovf,
}

#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// The installer ISO, or with `disk_image: true` the disk image to start from.
    pub iso: IsoConfig,
    pub http: HttpConfig,
    pub boot: BootConfig,
    /// `boot_steps`, typed instead of `boot_command` (never both).
    pub boot_steps: Vec<super::boot_steps::BootStep>,
    pub communicator: Communicator,
    pub shutdown: ShutdownConfig,
    pub media: MediaConfig,
    pub output_directory: PathBuf,
    pub vm_name: String,
    /// `None` for `auto`: the driver probes for a working accelerator,
    /// falling back to TCG.
    pub accelerator: Option<Accelerator>,
    pub qemu_binary: String,
    pub machine_type: String,
    pub cpus: u32,
    pub memory_mib: u64,
    pub disk_size_mib: u64,
    pub disk_additional_size_mib: Vec<u64>,
    /// `qcow2` or `raw` (the disk the VM runs on).
    pub format: ImageFormat,
    /// `format: "ova"` / `"ovf"`: export the finished disk as OVF 1.0.
    pub export: Option<ExportFormat>,
    pub disk_interface: DiskInterface,
    pub disk_cache: String,
    pub disk_discard: String,
    pub disk_detect_zeroes: String,
    pub disk_compression: bool,
    pub disk_image: bool,
    pub use_backing_file: bool,
    pub skip_compaction: bool,
    pub skip_resize_disk: bool,
    pub net_device: String,
    pub net_bridge: Option<String>,
    pub cdrom_interface: Option<DiskInterface>,
    pub headless: bool,
    pub use_default_display: bool,
    pub display: Option<String>,
    pub firmware: Option<PathBuf>,
    pub host_port_min: u16,
    pub host_port_max: u16,
    pub skip_nat_mapping: bool,
    /// QEMU's VNC server, for watching the build (kiln types through QMP).
    pub vnc_bind_address: std::net::IpAddr,
    pub vnc_port_min: u16,
    pub vnc_port_max: u16,
    pub vnc_use_password: bool,
    pub qemuargs: Vec<Vec<Deferred>>,
    pub qemu_img_args: QemuImgArgs,
    /// A QMP socket for the user besides kiln's own (Packer's default
    /// path: `output_directory/vm_name.monitor`).
    pub qmp_enable: bool,
    pub qmp_socket_path: Option<PathBuf>,
    /// No VNC server at all; kiln types keys through QMP either way.
    pub disable_vnc: bool,
    /// kiln's own option (not Packer's): keep and use install checkpoints
    /// (default true); `false` for builds that must not leave disk images
    /// in the cache.
    pub checkpoint: bool,
    /// CPU model and topology, graphics card, UEFI.
    pub hardware: QemuHardware,
}

/// The keys Bento's templates set for the virtual hardware.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QemuHardware {
    pub cpu_model: Option<String>,
    pub sockets: Option<u32>,
    pub cores: Option<u32>,
    pub threads: Option<u32>,
    pub vga: Option<String>,
    /// `efi_boot`: UEFI from flash, with a private copy of the variable store.
    pub efi: Option<EfiConfig>,
    /// `use_pflash`: `firmware` as a flash drive rather than `-bios`.
    pub use_pflash: bool,
    /// `vtpm`: a TPM 2.0 from swtpm, as this device (`tpm_device_type`,
    /// default `tpm-tis`).
    pub tpm_device: Option<String>,
}

/// `efi_firmware_code` / `efi_firmware_vars`; when unset, QEMU's firmware
/// descriptors are asked when the build runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EfiConfig {
    pub code: Option<PathBuf>,
    pub vars: Option<PathBuf>,
    /// `efi_drop_efivars`: no variable store at all (for guests that
    /// cannot use one); only the code is attached.
    pub drop_efivars: bool,
}

/// QEMU's `-vga` types.
const VGA_TYPES: &[&str] = &[
    "std", "cirrus", "vmware", "qxl", "xenfb", "tcx", "cg3", "virtio", "none",
];

impl QemuHardware {
    fn decode(f: &mut Fields<'_>, firmware_set: bool) -> Self {
        let cpu_model = f.string("cpu_model").filter(|s| !s.is_empty());
        let sockets = f.u64_in("sockets", 1, 1024).map(|v| v as u32);
        let cores = f.u64_in("cores", 1, 1024).map(|v| v as u32);
        let threads = f.u64_in("threads", 1, 1024).map(|v| v as u32);
        let vga = f.one_of("vga", VGA_TYPES);
        let code = f
            .string("efi_firmware_code")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let vars = f
            .string("efi_firmware_vars")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        // As the qemu plugin: either firmware path turns EFI on, even
        // against an explicit `efi_boot = false`.
        let firmware_given = code.is_some() || vars.is_some();
        let efi_boot = match f.bool("efi_boot") {
            Some(false) if firmware_given => {
                let span = f.span_of("efi_boot").unwrap_or_default();
                f.warn_at(
                    span,
                    "efi_boot = false has no effect: efi_firmware_code or efi_firmware_vars turns EFI on, as in Packer",
                );
                true
            }
            Some(explicit) => explicit,
            None => firmware_given,
        };
        let drop_efivars = f.bool("efi_drop_efivars").unwrap_or(false);
        if drop_efivars && !efi_boot {
            let span = f.span_of("efi_drop_efivars").unwrap_or_default();
            f.warn_at(
                span,
                "`efi_drop_efivars` has no effect without efi_boot = true",
            );
        }
        if drop_efivars && vars.is_some() {
            let span = f.span_of("efi_firmware_vars").unwrap_or_default();
            f.warn_at(
                span,
                "`efi_firmware_vars` is not used: efi_drop_efivars = true attaches no variable store",
            );
        }
        let use_pflash = f.bool("use_pflash").unwrap_or(false);
        if use_pflash && !firmware_set {
            let span = f.span_of("use_pflash").unwrap_or_default();
            f.warn_at(
                span,
                "`use_pflash` has no effect without `firmware` (for UEFI, efi_boot always uses flash)",
            );
        }
        let vtpm = f.bool("vtpm").unwrap_or(false);
        let tpm_device_type =
            f.one_of("tpm_device_type", &["tpm-tis", "tpm-crb", "tpm-tis-device"]);
        if !vtpm && tpm_device_type.is_some() {
            let span = f.span_of("tpm_device_type").unwrap_or_default();
            f.warn_at(span, "`tpm_device_type` has no effect without vtpm = true");
        }
        let tpm_device = vtpm.then(|| tpm_device_type.unwrap_or_else(|| "tpm-tis".into()));
        if efi_boot && firmware_set {
            let span = f.span_of("firmware").unwrap_or_default();
            f.error_at(
                span,
                "firmware (a BIOS file) and efi_boot cannot both be set",
            )
            .hint = Some("for UEFI, set efi_boot and, if needed, efi_firmware_code".into());
        }
        Self {
            cpu_model,
            sockets,
            cores,
            threads,
            vga,
            efi: efi_boot.then_some(EfiConfig {
                code,
                vars,
                drop_efivars,
            }),
            use_pflash,
            tpm_device,
        }
    }
}

/// `vnc_bind_address` must be an IP address (QEMU's `-vnc` is given one);
/// a screen served beyond loopback without a password gets a warning.
fn check_vnc_address(f: &mut Fields<'_>, text: &str, password: bool) -> std::net::IpAddr {
    let span = f.span_of("vnc_bind_address").unwrap_or_default();
    match text.parse::<std::net::IpAddr>() {
        Err(_) => {
            f.error_at(
                span,
                format!("vnc_bind_address {text:?} is not an IP address"),
            )
            .hint = Some(
                "use 127.0.0.1 (the default) or the address of one of this machine's interfaces"
                    .into(),
            );
            std::net::Ipv4Addr::LOCALHOST.into()
        }
        Ok(ip) => {
            if !ip.is_loopback() && !password {
                let who = if ip.is_unspecified() {
                    "this machine on any of its addresses".to_owned()
                } else {
                    text.to_owned()
                };
                f.warn_at(
                    span,
                    format!(
                        "VNC without vnc_use_password: anyone who can reach {who} sees the VM's screen and can type into it; keep the default 127.0.0.1 or set vnc_use_password"
                    ),
                );
            }
            ip
        }
    }
}

/// Extra arguments for the `qemu-img` subcommands kiln runs.
#[derive(Debug, Clone, Default)]
pub struct QemuImgArgs {
    pub convert: Vec<String>,
    pub create: Vec<String>,
    pub resize: Vec<String>,
}

impl QemuImgArgs {
    fn decode(f: &mut Fields<'_>) -> Self {
        let Some(node) = f.raw("qemu_img_args") else {
            return Self::default();
        };
        let mut out = Self::default();
        let Some(members) = node.as_object() else {
            f.error_at(
                node.span,
                format!(
                    "qemu_img_args: expected an object with convert, create, resize, found {}",
                    node.kind()
                ),
            );
            return out;
        };
        for m in members {
            let target = match m.key.as_str() {
                "convert" => &mut out.convert,
                "create" => &mut out.create,
                "resize" => &mut out.resize,
                other => {
                    f.error_at(m.key_span, format!("qemu_img_args: unknown key `{other}` (expected convert, create or resize)"));
                    continue;
                }
            };
            match m.value.as_array() {
                Some(items) => target.extend(
                    items
                        .iter()
                        .filter_map(|i| f.string_from("qemu_img_args", i)),
                ),
                None => {
                    f.error_at(
                        m.value.span,
                        format!("qemu_img_args.{}: expected a list of strings", m.key),
                    );
                }
            }
        }
        out
    }
}

/// How a disk or CD-ROM attaches (`disk_interface`, `cdrom_interface`),
/// parsed once here; the builder maps it to the driver's own type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskInterface {
    Virtio,
    Ide,
    Scsi,
    /// A virtio-scsi controller with SCSI disks on it.
    VirtioScsi,
}

impl DiskInterface {
    /// Every interface, in the order `disk_interface`'s error lists them.
    const ALL: [Self; 4] = [Self::Virtio, Self::Ide, Self::Scsi, Self::VirtioScsi];
    /// The order `cdrom_interface`'s error lists them.
    const CDROM_ORDER: [Self; 4] = [Self::Ide, Self::Scsi, Self::Virtio, Self::VirtioScsi];

    /// The template's spelling (also what an install checkpoint's key takes).
    pub fn name(self) -> &'static str {
        match self {
            Self::Virtio => "virtio",
            Self::Ide => "ide",
            Self::Scsi => "scsi",
            Self::VirtioScsi => "virtio-scsi",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.name() == name)
    }

    /// `key` as one of `listed`; an error (with a did-you-mean) for any
    /// other value.
    fn decode(f: &mut Fields<'_>, key: &'static str, listed: [Self; 4]) -> Option<Self> {
        let names = listed.map(Self::name);
        f.one_of(key, &names).as_deref().and_then(Self::from_name)
    }
}

const NET_DEVICES: &[&str] = &[
    "virtio-net",
    "virtio-net-pci",
    "virtio",
    "e1000",
    "e1000e",
    "rtl8139",
    "ne2k_pci",
    "ne2k_isa",
    "pcnet",
    "vmxnet3",
    "usb-net",
    "i82550",
    "i82551",
    "i82557a",
    "i82557b",
    "i82557c",
    "i82558a",
    "i82558b",
    "i82559a",
    "i82559b",
    "i82559c",
    "i82559er",
    "i82562",
    "i82801",
];

impl QemuConfig {
    pub fn decode(f: &mut Fields<'_>) -> Option<Self> {
        let disk_image = f.bool("disk_image").unwrap_or(false);
        let iso = IsoConfig::decode(f);
        let http = HttpConfig::decode(f);
        let boot = BootConfig::decode(f);
        let boot_steps = super::boot_steps::decode(f, !boot.command.is_empty());
        if let Some(span) = f.span_of("boot_keygroup_interval") {
            f.warn_at(
                span,
                "`boot_keygroup_interval` has no effect on the qemu builder (nor in Packer's): QEMU gets one key at a time; use boot_key_interval",
            );
        }
        let communicator = Communicator::decode(f, None);
        let shutdown = ShutdownConfig::decode(f);
        let media = MediaConfig::decode(f);
        let output_directory = output_directory(f);
        let build_name = f.context().build_name().unwrap_or("qemu").to_owned();
        let vm_name = f
            .string("vm_name")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("packer-{build_name}"));

        let accelerator = f
            .one_of(
                "accelerator",
                &["auto", "kvm", "tcg", "hvf", "whpx", "xen", "hax", "none"],
            )
            .as_deref()
            .and_then(Accelerator::parse);
        let qemu_binary = f
            .string("qemu_binary")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "qemu-system-x86_64".into());
        let machine_type = f
            .string("machine_type")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "pc".into());
        let cpus = f.u64_in("cpus", 1, 1024).unwrap_or(1) as u32;
        // Packer treats anything under 10 MiB as unset.
        let memory_mib = f.u64("memory").filter(|&m| m >= 10).unwrap_or(512);
        let disk_size_mib = f.size_mib("disk_size").unwrap_or(40960);
        let disk_additional_size_mib = f
            .string_list("disk_additional_size")
            .unwrap_or_default()
            .iter()
            .filter_map(|s| super::go_value::parse_size_mib(s))
            .collect();
        // ova/ovf: the VM runs on a qcow2 disk that is exported at the end.
        let requested = f.one_of("format", &["qcow2", "raw", "ova", "ovf"]);
        let export = match requested.as_deref() {
            Some("ova") => Some(ExportFormat::Ova),
            Some("ovf") => Some(ExportFormat::Ovf),
            _ => None,
        };
        let format = match requested.as_deref() {
            Some("raw") => ImageFormat::Raw,
            _ => ImageFormat::Qcow2,
        };
        let disk_interface = DiskInterface::decode(f, "disk_interface", DiskInterface::ALL)
            .unwrap_or(DiskInterface::Virtio);
        let disk_cache = f
            .one_of(
                "disk_cache",
                &["writethrough", "writeback", "none", "unsafe", "directsync"],
            )
            .unwrap_or_else(|| "writeback".into());
        let disk_discard = f
            .one_of("disk_discard", &["unmap", "ignore"])
            .unwrap_or_else(|| "ignore".into());
        let disk_detect_zeroes = f
            .one_of("disk_detect_zeroes", &["unmap", "on", "off"])
            .unwrap_or_else(|| "off".into());
        let disk_compression = f.bool("disk_compression").unwrap_or(false);
        let use_backing_file = f.bool("use_backing_file").unwrap_or(false);
        let skip_compaction = f.bool("skip_compaction").unwrap_or(false);
        let skip_resize_disk = f.bool("skip_resize_disk").unwrap_or(false);
        let net_device = f
            .one_of("net_device", NET_DEVICES)
            .unwrap_or_else(|| "virtio-net".into());
        let net_bridge = f.string("net_bridge").filter(|s| !s.is_empty());
        let cdrom_interface =
            DiskInterface::decode(f, "cdrom_interface", DiskInterface::CDROM_ORDER);
        let headless = f.bool("headless").unwrap_or(false);
        let use_default_display = f.bool("use_default_display").unwrap_or(false);
        let display = f.string("display").filter(|s| !s.is_empty());
        let firmware = f
            .string("firmware")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let hardware = QemuHardware::decode(f, firmware.is_some());
        let host_ports = HostPortConfig::decode(f);
        let (host_port_min, host_port_max) = (host_ports.min, host_ports.max);
        let skip_nat_mapping = host_ports.skip_nat_mapping;
        let vnc_bind_text = f
            .string("vnc_bind_address")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "127.0.0.1".into());
        let vnc_port_min = f.u64_in("vnc_port_min", 1, 65535).unwrap_or(5900) as u16;
        let vnc_port_max = f.u64_in("vnc_port_max", 1, 65535).unwrap_or(6000) as u16;
        let vnc_use_password = f.bool("vnc_use_password").unwrap_or(false);
        let qemuargs = f
            .deferred_list_of_lists("qemuargs", QEMUARGS_FIELDS)
            .unwrap_or_default();
        let qemu_img_args = QemuImgArgs::decode(f);
        let qmp_enable = f.bool("qmp_enable").unwrap_or(false);
        let qmp_socket_path = f
            .string("qmp_socket_path")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let disable_vnc = f.bool("disable_vnc").unwrap_or(false);
        let checkpoint = f.bool("checkpoint").unwrap_or(true);
        if qmp_socket_path.is_some()
            && !qmp_enable
            && let Some(span) = f.span_of("qmp_socket_path")
        {
            f.warn_at(
                span,
                "qmp_socket_path has no effect without \"qmp_enable\": true",
            );
        }
        f.obsolete("run_once", "it has no effect in Packer either");
        // `iso_skip_cache` is the ISO settings' (one warning, there).

        let vnc_bind_address = check_vnc_address(f, &vnc_bind_text, vnc_use_password);
        // QEMU's VNC display N listens on 5900 + N (config names the fact
        // itself: it may not import a driver).
        if vnc_port_min < 5900 {
            let span = f.span_of("vnc_port_min").unwrap_or_default();
            f.error_at(
                span,
                format!("vnc_port_min ({vnc_port_min}) is below 5900: QEMU's VNC displays listen on 5900 + N"),
            )
            .hint = Some("use a range within 5900..65535, such as Packer's default 5900-6000".into());
        }
        if vnc_port_min > vnc_port_max {
            let span = f.span_of("vnc_port_min").unwrap_or_default();
            f.error_at(
                span,
                format!(
                    "vnc_port_min ({vnc_port_min}) is greater than vnc_port_max ({vnc_port_max})"
                ),
            );
        }
        if use_backing_file && !(disk_image && format == ImageFormat::Qcow2) {
            let span = f.span_of("use_backing_file").unwrap_or_default();
            f.error_at(
                span,
                "use_backing_file needs disk_image: true and format: qcow2",
            );
        }
        // Packer turns compression off for other formats without a word;
        // templates switch `format` with a variable and keep the key.
        let disk_compression = if disk_compression && format != ImageFormat::Qcow2 {
            let span = f.span_of("disk_compression").unwrap_or_default();
            f.warn_at(
                span,
                format!(
                    "disk_compression has no effect with format: {}; only qcow2 is compressed",
                    format.as_str()
                ),
            );
            false
        } else {
            disk_compression
        };
        if vm_name.contains('/') {
            let span = f.span_of("vm_name").unwrap_or_default();
            f.error_at(
                span,
                format!("vm_name `{vm_name}` must be a file name, not a path"),
            );
        }

        Some(Self {
            iso: iso?,
            http,
            boot,
            boot_steps,
            communicator: communicator?,
            shutdown,
            media,
            output_directory,
            vm_name,
            accelerator,
            qemu_binary,
            machine_type,
            cpus,
            memory_mib,
            disk_size_mib,
            disk_additional_size_mib,
            format,
            export,
            disk_interface,
            disk_cache,
            disk_discard,
            disk_detect_zeroes,
            disk_compression,
            disk_image,
            use_backing_file,
            skip_compaction,
            skip_resize_disk,
            net_device,
            net_bridge,
            cdrom_interface,
            headless,
            use_default_display,
            display,
            firmware,
            host_port_min,
            host_port_max,
            skip_nat_mapping,
            vnc_bind_address,
            vnc_port_min,
            vnc_port_max,
            vnc_use_password,
            qemuargs,
            qemu_img_args,
            qmp_enable,
            qmp_socket_path,
            disable_vnc,
            checkpoint,
            hardware,
        })
    }
}
