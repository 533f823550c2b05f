//! `StepFindCheckpoint`, one of the virtualbox-iso builder's steps (their
//! order is in `mod.rs`): makes the install key and looks for a verified
//! checkpoint; with one the disk is cloned from it and nothing is typed,
//! without one a checkpoint is saved when SSH first answers.

use super::VBoxState;
use super::checkpoint_key::{install_key, why_not};
use crate::builder::common::checkpoint::{CheckpointPlan, find_checkpoint};
use crate::run::runner::{FailureClass, Step, StepContext, StepError, StepFuture};

pub struct StepFindCheckpoint;

impl Step<VBoxState> for StepFindCheckpoint {
    fn name(&self) -> &'static str {
        "Looking for an install checkpoint"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            if let Some(reason) = why_not(state) {
                ctx.reporter.info(&ctx.build, reason);
                state.checkpoint = CheckpointPlan::Off;
                return Ok(());
            }
            let (inputs, volatile) = install_key(state).map_err(|e| {
                StepError::new(
                    FailureClass::Input,
                    format!("cannot make the install checkpoint's key: {e}"),
                )
            })?;
            let force = state.common.options.force_install;
            state.checkpoint = find_checkpoint(ctx, force, inputs, &volatile).await?;
            Ok(())
        })
    }
}
