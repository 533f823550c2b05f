//! `StepCreateVm`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`).

use std::time::Duration;

use super::VBoxState;
use super::calls::{run_all, vm_state};
use crate::hypervisor::virtualbox::command::{poweroff, unregister_delete};
use crate::run::runner::{CleanupFuture, Outcome, Step, StepContext, StepFuture};

pub struct StepCreateVm;

impl Step<VBoxState> for StepCreateVm {
    fn name(&self) -> &'static str {
        "Creating the VM"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, _ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let commands = super::specs::vm_spec(&state.config).create_commands();
            let (first, rest) = commands.split_at(1.min(commands.len()));
            run_all(state.vbox()?, first.to_vec()).await?;
            state.registered = true;
            run_all(state.vbox()?, rest.to_vec()).await
        })
    }

    /// Unregisters and deletes the VM (its disk with it) unless
    /// `keep_registered`, after a power-off if it still runs.
    fn cleanup<'a>(
        &'a mut self,
        state: &'a mut VBoxState,
        ctx: &'a StepContext,
        outcome: Outcome,
    ) -> CleanupFuture<'a> {
        Box::pin(async move {
            let (Some(vbox), true) = (state.vbox.clone(), state.registered) else {
                return;
            };
            let vm = state.config.vm_name.clone();
            if vm_state(vbox.clone(), vm.clone())
                .await
                .is_some_and(|s| s.is_running())
            {
                let _ = run_all(vbox.clone(), vec![poweroff(&vm)]).await;
            }
            if state.config.keep_registered && outcome.is_success() {
                ctx.reporter.info(
                    &ctx.build,
                    &format!("keep_registered: leaving {vm} registered"),
                );
                return;
            }
            if !ctx.remove_artifacts(outcome) {
                ctx.reporter.info(
                    &ctx.build,
                    &format!("-on-error=abort: leaving {vm} registered for inspection"),
                );
                return;
            }
            // The session lock lingers briefly after a power-off (Packer retries too).
            for attempt in 0..5 {
                match run_all(vbox.clone(), vec![unregister_delete(&vm)]).await {
                    Ok(()) => return,
                    Err(e) if attempt == 4 => {
                        ctx.reporter
                            .warn(&ctx.build, &format!("could not unregister {vm}: {e}"));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
        })
    }
}
