use super::{PostProcessContext, PostProcessError, StepOutput};
use crate::build::artifact::Artifact;

pub(super) async fn run(
    _c: &crate::config::post_processor::CompressConfig,
    _input: &Artifact,
    _ctx: &PostProcessContext,
) -> Result<StepOutput, PostProcessError> {
    Err(PostProcessError::Unsupported("not yet".into()))
}
pub enum Format {}
