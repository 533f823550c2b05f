//! `StepExport`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`).

use super::VBoxState;
use super::calls::run_all;
use super::error::VBoxStepError;
use crate::hypervisor::virtualbox::NatRule;
use crate::run::runner::{Step, StepContext, StepFuture};

pub struct StepExport;

impl Step<VBoxState> for StepExport {
    fn name(&self) -> &'static str {
        "Exporting the VM"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            if state.config.skip_export {
                ctx.reporter.info(&ctx.build, "skip_export: not exporting");
                return Ok(());
            }
            let vm = &state.config.vm_name;
            let mut commands = Vec::new();
            // The build's SSH forward must not travel with the image: an
            // imported copy would claim this host port (Packer deletes it too).
            if let (Some(port), Some(ssh)) =
                (state.common.ssh_host_port, state.common.communicator.ssh())
            {
                ctx.reporter.info(
                    &ctx.build,
                    &format!("Deleting the SSH port forward (host port {port})"),
                );
                commands.push(NatRule::ssh(port, ssh.port).delete_command(vm));
            }
            commands.push(super::specs::export_spec(&state.config).command(vm));
            run_all(state.vbox()?, commands).await?;
            let dir = &state.common.output_dir;
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .map_err(|source| VBoxStepError::ListOutput {
                    dir: dir.clone(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|x| {
                        ["ova", "ovf", "vmdk", "mf"].contains(&x.to_string_lossy().as_ref())
                    })
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(VBoxStepError::NothingExported { dir: dir.clone() }.into());
            }
            state.exported = files;
            Ok(())
        })
    }
}
