//! `StepCreateDisk`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`).

use super::VBoxState;
use super::calls::run_all;
use crate::run::runner::{Step, StepContext, StepFuture};

pub struct StepCreateDisk;

impl Step<VBoxState> for StepCreateDisk {
    fn name(&self) -> &'static str {
        "Creating the disk"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, _ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            // Resumed: the boot disk is a clone of the install checkpoint's.
            let checkpoint = state.checkpoint.resumed_from().map(|c| c.disk.as_path());
            let commands = super::specs::disk_spec(&state.config)
                .create_commands_from(&state.config.vm_name, checkpoint);
            run_all(state.vbox()?, commands).await
        })
    }
}
