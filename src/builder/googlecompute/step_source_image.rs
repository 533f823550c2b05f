//! Resolves `source_image` or `source_image_family` in the projects of
//! `source_image_project_id` (in order), then the build's own project and
//! Google's public image projects, as Packer's driver searches them.

use super::error::GceStepError;
use crate::cloud::gce::GceError;
use crate::run::runner::{Step, StepContext, StepFuture};

use super::GceState;

pub struct StepSourceImage;

/// Where Packer looks when no project is given, after the build's project.
const PUBLIC_IMAGE_PROJECTS: &[&str] = &[
    "centos-cloud",
    "cos-cloud",
    "coreos-cloud",
    "debian-cloud",
    "rhel-cloud",
    "rhel-sap-cloud",
    "suse-cloud",
    "suse-sap-cloud",
    "ubuntu-os-cloud",
    "windows-cloud",
    "google-containers",
    "opensuse-cloud",
];

impl Step<GceState> for StepSourceImage {
    fn name(&self) -> &'static str {
        "Finding the source image"
    }

    fn run<'a>(&'a mut self, state: &'a mut GceState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let client = state.client()?;
            let config = &state.config;
            let projects: Vec<String> = if config.source_image_project_id.is_empty() {
                std::iter::once(config.project_id.clone())
                    .chain(PUBLIC_IMAGE_PROJECTS.iter().map(|p| (*p).to_owned()))
                    .collect()
            } else {
                config.source_image_project_id.clone()
            };
            let (what, by_family) = match (&config.source_image, &config.source_image_family) {
                (Some(name), _) => (name.clone(), false),
                (None, Some(family)) => (family.clone(), true),
                (None, None) => {
                    return Err(GceStepError::NoSourceImage.into());
                }
            };
            let mut last = None;
            for project in &projects {
                let found = if by_family {
                    client.get_image_from_family(project, &what).await
                } else {
                    client.get_image(project, &what).await
                };
                match found {
                    Ok(image) => {
                        ctx.reporter.info(
                            &ctx.build,
                            &format!("Using source image {} from project {project}", image.name),
                        );
                        state.source_image = Some(image);
                        return Ok(());
                    }
                    Err(GceError::Api {
                        code: 404 | 403, ..
                    }) => {}
                    Err(e) => last = Some(e),
                }
            }
            if let Some(e) = last {
                return Err(GceStepError::api("cannot look up the source image")(e).into());
            }
            let kind = if by_family { "image family" } else { "image" };
            let key = if by_family {
                "source_image_family"
            } else {
                "source_image"
            };
            Err(GceStepError::SourceImageNotFound {
                kind,
                what,
                key,
                projects,
            }
            .into())
        })
    }
}
