//! A software TPM for the VM (`vtpm`): `swtpm` serving TPM 2.0 on a Unix
//! socket in the build's private runtime directory. It runs under the same
//! ownership rules as QEMU (its own process group, killed if kiln dies,
//! killed when dropped), and `--terminate` ends it when QEMU disconnects.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::process::{ProcessError, QemuProcess};

/// How long swtpm gets to create its socket: it does so at once, but a
/// loaded machine can be slow to schedule it.
pub const SOCKET_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum SwtpmError {
    #[error(
        "vtpm needs swtpm, which is not installed (on Debian: apt-get install swtpm swtpm-tools)"
    )]
    NotInstalled,
    #[error("could not start swtpm")]
    Spawn(#[source] ProcessError),
    #[error("could not create swtpm's state directory {}", .path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("swtpm did not open its socket within {timeout:?}{stderr}")]
    NoSocket { timeout: Duration, stderr: String },
}

pub struct Swtpm {
    process: QemuProcess,
    socket: PathBuf,
}

/// swtpm's command line: TPM 2.0, state in `dir/tpm`, control socket
/// `dir/swtpm.sock`.
pub fn args(dir: &Path) -> Vec<String> {
    vec![
        "socket".into(),
        "--tpm2".into(),
        "--tpmstate".into(),
        format!("dir={}", dir.join("tpm").display()),
        "--ctrl".into(),
        format!("type=unixio,path={}", socket_path(dir).display()),
        "--terminate".into(),
    ]
}

pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("swtpm.sock")
}

impl Swtpm {
    /// Starts swtpm in `dir` (a private directory: the socket gives the
    /// TPM to whoever connects) and waits for its socket.
    pub async fn start(dir: &Path, timeout: Duration) -> Result<Self, SwtpmError> {
        Self::start_program("swtpm", dir, timeout).await
    }

    async fn start_program(
        program: &str,
        dir: &Path,
        timeout: Duration,
    ) -> Result<Self, SwtpmError> {
        let state = dir.join("tpm");
        std::fs::create_dir_all(&state).map_err(|source| SwtpmError::StateDir {
            path: state.clone(),
            source,
        })?;
        let mut process = QemuProcess::spawn_args(program, &args(dir)).map_err(|e| match e {
            ProcessError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                SwtpmError::NotInstalled
            }
            other => SwtpmError::Spawn(other),
        })?;
        let socket = socket_path(dir);
        let started = Instant::now();
        // swtpm gives no other signal that it listens: the socket appearing
        // is the event, checked every 20 ms up to the bound.
        while !socket.exists() {
            let exited = matches!(process.try_wait(), Ok(Some(_)));
            if exited || started.elapsed() > timeout {
                let tail = process.final_stderr_tail();
                let stderr = if tail.is_empty() {
                    String::new()
                } else {
                    format!("; swtpm said:\n{}", tail.join("\n"))
                };
                return Err(SwtpmError::NoSocket { timeout, stderr });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self { process, socket })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Stops swtpm (SIGTERM, then SIGKILL), if QEMU's exit has not already.
    pub async fn stop(mut self) -> Result<(), ProcessError> {
        self.process.kill().await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn swtpm_serves_its_socket_and_stops() {
        // scripts/bootstrap installs it: a skip here would pass unseen.
        assert!(
            which("swtpm").is_some(),
            "swtpm is not installed: run scripts/bootstrap"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let tpm = Swtpm::start(dir.path(), SOCKET_TIMEOUT)
            .await
            .expect("swtpm starts");
        assert_eq!(tpm.socket(), dir.path().join("swtpm.sock"));
        assert!(tpm.socket().exists());
        let pid = tpm.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        tpm.stop().await.expect("stops");
        // Reaped by stop(): no zombie, no process.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[tokio::test]
    async fn a_missing_swtpm_says_how_to_install_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = Swtpm::start_program("kiln-no-such-swtpm", dir.path(), SOCKET_TIMEOUT)
            .await
            .err()
            .expect("refused");
        assert!(matches!(e, SwtpmError::NotInstalled), "{e:?}");
        assert!(e.to_string().contains("apt-get install swtpm"), "{e}");
    }

    #[tokio::test]
    async fn an_swtpm_that_exits_at_once_is_reported_with_its_stderr() {
        let dir = tempfile::tempdir().expect("tempdir");
        // `false` exits at once without a socket.
        let e = Swtpm::start_program("false", dir.path(), SOCKET_TIMEOUT)
            .await
            .err()
            .expect("refused");
        assert!(matches!(e, SwtpmError::NoSocket { .. }), "{e:?}");
    }

    fn which(program: &str) -> Option<PathBuf> {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(program))
                .find(|f| f.is_file())
        })
    }
}
