//! Checkpoints on disk, under the cache directory:
//!
//! ```text
//! checkpoints/<key>/disk.qcow2          the disk, standalone (no backing file); a
//!                                       VirtualBox checkpoint has disk.vdi instead
//! checkpoints/<key>/disk.qcow2.sha256   "sha256:<hex> <size>": what the disk must hash to
//! checkpoints/<key>/disk.qcow2.stamp    the disk's stat fields when it last hashed right
//! checkpoints/<key>/memory.bin          the VM's device and RAM state (a QEMU migration
//!                                       stream), when the builder could save one
//! checkpoints/<key>/memory.bin.sha256   its digest, and memory.bin.stamp its stamp
//! checkpoints/<key>/memory.compat       what a VM must match to load the stream
//!                                       (emulator version, accelerator, …), one line,
//!                                       sealed like memory.bin (.sha256, .stamp)
//! checkpoints/<key>/inputs.txt          the key's inputs (name, sha256), for people
//! checkpoints/<key>/last-used           touched by every build that resumes from it
//! checkpoints/locks/<key>.lock          flock: exclusive to write or remove, shared while in use
//! checkpoints/.partial-<key>-<pid>/     being written; renamed to <key>/ when complete
//! ```
//!
//! An entry appears only by renaming a complete, fsynced directory, so a
//! killed kiln leaves at most a `.partial-*` directory (swept once its
//! process is gone), never a checkpoint that looks whole.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::key::InstallKey;
use super::stamp::{FileStamp, StampCheck};

const DISK: &str = "disk.qcow2";
/// The disk of a VirtualBox checkpoint (a VDI made by `clonemedium`).
const DISK_VDI: &str = "disk.vdi";
/// `<file>.sha256` holds "sha256:<hex> <size>"; `<file>.stamp` a
/// [`FileStamp`] (JSON): a build re-hashes a file only when its stat
/// fields moved, so using a checkpoint costs a `stat`, not ~1 s/GiB.
fn disk_file(dir: &Path) -> &'static str {
    if dir.join(DISK_VDI).exists() {
        DISK_VDI
    } else {
        DISK
    }
}
/// The memory state: optional, sealed like the disk (digest and stamp).
const MEMORY: &str = "memory.bin";
const MEMORY_COMPAT: &str = "memory.compat";
const INPUTS: &str = "inputs.txt";
const LAST_USED: &str = "last-used";
const PARTIAL_PREFIX: &str = ".partial-";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError {
    let path = path.to_path_buf();
    move |source| CheckpointError::Io {
        action,
        path,
        source,
    }
}

/// The checkpoints directory of one cache.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    root: PathBuf,
}

/// What [`CheckpointStore::lookup`] found for a key.
#[derive(Debug)]
pub enum Lookup {
    Missing,
    /// Verified against its digest; held (shared lock) until dropped, so
    /// `kiln cache prune` does not remove it under a running build.
    Found(Checkpoint),
    /// It did not match its digest (or had none) and was removed (when no
    /// other build was using it); the build installs again.
    Corrupt {
        reason: String,
    },
}

/// A verified checkpoint, in use while this value lives.
#[derive(Debug)]
pub struct Checkpoint {
    pub disk: PathBuf,
    pub size: u64,
    /// The VM's memory state saved with the disk, if any (verified too).
    pub memory: Option<MemoryState>,
    _lock: File,
}

/// A saved memory state: the stream and what a VM must match to load it.
#[derive(Debug, Clone)]
pub struct MemoryState {
    pub path: PathBuf,
    pub size: u64,
    /// The builder's compatibility line, as it was given to
    /// [`Writer::memory_written`]; the builder compares it with its own.
    pub compat: String,
}

/// One entry as `kiln cache list` shows it.
#[derive(Debug, Clone)]
pub struct CheckpointEntry {
    pub key: String,
    pub dir: PathBuf,
    /// Bytes on disk (the disk image, the memory state and the small
    /// files beside them).
    pub size: u64,
    /// The disk image's bytes alone.
    pub disk_size: u64,
    /// The memory state's bytes, when one was saved.
    pub memory_size: Option<u64>,
    pub created: Option<SystemTime>,
    pub last_used: Option<SystemTime>,
}

/// A checkpoint being written: removed when dropped uncommitted, so an
/// error or Ctrl-C at any point leaves nothing that looks like one.
#[derive(Debug)]
pub struct Writer {
    store: CheckpointStore,
    key: InstallKey,
    partial: PathBuf,
    committed: bool,
    memory_compat: Option<String>,
    /// The disk's file name: [`DISK`], or [`DISK_VDI`] for VirtualBox.
    disk: &'static str,
    _lock: File,
}

impl CheckpointStore {
    /// `cache_root` is the ISO cache's directory (`KILN_CACHE_DIR`, …).
    pub fn in_cache(cache_root: &Path) -> Self {
        // Absolute: a resumed disk names its checkpoint as backing file, and
        // qemu-img reads a relative one from the overlay's directory.
        let root = cache_root.join("checkpoints");
        Self {
            root: std::path::absolute(&root).unwrap_or(root),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, key: &InstallKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    fn lock_file(&self, key: &str) -> Result<File, CheckpointError> {
        let dir = self.root.join("locks");
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let path = dir.join(format!("{key}.lock"));
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("open the lock", &path))
    }

    /// Finds and verifies the checkpoint for `key` (blocking: it hashes the disk).
    pub fn lookup(&self, key: &InstallKey) -> Result<Lookup, CheckpointError> {
        let dir = self.dir(key);
        if !dir.is_dir() {
            return Ok(Lookup::Missing);
        }
        let lock = self.lock_file(key.as_str())?;
        lock.lock_shared().map_err(io("lock", &dir))?;
        if !dir.is_dir() {
            return Ok(Lookup::Missing);
        }
        match verify_dir(&dir, true) {
            Ok((size, memory)) => {
                let used = dir.join(LAST_USED);
                // Only for pruning by last use: a failure costs nothing else.
                let _ = File::create(&used);
                Ok(Lookup::Found(Checkpoint {
                    disk: dir.join(disk_file(&dir)),
                    size,
                    memory,
                    _lock: lock,
                }))
            }
            Err(reason) => {
                drop(lock);
                self.remove_if_unused(key.as_str());
                Ok(Lookup::Corrupt { reason })
            }
        }
    }

    /// Removes an entry unless a build holds it; true when it is gone.
    fn remove_if_unused(&self, key: &str) -> bool {
        let Ok(lock) = self.lock_file(key) else {
            return false;
        };
        if lock.try_lock().is_err() {
            return false;
        }
        let dir = self.root.join(key);
        // Renamed first, so a half-removed directory never looks like an entry.
        let doomed = self
            .root
            .join(format!("{PARTIAL_PREFIX}{key}-{}", std::process::id()));
        if std::fs::rename(&dir, &doomed).is_err() {
            return !dir.exists();
        }
        std::fs::remove_dir_all(&doomed).is_ok()
    }

    /// Starts writing the checkpoint for `key`, or `None` when a complete
    /// one is already there (another build took it first) and `replace` is
    /// false. With `replace` (`-force-install`) the old one is removed,
    /// unless a build is using it: then `None` too.
    pub fn begin(
        &self,
        key: &InstallKey,
        replace: bool,
    ) -> Result<Option<Writer>, CheckpointError> {
        std::fs::create_dir_all(&self.root).map_err(io("create", &self.root))?;
        self.sweep_partials();
        let dir = self.dir(key);
        let lock = self.lock_file(key.as_str())?;
        if lock.try_lock().is_err() {
            if dir.is_dir() {
                // Held shared by a build using it, or by a writer that
                // finished: either way there is one.
                return Ok(None);
            }
            // Another build is writing it: wait, then look again.
            lock.lock().map_err(io("lock", &dir))?;
        }
        if dir.is_dir() {
            if !replace {
                return Ok(None);
            }
            drop(lock);
            if !self.remove_if_unused(key.as_str()) {
                return Ok(None);
            }
            return self.begin(key, false);
        }
        let partial = self.root.join(format!(
            "{PARTIAL_PREFIX}{key}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir(&partial).map_err(io("create", &partial))?;
        Ok(Some(Writer {
            store: self.clone(),
            key: key.clone(),
            partial,
            committed: false,
            memory_compat: None,
            disk: DISK,
            _lock: lock,
        }))
    }

    /// Removes `.partial-*` directories whose process is gone.
    pub fn sweep_partials(&self) -> Vec<PathBuf> {
        let mut swept = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return swept;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(PARTIAL_PREFIX) else {
                continue;
            };
            // <key>-<pid>[-<uuid>]
            let pid = rest.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| Path::new("/proc").join(p.to_string()).exists());
            if !alive && std::fs::remove_dir_all(e.path()).is_ok() {
                swept.push(e.path());
            }
        }
        swept
    }

    /// Every complete entry, sorted by key.
    pub fn list(&self) -> Result<Vec<CheckpointEntry>, CheckpointError> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io("read", &self.root)(e)),
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if InstallKey::parse(&name).is_none() || !e.path().is_dir() {
                continue;
            }
            let dir = e.path();
            let size = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|f| f.metadata().ok())
                .map(|m| m.len())
                .sum();
            let file_size = |f: &str| std::fs::metadata(dir.join(f)).map(|m| m.len()).ok();
            let modified = |f: &str| {
                std::fs::metadata(dir.join(f))
                    .and_then(|m| m.modified())
                    .ok()
            };
            out.push(CheckpointEntry {
                key: name,
                size,
                disk_size: file_size(disk_file(&dir)).unwrap_or(0),
                memory_size: file_size(MEMORY),
                created: modified(&digest_name(disk_file(&dir))),
                last_used: modified(LAST_USED).or_else(|| modified(&digest_name(disk_file(&dir)))),
                dir,
            });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Re-hashes every entry; a corrupt one is removed (unless in use).
    /// Returns (entry, `None` if good or the reason it was not).
    pub fn verify_all(&self) -> Result<Vec<(CheckpointEntry, Option<String>)>, CheckpointError> {
        let mut out = Vec::new();
        for entry in self.list()? {
            let lock = self.lock_file(&entry.key)?;
            lock.lock_shared().map_err(io("lock", &entry.dir))?;
            let result = verify_dir(&entry.dir, false).err();
            drop(lock);
            if result.is_some() {
                self.remove_if_unused(&entry.key);
            }
            out.push((entry, result));
        }
        Ok(out)
    }

    /// Removes entries last used longer than `older_than` ago (all with
    /// `None`), skipping those a build is using; returns what went.
    pub fn prune(
        &self,
        older_than: Option<std::time::Duration>,
    ) -> Result<Vec<PathBuf>, CheckpointError> {
        let now = SystemTime::now();
        let mut removed = self.sweep_partials();
        for entry in self.list()? {
            let old = match older_than {
                None => true,
                Some(limit) => entry
                    .last_used
                    .and_then(|t| now.duration_since(t).ok())
                    .is_none_or(|age| age >= limit),
            };
            if old && self.remove_if_unused(&entry.key) {
                removed.push(entry.dir);
            }
        }
        Ok(removed)
    }
}

/// Checks the disk (and the memory state, when there is one) against
/// their digest files; the disk's size and the memory state on success.
/// With `trust_stamp`, a file whose stat fields match its stamp is not
/// re-hashed (`kiln cache verify` always re-hashes).
fn verify_dir(dir: &Path, trust_stamp: bool) -> Result<(u64, Option<MemoryState>), String> {
    let size = verify_file(dir, disk_file(dir), "disk", trust_stamp)?;
    let has_memory = [MEMORY, &digest_name(MEMORY), MEMORY_COMPAT]
        .iter()
        .any(|f| dir.join(f).exists());
    if !has_memory {
        return Ok((size, None));
    }
    let memory_size = verify_file(dir, MEMORY, "memory state", trust_stamp)?;
    verify_file(dir, MEMORY_COMPAT, "memory compatibility line", trust_stamp)?;
    let compat = std::fs::read_to_string(dir.join(MEMORY_COMPAT))
        .map_err(|e| format!("its memory state's compatibility line cannot be read ({e})"))?;
    Ok((
        size,
        Some(MemoryState {
            path: dir.join(MEMORY),
            size: memory_size,
            compat: compat.trim_end().to_owned(),
        }),
    ))
}

fn digest_name(file: &str) -> String {
    format!("{file}.sha256")
}

fn stamp_name(file: &str) -> String {
    format!("{file}.stamp")
}

/// Checks one sealed file against its digest file; its size on success.
fn verify_file(dir: &Path, file: &str, what: &str, trust_stamp: bool) -> Result<u64, String> {
    let recorded = std::fs::read_to_string(dir.join(digest_name(file)))
        .map_err(|e| format!("its {what}'s digest file cannot be read ({e})"))?;
    let mut parts = recorded.split_whitespace();
    let (Some(want), Some(size)) = (
        parts.next().and_then(|d| d.strip_prefix("sha256:")),
        parts.next().and_then(|s| s.parse::<u64>().ok()),
    ) else {
        return Err(format!("its {what}'s digest file is malformed"));
    };
    let path = dir.join(file);
    let actual_size = std::fs::metadata(&path)
        .map_err(|e| format!("its {what} cannot be read ({e})"))?
        .len();
    if actual_size != size {
        return Err(format!(
            "its {what} is {actual_size} bytes, {size} were written (truncated?)"
        ));
    }
    let stamp = std::fs::read(dir.join(stamp_name(file)))
        .ok()
        .and_then(|t| serde_json::from_slice::<FileStamp>(&t).ok())
        .filter(|s| s.sha256 == want && s.size == size);
    if trust_stamp && let Some(stamp) = &stamp {
        match stamp.check(&path) {
            StampCheck::Unchanged => return Ok(size),
            StampCheck::SameContent(fresh) => {
                write_stamp(dir, file, &fresh);
                return Ok(size);
            }
            // The digest decides, and says how it differs.
            StampCheck::Changed(_) => {}
        }
    }
    let fresh = FileStamp::take(&path).map_err(|e| format!("its {what} cannot be read ({e})"))?;
    if fresh.sha256 != want {
        return Err(format!(
            "its {what}'s sha256 is {}, {want} was written",
            fresh.sha256
        ));
    }
    write_stamp(dir, file, &fresh);
    Ok(size)
}

/// Best effort (a shared lock is held, so two builds may both write it:
/// each writes a complete file and renames it, the last one stays).
fn write_stamp(dir: &Path, file: &str, stamp: &FileStamp) {
    let name = stamp_name(file);
    let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
    let text = serde_json::to_vec(stamp).unwrap_or_default();
    if std::fs::write(&tmp, text).is_err() || std::fs::rename(&tmp, dir.join(name)).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

fn write_synced(path: &Path, text: &str) -> Result<(), CheckpointError> {
    let mut f = File::create(path).map_err(io("create", path))?;
    f.write_all(text.as_bytes()).map_err(io("write", path))?;
    f.sync_all().map_err(io("sync", path))
}

fn sync_dir(path: &Path) -> Result<(), CheckpointError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(io("sync", path))
}

impl Writer {
    /// Where the builder writes the disk image (qcow2, standalone).
    pub fn disk_path(&self) -> PathBuf {
        self.partial.join(self.disk)
    }

    /// Makes the disk a VDI (VirtualBox's own format, what `clonemedium`
    /// writes) and says where the builder writes it.
    pub fn vdi_disk_path(&mut self) -> PathBuf {
        self.disk = DISK_VDI;
        self.disk_path()
    }

    /// Where the builder writes the memory state, if it saves one.
    pub fn memory_path(&self) -> PathBuf {
        self.partial.join(MEMORY)
    }

    /// Says the memory state is complete at [`Writer::memory_path`] and
    /// what a VM must match to load it: it is sealed with the disk. A
    /// memory file left without this call is not kept.
    pub fn memory_written(&mut self, compat: &str) {
        self.memory_compat = Some(compat.to_owned());
    }

    /// Hashes and syncs the disk (and the memory state), writes the
    /// digests and the inputs, and renames the directory into place.
    /// Returns the checkpoint's size (disk and memory).
    pub fn commit(mut self, inputs: &[(String, String)]) -> Result<u64, CheckpointError> {
        let mut size = seal(&self.partial, self.disk)?;
        match &self.memory_compat {
            Some(compat) => {
                size += seal(&self.partial, MEMORY)?;
                write_synced(&self.partial.join(MEMORY_COMPAT), &format!("{compat}\n"))?;
                // Sealed too: an edited line could otherwise make a VM
                // that does not match try the stream.
                seal(&self.partial, MEMORY_COMPAT)?;
            }
            None => {
                let stray = self.memory_path();
                if stray.exists() {
                    std::fs::remove_file(&stray).map_err(io("remove", &stray))?;
                }
            }
        }
        let listing: String = inputs
            .iter()
            .map(|(name, d)| format!("{name} sha256:{d}\n"))
            .collect();
        write_synced(&self.partial.join(INPUTS), &listing)?;
        sync_dir(&self.partial)?;
        let dir = self.store.dir(&self.key);
        std::fs::rename(&self.partial, &dir).map_err(io("rename into place", &dir))?;
        sync_dir(&self.store.root)?;
        self.committed = true;
        Ok(size)
    }
}

/// Syncs `file` in `dir`, hashes it and writes its digest and stamp
/// beside it; its size.
fn seal(dir: &Path, file: &str) -> Result<u64, CheckpointError> {
    let path = dir.join(file);
    File::open(&path)
        .and_then(|f| f.sync_all())
        .map_err(io("sync", &path))?;
    let stamp = FileStamp::take(&path).map_err(io("hash", &path))?;
    write_synced(
        &dir.join(digest_name(file)),
        &format!("sha256:{} {}\n", stamp.sha256, stamp.size),
    )?;
    write_synced(
        &dir.join(stamp_name(file)),
        &serde_json::to_string(&stamp).unwrap_or_default(),
    )?;
    Ok(stamp.size)
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.partial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::KeyBuilder;

    fn key(n: u64) -> InstallKey {
        let mut b = KeyBuilder::new("test");
        b.number("n", n);
        b.finish()
    }

    fn write(store: &CheckpointStore, k: &InstallKey, data: &[u8]) {
        let w = store.begin(k, false).expect("begin").expect("a writer");
        std::fs::write(w.disk_path(), data).expect("write disk");
        w.commit(&[("n".into(), "x".into())]).expect("commit");
    }

    #[test]
    fn a_committed_checkpoint_is_found_and_verified() {
        let cache = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::in_cache(cache.path());
        let k = key(1);
        assert!(matches!(store.lookup(&k), Ok(Lookup::Missing)));
        write(&store, &k, b"disk bytes");
        match store.lookup(&k).expect("lookup") {
            Lookup::Found(c) => {
                assert_eq!(c.size, 10);
                assert_eq!(std::fs::read(&c.disk).expect("read"), b"disk bytes");
            }
            other => panic!("{other:?}"),
        }
        let listed = store.list().expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, k.as_str());
    }

    #[test]
    fn a_vdi_checkpoint_is_sealed_found_and_checked_like_a_qcow2_one() {
        let cache = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::in_cache(cache.path());
        let k = key(11);
        let mut w = store.begin(&k, false).expect("begin").expect("writer");
        let disk = w.vdi_disk_path();
        assert_eq!(disk.file_name().and_then(|n| n.to_str()), Some("disk.vdi"));
        std::fs::write(&disk, b"a VDI").expect("write disk");
        w.commit(&[]).expect("commit");
        let dir = store.dir(&k);
        assert!(dir.join("disk.vdi.sha256").is_file());
        assert!(!dir.join("disk.qcow2").exists());
        match store.lookup(&k).expect("lookup") {
            Lookup::Found(c) => assert_eq!(c.disk, dir.join("disk.vdi")),
            other => panic!("{other:?}"),
        }
        let listed = store.list().expect("list");
        assert_eq!(
            (listed[0].disk_size, listed[0].created.is_some()),
            (5, true)
        );
        std::fs::write(dir.join("disk.vdi"), b"a VDX").expect("damage");
        let verified = store.verify_all().expect("verify");
        assert!(
            verified[0]
                .1
                .as_deref()
                .is_some_and(|r| r.contains("sha256")),
            "{verified:?}"
        );
        assert!(!dir.exists(), "a damaged checkpoint is removed");
    }

    #[test]
    fn a_dropped_writer_leaves_nothing() {
        let cache = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::in_cache(cache.path());
        let k = key(2);
        let w = store.begin(&k, false).expect("begin").expect("writer");
        std::fs::write(w.disk_path(), b"half").expect("write");
        drop(w);
        assert!(matches!(store.lookup(&k), Ok(Lookup::Missing)));
        let left: Vec<_> = std::fs::read_dir(store.root())
            .expect("read")
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != "locks")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_corrupt_or_truncated_checkpoint_is_refused_and_removed() {
        let cache = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::in_cache(cache.path());
        for (n, damage) in [(3u64, b"disk XXXXX".as_slice()), (4, b"disk".as_slice())] {
            let k = key(n);
            write(&store, &k, b"disk bytes");
            std::fs::write(store.dir(&k).join(DISK), damage).expect("damage");
            match store.lookup(&k).expect("lookup") {
                Lookup::Corrupt { reason } => assert!(
                    reason.contains("sha256") || reason.contains("truncated"),
                    "{reason}"
                ),
                other => panic!("{other:?}"),
            }
            assert!(!store.dir(&k).exists());
        }
    }

    #[test]
    fn the_second_of_two_racing_writers_finds_the_first_ones() {
        let cache = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::in_cache(cache.path());
        let k = key(5);
        let first = store.begin(&k, false).expect("begin").expect("writer");
        std::fs::write(first.disk_path(), b"first").expect("write");
        let (s2, k2) = (store.clone(), k.clone());
        // The second waits on the lock while the first writes.
        let second = std::thread::spawn(move || s2.begin(&k2, false).expect("begin").is_none());
        first.commit(&[]).expect("commit");
        assert!(
            second.join().expect("thread"),
            "the second writer must not write again"
        );
        match store.lookup(&k).expect("lookup") {
            Lookup::Found(c) => assert_eq!(std::fs::read(&c.disk).expect("read"), b"first"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn replace_and_prune_skip_a_checkpoint_in_use() {
        let cache = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::in_cache(cache.path());
        let k = key(6);
        write(&store, &k, b"old");
        let in_use = store.lookup(&k).expect("lookup");
        assert!(store.begin(&k, true).expect("begin").is_none());
        assert!(store.prune(None).expect("prune").is_empty());
        drop(in_use);
        let w = store.begin(&k, true).expect("begin").expect("replaces");
        std::fs::write(w.disk_path(), b"new").expect("write");
        w.commit(&[]).expect("commit");
        assert_eq!(
            std::fs::read(store.dir(&k).join(DISK)).expect("read"),
            b"new"
        );
        assert_eq!(store.prune(None).expect("prune").len(), 1);
        assert!(store.list().expect("list").is_empty());
    }

    #[test]
    fn a_memory_state_is_sealed_with_the_disk_and_verified_with_it() {
        let cache = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::in_cache(cache.path());
        let k = key(7);
        let mut w = store.begin(&k, false).expect("begin").expect("writer");
        std::fs::write(w.disk_path(), b"disk").expect("write disk");
        std::fs::write(w.memory_path(), b"memory stream").expect("write memory");
        w.memory_written("qemu 10.0.2 tcg v1");
        assert_eq!(w.commit(&[]).expect("commit"), 4 + 13);
        match store.lookup(&k).expect("lookup") {
            Lookup::Found(c) => {
                let m = c.memory.expect("a memory state");
                assert_eq!((m.size, m.compat.as_str()), (13, "qemu 10.0.2 tcg v1"));
                assert_eq!(std::fs::read(&m.path).expect("read"), b"memory stream");
            }
            other => panic!("{other:?}"),
        }
        let listed = store.list().expect("list");
        assert_eq!((listed[0].disk_size, listed[0].memory_size), (4, Some(13)));

        // A damaged memory state condemns the whole entry: nothing in it is
        // trusted, and the next build installs and saves both again.
        std::fs::write(store.dir(&k).join(MEMORY), b"memory strean").expect("damage");
        match store.lookup(&k).expect("lookup") {
            Lookup::Corrupt { reason } => {
                assert!(reason.contains("memory state's sha256"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(!store.dir(&k).exists());
    }

    #[test]
    fn an_edited_memory_compatibility_line_condemns_the_entry() {
        let cache = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::in_cache(cache.path());
        let k = key(9);
        let mut w = store.begin(&k, false).expect("begin").expect("writer");
        std::fs::write(w.disk_path(), b"disk").expect("write disk");
        std::fs::write(w.memory_path(), b"memory stream").expect("write memory");
        w.memory_written("qemu 10.0.2 tcg v1");
        w.commit(&[]).expect("commit");
        std::fs::write(store.dir(&k).join(MEMORY_COMPAT), "qemu 10.0.2 kvm v1\n").expect("edit");
        match store.lookup(&k).expect("lookup") {
            Lookup::Corrupt { reason } => {
                assert!(reason.contains("memory compatibility line"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(!store.dir(&k).exists());
    }

    #[test]
    fn a_memory_file_never_declared_complete_is_not_kept() {
        let cache = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::in_cache(cache.path());
        let k = key(8);
        let w = store.begin(&k, false).expect("begin").expect("writer");
        std::fs::write(w.disk_path(), b"disk").expect("write disk");
        std::fs::write(w.memory_path(), b"half a stre").expect("write memory");
        w.commit(&[]).expect("commit");
        match store.lookup(&k).expect("lookup") {
            Lookup::Found(c) => assert!(c.memory.is_none()),
            other => panic!("{other:?}"),
        }
        assert!(!store.dir(&k).join(MEMORY).exists());
    }
}
