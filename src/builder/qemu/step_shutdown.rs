//! Stops the guest cleanly: `shutdown_command` over SSH, or ACPI power-down
//! through QMP, then waits for QEMU to exit within `shutdown_timeout`.

use std::time::Duration;

use tokio::time::Instant;

use crate::builder::common::{run_shutdown_command, serial_note};
use crate::hypervisor::qemu::process::ProcessError;
use crate::hypervisor::qemu::qmp::QmpError;
use crate::run::runner::{FailureClass, Step, StepContext, StepFailure, StepFuture};

use super::QemuState;

#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    #[error("no QMP connection")]
    NoQmp,
    #[error("QEMU refused the power-down")]
    PowerDown(#[source] QmpError),
    #[error("the VM is not running")]
    NotRunning,
    #[error("cannot wait for QEMU")]
    Wait(#[source] ProcessError),
    #[error(
        "the guest did not stop within shutdown_timeout ({timeout:?}); it will be killed. Check shutdown_command, or raise shutdown_timeout{serial_note}"
    )]
    Timeout {
        timeout: Duration,
        serial_note: String,
    },
}

impl StepFailure for ShutdownError {
    fn class(&self) -> FailureClass {
        match self {
            Self::Timeout { .. } => FailureClass::Guest,
            Self::NoQmp | Self::PowerDown(_) | Self::NotRunning | Self::Wait(_) => {
                FailureClass::Host
            }
        }
    }
}

pub struct StepShutdown;

/// How often an unanswered ACPI power button is pressed again.
const REPRESS_EVERY: Duration = Duration::from_secs(10);

async fn press_power_button(state: &mut QemuState) -> Result<(), ShutdownError> {
    let qmp = state.qmp.as_mut().ok_or(ShutdownError::NoQmp)?;
    qmp.system_powerdown()
        .await
        .map_err(ShutdownError::PowerDown)
}

impl Step<QemuState> for StepShutdown {
    fn name(&self) -> &'static str {
        "Shutting down the VM"
    }

    fn run<'a>(&'a mut self, state: &'a mut QemuState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let timeout = state.config.shutdown.timeout;
            let deadline = Instant::now() + timeout;
            let acpi = match (&state.config.shutdown.command, state.common.ssh.clone()) {
                (Some(command), Some(ssh)) => {
                    run_shutdown_command(&ssh, command, ctx).await;
                    false
                }
                _ => {
                    ctx.reporter
                        .info(&ctx.build, "Sending an ACPI power-down to the VM");
                    press_power_button(state).await?;
                    true
                }
            };
            // The session is useless once the guest is going down.
            state.common.ssh = None;
            loop {
                let now = Instant::now();
                let left = deadline.saturating_duration_since(now);
                // A guest that has not enabled its ACPI power button yet
                // (still booting, as with `communicator: none`) drops the
                // press: it is pressed again until the guest stops.
                let wait = if acpi { left.min(REPRESS_EVERY) } else { left };
                let vm = state.vm.as_mut().ok_or(ShutdownError::NotRunning)?;
                if vm
                    .wait_exit(wait)
                    .await
                    .map_err(ShutdownError::Wait)?
                    .is_some()
                {
                    ctx.reporter.info(&ctx.build, "The VM has stopped");
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(ShutdownError::Timeout {
                        timeout,
                        serial_note: serial_note(state.common.serial_log.as_ref(), 10),
                    }
                    .into());
                }
                if let Err(e) = press_power_button(state).await {
                    // QEMU may have exited between the wait and the press.
                    let exited = state
                        .vm
                        .as_mut()
                        .and_then(|vm| vm.try_wait().ok().flatten())
                        .is_some();
                    if !exited {
                        return Err(e.into());
                    }
                }
            }
        })
    }
}
