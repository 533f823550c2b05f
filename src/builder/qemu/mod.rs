//! The `qemu` builder: Packer's qemu builder as typed steps.
//!
//! fetch ISO → output directory → disk → HTTP server → SSH port → VM →
//! boot command → wait for SSH → provision → shut down → compact disk.

mod checkpoint_key;
mod checkpoint_memory;
mod state;
mod step_convert_disk;
mod step_create_disk;
mod step_export;
mod step_find_checkpoint;
mod step_forward_ssh;
mod step_run_vm;
mod step_save_checkpoint;
mod step_shutdown;
mod step_sync_checkpoint_clock;
mod step_type_boot_command;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::common::{
    CommonState, SharedConfig, StepClearTemporaryKey, StepCreateCd, StepCreateFloppy, StepFetchIso,
    StepHttpServer, StepOutputDir, StepProvision, StepSshKeyPair, StepWaitSsh,
};
use crate::artifact::{self, Artifact, Machine, Package};
use crate::config::Build;
use crate::config::qemu::QemuConfig;
use crate::run::runner::{FailureClass, Step, StepError};
use crate::run::{BuildResult, RunOptions};
use crate::ui::Reporter;
pub use state::QemuState;

/// Packer's id for this builder; post-processors pick by it.
pub const BUILDER_ID: &str = crate::artifact::ids::QEMU;

/// Where a QEMU user-network guest reaches the host.
pub const USER_NET_HOST_IP: &str = "10.0.2.2";

pub async fn run(
    build: &Build,
    config: &QemuConfig,
    options: &RunOptions,
    reporter: Arc<dyn Reporter>,
    cancel: CancellationToken,
) -> BuildResult {
    let mut state = QemuState::new(
        config.clone(),
        CommonState::new(
            build,
            options,
            SharedConfig {
                iso: &config.iso,
                http: &config.http,
                communicator: &config.communicator,
                media: &config.media,
            },
            config.output_directory.clone(),
            USER_NET_HOST_IP,
        ),
    );
    let mut steps: Vec<Box<dyn Step<QemuState>>> = vec![
        Box::new(StepFetchIso),
        Box::new(StepOutputDir::default()),
        Box::new(StepSshKeyPair),
        Box::new(step_find_checkpoint::StepFindCheckpoint),
        Box::new(StepCreateFloppy::default()),
        Box::new(StepCreateCd::default()),
        Box::new(step_create_disk::StepCreateDisk),
        Box::new(StepHttpServer),
        Box::new(step_forward_ssh::StepForwardSsh),
        Box::new(step_run_vm::StepRunVm),
        Box::new(step_type_boot_command::StepTypeBootCommand),
        Box::new(StepWaitSsh),
        Box::new(step_sync_checkpoint_clock::StepSyncCheckpointClock),
        Box::new(step_save_checkpoint::StepSaveCheckpoint),
        Box::new(StepProvision),
        Box::new(StepClearTemporaryKey),
        Box::new(step_shutdown::StepShutdown),
        Box::new(step_convert_disk::StepConvertDisk),
        Box::new(step_export::StepExport),
    ];
    super::run_builder(
        build,
        options,
        reporter,
        cancel,
        &mut steps,
        &mut state,
        |state| artifact(build, state),
    )
    .await
}

fn artifact(build: &Build, state: &QemuState) -> Artifact {
    const MIB: u64 = 1 << 20;
    let config = &state.config;
    let disk_format = config.format;
    // A disk_image that was not resized keeps the source's size, which
    // only the image itself knows.
    let boot_size =
        (!(config.disk_image && config.skip_resize_disk)).then(|| config.disk_size_mib * MIB);
    let extra_disks = state
        .additional_disks
        .iter()
        .zip(&config.disk_additional_size_mib)
        .map(|(path, mib)| artifact::Disk {
            path: path.clone(),
            format: disk_format,
            virtual_size: Some(mib * MIB),
        });
    let (package, mut disks) = if state.exported.is_empty() {
        let boot = artifact::Disk {
            path: state.disk_path.clone(),
            format: disk_format,
            virtual_size: boot_size,
        };
        (None, vec![boot])
    } else {
        Package::from_export(&state.exported)
    };
    disks.extend(extra_disks);
    let mut files = if state.exported.is_empty() {
        vec![state.disk_path.clone()]
    } else {
        state.exported.clone()
    };
    files.extend(state.additional_disks.iter().cloned());
    let accelerator = state.accel;
    let mut pass_through = BTreeMap::new();
    pass_through.insert(
        "output_directory".to_owned(),
        state.output_dir.display().to_string(),
    );
    Artifact {
        builder_id: BUILDER_ID,
        build_name: build.name.clone(),
        build_type: build.type_name.clone(),
        files,
        id: config.vm_name.clone(),
        disks,
        package,
        machine: Some(Machine {
            accelerator,
            cpus: config.cpus,
            memory_mib: config.memory_mib,
        }),
        state: pass_through,
    }
}

/// A failure of the host's side (qemu, qemu-img, a file, a port), with
/// its source.
pub(crate) fn fail_on_host(
    message: impl Into<String>,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StepError {
    StepError::with_source(FailureClass::Host, message, e)
}

/// Why finding, saving or resuming from an install checkpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointStepError {
    #[error("cannot open the cache")]
    Cache(#[source] crate::iso::IsoError),
    #[error("cannot make the install checkpoint's key: {0}")]
    Key(String),
    /// A blocking task that panicked or was dropped ("the disk task failed").
    #[error("{0}")]
    Task(&'static str, #[source] tokio::task::JoinError),
    #[error("cannot read the install checkpoint")]
    Read(#[source] crate::checkpoint::CheckpointError),
    #[error("{0}")]
    Disk(
        &'static str,
        #[source] crate::hypervisor::qemu::img::QemuImgError,
    ),
    #[error("no QMP connection")]
    NoQmp,
    #[error("QEMU did not pause the VM for the checkpoint")]
    Pause(#[source] crate::hypervisor::qemu::qmp::QmpError),
    #[error("QEMU did not resume the VM after the checkpoint")]
    Resume(#[source] crate::hypervisor::qemu::qmp::QmpError),
    #[error("interrupted before the install checkpoint was saved")]
    Interrupted,
}

impl crate::run::runner::StepFailure for CheckpointStepError {
    fn class(&self) -> FailureClass {
        match self {
            // The key is rendered from the template's own strings.
            Self::Key(_) => FailureClass::Input,
            Self::Interrupted => FailureClass::Interrupted,
            Self::Cache(_)
            | Self::Task(..)
            | Self::Read(_)
            | Self::Disk(..)
            | Self::NoQmp
            | Self::Pause(_)
            | Self::Resume(_) => FailureClass::Host,
        }
    }
}
