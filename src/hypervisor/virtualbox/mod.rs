//! VirtualBox, driven through its `VBoxManage` command as Packer and Vagrant
//! do (see DESIGN.md for why not the C API).
//!
//! [`driver`] finds and runs `VBoxManage` and parses what it prints;
//! [`command`] builds each command of a `virtualbox-iso` build in order, as
//! typed values that are golden-tested; [`log`] reads why VirtualBox
//! stopped a VM from its `VBox.log`. The builder's steps compose them.

pub mod command;
pub mod driver;
pub mod log;

pub use command::{
    BootCommandStep, DiskSpec, ExportSpec, IsoAttachment, NatRule, StorageBus, VBoxCommand, VmSpec,
    render_vboxmanage_rows,
};
pub use driver::{
    VBoxError, VBoxManage, VBoxManageCli, VBoxVersion, VmEntry, VmState,
    parse_default_guest_additions_iso, parse_list_vms, parse_machinereadable, parse_version,
};
