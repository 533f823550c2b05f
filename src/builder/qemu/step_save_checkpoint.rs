//! Saves the install checkpoint when SSH first answers, before any
//! provisioner: `sync` in the guest, `stop` through QMP (QEMU drains and
//! flushes its drives before answering), a standalone qcow2 copy of the
//! disk into the cache (`qemu-img convert -U`: QEMU holds the image's
//! lock), renamed into place with its digest, then `cont`.
//!
//! A checkpoint that cannot be saved is a warning: the build goes on.

use std::time::{Duration, Instant};

use crate::hypervisor::qemu::{ConvertOptions, ImageFormat, QemuImg, QemuImgCli};
use crate::run::runner::{Step, StepContext, StepError, StepFuture};

use super::state::CheckpointPlan;
use super::step_find_checkpoint::store;
use super::{QemuState, fail};

pub struct StepSaveCheckpoint;

/// Tests set this to hold a written checkpoint just before its rename, so
/// Ctrl-C can be sent in that window; kiln says when it is there.
const PAUSE_HOOK: &str = "KILN_TEST_PAUSE_BEFORE_CHECKPOINT_RENAME";
const PAUSE_HOOK_LIMIT: Duration = Duration::from_secs(300);

impl Step<QemuState> for StepSaveCheckpoint {
    fn name(&self) -> &'static str {
        "Saving the install checkpoint"
    }

    fn run<'a>(&'a mut self, state: &'a mut QemuState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let CheckpointPlan::Save { key, replace } = &state.checkpoint else {
                return Ok(());
            };
            let (inputs, replace) = (key.inputs(), *replace);
            let key = key.finish();
            let started = Instant::now();
            // The guest's dirty pages reach QEMU first; `stop` then flushes
            // QEMU's own caches to the image file.
            if let Some(ssh) = state.common.ssh.clone() {
                match ssh.exec("sync", |_, _| {}).await {
                    Ok(_) => {}
                    Err(e) => {
                        ctx.reporter.warn(
                            &ctx.build,
                            &format!("no install checkpoint: `sync` in the guest failed ({e})"),
                        );
                        return Ok(());
                    }
                }
            }
            let store = store()?;
            let begin_store = store.clone();
            let begin_key = key.clone();
            let writer =
                tokio::task::spawn_blocking(move || begin_store.begin(&begin_key, replace))
                    .await
                    .map_err(|e| fail("the checkpoint task failed", e))?;
            let writer = match writer {
                Ok(Some(w)) => w,
                Ok(None) => {
                    ctx.reporter.info(
                        &ctx.build,
                        &format!(
                            "The install checkpoint {} is already there (saved by another build, or in use): not saved again",
                            store.dir(&key).display()
                        ),
                    );
                    return Ok(());
                }
                Err(e) => {
                    ctx.reporter.warn(
                        &ctx.build,
                        &format!(
                            "no install checkpoint: {}",
                            crate::error_chain::error_chain(&e, ": ")
                        ),
                    );
                    return Ok(());
                }
            };
            let qmp = state
                .qmp
                .as_mut()
                .ok_or_else(|| StepError::new("no QMP connection"))?;
            qmp.stop()
                .await
                .map_err(|e| fail("QEMU did not pause the VM for the checkpoint", e))?;
            let paused = Instant::now();
            let source = state.disk_path.clone();
            let target = writer.disk_path();
            let options = ConvertOptions {
                src_format: Some(state.image_format()),
                force_share: true,
                ..ConvertOptions::default()
            };
            let copied = tokio::task::spawn_blocking(move || {
                QemuImgCli::default().convert(&source, &target, ImageFormat::Qcow2, &options, &[])
            })
            .await
            .map_err(|e| fail("the checkpoint copy failed", e))?;
            if let Err(e) = copied {
                drop(writer);
                resume(state).await?;
                ctx.reporter.warn(
                    &ctx.build,
                    &format!(
                        "no install checkpoint: {}",
                        crate::error_chain::error_chain(&e, ": ")
                    ),
                );
                return Ok(());
            }
            if std::env::var_os(PAUSE_HOOK).is_some() {
                ctx.reporter.info(
                    &ctx.build,
                    "test hook: the checkpoint is written, waiting before renaming it into place",
                );
                // Ends by Ctrl-C or the bound.
                let _ = tokio::time::timeout(PAUSE_HOOK_LIMIT, ctx.cancel.cancelled()).await;
            }
            // An interrupted build keeps no checkpoint. The writer is dropped
            // here, removing the partial checkpoint now: once it moves into
            // the commit task below, a Ctrl-C can end the process before
            // that task finishes or drops it (a partial left that way is
            // swept by the next kiln, as after a kill).
            if ctx.cancel.is_cancelled() {
                drop(writer);
                return Err(StepError::new(
                    "interrupted before the install checkpoint was saved",
                ));
            }
            let committed = tokio::task::spawn_blocking(move || writer.commit(&inputs))
                .await
                .map_err(|e| fail("the checkpoint task failed", e))?;
            let paused_for = paused.elapsed();
            resume(state).await?;
            match committed {
                Ok(size) => ctx.reporter.info(
                    &ctx.build,
                    &format!(
                        "Saved the install checkpoint {} ({}) in {:.1}s (guest paused {:.1}s)",
                        store.dir(&key).display(),
                        crate::ui::console::format_bytes(size),
                        started.elapsed().as_secs_f64(),
                        paused_for.as_secs_f64()
                    ),
                ),
                Err(e) => ctx.reporter.warn(
                    &ctx.build,
                    &format!(
                        "no install checkpoint: {}",
                        crate::error_chain::error_chain(&e, ": ")
                    ),
                ),
            }
            Ok(())
        })
    }
}

async fn resume(state: &mut QemuState) -> Result<(), StepError> {
    let qmp = state
        .qmp
        .as_mut()
        .ok_or_else(|| StepError::new("no QMP connection"))?;
    qmp.cont()
        .await
        .map_err(|e| fail("QEMU did not resume the VM after the checkpoint", e))
}
