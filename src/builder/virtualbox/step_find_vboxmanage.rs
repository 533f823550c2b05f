//! `StepFindVBoxManage`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`).

use std::sync::Arc;

use super::VBoxState;
use super::error::VBoxStepError;
use crate::hypervisor::virtualbox::{VBoxManage, VBoxManageCli};
use crate::run::runner::{Step, StepContext, StepFuture};

pub struct StepFindVBoxManage;

impl Step<VBoxState> for StepFindVBoxManage {
    fn name(&self) -> &'static str {
        "Finding VBoxManage"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let cli = VBoxManageCli::locate().map_err(VBoxStepError::Unusable)?;
            let version = tokio::task::spawn_blocking(move || cli.version().map(|v| (cli, v)))
                .await
                .map_err(VBoxStepError::Task)?;
            let (cli, version) = version.map_err(VBoxStepError::Unusable)?;
            ctx.reporter
                .info(&ctx.build, &format!("VirtualBox {}", version.raw));
            state.vbox = Some(Arc::new(cli));
            state.version = Some(version);
            Ok(())
        })
    }
}
