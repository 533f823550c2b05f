//! Makes the `cd_files`/`cd_content` image in the output directory (in a
//! hidden folder removed when the build ends, whatever its outcome).

use std::path::{Path, PathBuf};

use crate::build::runner::{CleanupFuture, Outcome, Step, StepContext, StepError, StepFuture};
use crate::media::cd::{self, CdError};

use super::HasCommon;

/// The folder under `output_directory` that holds the staged files and the image.
const CD_DIR: &str = ".kiln-cd";

#[derive(Default)]
pub struct StepCreateCd {
    dir: Option<PathBuf>,
}

impl<S: HasCommon> Step<S> for StepCreateCd {
    fn name(&self) -> &'static str {
        "Creating the CD"
    }

    fn run<'a>(&'a mut self, state: &'a mut S, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let common = state.common();
            if common.cd.is_empty() {
                return Ok(());
            }
            let dir = common.output_dir.join(CD_DIR);
            self.dir = Some(dir.clone());
            let spec = common.cd.clone();
            let bases = [
                common.options.pwd.clone(),
                common.options.template_dir.clone(),
            ];
            let made = tokio::task::spawn_blocking(move || make(&spec, &bases, &dir))
                .await
                .map_err(|e| StepError::with_source("the CD task failed", e))?
                .map_err(|e| StepError::with_source("cannot make the cd_files CD", e))?;
            ctx.reporter.info(
                &ctx.build,
                &format!(
                    "Made the CD {} ({} KiB{})",
                    made.display(),
                    std::fs::metadata(&made).map_or(0, |m| m.len() / 1024),
                    common
                        .cd
                        .label
                        .as_deref()
                        .map(|l| format!(", label {l}"))
                        .unwrap_or_default()
                ),
            );
            common.cd_path = Some(made);
            Ok(())
        })
    }

    fn cleanup<'a>(
        &'a mut self,
        _state: &'a mut S,
        _ctx: &'a StepContext,
        _outcome: Outcome,
    ) -> CleanupFuture<'a> {
        Box::pin(async move {
            if let Some(dir) = self.dir.take() {
                let _ = tokio::fs::remove_dir_all(&dir).await;
            }
        })
    }
}

/// Stages the files from the working directory, or from beside the
/// template when something is not found there, then runs xorriso.
fn make(spec: &cd::CdSpec, bases: &[PathBuf; 2], dir: &Path) -> Result<PathBuf, CdError> {
    let stage = dir.join("files");
    let stage_from = |base: &Path| -> Result<(), CdError> {
        let _ = std::fs::remove_dir_all(&stage);
        std::fs::create_dir_all(&stage).map_err(|source| CdError::Io {
            what: "create",
            path: stage.clone(),
            source,
        })?;
        cd::stage(spec, base, &stage)
    };
    match stage_from(&bases[0]) {
        Err(first @ CdError::NoMatch { .. }) if bases[1] != bases[0] => {
            stage_from(&bases[1]).map_err(|_| first)?;
        }
        other => other?,
    }
    let iso = dir.join("cd.iso");
    cd::make_iso(&stage, spec.label.as_deref(), &iso)?;
    Ok(iso)
}
