//! `StepForwardSsh`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`).

use super::VBoxState;
use super::calls::run_all;
use super::error::VBoxStepError;
use crate::host::port::find_free_port;
use crate::hypervisor::virtualbox::NatRule;
use crate::run::runner::{Step, StepContext, StepFuture};

pub struct StepForwardSsh;

impl Step<VBoxState> for StepForwardSsh {
    fn name(&self) -> &'static str {
        "Forwarding the SSH port"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let Some(ssh) = state.common.communicator.ssh().cloned() else {
                return Ok(());
            };
            if state.config.skip_nat_mapping {
                return Ok(());
            }
            let port = find_free_port(state.config.host_port_min, state.config.host_port_max)
                .map_err(VBoxStepError::NoSshPort)?;
            let commands = NatRule::ssh(port, ssh.port).add_commands(&state.config.vm_name);
            run_all(state.vbox()?, commands).await?;
            ctx.reporter.info(
                &ctx.build,
                &format!("Forwarding 127.0.0.1:{port} to the guest's SSH port"),
            );
            state.common.ssh_host_port = Some(port);
            Ok(())
        })
    }
}
