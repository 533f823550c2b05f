//! The SSH communicator: wait until the guest's SSH server lets us in,
//! run commands with their output streamed line by line, and move files
//! over SCP (Packer's default, works with dropbear) or SFTP.
//!
//! Built on russh; host keys are accepted without checking because the
//! guest is a VM this build just installed (the fingerprint is reported).

mod agent;
mod channel;
mod connect;
mod error;
mod exec;
mod keygen;
mod lines;
mod scp;
mod sftp;
mod transfer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use connect::wait_for_ssh;
pub use error::{Direction, SshError};
pub use exec::{ExitStatus, Stream};
pub use keygen::{
    KeyPairType, KeygenError, TemporaryKey, TemporaryKeyPair, generate as generate_temporary_key,
};
pub use transfer::FileTransfer;

use crate::ui::Reporter;

/// How kiln proves who it is to the guest.
#[derive(Clone)]
pub enum SshAuth {
    Password(String),
    PrivateKeyFile(PathBuf),
    /// The key is tried first, then the password.
    Both {
        private_key_file: PathBuf,
        password: String,
    },
    /// The key pair this build made (the template gave no way to log in).
    TemporaryKey(Arc<russh::keys::PrivateKey>),
    /// `ssh_agent_auth`: the keys of the agent listening on `socket`
    /// (`SSH_AUTH_SOCK`, `None` when it is not set), then the key file and
    /// the password when the template gives them too.
    Agent {
        socket: Option<PathBuf>,
        private_key_file: Option<PathBuf>,
        password: Option<String>,
    },
}

impl SshAuth {
    fn private_key_file(&self) -> Option<&PathBuf> {
        match self {
            Self::PrivateKeyFile(p)
            | Self::Both {
                private_key_file: p,
                ..
            } => Some(p),
            Self::Agent {
                private_key_file, ..
            } => private_key_file.as_ref(),
            Self::Password(_) | Self::TemporaryKey(_) => None,
        }
    }

    fn password(&self) -> Option<&str> {
        match self {
            Self::Password(p) | Self::Both { password: p, .. } => Some(p),
            Self::Agent { password, .. } => password.as_deref(),
            Self::PrivateKeyFile(_) | Self::TemporaryKey(_) => None,
        }
    }

    /// `Some(socket)` when the agent is to be used (`socket` is `None`
    /// when `SSH_AUTH_SOCK` was not set).
    fn agent_socket(&self) -> Option<Option<&std::path::Path>> {
        match self {
            Self::Agent { socket, .. } => Some(socket.as_deref()),
            _ => None,
        }
    }
}

// Passwords must never reach a log through `{:?}`.
impl std::fmt::Debug for SshAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password(<hidden>)"),
            Self::PrivateKeyFile(p) => f.debug_tuple("PrivateKeyFile").field(p).finish(),
            Self::Both {
                private_key_file, ..
            } => f
                .debug_struct("Both")
                .field("private_key_file", private_key_file)
                .field("password", &"<hidden>")
                .finish(),
            Self::TemporaryKey(key) => f
                .debug_tuple("TemporaryKey")
                .field(&key.algorithm().as_str())
                .finish(),
            Self::Agent {
                socket,
                private_key_file,
                password,
            } => f
                .debug_struct("Agent")
                .field("socket", socket)
                .field("private_key_file", private_key_file)
                .field("password", &password.as_ref().map(|_| "<hidden>"))
                .finish(),
        }
    }
}

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub auth: SshAuth,
}

impl SshTarget {
    /// `host:port`, as error messages show it.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// How long and how hard to try.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// Give up after this long (`ssh_timeout`).
    pub timeout: Duration,
    /// Failed handshakes (authentication included) before giving up
    /// (`ssh_handshake_attempts`). Refused or dropped connections are
    /// not counted: a booting guest produces those for minutes.
    pub handshake_attempts: u32,
    /// Pause between attempts; small, so the first command runs soon after
    /// the guest's SSH server answers.
    pub poll_interval: Duration,
    /// Longest a single attempt (connect, banner, key exchange,
    /// authentication) may take before it is abandoned and retried.
    pub attempt_timeout: Duration,
    /// Send a keepalive when the server has been silent this long
    /// (`ssh_keep_alive_interval`; zero disables).
    pub keep_alive_interval: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5 * 60),
            handshake_attempts: 10,
            poll_interval: Duration::from_millis(200),
            attempt_timeout: Duration::from_secs(20),
            keep_alive_interval: Duration::from_secs(5),
        }
    }
}

/// An authenticated connection to the guest.
pub struct SshSession {
    handle: russh::client::Handle<connect::HostKeyRecorder>,
    addr: String,
    username: String,
    host_key: String,
    file_transfer: FileTransfer,
    pty: bool,
    reporter: Arc<dyn Reporter>,
    build: String,
}

impl std::fmt::Debug for SshSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshSession")
            .field("addr", &self.addr)
            .field("username", &self.username)
            .field("file_transfer", &self.file_transfer)
            .field("pty", &self.pty)
            .finish_non_exhaustive()
    }
}

impl SshSession {
    /// SCP (the default, as in Packer) or SFTP for file transfers.
    pub fn set_file_transfer(&mut self, method: FileTransfer) {
        self.file_transfer = method;
    }

    /// Ask for a pseudo-terminal for each command (`ssh_pty`).
    pub fn set_pty(&mut self, pty: bool) {
        self.pty = pty;
    }

    /// `host:port` of the guest's SSH server.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The server's host key: algorithm and SHA-256 fingerprint.
    pub fn host_key(&self) -> &str {
        &self.host_key
    }

    /// Whether the connection is gone (the guest rebooted or shut down).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Say goodbye politely; errors are irrelevant at this point.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }

    /// A channel-level failure, reported as a lost connection when that is
    /// what happened underneath.
    fn channel_error(&self, action: impl Into<String>, source: russh::Error) -> SshError {
        if self.handle.is_closed() {
            SshError::ConnectionLost {
                addr: self.addr.clone(),
            }
        } else {
            SshError::Channel {
                addr: self.addr.clone(),
                action: action.into(),
                source: Box::new(source),
            }
        }
    }
}

/// Quote `s` for a POSIX shell (the remote side of exec runs one).
pub(crate) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes_and_spaces() {
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn passwords_stay_out_of_debug_output() {
        let auth = SshAuth::Both {
            private_key_file: "/k".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
        assert!(!format!("{:?}", SshAuth::Password("hunter2".into())).contains("hunter2"));
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let t = SshTarget {
            host: "::1".into(),
            port: 2222,
            username: "u".into(),
            auth: SshAuth::Password("p".into()),
        };
        assert_eq!(t.addr(), "[::1]:2222");
    }
}
