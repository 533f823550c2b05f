//! Makes the `floppy_files`/`floppy_dirs`/`floppy_content` image in a
//! private temporary folder (outside `output_directory`), removed when the
//! build ends; kept with the VM under `-on-error=abort`.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::media::floppy::{self, FloppyError, FloppySpec};
use crate::run::runner::{
    CleanupFuture, FailureClass, Outcome, Step, StepContext, StepError, StepFuture,
};

use super::HasCommon;

type FloppyTask = tokio::task::JoinHandle<Result<PathBuf, FloppyError>>;

#[derive(Default)]
pub struct StepCreateFloppy {
    dir: Option<PathBuf>,
    /// The image is written on the blocking pool; cleanup waits for it
    /// (it stops at cancellation) before deleting its folder.
    task: Option<FloppyTask>,
}

impl<S: HasCommon> Step<S> for StepCreateFloppy {
    fn name(&self) -> &'static str {
        "Creating the floppy"
    }

    fn run<'a>(&'a mut self, state: &'a mut S, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let common = state.common();
            if common.floppy.is_empty() {
                return Ok(());
            }
            let dir = crate::host::scratch::tempdir("floppy")
                .map_err(|e| {
                    StepError::with_source(
                        FailureClass::Host,
                        "cannot create a folder for the floppy",
                        e,
                    )
                })?
                .keep();
            self.dir = Some(dir.clone());
            let spec = common.floppy.clone();
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
                .map_err(|e| {
                    StepError::with_source(FailureClass::Host, "the floppy task failed", e)
                })?
                .map_err(|e| {
                    StepError::with_source(FailureClass::Host, "cannot make the floppy", e)
                })?;
            self.task = None;
            ctx.reporter.info(
                &ctx.build,
                &format!(
                    "Made the floppy {} (1.44 MB FAT12, label {})",
                    made.display(),
                    common.floppy.label()
                ),
            );
            common.floppy_path = Some(made);
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
                        "-on-error=abort: keeping the floppy in {} (the VM still uses it)",
                        dir.display()
                    ),
                );
            }
        })
    }
}

/// Lays out the files from the working directory, or from beside the
/// template when something is not found there, then writes the image.
fn make(
    spec: &FloppySpec,
    bases: &[PathBuf; 2],
    dir: &Path,
    cancel: &CancellationToken,
) -> Result<PathBuf, FloppyError> {
    let entries = match floppy::plan(spec, &bases[0], cancel) {
        Err(first @ FloppyError::NoMatch { .. }) if bases[1] != bases[0] => {
            floppy::plan(spec, &bases[1], cancel).map_err(|_| first)?
        }
        other => other?,
    };
    let image = dir.join("floppy.img");
    floppy::make_image(&entries, spec.label(), &image, cancel)?;
    Ok(image)
}
