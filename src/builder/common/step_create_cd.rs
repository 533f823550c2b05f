//! Makes the `cd_files`/`cd_content` image in a private temporary folder
//! (outside `output_directory`, so no `cd_files` entry can include it),
//! removed when the build ends; kept with the VM under `-on-error=abort`.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::media::cd::{self, CdError};
use crate::run::runner::{
    CleanupFuture, FailureClass, Outcome, Step, StepContext, StepError, StepFuture,
};

use super::HasCommon;

type CdTask = tokio::task::JoinHandle<Result<PathBuf, CdError>>;

#[derive(Default)]
pub struct StepCreateCd {
    dir: Option<PathBuf>,
    /// The copy and xorriso run on the blocking pool; cleanup waits for
    /// them (they stop at cancellation) before deleting their folder.
    task: Option<CdTask>,
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
            let dir = crate::host::scratch::tempdir("cd")
                .map_err(|e| {
                    StepError::with_source(
                        FailureClass::Host,
                        "cannot create a folder for the CD",
                        e,
                    )
                })?
                .keep();
            self.dir = Some(dir.clone());
            let spec = common.cd.clone();
            let bases = [
                common.options.render.pwd().to_path_buf(),
                common.options.render.template_dir().to_path_buf(),
            ];
            let cancel = ctx.cancel.clone();
            let task = self.task.insert(tokio::task::spawn_blocking(move || {
                make(&spec, &bases, &dir, &cancel)
            }));
            let made = task
                .await
                .map_err(|e| StepError::with_source(FailureClass::Host, "the CD task failed", e))?
                .map_err(|e| {
                    StepError::with_source(FailureClass::Host, "cannot make the cd_files CD", e)
                })?;
            self.task = None;
            ctx.reporter.info(
                &ctx.build,
                &format!(
                    "Made the CD {} ({} KiB, label {})",
                    made.display(),
                    std::fs::metadata(&made).map_or(0, |m| m.len() / 1024),
                    common.cd.label.as_deref().unwrap_or(cd::DEFAULT_LABEL)
                ),
            );
            common.cd_path = Some(made);
            Ok(())
        })
    }

    fn cleanup<'a>(
        &'a mut self,
        _state: &'a mut S,
        ctx: &'a StepContext,
        outcome: Outcome,
    ) -> CleanupFuture<'a> {
        Box::pin(async move {
            if let Some(task) = self.task.take() {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(30), task).await;
            }
            let Some(dir) = self.dir.take() else {
                return;
            };
            if ctx.remove_artifacts(outcome) {
                let _ = tokio::fs::remove_dir_all(&dir).await;
            } else {
                ctx.reporter.info(
                    &ctx.build,
                    &format!(
                        "-on-error=abort: keeping the CD in {} (the VM still uses it)",
                        dir.display()
                    ),
                );
            }
        })
    }
}

/// Stages the files from the working directory, or from beside the
/// template when something is not found there, then runs xorriso.
fn make(
    spec: &cd::CdSpec,
    bases: &[PathBuf; 2],
    dir: &Path,
    cancel: &CancellationToken,
) -> Result<PathBuf, CdError> {
    let stage = dir.join("files");
    let stage_from = |base: &Path| -> Result<(), CdError> {
        let _ = std::fs::remove_dir_all(&stage);
        std::fs::create_dir_all(&stage).map_err(|source| CdError::Io {
            what: "create",
            path: stage.clone(),
            source,
        })?;
        cd::stage(spec, base, &stage, cancel)
    };
    match stage_from(&bases[0]) {
        Err(first @ CdError::NoMatch { .. }) if bases[1] != bases[0] => {
            stage_from(&bases[1]).map_err(|_| first)?;
        }
        other => other?,
    }
    let iso = dir.join("cd.iso");
    cd::make_iso(&stage, spec.label.as_deref(), &iso, cancel)?;
    Ok(iso)
}
