//! What goes into a virtualbox-iso build's install key, and when a build
//! gets no checkpoint. The shared install inputs (ISO, boot command as
//! written, served and attached files) come from
//! [`crate::builder::common::checkpoint`]; this adds the VirtualBox
//! hardware the installer saw, as the typed specs VBoxManage is given.

use std::path::PathBuf;

use crate::builder::common::checkpoint::{
    InstallMedia, add_install_media, as_written, why_no_checkpoint,
};
use crate::checkpoint::{KeyBuilder, volatile_functions};

use super::{VBoxState, specs};

/// The install key's kind: a VirtualBox disk never resumes a qemu build.
const KIND: &str = "virtualbox-iso";

/// Why a build takes no checkpoint (shown once, as information).
pub(super) fn why_not(state: &VBoxState) -> Option<&'static str> {
    let c = &state.config;
    why_no_checkpoint(
        &state.common,
        c.checkpoint,
        !c.hw.disk_additional_size_mib.is_empty(),
    )
}

/// The key of this build's install, and the volatile template functions
/// found in its inputs (each makes every run's key new: warn about it).
pub(super) fn install_key(state: &VBoxState) -> Result<(KeyBuilder, Vec<String>), String> {
    let c = &state.config;
    let common = &state.common;
    let mut key = KeyBuilder::new(KIND);
    let (mut volatile, mut known) = add_install_media(
        &mut key,
        common,
        &InstallMedia {
            boot: &c.boot,
            boot_steps: &c.boot_steps,
            http: &c.http,
            vm_name: &c.vm_name,
        },
    )?;
    // The VM and its disk as VBoxManage creates them, without the VM's
    // name and the disk's path (they do not change what is installed).
    let mut vm = specs::vm_spec(c);
    vm.name.clear();
    key.text("vm", &format!("{vm:?}"));
    let mut disk = specs::disk_spec(c);
    disk.path = PathBuf::new();
    key.text("disk", &format!("{disk:?}"));
    key.text(
        "guest_additions_mode",
        &format!("{:?}", c.guest_additions_mode),
    );
    // `vboxmanage` rows run before the install, so they shape it; their
    // `{{ .Name }}` (the VM to act on) stays as written.
    known.remove("Name");
    let mut rows = Vec::new();
    for row in &c.vboxmanage {
        let mut rendered = Vec::new();
        for d in row {
            for f in volatile_functions(d.source()) {
                volatile.push(format!("vboxmanage uses {{{{ {f} }}}}"));
            }
            rendered.push(as_written(common, "vboxmanage", d, &["Name"], &known)?);
        }
        rows.push(rendered.join("\u{1f}"));
    }
    key.list("vboxmanage", &rows);
    Ok((key, volatile))
}
