//! What builds produce: the typed [`Artifact`] handed along post-processor
//! chains, and disk artifacts in the forms other tools import (the OVF/OVA
//! writer, shared by the qemu post-processing and the virtualbox builder).
//!
//! Nothing here drives a VM; the only external program is `qemu-img`,
//! reached through the [`QemuImg`](crate::hypervisor::qemu::QemuImg) trait.

mod build_artifact;
pub mod ovf;

pub use build_artifact::{Accelerator, Artifact, Disk, DiskFormat, Machine, Package, ids};
