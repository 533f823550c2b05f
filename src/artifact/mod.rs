//! Disk artifacts in the forms other tools import: the OVF/OVA writer
//! (shared by the qemu post-processing and the virtualbox builder).
//!
//! Nothing here drives a VM; the only external program is `qemu-img`,
//! reached through the [`QemuImg`](crate::hypervisor::qemu::QemuImg) trait.

pub mod ovf;
