//! The content-addressed ISO cache: where it lives, how entries are named,
//! stamped, locked and maintained (`kiln cache add/list/verify/prune`).
//!
//! Layout under the cache root:
//!
//! ```text
//! sha256/<hex>.iso          verified entries (read-only), named by their digest
//! sha256/<hex>.iso.stamp    size/mtime/ctime/inode recorded right after verification
//! sha256/<hex>.iso.part     an interrupted download, resumed by the next fetch
//! locks/sha256-<hex>.lock   held (flock) by the one process downloading that digest
//! url/<sha256 of url>.part  downloads with `iso_checksum: none` (not resumed)
//! checksum-files/<sha256 of url>   copies of remote checksum files, for offline use
//! quarantine/               entries `kiln cache verify` found corrupt
//! ```
//!
//! An entry appears only by an atomic rename after its digest matched, so a
//! file under its final name has been verified once. Whether it is still the
//! same file is decided by its stamp: any change in size, mtime, ctime, inode
//! or device (ctime cannot be set back by a user) means a full re-hash
//! before the file is handed to a VM. Stamps also carry the kernel's boot
//! id: kiln does not fsync downloads (it would halve their speed on this
//! class of disk), so after a reboot — the only way unsynced data is lost —
//! every entry is re-hashed once on first use.
//!
//! Why stamps rather than re-hashing every use: a re-hash of a 2 GiB ISO
//! costs ~2 s of CPU per build (measured by bench/iso.sh), a stamp check
//! a few microseconds; the stamp cannot be fooled by an edit because the
//! kernel moves ctime on every write.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::checksum::{Digest, HashAlgo};
use super::error::IsoError;
use crate::ui::{Progress, Reporter};

/// Buffer for hashing and copying: large enough for few syscalls, small
/// enough to stay in L2 while the hasher reads it.
const BUF_SIZE: usize = 256 * 1024;

/// A content-addressed ISO cache rooted at one directory.
#[derive(Debug, Clone)]
pub struct IsoCache {
    root: PathBuf,
}

/// One file in the cache, as `kiln cache list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The digest the file was verified against (for a `.part`, the digest
    /// it is expected to have; `None` for `iso_checksum: none` downloads).
    pub digest: Option<Digest>,
    pub path: PathBuf,
    pub size: u64,
    /// An interrupted download rather than a verified entry.
    pub partial: bool,
    /// A verified entry whose file changed since its stamp (or whose stamp
    /// is missing): its next use re-hashes it.
    pub changed: bool,
    /// When the entry was last handed out (its stamp's mtime), or modified.
    pub last_used: Option<SystemTime>,
}

/// The outcome of [`IsoCache::verify`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub good: Vec<PathBuf>,
    /// Corrupt entries and where they were moved to.
    pub quarantined: Vec<(PathBuf, PathBuf)>,
}

/// What [`IsoCache::prune`] removes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PruneOptions {
    /// Remove entries and partial downloads not used for this long.
    pub older_than: Option<Duration>,
    /// Remove every partial download (not being written) regardless of age.
    pub parts: bool,
    /// Empty the quarantine.
    pub quarantine: bool,
}

impl IsoCache {
    /// Finds the cache directory, first match wins:
    ///
    /// 1. `KILN_CACHE_DIR`;
    /// 2. `PACKER_CACHE_DIR` (so a Packer user's setting carries over);
    /// 3. `./iso-cache` if that directory exists in the current directory
    ///    (kiln's repository ships one for its examples);
    /// 4. `$XDG_CACHE_HOME/kiln`, else `$HOME/.cache/kiln`.
    ///
    /// Nothing is created until something is written.
    pub fn locate() -> Result<IsoCache, IsoError> {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        if let Some(dir) = var("KILN_CACHE_DIR").or_else(|| var("PACKER_CACHE_DIR")) {
            return Ok(IsoCache::at(dir));
        }
        let local = Path::new("iso-cache");
        if local.is_dir() {
            let root = std::env::current_dir()
                .map(|d| d.join(local))
                .unwrap_or_else(|_| local.to_path_buf());
            return Ok(IsoCache::at(root));
        }
        if let Some(xdg) = var("XDG_CACHE_HOME") {
            return Ok(IsoCache::at(PathBuf::from(xdg).join("kiln")));
        }
        let home = var("HOME").ok_or(IsoError::NoCacheDir)?;
        Ok(IsoCache::at(
            PathBuf::from(home).join(".cache").join("kiln"),
        ))
    }

    /// A cache rooted at `root`.
    pub fn at(root: impl Into<PathBuf>) -> IsoCache {
        IsoCache { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the verified entry for `digest` lives.
    pub fn entry_path(&self, digest: &Digest, extension: &str) -> PathBuf {
        self.root
            .join(digest.algo().name())
            .join(format!("{}.{}", digest.hex(), extension))
    }

    pub(crate) fn lock_path(&self, key: &str) -> PathBuf {
        self.root.join("locks").join(format!("{key}.lock"))
    }

    pub(crate) fn checksum_file_copy(&self, location: &str) -> PathBuf {
        self.root.join("checksum-files").join(sha256_hex(location))
    }

    pub(crate) fn url_part_path(&self, url: &str, extension: &str) -> PathBuf {
        self.root
            .join("url")
            .join(format!("{}.{extension}.part", sha256_hex(url)))
    }

    /// Looks `digest` up in the cache (see [`lookup_verified`]).
    pub async fn lookup(
        &self,
        digest: &Digest,
        extension: &str,
        build: &str,
        reporter: &dyn Reporter,
    ) -> Result<Option<PathBuf>, IsoError> {
        lookup_verified(self.entry_path(digest, extension), digest, build, reporter).await
    }

    /// Moves a verified file into the cache under its digest (see
    /// [`commit_to`]). `file` must be on the cache's file system.
    pub(crate) fn commit(
        &self,
        file: &Path,
        digest: &Digest,
        extension: &str,
    ) -> Result<PathBuf, IsoError> {
        let dest = self.entry_path(digest, extension);
        commit_to(file, &dest)?;
        Ok(dest)
    }

    /// Pre-seeds the cache with a local file (`kiln cache add`): hashes it
    /// while copying it into the cache, checks `expected` if given, and
    /// renames the copy into place. Without `expected` the file is stored
    /// under its sha256.
    pub async fn add(
        &self,
        file: &Path,
        expected: Option<&Digest>,
        extension: &str,
        reporter: &dyn Reporter,
    ) -> Result<CacheEntry, IsoError> {
        let cache = self.clone();
        let file = file.to_path_buf();
        let expected = expected.cloned();
        let extension = extension.to_owned();
        let algo = expected.as_ref().map_or(HashAlgo::Sha256, Digest::algo);
        let size = fs::metadata(&file)
            .map_err(|e| IsoError::io(&file, "cannot read", e))?
            .len();
        let progress = reporter.progress("", &format!("adding {}", file.display()), Some(size));
        tokio::task::spawn_blocking(move || {
            let dir = cache.root.join(algo.name());
            mkdir(&dir)?;
            let tmp = dir.join(format!(".add-{}.tmp", std::process::id()));
            let mut guard = RemoveOnDrop(Some(tmp.clone()));
            let actual = copy_hashing(&file, &tmp, algo, &|p| progress.set_position(p))?;
            if let Some(want) = &expected
                && *want != actual
            {
                progress.finish("mismatch");
                return Err(IsoError::LocalMismatch {
                    path: file,
                    expected: want.clone(),
                    actual,
                });
            }
            let dest = cache.entry_path(&actual, &extension);
            let _lock = lock_blocking(&cache.lock_path(&lock_key(&actual)))?;
            let path = cache.commit(&tmp, &actual, &extension)?;
            guard.0 = None;
            progress.finish("added");
            let stamped = write_stamp(&path, &actual);
            let entry = CacheEntry {
                digest: Some(actual),
                size: fs::metadata(&dest).map(|m| m.len()).unwrap_or(0),
                path,
                partial: false,
                changed: stamped.is_err(),
                last_used: Some(SystemTime::now()),
            };
            Ok((entry, stamped))
        })
        .await
        .map_err(|e| IsoError::Task(e.to_string()))?
        .map(|(entry, stamped)| {
            warn_unstamped(stamped, "", reporter);
            entry
        })
    }

    /// Every entry and partial download, sorted by path.
    pub fn list(&self) -> Result<Vec<CacheEntry>, IsoError> {
        let mut out = Vec::new();
        for algo in HashAlgo::ALL {
            let dir = self.root.join(algo.name());
            for (path, meta) in read_dir_files(&dir)? {
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if name.starts_with('.') || name.ends_with(".stamp") {
                    continue;
                }
                let partial = name.ends_with(".part");
                let hex = name.split('.').next().unwrap_or("");
                let digest = Digest::from_hex(algo, hex).ok();
                if digest.is_none() {
                    continue;
                }
                let stamp = stamp_path(&path);
                let last_used = fs::metadata(&stamp)
                    .and_then(|m| m.modified())
                    .or_else(|_| meta.modified())
                    .ok();
                // The same rule as a lookup: only an exact stamp is trusted.
                let changed = !partial
                    && digest.as_ref().is_some_and(|d| {
                        read_stamp(&stamp).as_deref() != Some(stamp_text(d, &meta).as_str())
                    });
                out.push(CacheEntry {
                    digest,
                    size: meta.len(),
                    path,
                    partial,
                    changed,
                    last_used,
                });
            }
        }
        for (path, meta) in read_dir_files(&self.root.join("url"))? {
            out.push(CacheEntry {
                digest: None,
                size: meta.len(),
                last_used: meta.modified().ok(),
                path,
                partial: true,
                changed: false,
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Re-hashes every entry; corrupt ones are moved to `quarantine/` (kept
    /// for inspection, never handed out) and reported; good ones get a
    /// fresh stamp.
    pub async fn verify(&self, reporter: &dyn Reporter) -> Result<VerifyReport, IsoError> {
        let mut report = VerifyReport::default();
        for entry in self.list()? {
            let (false, Some(digest)) = (entry.partial, entry.digest) else {
                continue;
            };
            let path = entry.path.clone();
            let progress = reporter.progress(
                "",
                &format!("verifying {}", path.display()),
                Some(entry.size),
            );
            let actual = hash_file_async(path.clone(), digest.algo(), progress).await?;
            if actual == digest {
                warn_unstamped(write_stamp(&path, &digest), "", reporter);
                report.good.push(path);
                continue;
            }
            let qdir = self.root.join("quarantine");
            mkdir(&qdir)?;
            let name = path.file_name().map(PathBuf::from).unwrap_or_default();
            let dest = qdir.join(name);
            fs::rename(&path, &dest).map_err(|e| IsoError::io(&path, "cannot quarantine", e))?;
            let _ = fs::remove_file(stamp_path(&path));
            reporter.warn(
                "",
                &format!(
                    "{}: corrupt (expected {digest}, got {actual}); moved to {}",
                    path.display(),
                    dest.display()
                ),
            );
            report.quarantined.push((path, dest));
        }
        Ok(report)
    }

    /// Removes stale entries and partial downloads. A partial download that
    /// another process is writing (its lock is held) is left alone.
    pub fn prune(
        &self,
        opts: &PruneOptions,
        reporter: &dyn Reporter,
    ) -> Result<Vec<PathBuf>, IsoError> {
        let now = SystemTime::now();
        let stale = |t: Option<SystemTime>| match (opts.older_than, t) {
            (Some(age), Some(t)) => now.duration_since(t).is_ok_and(|d| d >= age),
            _ => false,
        };
        let mut removed = Vec::new();
        for entry in self.list()? {
            let remove = stale(entry.last_used) || (entry.partial && opts.parts);
            if !remove {
                continue;
            }
            let key = match &entry.digest {
                Some(d) => lock_key(d),
                None => format!(
                    "url-{}",
                    entry
                        .path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.split('.').next())
                        .unwrap_or("")
                ),
            };
            let Some(_lock) = try_lock(&self.lock_path(&key))? else {
                reporter.info(
                    "",
                    &format!("{}: in use by another kiln, kept", entry.path.display()),
                );
                continue;
            };
            remove_entry(&entry.path)?;
            removed.push(entry.path);
        }
        if opts.quarantine {
            for (path, _) in read_dir_files(&self.root.join("quarantine"))? {
                remove_entry(&path)?;
                removed.push(path);
            }
        }
        Ok(removed)
    }
}

/// Returns `path` if it holds data matching `digest`: trusted through its
/// stamp when unchanged since verification, else re-hashed (and re-stamped).
/// A file that fails is removed with a warning and reported as missing.
pub(crate) async fn lookup_verified(
    path: PathBuf,
    digest: &Digest,
    build: &str,
    reporter: &dyn Reporter,
) -> Result<Option<PathBuf>, IsoError> {
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(IsoError::io(&path, "cannot read cache entry", e)),
    };
    let stamp = stamp_path(&path);
    if read_stamp(&stamp).as_deref() == Some(stamp_text(digest, &meta).as_str()) {
        touch(&stamp);
        return Ok(Some(path));
    }
    reporter.info(
        build,
        &format!(
            "{}: not verified since it last changed, re-hashing",
            path.display()
        ),
    );
    let progress = reporter.progress(
        build,
        &format!("verifying {}", path.display()),
        Some(meta.len()),
    );
    let actual = hash_file_async(path.clone(), digest.algo(), progress).await?;
    if actual == *digest {
        warn_unstamped(write_stamp(&path, digest), build, reporter);
        return Ok(Some(path));
    }
    reporter.warn(
        build,
        &format!(
            "{}: cached ISO is corrupt (expected {digest}, got {actual}); removing it",
            path.display()
        ),
    );
    remove_entry(&path)?;
    Ok(None)
}

/// Makes a verified file the entry `dest`: read-only, renamed atomically
/// (so `dest` never holds unverified data), directory synced. The caller
/// stamps it ([`write_stamp`], [`warn_unstamped`]).
pub(crate) fn commit_to(file: &Path, dest: &Path) -> Result<(), IsoError> {
    fs::set_permissions(file, fs::Permissions::from_mode(0o444))
        .map_err(|e| IsoError::io(file, "cannot make read-only", e))?;
    fs::rename(file, dest).map_err(|e| IsoError::io(dest, "cannot move into place", e))?;
    if let Some(dir) = dest.parent() {
        // Makes the rename durable; failure only weakens crash safety.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// A stamp that cannot be written costs a re-hash on the next use, not
/// the ISO: the file is good, so a failed stamp is only a warning (making
/// it an error failed every later fetch of a good ISO).
pub(crate) fn warn_unstamped(stamped: Result<(), IsoError>, build: &str, reporter: &dyn Reporter) {
    if let Err(e) = stamped {
        reporter.warn(
            build,
            &format!(
                "{}; the ISO is verified and used, but will be re-hashed on its next use",
                crate::error_chain::error_chain(&e, ": ")
            ),
        );
    }
}

/// The lock name for a digest.
pub(crate) fn lock_key(digest: &Digest) -> String {
    format!("{}-{}", digest.algo(), digest.hex())
}

pub(crate) fn sha256_hex(text: &str) -> String {
    let mut h = HashAlgo::Sha256.hasher();
    h.update(text.as_bytes());
    h.finalize().hex().to_owned()
}

pub(crate) fn mkdir(dir: &Path) -> Result<(), IsoError> {
    fs::create_dir_all(dir).map_err(|e| IsoError::io(dir, "cannot create directory", e))
}

fn read_dir_files(dir: &Path) -> Result<Vec<(PathBuf, fs::Metadata)>, IsoError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(IsoError::io(dir, "cannot list", e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| IsoError::io(dir, "cannot list", e))?;
        if let Ok(meta) = ent.metadata()
            && meta.is_file()
        {
            out.push((ent.path(), meta));
        }
    }
    Ok(out)
}

/// Removes a cache file and its stamp.
pub(crate) fn remove_entry(path: &Path) -> Result<(), IsoError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(IsoError::io(path, "cannot remove", e)),
    }
    let _ = fs::remove_file(stamp_path(path));
    Ok(())
}

/// Takes the exclusive lock at `path`, waiting for it. Blocking.
pub(crate) fn lock_blocking(path: &Path) -> Result<File, IsoError> {
    let file = open_lock_file(path)?;
    file.lock()
        .map_err(|e| IsoError::io(path, "cannot lock", e))?;
    Ok(file)
}

/// Takes the lock at `path` if it is free.
pub(crate) fn try_lock(path: &Path) -> Result<Option<File>, IsoError> {
    let file = open_lock_file(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(IsoError::io(path, "cannot lock", e)),
    }
}

fn open_lock_file(path: &Path) -> Result<File, IsoError> {
    if let Some(dir) = path.parent() {
        mkdir(dir)?;
    }
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| IsoError::io(path, "cannot open lock file", e))
}

pub(crate) fn stamp_path(entry: &Path) -> PathBuf {
    let mut s = entry.as_os_str().to_owned();
    s.push(".stamp");
    PathBuf::from(s)
}

/// What a stamp says: the digest and the identity of the file it was
/// verified on. ctime is the key field: every write or chmod updates it and
/// no user call can set it back.
fn stamp_text(digest: &Digest, meta: &fs::Metadata) -> String {
    format!(
        "kiln-stamp 1\nboot {}\ndigest {digest}\nsize {}\nmtime {}.{:09}\nctime {}.{:09}\ninode {}\ndevice {}\n",
        boot_id(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
        meta.ino(),
        meta.dev(),
    )
}

/// The kernel's id for this boot. Data kiln wrote without fsync can only
/// be lost by a crash, and a crash means a new boot: a stamp from an
/// earlier boot is not trusted, so the first use after a reboot re-hashes.
fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn read_stamp(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// Records that `entry` was just verified against `digest`.
pub(crate) fn write_stamp(entry: &Path, digest: &Digest) -> Result<(), IsoError> {
    let meta = fs::metadata(entry).map_err(|e| IsoError::io(entry, "cannot stat", e))?;
    let stamp = stamp_path(entry);
    let mut tmp = stamp.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, stamp_text(digest, &meta))
        .and_then(|()| fs::rename(&tmp, &stamp))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            IsoError::io(&stamp, "cannot write stamp", e)
        })
}

/// Marks a stamp as just used (for `prune --older-than`); best effort.
fn touch(stamp: &Path) {
    if let Ok(f) = File::options().append(true).open(stamp) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// Hashes a file in one pass on the calling thread, reporting progress.
pub(crate) fn hash_file(
    path: &Path,
    algo: HashAlgo,
    progress: &dyn Progress,
) -> Result<(Digest, u64), IsoError> {
    let mut file = File::open(path).map_err(|e| IsoError::io(path, "cannot open", e))?;
    let mut hasher = algo.hasher();
    let mut buf = vec![0u8; BUF_SIZE];
    let mut done = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(IsoError::io(path, "cannot read", e)),
        };
        hasher.update(&buf[..n]);
        done += n as u64;
        progress.set_position(done);
    }
    Ok((hasher.finalize(), done))
}

/// [`hash_file`] on a blocking thread; finishes `progress`.
pub(crate) async fn hash_file_async(
    path: PathBuf,
    algo: HashAlgo,
    progress: Box<dyn Progress>,
) -> Result<Digest, IsoError> {
    tokio::task::spawn_blocking(move || {
        let result = hash_file(&path, algo, &*progress);
        progress.finish(if result.is_ok() { "hashed" } else { "failed" });
        result.map(|(d, _)| d)
    })
    .await
    .map_err(|e| IsoError::Task(e.to_string()))?
}

/// Copies `src` to a new file `dest`, hashing in the same pass.
fn copy_hashing(
    src: &Path,
    dest: &Path,
    algo: HashAlgo,
    on_progress: &dyn Fn(u64),
) -> Result<Digest, IsoError> {
    let mut input = File::open(src).map_err(|e| IsoError::io(src, "cannot open", e))?;
    let mut output = File::create(dest).map_err(|e| IsoError::io(dest, "cannot create", e))?;
    let mut hasher = algo.hasher();
    let mut buf = vec![0u8; BUF_SIZE];
    let mut done = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(IsoError::io(src, "cannot read", e)),
        };
        hasher.update(&buf[..n]);
        output
            .write_all(&buf[..n])
            .map_err(|e| IsoError::io(dest, "cannot write", e))?;
        done += n as u64;
        on_progress(done);
    }
    Ok(hasher.finalize())
}

/// Deletes a temporary file unless disarmed.
pub(crate) struct RemoveOnDrop(pub(crate) Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Parses an age such as `30d`, `12h`, `90m`, `45s` or `2w`.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not an age such as 30d, 12h, 90m"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("`{text}`: unit must be s, m, h, d or w")),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse() {
        assert_eq!(parse_age("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_age("5s"), Ok(Duration::from_secs(5)));
        assert!(parse_age("5").is_err());
        assert!(parse_age("d").is_err());
        assert!(parse_age("5y").is_err());
    }
}
