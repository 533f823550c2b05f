//! Makes the install key and looks for a verified checkpoint with it: when
//! one is found the build resumes from it (no ISO boot, no boot command,
//! no install); otherwise it will save one when SSH first answers.

use crate::builder::common::checkpoint::find_checkpoint;
use crate::checkpoint::CheckpointStore;
use crate::iso::IsoCache;
use crate::run::runner::{Step, StepContext, StepFuture};

use super::checkpoint_key::{install_key, why_not};
use super::state::CheckpointPlan;
use super::{CheckpointStepError, QemuState};

pub struct StepFindCheckpoint;

/// The checkpoints of the cache this build uses for its ISO.
pub(super) fn store() -> Result<CheckpointStore, CheckpointStepError> {
    let cache = IsoCache::locate().map_err(CheckpointStepError::Cache)?;
    Ok(CheckpointStore::in_cache(cache.root()))
}

impl Step<QemuState> for StepFindCheckpoint {
    fn name(&self) -> &'static str {
        "Looking for an install checkpoint"
    }

    fn run<'a>(&'a mut self, state: &'a mut QemuState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            if let Some(reason) = why_not(state) {
                if !reason.is_empty() {
                    ctx.reporter.info(&ctx.build, reason);
                }
                state.checkpoint = CheckpointPlan::Off;
                return Ok(());
            }
            let (inputs, volatile) = install_key(state).map_err(CheckpointStepError::Key)?;
            let force = state.common.options.force_install;
            state.checkpoint = find_checkpoint(ctx, force, inputs, &volatile).await?;
            Ok(())
        })
    }
}
