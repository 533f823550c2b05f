//! Everything a qemu build knows, filled in step by step.

use std::path::PathBuf;

use std::time::Duration;

use crate::builder::common::{
    CommonState, GuestStopWatch, GuestStopped, HasCommon, free_space_beside,
};
use crate::config::qemu::QemuConfig;
use crate::hypervisor::qemu::{BlockInfo, QemuProcess, Qmp, VmHalt, Vnc};
use crate::vm::{Accelerator, ImageFormat};

/// How long QEMU gets to exit after closing its QMP socket, for its status.
const QEMU_EXIT_GRACE: Duration = Duration::from_secs(2);

pub struct QemuState {
    pub config: QemuConfig,
    pub common: CommonState,
    pub output_dir: PathBuf,
    pub disk_path: PathBuf,
    pub additional_disks: Vec<PathBuf>,
    /// Holds the QMP socket (short path: unix sockets are limited to 108 bytes).
    pub runtime_dir: Option<tempfile::TempDir>,
    /// The software TPM (`vtpm`), its socket in `runtime_dir`.
    pub swtpm: Option<crate::hypervisor::qemu::swtpm::Swtpm>,
    pub accel: Option<Accelerator>,
    pub vm: Option<QemuProcess>,
    pub qmp: Option<Qmp>,
    /// QEMU's VNC server, unless `disable_vnc`.
    pub vnc: Option<Vnc>,
    /// The OVF/OVA files, when `format` asked for them.
    pub exported: Vec<PathBuf>,
    /// Whether this build saves an install checkpoint or resumes from one.
    pub checkpoint: CheckpointPlan,
    /// The guest runs on from the checkpoint's memory state (not booted):
    /// its clock is the checkpoint's until set.
    pub memory_resumed: bool,
}

pub use crate::builder::common::checkpoint::CheckpointPlan;

impl QemuState {
    pub fn new(config: QemuConfig, common: CommonState) -> Self {
        let output_dir = config.output_directory.clone();
        let disk_path = output_dir.join(&config.vm_name);
        Self {
            config,
            common,
            output_dir,
            disk_path,
            additional_disks: Vec::new(),
            runtime_dir: None,
            swtpm: None,
            accel: None,
            vm: None,
            qmp: None,
            vnc: None,
            exported: Vec::new(),
            checkpoint: CheckpointPlan::Off,
            memory_resumed: false,
        }
    }

    /// The checkpoint this build resumes from, if it does.
    pub fn resumed_from(&self) -> Option<&crate::checkpoint::Checkpoint> {
        match &self.checkpoint {
            CheckpointPlan::Resume(c) => Some(c),
            _ => None,
        }
    }

    pub fn image_format(&self) -> ImageFormat {
        self.config.format
    }
}

impl HasCommon for QemuState {
    fn common(&mut self) -> &mut CommonState {
        &mut self.common
    }

    fn guest_stopped(&mut self) -> GuestStopWatch<'_> {
        Box::pin(async move {
            let Some(qmp) = self.qmp.as_ref() else {
                return std::future::pending().await;
            };
            // QMP's reader task fills this the moment QEMU reports a stop,
            // so nothing that happened before or during the wait is missed.
            let mut halts = qmp.halts();
            let halt = match halts.wait_for(Option::is_some).await {
                Ok(h) => h.clone().unwrap_or(VmHalt::Disconnected),
                Err(_) => VmHalt::Disconnected,
            };
            self.explain_halt(halt).await
        })
    }
}

impl QemuState {
    /// Turns QMP's halt into the typed cause, asking QEMU which disk file
    /// failed and the host how much room is left beside it.
    async fn explain_halt(&mut self, halt: VmHalt) -> GuestStopped {
        match halt {
            VmHalt::IoError {
                device,
                node_name,
                operation,
                reason,
                nospace,
            } => {
                let blocks = self.query_block().await;
                let file = blocks
                    .iter()
                    .find(|b| {
                        (!device.is_empty() && b.device == device)
                            || node_name.is_some()
                                && b.inserted.as_ref().and_then(|i| i.node_name.as_ref())
                                    == node_name.as_ref()
                    })
                    .and_then(|b| b.inserted.as_ref())
                    .map(|i| PathBuf::from(&i.file));
                if nospace {
                    self.disk_full(file)
                } else {
                    GuestStopped::DiskError {
                        disk: file.map_or(device, |f| f.display().to_string()),
                        operation,
                        reason: reason.unwrap_or_else(|| "unknown error".into()),
                    }
                }
            }
            VmHalt::Panicked { action } => GuestStopped::Panicked { action },
            VmHalt::Shutdown { reason, .. } => GuestStopped::PoweredOff { reason },
            // A STOP whose cause came by no event: the run state still says
            // `io-error`, and query-block which drive.
            VmHalt::Paused => {
                let state = match self.qmp.as_mut() {
                    Some(qmp) => qmp.query_status().await.map(|s| s.status).ok(),
                    None => None,
                }
                .unwrap_or_else(|| "paused".into());
                if state != "io-error" {
                    return GuestStopped::Paused { state };
                }
                let failed = self
                    .query_block()
                    .await
                    .into_iter()
                    .find(|b| b.io_status.as_deref().is_some_and(|s| s != "ok"));
                match failed {
                    Some(b) if b.io_status.as_deref() == Some("nospace") => {
                        self.disk_full(b.inserted.map(|i| PathBuf::from(i.file)))
                    }
                    Some(b) => GuestStopped::DiskError {
                        disk: b.inserted.map_or(b.device, |i| i.file),
                        operation: "I/O".into(),
                        reason: b.io_status.unwrap_or_default(),
                    },
                    None => GuestStopped::Paused { state },
                }
            }
            VmHalt::Disconnected => {
                let Some(vm) = self.vm.as_mut() else {
                    return GuestStopped::Gone("QEMU closed its QMP connection".into());
                };
                match vm.wait_exit(QEMU_EXIT_GRACE).await {
                    Ok(Some(status)) => GuestStopped::QemuExited {
                        status: status.to_string(),
                        stderr: vm.final_stderr_tail(),
                    },
                    Ok(None) => GuestStopped::Gone(
                        "QEMU closed its QMP connection but is still running".into(),
                    ),
                    Err(e) => GuestStopped::Gone(e.to_string()),
                }
            }
        }
    }

    /// The drives, or none when QEMU cannot say (the error names the drive then).
    async fn query_block(&mut self) -> Vec<BlockInfo> {
        match self.qmp.as_mut() {
            Some(qmp) => qmp.query_block().await.unwrap_or_default(),
            None => Vec::new(),
        }
    }

    fn disk_full(&self, file: Option<PathBuf>) -> GuestStopped {
        // QEMU names the file as kiln gave it, often relative to here.
        let path = file.unwrap_or_else(|| self.disk_path.clone());
        let path = std::path::absolute(&path).unwrap_or(path);
        GuestStopped::DiskFull {
            free_bytes: free_space_beside(&path),
            path,
        }
    }
}
