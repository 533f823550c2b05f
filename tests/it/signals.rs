//! Ctrl-C and SIGTERM through the real binary, during a download the test
//! server keeps slow: what the summary says, and how kiln exits.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

use crate::iso_support::{Mode, TestServer, data};

/// Generous: the machine is shared and the binary is a debug build.
const EVENT_BOUND: Duration = Duration::from_secs(60);

pub(crate) struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    /// Waits for a stderr line containing `text`.
    pub(crate) fn wait_for(&mut self, text: &str) {
        loop {
            match self.lines.recv_timeout(EVENT_BOUND) {
                Ok(line) => {
                    let hit = line.contains(text);
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(_) => panic!("no line with `{text}`:\n{}", self.seen.join("\n")),
            }
        }
    }

    pub(crate) fn signal(&self, sig: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid")).expect("pid");
        kill_process(pid, sig).expect("kill");
    }

    /// Waits for the exit (the reader thread ends at EOF) and returns the
    /// exit code and all of stderr.
    pub(crate) fn finish(mut self) -> (Option<i32>, String) {
        loop {
            match self.lines.recv_timeout(EVENT_BOUND) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("kiln did not exit:\n{}", self.seen.join("\n"));
                }
            }
        }
        let status = self.child.wait().expect("wait");
        (status.code(), self.seen.join("\n"))
    }
}

/// Starts kiln with `args` in `dir`, reading its stderr line by line.
pub(crate) fn start(dir: &Path, cache: &Path, args: &[&str]) -> Running {
    let mut child = Command::new(crate::support::kiln_bin())
        .args(args)
        .current_dir(dir)
        .env("KILN_CACHE_DIR", cache)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kiln starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Running {
        child,
        lines,
        seen: Vec::new(),
    }
}

/// A build whose ISO download trickles (1 KiB every 50 ms of 10 MiB): the
/// fetch step is still running whenever the test signals.
fn slow_build(work: &Path) -> TestServer {
    let server = TestServer::start();
    server.route(
        "/slow.iso",
        data(10 << 20, 3),
        Mode::Slow {
            chunk: 1024,
            every: Duration::from_millis(50),
        },
    );
    let text = format!(
        r#"{{"builders": [{{"type": "qemu", "iso_url": "{}", "iso_checksum": "sha256:{}", "ssh_username": "root"}}]}}"#,
        server.url("/slow.iso"),
        "a".repeat(64)
    );
    std::fs::write(work.join("t.json"), text).expect("write");
    server
}

fn interrupted_during_download_says_so(sig: Signal, name: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let _server = slow_build(work.path());
    let mut kiln = start(work.path(), cache.path(), &["build", "t.json"]);
    kiln.wait_for("==> Fetching the ISO");
    kiln.signal(sig);
    let (code, text) = kiln.finish();
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "--> qemu: interrupted by {name} during \"Fetching the ISO\""
        )),
        "{text}"
    );
    assert!(!text.contains("interrupted: "), "{text}");
}

#[test]
fn sigterm_says_what_it_interrupted() {
    interrupted_during_download_says_so(Signal::TERM, "SIGTERM");
}

#[test]
fn sigint_says_what_it_interrupted() {
    interrupted_during_download_says_so(Signal::INT, "SIGINT");
}

/// Two signals at once (both pending while kiln is stopped, so both are
/// delivered together): kiln exits at once with 130, as documented.
#[test]
fn a_second_signal_exits_at_once_with_130() {
    let work = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let _server = slow_build(work.path());
    let mut kiln = start(work.path(), cache.path(), &["build", "t.json"]);
    kiln.wait_for("==> Fetching the ISO");
    kiln.signal(Signal::STOP);
    kiln.signal(Signal::INT);
    kiln.signal(Signal::TERM);
    kiln.signal(Signal::CONT);
    let (code, text) = kiln.finish();
    assert_eq!(code, Some(130), "{text}");
    assert!(text.contains("exiting at once"), "{text}");
}

/// Interrupted while waiting for another kiln's download lock: kiln used
/// to print its summary and then hang until the lock was released.
#[test]
fn an_interrupt_while_waiting_for_a_lock_exits() {
    let work = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let _server = slow_build(work.path());
    let locks = cache.path().join("locks");
    std::fs::create_dir_all(&locks).expect("mkdir");
    let lock = std::fs::File::create(locks.join(format!("sha256-{}.lock", "a".repeat(64))))
        .expect("lock file");
    lock.lock().expect("hold the lock like another kiln");
    let mut kiln = start(work.path(), cache.path(), &["build", "t.json"]);
    kiln.wait_for("waiting for another kiln");
    kiln.signal(Signal::INT);
    let (code, text) = kiln.finish();
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("interrupted by SIGINT"), "{text}");
    drop(lock);
}

/// Scratch directories of a kiln that is gone (SIGKILL, double Ctrl-C) are
/// swept by the next build; a live process's are kept, and so is anything
/// not named as kiln's.
#[test]
fn a_build_sweeps_scratch_directories_whose_owner_is_gone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    // Pids are below pid_max: no process can have this one.
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .expect("pid_max")
        .trim()
        .parse()
        .expect("a number");
    let gone = tmp.path().join(format!("kiln-{pid_max}-vm-AbC123"));
    let live = tmp
        .path()
        .join(format!("kiln-{}-vm-XyZ789", std::process::id()));
    let legacy = tmp.path().join("kiln-Qw3rty");
    for d in [&gone, &live, &legacy] {
        std::fs::create_dir(d).expect("mkdir");
        std::fs::write(d.join("qmp.sock"), b"").expect("write");
    }
    std::fs::write(
        work.path().join("t.json"),
        r#"{"builders": [{"type": "qemu", "iso_url": "http://127.0.0.1:9/x.iso", "iso_checksum": "none", "ssh_username": "root"}]}"#,
    )
    .expect("write");
    let out = Command::new(crate::support::kiln_bin())
        .args(["build", "-offline", "t.json"])
        .current_dir(work.path())
        .env("TMPDIR", tmp.path())
        .env("KILN_CACHE_DIR", cache.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("kiln runs");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!gone.exists(), "{text}");
    assert!(live.exists() && legacy.exists(), "{text}");
    assert!(
        text.contains("removed 1 temporary directory left by kiln processes"),
        "{text}"
    );
}
