//! The `qemu` builder: Packer's qemu builder as typed steps.
//!
//! fetch ISO → output directory → disk → HTTP server → SSH port → VM →
//! boot command → wait for SSH → provision → shut down → compact disk.

mod state;
mod step_convert_disk;
mod step_create_disk;
mod step_export;
mod step_forward_ssh;
mod step_run_vm;
mod step_shutdown;
mod step_type_boot_command;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::common::{
    CommonState, SharedConfig, StepCreateCd, StepCreateFloppy, StepFetchIso, StepHttpServer,
    StepOutputDir, StepProvision, StepWaitSsh,
};
use super::{BuildResult, RunOptions};
use crate::build::artifact::Artifact;
use crate::build::runner::{Step, StepError};
use crate::config::Build;
use crate::config::qemu::QemuConfig;
use crate::ui::Reporter;
pub use state::QemuState;

/// Packer's id for this builder; post-processors pick by it.
pub const BUILDER_ID: &str = "transcend.qemu";

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
        Box::new(StepCreateFloppy::default()),
        Box::new(StepCreateCd::default()),
        Box::new(step_create_disk::StepCreateDisk),
        Box::new(StepHttpServer),
        Box::new(step_forward_ssh::StepForwardSsh),
        Box::new(step_run_vm::StepRunVm),
        Box::new(step_type_boot_command::StepTypeBootCommand),
        Box::new(StepWaitSsh),
        Box::new(StepProvision),
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
    let mut metadata = BTreeMap::new();
    metadata.insert(
        "format".to_owned(),
        state.image_format().as_str().to_owned(),
    );
    metadata.insert(
        "disk_size_mib".to_owned(),
        state.config.disk_size_mib.to_string(),
    );
    metadata.insert("cpus".to_owned(), state.config.cpus.to_string());
    metadata.insert("memory_mib".to_owned(), state.config.memory_mib.to_string());
    metadata.insert(
        "disk_interface".to_owned(),
        state.config.disk_interface.clone(),
    );
    metadata.insert(
        "output_directory".to_owned(),
        state.output_dir.display().to_string(),
    );
    let mut files = if state.exported.is_empty() {
        vec![state.disk_path.clone()]
    } else {
        metadata.insert("format".to_owned(), "ovf".to_owned());
        state.exported.clone()
    };
    files.extend(state.additional_disks.iter().cloned());
    Artifact {
        builder_id: BUILDER_ID,
        build_name: build.name.clone(),
        build_type: build.type_name.clone(),
        files,
        id: state.config.vm_name.clone(),
        metadata,
    }
}

/// An error from a failed step, with its source.
pub(crate) fn fail(
    message: impl Into<String>,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StepError {
    StepError::with_source(message, e)
}
