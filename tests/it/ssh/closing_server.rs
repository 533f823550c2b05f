//! An SSH server that reproduces, on demand, what dropbear 2022.82–2024.85
//! does at random (its issues #173 and #321): it closes a fresh session
//! channel without answering the exec or subsystem request sent on it.
//! dropbear does it when a child-exit signal lands while the channel is
//! open but its request has not arrived; this server does it for the first
//! `close_unanswered` channels, so the client's handling can be tested
//! every time instead of once in a few dozen runs.
//!
//! Built on russh's server, which speaks the real protocol to kiln's client.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId};
use tokio::net::TcpListener;

/// How the server treats the channels after the faulty ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFault {
    /// Answer, print `ran: COMMAND`, exit 0, close: a healthy server.
    Run,
    /// Answer, then close with no exit status: a command that started and
    /// lost its connection, which must never be run a second time.
    AnswerThenClose,
}

#[derive(Debug, Default)]
pub struct Log {
    /// Channels opened by the client.
    pub opened: usize,
    /// Requests the server closed without answering.
    pub closed_unanswered: usize,
    /// Commands it accepted, in order.
    pub accepted: Vec<String>,
}

#[derive(Clone)]
struct Handler {
    log: Arc<Mutex<Log>>,
    close_unanswered: usize,
    after: AfterFault,
    channels: Arc<Mutex<Vec<Channel<Msg>>>>,
}

fn lock(log: &Mutex<Log>) -> std::sync::MutexGuard<'_, Log> {
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Handler {
    fn request(&mut self, channel: ChannelId, what: &str, session: &mut Session) {
        let mut log = lock(&self.log);
        if log.closed_unanswered < self.close_unanswered {
            log.closed_unanswered += 1;
            let _ = session.close(channel);
            return;
        }
        log.accepted.push(what.to_owned());
        drop(log);
        let _ = session.channel_success(channel);
        if self.after == AfterFault::Run {
            let _ = session.data(channel, format!("ran: {what}\n").into_bytes());
            let _ = session.exit_status_request(channel, 0);
            let _ = session.eof(channel);
        }
        let _ = session.close(channel);
    }
}

impl russh::server::Handler for Handler {
    type Error = russh::Error;

    async fn auth_password(&mut self, _user: &str, _password: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        lock(&self.log).opened += 1;
        reply.accept().await;
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(channel);
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.request(channel, &String::from_utf8_lossy(data), session);
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.request(channel, &format!("subsystem {name}"), session);
        Ok(())
    }
}

/// A running server: its port and what it saw.
pub struct ClosingServer {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Log>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ClosingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ClosingServer {
    /// Starts on 127.0.0.1 with port 0; `key_dir` receives its host key.
    pub async fn start(key_dir: &Path, close_unanswered: usize, after: AfterFault) -> Self {
        let key_path = key_dir.join("closing_server_host_key");
        super::servers::keygen(&key_path, "ed25519");
        let key = russh::keys::load_secret_key(&key_path, None).expect("load the host key");
        let config = Arc::new(russh::server::Config {
            keys: vec![key],
            ..Default::default()
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let log = Arc::new(Mutex::new(Log::default()));
        let handler = Handler {
            log: log.clone(),
            close_unanswered,
            after,
            channels: Arc::default(),
        };
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let config = config.clone();
                let handler = handler.clone();
                tokio::spawn(async move {
                    if let Ok(running) = russh::server::run_stream(config, stream, handler).await {
                        let _ = running.await;
                    }
                });
            }
        });
        Self { addr, log, task }
    }

    pub fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        lock(&self.log)
    }
}
