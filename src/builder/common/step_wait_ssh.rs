//! Waits for the guest's SSH server, giving up early if the VM stops.

use std::sync::Arc;

use crate::communicator::ssh::{SshSession, SshTarget, WaitOptions, wait_for_ssh};
use crate::run::runner::{CleanupFuture, Outcome, Step, StepContext, StepError, StepFuture};

use super::{GuestStopped, HasCommon, serial_note};

pub struct StepWaitSsh;

/// Waits for a login, racing the VM stopping by itself.
async fn connect_unless_stopped<S: HasCommon>(
    state: &mut S,
    target: &SshTarget,
    options: &WaitOptions,
    ctx: &StepContext,
) -> Result<SshSession, StepError> {
    let serial = state.common().serial_log.clone();
    let wait = wait_for_ssh(
        target,
        options,
        ctx.reporter.clone(),
        &ctx.build,
        &ctx.cancel,
    );
    let session = tokio::select! {
        r = wait => r,
        why = state.guest_stopped() => return Err(stopped_error(&why, serial.as_ref())),
    };
    session.map_err(|e| {
        StepError::with_source(
            format!(
                "no SSH connection to the guest{}",
                serial_note(serial.as_ref(), 15)
            ),
            e,
        )
    })
}

/// The cause is written into the message, not chained after it, so the
/// hint follows what it is about.
fn stopped_error(why: &GuestStopped, serial: Option<&std::path::PathBuf>) -> StepError {
    StepError::new(format!(
        "the VM stopped before SSH became available: {why}\n  = hint: {}{}",
        why.hint(),
        serial_note(serial, 15)
    ))
}

impl<S: HasCommon> Step<S> for StepWaitSsh {
    fn name(&self) -> &'static str {
        "Waiting for SSH"
    }

    fn run<'a>(&'a mut self, state: &'a mut S, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let common = state.common();
            let Some(ssh) = common.communicator.ssh().cloned() else {
                ctx.reporter
                    .info(&ctx.build, "communicator is none: not connecting");
                return Ok(());
            };
            let port = common.ssh_host_port.unwrap_or(ssh.port);
            let temporary_key = common.temporary_key.as_ref().map(|k| k.private.clone());
            let target = SshTarget::from_config(&ssh, port, temporary_key)
                .map_err(|e| StepError::with_source("cannot connect over SSH", e))?;
            let options = WaitOptions::from_config(&ssh);
            let serial = common.serial_log.clone();
            let mut session = connect_unless_stopped(state, &target, &options, ctx).await?;
            let pause = ssh.pause_before_connecting;
            if !pause.is_zero() {
                // Packer's race guard: the first login proves sshd is up,
                // the real one comes after the pause.
                ctx.reporter.info(
                    &ctx.build,
                    &format!("SSH answered; pausing {pause:?} before connecting (pause_before_connecting)"),
                );
                session.close().await;
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    why = state.guest_stopped() => return Err(stopped_error(&why, serial.as_ref())),
                }
                session = connect_unless_stopped(state, &target, &options, ctx).await?;
            }
            session.set_file_transfer(ssh.file_transfer);
            session.set_pty(ssh.pty);
            state.common().ssh = Some(Arc::new(session));
            Ok(())
        })
    }

    fn cleanup<'a>(
        &'a mut self,
        state: &'a mut S,
        _ctx: &'a StepContext,
        _outcome: Outcome,
    ) -> CleanupFuture<'a> {
        Box::pin(async move {
            if let Some(session) = state.common().ssh.take()
                && let Ok(session) = Arc::try_unwrap(session)
            {
                session.close().await;
            }
        })
    }
}
