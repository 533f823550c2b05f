//! Creates `output_directory`; refuses an existing one unless `-force`.
//! After a failure it is removed (kept under `-on-error=abort`).

use crate::run::runner::{CleanupFuture, Outcome, Step, StepContext, StepError, StepFuture};

use super::HasCommon;
use crate::run::runner::StepError as Fail;

fn fail(message: String, e: std::io::Error) -> Fail {
    Fail::with_source(message, e)
}

/// Remembers whether it made the directory: a directory that was there
/// before (and refused) is never removed by the cleanup.
#[derive(Default)]
pub struct StepOutputDir {
    created: bool,
}

impl<S: HasCommon> Step<S> for StepOutputDir {
    fn name(&self) -> &'static str {
        "Creating the output directory"
    }

    fn run<'a>(&'a mut self, state: &'a mut S, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let dir = state.common().output_dir.clone();
            if dir.exists() {
                if !state.common().options.force {
                    // Packer's error; kiln adds what changed when it knows.
                    let why = state
                        .common()
                        .options
                        .stale_because
                        .as_deref()
                        .map_or_else(String::new, |w| format!(" (not up to date: {w})"));
                    return Err(StepError::new(format!(
                        "the output directory {} already exists{why}; remove it or run with -force to replace it",
                        dir.display()
                    )));
                }
                ctx.reporter.info(
                    &ctx.build,
                    &format!("-force: removing the existing {}", dir.display()),
                );
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| fail(format!("cannot remove {}", dir.display()), e))?;
            }
            std::fs::create_dir_all(&dir)
                .map_err(|e| fail(format!("cannot create {}", dir.display()), e))?;
            self.created = true;
            Ok(())
        })
    }

    fn cleanup<'a>(
        &'a mut self,
        state: &'a mut S,
        ctx: &'a StepContext,
        outcome: Outcome,
    ) -> CleanupFuture<'a> {
        Box::pin(async move {
            if outcome.is_success() || !self.created {
                return;
            }
            let dir = &state.common().output_dir;
            if ctx.remove_artifacts(outcome) {
                if let Err(e) = std::fs::remove_dir_all(dir) {
                    ctx.reporter.warn(
                        &ctx.build,
                        &format!("could not remove {}: {e}", dir.display()),
                    );
                }
            } else {
                ctx.reporter.info(
                    &ctx.build,
                    &format!("-on-error=abort: keeping {} for inspection", dir.display()),
                );
            }
        })
    }
}
