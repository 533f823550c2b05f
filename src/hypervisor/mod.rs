//! Drivers for the hypervisors kiln builds on.
//!
//! Each submodule knows exactly one hypervisor; shared parts of a build
//! (ISO, HTTP, boot command, SSH) never import from here, builders compose them.

pub mod qemu;
pub mod virtualbox;
