//! Makes the install key and looks for a verified checkpoint with it: when
//! one is found the build resumes from it (no ISO boot, no boot command,
//! no install); otherwise it will save one when SSH first answers.

use crate::checkpoint::{CheckpointStore, Lookup};
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
            for what in &volatile {
                ctx.reporter.warn(
                    &ctx.build,
                    &format!(
                        "{what}, whose value changes every run: this install's checkpoint will never match a later build (see docs/checkpoints.md)"
                    ),
                );
            }
            let key = inputs.finish();
            let store = store()?;
            let dir = store.dir(&key);
            if state.common.options.force_install {
                ctx.reporter.info(
                    &ctx.build,
                    &format!(
                        "-force-install: installing from the ISO; the checkpoint {} will be replaced",
                        dir.display()
                    ),
                );
                state.checkpoint = CheckpointPlan::Save {
                    key: inputs,
                    replace: true,
                };
                return Ok(());
            }
            let lookup_key = key.clone();
            let lookup_store = store.clone();
            let found = tokio::task::spawn_blocking(move || lookup_store.lookup(&lookup_key))
                .await
                .map_err(|e| CheckpointStepError::Task("the checkpoint lookup failed", e))?
                .map_err(CheckpointStepError::Read)?;
            state.checkpoint = match found {
                Lookup::Found(checkpoint) => {
                    ctx.reporter.info(
                        &ctx.build,
                        &format!(
                            "Resuming from the install checkpoint {} ({}, verified): no ISO boot, no boot command, no install",
                            dir.display(),
                            crate::ui::console::format_bytes(checkpoint.size)
                        ),
                    );
                    CheckpointPlan::Resume(checkpoint)
                }
                Lookup::Missing => {
                    ctx.reporter.info(
                        &ctx.build,
                        &format!(
                            "No install checkpoint yet (key {key}): installing, then saving one when SSH answers"
                        ),
                    );
                    CheckpointPlan::Save {
                        key: inputs,
                        replace: false,
                    }
                }
                Lookup::Corrupt { reason } => {
                    ctx.reporter.warn(
                        &ctx.build,
                        &format!(
                            "the install checkpoint {} is damaged ({reason}): not used, installing again",
                            dir.display()
                        ),
                    );
                    CheckpointPlan::Save {
                        key: inputs,
                        replace: true,
                    }
                }
            };
            Ok(())
        })
    }
}
