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
    /// The one-line description Packer's artifacts give (`String()`), for
    /// the summary and the `artifact,N,string` record.
    pub fn description(&self) -> String {
        let files = || {
            self.files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self.builder_id {
            crate::builder::qemu::BUILDER_ID | crate::builder::virtualbox::BUILDER_ID => {
                let dir = self
                    .files
                    .first()
                    .and_then(|f| f.parent())
                    .map(|d| d.display().to_string())
                    .unwrap_or_default();
                format!("VM files in directory: {dir}")
            }
            crate::postprocess::VAGRANT_BUILDER_ID => format!(
                "'{}' provider box: {}",
                self.metadata
                    .get("provider")
                    .map(String::as_str)
                    .unwrap_or("unknown"),
                files()
            ),
            crate::postprocess::COMPRESS_BUILDER_ID => {
                format!("compressed artifacts in: {}", files())
            }
            crate::postprocess::CHECKSUM_BUILDER_ID => {
                format!("Created artifact from files: {}", files())
            }
            _ => format!("files: {}", files()),
        }
    }

    /// Total size of the artifact's files, for the summary.
    pub fn size(&self) -> u64 {
        self.files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum()
    }
}
