//! The googlecompute build's typed state.

use std::sync::Arc;
use std::time::Duration;

use super::error::GceStepError;
use crate::builder::common::{CommonState, GuestStopWatch, GuestStopped, HasCommon};
use crate::cloud::gce::ComputeClient;
use crate::cloud::gce::compute::Image;
use crate::config::Build;
use crate::config::googlecompute::GoogleComputeConfig;
use crate::run::RunOptions;
use crate::run::runner::StepError;

pub struct GceState {
    pub config: GoogleComputeConfig,
    pub common: CommonState,
    /// Read before the steps run.
    pub credentials: Option<crate::cloud::gce::Credentials>,
    /// Set by the first step.
    pub client: Option<Arc<ComputeClient>>,
    pub source_image: Option<Image>,
    pub instance_name: String,
    pub disk_name: String,
    /// The instance exists (its cleanup deletes it and its disk).
    pub instance_created: bool,
}

impl GceState {
    pub fn new(build: &Build, config: &GoogleComputeConfig, options: &RunOptions) -> Self {
        let common = CommonState::communicator_only(build, options, &config.communicator);
        // Packer's names: packer-<uuid>, the disk named after the instance.
        let instance_name = config
            .instance_name
            .clone()
            .unwrap_or_else(|| format!("packer-{}", uuid::Uuid::new_v4()));
        let disk_name = config
            .disk_name
            .clone()
            .unwrap_or_else(|| instance_name.clone());
        Self {
            config: config.clone(),
            common,
            credentials: None,
            client: None,
            source_image: None,
            instance_name,
            disk_name,
            instance_created: false,
        }
    }

    /// The client the first step made.
    pub fn client(&self) -> Result<Arc<ComputeClient>, StepError> {
        self.client
            .clone()
            .ok_or_else(|| GceStepError::NotConnected.into())
    }
}

impl HasCommon for GceState {
    fn common(&mut self) -> &mut CommonState {
        &mut self.common
    }

    /// The instance stopping by itself (TERMINATED) or vanishing, checked
    /// every few seconds.
    fn guest_stopped(&mut self) -> GuestStopWatch<'_> {
        let client = self.client.clone();
        let zone = self.config.zone.clone();
        let name = self.instance_name.clone();
        Box::pin(async move {
            let Some(client) = client else {
                return std::future::pending().await;
            };
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                match client.get_instance(&zone, &name).await {
                    Ok(i) if i.status == "TERMINATED" || i.status == "STOPPED" => {
                        return GuestStopped::VmState {
                            state: i.status,
                            detail: Some("the instance stopped".to_owned()),
                        };
                    }
                    Err(crate::cloud::gce::GceError::Api { code: 404, .. }) => {
                        return GuestStopped::Gone(format!("instance {name} was deleted"));
                    }
                    _ => {}
                }
            }
        })
    }
}
