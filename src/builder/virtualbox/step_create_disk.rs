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
            let commands =
                super::specs::disk_spec(&state.config).create_commands(&state.config.vm_name);
            run_all(state.vbox()?, commands).await
        })
    }
}
