//! `StepShutdown`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`).

use super::error::VBoxStepError;
use std::time::{Duration, Instant};

use super::VBoxState;
use super::calls::{run_all, vm_state};
use crate::builder::common::{run_shutdown_command, serial_note};
use crate::hypervisor::virtualbox::command::{acpi_power_button, poweroff};
use crate::run::runner::{Step, StepContext, StepFuture};

pub struct StepShutdown;

impl Step<VBoxState> for StepShutdown {
    fn name(&self) -> &'static str {
        "Shutting down the VM"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let vbox = state.vbox()?;
            let vm = state.config.vm_name.clone();
            match (&state.config.shutdown.command, state.common.ssh.clone()) {
                (Some(command), Some(ssh)) if !state.config.disable_shutdown => {
                    run_shutdown_command(&ssh, command, ctx).await;
                }
                _ if state.config.disable_shutdown => {
                    ctx.reporter.info(
                        &ctx.build,
                        "disable_shutdown: waiting for the guest to stop by itself",
                    );
                }
                _ if state.config.acpi_shutdown => {
                    ctx.reporter
                        .info(&ctx.build, "Pressing the VM's ACPI power button");
                    run_all(vbox.clone(), vec![acpi_power_button(&vm)]).await?;
                }
                // As Packer: no shutdown_command and no acpi_shutdown means
                // pulling the plug (validation warned about it).
                _ => {
                    ctx.reporter.info(
                        &ctx.build,
                        "No shutdown_command or acpi_shutdown: powering the VM off",
                    );
                    run_all(vbox.clone(), vec![poweroff(&vm)]).await?;
                }
            }
            state.common.ssh = None;
            let deadline = Instant::now() + state.config.shutdown.timeout;
            loop {
                if !vm_state(vbox.clone(), vm.clone())
                    .await
                    .is_some_and(|s| s.is_running())
                {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(VBoxStepError::ShutdownTimeout {
                        timeout: state.config.shutdown.timeout,
                        serial_note: serial_note(state.common.serial_log.as_ref(), 10),
                    }
                    .into());
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            tokio::time::sleep(state.config.post_shutdown_delay).await;
            ctx.reporter.info(&ctx.build, "The VM has stopped");
            Ok(())
        })
    }
}
