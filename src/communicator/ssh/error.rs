//! Every way talking to the guest over SSH can fail, with the context a
//! user needs to act: the address, the user, the remote path.

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

/// One variant per failure class, so callers (the wait step, provisioners)
/// can decide what is fatal and the CLI can pick hints and exit codes.
#[derive(Debug, Error)]
pub enum SshError {
    #[error("no SSH credentials for user `{user}`: set ssh_password or ssh_private_key_file")]
    NoCredentials { user: String },

    #[error("ssh_agent_auth: {why}")]
    Agent {
        why: String,
        #[source]
        source: Option<russh::keys::Error>,
    },

    #[error("ssh_private_key_file: cannot use {}", path.display())]
    PrivateKey {
        path: PathBuf,
        #[source]
        source: russh::keys::Error,
    },

    #[error(
        "timed out after {} waiting for SSH on {addr}; last failure: {last_failure}",
        human_duration(*waited)
    )]
    Timeout {
        addr: String,
        waited: Duration,
        last_failure: String,
    },

    #[error("stopped waiting for SSH on {addr}: the build was cancelled")]
    Cancelled { addr: String },

    #[error(
        "SSH authentication failed for user `{user}` on {addr} after {attempts} attempt(s): \
         tried {tried}; the server accepts {offered}"
    )]
    AuthFailed {
        addr: String,
        user: String,
        attempts: u32,
        /// The methods kiln tried, e.g. "publickey, password".
        tried: String,
        /// The methods the server said it would accept.
        offered: String,
    },

    #[error(
        "the SSH handshake with {addr} failed {attempts} time(s) (ssh_handshake_attempts); \
         last failure: {last_failure}"
    )]
    Handshake {
        addr: String,
        attempts: u32,
        last_failure: String,
    },

    #[error("the SSH connection to {addr} was lost")]
    ConnectionLost { addr: String },

    #[error("SSH on {addr}: could not {action}")]
    Channel {
        addr: String,
        action: String,
        // Boxed: russh's error is large and this enum travels in every Result.
        #[source]
        source: Box<russh::Error>,
    },

    #[error(
        "SSH on {addr}: could not {action}: the server closed {attempts} new channels in a row \
         before answering; check the guest's SSH server log"
    )]
    ChannelClosedUnanswered {
        addr: String,
        action: String,
        attempts: u32,
    },

    #[error("SSH on {addr}: the server refused to run `{command}`")]
    ExecRefused { addr: String, command: String },

    #[error("SCP {direction} of {remote_path} on {addr} failed: {message}")]
    Scp {
        addr: String,
        direction: Direction,
        remote_path: String,
        message: String,
    },

    #[error(
        "SFTP is not available on {addr} ({detail}); the guest may have no SFTP server \
         (dropbear and minimal images often lack one): set \"ssh_file_transfer_method\": \"scp\""
    )]
    SftpUnavailable { addr: String, detail: String },

    #[error("SFTP {direction} of {remote_path} on {addr} failed")]
    Sftp {
        addr: String,
        direction: Direction,
        remote_path: String,
        #[source]
        source: russh_sftp::client::error::Error,
    },

    #[error("cannot {action} {}", path.display())]
    Local {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Which way a file was going, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Upload => "upload",
            Self::Download => "download",
        })
    }
}

/// "1m30s", "45s", "1.5s": short enough for one error line.
pub(crate) fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 {
        let (m, s) = (secs / 60, secs % 60);
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else if d.subsec_millis() == 0 {
        format!("{secs}s")
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_packer_settings() {
        assert_eq!(human_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(human_duration(Duration::from_secs(300)), "5m");
        assert_eq!(human_duration(Duration::from_secs(2)), "2s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
    }
}
