//! `ssh_agent_auth` against a real `ssh-agent` holding the test key and a
//! real sshd; and the agent's failures, reported before any waiting.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln::communicator::ssh::{SshAuth, SshError, SshTarget, wait_for_ssh};
use kiln::ui::RecordingReporter;
use tokio_util::sync::CancellationToken;

use super::servers::{self, Kind};
use super::{connect, patient, stdout_of};

/// A foreground `ssh-agent` on its own socket, killed with the test.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    fn start(dir: &Path, name: &str) -> Self {
        let socket = dir.join(name);
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .expect("ssh-agent (openssh-client) runs");
        let agent = Self { child, socket };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !agent.socket.exists() {
            assert!(
                Instant::now() < deadline,
                "ssh-agent made no socket in 20 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        agent
    }

    fn add(&self, key: &Path) {
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .output()
            .expect("ssh-add runs");
        assert!(
            out.status.success(),
            "ssh-add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn agent_target(port: u16, socket: Option<PathBuf>, password: Option<&str>) -> SshTarget {
    SshTarget {
        host: "127.0.0.1".into(),
        port,
        username: "root".into(),
        auth: SshAuth::Agent {
            socket,
            private_key_file: None,
            password: password.map(str::to_owned),
        },
    }
}

async fn agent_error(target: &SshTarget) -> String {
    let opts = patient();
    let started = Instant::now();
    let error = wait_for_ssh(
        target,
        &opts,
        Arc::new(RecordingReporter::new()),
        "test",
        &CancellationToken::new(),
    )
    .await
    .expect_err("the agent cannot be used");
    assert!(matches!(error, SshError::Agent { .. }), "{error:?}");
    assert!(
        started.elapsed() < opts.timeout / 2,
        "reported before waiting for the server"
    );
    error.to_string()
}

#[tokio::test]
async fn the_agents_key_logs_in_to_openssh() {
    let Some((fixture, _server)) = servers::start("agent_auth", Kind::OpenSsh.options()) else {
        return;
    };
    let agent = Agent::start(fixture.dir.path(), "agent.sock");
    agent.add(&fixture.client_key);
    // The key file is not given to kiln: only the agent can sign.
    let session = connect(&agent_target(
        fixture.port,
        Some(agent.socket.clone()),
        None,
    ))
    .await;
    assert_eq!(stdout_of(&session, "echo agent").await, "agent\n");
}

#[tokio::test]
async fn a_missing_empty_or_unreachable_agent_is_reported_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = servers::free_port();
    let unset = agent_error(&agent_target(port, None, None)).await;
    assert!(unset.contains("SSH_AUTH_SOCK is not set"), "{unset}");

    let gone = dir.path().join("no-agent.sock");
    let unreachable = agent_error(&agent_target(port, Some(gone), None)).await;
    assert!(
        unreachable.contains("cannot reach the SSH agent") && unreachable.contains("no-agent.sock"),
        "{unreachable}"
    );

    let empty = Agent::start(dir.path(), "empty.sock");
    let no_keys = agent_error(&agent_target(port, Some(empty.socket.clone()), None)).await;
    assert!(
        no_keys.contains("holds no keys") && no_keys.contains("ssh-add"),
        "{no_keys}"
    );
}
