//! `kiln hcl2_upgrade`: reads a JSON template, writes the HCL2 one
//! beside it (`TEMPLATE.pkr.hcl`, Packer's default name) or where
//! `-output-file` says, atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::args::Hcl2UpgradeArgs;
use super::output::ErrorOutput;
use crate::hcl::upgrade::{UpgradeError, upgrade};

#[derive(Debug, thiserror::Error)]
enum Hcl2UpgradeError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: invalid JSON ({message})", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The core's message is the whole story: said on one line.
    #[error("{}: {error}", path.display())]
    Upgrade { path: PathBuf, error: UpgradeError },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Hcl2UpgradeError {
    fn kind(&self) -> super::CommandError {
        match self {
            Self::Syntax { .. } | Self::Upgrade { .. } => super::CommandError::Input,
            Self::Read { .. } | Self::Write { .. } => super::CommandError::Host,
        }
    }
}

pub fn run(args: &Hcl2UpgradeArgs, out: &ErrorOutput) -> Result<(), super::CommandError> {
    match upgrade_file(args) {
        Ok(path) => {
            println!("Successfully created {}", path.display());
            Ok(())
        }
        Err(e) => {
            out.error(&e);
            Err(e.kind())
        }
    }
}

fn upgrade_file(args: &Hcl2UpgradeArgs) -> Result<PathBuf, Hcl2UpgradeError> {
    let json =
        std::fs::read_to_string(&args.template).map_err(|source| Hcl2UpgradeError::Read {
            path: args.template.clone(),
            source,
        })?;
    let path = args.template.clone();
    let hcl = upgrade(&json, args.with_annotations).map_err(|e| match e {
        UpgradeError::Json {
            line,
            column,
            message,
        } => Hcl2UpgradeError::Syntax {
            path,
            line,
            column,
            message,
        },
        error => Hcl2UpgradeError::Upgrade { path, error },
    })?;
    let target = args.output_file.clone().unwrap_or_else(|| {
        let mut name = args.template.clone().into_os_string();
        name.push(".pkr.hcl");
        PathBuf::from(name)
    });
    write_new(&target, &hcl).map_err(|source| Hcl2UpgradeError::Write {
        path: target.clone(),
        source,
    })?;
    Ok(target)
}

/// Written under a temporary name and renamed: no half-written template.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
