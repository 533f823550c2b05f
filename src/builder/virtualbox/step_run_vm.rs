//! `StepRunVm`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`).

use super::VBoxState;
use super::calls::{run_all, vm_state};
use crate::hypervisor::virtualbox::command::{poweroff, startvm};
use crate::run::runner::{CleanupFuture, Outcome, Step, StepContext, StepFuture};

pub struct StepRunVm;

impl Step<VBoxState> for StepRunVm {
    fn name(&self) -> &'static str {
        "Starting the VM"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let command = startvm(&state.config.vm_name, state.config.headless);
            run_all(state.vbox()?, vec![command]).await?;
            if let (true, Some((address, port))) = (state.config.headless, &state.vrdp) {
                ctx.reporter.info(
                    &ctx.build,
                    &format!(
                        "The VM runs headless; to watch its screen, connect an RDP client (no password) to rdp://{address}:{port}"
                    ),
                );
            }
            Ok(())
        })
    }

    fn cleanup<'a>(
        &'a mut self,
        state: &'a mut VBoxState,
        ctx: &'a StepContext,
        _outcome: Outcome,
    ) -> CleanupFuture<'a> {
        Box::pin(async move {
            let Some(vbox) = state.vbox.clone() else {
                return;
            };
            let vm = state.config.vm_name.clone();
            if vm_state(vbox.clone(), vm.clone())
                .await
                .is_some_and(|s| s.is_running())
            {
                ctx.reporter.info(&ctx.build, "Stopping the VM");
                if let Err(e) = run_all(vbox, vec![poweroff(&vm)]).await {
                    ctx.reporter
                        .warn(&ctx.build, &format!("could not power off {vm}: {e}"));
                }
            }
        })
    }
}
