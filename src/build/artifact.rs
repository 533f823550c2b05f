//! What a build produces: files plus what post-processors need to know
//! about them (which builder made them, the disk format, the VM's name).

use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Artifact {
    /// Packer's builder id (`transcend.qemu`, `mitchellh.virtualbox`): the
    /// vagrant post-processor picks the provider from it, as Packer does.
    pub builder_id: &'static str,
    pub build_name: String,
    pub build_type: String,
    pub files: Vec<PathBuf>,
    /// A short identifier (the VM name, an image name).
    pub id: String,
    /// Free-form facts: `format`, `disk_size_mib`, `cpus`, `memory_mib`, …
    pub metadata: BTreeMap<String, String>,
}

impl Artifact {
    /// Total size of the artifact's files, for the summary.
    pub fn size(&self) -> u64 {
        self.files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum()
    }
}
