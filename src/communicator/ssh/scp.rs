//! The SCP protocol, spoken over an exec channel to the guest's `scp -t`
//! (receive) or `scp -f` (send). Packer's default transfer, and the only
//! one that works with guests that have no SFTP server (dropbear).
//!
//! Records: `C<mode> <size> <name>\n` then the bytes then a 0 byte,
//! `D<mode> 0 <name>\n` to enter a directory, `E\n` to leave it,
//! `T...` times (ignored). Each record is answered by one byte: 0 for ok,
//! 1 or 2 followed by a message line for a warning or an error.

use std::path::{Path, PathBuf};

use russh::ChannelMsg;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::channel::{Answer, Request, Started};
use super::exec::{ExitStatus, signal_name};
use super::transfer::{Entry, local_error, read_chunk};
use super::{Direction, SshError, SshSession, shell_quote};
use crate::ui::Progress;

const CHUNK: usize = 32 * 1024;

/// How long a failed exchange waits for remote scp to exit before closing
/// the channel under it. Remote scp exits as soon as its input ends, so this
/// only bounds a guest that stopped responding.
const ABANDON_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A parsed `C` or `D` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub mode: u32,
    pub size: u64,
    pub name: String,
}

/// Parses the text after the `C` or `D`: `0644 1234 name`. The name must
/// be a single path component, so a hostile guest cannot write outside
/// the download directory.
pub(crate) fn parse_record(text: &str) -> Result<Record, String> {
    let mut parts = text.splitn(3, ' ');
    let (Some(mode), Some(size), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("malformed record `{text}`"));
    };
    let mode = u32::from_str_radix(mode, 8).map_err(|_| format!("bad mode in `{text}`"))?;
    let size = size
        .parse::<u64>()
        .map_err(|_| format!("bad size in `{text}`"))?;
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(format!("refusing unsafe file name `{name}`"));
    }
    Ok(Record {
        mode,
        size,
        name: name.to_owned(),
    })
}

pub(crate) fn file_record(mode: u32, size: u64, name: &str) -> String {
    format!("C{:04o} {size} {name}\n", mode & 0o7777)
}

pub(crate) fn dir_record(mode: u32, name: &str) -> String {
    format!("D{:04o} 0 {name}\n", mode & 0o7777)
}

/// One exec channel running remote scp, read as a byte stream with the
/// remote stderr kept for error messages.
pub(crate) struct ScpChannel<'a> {
    session: &'a SshSession,
    started: Started,
    remote_path: String,
    direction: Direction,
    buffered: Vec<u8>,
    read_pos: usize,
    stderr: Vec<u8>,
    exit: Option<ExitStatus>,
    eof: bool,
    closed: bool,
}

impl<'a> ScpChannel<'a> {
    pub(crate) async fn start(
        session: &'a SshSession,
        command: &str,
        remote_path: &str,
        direction: Direction,
    ) -> Result<Self, SshError> {
        let started = match session.start_channel(Request::Exec(command), false).await? {
            Answer::Started(started) => started,
            Answer::Refused => {
                return Err(SshError::ExecRefused {
                    addr: session.addr.clone(),
                    command: command.to_owned(),
                });
            }
        };
        Ok(Self {
            session,
            started,
            remote_path: remote_path.to_owned(),
            direction,
            buffered: Vec::new(),
            read_pos: 0,
            stderr: Vec::new(),
            exit: None,
            eof: false,
            closed: false,
        })
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> SshError {
        SshError::Scp {
            addr: self.session.addr.clone(),
            direction: self.direction,
            remote_path: self.remote_path.clone(),
            message: message.into(),
        }
    }

    /// Waits for more stdout; false when the remote side sent EOF.
    async fn fill(&mut self) -> bool {
        while !self.eof {
            if self.next_message().await && self.read_pos < self.buffered.len() {
                return true;
            }
        }
        false
    }

    /// Handles one channel message; true when it was stdout data.
    async fn next_message(&mut self) -> bool {
        match self.started.next().await {
            Some(ChannelMsg::Data { data }) => {
                if self.read_pos == self.buffered.len() {
                    self.buffered.clear();
                    self.read_pos = 0;
                }
                self.buffered.extend_from_slice(&data);
                return true;
            }
            Some(ChannelMsg::ExtendedData { data, .. }) => self.stderr.extend_from_slice(&data),
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                self.exit = Some(ExitStatus::Code(exit_status));
            }
            Some(ChannelMsg::ExitSignal { signal_name: s, .. }) => {
                self.exit = Some(ExitStatus::Signal {
                    name: signal_name(&s),
                    core_dumped: false,
                    message: String::new(),
                });
            }
            Some(ChannelMsg::Eof) => self.eof = true,
            Some(ChannelMsg::Close) | None => {
                self.eof = true;
                self.closed = true;
            }
            Some(_) => {}
        }

        false
    }

    /// The error to report when remote scp stopped talking: its exit
    /// status and the last lines it printed that were not `-v` chatter.
    fn ended_early(&self) -> SshError {
        if self.session.is_closed() {
            return SshError::ConnectionLost {
                addr: self.session.addr.clone(),
            };
        }
        let stderr = String::from_utf8_lossy(&self.stderr);
        let said: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter(|l| !is_verbose_chatter(l))
            .collect();
        let tail = said[said.len().saturating_sub(3)..].join(" / ");
        let status = match &self.exit {
            Some(ExitStatus::Code(127)) => {
                "remote scp was not found (exit status 127); install an scp program in the guest \
                 or set \"ssh_file_transfer_method\": \"sftp\""
                    .to_owned()
            }
            Some(status) => format!("remote scp ended ({status})"),
            None => "remote scp stopped answering".to_owned(),
        };
        if tail.is_empty() {
            self.error(status)
        } else {
            self.error(format!("{status}: {tail}"))
        }
    }

    pub(crate) async fn read_byte(&mut self) -> Result<u8, SshError> {
        if self.read_pos == self.buffered.len() && !self.fill().await {
            return Err(self.ended_early());
        }
        let b = self.buffered.get(self.read_pos).copied();
        self.read_pos += 1;
        b.ok_or_else(|| self.ended_early())
    }

    pub(crate) async fn read_line(&mut self) -> Result<String, SshError> {
        let mut line = Vec::new();
        loop {
            match self.read_byte().await? {
                b'\n' => return Ok(String::from_utf8_lossy(&line).into_owned()),
                b => line.push(b),
            }
            if line.len() > 64 * 1024 {
                return Err(self.error("a protocol line longer than 64 KiB"));
            }
        }
    }

    /// Reads the one-byte answer to what we sent.
    pub(crate) async fn read_ack(&mut self) -> Result<(), SshError> {
        match self.read_byte().await? {
            0 => Ok(()),
            1 | 2 => {
                let message = self.read_line().await?;
                Err(self.error(message.trim_start_matches("scp: ").to_owned()))
            }
            other => Err(self.error(format!("unexpected answer byte {other:#04x}"))),
        }
    }

    pub(crate) async fn send(&self, bytes: &[u8]) -> Result<(), SshError> {
        self.started
            .channel
            .data_bytes(bytes.to_vec())
            .await
            .map_err(|e| self.session.channel_error("send to remote scp", e))
    }

    /// Sends exactly `size` bytes from `source`.
    pub(crate) async fn send_contents(
        &self,
        source: &mut (impl AsyncRead + Unpin),
        size: u64,
        local_name: &Path,
        progress: Option<&dyn Progress>,
    ) -> Result<(), SshError> {
        let mut buf = vec![0u8; CHUNK];
        let mut sent = 0u64;
        while sent < size {
            let n = read_chunk(source, &mut buf, sent, size, local_name).await?;
            self.send(&buf[..n]).await?;
            sent += n as u64;
            if let Some(p) = progress {
                p.set_position(sent);
            }
        }
        Ok(())
    }

    /// Receives exactly `size` bytes into `sink`.
    pub(crate) async fn receive_contents(
        &mut self,
        sink: &mut (impl AsyncWrite + Unpin),
        size: u64,
        local_name: &Path,
        progress: Option<&dyn Progress>,
    ) -> Result<(), SshError> {
        let mut left = size;
        while left > 0 {
            if self.read_pos == self.buffered.len() && !self.fill().await {
                return Err(self.ended_early());
            }
            let available = &self.buffered[self.read_pos..];
            let take = usize::try_from(left).map_or(available.len(), |l| l.min(available.len()));
            sink.write_all(&available[..take])
                .await
                .map_err(|e| local_error("write", local_name, e))?;
            self.read_pos += take;
            left -= take as u64;
            if let Some(p) = progress {
                p.set_position(size - left);
            }
        }
        Ok(())
    }

    /// Ends the exchange: on success wait for remote scp's verdict, on
    /// failure close the channel so it does not linger on the server.
    pub(crate) async fn conclude(self, result: Result<(), SshError>) -> Result<(), SshError> {
        match result {
            Ok(()) => self.finish().await,
            Err(e) => {
                self.abandon().await;
                Err(e)
            }
        }
    }

    /// Ends our input and waits for remote scp to exit before returning,
    /// so its exit cannot race the next channel (see `channel.rs`: dropbear
    /// closes a new channel when an old process's exit lands while it
    /// opens). Closes the channel itself only if scp outlives ABANDON_WAIT.
    async fn abandon(mut self) {
        if self.closed {
            return;
        }
        let _ = self.started.channel.eof().await;
        let drained = tokio::time::timeout(ABANDON_WAIT, async {
            while !self.closed {
                self.next_message().await;
            }
        })
        .await;
        if drained.is_err() {
            let _ = self.started.channel.close().await;
        }
    }

    /// Closes our side and waits for remote scp to exit; a non-zero
    /// status is an error even when every record was acknowledged.
    pub(crate) async fn finish(mut self) -> Result<(), SshError> {
        self.started
            .channel
            .eof()
            .await
            .map_err(|e| self.session.channel_error("close remote scp's input", e))?;
        // Read to the channel's close: the exit status may follow EOF.
        while !self.closed {
            self.next_message().await;
        }
        match self.exit {
            Some(ExitStatus::Code(0)) | None => Ok(()),
            Some(_) => Err(self.ended_early()),
        }
    }
}

fn is_verbose_chatter(line: &str) -> bool {
    [
        "Sink:",
        "Sending file modes:",
        "Entering directory:",
        "Executing:",
        "debug",
    ]
    .iter()
    .any(|p| line.starts_with(p))
}

/// Splits `/a/b/c` into (`/a/b`, `c`); a bare name lands in the login
/// directory, as scp itself does.
pub(crate) fn split_remote(path: &str) -> (String, String) {
    match path.rsplit_once('/') {
        Some(("", name)) => ("/".to_owned(), name.to_owned()),
        Some((dir, name)) => (dir.to_owned(), name.to_owned()),
        None => (".".to_owned(), path.to_owned()),
    }
}

impl SshSession {
    pub(crate) async fn scp_upload(
        &self,
        source: &mut (impl AsyncRead + Unpin),
        size: u64,
        remote_path: &str,
        mode: u32,
        local_name: &Path,
        progress: Option<&dyn Progress>,
    ) -> Result<(), SshError> {
        let (dir, name) = split_remote(remote_path);
        // -d: the target must be a directory; without it a missing directory
        // silently becomes the file name.
        let command = format!("scp -vdt {}", shell_quote(&dir));
        let mut scp = ScpChannel::start(self, &command, remote_path, Direction::Upload).await?;
        let result = async {
            scp.read_ack().await?;
            scp.send(file_record(mode, size, &name).as_bytes()).await?;
            scp.read_ack().await?;
            scp.send_contents(source, size, local_name, progress)
                .await?;
            scp.send(&[0]).await?;
            scp.read_ack().await?;
            Ok::<(), SshError>(())
        }
        .await;
        scp.conclude(result).await
    }

    /// Uploads `entries` into `remote_dir`, creating it first.
    pub(crate) async fn scp_upload_tree(
        &self,
        entries: &[Entry],
        remote_dir: &str,
    ) -> Result<(), SshError> {
        let quoted = shell_quote(remote_dir);
        let command = format!("mkdir -p {quoted} && scp -rvt {quoted}");
        let mut scp = ScpChannel::start(self, &command, remote_dir, Direction::Upload).await?;
        let result = async {
            scp.read_ack().await?;
            for entry in entries {
                match entry {
                    Entry::Enter { name, mode } => {
                        scp.send(dir_record(*mode, name).as_bytes()).await?;
                        scp.read_ack().await?;
                    }
                    Entry::Leave => {
                        scp.send(b"E\n").await?;
                        scp.read_ack().await?;
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
                        scp.send(file_record(*mode, *size, name).as_bytes()).await?;
                        scp.read_ack().await?;
                        scp.send_contents(&mut file, *size, path, None).await?;
                        scp.send(&[0]).await?;
                        scp.read_ack().await?;
                    }
                }
            }
            Ok::<(), SshError>(())
        }
        .await;
        scp.conclude(result).await
    }

    pub(crate) async fn scp_download(
        &self,
        remote_path: &str,
        sink: &mut (impl AsyncWrite + Unpin),
        local_name: &Path,
    ) -> Result<(), SshError> {
        let command = format!("scp -vf {}", shell_quote(remote_path));
        let mut scp = ScpChannel::start(self, &command, remote_path, Direction::Download).await?;
        let result = async {
            scp.send(&[0]).await?;
            loop {
                match scp.read_byte().await? {
                    b'C' => {
                        let line = scp.read_line().await?;
                        let record = parse_record(&line).map_err(|m| scp.error(m))?;
                        scp.send(&[0]).await?;
                        scp.receive_contents(sink, record.size, local_name, None)
                            .await?;
                        scp.read_ack().await?;
                        scp.send(&[0]).await?;
                        break;
                    }
                    b'T' => {
                        scp.read_line().await?;
                        scp.send(&[0]).await?;
                    }
                    b'D' => {
                        return Err(scp.error(
                            "it is a directory; end the file provisioner's source with `/` to download a directory",
                        ));
                    }
                    1 | 2 => {
                        let message = scp.read_line().await?;
                        return Err(scp.error(message.trim_start_matches("scp: ").to_owned()));
                    }
                    other => return Err(scp.error(format!("unexpected record byte {other:#04x}"))),
                }
            }
            sink.flush()
                .await
                .map_err(|e| local_error("write", local_name, e))?;
            Ok::<(), SshError>(())
        }
        .await;
        scp.conclude(result).await
    }

    /// Downloads the tree at `remote_dir`; its top directory lands at
    /// `local_top` (created), everything below keeps its remote names.
    pub(crate) async fn scp_download_tree(
        &self,
        remote_dir: &str,
        local_top: &Path,
    ) -> Result<(), SshError> {
        use std::os::unix::fs::PermissionsExt;
        let command = format!("scp -rvf {}", shell_quote(remote_dir));
        let mut scp = ScpChannel::start(self, &command, remote_dir, Direction::Download).await?;
        let result = async {
            scp.send(&[0]).await?;
            // The stack of local directories; empty until the top `D` record.
            let mut stack: Vec<PathBuf> = Vec::new();
            loop {
                let kind = scp.read_byte().await?;
                match kind {
                    b'D' => {
                        let line = scp.read_line().await?;
                        let record = parse_record(&line).map_err(|m| scp.error(m))?;
                        let dir = match stack.last() {
                            Some(parent) => parent.join(&record.name),
                            None => local_top.to_path_buf(),
                        };
                        tokio::fs::create_dir_all(&dir)
                            .await
                            .map_err(|e| local_error("create directory", &dir, e))?;
                        let perms = std::fs::Permissions::from_mode(record.mode | 0o700);
                        tokio::fs::set_permissions(&dir, perms)
                            .await
                            .map_err(|e| local_error("set permissions of", &dir, e))?;
                        stack.push(dir);
                        scp.send(&[0]).await?;
                    }
                    b'E' => {
                        scp.read_line().await?;
                        scp.send(&[0]).await?;
                        stack.pop();
                        if stack.is_empty() {
                            break;
                        }
                    }
                    b'C' => {
                        let line = scp.read_line().await?;
                        let record = parse_record(&line).map_err(|m| scp.error(m))?;
                        let Some(parent) = stack.last() else {
                            return Err(scp.error("it is a file, not a directory"));
                        };
                        let path = parent.join(&record.name);
                        let mut file = tokio::fs::File::create(&path)
                            .await
                            .map_err(|e| local_error("create", &path, e))?;
                        scp.send(&[0]).await?;
                        scp.receive_contents(&mut file, record.size, &path, None)
                            .await?;
                        file.flush()
                            .await
                            .map_err(|e| local_error("write", &path, e))?;
                        let perms = std::fs::Permissions::from_mode(record.mode);
                        tokio::fs::set_permissions(&path, perms)
                            .await
                            .map_err(|e| local_error("set permissions of", &path, e))?;
                        scp.read_ack().await?;
                        scp.send(&[0]).await?;
                    }
                    b'T' => {
                        scp.read_line().await?;
                        scp.send(&[0]).await?;
                    }
                    1 | 2 => {
                        let message = scp.read_line().await?;
                        return Err(scp.error(message.trim_start_matches("scp: ").to_owned()));
                    }
                    other => return Err(scp.error(format!("unexpected record byte {other:#04x}"))),
                }
            }
            Ok::<(), SshError>(())
        }
        .await;
        scp.conclude(result).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        assert_eq!(file_record(0o100644, 12, "a b"), "C0644 12 a b\n");
        assert_eq!(dir_record(0o40755, "d"), "D0755 0 d\n");
        assert_eq!(
            parse_record("0644 12 a b"),
            Ok(Record {
                mode: 0o644,
                size: 12,
                name: "a b".into()
            })
        );
    }

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "0644 1 ..",
            "0644 1 a/b",
            "0644 1 .",
            "0644 1 ",
            "0644 x a",
            "zz 1 a",
        ] {
            assert!(parse_record(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn remote_paths_split_into_directory_and_name() {
        assert_eq!(split_remote("/tmp/x"), ("/tmp".into(), "x".into()));
        assert_eq!(split_remote("/x"), ("/".into(), "x".into()));
        assert_eq!(split_remote("x"), (".".into(), "x".into()));
    }
}
