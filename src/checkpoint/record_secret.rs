//! The build record's secret key. A record lists each input of a build as
//! a digest, and the inputs include secrets (sensitive variables, an
//! `ssh_password`, a provisioner's environment): a plain sha256 of a weak
//! secret can be found by trying guesses against it. So every digest a
//! record keeps is an HMAC-SHA256 under 32 random bytes kept in the cache
//! directory (`record-key`, mode 0600): without that file, a record
//! (which travels with the output directory) tests no guess.
//!
//! A build run with another cache (another `KILN_CACHE_DIR`) makes other
//! digests, so its records do not match: it rebuilds, which is safe.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{KeyInit, Mac};
use sha2::Sha256;

/// The file's name in the cache directory.
pub const SECRET_FILE: &str = "record-key";
const LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot {action} the build records' key {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the build records' key {} is not {LEN} bytes, or others can read it (mode {mode:o}); remove it (every build will run once more)",
        path.display()
    )]
    Unusable { path: PathBuf, mode: u32 },
}

/// The key; its bytes are never shown (Debug prints none).
pub struct RecordSecret([u8; LEN]);

impl std::fmt::Debug for RecordSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordSecret(..)")
    }
}

impl RecordSecret {
    /// The cache's key, made on first use. Two kilns racing to make it
    /// agree: it appears only by a hard link of a complete file, which
    /// fails if another was there first, and then that one is read.
    pub fn load_or_create(cache_root: &Path) -> Result<Self, SecretError> {
        let path = cache_root.join(SECRET_FILE);
        let io = |action, source| SecretError::Io {
            action,
            path: path.clone(),
            source,
        };
        match Self::read(&path) {
            Err(SecretError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            other => return other,
        }
        std::fs::create_dir_all(cache_root).map_err(|e| io("create the directory of", e))?;
        let mut bytes = [0u8; LEN];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(|e| io("draw random bytes for", e))?;
        let tmp = cache_root.join(format!(
            ".{SECRET_FILE}.{}.{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(&bytes)?;
                f.sync_all()
            });
        let linked = written.and_then(|()| std::fs::hard_link(&tmp, &path));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(Self(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::read(&path),
            Err(e) => Err(io("write", e)),
        }
    }

    fn read(path: &Path) -> Result<Self, SecretError> {
        let io = |action, source| SecretError::Io {
            action,
            path: path.to_path_buf(),
            source,
        };
        let mut f = std::fs::File::open(path).map_err(|e| io("read", e))?;
        let meta = f.metadata().map_err(|e| io("read", e))?;
        let mode = meta.permissions().mode() & 0o777;
        let mut bytes = [0u8; LEN];
        let mut rest = Vec::new();
        if meta.len() != LEN as u64 || mode & 0o077 != 0 {
            return Err(SecretError::Unusable {
                path: path.to_path_buf(),
                mode,
            });
        }
        f.read_exact(&mut bytes).map_err(|e| io("read", e))?;
        f.read_to_end(&mut rest).map_err(|e| io("read", e))?;
        Ok(Self(bytes))
    }

    /// HMAC-SHA256 of an input's name and digest, in hex.
    pub fn seal(&self, name: &str, digest: &str) -> String {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(&(name.len() as u64).to_le_bytes());
        mac.update(name.as_bytes());
        mac.update(digest.as_bytes());
        crate::digest::hex(&mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records sealed by one kiln are checked by the next: a seal must not
    /// change for the same key and input.
    #[test]
    fn a_seal_stays_what_it_was() {
        let secret = RecordSecret([7u8; LEN]);
        assert_eq!(
            secret.seal("variables", "ab"),
            "207c1a9020a5d7b693a82e80cb5ea2d47ab08d16be9335a92c5b54f013cd6347"
        );
    }

    #[test]
    fn the_key_is_private_kept_and_changes_every_digest() {
        let cache = tempfile::tempdir().expect("tempdir");
        let a = RecordSecret::load_or_create(cache.path()).expect("made");
        let path = cache.path().join(SECRET_FILE);
        let meta = std::fs::metadata(&path).expect("written");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 32);
        let b = RecordSecret::load_or_create(cache.path()).expect("read back");
        assert_eq!(a.seal("variables", "ab"), b.seal("variables", "ab"));
        assert_ne!(a.seal("variables", "ab"), a.seal("variables", "ac"));
        assert_ne!(a.seal("variables", "ab"), a.seal("variable", "sab"));
        assert_eq!(format!("{a:?}"), "RecordSecret(..)");

        let other = tempfile::tempdir().expect("tempdir");
        let c = RecordSecret::load_or_create(other.path()).expect("made");
        assert_ne!(a.seal("variables", "ab"), c.seal("variables", "ab"));

        // A key others can read is refused, with what to do.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = RecordSecret::load_or_create(cache.path()).expect_err("refused");
        assert!(e.to_string().contains("remove it"), "{e}");
    }

    #[test]
    fn racing_kilns_agree_on_one_key() {
        let cache = tempfile::tempdir().expect("tempdir");
        let root = cache.path().to_path_buf();
        let seals: Vec<String> = (0..8)
            .map(|_| {
                let root = root.clone();
                std::thread::spawn(move || {
                    RecordSecret::load_or_create(&root)
                        .expect("key")
                        .seal("n", "d")
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();
        assert!(seals.windows(2).all(|w| w[0] == w[1]), "{seals:?}");
        let left: Vec<_> = std::fs::read_dir(&root)
            .expect("read")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from(SECRET_FILE)]);
    }
}
