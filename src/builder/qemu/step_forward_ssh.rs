//! Chooses the host port forwarded to the guest's SSH port (loopback only).

use crate::host::port::find_free_port;
use crate::run::runner::{Step, StepContext, StepFuture};

use super::{QemuState, fail_on_host};

pub struct StepForwardSsh;

impl Step<QemuState> for StepForwardSsh {
    fn name(&self) -> &'static str {
        "Choosing the SSH port"
    }

    fn run<'a>(&'a mut self, state: &'a mut QemuState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            if state.common.communicator.ssh().is_none() {
                return Ok(());
            }
            if state.config.skip_nat_mapping {
                ctx.reporter.info(
                    &ctx.build,
                    "skip_nat_mapping: connecting to ssh_port directly",
                );
                return Ok(());
            }
            let port = find_free_port(state.config.host_port_min, state.config.host_port_max)
                .map_err(|e| {
                    fail_on_host(
                        "cannot find a free port for SSH (host_port_min..host_port_max)",
                        e,
                    )
                })?;
            ctx.reporter.info(
                &ctx.build,
                &format!("Forwarding 127.0.0.1:{port} to the guest's SSH port"),
            );
            state.common.ssh_host_port = Some(port);
            Ok(())
        })
    }
}
