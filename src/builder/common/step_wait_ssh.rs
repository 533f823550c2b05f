//! Waits for the guest's SSH server, giving up early if the VM stops.

use std::path::PathBuf;
use std::sync::Arc;

use crate::communicator::ssh::{
    SshAuth, SshError, SshSession, SshTarget, WaitOptions, wait_for_ssh,
};
use crate::config::common::SshConfig;
use crate::run::runner::{
    CleanupFuture, FailureClass, Outcome, Step, StepContext, StepError, StepFuture,
};

use super::{GuestStopped, HasCommon, serial_note};

pub struct StepWaitSsh;

/// The target for a guest whose port 22 is forwarded to
/// `forwarded_port` on the host (QEMU `hostfwd`, VirtualBox NAT).
/// `ssh_host` from the template wins over 127.0.0.1 when set.
/// `temporary_key` is the build's own pair, used when the template
/// gives no other way to log in.
fn ssh_target(
    config: &SshConfig,
    forwarded_port: u16,
    temporary_key: Option<Arc<russh::keys::PrivateKey>>,
) -> Result<SshTarget, SshError> {
    let auth = match (&config.private_key_file, &config.password) {
        _ if config.agent_auth => SshAuth::Agent {
            socket: std::env::var_os("SSH_AUTH_SOCK")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            private_key_file: config.private_key_file.clone(),
            password: config.password.clone(),
        },
        (Some(key), Some(password)) => SshAuth::Both {
            private_key_file: key.clone(),
            password: password.clone(),
        },
        (Some(key), None) => SshAuth::PrivateKeyFile(key.clone()),
        (None, Some(password)) => SshAuth::Password(password.clone()),
        (None, None) => match temporary_key {
            Some(key) => SshAuth::TemporaryKey(key),
            None => {
                return Err(SshError::NoCredentials {
                    user: config.username.clone(),
                });
            }
        },
    };
    Ok(SshTarget {
        host: config
            .host
            .clone()
            .unwrap_or_else(|| "127.0.0.1".to_owned()),
        port: forwarded_port,
        username: config.username.clone(),
        auth,
    })
}

/// `ssh_timeout`, `ssh_handshake_attempts` and `ssh_keep_alive_interval`
/// as the communicator's wait options.
fn wait_options(config: &SshConfig) -> WaitOptions {
    WaitOptions {
        timeout: config.timeout,
        handshake_attempts: config.handshake_attempts,
        keep_alive_interval: config.keep_alive_interval,
        ..WaitOptions::default()
    }
}

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
            FailureClass::Guest,
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
    StepError::new(
        FailureClass::Guest,
        format!(
            "the VM stopped before SSH became available: {why}\n  = hint: {}{}",
            why.hint(),
            serial_note(serial, 15)
        ),
    )
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
            let target = ssh_target(&ssh, port, temporary_key).map_err(|e| {
                StepError::with_source(FailureClass::Host, "cannot connect over SSH", e)
            })?;
            let options = wait_options(&ssh);
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
