//! A small QMP client: the QEMU Machine Protocol over a Unix socket.
//!
//! Hand-written with serde types for the few commands kiln uses (the `qapi`
//! crates cost ~30 s of compile for these). QMP is line-delimited JSON: a
//! greeting, then one response per command in order, with asynchronous
//! events (`SHUTDOWN`, `STOP`, `BLOCK_IO_ERROR`, …) interleaved.
//!
//! A reader task owns the socket's read half for the whole session, so an
//! event is taken in the moment QEMU sends it, whether or not a command is
//! running: answers go to the command waiting for them (by id), events to a
//! queue ([`Qmp::take_events`], [`Qmp::wait_event`]), and events that mean
//! the guest stopped running to a watch ([`Qmp::halts`]) that keeps the
//! first, most telling one for anyone who looks later.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, oneshot, watch};

/// How long one command may take before QEMU is considered stuck.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("could not connect to QMP socket {path}")]
    Connect {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("QMP connection failed")]
    Io(#[from] io::Error),
    #[error("QMP: QEMU closed the connection")]
    Closed,
    #[error("QMP: unexpected message from QEMU: {0}")]
    Protocol(String),
    #[error("QMP command `{command}` failed: {desc} ({class})")]
    Command {
        command: String,
        class: String,
        desc: String,
    },
    #[error("QMP command `{command}` got no answer within {timeout:?}")]
    Timeout { command: String, timeout: Duration },
}

/// A key for `send-key` and `input-send-event`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "lowercase")]
pub enum KeyValue {
    /// A QEMU key code name: `a`, `ret`, `shift`, `ctrl`, `f2`, …
    Qcode(String),
    /// A raw PC scancode.
    Number(u32),
}

impl KeyValue {
    pub fn qcode(name: impl Into<String>) -> Self {
        Self::Qcode(name.into())
    }
}

/// One `input-send-event` event; kiln uses key presses and releases, so a
/// modifier can be held across other keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "lowercase")]
pub enum InputEvent {
    Key { down: bool, key: KeyValue },
}

/// `query-status`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StatusInfo {
    pub running: bool,
    /// QEMU's run state: `running`, `paused`, `io-error`, `shutdown`,
    /// `guest-panicked`, `prelaunch`, …
    pub status: String,
}

/// One drive of `query-block`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BlockInfo {
    /// The drive's name (`virtio0`, `ide0-hd0`, …), as `BLOCK_IO_ERROR` names it.
    pub device: String,
    /// `ok`, `failed` or `nospace`; only for drives that can stop the VM.
    #[serde(rename = "io-status", default)]
    pub io_status: Option<String>,
    #[serde(default)]
    pub inserted: Option<BlockInserted>,
}

/// The medium in a drive.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BlockInserted {
    /// The image file.
    pub file: String,
    #[serde(rename = "node-name", default)]
    pub node_name: Option<String>,
}

/// An asynchronous QMP event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QmpEvent {
    pub event: String,
    #[serde(default)]
    pub data: Value,
}

/// Why the guest stopped running, as QMP told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmHalt {
    /// `BLOCK_IO_ERROR` that stopped the guest (QEMU's default on a full
    /// host disk: `werror=enospc`) or that says the host disk is full.
    IoError {
        /// The drive (`virtio0`), empty when QEMU names only the node.
        device: String,
        node_name: Option<String>,
        /// `read` or `write`.
        operation: String,
        /// The host's error text, e.g. "No space left on device".
        reason: Option<String>,
        nospace: bool,
    },
    /// `GUEST_PANICKED` (through a pvpanic device), with QEMU's action.
    Panicked { action: String },
    /// `SHUTDOWN`: the guest powered off (or reset under `-no-reboot`), or
    /// QEMU was told to quit.
    Shutdown { guest: bool, reason: String },
    /// `STOP` with no I/O error or panic before it.
    Paused,
    /// The QMP connection ended: QEMU exited or closed the socket.
    Disconnected,
}

impl VmHalt {
    /// The halt an event means, if any.
    pub fn from_event(event: &QmpEvent) -> Option<Self> {
        let d = &event.data;
        let text = |key: &str| d[key].as_str().unwrap_or_default().to_owned();
        match event.event.as_str() {
            "BLOCK_IO_ERROR" => {
                let nospace = d["nospace"].as_bool().unwrap_or(false);
                // `report` and `ignore` leave the guest running and seeing
                // the error; only a stop, or a full host disk, is the end.
                (d["action"] == "stop" || nospace).then(|| Self::IoError {
                    device: text("device"),
                    node_name: d["node-name"].as_str().map(str::to_owned),
                    operation: text("operation"),
                    reason: d["reason"].as_str().map(str::to_owned),
                    nospace,
                })
            }
            "GUEST_PANICKED" => Some(Self::Panicked {
                action: text("action"),
            }),
            "SHUTDOWN" => Some(Self::Shutdown {
                guest: d["guest"].as_bool().unwrap_or(false),
                reason: text("reason"),
            }),
            "STOP" => Some(Self::Paused),
            _ => None,
        }
    }

    /// How much a halt says about its cause: a later event replaces an
    /// earlier one only if it says more (the `STOP` that follows a
    /// `BLOCK_IO_ERROR` must not hide it).
    fn detail(&self) -> u8 {
        match self {
            Self::IoError { .. } | Self::Panicked { .. } => 3,
            Self::Shutdown { .. } => 2,
            Self::Paused => 1,
            Self::Disconnected => 0,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    class: String,
    desc: String,
}

/// One message from QEMU.
#[derive(Deserialize)]
#[serde(untagged)]
enum Message {
    Return {
        #[serde(rename = "return")]
        ret: Value,
        id: Option<Value>,
    },
    Error {
        error: ErrorBody,
        id: Option<Value>,
    },
    Event(QmpEvent),
    Greeting {
        #[serde(rename = "QMP")]
        _qmp: Value,
    },
}

type Reply = Result<Value, ErrorBody>;

/// How the reader task's session ended.
#[derive(Debug, Clone)]
enum Ended {
    Eof,
    Io(io::ErrorKind),
    Protocol(String),
}

impl Ended {
    fn to_error(&self) -> QmpError {
        match self {
            Self::Eof => QmpError::Closed,
            Self::Io(kind) => QmpError::Io((*kind).into()),
            Self::Protocol(line) => QmpError::Protocol(line.clone()),
        }
    }
}

#[derive(Debug, Default)]
struct Inbox {
    /// Commands waiting for their answer, by id.
    pending: HashMap<u64, oneshot::Sender<Reply>>,
    events: Vec<QmpEvent>,
    ended: Option<Ended>,
}

/// What the reader task and the session share.
#[derive(Debug)]
struct Shared {
    inbox: Mutex<Inbox>,
    event_arrived: Notify,
    halt: watch::Sender<Option<VmHalt>>,
}

impl Shared {
    fn inbox(&self) -> std::sync::MutexGuard<'_, Inbox> {
        // The lock is only held to move values in and out; a panic there
        // leaves a consistent inbox.
        self.inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn record_halt(&self, halt: VmHalt) {
        self.halt.send_if_modified(|current| match current {
            Some(old) if old.detail() >= halt.detail() => false,
            _ => {
                *current = Some(halt);
                true
            }
        });
    }

    fn deliver(&self, message: Message) -> Result<(), Ended> {
        match message {
            Message::Return { ret, id } => self.answer(id.as_ref(), Ok(ret)),
            Message::Error { error, id } => self.answer(id.as_ref(), Err(error)),
            Message::Event(e) => {
                if let Some(halt) = VmHalt::from_event(&e) {
                    self.record_halt(halt);
                }
                self.inbox().events.push(e);
                self.event_arrived.notify_waiters();
            }
            Message::Greeting { .. } => return Err(Ended::Protocol("a second greeting".into())),
        }
        Ok(())
    }

    /// Hands an answer to its command; an answer nobody waits for any more
    /// (its command timed out) is dropped.
    fn answer(&self, id: Option<&Value>, reply: Reply) {
        let Some(id) = id.and_then(Value::as_u64) else {
            return;
        };
        if let Some(tx) = self.inbox().pending.remove(&id) {
            let _ = tx.send(reply);
        }
    }

    fn end(&self, why: Ended) {
        let mut inbox = self.inbox();
        inbox.ended = Some(why);
        // Dropping the senders wakes every waiting command.
        inbox.pending.clear();
        drop(inbox);
        self.record_halt(VmHalt::Disconnected);
        self.event_arrived.notify_waiters();
    }
}

/// A QMP session in command mode.
#[derive(Debug)]
pub struct Qmp {
    writer: OwnedWriteHalf,
    shared: Arc<Shared>,
    reader: tokio::task::JoinHandle<()>,
    next_id: u64,
    timeout: Duration,
}

impl Drop for Qmp {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn read_message(reader: &mut BufReader<OwnedReadHalf>) -> Result<Message, QmpError> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err(QmpError::Closed);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    serde_json::from_str(&line).map_err(|_| QmpError::Protocol(line.trim().to_owned()))
}

/// Reads every message until the connection ends.
async fn read_until_closed(mut reader: BufReader<OwnedReadHalf>, shared: Arc<Shared>) {
    let ended = loop {
        let delivered = match read_message(&mut reader).await {
            Ok(message) => shared.deliver(message),
            Err(QmpError::Io(e)) => Err(Ended::Io(e.kind())),
            Err(QmpError::Protocol(line)) => Err(Ended::Protocol(line)),
            Err(_) => Err(Ended::Eof),
        };
        if let Err(ended) = delivered {
            break ended;
        }
    };
    shared.end(ended);
}

/// Reads up to the greeting. QEMU can broadcast an event (a VNC client
/// leaving, say) on a socket it has just accepted before it writes the
/// greeting there; such an event belongs to no session of ours and is
/// dropped. Anything else first is not QMP.
async fn read_greeting(reader: &mut BufReader<OwnedReadHalf>) -> Result<(), QmpError> {
    loop {
        match read_message(reader).await? {
            Message::Greeting { .. } => return Ok(()),
            Message::Event(_) => continue,
            _ => return Err(QmpError::Protocol("expected the QMP greeting".into())),
        }
    }
}

impl Qmp {
    /// Connects and negotiates, or `None` when QEMU has not created or is
    /// not yet listening on the socket (the caller retries).
    pub async fn try_connect(path: &Path) -> Result<Option<Self>, QmpError> {
        match UnixStream::connect(path).await {
            Ok(stream) => Self::handshake(stream).await.map(Some),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                Ok(None)
            }
            Err(source) => Err(QmpError::Connect {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Connects, retrying for up to `timeout` while the socket does not exist yet.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<Self, QmpError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(qmp) = Self::try_connect(path).await? {
                return Ok(qmp);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(QmpError::Connect {
                    path: path.display().to_string(),
                    source: io::ErrorKind::TimedOut.into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn handshake(stream: UnixStream) -> Result<Self, QmpError> {
        let (r, w) = stream.into_split();
        let mut reader = BufReader::new(r);
        tokio::time::timeout(COMMAND_TIMEOUT, read_greeting(&mut reader))
            .await
            .map_err(|_| QmpError::Timeout {
                command: "(greeting)".into(),
                timeout: COMMAND_TIMEOUT,
            })??;
        let shared = Arc::new(Shared {
            inbox: Mutex::new(Inbox::default()),
            event_arrived: Notify::new(),
            halt: watch::Sender::new(None),
        });
        let reader = tokio::spawn(read_until_closed(reader, shared.clone()));
        let mut qmp = Self {
            writer: w,
            shared,
            reader,
            next_id: 0,
            timeout: COMMAND_TIMEOUT,
        };
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    /// Runs one command and returns its `return` value.
    ///
    /// If the future is dropped after the command was written, its answer
    /// is discarded when it comes; a command line cut short by the drop
    /// would confuse QEMU, so drop the session after a timeout.
    pub async fn execute(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, QmpError> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "execute": command, "id": id });
        if let Some(args) = arguments {
            msg["arguments"] = args;
        }
        let mut bytes = serde_json::to_vec(&msg)
            .map_err(|e| QmpError::Protocol(format!("could not encode {command}: {e}")))?;
        bytes.push(b'\n');
        let (tx, rx) = oneshot::channel();
        {
            let mut inbox = self.shared.inbox();
            if let Some(ended) = &inbox.ended {
                return Err(ended.to_error());
            }
            inbox.pending.insert(id, tx);
        }
        let timeout = self.timeout;
        let shared = self.shared.clone();
        let writer = &mut self.writer;
        let answer = tokio::time::timeout(timeout, async {
            writer.write_all(&bytes).await?;
            rx.await.map_err(|_| {
                shared
                    .inbox()
                    .ended
                    .as_ref()
                    .map_or(QmpError::Closed, Ended::to_error)
            })
        })
        .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(_) => {
                self.shared.inbox().pending.remove(&id);
                return Err(QmpError::Timeout {
                    command: command.to_owned(),
                    timeout,
                });
            }
        };
        match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(QmpError::Command {
                command: command.to_owned(),
                class: error.class,
                desc: error.desc,
            }),
            Err(e) => {
                self.shared.inbox().pending.remove(&id);
                Err(e)
            }
        }
    }

    /// `send-key`: presses the keys together, then releases them.
    pub async fn send_key(
        &mut self,
        keys: &[KeyValue],
        hold_time_ms: Option<u32>,
    ) -> Result<(), QmpError> {
        let mut args = json!({ "keys": keys });
        if let Some(ms) = hold_time_ms {
            args["hold-time"] = json!(ms);
        }
        self.execute("send-key", Some(args)).await.map(drop)
    }

    /// `input-send-event`: key downs and ups exactly as given.
    pub async fn input_send_event(&mut self, events: &[InputEvent]) -> Result<(), QmpError> {
        self.execute("input-send-event", Some(json!({ "events": events })))
            .await
            .map(drop)
    }

    /// `system_powerdown`: presses the ACPI power button (the guest decides).
    pub async fn system_powerdown(&mut self) -> Result<(), QmpError> {
        self.execute("system_powerdown", None).await.map(drop)
    }

    /// `stop`: pauses the guest's CPUs; QEMU drains and flushes every
    /// drive before answering, so the image files are consistent while
    /// paused. The `STOP` event it sends is a halt until [`Qmp::cont`].
    pub async fn stop(&mut self) -> Result<(), QmpError> {
        self.execute("stop", None).await.map(drop)
    }

    /// `cont`: resumes a guest paused by [`Qmp::stop`], and forgets the
    /// pause as a halt (a deliberate pause is not the guest stopping).
    pub async fn cont(&mut self) -> Result<(), QmpError> {
        self.execute("cont", None).await?;
        self.shared.halt.send_if_modified(|h| {
            let paused = matches!(h, Some(VmHalt::Paused));
            if paused {
                *h = None;
            }
            paused
        });
        Ok(())
    }

    pub async fn query_status(&mut self) -> Result<StatusInfo, QmpError> {
        let v = self.execute("query-status", None).await?;
        serde_json::from_value(v.clone())
            .map_err(|_| QmpError::Protocol(format!("query-status returned {v}")))
    }

    /// `query-block`: every drive, its image file and its I/O status.
    pub async fn query_block(&mut self) -> Result<Vec<BlockInfo>, QmpError> {
        let v = self.execute("query-block", None).await?;
        serde_json::from_value(v.clone())
            .map_err(|_| QmpError::Protocol(format!("query-block returned {v}")))
    }

    /// `change-vnc-password`: the password a VNC client must give (QEMU
    /// uses the first 8 characters, as VNC's DES challenge does).
    pub async fn change_vnc_password(&mut self, password: &str) -> Result<(), QmpError> {
        self.execute("change-vnc-password", Some(json!({ "password": password })))
            .await
            .map(drop)
    }

    /// `quit`: QEMU exits at once. Its closing the socket before or after
    /// answering both count as success.
    pub async fn quit(&mut self) -> Result<(), QmpError> {
        match self.execute("quit", None).await {
            Ok(_) | Err(QmpError::Closed) => Ok(()),
            Err(QmpError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            Err(QmpError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `human-monitor-command`: an HMP command line, returning its output.
    pub async fn human_monitor_command(&mut self, command_line: &str) -> Result<String, QmpError> {
        let v = self
            .execute(
                "human-monitor-command",
                Some(json!({ "command-line": command_line })),
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// The events received so far, removed from the session.
    pub fn take_events(&mut self) -> Vec<QmpEvent> {
        std::mem::take(&mut self.shared.inbox().events)
    }

    /// Why the guest stopped running, as soon as QMP says so: `None` while
    /// it runs. The value is kept, so a watcher that subscribes late still
    /// sees a halt that came before.
    pub fn halts(&self) -> watch::Receiver<Option<VmHalt>> {
        self.shared.halt.subscribe()
    }

    /// Waits up to `timeout` for the event `name` (one already received
    /// counts); other events are kept. `Ok(None)` on timeout.
    pub async fn wait_event(
        &mut self,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<QmpEvent>, QmpError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the inbox is read, so an event that lands
            // in between still wakes us.
            let arrived = self.shared.event_arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            {
                let mut inbox = self.shared.inbox();
                if let Some(i) = inbox.events.iter().position(|e| e.event == name) {
                    return Ok(Some(inbox.events.remove(i)));
                }
                if let Some(ended) = &inbox.ended {
                    return Err(ended.to_error());
                }
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Ok(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_serialize_as_qapi_unions() {
        let keys = vec![KeyValue::qcode("ctrl"), KeyValue::Number(0x1e)];
        assert_eq!(
            serde_json::to_value(&keys).expect("serializes"),
            json!([{"type": "qcode", "data": "ctrl"}, {"type": "number", "data": 30}])
        );
        let ev = InputEvent::Key {
            down: true,
            key: KeyValue::qcode("shift"),
        };
        assert_eq!(
            serde_json::to_value(&ev).expect("serializes"),
            json!({"type": "key", "data": {"down": true, "key": {"type": "qcode", "data": "shift"}}})
        );
    }

    #[test]
    fn messages_are_told_apart() {
        let m: Message = serde_json::from_str(r#"{"return": {}, "id": 3}"#).expect("parses");
        assert!(matches!(m, Message::Return { id: Some(_), .. }));
        let m: Message = serde_json::from_str(
            r#"{"error": {"class": "GenericError", "desc": "no such key"}, "id": 4}"#,
        )
        .expect("parses");
        assert!(matches!(m, Message::Error { .. }));
        let m: Message = serde_json::from_str(
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#,
        )
        .expect("parses");
        assert!(matches!(m, Message::Event(QmpEvent { ref event, .. }) if event == "SHUTDOWN"));
        let m: Message = serde_json::from_str(
            r#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}}, "capabilities": ["oob"]}}"#,
        )
        .expect("parses");
        assert!(matches!(m, Message::Greeting { .. }));
    }

    /// A fake QEMU on a socket pair: an event before the greeting dropped,
    /// events interleaved with answers, an error with its desc, a stale
    /// answer skipped by id.
    #[tokio::test]
    async fn events_interleaved_with_answers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("qmp.sock");
        let listener = tokio::net::UnixListener::bind(&path).expect("binds");
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.expect("accepts");
            let (r, mut w) = s.into_split();
            let mut r = BufReader::new(r).lines();
            // As QEMU can: an event broadcast before this socket's greeting.
            w.write_all(
                b"{\"timestamp\": {}, \"event\": \"VNC_DISCONNECTED\", \"data\": {}}\r\n\
                  {\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n",
            )
            .await
            .expect("writes");
            let mut seen = Vec::new();
            while let Ok(Some(line)) = r.next_line().await {
                let req: Value = serde_json::from_str(&line).expect("json");
                seen.push(req.clone());
                let id = req["id"].clone();
                let reply = match req["execute"].as_str() {
                    Some("query-status") => format!(
                        "{{\"event\": \"STOP\", \"data\": {{}}, \"timestamp\": {{}}}}\r\n\
                         {{\"return\": {{}}, \"id\": 999}}\r\n\
                         {{\"return\": {{\"status\": \"paused\", \"running\": false}}, \"id\": {id}}}\r\n"
                    ),
                    Some("send-key") => format!(
                        "{{\"error\": {{\"class\": \"GenericError\", \"desc\": \"Invalid parameter 'nokey'\"}}, \"id\": {id}}}\r\n"
                    ),
                    _ => format!("{{\"return\": {{}}, \"id\": {id}}}\r\n"),
                };
                w.write_all(reply.as_bytes()).await.expect("writes");
                if req["execute"] == "quit" {
                    w.write_all(b"{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": false}}\r\n")
                        .await
                        .expect("writes");
                    break;
                }
            }
            seen
        });
        let mut qmp = Qmp::connect(&path, Duration::from_secs(5))
            .await
            .expect("connects");
        let status = qmp.query_status().await.expect("status");
        assert_eq!(
            status,
            StatusInfo {
                running: false,
                status: "paused".into()
            }
        );
        assert_eq!(
            qmp.take_events()
                .iter()
                .map(|e| e.event.as_str())
                .collect::<Vec<_>>(),
            ["STOP"]
        );
        let err = qmp
            .send_key(&[KeyValue::qcode("nokey")], Some(100))
            .await
            .expect_err("rejected");
        assert!(
            err.to_string().contains("Invalid parameter 'nokey'"),
            "{err}"
        );
        qmp.quit().await.expect("quits");
        let ev = qmp
            .wait_event("SHUTDOWN", Duration::from_secs(5))
            .await
            .expect("reads");
        assert_eq!(ev.map(|e| e.data["guest"].clone()), Some(json!(false)));
        let seen = server.await.expect("server");
        assert_eq!(seen[0]["execute"], "qmp_capabilities");
        assert_eq!(
            seen[2]["arguments"],
            json!({"keys": [{"type": "qcode", "data": "nokey"}], "hold-time": 100})
        );
    }

    /// QEMU stopping the guest on a full disk while no command is running:
    /// the halt is seen at once, the STOP after it does not hide it, and
    /// query-block maps the drive to its file.
    #[tokio::test]
    async fn a_halt_between_commands_is_seen_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("qmp.sock");
        let listener = tokio::net::UnixListener::bind(&path).expect("binds");
        let (go_tx, go_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.expect("accepts");
            let (r, mut w) = s.into_split();
            let mut r = BufReader::new(r).lines();
            w.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n")
                .await
                .expect("writes");
            let line = r.next_line().await.expect("reads").expect("a command");
            let req: Value = serde_json::from_str(&line).expect("json");
            let id = req["id"].clone();
            w.write_all(format!("{{\"return\": {{}}, \"id\": {id}}}\r\n").as_bytes())
                .await
                .expect("writes");
            // Unprompted, as QEMU does when a write fails.
            go_rx.await.expect("go");
            w.write_all(
                b"{\"timestamp\": {}, \"event\": \"BLOCK_IO_ERROR\", \"data\": {\"device\": \"virtio0\", \
                  \"node-name\": \"#block123\", \"reason\": \"No space left on device\", \
                  \"operation\": \"write\", \"action\": \"stop\", \"nospace\": true}}\r\n\
                  {\"timestamp\": {}, \"event\": \"STOP\"}\r\n",
            )
            .await
            .expect("writes");
            let line = r.next_line().await.expect("reads").expect("a command");
            let req: Value = serde_json::from_str(&line).expect("json");
            assert_eq!(req["execute"], "query-block");
            let id = req["id"].clone();
            w.write_all(
                format!(
                    "{{\"return\": [{{\"device\": \"virtio0\", \"io-status\": \"nospace\", \
                     \"inserted\": {{\"file\": \"/out/disk.qcow2\", \"node-name\": \"#block123\"}}}}, \
                     {{\"device\": \"ide1-cd0\", \"inserted\": {{\"file\": \"/cache/x.iso\"}}}}], \"id\": {id}}}\r\n"
                )
                .as_bytes(),
            )
            .await
            .expect("writes");
            // Keep the connection open until the client is done.
            let _ = r.next_line().await;
        });
        let mut qmp = Qmp::connect(&path, Duration::from_secs(5))
            .await
            .expect("connects");
        let mut halts = qmp.halts();
        assert_eq!(*halts.borrow(), None);
        go_tx.send(()).expect("go");
        let halt = tokio::time::timeout(Duration::from_secs(5), halts.wait_for(Option::is_some))
            .await
            .expect("the halt arrives without any command")
            .expect("watch open")
            .clone();
        assert_eq!(
            halt,
            Some(VmHalt::IoError {
                device: "virtio0".into(),
                node_name: Some("#block123".into()),
                operation: "write".into(),
                reason: Some("No space left on device".into()),
                nospace: true,
            })
        );
        let blocks = qmp.query_block().await.expect("query-block");
        assert_eq!(blocks[0].io_status.as_deref(), Some("nospace"));
        assert_eq!(
            blocks[0].inserted.as_ref().map(|i| i.file.as_str()),
            Some("/out/disk.qcow2")
        );
        assert_eq!(blocks[1].io_status, None);
        // The STOP came after and was queued, but the watch still names the cause.
        assert!(matches!(
            *qmp.halts().borrow(),
            Some(VmHalt::IoError { .. })
        ));
        let events: Vec<String> = qmp.take_events().into_iter().map(|e| e.event).collect();
        assert_eq!(events, ["BLOCK_IO_ERROR", "STOP"]);
        drop(qmp);
        server.await.expect("server");
    }

    #[test]
    fn which_events_are_halts() {
        let ev = |event: &str, data: Value| QmpEvent {
            event: event.into(),
            data,
        };
        // A reported (not stopping) error on a disk with room is not a halt.
        assert_eq!(
            VmHalt::from_event(&ev(
                "BLOCK_IO_ERROR",
                json!({"device": "ide0-hd0", "operation": "read", "action": "report", "nospace": false})
            )),
            None
        );
        assert!(matches!(
            VmHalt::from_event(&ev(
                "BLOCK_IO_ERROR",
                json!({"device": "", "node-name": "n1", "operation": "write", "action": "report", "nospace": true})
            )),
            Some(VmHalt::IoError { nospace: true, .. })
        ));
        assert_eq!(
            VmHalt::from_event(&ev("GUEST_PANICKED", json!({"action": "pause"}))),
            Some(VmHalt::Panicked {
                action: "pause".into()
            })
        );
        assert_eq!(
            VmHalt::from_event(&ev(
                "SHUTDOWN",
                json!({"guest": true, "reason": "guest-shutdown"})
            )),
            Some(VmHalt::Shutdown {
                guest: true,
                reason: "guest-shutdown".into()
            })
        );
        assert_eq!(
            VmHalt::from_event(&ev("STOP", Value::Null)),
            Some(VmHalt::Paused)
        );
        assert_eq!(
            VmHalt::from_event(&ev("RESET", json!({"guest": true}))),
            None
        );
        assert_eq!(VmHalt::from_event(&ev("POWERDOWN", Value::Null)), None);
    }
}
