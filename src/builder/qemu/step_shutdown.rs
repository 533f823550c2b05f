//! Stops the guest cleanly: `shutdown_command` over SSH, or ACPI power-down
//! through QMP, then waits for QEMU to exit within `shutdown_timeout`.

use crate::builder::common::{run_shutdown_command, serial_note};
use crate::run::runner::{Step, StepContext, StepError, StepFuture};

use super::{QemuState, fail};

pub struct StepShutdown;

impl Step<QemuState> for StepShutdown {
    fn name(&self) -> &'static str {
        "Shutting down the VM"
    }

    fn run<'a>(&'a mut self, state: &'a mut QemuState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let timeout = state.config.shutdown.timeout;
            match (&state.config.shutdown.command, state.common.ssh.clone()) {
                (Some(command), Some(ssh)) => run_shutdown_command(&ssh, command, ctx).await,
                _ => {
                    ctx.reporter
                        .info(&ctx.build, "Sending an ACPI power-down to the VM");
                    let qmp = state
                        .qmp
                        .as_mut()
                        .ok_or_else(|| StepError::new("no QMP connection"))?;
                    qmp.system_powerdown()
                        .await
                        .map_err(|e| fail("QEMU refused the power-down", e))?;
                }
            }
            // The session is useless once the guest is going down.
            state.common.ssh = None;
            let vm = state
                .vm
                .as_mut()
                .ok_or_else(|| StepError::new("the VM is not running"))?;
            match vm
                .wait_exit(timeout)
                .await
                .map_err(|e| fail("cannot wait for QEMU", e))?
            {
                Some(_) => {
                    ctx.reporter.info(&ctx.build, "The VM has stopped");
                    Ok(())
                }
                None => Err(StepError::new(format!(
                    "the guest did not stop within shutdown_timeout ({timeout:?}); it will be killed. Check shutdown_command, or raise shutdown_timeout{}",
                    serial_note(state.common.serial_log.as_ref(), 10)
                ))),
            }
        })
    }
}
