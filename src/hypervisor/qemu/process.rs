//! Owning a `qemu-system` process: nothing kiln starts may outlive it.
//!
//! The VM gets its own process group (a terminal's Ctrl-C reaches kiln, which
//! then shuts the VM down in order, rather than both at once), dies with
//! SIGKILL if kiln dies (`PR_SET_PDEATHSIG`), is stopped with SIGTERM, a
//! short grace and SIGKILL, and is killed when its handle is dropped.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use super::command::{CommandError, QemuCommand};
use super::qmp::{Qmp, QmpError};
use crate::host::command_line::display_command;

/// How many lines of QEMU's stderr are kept for error messages.
const STDERR_TAIL_LINES: usize = 40;
/// How long QEMU gets to exit after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(3);
/// How often an exit or the QMP socket is polled for.
const POLL: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("could not build the QEMU command line")]
    Command(#[from] CommandError),
    #[error("could not start `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("could not check on QEMU (pid {pid})")]
    Wait {
        pid: u32,
        #[source]
        source: io::Error,
    },
    #[error("could not signal QEMU (pid {pid})")]
    Signal {
        pid: u32,
        #[source]
        source: io::Error,
    },
    #[error("QEMU exited ({status}) before {waiting_for}{}", stderr_suffix(.stderr))]
    Exited {
        status: ExitStatus,
        waiting_for: &'static str,
        stderr: Vec<String>,
    },
    #[error("QEMU did not open its QMP socket {} within {timeout:?}", .path.display())]
    QmpTimeout { path: PathBuf, timeout: Duration },
    #[error("QEMU (pid {pid}) did not exit after SIGKILL")]
    Unkillable { pid: u32 },
    #[error(transparent)]
    Qmp(#[from] QmpError),
}

fn stderr_suffix(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; its last output:\n{}", lines.join("\n"))
    }
}

/// A running `qemu-system` that kiln owns.
#[derive(Debug)]
pub struct QemuProcess {
    child: Child,
    pid: u32,
    command: String,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// Disconnects when the stderr reader has seen EOF.
    stderr_done: Option<mpsc::Receiver<()>>,
    status: Option<ExitStatus>,
}

impl QemuProcess {
    /// Starts the VM `cmd` describes.
    pub fn spawn(cmd: &QemuCommand) -> Result<Self, ProcessError> {
        let args = cmd.args()?;
        Self::spawn_args(&cmd.binary, &args)
    }

    /// Starts `program args` under the same ownership rules (for command
    /// lines kiln builds by hand, such as the accelerator probe).
    pub fn spawn_args(program: &str, args: &[String]) -> Result<Self, ProcessError> {
        let command = display_command(
            program.as_ref(),
            &args.iter().map(Into::into).collect::<Vec<_>>(),
        );
        let mut c = Command::new(program);
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let kiln = rustix::process::getpid();
        // SAFETY: the closure runs in the child between fork and exec, where
        // only async-signal-safe work is allowed: it makes two raw syscalls
        // (prctl, getppid) through rustix and allocates nothing, including on
        // its error path.
        #[allow(unsafe_code)]
        unsafe {
            c.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                // kiln may have died between fork and prctl; then no signal
                // would ever come, so give up now.
                if rustix::process::getppid() != Some(kiln) {
                    return Err(rustix::io::Errno::SRCH.into());
                }
                Ok(())
            });
        }
        let mut child = spawn_on_lasting_thread(c).map_err(|source| ProcessError::Spawn {
            command: command.clone(),
            source,
        })?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let mut stderr_done = None;
        if let Some(stderr) = child.stderr.take() {
            let tail = stderr_tail.clone();
            let (done_tx, done_rx) = mpsc::channel::<()>();
            // The thread ends at EOF, when QEMU exits; if it cannot be
            // started, stderr is merely not kept.
            let started = std::thread::Builder::new()
                .name("qemu-stderr".into())
                .spawn(move || {
                    keep_tail(stderr, &tail);
                    drop(done_tx);
                });
            stderr_done = started.ok().map(|_| done_rx);
        }
        Ok(Self {
            pid: child.id(),
            child,
            command,
            stderr_tail,
            stderr_done,
            status: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The command line, for messages.
    pub fn command_line(&self) -> &str {
        &self.command
    }

    /// The last lines QEMU wrote to stderr.
    pub fn stderr_tail(&self) -> Vec<String> {
        lock(&self.stderr_tail).iter().cloned().collect()
    }

    /// The exit status, if QEMU has exited (it is reaped then).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, ProcessError> {
        if self.status.is_none() {
            self.status = self.child.try_wait().map_err(|source| ProcessError::Wait {
                pid: self.pid,
                source,
            })?;
        }
        Ok(self.status)
    }

    /// Waits up to `timeout` for QEMU to exit on its own; `None` if it is
    /// still running.
    pub async fn wait_exit(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<ExitStatus>, ProcessError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops QEMU: SIGTERM to its process group, a short grace, then SIGKILL.
    pub async fn kill(&mut self) -> Result<ExitStatus, ProcessError> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        self.signal_group(Signal::TERM)?;
        if let Some(status) = self.wait_exit(TERM_GRACE).await? {
            return Ok(status);
        }
        self.signal_group(Signal::KILL)?;
        self.wait_exit(Duration::from_secs(5))
            .await?
            .ok_or(ProcessError::Unkillable { pid: self.pid })
    }

    /// Connects to QEMU's QMP socket, retrying until QEMU has created it;
    /// fails at once, with QEMU's stderr, if QEMU exits first.
    pub async fn connect_qmp(
        &mut self,
        socket: &Path,
        timeout: Duration,
    ) -> Result<Qmp, ProcessError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Err(self.exited(status, "its QMP socket was ready"));
            }
            match Qmp::try_connect(socket).await {
                Ok(Some(qmp)) => return Ok(qmp),
                Ok(None) => {}
                // QEMU opens the socket before it checks its disks, so a
                // QEMU that is exiting can accept and then drop us: its own
                // error says more than "connection reset".
                Err(e) => {
                    return Err(match self.wait_exit(Duration::from_secs(1)).await? {
                        Some(status) => self.exited(status, "its QMP socket was ready"),
                        None => e.into(),
                    });
                }
            }
            if Instant::now() >= deadline {
                return Err(ProcessError::QmpTimeout {
                    path: socket.to_owned(),
                    timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The error for QEMU having exited while kiln waited for `waiting_for`.
    pub fn exited(&self, status: ExitStatus, waiting_for: &'static str) -> ProcessError {
        ProcessError::Exited {
            status,
            waiting_for,
            stderr: self.final_stderr_tail(),
        }
    }

    /// The last lines of stderr once QEMU has exited, waiting (briefly) for
    /// the reader to reach EOF so QEMU's last words are not missed.
    pub fn final_stderr_tail(&self) -> Vec<String> {
        if let Some(done) = &self.stderr_done {
            let _ = done.recv_timeout(Duration::from_secs(1));
        }
        self.stderr_tail()
    }

    fn signal_group(&self, signal: Signal) -> Result<(), ProcessError> {
        let Some(pgid) = i32::try_from(self.pid).ok().and_then(Pid::from_raw) else {
            return Ok(());
        };
        match rustix::process::kill_process_group(pgid, signal) {
            // Gone already: the next wait reaps it.
            Err(rustix::io::Errno::SRCH) => Ok(()),
            r => r.map_err(|e| ProcessError::Signal {
                pid: self.pid,
                source: e.into(),
            }),
        }
    }
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        if matches!(self.try_wait(), Ok(Some(_))) {
            return;
        }
        // No grace here: a dropped handle means the build is already failing
        // or unwinding, and Drop cannot wait asynchronously. SIGKILL is quick
        // to act, so the blocking reap is short.
        let _ = self.signal_group(Signal::KILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keep_tail(stderr: impl io::Read, tail: &Mutex<VecDeque<String>>) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                let mut t = lock(tail);
                if t.len() == STDERR_TAIL_LINES {
                    t.pop_front();
                }
                t.push_back(text);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves whole lines behind; keep them.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Forks `cmd` from a thread that lives as long as kiln.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits,
/// not the process: spawning from a tokio blocking-pool thread (retired
/// after 10 s idle) would kill the VM mid-build. One dedicated thread that
/// never returns makes "parent died" mean "kiln died".
fn spawn_on_lasting_thread(cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Option<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("kiln-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .ok()
            .map(|_| tx)
    });
    let Some(spawner) = spawner else {
        return Err(io::Error::other(
            "could not start kiln's process-spawning thread",
        ));
    };
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("kiln's process-spawning thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("kiln's process-spawning thread is gone"))?
}
