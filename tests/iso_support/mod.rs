//! A small HTTP/1.1 server for the ISO tests, on 127.0.0.1 port 0, on
//! plain threads so it works whatever runtime (or process) the client is
//! in. Each path has a behaviour: serve with Range, drop mid-file, ignore
//! Range, redirect, answer a status, stall, or trickle slowly.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Mode {
    /// Serve the body, honouring `Range: bytes=N-`.
    Normal,
    /// The first `times` responses stop after `bytes` body bytes and close
    /// the connection (Content-Length announces the whole file).
    DropAfter {
        bytes: usize,
        times: usize,
    },
    /// Always answer 200 with the whole body, even to a Range request.
    IgnoreRange,
    /// Like `DropAfter` once, then ignore Range.
    DropThenIgnoreRange {
        bytes: usize,
    },
    Redirect(String),
    Status(u16),
    /// Send the headers and `bytes` body bytes, then go silent for `for_`.
    Stall {
        bytes: usize,
        for_: Duration,
    },
    /// Send `chunk` bytes every `every`, honouring Range.
    Slow {
        chunk: usize,
        every: Duration,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub path: String,
    pub range: Option<String>,
}

struct Route {
    body: Arc<Vec<u8>>,
    mode: Mode,
    served: usize,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    log: Vec<Request>,
}

pub struct TestServer {
    port: u16,
    state: Arc<Mutex<State>>,
    body_bytes_sent: Arc<AtomicU64>,
}

impl TestServer {
    pub fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let sent = Arc::new(AtomicU64::new(0));
        let (st, se) = (state.clone(), sent.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (st, se) = (st.clone(), se.clone());
                thread::spawn(move || {
                    let _ = handle(conn, &st, &se);
                });
            }
        });
        TestServer {
            port,
            state,
            body_bytes_sent: sent,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn route(&self, path: &str, body: Vec<u8>, mode: Mode) {
        self.lock().routes.insert(
            path.to_owned(),
            Route {
                body: Arc::new(body),
                mode,
                served: 0,
            },
        );
    }

    /// Requests received for `path`, in order.
    pub fn requests(&self, path: &str) -> Vec<Request> {
        self.lock()
            .log
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    pub fn body_bytes_sent(&self) -> u64 {
        self.body_bytes_sent.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn handle(stream: TcpStream, state: &Mutex<State>, sent: &AtomicU64) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_owned());
        }
    }
    let (body, mode, nth) = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.log.push(Request {
            path: path.clone(),
            range: range.clone(),
        });
        match st.routes.get_mut(&path) {
            Some(r) => {
                r.served += 1;
                (r.body.clone(), r.mode.clone(), r.served)
            }
            None => (Arc::new(Vec::new()), Mode::Status(404), 1),
        }
    };
    let mut out = stream;
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
    let honour_range = !matches!(mode, Mode::IgnoreRange | Mode::DropThenIgnoreRange { .. });
    match &mode {
        Mode::Redirect(to) => {
            return write!(
                out,
                "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
        Mode::Status(code) => {
            let msg = format!("status {code}\n");
            return write!(
                out,
                "HTTP/1.1 {code} Test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
                msg.len()
            );
        }
        _ => {}
    }
    let (status, from) = match start {
        Some(s) if honour_range && s >= body.len() => {
            return write!(
                out,
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                body.len()
            );
        }
        Some(s) if honour_range => (206, s),
        _ => (200, 0),
    };
    let slice = &body[from..];
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n",
        if status == 206 {
            "Partial Content"
        } else {
            "OK"
        },
        slice.len()
    );
    if status == 206 {
        head.push_str(&format!(
            "Content-Range: bytes {from}-{}/{}\r\n",
            body.len() - 1,
            body.len()
        ));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    let send = |out: &mut TcpStream, data: &[u8]| -> std::io::Result<()> {
        out.write_all(data)?;
        sent.fetch_add(data.len() as u64, Ordering::SeqCst);
        Ok(())
    };
    match mode {
        Mode::DropAfter { bytes, times } if nth <= times => {
            send(&mut out, &slice[..bytes.min(slice.len())])?;
            out.flush()?;
            // Closing without the rest: the client sees a short body.
            return Ok(());
        }
        Mode::DropThenIgnoreRange { bytes } if nth == 1 => {
            send(&mut out, &slice[..bytes.min(slice.len())])?;
            return Ok(());
        }
        Mode::Stall { bytes, for_ } => {
            send(&mut out, &slice[..bytes.min(slice.len())])?;
            out.flush()?;
            thread::sleep(for_);
            return Ok(());
        }
        Mode::Slow { chunk, every } => {
            for piece in slice.chunks(chunk.max(1)) {
                send(&mut out, piece)?;
                out.flush()?;
                thread::sleep(every);
            }
        }
        _ => send(&mut out, slice)?,
    }
    out.flush()
}

/// Deterministic, non-repeating-looking test data.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
