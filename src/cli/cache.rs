//! `kiln cache add|list|verify|prune`: the offline lab's tools for the ISO
//! cache. Definitions and output only; the work is in `crate::iso`.
//! (`kiln cache fetch TEMPLATE` lives with the template commands.)

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::checkpoint::{CheckpointEntry, CheckpointError, CheckpointStore};
use crate::iso::{
    CacheEntry, ChecksumSpec, Digest, IsoCache, IsoError, PruneOptions, find_in_checksum_file,
    parse_age,
};
use crate::ui::Reporter;

/// Manage the ISO cache (location: KILN_CACHE_DIR, else PACKER_CACHE_DIR,
/// else ./iso-cache if it exists, else ~/.cache/kiln).
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum CacheCommand {
    /// Hash a local ISO and copy it into the cache, so offline builds find it
    Add {
        /// The ISO file (it is copied; the original stays)
        file: PathBuf,
        /// Expected checksum: `sha256:<hex>` (or md5/sha1/sha512, or bare
        /// hex), or `file:SUMS` to look FILE's name up in a local checksum
        /// list. Without it the file is stored under its sha256.
        #[arg(long)]
        checksum: Option<String>,
        /// File extension of the cache entry (the template's iso_target_extension)
        #[arg(long, default_value = "iso")]
        extension: String,
    },
    /// List cached ISOs, interrupted downloads and install checkpoints
    List,
    /// Re-hash every cached ISO (corrupt ones are moved to quarantine/) and
    /// every install checkpoint (corrupt ones are removed)
    Verify,
    /// Remove entries unused for a while, interrupted downloads, quarantine
    Prune {
        /// Remove entries and partial downloads unused for this long (e.g. 30d, 12h)
        #[arg(long, value_parser = parse_age)]
        older_than: Option<Duration>,
        /// Remove every interrupted download (.part) not in use
        #[arg(long)]
        parts: bool,
        /// Empty quarantine/
        #[arg(long)]
        quarantine: bool,
        /// Remove every install checkpoint no build is using (--older-than
        /// alone removes those unused for that long)
        #[arg(long)]
        checkpoints: bool,
    },
}

/// Runs a cache command against the located cache, printing to stdout.
pub async fn run(cmd: CacheCommand, reporter: &dyn Reporter) -> Result<(), IsoError> {
    let cache = IsoCache::locate()?;
    run_in(&cache, cmd, reporter).await
}

/// [`run`] against a given cache.
pub async fn run_in(
    cache: &IsoCache,
    cmd: CacheCommand,
    reporter: &dyn Reporter,
) -> Result<(), IsoError> {
    match cmd {
        CacheCommand::Add {
            file,
            checksum,
            extension,
        } => {
            let expected = match checksum {
                Some(text) => Some(expected_digest(&file, &text)?),
                None => None,
            };
            let entry = cache
                .add(&file, expected.as_ref(), &extension, reporter)
                .await?;
            if let Some(d) = &entry.digest {
                println!("{d}  {}", entry.path.display());
            }
        }
        CacheCommand::List => {
            let now = SystemTime::now();
            let entries = cache.list()?;
            if entries.is_empty() && checkpoint_store(cache).list().is_ok_and(|c| c.is_empty()) {
                reporter.info(
                    "",
                    &format!("{}: the cache is empty", cache.root().display()),
                );
            }
            for e in &entries {
                println!("{}", list_line(e, now));
            }
            let checkpoints = checkpoint_store(cache).list().map_err(checkpoint_error)?;
            for c in &checkpoints {
                println!("{}", checkpoint_line(c, now));
            }
            if entries.iter().any(|e| e.changed) {
                reporter.info(
                    "",
                    "changed: the file was modified since it was verified; its next use re-hashes it (or run `kiln cache verify`)",
                );
            }
        }
        CacheCommand::Verify => {
            let report = cache.verify(reporter).await?;
            for p in &report.good {
                println!("ok           {}", p.display());
            }
            for (from, to) in &report.quarantined {
                println!("quarantined  {} -> {}", from.display(), to.display());
            }
            let checked = checkpoint_store(cache)
                .verify_all()
                .map_err(checkpoint_error)?;
            let mut damaged = 0;
            for (entry, problem) in &checked {
                match problem {
                    None => println!("ok           {}", entry.dir.display()),
                    Some(why) => {
                        damaged += 1;
                        println!("removed      {} ({why})", entry.dir.display());
                    }
                }
            }
            if damaged > 0 {
                reporter.warn(
                    "",
                    &format!(
                        "{damaged} install checkpoint(s) did not match their digest and were removed (unless a build was using them); the next build installs again"
                    ),
                );
            }
            if !report.quarantined.is_empty() {
                return Err(IsoError::Quarantined {
                    count: report.quarantined.len(),
                    dir: cache.root().join("quarantine"),
                });
            }
        }
        CacheCommand::Prune {
            older_than,
            parts,
            quarantine,
            checkpoints,
        } => {
            let removed = cache.prune(
                &PruneOptions {
                    older_than,
                    parts,
                    quarantine,
                },
                reporter,
            )?;
            for p in removed {
                println!("removed  {}", p.display());
            }
            if checkpoints || older_than.is_some() {
                let limit = if checkpoints { None } else { older_than };
                let removed = checkpoint_store(cache)
                    .prune(limit)
                    .map_err(checkpoint_error)?;
                for p in removed {
                    println!("removed  {}", p.display());
                }
            }
        }
    }
    Ok(())
}

/// The digest `--checksum` asks for; `file:SUMS` is looked up by FILE's name.
fn expected_digest(file: &Path, text: &str) -> Result<Digest, IsoError> {
    match ChecksumSpec::parse(text)? {
        ChecksumSpec::Digest(d) => Ok(d),
        ChecksumSpec::File { location } => {
            let path = location.strip_prefix("file://").unwrap_or(&location);
            let list = std::fs::read_to_string(path)
                .map_err(|e| IsoError::io(path, "cannot read checksum file", e))?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            find_in_checksum_file(&list, &name).ok_or(IsoError::ChecksumNotListed {
                location,
                file_name: name,
            })
        }
        ChecksumSpec::None => Err(IsoError::NoneNotAllowed),
    }
}

fn list_line(e: &CacheEntry, now: SystemTime) -> String {
    let digest = e
        .digest
        .as_ref()
        .map_or_else(|| "(no checksum)".to_owned(), Digest::to_string);
    let used = e
        .last_used
        .and_then(|t| now.duration_since(t).ok())
        .map_or_else(|| "-".to_owned(), age);
    format!(
        "{:<8} {:>9} {:>9}  {digest}  {}",
        match (e.partial, e.changed) {
            (true, _) => "partial",
            (false, true) => "changed",
            (false, false) => "verified",
        },
        crate::ui::console::format_bytes(e.size),
        used,
        e.path.display()
    )
}

fn checkpoint_store(cache: &IsoCache) -> CheckpointStore {
    CheckpointStore::in_cache(cache.root())
}

/// Checkpoint errors are I/O on the cache, reported like the ISO cache's.
fn checkpoint_error(e: CheckpointError) -> IsoError {
    match e {
        CheckpointError::Io {
            action,
            path,
            source,
        } => IsoError::io(path, action, source),
    }
}

fn checkpoint_line(c: &CheckpointEntry, now: SystemTime) -> String {
    let ago = |t: Option<SystemTime>| {
        t.and_then(|t| now.duration_since(t).ok())
            .map_or_else(|| "-".to_owned(), age)
    };
    let bytes = crate::ui::console::format_bytes;
    let parts = match c.memory_size {
        Some(m) => format!("disk {} + memory {}", bytes(c.disk_size), bytes(m)),
        None => format!("disk {}, no memory state", bytes(c.disk_size)),
    };
    format!(
        "{:<8} {:>9} {:>9}  made {}  {}  ({parts})",
        "install",
        bytes(c.size),
        ago(c.last_used),
        ago(c.created),
        c.dir.display()
    )
}

fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86_400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: CacheCommand,
    }

    #[test]
    fn parses_the_subcommands() {
        let p = |args: &[&str]| Cli::try_parse_from(args).map(|c| c.cmd);
        assert_eq!(
            p(&["x", "add", "d.iso", "--checksum", "sha256:ab"]).ok(),
            Some(CacheCommand::Add {
                file: "d.iso".into(),
                checksum: Some("sha256:ab".into()),
                extension: "iso".into()
            })
        );
        assert_eq!(
            p(&["x", "prune", "--older-than", "30d", "--parts"]).ok(),
            Some(CacheCommand::Prune {
                older_than: Some(Duration::from_secs(30 * 86_400)),
                parts: true,
                quarantine: false,
                checkpoints: false
            })
        );
        assert!(p(&["x", "prune", "--older-than", "soon"]).is_err());
        assert_eq!(p(&["x", "list"]).ok(), Some(CacheCommand::List));
    }

    #[test]
    fn formats_sizes_and_ages() {
        assert_eq!(age(Duration::from_secs(90_000)), "1d ago");
    }
}
