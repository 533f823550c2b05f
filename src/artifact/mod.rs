//! What builds produce: the typed [`Artifact`] handed along post-processor
//! chains, and disk artifacts in the forms other tools import (the OVF/OVA
//! writer, shared by the qemu post-processing and the virtualbox builder).
//!
//! Nothing here drives a VM or knows a hypervisor; the one external
//! program, a disk converter, is reached through [`VmdkConverter`] (the
//! qemu-img driver implements it).

mod build_artifact;
mod convert;
pub mod ovf;

pub use build_artifact::{Artifact, Disk, Machine, Package, ids};
pub use convert::{ConvertError, VmdkConverter};
