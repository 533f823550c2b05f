//! Uploads and downloads, over SCP or SFTP as the template chose, with
//! Packer's rule for directories: a source ending in `/` copies what is in
//! it, without the slash the directory itself is copied. The local side
//! lives here too (walking a directory, reading a source in chunks), since
//! both protocols share it.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncRead, AsyncReadExt};

use super::{SshError, SshSession};

/// How files move (`ssh_file_transfer_method`): SCP, Packer's default,
/// which minimal guests (dropbear) also speak, or SFTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileTransfer {
    Scp,
    Sftp,
}

/// Whether a directory source means "its contents" (`dir/`).
fn copies_contents(path: &[u8]) -> bool {
    path.ends_with(b"/")
}

impl SshSession {
    /// Writes `size` bytes from `source` to the file `remote_path` with
    /// permission bits `mode`. The guest's umask applies to new files
    /// under SCP, as with scp itself.
    pub async fn upload(
        &self,
        source: &mut (impl AsyncRead + Unpin + Send),
        size: u64,
        remote_path: &str,
        mode: u32,
    ) -> Result<(), SshError> {
        let label = format!("Uploading {remote_path}");
        let progress = self.reporter.progress(&self.build, &label, Some(size));
        let local = Path::new("<upload source>");
        let result = match self.file_transfer {
            FileTransfer::Scp => {
                self.scp_upload(source, size, remote_path, mode, local, Some(&*progress))
                    .await
            }
            FileTransfer::Sftp => {
                let sftp = self.sftp().await?;
                let result = self
                    .sftp_upload(
                        &sftp,
                        source,
                        size,
                        remote_path,
                        mode,
                        local,
                        Some(&*progress),
                    )
                    .await;
                let _ = sftp.close().await;
                result
            }
        };
        progress.finish(if result.is_ok() { "uploaded" } else { "failed" });
        result
    }

    /// Uploads the local file `local_path` with its permission bits. A
    /// `remote_path` ending in `/` is a directory: the file keeps its name.
    pub async fn upload_file(&self, local_path: &Path, remote_path: &str) -> Result<(), SshError> {
        let mut file = tokio::fs::File::open(local_path)
            .await
            .map_err(|e| local_error("open", local_path, e))?;
        let meta = file
            .metadata()
            .await
            .map_err(|e| local_error("read", local_path, e))?;
        let remote = if remote_path.ends_with('/') {
            format!("{remote_path}{}", file_name(local_path)?)
        } else {
            remote_path.to_owned()
        };
        let mode = meta.permissions().mode() & 0o7777;
        self.upload(&mut file, meta.len(), &remote, mode).await
    }

    /// Uploads a local directory. `dir/` puts its contents into
    /// `remote_dir`; `dir` puts the directory itself there, as
    /// `remote_dir/dir`. `remote_dir` is created when missing.
    pub async fn upload_dir(&self, local_dir: &Path, remote_dir: &str) -> Result<(), SshError> {
        let meta = std::fs::metadata(local_dir).map_err(|e| local_error("read", local_dir, e))?;
        if !meta.is_dir() {
            return Err(local_error(
                "upload as a directory",
                local_dir,
                std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        let mut entries = Vec::new();
        if copies_contents(local_dir.as_os_str().as_bytes()) {
            walk(local_dir, &mut entries)?;
        } else {
            entries.push(Entry::Enter {
                name: file_name(local_dir)?,
                mode: meta.permissions().mode() & 0o7777,
            });
            walk(local_dir, &mut entries)?;
            entries.push(Entry::Leave);
        }
        match self.file_transfer {
            FileTransfer::Scp => self.scp_upload_tree(&entries, remote_dir).await,
            FileTransfer::Sftp => self.sftp_upload_tree(&entries, remote_dir).await,
        }
    }

    /// Copies the remote file `remote_path` to `local_path`. The data goes
    /// to a temporary file beside it, renamed into place once complete, so
    /// a missing remote file or a broken transfer leaves an existing local
    /// file as it was.
    pub async fn download(&self, remote_path: &str, local_path: &Path) -> Result<(), SshError> {
        let dir = match local_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let partial = tempfile::Builder::new()
            .prefix(".kiln-download-")
            .tempfile_in(dir)
            .map_err(|e| local_error("create", local_path, e))?;
        let mut file = tokio::fs::File::from_std(
            partial
                .reopen()
                .map_err(|e| local_error("create", local_path, e))?,
        );
        let result = match self.file_transfer {
            FileTransfer::Scp => self.scp_download(remote_path, &mut file, local_path).await,
            FileTransfer::Sftp => {
                let sftp = self.sftp().await?;
                let result = self
                    .sftp_download(&sftp, remote_path, &mut file, local_path)
                    .await;
                let _ = sftp.close().await;
                result
            }
        };
        result?;
        drop(file);
        // tempfile makes it 0600; a downloaded file is an ordinary one.
        std::fs::set_permissions(partial.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(|e| local_error("write", local_path, e))?;
        partial
            .persist(local_path)
            .map_err(|e| local_error("write", local_path, e.error))?;
        Ok(())
    }

    /// Downloads a remote directory, with the same trailing-slash rule as
    /// [`upload_dir`](Self::upload_dir): `dir/` fills `local_dir` with its
    /// contents, `dir` creates `local_dir/dir`.
    pub async fn download_dir(&self, remote_dir: &str, local_dir: &Path) -> Result<(), SshError> {
        let target = if copies_contents(remote_dir.as_bytes()) {
            local_dir.to_path_buf()
        } else {
            let name = remote_dir.rsplit('/').next().unwrap_or(remote_dir);
            if name.is_empty() || name == "." || name == ".." {
                local_dir.to_path_buf()
            } else {
                local_dir.join(name)
            }
        };
        match self.file_transfer {
            FileTransfer::Scp => self.scp_download_tree(remote_dir, &target).await,
            FileTransfer::Sftp => self.sftp_download_tree(remote_dir, &target).await,
        }
    }
}

/// Reads the next chunk of a `size`-byte upload of which `sent` bytes are
/// done, into `buf`; a source that ends early is an error naming it.
pub(crate) async fn read_chunk(
    source: &mut (impl AsyncRead + Unpin),
    buf: &mut [u8],
    sent: u64,
    size: u64,
    local_name: &Path,
) -> Result<usize, SshError> {
    let want = usize::try_from(size - sent).map_or(buf.len(), |left| left.min(buf.len()));
    let n = source
        .read(&mut buf[..want])
        .await
        .map_err(|e| local_error("read", local_name, e))?;
    if n == 0 {
        return Err(local_error(
            "read",
            local_name,
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("it ended after {sent} of {size} bytes"),
            ),
        ));
    }
    Ok(n)
}

pub(crate) fn local_error(action: &'static str, path: &Path, source: std::io::Error) -> SshError {
    SshError::Local {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// What the upload walk sends, computed before any byte goes out so a
/// local error stops the upload before the guest sees half a tree.
#[derive(Debug)]
pub(crate) enum Entry {
    Enter {
        name: String,
        mode: u32,
    },
    File {
        path: PathBuf,
        name: String,
        mode: u32,
        size: u64,
    },
    Leave,
}

/// Lists `dir` depth first in name order (symlinks followed, as scp does).
pub(crate) fn walk(dir: &Path, out: &mut Vec<Entry>) -> Result<(), SshError> {
    let mut children: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| local_error("read directory", dir, e))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| local_error("read directory", dir, e))?;
    children.sort();
    for path in children {
        let meta = std::fs::metadata(&path).map_err(|e| local_error("read", &path, e))?;
        let name = file_name(&path)?;
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            out.push(Entry::Enter { name, mode });
            walk(&path, out)?;
            out.push(Entry::Leave);
        } else {
            out.push(Entry::File {
                path,
                name,
                mode,
                size: meta.len(),
            });
        }
    }
    Ok(())
}

pub(crate) fn file_name(path: &Path) -> Result<String, SshError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            local_error(
                "name on the guest",
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the name is not valid UTF-8 or is empty",
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slash_means_contents() {
        assert!(copies_contents(b"files/"));
        assert!(!copies_contents(b"files"));
    }
}
