//! Stops the instance so its disk is consistent before the image is made.

use super::error::GceStepError;
use crate::run::runner::{Step, StepContext, StepFuture};

use super::GceState;

pub struct StepStopInstance;

impl Step<GceState> for StepStopInstance {
    fn name(&self) -> &'static str {
        "Stopping the instance"
    }

    fn run<'a>(&'a mut self, state: &'a mut GceState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            if state.config.skip_create_image {
                return Ok(());
            }
            let client = state.client()?;
            // The SSH session ends with the instance.
            if let Some(session) = state.common.ssh.take()
                && let Ok(session) = std::sync::Arc::try_unwrap(session)
            {
                session.close().await;
            }
            let name = state.instance_name.clone();
            let op = client
                .stop_instance(&state.config.zone, &name)
                .await
                .map_err(GceStepError::api(format!("cannot stop instance {name}")))?;
            client
                .wait(
                    op,
                    &format!("stopping instance {name}"),
                    state.config.state_timeout,
                    &ctx.cancel,
                )
                .await
                .map_err(|e| GceStepError::api(format!("instance {name} did not stop"))(e).into())
        })
    }
}
