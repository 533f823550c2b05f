//! `StepVBoxManageRows`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`).

use super::VBoxState;
use super::calls::run_all;
use crate::builder::common::render_deferred;
use crate::hypervisor::virtualbox::render_vboxmanage_rows;
use crate::run::runner::{Step, StepContext, StepFuture};

/// `vboxmanage` (before start) or `vboxmanage_post` (after shutdown).
pub struct StepVBoxManageRows {
    pub post: bool,
}

impl Step<VBoxState> for StepVBoxManageRows {
    fn name(&self) -> &'static str {
        if self.post {
            "Running vboxmanage_post"
        } else {
            "Running vboxmanage"
        }
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, _ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let (rows, key) = if self.post {
                (&state.config.vboxmanage_post, "vboxmanage_post")
            } else {
                (&state.config.vboxmanage, "vboxmanage")
            };
            let common = &state.common;
            let commands = render_vboxmanage_rows(rows, &state.config.vm_name, |d, data| {
                render_deferred(common, key, d, data)
            })?;
            run_all(state.vbox()?, commands).await
        })
    }
}
