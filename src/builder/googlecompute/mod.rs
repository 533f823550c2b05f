//! The `googlecompute` builder: Packer's googlecompute steps over compute v1.
//!
//! credentials → image name free → source image → SSH key pair → instance
//! (with the key in `ssh-keys`) → RUNNING and its address → wait for SSH →
//! provision → stop → image from the boot disk; the instance and its disk
//! are deleted by the instance step's cleanup, on every exit path.

mod error;
mod state;
mod step_check_existing_image;
mod step_connect_api;
mod step_create_image;
mod step_create_instance;
mod step_instance_info;
mod step_source_image;
mod step_stop_instance;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::common::{StepProvision, StepSshKeyPair, StepWaitSsh};
use crate::artifact::Artifact;
use crate::config::Build;
use crate::config::googlecompute::GoogleComputeConfig;
use crate::run::runner::Step;
use crate::run::{BuildResult, RunOptions};
use crate::ui::Reporter;
pub use state::GceState;

/// Packer's id for this builder's artifacts.
pub const BUILDER_ID: &str = crate::artifact::ids::GOOGLECOMPUTE;

pub async fn run(
    build: &Build,
    config: &GoogleComputeConfig,
    options: &RunOptions,
    reporter: Arc<dyn Reporter>,
    cancel: CancellationToken,
) -> BuildResult {
    let mut state = GceState::new(build, config, options);
    match step_connect_api::find_credentials(config, options.render.pwd()) {
        Ok(credentials) => state.credentials = Some(credentials),
        Err(e) => {
            return BuildResult {
                name: build.name.clone(),
                artifact: Err(e),
                final_artifacts: Vec::new(),
                steps: Vec::new(),
                cancelled: false,
                up_to_date: None,
            };
        }
    }
    let mut steps: Vec<Box<dyn Step<GceState>>> = vec![
        Box::new(step_connect_api::StepConnectApi),
        Box::new(step_check_existing_image::StepCheckExistingImage),
        Box::new(step_source_image::StepSourceImage),
        Box::new(StepSshKeyPair),
        Box::new(step_create_instance::StepCreateInstance),
        Box::new(step_instance_info::StepInstanceInfo),
        Box::new(StepWaitSsh),
        Box::new(StepProvision),
        Box::new(step_stop_instance::StepStopInstance),
        Box::new(step_create_image::StepCreateImage),
    ];
    super::run_builder(
        build,
        options,
        reporter,
        cancel,
        &mut steps,
        &mut state,
        |state| artifact(build, state, options),
    )
    .await
}

fn artifact(build: &Build, state: &GceState, options: &RunOptions) -> Artifact {
    let mut pass_through = BTreeMap::new();
    // Packer's artifact carries the key file's path (never its content):
    // googlecompute-export falls back to it.
    if let Some(file) = &state.config.account_file {
        pass_through.insert(
            "AccountFilePath".to_owned(),
            options.render.pwd().join(file).display().to_string(),
        );
    }
    pass_through.insert("ImageName".to_owned(), state.config.image_name.clone());
    pass_through.insert("ProjectId".to_owned(), state.config.project_id.clone());
    pass_through.insert("BuildZone".to_owned(), state.config.zone.clone());
    let mut artifact = Artifact::files_only(
        BUILDER_ID,
        &build.name,
        &build.type_name,
        state.config.image_name.clone(),
        Vec::new(),
    );
    artifact.state = pass_through;
    artifact
}
