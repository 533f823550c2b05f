//! `StepAttachFloppy`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`).

use super::VBoxState;
use super::calls::run_all;
use crate::hypervisor::virtualbox::command::floppy;
use crate::run::runner::{Step, StepContext, StepFuture};

/// Inserts the `floppy_files` image in a floppy drive on its own
/// controller, as Packer does.
pub struct StepAttachFloppy;

impl Step<VBoxState> for StepAttachFloppy {
    fn name(&self) -> &'static str {
        "Attaching the floppy"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, _ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let Some(image) = state.common.floppy_path.clone() else {
                return Ok(());
            };
            let commands = floppy::attach(&state.config.vm_name, &image);
            run_all(state.vbox()?, commands).await
        })
    }
}
