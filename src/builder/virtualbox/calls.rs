//! Calling VBoxManage from the builder's steps: it is a blocking program,
//! so every call runs on the blocking pool.

use std::sync::Arc;

use super::error::VBoxStepError;
use crate::hypervisor::virtualbox::{VBoxCommand, VBoxManage, VmState};
use crate::run::runner::StepError;

/// Runs `commands` in order; the first failure stops, with its stderr.
pub(super) async fn run_all(
    vbox: Arc<dyn VBoxManage>,
    commands: Vec<VBoxCommand>,
) -> Result<(), StepError> {
    tokio::task::spawn_blocking(move || {
        for c in &commands {
            vbox.run_command(c)
                .map_err(|e| StepError::from(VBoxStepError::Command(e)))?;
        }
        Ok(())
    })
    .await
    .map_err(VBoxStepError::Task)?
}

pub(super) async fn vm_state(vbox: Arc<dyn VBoxManage>, vm: String) -> Option<VmState> {
    tokio::task::spawn_blocking(move || vbox.vm_state(&vm).ok())
        .await
        .ok()
        .flatten()
}
