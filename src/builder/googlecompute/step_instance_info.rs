//! Waits for the instance to be RUNNING and points the communicator at its
//! address (external, or internal with `use_internal_ip`), port 22 as on GCE.

use std::time::{Duration, Instant};

use super::error::GceStepError;
use crate::config::common::Communicator;
use crate::run::runner::{Step, StepContext, StepFuture};

use super::GceState;

pub struct StepInstanceInfo;

impl Step<GceState> for StepInstanceInfo {
    fn name(&self) -> &'static str {
        "Waiting for the instance to run"
    }

    fn run<'a>(&'a mut self, state: &'a mut GceState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let client = state.client()?;
            let zone = state.config.zone.clone();
            let name = state.instance_name.clone();
            let started = Instant::now();
            let instance = loop {
                let instance = client
                    .get_instance(&zone, &name)
                    .await
                    .map_err(GceStepError::api(format!("cannot read instance {name}")))?;
                if instance.status == "RUNNING" {
                    break instance;
                }
                if started.elapsed() > state.config.state_timeout {
                    return Err(GceStepError::NotRunning {
                        name: name.clone(),
                        status: instance.status.clone(),
                        timeout: state.config.state_timeout,
                    }
                    .into());
                }
                tokio::select! {
                    () = ctx.cancel.cancelled() => return Err(GceStepError::Interrupted("interrupted").into()),
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            };
            let address = instance
                .address(state.config.use_internal_ip)
                .ok_or_else(|| GceStepError::NoAddress {
                    name: name.clone(),
                    internal: state.config.use_internal_ip,
                })?;
            ctx.reporter
                .info(&ctx.build, &format!("Instance {name} runs at {address}"));
            if let Communicator::Ssh(ssh) = &mut state.common.communicator
                && ssh.host.is_none()
            {
                ssh.host = Some(address);
            }
            Ok(())
        })
    }
}
