//! Integration tests: they run the real `kiln` binary.

mod amazon_import;
mod ansible;
mod cache;
mod checkpoint;
mod cli;
mod django;
mod fmt;
mod gce;
mod gce_import;
mod hcl;
mod hcl_data;
mod hostile;
mod http;
mod iso_fetch;
#[path = "../iso_support/mod.rs"]
mod iso_support;
mod key_pair;
mod layout;
mod machine_readable;
mod on_error;
mod ova;
mod postprocess;
mod qemu;
mod salt_chef;
mod secrets;
mod signals;
mod ssh;
mod strict;
mod support;
mod templates;
mod temporary_key;
mod upgrade;
mod vbox_build;
mod virtualbox;
mod vm;
