//! Starting a command (exec) or a subsystem on a fresh session channel, and
//! not returning until the server has answered the request.
//!
//! Why the answer matters: dropbear 2022.82 to 2024.85 (Debian 12 ships
//! 2022.83, as do many minimal guests) closes a session channel that exists
//! but has not received its exec request yet whenever a child-exit signal
//! is pending in its main loop (dropbear issues #173 and #321, fixed by its
//! pull request #326). The signal comes from an earlier command whose
//! process exits just as the next channel opens: a transfer that failed, an
//! SFTP subsystem that ended. The doomed channel gets CHANNEL_CLOSE with no
//! exit status, and kiln used to report the next command as "the connection
//! dropped" or "remote scp stopped answering", at random.
//!
//! dropbear ignores every request on a channel it has already closed (no
//! reply, no process), so a close that comes before the answer proves the
//! command never started: opening another channel and asking again is safe.
//! A close after the answer is a real result and is never retried.

use std::collections::VecDeque;

use russh::ChannelMsg;
use russh::client::Msg;

use super::{SshError, SshSession};

/// How many fresh channels to try when the server keeps closing them
/// before answering. One stray signal closes at most one channel, so a
/// second attempt already succeeds; the bound only stops a server that
/// closes every channel.
const ATTEMPTS: u32 = 5;

/// What to ask the server to run on the channel.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Request<'a> {
    Exec(&'a str),
    Subsystem(&'a str),
}

impl Request<'_> {
    fn describe(self) -> String {
        match self {
            Self::Exec(command) => format!("start `{command}`"),
            Self::Subsystem(name) => format!("start the {name} subsystem"),
        }
    }
}

/// A channel whose request the server accepted.
pub(crate) struct Started {
    pub(crate) channel: russh::Channel<Msg>,
    /// Messages that arrived before the answer, to be read first.
    early: VecDeque<ChannelMsg>,
}

impl Started {
    /// Whether the server sent anything before its answer (then the
    /// channel's first messages are in `early`, not on the channel).
    pub(crate) fn has_early_output(&self) -> bool {
        !self.early.is_empty()
    }

    /// The next message on the channel; `None` once russh has forgotten it
    /// (after CHANNEL_CLOSE, or when the connection is gone).
    pub(crate) async fn next(&mut self) -> Option<ChannelMsg> {
        match self.early.pop_front() {
            Some(msg) => Some(msg),
            None => self.channel.wait().await,
        }
    }
}

/// How the server answered.
pub(crate) enum Answer {
    Started(Started),
    /// CHANNEL_FAILURE: the server will not run it (no such subsystem, or
    /// exec refused by its configuration).
    Refused,
}

/// What one attempt came to.
enum Attempt {
    Answered(Answer),
    /// Closed before any answer or output: the command never ran.
    ClosedUnanswered,
}

/// Messages that say the command is running (or ran) on the server.
fn shows_it_started(msg: &ChannelMsg) -> bool {
    matches!(
        msg,
        ChannelMsg::Data { .. }
            | ChannelMsg::ExtendedData { .. }
            | ChannelMsg::ExitStatus { .. }
            | ChannelMsg::ExitSignal { .. }
    )
}

impl SshSession {
    /// Opens a session channel, asks for a pty when `pty` is set, sends
    /// `request` and waits for the server's answer, opening a new channel
    /// when the server closed one without answering (see the module
    /// comment).
    pub(crate) async fn start_channel(
        &self,
        request: Request<'_>,
        pty: bool,
    ) -> Result<Answer, SshError> {
        for attempt in 1..=ATTEMPTS {
            match self.start_once(request, pty).await? {
                Attempt::Answered(answer) => return Ok(answer),
                Attempt::ClosedUnanswered if attempt < ATTEMPTS => {
                    self.reporter.info(
                        &self.build,
                        &format!(
                            "the SSH server closed a new channel before it could {} \
                             (a known dropbear fault); asking again on a new channel",
                            request.describe()
                        ),
                    );
                }
                Attempt::ClosedUnanswered => {}
            }
        }
        Err(SshError::ChannelClosedUnanswered {
            addr: self.addr.clone(),
            action: request.describe(),
            attempts: ATTEMPTS,
        })
    }

    async fn start_once(&self, request: Request<'_>, pty: bool) -> Result<Attempt, SshError> {
        let mut channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| self.channel_error("open a session channel", e))?;
        if pty {
            channel
                .request_pty(false, "vt100", 80, 40, 0, 0, &[])
                .await
                .map_err(|e| self.channel_error("request a pty", e))?;
        }
        let sent = match request {
            Request::Exec(command) => channel.exec(true, command).await,
            Request::Subsystem(name) => channel.request_subsystem(true, name).await,
        };
        sent.map_err(|e| self.channel_error(request.describe(), e))?;

        let mut early = VecDeque::new();
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => {
                    return Ok(Attempt::Answered(Answer::Started(Started {
                        channel,
                        early,
                    })));
                }
                Some(ChannelMsg::Failure) => return Ok(Attempt::Answered(Answer::Refused)),
                Some(msg) if shows_it_started(&msg) => {
                    // Output before the answer: it runs. Keep everything
                    // for the caller, which reads on from here.
                    early.push_back(msg);
                    return Ok(Attempt::Answered(Answer::Started(Started {
                        channel,
                        early,
                    })));
                }
                Some(ChannelMsg::Close) | None => {
                    if self.handle.is_closed() {
                        return Err(SshError::ConnectionLost {
                            addr: self.addr.clone(),
                        });
                    }
                    return Ok(Attempt::ClosedUnanswered);
                }
                // EOF, window adjustments: bookkeeping that proves nothing.
                Some(_) => {}
            }
        }
    }
}
