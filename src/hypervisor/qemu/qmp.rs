//! A small QMP client: the QEMU Machine Protocol over a Unix socket.
//!
//! Hand-written with serde types for the few commands kiln uses (the `qapi`
//! crates cost ~30 s of compile for these). QMP is line-delimited JSON: a
//! greeting, then one response per command in order, with asynchronous
//! events (`SHUTDOWN`, `POWERDOWN`, …) interleaved; events are kept for
//! [`Qmp::take_events`] and [`Qmp::wait_event`].

use std::io;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

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
    /// QEMU's run state: `running`, `paused`, `shutdown`, `prelaunch`, …
    pub status: String,
}

/// An asynchronous QMP event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QmpEvent {
    pub event: String,
    #[serde(default)]
    pub data: Value,
}

#[derive(Deserialize)]
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

/// A QMP session in command mode.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
    events: Vec<QmpEvent>,
    timeout: Duration,
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
        let mut qmp = Self {
            reader: BufReader::new(r),
            writer: w,
            next_id: 0,
            events: Vec::new(),
            timeout: COMMAND_TIMEOUT,
        };
        let greeting = tokio::time::timeout(COMMAND_TIMEOUT, qmp.read_message())
            .await
            .map_err(|_| QmpError::Timeout {
                command: "(greeting)".into(),
                timeout: COMMAND_TIMEOUT,
            })??;
        if !matches!(greeting, Message::Greeting { .. }) {
            return Err(QmpError::Protocol("expected the QMP greeting".into()));
        }
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    async fn read_message(&mut self) -> Result<Message, QmpError> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).await? == 0 {
                return Err(QmpError::Closed);
            }
            if !line.trim().is_empty() {
                break;
            }
        }
        serde_json::from_str(&line).map_err(|_| QmpError::Protocol(line.trim().to_owned()))
    }

    /// Runs one command and returns its `return` value. Events that arrive
    /// before the answer are kept.
    ///
    /// Not cancellation-safe: if the future is dropped mid-way, a later
    /// command skips the stale answer by its id, but a half-read line would
    /// be lost. Drop the session after a timeout.
    pub async fn execute(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, QmpError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.execute_inner(command, arguments))
            .await
            .map_err(|_| QmpError::Timeout {
                command: command.to_owned(),
                timeout,
            })?
    }

    async fn execute_inner(
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
        self.writer.write_all(&bytes).await?;
        loop {
            match self.read_message().await? {
                Message::Event(e) => self.events.push(e),
                Message::Return { ret, id: got } if got == Some(json!(id)) => return Ok(ret),
                Message::Error { error, id: got } if got == Some(json!(id)) => {
                    return Err(QmpError::Command {
                        command: command.to_owned(),
                        class: error.class,
                        desc: error.desc,
                    });
                }
                // An answer to an earlier, abandoned command.
                Message::Return { .. } | Message::Error { .. } => {}
                Message::Greeting { .. } => {
                    return Err(QmpError::Protocol("a second greeting".into()));
                }
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

    pub async fn query_status(&mut self) -> Result<StatusInfo, QmpError> {
        let v = self.execute("query-status", None).await?;
        serde_json::from_value(v.clone())
            .map_err(|_| QmpError::Protocol(format!("query-status returned {v}")))
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
        std::mem::take(&mut self.events)
    }

    /// Waits up to `timeout` for the event `name` (one already received
    /// counts); other events are kept. `Ok(None)` on timeout.
    pub async fn wait_event(
        &mut self,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<QmpEvent>, QmpError> {
        if let Some(i) = self.events.iter().position(|e| e.event == name) {
            return Ok(Some(self.events.remove(i)));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.read_message()).await {
                Err(_) => return Ok(None),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(Message::Event(e))) if e.event == name => return Ok(Some(e)),
                Ok(Ok(Message::Event(e))) => self.events.push(e),
                Ok(Ok(_)) => {}
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

    /// A fake QEMU on a socket pair: events interleaved with answers, an
    /// error with its desc, a stale answer skipped by id.
    #[tokio::test]
    async fn events_interleaved_with_answers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("qmp.sock");
        let listener = tokio::net::UnixListener::bind(&path).expect("binds");
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.expect("accepts");
            let (r, mut w) = s.into_split();
            let mut r = BufReader::new(r).lines();
            w.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n")
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
}
