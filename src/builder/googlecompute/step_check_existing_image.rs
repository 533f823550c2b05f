//! Fails before anything is created when `image_name` already exists, as
//! Packer does (the build would otherwise run to its very end first).

use super::error::GceStepError;
use crate::cloud::gce::GceError;
use crate::run::runner::{Step, StepContext, StepFuture};

use super::GceState;

pub struct StepCheckExistingImage;

impl Step<GceState> for StepCheckExistingImage {
    fn name(&self) -> &'static str {
        "Checking the image name"
    }

    fn run<'a>(&'a mut self, state: &'a mut GceState, _ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            if state.config.skip_create_image {
                return Ok(());
            }
            let client = state.client()?;
            let name = &state.config.image_name;
            match client.get_image(&client.project, name).await {
                Ok(_) => Err(GceStepError::ImageExists {
                    name: name.clone(),
                    project: client.project.clone(),
                }
                .into()),
                Err(GceError::Api { code: 404, .. }) => Ok(()),
                Err(e) => Err(GceStepError::api(format!(
                    "cannot check whether image {name} exists"
                ))(e)
                .into()),
            }
        })
    }
}
