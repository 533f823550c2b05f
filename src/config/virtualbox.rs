//! The `virtualbox-iso` builder's configuration (Packer's options, plus the
//! hardware keys the VirtualBox plugin added later: chipset, firmware, nic_type, gfx_*).

use std::path::PathBuf;
use std::time::Duration;

use super::common::{
    BootConfig, Communicator, HostPortConfig, HttpConfig, IsoConfig, MediaConfig, ShutdownConfig,
    output_directory,
};
use super::decode::{Deferred, Fields};
pub use super::virtualbox_hw::StorageInterface;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestAdditionsMode {
    Upload,
    Attach,
    Disable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Ovf,
    Ova,
}

#[derive(Debug, Clone)]
pub struct VirtualBoxIsoConfig {
    pub iso: IsoConfig,
    pub http: HttpConfig,
    pub boot: BootConfig,
    /// `boot_steps`, typed instead of `boot_command` (never both).
    pub boot_steps: Vec<super::boot_steps::BootStep>,
    pub communicator: Communicator,
    pub shutdown: ShutdownConfig,
    pub post_shutdown_delay: Duration,
    pub disable_shutdown: bool,
    pub acpi_shutdown: bool,
    pub media: MediaConfig,
    pub output_directory: PathBuf,
    pub output_filename: String,
    pub vm_name: String,
    pub guest_os_type: String,
    pub cpus: u32,
    pub memory_mib: u64,
    pub disk_size_mib: u64,
    pub hard_drive_interface: StorageInterface,
    pub hard_drive_discard: bool,
    pub hard_drive_nonrotational: bool,
    pub sata_port_count: u32,
    pub nvme_port_count: u32,
    pub iso_interface: StorageInterface,
    pub nic_type: Option<String>,
    pub chipset: String,
    pub firmware: String,
    pub gfx_controller: Option<String>,
    pub gfx_vram_size: Option<u64>,
    /// The hardware settings decoded in `virtualbox_hw`.
    pub hw: super::virtualbox_hw::HwExtras,
    pub headless: bool,
    pub sound: String,
    pub usb: bool,
    pub vboxmanage: Vec<Vec<Deferred>>,
    pub vboxmanage_post: Vec<Vec<Deferred>>,
    pub guest_additions_mode: GuestAdditionsMode,
    pub guest_additions_interface: Option<StorageInterface>,
    pub guest_additions_path: Option<Deferred>,
    pub guest_additions_url: Option<Deferred>,
    pub guest_additions_sha256: Option<String>,
    /// None when the upload is disabled with "".
    pub virtualbox_version_file: Option<String>,
    pub keep_registered: bool,
    /// kiln's own option (not Packer's): keep and use install checkpoints
    /// (default true), as for qemu.
    pub checkpoint: bool,
    pub skip_export: bool,
    pub bundle_iso: bool,
    pub format: ExportFormat,
    pub export_opts: Vec<String>,
    pub host_port_min: u16,
    pub host_port_max: u16,
    pub skip_nat_mapping: bool,
    pub vrdp_bind_address: String,
    pub vrdp_port_min: u16,
    pub vrdp_port_max: u16,
}

impl VirtualBoxIsoConfig {
    pub fn decode(f: &mut Fields<'_>) -> Option<Self> {
        let iso = IsoConfig::decode(f);
        let http = HttpConfig::decode(f);
        let boot = BootConfig::decode(f);
        let boot_steps = super::boot_steps::decode(f, !boot.command.is_empty());
        if let Some(span) = f.span_of("boot_key_interval") {
            f.warn_at(
                span,
                "`boot_key_interval` has no effect on virtualbox-iso (nor in Packer's): scancodes are sent in groups; use boot_keygroup_interval",
            );
        }
        let communicator = Communicator::decode(f, None);
        let shutdown = ShutdownConfig::decode(f);
        let post_shutdown_delay = f
            .duration("post_shutdown_delay")
            .unwrap_or(Duration::from_secs(2));
        let disable_shutdown = f.bool("disable_shutdown").unwrap_or(false);
        let acpi_shutdown = f.bool("acpi_shutdown").unwrap_or(false);
        let media = MediaConfig::decode(f);
        let output_directory = output_directory(f);
        let ctx = f.context();
        let build_name = ctx.build_name().unwrap_or("virtualbox-iso");
        let stamp = ctx
            .init_time()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let vm_name = f
            .string("vm_name")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("packer-{build_name}-{stamp}"));
        let output_filename = f
            .string("output_filename")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vm_name.clone());
        let guest_os_type = f
            .string("guest_os_type")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "Other".into());
        let cpus = f.u64("cpus").filter(|&n| n > 0).unwrap_or(1) as u32;
        let memory_mib = f.u64("memory").filter(|&n| n > 0).unwrap_or(512);
        let disk_size_mib = f.u64("disk_size").filter(|&n| n > 0).unwrap_or(40000);
        let hard_drive_interface =
            StorageInterface::decode(f, "hard_drive_interface", StorageInterface::DISK_NAMES)
                .unwrap_or(StorageInterface::Ide);
        let hard_drive_discard = f.bool("hard_drive_discard").unwrap_or(false);
        let hard_drive_nonrotational = f.bool("hard_drive_nonrotational").unwrap_or(false);
        let sata_port_count = f.u64_in("sata_port_count", 1, 30).unwrap_or(1) as u32;
        let nvme_port_count = f.u64_in("nvme_port_count", 1, 255).unwrap_or(1) as u32;
        let iso_interface =
            StorageInterface::decode(f, "iso_interface", StorageInterface::CD_NAMES)
                .unwrap_or(StorageInterface::Ide);
        let nic_type = f.one_of(
            "nic_type",
            &[
                "Am79C970A",
                "Am79C973",
                "Am79C960",
                "82540EM",
                "82543GC",
                "82545EM",
                "virtio",
            ],
        );
        let chipset = f
            .one_of("chipset", &["piix3", "ich9"])
            .unwrap_or_else(|| "piix3".into());
        let firmware = f
            .one_of("firmware", &["bios", "efi"])
            .unwrap_or_else(|| "bios".into());
        let gfx_controller = f.one_of("gfx_controller", &["vboxvga", "vboxsvga", "vmsvga", "none"]);
        let gfx_vram_size = f.u64_in("gfx_vram_size", 1, 256);
        let hw = super::virtualbox_hw::HwExtras::decode(f, hard_drive_interface, nvme_port_count);
        let headless = f.bool("headless").unwrap_or(false);
        let sound = f
            .string("sound")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "none".into());
        let usb = f.bool("usb").unwrap_or(false);
        let vboxmanage = f
            .deferred_list_of_lists("vboxmanage", &["Name"])
            .unwrap_or_default();
        let vboxmanage_post = f
            .deferred_list_of_lists("vboxmanage_post", &["Name"])
            .unwrap_or_default();
        let old_attach = f.renamed_bool("guest_additions_attach", "guest_additions_mode");
        let guest_additions_mode = match f
            .one_of("guest_additions_mode", &["upload", "attach", "disable"])
            .as_deref()
        {
            Some("attach") => GuestAdditionsMode::Attach,
            Some("disable") => GuestAdditionsMode::Disable,
            Some(_) => GuestAdditionsMode::Upload,
            None if old_attach == Some(true) => GuestAdditionsMode::Attach,
            None => GuestAdditionsMode::Upload,
        };
        let guest_additions_interface =
            StorageInterface::decode(f, "guest_additions_interface", StorageInterface::CD_NAMES);
        if hard_drive_interface == StorageInterface::Ide {
            super::virtualbox_hw::check_ide_disk_and_guest_additions(
                f,
                hw.disk_additional_size_mib.len(),
                guest_additions_mode == GuestAdditionsMode::Attach
                    && guest_additions_interface.unwrap_or(StorageInterface::Ide)
                        == StorageInterface::Ide,
            );
        }
        let guest_additions_path = f.deferred("guest_additions_path", &["Version"]);
        let guest_additions_url = f.deferred("guest_additions_url", &["Version"]);
        let guest_additions_sha256 = f
            .string("guest_additions_sha256")
            .filter(|s| !s.is_empty())
            .map(|s| {
                let s = s.to_lowercase();
                s.strip_prefix("sha256:").map(str::to_owned).unwrap_or(s)
            });
        if let Some(sum) = &guest_additions_sha256
            && (sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            let span = f.span_of("guest_additions_sha256").unwrap_or_default();
            f.error_at(
                span,
                format!("guest_additions_sha256 must be 64 hex digits (a SHA-256), not {sum:?}"),
            );
        }
        let virtualbox_version_file = match f.string("virtualbox_version_file") {
            Some(s) if s.is_empty() => None,
            Some(s) => Some(s),
            None => Some(".vbox_version".into()),
        };
        let keep_registered = f.bool("keep_registered").unwrap_or(false);
        let checkpoint = f.bool("checkpoint").unwrap_or(true);
        let skip_export = f.bool("skip_export").unwrap_or(false);
        let bundle_iso = f.bool("bundle_iso").unwrap_or(false);
        let format = match f.one_of("format", &["ovf", "ova"]).as_deref() {
            Some("ova") => ExportFormat::Ova,
            _ => ExportFormat::Ovf,
        };
        let export_opts = f.string_list("export_opts").unwrap_or_default();
        let host_ports = HostPortConfig::decode(f);
        let (host_port_min, host_port_max) = (host_ports.min, host_ports.max);
        let skip_old = f
            .renamed_bool("ssh_skip_nat_mapping", "skip_nat_mapping")
            .unwrap_or(false);
        let skip_nat_mapping = host_ports.skip_nat_mapping || skip_old;
        let vrdp_bind_address = f
            .string("vrdp_bind_address")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "127.0.0.1".into());
        let vrdp_port_min = f.u64_in("vrdp_port_min", 1, 65535).unwrap_or(5900) as u16;
        let vrdp_port_max = f.u64_in("vrdp_port_max", 1, 65535).unwrap_or(6000) as u16;
        match vrdp_bind_address.parse::<std::net::IpAddr>() {
            Err(_) => {
                let span = f.span_of("vrdp_bind_address").unwrap_or_default();
                f.error_at(
                    span,
                    format!("vrdp_bind_address {vrdp_bind_address:?} is not an IP address"),
                );
            }
            Ok(ip) if !ip.is_loopback() => {
                let span = f.span_of("vrdp_bind_address").unwrap_or_default();
                let who = if ip.is_unspecified() {
                    "this machine on any of its addresses".to_owned()
                } else {
                    vrdp_bind_address.clone()
                };
                f.warn_at(
                    span,
                    format!(
                        "VRDP has no password: anyone who can reach {who} sees the VM's screen and can type into it; keep the default 127.0.0.1 unless that is what you want"
                    ),
                );
            }
            Ok(_) => {}
        }
        if vrdp_port_min > vrdp_port_max {
            let span = f.span_of("vrdp_port_min").unwrap_or_default();
            f.error_at(
                span,
                format!("vrdp_port_min ({vrdp_port_min}) is greater than vrdp_port_max ({vrdp_port_max})"),
            );
        }

        if matches!(communicator, Some(Communicator::None)) {
            if guest_additions_mode == GuestAdditionsMode::Upload && f.has("guest_additions_mode") {
                let span = f.span_of("guest_additions_mode").unwrap_or_default();
                f.error_at(span, "guest_additions_mode \"upload\" needs a communicator; use \"attach\" or \"disable\"");
            }
            if f.has("virtualbox_version_file") && virtualbox_version_file.is_some() {
                let span = f.span_of("virtualbox_version_file").unwrap_or_default();
                f.error_at(
                    span,
                    "virtualbox_version_file needs a communicator; set it to \"\"",
                );
            }
        }
        if shutdown.command.is_none() && !disable_shutdown && !acpi_shutdown {
            let span = f.span_of("type").unwrap_or_default();
            f.warn_at(span, "no shutdown_command: the VM will be powered off forcibly, which may lose data written by provisioners");
        }

        Some(Self {
            iso: iso?,
            http,
            boot,
            boot_steps,
            communicator: communicator?,
            shutdown,
            post_shutdown_delay,
            disable_shutdown,
            acpi_shutdown,
            media,
            output_directory,
            output_filename,
            vm_name,
            guest_os_type,
            cpus,
            memory_mib,
            disk_size_mib,
            hard_drive_interface,
            hard_drive_discard,
            hard_drive_nonrotational,
            sata_port_count,
            nvme_port_count,
            iso_interface,
            nic_type,
            chipset,
            firmware,
            gfx_controller,
            gfx_vram_size,
            hw,
            headless,
            sound,
            usb,
            vboxmanage,
            vboxmanage_post,
            guest_additions_mode,
            guest_additions_interface,
            guest_additions_path,
            guest_additions_url,
            guest_additions_sha256,
            virtualbox_version_file,
            keep_registered,
            checkpoint,
            skip_export,
            bundle_iso,
            format,
            export_opts,
            host_port_min,
            host_port_max,
            skip_nat_mapping,
            vrdp_bind_address,
            vrdp_port_min,
            vrdp_port_max,
        })
    }
}
