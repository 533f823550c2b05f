//! Lets provisioners use an SSH session without either knowing the other.

use std::path::Path;
use std::sync::Arc;

use crate::communicator::ssh::{ExitStatus, SshSession};
use crate::provision::remote::{LineSink, Remote, RemoteError, RemoteExit, RemoteFuture};

pub struct SshRemote(pub Arc<SshSession>);

fn remote_error(e: crate::communicator::ssh::SshError) -> RemoteError {
    RemoteError {
        message: e.to_string(),
        source: Some(Box::new(e)),
    }
}

impl Remote for SshRemote {
    fn exec<'a>(&'a self, command: &'a str, on_line: LineSink<'a>) -> RemoteFuture<'a, RemoteExit> {
        Box::pin(async move {
            let status = self
                .0
                .exec(command, |_, line| on_line(line))
                .await
                .map_err(remote_error)?;
            Ok(match status {
                ExitStatus::Code(c) => RemoteExit::Code(i32::try_from(c).unwrap_or(i32::MAX)),
                ExitStatus::Signal { .. } => RemoteExit::Signal,
                ExitStatus::Disconnected => RemoteExit::Disconnected,
            })
        })
    }

    fn upload_bytes<'a>(
        &'a self,
        data: &'a [u8],
        remote_path: &'a str,
        mode: u32,
    ) -> RemoteFuture<'a, ()> {
        Box::pin(async move {
            let mut reader = data;
            self.0
                .upload(&mut reader, data.len() as u64, remote_path, mode)
                .await
                .map_err(remote_error)
        })
    }

    fn upload_path<'a>(&'a self, local: &'a Path, remote_path: &'a str) -> RemoteFuture<'a, ()> {
        Box::pin(async move {
            if local.is_dir() {
                self.0
                    .upload_dir(local, remote_path)
                    .await
                    .map_err(remote_error)
            } else {
                self.0
                    .upload_file(local, remote_path)
                    .await
                    .map_err(remote_error)
            }
        })
    }

    fn download_path<'a>(&'a self, remote_path: &'a str, local: &'a Path) -> RemoteFuture<'a, ()> {
        Box::pin(async move {
            if remote_path.ends_with('/') {
                self.0
                    .download_dir(remote_path, local)
                    .await
                    .map_err(remote_error)
            } else {
                self.0
                    .download(remote_path, local)
                    .await
                    .map_err(remote_error)
            }
        })
    }
}
