//! `StepUploadVersion`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`).

use super::VBoxState;
use super::error::VBoxStepError;
use crate::run::runner::{Step, StepContext, StepFuture};

/// Uploads `virtualbox_version_file` (default `.vbox_version`) so scripts
/// in the guest know the VirtualBox version.
pub struct StepUploadVersion;

impl Step<VBoxState> for StepUploadVersion {
    fn name(&self) -> &'static str {
        "Uploading the VirtualBox version"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let (Some(path), Some(ssh)) = (
                state.config.virtualbox_version_file.clone(),
                state.common.ssh.clone(),
            ) else {
                return Ok(());
            };
            // Read once by StepFindVBoxManage (Packer asks VBoxManage again).
            let version = state
                .version
                .as_ref()
                .ok_or(VBoxStepError::UnknownVersion)?;
            let text = version.number();
            let mut reader = text.as_bytes();
            ssh.upload(&mut reader, text.len() as u64, &path, 0o644)
                .await
                .map_err(|source| VBoxStepError::Upload {
                    target: path.clone(),
                    source,
                })?;
            ctx.reporter.info(
                &ctx.build,
                &format!("Uploaded the VirtualBox version ({text}) to {path}"),
            );
            Ok(())
        })
    }
}
