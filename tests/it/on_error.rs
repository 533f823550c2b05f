//! `-on-error=ask` driven the way a person drives it: the real binary on a
//! pseudo-terminal (util-linux `script` makes one), answers typed into it
//! after the question appears. No VM boots: the build fails before QEMU
//! could start, and the step that is retried is the output directory one.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::support::{kiln_bin, unbootable_qemu_template};

/// Packer's question (kiln asks it word for word).
const QUESTION: &str = "[c] Clean up and exit, [a] abort without cleanup, or [r] retry step (build may fail even if retry succeeds)?";

/// Everything the terminal showed so far, fed by a reader thread.
struct Screen {
    chunks: Receiver<Vec<u8>>,
    text: String,
}

impl Screen {
    /// Waits (generously: the machine is shared) until `needle` has been
    /// shown `times` times, failing with the whole screen if it never is.
    fn wait_for(&mut self, needle: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.text.matches(needle).count() < times {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "`{needle}` not shown {times} time(s) in 120 s:\n{}",
                        self.text
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "kiln ended before `{needle}` was shown {times} time(s):\n{}",
                        self.text
                    )
                }
            }
        }
    }

    /// Reads until the terminal closes (kiln and `script` ended).
    fn drain(&mut self) {
        while let Ok(chunk) = self.chunks.recv_timeout(Duration::from_secs(120)) {
            self.text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// `kiln ARGS` in `dir` with a terminal for stdin, stdout and stderr.
fn on_a_terminal(dir: &Path, args: &[&str]) -> (Child, Screen) {
    let command = std::iter::once(kiln_bin().display().to_string())
        .chain(args.iter().map(|a| (*a).to_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new("script")
        .args(["-q", "-f", "-e", "-c", &command, "/dev/null"])
        .current_dir(dir)
        .env("KILN_CACHE_DIR", dir.join("cache"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("script (util-linux) runs");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    (
        child,
        Screen {
            chunks: rx,
            text: String::new(),
        },
    )
}

fn type_line(child: &mut Child, line: &str) {
    let stdin = child.stdin.as_mut().expect("stdin");
    stdin
        .write_all(format!("{line}\n").as_bytes())
        .and_then(|()| stdin.flush())
        .expect("typing into the terminal");
}

#[test]
fn ask_retries_the_failed_step_then_aborts_keeping_the_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    unbootable_qemu_template(dir.path(), "ask", serde_json::json!({}));
    // The first attempt fails on this directory (no -force); the user
    // removes it and retries the step.
    let output = dir.path().join("output-ask");
    std::fs::create_dir(&output).expect("mkdir");

    let (mut child, mut screen) = on_a_terminal(dir.path(), &["build", "-on-error=ask", "t.json"]);
    screen.wait_for(QUESTION, 1);
    assert!(
        screen.text.contains("already exists"),
        "the question follows the step's error:\n{}",
        screen.text
    );
    std::fs::remove_dir(&output).expect("the user removes the directory");
    type_line(&mut child, "r");

    // The retried step succeeds, the disk is made, QEMU cannot start: asked again.
    screen.wait_for(QUESTION, 2);
    assert!(
        screen.text.contains("Creating the disk: done"),
        "the build went on after the retry:\n{}",
        screen.text
    );
    type_line(&mut child, "a");
    screen.drain();

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "kiln did not exit:\n{}",
            screen.text
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1), "{}", screen.text);
    assert!(screen.text.contains("FAILED"), "{}", screen.text);
    let kept: Vec<_> = std::fs::read_dir(&output)
        .expect("abort keeps the output directory the retry made")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(!kept.is_empty(), "the disk is kept:\n{}", screen.text);
}
