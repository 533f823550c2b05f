//! Reading a template or var file the user named, with a size limit and a
//! bounded wait: `/dev/zero` must not eat the machine's memory, and a named
//! pipe nobody writes to must not hang kiln for ever. A pipe that has a
//! writer (`kiln validate <(gen-template)`) is read as usual.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

/// Templates and var files are read up to this size (Packer has no limit;
/// the largest real template we know of is well under 1 MiB).
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// How long a named pipe may go without a writer before kiln gives up.
pub const FIFO_WRITER_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{0}")]
    Io(#[source] io::Error),
    #[error("it is larger than {} MiB, the most kiln reads for a template or var file", MAX_INPUT_BYTES / (1024 * 1024))]
    TooLarge,
    #[error(
        "it is a named pipe (FIFO) and nothing opened it for writing within {} s",
        .waited.as_secs()
    )]
    NoWriter { waited: Duration },
}

impl InputError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, InputError::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            InputError::Io(e) if e.kind() == io::ErrorKind::NotFound => Some("check the path"),
            InputError::Io(_) => None,
            InputError::TooLarge => {
                Some("check the path: this does not look like a template or a var file")
            }
            InputError::NoWriter { .. } => Some(
                "start the program that writes to the pipe first, or pass a regular file or `<(command)`",
            ),
        }
    }
}

/// Reads `path` whole, refusing more than [`MAX_INPUT_BYTES`] and a FIFO
/// with no writer within [`FIFO_WRITER_WAIT`].
pub fn read_input(path: &Path) -> Result<Vec<u8>, InputError> {
    read_input_with(path, MAX_INPUT_BYTES, FIFO_WRITER_WAIT)
}

fn read_input_with(path: &Path, limit: u64, wait: Duration) -> Result<Vec<u8>, InputError> {
    let meta = std::fs::metadata(path).map_err(InputError::Io)?;
    if meta.is_file() && meta.len() > limit {
        return Err(InputError::TooLarge);
    }
    let (file, first) = if meta.file_type().is_fifo() {
        open_fifo(path, wait)?
    } else {
        (File::open(path).map_err(InputError::Io)?, Vec::new())
    };
    // One byte over the limit tells "exactly at the limit" from "more".
    let mut bytes = first;
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(InputError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(InputError::TooLarge);
    }
    Ok(bytes)
}

/// Opens a FIFO without blocking (a blocking open waits for a writer for
/// ever), waits up to `wait` for data or for a writer that came and went,
/// and returns it in blocking mode for an ordinary read, with any byte
/// already taken from it.
fn open_fifo(path: &Path, wait: Duration) -> Result<(File, Vec<u8>), InputError> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};

    let file = File::options()
        .read(true)
        .custom_flags(OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(InputError::Io)?;
    let timeout = Timespec {
        tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(wait.subsec_nanos()),
    };
    // Linux reports POLLHUP only once a writer has come and gone, so an
    // empty `<(true)` ends the wait at once while a FIFO that never had a
    // writer waits the whole bound.
    let mut fds = [PollFd::new(&file, PollFlags::IN)];
    loop {
        match poll(&mut fds, Some(&timeout)) {
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(InputError::Io(e.into())),
        }
    }
    // Nothing to read yet: end-of-file means no writer; "would block"
    // means a writer that is there but silent (a slow generator), which
    // is waited for as a blocking read would.
    let mut first = [0u8; 1];
    let taken = match (&file).read(&mut first) {
        Ok(0) if fds[0].revents().is_empty() => {
            return Err(InputError::NoWriter { waited: wait });
        }
        Ok(n) => first[..n].to_vec(),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Vec::new(),
        Err(e) => return Err(InputError::Io(e)),
    };
    let flags = fcntl_getfl(&file).map_err(|e| InputError::Io(e.into()))?;
    fcntl_setfl(&file, flags - OFlags::NONBLOCK).map_err(|e| InputError::Io(e.into()))?;
    Ok((file, taken))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_over_the_limit_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.json");
        std::fs::write(&path, b"{}").expect("write");
        assert_eq!(
            read_input_with(&path, 2, Duration::ZERO).expect("fits"),
            b"{}"
        );
        assert!(matches!(
            read_input_with(&path, 1, Duration::ZERO),
            Err(InputError::TooLarge)
        ));
    }

    fn fifo(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        path
    }

    #[test]
    fn a_fifo_without_a_writer_is_an_error_after_the_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = fifo(dir.path());
        let started = std::time::Instant::now();
        let r = read_input_with(&path, 1024, Duration::from_millis(200));
        assert!(matches!(r, Err(InputError::NoWriter { .. })), "{r:?}");
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn a_fifo_with_a_silent_writer_is_waited_for() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = fifo(dir.path());
        // Keeps the pipe (and what is written to it) alive whenever the
        // reader below opens it.
        let _keep = File::options()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(&path)
            .expect("open");
        // Read-write never blocks on Linux: a writer that has said nothing.
        let mut writer = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open");
        let reader = {
            let path = path.clone();
            std::thread::spawn(move || read_input_with(&path, 1024, Duration::ZERO))
        };
        writer.write_all(b"{\"a\": 1}").expect("write");
        drop(writer);
        let got = reader.join().expect("joins").expect("reads");
        assert_eq!(got, b"{\"a\": 1}");
    }

    #[test]
    fn an_endless_device_stops_at_the_limit() {
        assert!(matches!(
            read_input_with(Path::new("/dev/zero"), 1024, Duration::ZERO),
            Err(InputError::TooLarge)
        ));
    }
}
