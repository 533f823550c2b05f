//! `StepFindVBoxManage`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`).

use std::sync::Arc;

use super::VBoxState;
use crate::hypervisor::virtualbox::{VBoxManage, VBoxManageCli};
use crate::run::runner::{FailureClass, Step, StepContext, StepError, StepFuture};

pub struct StepFindVBoxManage;

impl Step<VBoxState> for StepFindVBoxManage {
    fn name(&self) -> &'static str {
        "Finding VBoxManage"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let cli = VBoxManageCli::locate().map_err(|e| {
                StepError::with_source(FailureClass::Host, "cannot use VirtualBox", e)
            })?;
            let version = tokio::task::spawn_blocking(move || cli.version().map(|v| (cli, v)))
                .await
                .map_err(|e| {
                    StepError::with_source(FailureClass::Host, "a VBoxManage task failed", e)
                })?;
            let (cli, version) = version.map_err(|e| {
                StepError::with_source(FailureClass::Host, "cannot use VirtualBox", e)
            })?;
            ctx.reporter
                .info(&ctx.build, &format!("VirtualBox {}", version.raw));
            state.vbox = Some(Arc::new(cli));
            state.version = Some(version);
            Ok(())
        })
    }
}
