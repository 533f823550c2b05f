//! Finding the host files a medium lists (`cd_files`, `floppy_files`,
//! `floppy_dirs`): a path, or a pattern whose last component has `*`, read
//! relative to a base directory. Shared so both media expand alike.

use std::path::{Path, PathBuf};

use crate::host::glob::glob_match;

/// Why a listed entry stands for no file.
#[derive(Debug)]
pub enum ExpandError {
    /// Nothing at that path, or nothing matches the pattern.
    NoMatch,
    /// `..`, `/` or an empty entry: nothing with a name of its own.
    NoName,
    Io(PathBuf, std::io::Error),
}

/// The last component of `path`; `..` and `/` have none.
pub fn file_name(path: &Path) -> Option<String> {
    path.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// A directory's entries, sorted, so images do not depend on the order
/// the host filesystem lists them in.
pub fn read_dir_sorted(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries)
}

/// Whether an entry is a pattern rather than a path.
pub fn is_pattern(entry: &str) -> bool {
    entry.trim_end_matches('/').contains(['*', '?', '['])
}

/// The paths an entry stands for, read from `base` (a trailing `/` is
/// ignored here: what it means is up to the medium).
pub fn expand(entry: &str, base: &Path) -> Result<Vec<PathBuf>, ExpandError> {
    let trimmed = entry.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(ExpandError::NoName);
    }
    let path = base.join(trimmed);
    let name = file_name(&path).ok_or(ExpandError::NoName)?;
    if !name.contains(['*', '?', '[']) {
        return if path.exists() {
            Ok(vec![path])
        } else {
            Err(ExpandError::NoMatch)
        };
    }
    let dir = path.parent().unwrap_or(base);
    let mut found = Vec::new();
    for p in read_dir_sorted(dir).map_err(|_| ExpandError::NoMatch)? {
        if file_name(&p).is_some_and(|n| glob_match(&name, &n)) {
            found.push(p);
        }
    }
    if found.is_empty() {
        return Err(ExpandError::NoMatch);
    }
    Ok(found)
}
