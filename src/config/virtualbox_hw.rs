//! The `virtualbox-iso` hardware keys the VirtualBox plugin added after
//! Packer 1.6 and that Bento's templates set: nested virtualisation, the
//! RTC's time base, the audio and USB controllers, 3D acceleration, the EFI
//! console resolution and additional disks.

use super::decode::Fields;
use crate::template::json::Value;

/// Packer's limit: VirtualBox has 30 SATA ports, and kiln keeps 13-15 for
/// the DVD drives; this bound keeps the disks below them on every bus.
const MAX_ADDITIONAL_DISKS: usize = 12;

/// On IDE, Packer attaches disk N at port N, device 0: the first
/// additional disk takes 1:0 (where guest additions would go), a second
/// would need a port 2 that IDE does not have.
pub const IDE_ADDITIONAL_DISKS: usize = 1;

/// An additional disk on IDE sits at 1:0, the slot attached guest
/// additions take on IDE: the two cannot both be there.
pub fn check_ide_disk_and_guest_additions(
    f: &mut Fields<'_>,
    disks: usize,
    additions_on_ide: bool,
) {
    if disks == 0 || !additions_on_ide {
        return;
    }
    let span = f.span_of("disk_additional_size").unwrap_or_default();
    f.error_at(
        span,
        "disk_additional_size: on hard_drive_interface ide the additional disk takes IDE 1:0, where guest_additions_mode \"attach\" puts the guest additions",
    )
    .hint = Some(
        "set \"guest_additions_interface\": \"sata\", or \"hard_drive_interface\": \"sata\"".into(),
    );
}

/// A storage controller kind (`hard_drive_interface`, `iso_interface`,
/// `guest_additions_interface`), parsed once here; the builder maps it to
/// the driver's own type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageInterface {
    Ide,
    Sata,
    Scsi,
    /// NVMe: `pcie`, or `nvme` as kiln also accepts.
    Pcie,
    Virtio,
}

impl StorageInterface {
    /// What `hard_drive_interface` accepts, in its error's order.
    pub(super) const DISK_NAMES: &[&str] = &["ide", "sata", "scsi", "pcie", "nvme", "virtio"];
    /// What `iso_interface` and `guest_additions_interface` accept.
    pub(super) const CD_NAMES: &[&str] = &["ide", "sata", "virtio"];

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "ide" => Self::Ide,
            "sata" => Self::Sata,
            "scsi" => Self::Scsi,
            "pcie" | "nvme" => Self::Pcie,
            "virtio" => Self::Virtio,
            _ => return None,
        })
    }

    /// `key` as one of `names`; an error (with a did-you-mean) for any
    /// other value.
    pub(super) fn decode(f: &mut Fields<'_>, key: &'static str, names: &[&str]) -> Option<Self> {
        f.one_of(key, names).as_deref().and_then(Self::from_name)
    }
}

/// VirtualBox hardware settings beyond the basic machine, held as they are
/// in the builder's config (`VirtualBoxIsoConfig::hw`).
#[derive(Debug, Clone)]
pub struct HwExtras {
    /// `gfx_accelerate_3d`; VirtualBox's default (off) when absent.
    pub gfx_accelerate_3d: Option<bool>,
    /// `gfx_efi_resolution`, `WIDTHxHEIGHT`: the EFI console's mode.
    pub gfx_efi_resolution: Option<String>,
    /// `nested_virt`; VirtualBox's default (off) when absent.
    pub nested_virt: Option<bool>,
    /// `rtc_time_base`: `UTC` or `local`.
    pub rtc_time_base: Option<String>,
    /// `audio_controller`: `ac97`, `hda` or `sb16`.
    pub audio_controller: Option<String>,
    /// `usb_controller`: any of `ohci`, `ehci`, `xhci`.
    pub usb_controllers: Vec<String>,
    /// `disk_additional_size`, in MiB: one more disk each.
    pub disk_additional_size_mib: Vec<u64>,
}

impl HwExtras {
    pub fn decode(
        f: &mut Fields<'_>,
        hard_drive_interface: StorageInterface,
        nvme_port_count: u32,
    ) -> Self {
        let gfx_accelerate_3d = f.bool("gfx_accelerate_3d");
        let gfx_efi_resolution = f.string("gfx_efi_resolution").filter(|s| !s.is_empty());
        if let Some(res) = &gfx_efi_resolution
            && !is_resolution(res)
        {
            let span = f.span_of("gfx_efi_resolution").unwrap_or_default();
            f.error_at(
                span,
                format!("gfx_efi_resolution: `{res}` is not WIDTHxHEIGHT"),
            )
            .hint = Some("write it as VirtualBox takes it, e.g. \"1920x1080\"".into());
        }
        let nested_virt = f.bool("nested_virt");
        let rtc_time_base = f.one_of("rtc_time_base", &["UTC", "local"]);
        let audio_controller = f.one_of("audio_controller", &["ac97", "hda", "sb16"]);
        let usb_controllers = usb_controllers(f);
        let disk_additional_size_mib = additional_disks(f, hard_drive_interface, nvme_port_count);
        Self {
            gfx_accelerate_3d,
            gfx_efi_resolution,
            nested_virt,
            rtc_time_base,
            audio_controller,
            usb_controllers,
            disk_additional_size_mib,
        }
    }
}

fn is_resolution(s: &str) -> bool {
    let Some((w, h)) = s.split_once('x') else {
        return false;
    };
    let number = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    number(w) && number(h)
}

/// `usb_controller`: each of `ohci`, `ehci`, `xhci`, at most once.
fn usb_controllers(f: &mut Fields<'_>) -> Vec<String> {
    const ALLOWED: [&str; 3] = ["ohci", "ehci", "xhci"];
    let Some(list) = f.string_list("usb_controller") else {
        return Vec::new();
    };
    let span = f.span_of("usb_controller").unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for name in list {
        if !ALLOWED.contains(&name.as_str()) {
            f.error_at(
                span,
                format!(
                    "usb_controller: `{name}` is not one of {}",
                    ALLOWED.join(", ")
                ),
            );
        } else if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// `disk_additional_size`: a list of sizes in MiB, each a positive number.
fn additional_disks(f: &mut Fields<'_>, bus: StorageInterface, nvme_port_count: u32) -> Vec<u64> {
    let Some(node) = f.raw("disk_additional_size") else {
        return Vec::new();
    };
    let Value::Array(items) = &node.value else {
        f.error_at(
            node.span,
            format!(
                "disk_additional_size: expected a list of sizes in MiB, found {}",
                node.kind()
            ),
        )
        .hint = Some("write e.g. [10240, 20480]".into());
        return Vec::new();
    };
    let mut sizes = Vec::new();
    for item in items {
        let text = match &item.value {
            Value::Number(n) => Some(n.clone()),
            Value::String(_) => f.render_node("disk_additional_size", item),
            _ => None,
        };
        match text.as_deref().and_then(super::go_value::parse_go_uint) {
            Some(n) if n > 0 => sizes.push(n),
            _ => {
                f.error_at(
                    item.span,
                    "disk_additional_size: each size is a whole number of MiB above 0",
                );
            }
        }
    }
    if sizes.is_empty() {
        return sizes;
    }
    let span = node.span;
    if bus == StorageInterface::Ide && sizes.len() > IDE_ADDITIONAL_DISKS {
        f.error_at(
            span,
            format!(
                "disk_additional_size: hard_drive_interface ide has room for one additional disk, not {}: disk N goes at IDE port N, and IDE has ports 0 and 1 (the disk at 0:0, the ISO at 0:1, the additional disk at 1:0)",
                sizes.len()
            ),
        )
        .hint = Some("set \"hard_drive_interface\": \"sata\" for more disks".into());
    } else if sizes.len() > MAX_ADDITIONAL_DISKS {
        f.error_at(
            span,
            format!(
                "disk_additional_size: {} disks, at most {MAX_ADDITIONAL_DISKS}",
                sizes.len()
            ),
        );
    } else if bus == StorageInterface::Pcie && sizes.len() + 1 > nvme_port_count as usize {
        let span = f.span_of("nvme_port_count").unwrap_or(span);
        f.error_at(
            span,
            format!(
                "nvme_port_count ({nvme_port_count}) is smaller than the number of disks ({})",
                sizes.len() + 1
            ),
        )
        .hint = Some(format!("set \"nvme_port_count\": {}", sizes.len() + 1));
    }
    sizes
}
