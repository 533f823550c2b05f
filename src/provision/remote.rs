//! What provisioners need from a communicator, so they do not depend on
//! SSH itself (and the SSH module does not depend on them).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

pub type RemoteFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, RemoteError>> + Send + 'a>>;

/// How a remote command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteExit {
    Code(i32),
    /// Killed by a signal (its name is in the message of the session, if any).
    Signal,
    /// The connection dropped before an exit status arrived (a reboot, a
    /// shutdown): Packer's exit status 2300218.
    Disconnected,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl RemoteError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }
}

/// A line of output from a remote command.
pub type LineSink<'a> = &'a mut (dyn FnMut(&str) + Send);

pub trait Remote: Send + Sync {
    /// Runs `command`, passing each output line (stdout and stderr) to `on_line`.
    fn exec<'a>(&'a self, command: &'a str, on_line: LineSink<'a>) -> RemoteFuture<'a, RemoteExit>;
    /// Writes `data` to `remote_path` with `mode`.
    fn upload_bytes<'a>(
        &'a self,
        data: &'a [u8],
        remote_path: &'a str,
        mode: u32,
    ) -> RemoteFuture<'a, ()>;
    /// Uploads a file or a directory (Packer's trailing-slash rule for directories).
    fn upload_path<'a>(&'a self, local: &'a Path, remote_path: &'a str) -> RemoteFuture<'a, ()>;
    /// Downloads a file or a directory.
    fn download_path<'a>(&'a self, remote_path: &'a str, local: &'a Path) -> RemoteFuture<'a, ()>;
}
