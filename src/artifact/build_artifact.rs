//! What a build or post-processor hands to the next post-processor: its
//! files, and typed facts about them (the disks with their formats and
//! sizes, the exported package, how the VM ran), so no post-processor has
//! to guess them back from file names or strings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::vm::{Accelerator, ImageFormat};

/// Packer's ids for the artifacts kiln makes. The builders and
/// post-processors name their artifacts with these; Packer's tools and
/// `-machine-readable` consumers match on them.
pub mod ids {
    pub const QEMU: &str = "transcend.qemu";
    pub const VIRTUALBOX: &str = "mitchellh.virtualbox";
    pub const VAGRANT: &str = "mitchellh.post-processor.vagrant";
    pub const COMPRESS: &str = "packer.post-processor.compress";
    pub const CHECKSUM: &str = "packer.post-processor.checksum";
    pub const AMAZON_IMPORT: &str = "packer.post-processor.amazon-import";
    pub const GOOGLECOMPUTE: &str = "packer.googlecompute";
    pub const GOOGLECOMPUTE_EXPORT: &str = "packer.post-processor.googlecompute-export";
    /// The null builder's: an artifact with no files.
    pub const NULL: &str = "fnoeding.null";
}

#[derive(Debug, Clone)]
pub struct Artifact {
    /// Packer's builder id (`transcend.qemu`, `mitchellh.virtualbox`): the
    /// vagrant post-processor picks the provider from it, as Packer does.
    pub builder_id: &'static str,
    pub build_name: String,
    pub build_type: String,
    /// Every file of the artifact, for the summary, the manifest and
    /// `-machine-readable`.
    pub files: Vec<PathBuf>,
    /// A short identifier (the VM name, an image name).
    pub id: String,
    /// The disk images among `files`, boot disk first.
    pub disks: Vec<Disk>,
    /// The OVF or OVA the build exported, if it did.
    pub package: Option<Package>,
    /// How the VM that made the disks ran, when a builder ran one.
    pub machine: Option<Machine>,
    /// Packer's pass-through state: strings kiln itself never interprets.
    pub state: BTreeMap<String, String>,
}

impl Artifact {
    /// An artifact of plain files (archives, checksums, boxes): no disks,
    /// no package, no machine.
    pub fn files_only(
        builder_id: &'static str,
        build_name: &str,
        build_type: &str,
        id: impl Into<String>,
        files: Vec<PathBuf>,
    ) -> Self {
        Self {
            builder_id,
            build_name: build_name.to_owned(),
            build_type: build_type.to_owned(),
            files,
            id: id.into(),
            disks: Vec::new(),
            package: None,
            machine: None,
            state: BTreeMap::new(),
        }
    }

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
            ids::QEMU | ids::VIRTUALBOX => {
                let dir = self
                    .files
                    .first()
                    .and_then(|f| f.parent())
                    .map(|d| d.display().to_string())
                    .unwrap_or_default();
                format!("VM files in directory: {dir}")
            }
            ids::VAGRANT => format!(
                "'{}' provider box: {}",
                self.state.get("provider").map_or("unknown", String::as_str),
                files()
            ),
            ids::COMPRESS => format!("compressed artifacts in: {}", files()),
            ids::CHECKSUM => format!("Created artifact from files: {}", files()),
            // Packer's AMI artifact: one `region: ami-…` line per region.
            ids::AMAZON_IMPORT => {
                format!("AMIs were created:\n{}\n", self.id.replacen(':', ": ", 1))
            }
            ids::GOOGLECOMPUTE => format!(
                "A disk image was created in the {} project: {}",
                self.state.get("ProjectId").map_or("", String::as_str),
                self.id
            ),
            // Packer prints the paths as a Go slice.
            ids::GOOGLECOMPUTE_EXPORT => format!(
                "Exported artifacts in: {}",
                self.state.get("Paths").map_or("[]", String::as_str)
            ),
            ids::NULL => "Did not export anything. This is the null builder".to_owned(),
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

    /// The first disk in `format`.
    pub fn disk(&self, format: ImageFormat) -> Option<&Disk> {
        self.disks.iter().find(|d| d.format == format)
    }
}

/// A disk image the artifact holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub path: PathBuf,
    pub format: ImageFormat,
    /// The size the guest sees, in bytes, when the builder knows it
    /// without reading the image (a disk started from `disk_image` and
    /// not resized keeps the source's size).
    pub virtual_size: Option<u64>,
}

/// An exported appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Package {
    /// A descriptor beside its disks (which are in `Artifact::files`),
    /// with the `.mf` manifest when there is one.
    Ovf {
        descriptor: PathBuf,
        manifest: Option<PathBuf>,
    },
    /// One tar file holding descriptor, manifest and disks.
    Ova(PathBuf),
}

impl Package {
    /// The package among the files an export step wrote (it wrote one
    /// `.ova`, or one `.ovf` with an optional `.mf`), and the disks beside
    /// an OVF. Only a builder calls this, on its own export's output.
    pub fn from_export(files: &[PathBuf]) -> (Option<Self>, Vec<Disk>) {
        let has =
            |f: &PathBuf, ext: &str| f.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext));
        if let Some(ova) = files.iter().find(|f| has(f, "ova")) {
            return (Some(Self::Ova(ova.clone())), Vec::new());
        }
        let Some(descriptor) = files.iter().find(|f| has(f, "ovf")) else {
            return (None, Vec::new());
        };
        let disks = files
            .iter()
            .filter(|f| has(f, "vmdk"))
            .map(|path| Disk {
                path: path.clone(),
                format: ImageFormat::Vmdk,
                virtual_size: None,
            })
            .collect();
        let package = Self::Ovf {
            descriptor: descriptor.clone(),
            manifest: files.iter().find(|f| has(f, "mf")).cloned(),
        };
        (Some(package), disks)
    }

    /// The files that make up the package itself (not its disks).
    pub fn own_files(&self) -> Vec<&Path> {
        match self {
            Self::Ovf {
                descriptor,
                manifest,
            } => std::iter::once(descriptor.as_path())
                .chain(manifest.as_deref())
                .collect(),
            Self::Ova(path) => vec![path.as_path()],
        }
    }
}

/// How the guest ran while it was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// The QEMU accelerator the guest ran under; `None` on a hypervisor of
    /// its own (VirtualBox). A box must tell its users whether the guest
    /// was emulated (libvirt's `driver`), since a host without KVM cannot
    /// start a `kvm` domain.
    pub accelerator: Option<Accelerator>,
    pub cpus: u32,
    pub memory_mib: u64,
}
