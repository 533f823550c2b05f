//! `StepDetachFloppy`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`).

use super::VBoxState;
use super::calls::run_all;
use crate::hypervisor::virtualbox::command::floppy;
use crate::run::runner::{Step, StepContext, StepFuture};

/// Takes the floppy out and removes its controller before the export: the
/// image is deleted when the build ends.
pub struct StepDetachFloppy;

impl Step<VBoxState> for StepDetachFloppy {
    fn name(&self) -> &'static str {
        "Detaching the floppy"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, _ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            if state.common.floppy_path.is_none() {
                return Ok(());
            }
            let commands = floppy::detach(&state.config.vm_name);
            run_all(state.vbox()?, commands).await
        })
    }
}
