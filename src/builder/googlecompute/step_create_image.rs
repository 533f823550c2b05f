//! Makes the image from the stopped instance's boot disk, with the image keys.

use super::error::GceStepError;
use crate::cloud::gce::{CustomerEncryptionKey, ImageSpec};
use crate::config::googlecompute::ImageEncryptionKey;
use crate::run::runner::{Step, StepContext, StepFuture};

use super::GceState;

pub struct StepCreateImage;

impl Step<GceState> for StepCreateImage {
    fn name(&self) -> &'static str {
        "Creating the image"
    }

    fn run<'a>(&'a mut self, state: &'a mut GceState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let config = &state.config;
            if config.skip_create_image {
                ctx.reporter
                    .info(&ctx.build, "skip_create_image: no image is made");
                return Ok(());
            }
            let client = state.client()?;
            let spec = ImageSpec {
                name: config.image_name.clone(),
                family: config.image_family.clone(),
                description: config.image_description.clone(),
                labels: config.image_labels.clone(),
                licenses: config.image_licenses.clone(),
                storage_locations: config.image_storage_locations.clone(),
                guest_os_features: config.image_guest_os_features.clone(),
                source_disk: client.disk_link(&config.zone, &state.disk_name),
                encryption_key: config.image_encryption_key.as_ref().map(|k| match k {
                    ImageEncryptionKey::KmsKeyName(n) => {
                        CustomerEncryptionKey::KmsKeyName(n.clone())
                    }
                    ImageEncryptionKey::RawKey(r) => CustomerEncryptionKey::RawKey(r.clone()),
                }),
                ..ImageSpec::default()
            };
            ctx.reporter.info(
                &ctx.build,
                &format!("Creating image {} from disk {}", spec.name, state.disk_name),
            );
            let op = client
                .insert_image(&spec)
                .await
                .map_err(GceStepError::api(format!(
                    "cannot create image {}",
                    spec.name
                )))?;
            client
                .wait(
                    op,
                    &format!("creating image {}", spec.name),
                    config.state_timeout,
                    &ctx.cancel,
                )
                .await
                .map_err(|e| {
                    GceStepError::api(format!("image {} was not created", spec.name))(e).into()
                })
        })
    }
}
