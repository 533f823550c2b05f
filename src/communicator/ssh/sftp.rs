//! File transfer over the SFTP subsystem (`ssh_file_transfer_method: sftp`).

use std::path::Path;
use std::time::Duration;

use russh_sftp::client::SftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::channel::{Answer, Request};
use super::transfer::{Entry, local_error, read_chunk};
use super::{Direction, SshError, SshSession};
use crate::ui::Progress;

const CHUNK: usize = 64 * 1024;

/// How long the subsystem has to answer its first packet; a guest without
/// an sftp-server closes the channel at once, so this only bounds a hang.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

impl SshSession {
    /// Opens the SFTP subsystem, telling the user to use SCP when the guest
    /// has no SFTP server.
    pub(crate) async fn sftp(&self) -> Result<SftpSession, SshError> {
        let unavailable = |detail: String| SshError::SftpUnavailable {
            addr: self.addr.clone(),
            detail,
        };
        let started = match self
            .start_channel(Request::Subsystem("sftp"), false)
            .await?
        {
            Answer::Started(started) => started,
            Answer::Refused => {
                return Err(unavailable("the server refused the sftp subsystem".into()));
            }
        };
        if started.has_early_output() {
            return Err(unavailable(
                "the sftp subsystem sent output before it was asked anything".into(),
            ));
        }
        let channel = started.channel;
        match tokio::time::timeout(INIT_TIMEOUT, SftpSession::new(channel.into_stream())).await {
            Ok(Ok(sftp)) => Ok(sftp),
            Ok(Err(e)) => Err(unavailable(format!(
                "the sftp subsystem did not start: {e}"
            ))),
            Err(_) => Err(unavailable(format!(
                "the sftp subsystem did not answer within {}s",
                INIT_TIMEOUT.as_secs()
            ))),
        }
    }

    fn sftp_error(&self, direction: Direction, remote_path: &str, source: SftpError) -> SshError {
        SshError::Sftp {
            addr: self.addr.clone(),
            direction,
            remote_path: remote_path.to_owned(),
            source,
        }
    }

    // Mirrors scp_upload's parameters so the two transports stay swappable.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn sftp_upload(
        &self,
        sftp: &SftpSession,
        source: &mut (impl AsyncRead + Unpin),
        size: u64,
        remote_path: &str,
        mode: u32,
        local_name: &Path,
        progress: Option<&dyn Progress>,
    ) -> Result<(), SshError> {
        let err = |e| self.sftp_error(Direction::Upload, remote_path, e);
        let attrs = FileAttributes {
            permissions: Some(mode & 0o7777),
            ..FileAttributes::empty()
        };
        let mut file = sftp
            .open_with_flags_and_attributes(
                remote_path,
                OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
                attrs,
            )
            .await
            .map_err(err)?;
        let mut buf = vec![0u8; CHUNK];
        let mut sent = 0u64;
        while sent < size {
            let n = read_chunk(source, &mut buf, sent, size, local_name).await?;
            file.write_all(&buf[..n])
                .await
                .map_err(|e| err(SftpError::IO(e.to_string())))?;
            sent += n as u64;
            if let Some(p) = progress {
                p.set_position(sent);
            }
        }
        file.shutdown()
            .await
            .map_err(|e| err(SftpError::IO(e.to_string())))?;
        // Opening an existing file keeps its mode; the caller asked for `mode`.
        let attrs = FileAttributes {
            permissions: Some(mode & 0o7777),
            ..FileAttributes::empty()
        };
        sftp.set_metadata(remote_path, attrs).await.map_err(err)?;
        Ok(())
    }

    /// `mkdir -p` over SFTP.
    pub(crate) async fn sftp_create_dirs(
        &self,
        sftp: &SftpSession,
        remote_dir: &str,
    ) -> Result<(), SshError> {
        let mut prefix = String::new();
        for (i, part) in remote_dir.split('/').enumerate() {
            if i > 0 {
                prefix.push('/');
            }
            prefix.push_str(part);
            if part.is_empty() || part == "." {
                continue;
            }
            match sftp.metadata(prefix.as_str()).await {
                Ok(meta) if meta.is_dir() => continue,
                Ok(_) | Err(_) => {}
            }
            sftp.create_dir(prefix.as_str())
                .await
                .map_err(|e| self.sftp_error(Direction::Upload, &prefix, e))?;
        }
        Ok(())
    }

    pub(crate) async fn sftp_upload_tree(
        &self,
        entries: &[Entry],
        remote_dir: &str,
    ) -> Result<(), SshError> {
        let sftp = self.sftp().await?;
        self.sftp_create_dirs(&sftp, remote_dir).await?;
        let mut current = vec![remote_dir.trim_end_matches('/').to_owned()];
        for entry in entries {
            let parent = current.last().cloned().unwrap_or_default();
            match entry {
                Entry::Enter { name, mode } => {
                    let path = format!("{parent}/{name}");
                    self.sftp_create_dirs(&sftp, &path).await?;
                    let attrs = FileAttributes {
                        permissions: Some(mode & 0o7777),
                        ..FileAttributes::empty()
                    };
                    sftp.set_metadata(path.as_str(), attrs)
                        .await
                        .map_err(|e| self.sftp_error(Direction::Upload, &path, e))?;
                    current.push(path);
                }
                Entry::Leave => {
                    current.pop();
                }
                Entry::File {
                    path,
                    name,
                    mode,
                    size,
                } => {
                    let mut file = tokio::fs::File::open(path)
                        .await
                        .map_err(|e| local_error("open", path, e))?;
                    let remote = format!("{parent}/{name}");
                    self.sftp_upload(&sftp, &mut file, *size, &remote, *mode, path, None)
                        .await?;
                }
            }
        }
        let _ = sftp.close().await;
        Ok(())
    }

    pub(crate) async fn sftp_download(
        &self,
        sftp: &SftpSession,
        remote_path: &str,
        sink: &mut (impl AsyncWrite + Unpin),
        local_name: &Path,
    ) -> Result<(), SshError> {
        let mut file = sftp
            .open(remote_path)
            .await
            .map_err(|e| self.sftp_error(Direction::Download, remote_path, e))?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = file.read(&mut buf).await.map_err(|e| {
                self.sftp_error(
                    Direction::Download,
                    remote_path,
                    SftpError::IO(e.to_string()),
                )
            })?;
            if n == 0 {
                break;
            }
            sink.write_all(&buf[..n])
                .await
                .map_err(|e| local_error("write", local_name, e))?;
        }
        sink.flush()
            .await
            .map_err(|e| local_error("write", local_name, e))?;
        Ok(())
    }

    /// Copies the remote tree at `remote_dir` to `local_dir` (created).
    pub(crate) async fn sftp_download_tree(
        &self,
        remote_dir: &str,
        local_dir: &Path,
    ) -> Result<(), SshError> {
        use std::os::unix::fs::PermissionsExt;
        let sftp = self.sftp().await?;
        // Depth first with an explicit stack: (remote, local).
        let mut pending = vec![(
            remote_dir.trim_end_matches('/').to_owned(),
            local_dir.to_path_buf(),
        )];
        while let Some((remote, local)) = pending.pop() {
            tokio::fs::create_dir_all(&local)
                .await
                .map_err(|e| local_error("create directory", &local, e))?;
            let entries = sftp
                .read_dir(remote.as_str())
                .await
                .map_err(|e| self.sftp_error(Direction::Download, &remote, e))?;
            for entry in entries {
                let name = entry.file_name();
                if name == "." || name == ".." || name.contains('/') {
                    continue;
                }
                let remote_child = format!("{remote}/{name}");
                let local_child = local.join(&name);
                let meta = entry.metadata();
                if meta.is_dir() {
                    pending.push((remote_child, local_child));
                } else {
                    let mut file = tokio::fs::File::create(&local_child)
                        .await
                        .map_err(|e| local_error("create", &local_child, e))?;
                    self.sftp_download(&sftp, &remote_child, &mut file, &local_child)
                        .await?;
                    if let Some(mode) = meta.permissions {
                        let perms = std::fs::Permissions::from_mode(mode & 0o7777);
                        tokio::fs::set_permissions(&local_child, perms)
                            .await
                            .map_err(|e| local_error("set permissions of", &local_child, e))?;
                    }
                }
            }
        }
        let _ = sftp.close().await;
        Ok(())
    }
}
