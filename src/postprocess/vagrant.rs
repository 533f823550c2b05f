use super::{PostProcessContext, PostProcessError, StepOutput};
use crate::build::artifact::Artifact;

pub(super) async fn run(
    _c: &crate::config::post_processor::VagrantConfig,
    _input: &Artifact,
    _ctx: &PostProcessContext,
) -> Result<StepOutput, PostProcessError> {
    Err(PostProcessError::Unsupported("not yet".into()))
}
