//! What can go wrong while exporting an OVF package or reading an OVA;
//! every variant names the file or command involved.

use std::path::{Path, PathBuf};

use super::manifest::DigestMismatch;
use crate::artifact::ConvertError;

#[derive(Debug, thiserror::Error)]
pub enum OvaError {
    #[error("`{name}` cannot name a file in an OVF package: {reason}")]
    BadFileName { name: String, reason: &'static str },
    #[error("the output path {} has no file name", path.display())]
    BadOutput { path: PathBuf },
    #[error("could not create a staging directory in {}", dir.display())]
    Staging {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not convert {} to a streamOptimized VMDK", source_disk.display())]
    Convert {
        source_disk: PathBuf,
        #[source]
        source: ConvertError,
    },
    #[error("could not read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} changed while it was packed ({expected} bytes expected, {actual} read)", path.display())]
    SizeChanged {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("could not move the finished package from {} to {}", from.display(), to.display())]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the export to {} was cancelled", out.display())]
    Cancelled { out: PathBuf },
}

/// Why an OVA cannot be read as it is.
#[derive(Debug, thiserror::Error)]
pub enum OvaReadError {
    /// Not an OVA kiln will take apart.
    #[error("{}: {problem}", archive.display())]
    Bad { archive: PathBuf, problem: String },
    /// The descriptor is not what the manifest says.
    #[error(transparent)]
    Corrupt(Box<DigestMismatch>),
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl OvaReadError {
    pub(super) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| Self::Io { what, path, source }
    }
}
