//! Integration tests: they run the real `kiln` binary.

mod cache;
mod cli;
mod hcl;
mod http;
mod ova;
mod postprocess;
mod qemu;
mod ssh;
mod support;
mod templates;
mod vbox_build;
mod virtualbox;
mod vm;
