//! QEMU: the `qemu-system` command line, owning its process, talking QMP to
//! it, probing for a working accelerator, and `qemu-img` for disks.
//!
//! Everything here is a driver: it runs programs and reports typed results.
//! The qemu builder's steps compose these and do the reporting.

pub mod command;
pub mod img;
pub mod port;
pub mod probe;
pub mod process;
pub mod qmp;

pub use command::{
    Accel, CdromDrive, CommandError, DiskDrive, DiskInterface, Display, Firmware, NetBackend,
    NetDevice, QemuCommand, SshForward, VNC_BASE_PORT, Vnc,
};
pub use img::{Backing, ConvertOptions, ImageFormat, ImageInfo, QemuImg, QemuImgCli, QemuImgError};
pub use port::{PortError, find_free_port, find_free_port_on};
pub use probe::{ProbeError, ProbeResult, probe_accelerator};
pub use process::{ProcessError, QemuProcess};
pub use qmp::{
    BlockInfo, BlockInserted, InputEvent, KeyValue, Qmp, QmpError, QmpEvent, StatusInfo, VmHalt,
};

use std::ffi::{OsStr, OsString};

/// A command line as one would paste it into a shell, for error messages.
pub(crate) fn display_command(program: &OsStr, args: &[OsString]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(OsString::as_os_str))
        .map(|a| shell_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
