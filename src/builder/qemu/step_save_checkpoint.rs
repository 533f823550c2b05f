//! Saves the install checkpoint when SSH first answers, before any
//! provisioner: `sync` in the guest, `stop` through QMP (QEMU drains and
//! flushes its drives before answering), a standalone qcow2 copy of the
//! disk into the cache (`qemu-img convert -U`: QEMU holds the image's
//! lock), then the VM's device and RAM state (a QEMU migration stream,
//! see [`super::checkpoint_memory`]) when this build can keep one, both
//! renamed into place with their digests, then `cont`.
//!
//! A checkpoint that cannot be saved is a warning: the build goes on.

use std::time::{Duration, Instant};

use crate::hypervisor::qemu::{ConvertOptions, ImageFormat, QemuProcess, img::convert_args};
use crate::run::runner::{Step, StepContext, StepFuture};

use super::state::CheckpointPlan;
use super::step_find_checkpoint::store;
use super::{CheckpointStepError, QemuState, checkpoint_memory};
use crate::builder::common::checkpoint::begin_checkpoint;

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
            let Some(mut writer) = begin_checkpoint(ctx, &store, &key, replace).await? else {
                return Ok(());
            };
            // Asked before the pause: it runs `qemu-system --version`.
            let memory_compat = match checkpoint_memory::why_no_memory(state) {
                Some(why) => {
                    ctx.reporter.info(
                        &ctx.build,
                        &format!("The install checkpoint keeps the disk only: {why}"),
                    );
                    None
                }
                None => match checkpoint_memory::compat_line(state).await {
                    Ok(line) => Some(line),
                    Err(why) => {
                        ctx.reporter.warn(
                            &ctx.build,
                            &format!("the install checkpoint keeps the disk only: {why}"),
                        );
                        None
                    }
                },
            };
            let qmp = state.qmp.as_mut().ok_or(CheckpointStepError::NoQmp)?;
            qmp.stop().await.map_err(CheckpointStepError::Pause)?;
            let paused = Instant::now();
            let source = state.disk_path.clone();
            let target = writer.disk_path();
            let options = ConvertOptions {
                src_format: Some(state.image_format()),
                force_share: true,
                ..ConvertOptions::default()
            };
            let args = convert_args(&source, &target, ImageFormat::Qcow2, &options, &[]);
            if let Err(why) = copy_owned(&args).await {
                drop(writer);
                resume(state).await?;
                ctx.reporter
                    .warn(&ctx.build, &format!("no install checkpoint: {why}"));
                return Ok(());
            }
            let mut memory_note = String::new();
            if let Some(compat) = memory_compat {
                let path = writer.memory_path();
                let saving = Instant::now();
                match checkpoint_memory::save(state, &path).await {
                    Ok(()) => {
                        writer.memory_written(&compat);
                        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
                        memory_note = format!(
                            "; memory state {} written in {:.1}s",
                            crate::ui::console::format_bytes(size),
                            saving.elapsed().as_secs_f64()
                        );
                    }
                    Err(why) => ctx.reporter.warn(
                        &ctx.build,
                        &format!(
                            "the install checkpoint keeps the disk only: saving the memory state failed ({why})"
                        ),
                    ),
                }
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
                return Err(CheckpointStepError::Interrupted.into());
            }
            let committed = tokio::task::spawn_blocking(move || writer.commit(&inputs))
                .await
                .map_err(|e| CheckpointStepError::Task("the checkpoint task failed", e))?;
            let paused_for = paused.elapsed();
            resume(state).await?;
            match committed {
                Ok(size) => ctx.reporter.info(
                    &ctx.build,
                    &format!(
                        "Saved the install checkpoint {} ({}) in {:.1}s (guest paused {:.1}s{memory_note})",
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

/// Runs `qemu-img ARGS` as an owned child (its own process group, killed
/// with kiln): a Ctrl-C drops this future with the step, which kills the
/// copy at once instead of letting it write on into a removed checkpoint.
async fn copy_owned(args: &[std::ffi::OsString]) -> Result<(), String> {
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.to_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{} is not UTF-8", a.to_string_lossy()))
        })
        .collect::<Result<_, _>>()?;
    let mut child = QemuProcess::spawn_args("qemu-img", &args)
        .map_err(|e| crate::error_chain::error_chain(&e, ": "))?;
    // Bounded only to never hang a build: a copy of the largest disks
    // takes minutes, not a day.
    let status = child
        .wait_exit(Duration::from_secs(24 * 3600))
        .await
        .map_err(|e| crate::error_chain::error_chain(&e, ": "))?;
    match status {
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(format!(
            "`{}` failed ({s}): {}",
            child.command_line(),
            child.final_stderr_tail().join(" ")
        )),
        None => Err(format!("`{}` did not finish", child.command_line())),
    }
}

async fn resume(state: &mut QemuState) -> Result<(), CheckpointStepError> {
    let qmp = state.qmp.as_mut().ok_or(CheckpointStepError::NoQmp)?;
    qmp.cont().await.map_err(CheckpointStepError::Resume)
}
