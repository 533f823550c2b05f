//! File stamps: a file's sha256 recorded with what the kernel says about it
//! (size, mtime and ctime in ns, inode, device, boot id), so that "is this
//! still the file we hashed?" costs one `stat`, not a re-hash (~1 s/GiB
//! here). The ISO cache's stamps work the same way (src/iso/cache.rs).
//!
//! Any difference in the stat fields means a full re-hash, and only the
//! digest decides. ctime cannot be set back by a user (the kernel moves it
//! on every write, rename or `touch -d`), so an edit that restores size and
//! mtime still shows. The boot id is there because artifacts are not all
//! fsynced: after a reboot (the only way unsynced data is lost) every
//! stamp is re-checked by its digest once.
//!
//! File times come from the kernel's coarse clock, so a write in the same
//! tick as the stamp could leave every field as stamped ("racy git"). A
//! stamp taken less than [`RACY_NS`] after the file's last change is not
//! trusted: the next check hashes and the new stamp it returns is.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::digest::{Algorithm, file_hex};
use serde::{Deserialize, Serialize};

/// What a file was when it was hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub inode: u64,
    pub device: u64,
    pub boot_id: String,
    pub sha256: String,
    /// Wall clock when the stamp was taken (ns since the epoch).
    pub taken_ns: i128,
}

/// How long after a file's last change its stamp must be taken to be
/// trusted: far above the coarse clock's tick (a few ms).
pub const RACY_NS: i128 = 1_000_000_000;

/// How a file compares with its stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StampCheck {
    /// Same size, times, inode, device and boot: not read.
    Unchanged,
    /// Its stat fields moved but its content is the one recorded; the new
    /// stamp lets the next check skip the hash again.
    SameContent(FileStamp),
    /// Not the recorded file; says how, for the user.
    Changed(String),
}

/// The kernel's id for this boot ("" where there is none).
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn stat_fields(meta: &std::fs::Metadata) -> (u64, i128, i128, u64, u64) {
    let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
    (
        meta.len(),
        ns(meta.mtime(), meta.mtime_nsec()),
        ns(meta.ctime(), meta.ctime_nsec()),
        meta.ino(),
        meta.dev(),
    )
}

impl FileStamp {
    /// Hashes `path` and records its stat fields. The stat is taken
    /// before the hash, so a write during the hash moves ctime past it and
    /// the next check re-hashes.
    pub fn take(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        let sha256 = file_hex(Algorithm::Sha256, path)?;
        let (size, mtime_ns, ctime_ns, inode, device) = stat_fields(&meta);
        let taken_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        Ok(Self {
            taken_ns,
            size,
            mtime_ns,
            ctime_ns,
            inode,
            device,
            boot_id: boot_id(),
            sha256,
        })
    }

    /// Compares `path` with this stamp, hashing only when the stat fields
    /// differ. An unreadable or missing file is `Changed`.
    pub fn check(&self, path: &Path) -> StampCheck {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return StampCheck::Changed("it is gone".into());
            }
            Err(e) => return StampCheck::Changed(format!("it cannot be read ({e})")),
        };
        let (size, mtime_ns, ctime_ns, inode, device) = stat_fields(&meta);
        if size != self.size {
            return StampCheck::Changed(format!("it is {size} bytes, {} were recorded", self.size));
        }
        let racy = self.taken_ns - self.ctime_ns.max(self.mtime_ns) < RACY_NS;
        if !racy
            && (mtime_ns, ctime_ns, inode, device)
                == (self.mtime_ns, self.ctime_ns, self.inode, self.device)
            && self.boot_id == boot_id()
        {
            return StampCheck::Unchanged;
        }
        match Self::take(path) {
            Ok(now) if now.sha256 == self.sha256 && now.size == self.size => {
                StampCheck::SameContent(now)
            }
            Ok(_) => StampCheck::Changed("its content changed (sha256 differs)".into()),
            Err(e) => StampCheck::Changed(format!("it cannot be read ({e})")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_hashed_only_when_its_stat_fields_move() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"content").expect("write");
        let mut stamp = FileStamp::take(&path).expect("stamp");
        // Taken in the same clock tick as the write: hashed again.
        assert!(matches!(stamp.check(&path), StampCheck::SameContent(_)));
        // As if taken later (tests do not wait a second).
        stamp.taken_ns += RACY_NS;
        assert_eq!(stamp.check(&path), StampCheck::Unchanged);

        // Rewritten with the same bytes: stat moved, content did not.
        std::fs::write(&path, b"content").expect("rewrite");
        let StampCheck::SameContent(mut fresh) = stamp.check(&path) else {
            panic!("expected SameContent");
        };
        fresh.taken_ns += RACY_NS;
        assert_eq!(fresh.check(&path), StampCheck::Unchanged);

        // Same size, other bytes.
        std::fs::write(&path, b"CONTENT").expect("edit");
        assert!(matches!(stamp.check(&path), StampCheck::Changed(r) if r.contains("sha256")));
        std::fs::write(&path, b"longer content").expect("grow");
        assert!(matches!(stamp.check(&path), StampCheck::Changed(r) if r.contains("bytes")));
        std::fs::remove_file(&path).expect("rm");
        assert!(matches!(stamp.check(&path), StampCheck::Changed(r) if r.contains("gone")));
    }
}
