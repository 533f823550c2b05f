//! The SSH communicator against real servers (OpenSSH and dropbear) on
//! 127.0.0.1. See `servers.rs` for how they are started and what they need.

mod servers;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln::communicator::ssh::{
    ExitStatus, SshAuth, SshError, SshSession, SshTarget, Stream, WaitOptions, wait_for_ssh,
};
use kiln::config::common::FileTransfer;
use kiln::ui::{Event, RecordingReporter};
use tokio_util::sync::CancellationToken;

use servers::{Fixture, Kind, PASSWORD};

fn key_target(fixture: &Fixture) -> SshTarget {
    SshTarget {
        host: "127.0.0.1".into(),
        port: fixture.port,
        username: "root".into(),
        auth: SshAuth::PrivateKeyFile(fixture.client_key.clone()),
    }
}

fn password_target(port: u16, password: &str) -> SshTarget {
    SshTarget {
        host: "127.0.0.1".into(),
        port,
        username: "root".into(),
        auth: SshAuth::Password(password.into()),
    }
}

fn quick() -> WaitOptions {
    WaitOptions {
        timeout: Duration::from_secs(10),
        ..WaitOptions::default()
    }
}

async fn connect(target: &SshTarget) -> SshSession {
    wait_for_ssh(
        target,
        &quick(),
        Arc::new(RecordingReporter::new()),
        "test",
        &CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("connect to {}: {e}", target.addr()))
}

/// Runs `command`, returning its status and the lines it printed.
async fn run(session: &SshSession, command: &str) -> (ExitStatus, Vec<(Stream, String)>) {
    let mut lines = Vec::new();
    let status = session
        .exec(command, |stream, line| {
            lines.push((stream, line.to_owned()))
        })
        .await
        .unwrap_or_else(|e| panic!("exec `{command}`: {e}"));
    (status, lines)
}

async fn stdout_of(session: &SshSession, command: &str) -> String {
    let (status, lines) = run(session, command).await;
    assert!(status.success(), "`{command}`: {status}: {lines:?}");
    lines
        .into_iter()
        .filter(|(s, _)| *s == Stream::Stdout)
        .map(|(_, l)| l + "\n")
        .collect()
}

#[tokio::test]
async fn exec_streams_lines_and_reports_exit_codes_and_signals() {
    let Some((fixture, _server)) = servers::start("exec_streams_lines", Kind::OpenSsh.options())
    else {
        return;
    };
    let session = connect(&key_target(&fixture)).await;

    let (status, lines) = run(
        &session,
        "echo one; echo two >&2; printf 'three\\nfour'; exit 0",
    )
    .await;
    assert_eq!(status, ExitStatus::Code(0));
    let stdout: Vec<_> = lines
        .iter()
        .filter(|(s, _)| *s == Stream::Stdout)
        .map(|(_, l)| l.as_str())
        .collect();
    let stderr: Vec<_> = lines
        .iter()
        .filter(|(s, _)| *s == Stream::Stderr)
        .map(|(_, l)| l.as_str())
        .collect();
    assert_eq!(stdout, ["one", "three", "four"]);
    assert_eq!(stderr, ["two"]);

    let (status, _) = run(&session, "exit 3").await;
    assert_eq!(status, ExitStatus::Code(3));
    assert_eq!(status.code(), Some(3));

    let (status, _) = run(&session, "kill -TERM $$").await;
    assert!(
        matches!(&status, ExitStatus::Signal { name, .. } if name == "TERM"),
        "{status:?}"
    );
    assert_eq!(status.to_string(), "killed by signal TERM");
    session.close().await;
}
