//! What VirtualBox's own log says about why it stopped a VM. VBoxManage
//! only reports `VMState="paused"`; the reason is a runtime error in
//! `VBox.log`, e.g. after a write failed for lack of host disk space:
//!
//! ```text
//! Console: VM runtime error: fatal=false, errorID=DrvVD_DISKFULL message="Host system reported disk full. …"
//! ```

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// A runtime error VirtualBox logged (`VMSetRuntimeError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeError {
    /// `DrvVD_DISKFULL`, `BLKCACHE_IOERR`, …
    pub id: String,
    pub message: String,
    pub fatal: bool,
}

impl RuntimeError {
    /// VirtualBox suspended the VM because the host disk holding one of
    /// its images is full.
    pub fn is_disk_full(&self) -> bool {
        self.id == "DrvVD_DISKFULL"
    }
}

/// How much of the log's end is read: runtime errors are logged just
/// before the VM is suspended, and a log can grow large.
const TAIL_BYTES: u64 = 256 * 1024;

/// The last runtime error in the VM's `VBox.log`, if the log has one.
pub fn last_runtime_error(log: &Path) -> Option<RuntimeError> {
    let mut f = std::fs::File::open(log).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))
        .ok()?;
    let mut tail = Vec::new();
    f.take(TAIL_BYTES).read_to_end(&mut tail).ok()?;
    String::from_utf8_lossy(&tail)
        .lines()
        .rev()
        .find_map(parse_runtime_error)
}

/// One `Console: VM runtime error: fatal=…, errorID=… message="…"` line
/// (with or without VirtualBox's timestamp in front).
fn parse_runtime_error(line: &str) -> Option<RuntimeError> {
    let (_, rest) = line.split_once("VM runtime error: ")?;
    let fatal = rest.strip_prefix("fatal=")?.starts_with("true");
    let (_, rest) = rest.split_once("errorID=")?;
    let (id, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let message = rest
        .strip_prefix("message=")
        .map(|m| m.trim().trim_matches('"').to_owned())
        .unwrap_or_default();
    Some(RuntimeError {
        id: id.trim_end_matches(',').to_owned(),
        message,
        fatal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_runtime_error_is_found_after_other_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("VBox.log");
        std::fs::write(
            &log,
            "00:00:01.000000 VirtualBox VM 7.0.20 r163906 linux.amd64\n\
             00:00:30.100000 Console: VM runtime error: fatal=false, errorID=BLKCACHE_IOERR message=\"old\"\n\
             00:01:02.345678 VD#0: Host disk full\n\
             00:01:02.345900 Console: VM runtime error: fatal=false, errorID=DrvVD_DISKFULL message=\"Host system reported disk full. VM execution is suspended. You can resume after freeing some space\"\n\
             00:01:02.400000 Changing the VM state from 'RUNNING' to 'SUSPENDING'\n",
        )
        .expect("write");
        let e = last_runtime_error(&log).expect("found");
        assert!(e.is_disk_full(), "{e:?}");
        assert!(!e.fatal);
        assert!(
            e.message.starts_with("Host system reported disk full."),
            "{e:?}"
        );
    }

    #[test]
    fn a_log_without_runtime_errors_or_no_log_gives_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("VBox.log");
        std::fs::write(&log, "00:00:01.000000 nothing to see\n").expect("write");
        assert_eq!(last_runtime_error(&log), None);
        assert_eq!(last_runtime_error(&dir.path().join("missing.log")), None);
    }
}
