//! Waiting for the guest's SSH server: connect, handshake and authenticate
//! in a loop until it works, the time is up, or the build is cancelled.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::FileTransfer;
use super::{SshError, SshSession, SshTarget, WaitOptions};
use crate::ui::Reporter;

/// Accepts any host key (the guest is a VM this build just made) and
/// remembers its fingerprint so it can be reported.
pub(crate) struct HostKeyRecorder {
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for HostKeyRecorder {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let text = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                format!("{} {}", key.algorithm(), key.fingerprint(HashAlg::Sha256))
            }
            PublicKeyOrCertificate::Certificate(cert) => format!(
                "certificate {} {}",
                cert.algorithm(),
                cert.public_key().fingerprint(HashAlg::Sha256)
            ),
        };
        *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(text);
        Ok(true)
    }
}

/// Why one attempt did not produce a session.
enum AttemptFailure {
    /// Nobody answered yet, or the guest dropped us while starting up:
    /// retried until the timeout, never counted.
    NotReady(String),
    /// Connected, but no SSH banner within the wait: retried at once with
    /// a longer wait, never counted.
    NoBanner(String),
    /// The server answered but the handshake failed: counted against
    /// `handshake_attempts`.
    Handshake(String),
    /// The server refused our credentials: counted too.
    Auth {
        tried: Vec<&'static str>,
        offered: String,
    },
}

/// Waits until `target` accepts an SSH login, reporting one status line
/// while it waits. Connection refusals and resets are retried quietly every
/// `poll_interval`; failed handshakes and rejected credentials count
/// against `handshake_attempts`.
pub async fn wait_for_ssh(
    target: &SshTarget,
    opts: &WaitOptions,
    reporter: Arc<dyn Reporter>,
    build: &str,
    cancel: &CancellationToken,
) -> Result<SshSession, SshError> {
    let addr = target.addr();
    // A key that cannot be read is the user's mistake: fail before waiting.
    let key = match (&target.auth, target.auth.private_key_file()) {
        (super::SshAuth::TemporaryKey(key), _) => Some(key.clone()),
        (_, Some(path)) => Some(Arc::new(russh::keys::load_secret_key(path, None).map_err(
            |source| SshError::PrivateKey {
                path: path.clone(),
                source,
            },
        )?)),
        (_, None) => None,
    };
    // No agent, or an empty one, is the user's to fix: fail before waiting.
    let mut agent = match target.auth.agent_socket() {
        Some(socket) => Some(super::agent::connect(socket).await?),
        None => None,
    };
    let config = Arc::new(client::Config {
        keepalive_interval: (!opts.keep_alive_interval.is_zero())
            .then_some(opts.keep_alive_interval),
        nodelay: true,
        ..client::Config::default()
    });
    let max_handshakes = opts.handshake_attempts.max(1);

    reporter.info(build, "Waiting for SSH to become available...");
    let started = Instant::now();
    let deadline = started + opts.timeout;
    let mut handshake_failures = 0;
    let mut last_failure = "no connection attempt finished".to_owned();
    let mut banner_wait = FIRST_BANNER_WAIT;

    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(SshError::Timeout {
                addr,
                waited: opts.timeout,
                last_failure,
            });
        }
        let attempt_limit = remaining.min(opts.attempt_timeout);
        let attempt = tokio::time::timeout(
            attempt_limit,
            attempt(
                target,
                key.as_ref(),
                agent.as_mut(),
                config.clone(),
                banner_wait,
            ),
        );
        let outcome = tokio::select! {
            () = cancel.cancelled() => return Err(SshError::Cancelled { addr }),
            outcome = attempt => outcome,
        };
        match outcome {
            Ok(Ok((handle, host_key))) => {
                reporter.info(build, &format!("Host key of {addr}: {host_key}"));
                reporter.info(build, "Connected to SSH!");
                return Ok(SshSession {
                    handle,
                    addr,
                    username: target.username.clone(),
                    host_key,
                    file_transfer: FileTransfer::Scp,
                    pty: false,
                    reporter,
                    build: build.to_owned(),
                });
            }
            Err(_elapsed) => {
                last_failure = format!(
                    "no SSH handshake within {}",
                    super::error::human_duration(attempt_limit)
                );
            }
            Ok(Err(AttemptFailure::NoBanner(why))) => {
                // A slow guest gets longer each time, so a banner that
                // always takes a while still arrives within one wait.
                banner_wait = (banner_wait * 2).min(opts.attempt_timeout);
                last_failure = why;
            }
            Ok(Err(AttemptFailure::NotReady(why))) => last_failure = why,
            Ok(Err(AttemptFailure::Handshake(why))) => {
                handshake_failures += 1;
                if handshake_failures >= max_handshakes {
                    return Err(SshError::Handshake {
                        addr,
                        attempts: handshake_failures,
                        last_failure: why,
                    });
                }
                last_failure = why;
            }
            Ok(Err(AttemptFailure::Auth { tried, offered })) => {
                handshake_failures += 1;
                if handshake_failures >= max_handshakes {
                    return Err(SshError::AuthFailed {
                        addr,
                        user: target.username.clone(),
                        attempts: handshake_failures,
                        tried: tried.join(", "),
                        offered,
                    });
                }
                last_failure = format!(
                    "authentication as `{}` rejected (tried {})",
                    target.username,
                    tried.join(", ")
                );
            }
        }
        let pause = opts
            .poll_interval
            .min(deadline.saturating_duration_since(Instant::now()));
        tokio::select! {
            () = cancel.cancelled() => return Err(SshError::Cancelled { addr }),
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// How long the first attempt waits for the server's banner.
///
/// QEMU's user networking (and VirtualBox NAT) accept a forwarded port at
/// once, even while the guest boots and nothing listens: the connection
/// then hangs with no byte from the guest until the whole attempt timed out
/// (20 s), so SSH could be found up to 20 s after it answered. An SSH
/// server sends its banner as soon as it accepts, so a short wait for it,
/// retried, finds the guest within a few seconds of its start. (On the
/// loaded bench machine a resumed tiny build still waited 40.5 s: there
/// the guest's own boot under TCG is the cost, not this.)
const FIRST_BANNER_WAIT: Duration = Duration::from_secs(3);

/// Waits for the first bytes of the server (its banner) without taking
/// them: the SSH client reads them itself.
async fn wait_for_banner(tcp: &TcpStream, wait: Duration) -> Result<(), AttemptFailure> {
    let mut first = [0u8; 4];
    match tokio::time::timeout(wait, tcp.peek(&mut first)).await {
        Ok(Ok(0)) => Err(AttemptFailure::NotReady(
            "the connection was closed before the SSH banner".into(),
        )),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(AttemptFailure::NotReady(format!("connect: {e}"))),
        Err(_) => Err(AttemptFailure::NoBanner(format!(
            "connected, but no SSH banner within {}",
            super::error::human_duration(wait)
        ))),
    }
}

/// One connect + handshake + authentication.
async fn attempt(
    target: &SshTarget,
    key: Option<&Arc<PrivateKey>>,
    agent: Option<&mut super::agent::Agent>,
    config: Arc<client::Config>,
    banner_wait: Duration,
) -> Result<(Handle<HostKeyRecorder>, String), AttemptFailure> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| AttemptFailure::NotReady(format!("connect: {e}")))?;
    wait_for_banner(&tcp, banner_wait).await?;
    // SCP and exec are lock-step request/answer: Nagle would add a delay
    // to every round trip. (russh sets this only when it connects itself.)
    let _ = tcp.set_nodelay(true);
    let seen = Arc::new(Mutex::new(None));
    let handler = HostKeyRecorder { seen: seen.clone() };
    let mut handle = client::connect_stream(config, tcp, handler)
        .await
        .map_err(classify)?;
    let host_key = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
        .unwrap_or_else(|| "unknown".to_owned());

    let mut tried = Vec::new();
    let mut offered = None;
    if let Some(key) = key {
        tried.push("publickey");
        let hash = if key.algorithm().is_rsa() {
            // Servers without the server-sig-algs extension still take
            // rsa-sha2-256 more often than the SHA-1 `ssh-rsa`.
            handle
                .best_supported_rsa_hash()
                .await
                .map_err(classify)?
                .unwrap_or(Some(HashAlg::Sha256))
        } else {
            None
        };
        let result = handle
            .authenticate_publickey(
                target.username.as_str(),
                PrivateKeyWithHashAlg::new(key.clone(), hash),
            )
            .await
            .map_err(classify)?;
        match result {
            client::AuthResult::Success => return Ok((handle, host_key)),
            client::AuthResult::Failure {
                remaining_methods, ..
            } => offered = Some(remaining_methods),
        }
    }
    if let Some(agent) = agent {
        tried.push("publickey (agent)");
        for identity in agent.keys.clone() {
            let hash = if identity.algorithm().is_rsa() {
                handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(classify)?
                    .unwrap_or(Some(HashAlg::Sha256))
            } else {
                None
            };
            let result = handle
                .authenticate_publickey_with(
                    target.username.as_str(),
                    identity,
                    hash,
                    &mut agent.client,
                )
                .await
                .map_err(|e| {
                    AttemptFailure::Handshake(format!("the SSH agent could not sign: {e}"))
                })?;
            match result {
                client::AuthResult::Success => return Ok((handle, host_key)),
                client::AuthResult::Failure {
                    remaining_methods, ..
                } => offered = Some(remaining_methods),
            }
        }
    }
    if let Some(password) = target.auth.password() {
        tried.push("password");
        let result = handle
            .authenticate_password(target.username.as_str(), password)
            .await
            .map_err(classify)?;
        match result {
            client::AuthResult::Success => return Ok((handle, host_key)),
            client::AuthResult::Failure {
                remaining_methods, ..
            } => offered = Some(remaining_methods),
        }
    }
    let offered = offered
        .map(|methods| {
            let names: Vec<&str> = methods.iter().map(<&str>::from).collect();
            if names.is_empty() {
                "nothing".to_owned()
            } else {
                names.join(", ")
            }
        })
        .unwrap_or_else(|| "unknown methods".to_owned());
    Err(AttemptFailure::Auth { tried, offered })
}

/// A guest that is still booting closes connections, resets them, or hangs
/// up during the banner; anything else after TCP connected is a real
/// handshake failure.
fn classify(error: russh::Error) -> AttemptFailure {
    use russh::Error as E;
    match error {
        E::IO(e) => AttemptFailure::NotReady(format!("handshake: {e}")),
        E::Disconnect | E::HUP | E::ConnectionTimeout | E::SendError => {
            AttemptFailure::NotReady(format!("handshake: {error}"))
        }
        other => AttemptFailure::Handshake(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server on loopback that does `serve` with each connection.
    async fn server(
        serve: impl Fn(tokio::net::TcpStream) -> tokio::task::JoinHandle<()> + Send + 'static,
    ) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                serve(s);
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_forward_with_nobody_behind_it_is_retried_after_the_banner_wait() {
        // Accepts and says nothing, as QEMU's forward does while the guest boots.
        let addr = server(|s| {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(60)).await;
                drop(s);
            })
        })
        .await;
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let started = Instant::now();
        let r = wait_for_banner(&tcp, Duration::from_millis(300)).await;
        assert!(matches!(r, Err(AttemptFailure::NoBanner(_))));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn the_banner_is_seen_and_left_for_the_client() {
        let addr = server(|mut s| {
            tokio::spawn(async move {
                let _ = s.write_all(b"SSH-2.0-test\r\n").await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            })
        })
        .await;
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        assert!(wait_for_banner(&tcp, Duration::from_secs(30)).await.is_ok());
        let mut buf = [0u8; 8];
        tcp.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"SSH-2.0-");

        // A server that closes at once is "not ready", not a missing banner.
        let closing = server(|s| tokio::spawn(async move { drop(s) })).await;
        let tcp = TcpStream::connect(closing).await.expect("connect");
        assert!(matches!(
            wait_for_banner(&tcp, Duration::from_secs(30)).await,
            Err(AttemptFailure::NotReady(_))
        ));
    }
}
