//! `StepDetachIso`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`).

use super::VBoxState;
use super::calls::run_all;
use super::step_attach_iso::dvd_slots;
use crate::run::runner::{Step, StepContext, StepFuture};

pub struct StepDetachIso;

impl Step<VBoxState> for StepDetachIso {
    fn name(&self) -> &'static str {
        "Detaching the ISOs"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, _ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            // `bundle_iso` keeps the boot ISO (the first slot) in the export.
            let skip = usize::from(state.config.bundle_iso);
            let commands = dvd_slots(state)
                .into_iter()
                .skip(skip)
                .map(|(slot, _)| slot.detach(&state.config.vm_name))
                .collect();
            run_all(state.vbox()?, commands).await
        })
    }
}
