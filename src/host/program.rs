//! Running a short program to completion with its output captured (stdin
//! closed): how the drivers call `qemu-img` and `VBoxManage`, and how the
//! async steps ask a program for its version or convert a disk, so each
//! names the command line and reports stderr the same way.

use std::ffi::{OsStr, OsString};
use std::process::{Command, ExitStatus, Stdio};

use super::command_line::display_command;

/// What a program left when it exited.
#[derive(Debug)]
pub struct Captured {
    /// The command line as a shell would take it, for messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// Its stderr as text, trimmed (what an error message quotes).
    pub stderr: String,
}

/// The program could not be started at all.
#[derive(Debug, thiserror::Error)]
#[error("could not run `{command}`")]
pub struct SpawnError {
    pub command: String,
    #[source]
    pub source: std::io::Error,
}

/// Runs `program args…` and waits for it; both outputs are buffered, so
/// use it for programs whose output is small.
pub fn run_captured(program: &OsStr, args: &[OsString]) -> Result<Captured, SpawnError> {
    let command = display_command(program, args);
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output();
    captured(command, output)
}

/// [`run_captured`] for async code: the program is killed if the future
/// is dropped (a cancelled build does not leave it running).
pub async fn run_captured_async(
    program: &OsStr,
    args: &[OsString],
) -> Result<Captured, SpawnError> {
    let command = display_command(program, args);
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await;
    captured(command, output)
}

fn captured(
    command: String,
    output: std::io::Result<std::process::Output>,
) -> Result<Captured, SpawnError> {
    match output {
        Ok(out) => Ok(Captured {
            command,
            status: out.status,
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }),
        Err(source) => Err(SpawnError { command, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_status_stdout_and_trimmed_stderr() {
        let args: Vec<OsString> = ["-c", "echo out; echo ' err ' >&2; exit 3"]
            .iter()
            .map(OsString::from)
            .collect();
        let out = run_captured(OsStr::new("sh"), &args).expect("sh runs");
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, "err");
        assert_eq!(
            out.command,
            "sh -c 'echo out; echo '\\'' err '\\'' >&2; exit 3'"
        );
    }

    #[tokio::test]
    async fn the_async_run_captures_the_same() {
        let args: Vec<OsString> = ["-c", "echo out; echo ' err ' >&2; exit 3"]
            .iter()
            .map(OsString::from)
            .collect();
        let out = run_captured_async(OsStr::new("sh"), &args)
            .await
            .expect("sh runs");
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, "err");
        let err = run_captured_async(OsStr::new("/nonexistent/kiln-no-such"), &[])
            .await
            .expect_err("no such program");
        assert_eq!(err.source.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn a_missing_program_names_the_command() {
        let err = run_captured(OsStr::new("/nonexistent/kiln-no-such"), &["x".into()])
            .expect_err("no such program");
        assert_eq!(
            err.to_string(),
            "could not run `/nonexistent/kiln-no-such x`"
        );
        assert_eq!(err.source.kind(), std::io::ErrorKind::NotFound);
    }
}
