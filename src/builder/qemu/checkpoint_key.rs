//! What goes into a qemu build's install key, and when a build gets no
//! checkpoint at all. The key is made of the inputs that shape what the
//! installer writes to the disk, as they are written in the template:
//! build-time fields (`{{ .HTTPIP }}`, `{{ .HTTPPort }}`) stay unrendered,
//! since they change from run to run without changing the install.

use crate::builder::common::checkpoint::{
    InstallMedia, add_install_media, as_written, resolve, why_no_checkpoint,
};
use crate::checkpoint::{KeyBuilder, volatile_functions};
use crate::config::qemu::DiskInterface;

use super::QemuState;

/// Why a build takes no checkpoint (shown once, as information).
pub(super) fn why_not(state: &QemuState) -> Option<&'static str> {
    let c = &state.config;
    if c.disk_image {
        // Nothing is installed: the build starts from an image already.
        return Some("");
    }
    why_no_checkpoint(
        &state.common,
        c.checkpoint,
        !c.disk_additional_size_mib.is_empty(),
    )
}

/// The key of this build's install, and the volatile template functions
/// found in its inputs (each makes every run's key new: warn about it).
pub(super) fn install_key(state: &QemuState) -> Result<(KeyBuilder, Vec<String>), String> {
    use crate::config::qemu::QEMUARGS_FIELDS;
    let c = &state.config;
    let common = &state.common;
    let mut key = KeyBuilder::new("qemu");
    let (mut volatile, known) = add_install_media(
        &mut key,
        common,
        &InstallMedia {
            boot: &c.boot,
            boot_steps: &c.boot_steps,
            http: &c.http,
            vm_name: &c.vm_name,
        },
    )?;
    let mut note = |what: &str, source: &str| {
        for f in volatile_functions(source) {
            volatile.push(format!("{what} uses {{{{ {f} }}}}"));
        }
    };

    key.number("disk_size_mib", c.disk_size_mib);
    key.text("disk_interface", c.disk_interface.name());
    key.text("format", c.format.as_str());
    key.number("memory_mib", c.memory_mib);
    key.number("cpus", u64::from(c.cpus));
    key.text("machine_type", &c.machine_type);
    key.text("net_device", &c.net_device);
    key.optional(
        "cdrom_interface",
        c.cdrom_interface.map(DiskInterface::name),
    );
    match &c.firmware {
        Some(fw) => {
            let path = resolve(common, &fw.display().to_string());
            key.file("firmware", &path)
                .map_err(|e| format!("cannot read firmware {}: {e}", path.display()))?;
        }
        None => {
            key.optional("firmware", None);
        }
    }
    // The virtual hardware the installer saw (Bento's keys): CPU model and
    // topology, graphics, UEFI and its firmware files as configured.
    key.text("hardware", &format!("{:?}", c.hardware));
    let mut args = Vec::new();
    for row in &c.qemuargs {
        let mut rendered = Vec::new();
        for d in row {
            note("qemuargs", d.source());
            rendered.push(as_written(common, "qemuargs", d, QEMUARGS_FIELDS, &known)?);
        }
        args.push(rendered.join("\u{1f}"));
    }
    key.list("qemuargs", &args);
    key.list("qemu_img_args.create", &c.qemu_img_args.create);
    Ok((key, volatile))
}
