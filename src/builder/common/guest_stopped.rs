//! Why a VM stopped running while kiln waited on it, as a typed error each
//! builder fills from what its hypervisor reports, so waiting for SSH can
//! end at once with the cause instead of running out `ssh_timeout`.

use std::path::{Path, PathBuf};
use std::pin::Pin;

use crate::ui::console::format_bytes;

/// Resolves when the VM stops by itself; never resolves while it runs.
pub type GuestStopWatch<'a> = Pin<Box<dyn Future<Output = GuestStopped> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum GuestStopped {
    /// The host filesystem holding a disk image filled up, and the
    /// hypervisor paused the guest rather than fail its write.
    #[error(
        "the VM was paused because its disk {} is full: no space left on device ({} free on {})",
        .path.display(),
        .free_bytes.map_or_else(|| "unknown space".to_owned(), format_bytes),
        .path.parent().unwrap_or(Path::new(".")).display()
    )]
    DiskFull {
        path: PathBuf,
        free_bytes: Option<u64>,
    },
    /// Any other I/O error on a disk image that paused the guest.
    #[error("the VM was paused by an I/O error on its disk {disk} ({operation}: {reason})")]
    DiskError {
        disk: String,
        operation: String,
        reason: String,
    },
    #[error("the guest kernel panicked (the hypervisor's action: {action})")]
    Panicked { action: String },
    #[error("the guest powered off ({reason})")]
    PoweredOff { reason: String },
    #[error("the VM was paused (run state `{state}`)")]
    Paused { state: String },
    #[error("QEMU exited ({status}){}", stderr_suffix(.stderr))]
    QemuExited { status: String, stderr: Vec<String> },
    /// VirtualBox's view of the VM (`paused`, `aborted`, `poweroff`, …).
    #[error("the VM is {state}{}", .detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    VmState {
        state: String,
        detail: Option<String>,
    },
    #[error("the VM is gone: {0}")]
    Gone(String),
}

fn stderr_suffix(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; its last output:\n{}", lines.join("\n"))
    }
}

impl GuestStopped {
    /// What the user can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::DiskFull { .. } => {
                "free space there (the disk grows up to disk_size), or put output_directory on a larger filesystem"
            }
            Self::DiskError { .. } => "check the filesystem holding output_directory",
            _ => "check the boot command and the installer's answer file",
        }
    }
}

/// Free space for an unprivileged writer on the filesystem holding `path`
/// (its directory, as the file itself may be what cannot grow).
pub fn free_space_beside(path: &Path) -> Option<u64> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_names_the_disk_the_error_and_the_free_space() {
        let e = GuestStopped::DiskFull {
            path: "/mnt/small/out/tiny.qcow2".into(),
            free_bytes: Some(4096),
        };
        assert_eq!(
            e.to_string(),
            "the VM was paused because its disk /mnt/small/out/tiny.qcow2 is full: no space left on device (4.0 KiB free on /mnt/small/out)"
        );
        assert!(e.hint().contains("output_directory"));
    }

    #[test]
    fn free_space_is_measured_beside_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let free = free_space_beside(&dir.path().join("not-yet-there.qcow2"));
        assert!(free.is_some_and(|f| f > 0), "{free:?}");
        assert_eq!(free_space_beside(Path::new("/no/such/dir/disk")), None);
    }
}
