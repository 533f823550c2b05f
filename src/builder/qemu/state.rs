//! Everything a qemu build knows, filled in step by step.

use std::path::PathBuf;

use crate::builder::common::{CommonState, HasCommon};
use crate::config::qemu::{DiskFormat, QemuConfig};
use crate::hypervisor::qemu::{Accel, ImageFormat, QemuProcess, Qmp};

pub struct QemuState {
    pub config: QemuConfig,
    pub common: CommonState,
    pub output_dir: PathBuf,
    pub disk_path: PathBuf,
    pub additional_disks: Vec<PathBuf>,
    /// Holds the QMP socket (short path: unix sockets are limited to 108 bytes).
    pub runtime_dir: Option<tempfile::TempDir>,
    pub accel: Option<Accel>,
    pub vm: Option<QemuProcess>,
    pub qmp: Option<Qmp>,
    /// The OVF/OVA files, when `format` asked for them.
    pub exported: Vec<PathBuf>,
}

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
            accel: None,
            vm: None,
            qmp: None,
            exported: Vec::new(),
        }
    }

    pub fn image_format(&self) -> ImageFormat {
        match self.config.format {
            DiskFormat::Qcow2 => ImageFormat::Qcow2,
            DiskFormat::Raw => ImageFormat::Raw,
        }
    }
}

impl HasCommon for QemuState {
    fn common(&mut self) -> &mut CommonState {
        &mut self.common
    }

    fn guest_stopped(&mut self) -> Option<String> {
        let vm = self.vm.as_mut()?;
        match vm.try_wait() {
            Ok(Some(status)) => Some(format!("QEMU exited with {status}")),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }
}
