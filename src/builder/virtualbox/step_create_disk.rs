//! `StepCreateDisk`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`).

use super::VBoxState;
use super::calls::run_all;
use crate::hypervisor::virtualbox::command::close_medium;
use crate::run::runner::{Step, StepContext, StepFuture};

pub struct StepCreateDisk;

impl Step<VBoxState> for StepCreateDisk {
    fn name(&self) -> &'static str {
        "Creating the disk"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            // Resumed: the boot disk is a clone of the install checkpoint's.
            let checkpoint = state.checkpoint.resumed_from().map(|c| c.disk.clone());
            let commands = super::specs::disk_spec(&state.config)
                .create_commands_from(&state.config.vm_name, checkpoint.as_deref());
            run_all(state.vbox()?, commands).await?;
            // Best effort: another build cloning the same checkpoint at
            // this moment holds it open, and VirtualBox then refuses to
            // close it; the entry costs nothing but a line in its registry.
            if let Some(disk) = checkpoint
                && let Err(e) = run_all(state.vbox()?, vec![close_medium(&disk)]).await
            {
                ctx.reporter.warn(
                    &ctx.build,
                    &format!(
                        "VirtualBox keeps the install checkpoint {} registered: {}",
                        disk.display(),
                        e.chain()
                    ),
                );
            }
            Ok(())
        })
    }
}
