//! QEMU: the `qemu-system` command line, owning its process, talking QMP to
//! it, probing for a working accelerator, and `qemu-img` for disks.
//!
//! Everything here is a driver: it runs programs and reports typed results.
//! The qemu builder's steps compose these and do the reporting.

pub mod command;
pub mod firmware;
pub mod img;
pub mod migrate;
pub mod probe;
pub mod process;
pub mod qmp;
pub mod swtpm;

/// The image format the driver's specs name (one type, shared through `vm`).
pub use crate::vm::ImageFormat;
pub use command::{
    CdromDrive, CommandError, CpuTopology, DiskDrive, DiskInterface, Display, Firmware, NetBackend,
    NetDevice, QemuCommand, SshForward, VNC_BASE_PORT, Vnc,
};
pub use img::{Backing, ConvertOptions, ImageInfo, QemuImg, QemuImgCli, QemuImgError};
pub use probe::{ProbeError, ProbeResult, probe_accelerator};
pub use process::{ProcessError, QemuProcess};
pub use qmp::{
    BlockInfo, BlockInserted, InputEvent, KeyValue, Qmp, QmpError, QmpEvent, StatusInfo, VmHalt,
};
