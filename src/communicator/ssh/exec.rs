//! Running one command on the guest with its output streamed line by line.

use russh::ChannelMsg;

use super::channel::{Answer, Request};
use super::lines::LineSplitter;
use super::{SshError, SshSession};

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(u32),
    /// A signal ended it (name without `SIG`, e.g. "TERM").
    Signal {
        name: String,
        core_dumped: bool,
        message: String,
    },
    /// The channel closed without an exit status: the connection dropped
    /// (a reboot, sshd killed). Packer reports this as 2300218;
    /// `expect_disconnect` provisioners accept it.
    Disconnected,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        *self == Self::Code(0)
    }

    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Code(c) => Some(*c),
            _ => None,
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Code(c) => write!(f, "exit status {c}"),
            Self::Signal {
                name, core_dumped, ..
            } => {
                write!(f, "killed by signal {name}")?;
                if *core_dumped {
                    f.write_str(" (core dumped)")?;
                }
                Ok(())
            }
            Self::Disconnected => f.write_str("the connection dropped before the command finished"),
        }
    }
}

pub(crate) fn signal_name(sig: &russh::Sig) -> String {
    use russh::Sig;
    match sig {
        Sig::ABRT => "ABRT",
        Sig::ALRM => "ALRM",
        Sig::FPE => "FPE",
        Sig::HUP => "HUP",
        Sig::ILL => "ILL",
        Sig::INT => "INT",
        Sig::KILL => "KILL",
        Sig::PIPE => "PIPE",
        Sig::QUIT => "QUIT",
        Sig::SEGV => "SEGV",
        Sig::TERM => "TERM",
        Sig::USR1 => "USR1",
        Sig::Custom(name) => name,
    }
    .to_owned()
}

impl SshSession {
    /// Runs `command` through the guest's shell, calling `on_line` for
    /// every line of stdout and stderr as it arrives (a partial last line
    /// is passed at the end). Returns how the command ended; `Err` means it
    /// could not be started.
    pub async fn exec(
        &self,
        command: &str,
        mut on_line: impl FnMut(Stream, &str),
    ) -> Result<ExitStatus, SshError> {
        let mut started = match self.start_channel(Request::Exec(command), self.pty).await? {
            Answer::Started(started) => started,
            Answer::Refused => {
                return Err(SshError::ExecRefused {
                    addr: self.addr.clone(),
                    command: command.to_owned(),
                });
            }
        };

        let mut stdout = LineSplitter::default();
        let mut stderr = LineSplitter::default();
        let mut status = None;
        while let Some(msg) = started.next().await {
            match msg {
                ChannelMsg::Data { data } => stdout.push(&data, |l| on_line(Stream::Stdout, l)),
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    stderr.push(&data, |l| on_line(Stream::Stderr, l));
                }
                ChannelMsg::ExitStatus { exit_status } => {
                    status = Some(ExitStatus::Code(exit_status));
                }
                ChannelMsg::ExitSignal {
                    signal_name: sig,
                    core_dumped,
                    error_message,
                    ..
                } => {
                    status = Some(ExitStatus::Signal {
                        name: signal_name(&sig),
                        core_dumped,
                        message: error_message,
                    });
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        stdout.finish(|l| on_line(Stream::Stdout, l));
        stderr.finish(|l| on_line(Stream::Stderr, l));
        Ok(status.unwrap_or(ExitStatus::Disconnected))
    }
}
