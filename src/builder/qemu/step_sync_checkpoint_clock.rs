//! Sets the clock of a guest resumed from a checkpoint's memory state.
//! Such a guest never booted: its clock runs on from the moment the
//! checkpoint was saved (minutes or days behind), which TLS certificate
//! checks, apt's `Release` validity and `make` trip over. kiln sets it
//! from the host's over SSH before any provisioner runs:
//! `date -u -s @SECONDS`, through `sudo -n` when that fails (GNU and
//! busybox `date` both take `@SECONDS`).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::communicator::ssh::ExitStatus;
use crate::run::runner::{Step, StepContext, StepFuture};

use super::QemuState;

pub struct StepSyncCheckpointClock;

/// The guest command that sets its clock to `secs` since the epoch.
pub(super) fn set_clock_command(secs: u64) -> String {
    format!("date -u -s @{secs} >/dev/null 2>&1 || sudo -n date -u -s @{secs} >/dev/null")
}

impl Step<QemuState> for StepSyncCheckpointClock {
    fn name(&self) -> &'static str {
        "Setting the resumed guest's clock"
    }

    fn run<'a>(&'a mut self, state: &'a mut QemuState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            if !state.memory_resumed {
                return Ok(());
            }
            let Some(ssh) = state.common.ssh.clone() else {
                return Ok(());
            };
            // Rounded up: the command reaches the guest a moment later.
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() + u64::from(d.subsec_millis() >= 500));
            let mut said = Vec::new();
            let result = ssh
                .exec(&set_clock_command(now), |_, line| {
                    said.push(line.to_owned())
                })
                .await;
            match result {
                Ok(ExitStatus::Code(0)) => ctx.reporter.info(
                    &ctx.build,
                    "Set the resumed guest's clock to the host's (it stood at the checkpoint's time)",
                ),
                Ok(status) => ctx.reporter.warn(
                    &ctx.build,
                    &format!(
                        "could not set the resumed guest's clock ({status:?}{}): it still shows the checkpoint's time; give the SSH user root or passwordless sudo for `date`, or set it in a provisioner",
                        if said.is_empty() { String::new() } else { format!(": {}", said.join(" ")) }
                    ),
                ),
                Err(e) => ctx.reporter.warn(
                    &ctx.build,
                    &format!("could not set the resumed guest's clock: {e}"),
                ),
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_set_as_root_or_through_sudo() {
        assert_eq!(
            set_clock_command(1_700_000_000),
            "date -u -s @1700000000 >/dev/null 2>&1 || sudo -n date -u -s @1700000000 >/dev/null"
        );
    }
}
