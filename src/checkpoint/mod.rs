//! Install checkpoints: the disk a build's guest had when it first answered
//! SSH, kept in the cache under a key made of every input of the install,
//! so a later build with the same inputs skips the install.
//!
//! This module knows no hypervisor: it makes keys ([`key`]) and keeps
//! verified, atomically written entries under a lock ([`store`]). Each
//! builder decides what goes into its key and how it saves and boots a disk.

pub mod key;
pub mod record;
pub mod record_secret;
pub mod stamp;
pub mod store;

pub use key::{FORMAT_VERSION, InstallKey, KeyBuilder, volatile_functions};
pub use store::{
    Checkpoint, CheckpointEntry, CheckpointError, CheckpointStore, Lookup, MemoryState, Writer,
};

/// `KILN_NO_CHECKPOINT=1` (any value but empty or `0`) turns checkpoints off
/// for every build, for machines that must not keep disk images around.
pub fn disabled_by_env() -> bool {
    std::env::var_os("KILN_NO_CHECKPOINT").is_some_and(|v| !v.is_empty() && v != "0")
}
