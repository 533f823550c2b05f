//! kiln's scratch directories in the system temp dir (QMP socket, CD
//! staging, accelerator probe). Each is named `kiln-<pid>-<what>-XXXXXX`
//! so a later kiln can tell whose it is: a SIGKILL or a second Ctrl-C
//! leaves them behind, and [`sweep_stale`] removes those whose owner
//! process is gone, never a live build's.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

const PREFIX: &str = "kiln-";

/// A new scratch directory owned by this process, removed when dropped.
pub fn tempdir(what: &str) -> std::io::Result<TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{}-{what}-", std::process::id()))
        .tempdir()
}

/// The pid in a scratch directory's name, if it is one of ours.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, what) = rest.split_once('-')?;
    if what.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

fn process_exists(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes the scratch directories in `dir` (the system temp dir when
/// None) whose owner process no longer exists and that belong to this
/// user. Returns what was removed; failures are skipped (another kiln may
/// be sweeping the same one).
pub fn sweep_stale(dir: Option<&Path>) -> Vec<PathBuf> {
    let dir = dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let me = rustix::process::geteuid().as_raw();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        // A pid reused by another process keeps the directory: the safe
        // side, it is only disk space.
        if pid == std::process::id() || process_exists(pid) {
            continue;
        }
        let path = entry.path();
        let ours = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == me);
        if ours && std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed.sort();
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_owner_pid() {
        assert_eq!(owner_pid("kiln-1234-vm-AbC123"), Some(1234));
        assert_eq!(owner_pid("kiln-1234-"), None);
        assert_eq!(owner_pid("kiln-AbC123"), None);
        assert_eq!(owner_pid("kiln-probe-x1"), None);
        assert_eq!(owner_pid("other-1234-vm"), None);
        let dir = tempdir("unit").expect("tempdir");
        let name = dir
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name");
        assert_eq!(owner_pid(name), Some(std::process::id()));
    }
}
