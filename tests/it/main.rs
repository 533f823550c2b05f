//! Integration tests: they run the real `kiln` binary.

mod cache;
mod cli;
mod http;
mod key_pair;
mod layout;
mod machine_readable;
mod on_error;
mod ova;
mod postprocess;
mod qemu;
mod ssh;
mod strict;
mod support;
mod templates;
mod temporary_key;
mod vbox_build;
mod virtualbox;
mod vm;
