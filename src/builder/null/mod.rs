//! The `null` builder: Packer's way to run provisioners against a machine
//! that already exists, or against none at all (`communicator: none`, for
//! shell-local and post-processors only).
//!
//! wait for SSH on `ssh_host:ssh_port` (with SSH only) → provision. It
//! makes nothing, so nothing is cleaned up but the connection, and its
//! artifact has no files.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::common::{CommonState, GuestStopWatch, HasCommon, StepProvision, StepWaitSsh};
use crate::artifact::{Artifact, ids};
use crate::config::Build;
use crate::config::null::NullConfig;
use crate::run::runner::Step;
use crate::run::{BuildResult, RunOptions};
use crate::ui::Reporter;

/// Packer's id for this builder's artifacts.
pub const BUILDER_ID: &str = ids::NULL;

pub struct NullState {
    pub common: CommonState,
}

impl HasCommon for NullState {
    fn common(&mut self) -> &mut CommonState {
        &mut self.common
    }

    /// kiln does not run the machine, so it cannot see it stop: a machine
    /// that goes away shows as SSH not answering.
    fn guest_stopped(&mut self) -> GuestStopWatch<'_> {
        Box::pin(std::future::pending())
    }
}

pub async fn run(
    build: &Build,
    config: &NullConfig,
    options: &RunOptions,
    reporter: Arc<dyn Reporter>,
    cancel: CancellationToken,
) -> BuildResult {
    let mut state = NullState {
        common: CommonState::communicator_only(build, options, &config.communicator),
    };
    let mut steps: Vec<Box<dyn Step<NullState>>> = Vec::new();
    // Packer connects only when there is a communicator to connect with.
    if config.communicator.ssh().is_some() {
        steps.push(Box::new(StepWaitSsh));
    }
    steps.push(Box::new(StepProvision));
    super::run_builder(
        build,
        options,
        reporter,
        cancel,
        &mut steps,
        &mut state,
        |_| artifact(build),
    )
    .await
}

/// Packer's null artifact: no files, id `Null`.
fn artifact(build: &Build) -> Artifact {
    Artifact::files_only(
        BUILDER_ID,
        &build.name,
        &build.type_name,
        "Null",
        Vec::new(),
    )
}
