//! Integration tests: they run the real `kiln` binary.

mod cache;
mod cli;
mod hostile;
mod http;
#[path = "../iso_support/mod.rs"]
mod iso_support;
mod ova;
mod postprocess;
mod qemu;
mod secrets;
mod signals;
mod ssh;
mod support;
mod templates;
mod vbox_build;
mod virtualbox;
mod vm;
