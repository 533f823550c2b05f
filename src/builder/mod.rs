//! Builders: each is a list of steps over its own typed state, composed
//! from the shared parts (ISO cache, HTTP server, SSH, provisioners) in
//! `common` and one hypervisor driver.

pub mod common;
pub mod googlecompute;
pub mod null;
pub mod qemu;
pub mod ssh_remote;
pub mod virtualbox;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::artifact::Artifact;
use crate::config::{Build, BuilderConfig};
use crate::run::runner::{FailureClass, StepError};
use crate::run::{BuildResult, RunOptions};
use crate::ui::Reporter;

/// Runs one build's builder: the entry point the CLI hands to
/// [`crate::run::run_all`].
pub async fn run(
    build: &Build,
    options: &RunOptions,
    reporter: Arc<dyn Reporter>,
    cancel: CancellationToken,
) -> BuildResult {
    match &build.builder {
        BuilderConfig::Qemu(config) => qemu::run(build, config, options, reporter, cancel).await,
        BuilderConfig::VirtualBoxIso(config) => {
            virtualbox::run(build, config, options, reporter, cancel).await
        }
        BuilderConfig::GoogleCompute(config) => {
            googlecompute::run(build, config, options, reporter, cancel).await
        }
        BuilderConfig::Null(config) => null::run(build, config, options, reporter, cancel).await,
    }
}

/// Runs a builder's steps over its state and turns the outcome into a
/// [`BuildResult`], making the artifact with `artifact` on success.
pub(crate) async fn run_builder<S: Send>(
    build: &Build,
    options: &RunOptions,
    reporter: Arc<dyn Reporter>,
    cancel: CancellationToken,
    steps: &mut [Box<dyn crate::run::runner::Step<S>>],
    state: &mut S,
    artifact: impl FnOnce(&S) -> Artifact,
) -> BuildResult {
    use crate::run::runner::{Outcome, StepContext, run_steps};
    let ctx = StepContext {
        build: build.name.clone(),
        reporter,
        cancel,
        on_error: options.on_error,
        debug: options.debug,
    };
    let report = run_steps(steps, state, &ctx).await;
    let result = match (report.outcome, report.error) {
        (Outcome::Succeeded, _) => Ok(artifact(state)),
        (_, Some(e)) => Err(e),
        (Outcome::Cancelled, None) => Err(StepError::interrupted()),
        (Outcome::Failed, None) => Err(StepError::new(FailureClass::Host, "failed")),
    };
    BuildResult {
        name: build.name.clone(),
        final_artifacts: result.iter().cloned().collect(),
        artifact: result,
        steps: report.steps,
        cancelled: report.outcome == Outcome::Cancelled,
        up_to_date: None,
    }
}
