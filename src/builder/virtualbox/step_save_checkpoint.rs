//! `StepSaveCheckpoint`, one of the virtualbox-iso builder's steps (their
//! order is in `mod.rs`): when SSH first answers, before any provisioner,
//! saves the install checkpoint through VBoxManage alone:
//!
//! 1. `sync` in the guest over SSH;
//! 2. `snapshot VM take`: VirtualBox pauses the VM, flushes its disk and
//!    from then on sends the guest's writes to a differencing image, so
//!    the disk file itself is frozen in that consistent state;
//! 3. `clonemedium` of that frozen disk into the cache (a running VM's
//!    current disk is locked for writing and cannot be cloned; the frozen
//!    parent can, while the guest runs on), then `closemedium` so
//!    VirtualBox's registry does not keep a cache file;
//! 4. `snapshot VM delete`: the differencing image is merged back (online),
//!    leaving the VM as a build without checkpoints would have it;
//! 5. the clone is hashed and renamed into place.
//!
//! A checkpoint that cannot be saved is a warning: the build goes on.

use std::path::PathBuf;
use std::time::Instant;

use super::VBoxState;
use super::calls::run_all;
use crate::builder::common::checkpoint::{CheckpointPlan, begin_checkpoint, checkpoint_store};
use crate::hypervisor::virtualbox::command::{
    clone_medium, close_medium, snapshot_delete, snapshot_take,
};
use crate::run::runner::{
    CleanupFuture, FailureClass, Outcome, Step, StepContext, StepError, StepFuture,
};

/// The snapshot's name while it exists (seconds, on the build's own VM).
const SNAPSHOT: &str = "kiln-install-checkpoint";

#[derive(Default)]
pub struct StepSaveCheckpoint {
    /// The clone while VirtualBox has it registered: closed by cleanup if
    /// the step ends early, so no registry entry outlives the file.
    registered_clone: Option<PathBuf>,
    /// The snapshot while it exists: deleted by cleanup if the step ends early.
    snapshot_taken: bool,
}

impl Step<VBoxState> for StepSaveCheckpoint {
    fn name(&self) -> &'static str {
        "Saving the install checkpoint"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let CheckpointPlan::Save { key, replace } = &state.checkpoint else {
                return Ok(());
            };
            let (inputs, replace) = (key.inputs(), *replace);
            let key = key.finish();
            let started = Instant::now();
            if let Some(ssh) = state.common.ssh.clone()
                && let Err(e) = ssh.exec("sync", |_, _| {}).await
            {
                ctx.reporter.warn(
                    &ctx.build,
                    &format!("no install checkpoint: `sync` in the guest failed ({e})"),
                );
                return Ok(());
            }
            let store = checkpoint_store()?;
            let Some(mut writer) = begin_checkpoint(ctx, &store, &key, replace).await? else {
                return Ok(());
            };
            let vm = state.config.vm_name.clone();
            let disk = super::specs::disk_spec(&state.config).path;
            let target = writer.vdi_disk_path();
            let description = format!("kiln install checkpoint {key}");
            if let Err(e) = self
                .freeze_and_clone(state, &vm, &disk, &target, &description)
                .await
            {
                // Undone now, not at cleanup: the build goes on with this VM.
                let _ = self.forget_clone(state).await;
                let _ = self.merge_snapshot(state).await;
                ctx.reporter
                    .warn(&ctx.build, &format!("no install checkpoint: {}", e.chain()));
                return Ok(());
            }
            if ctx.cancel.is_cancelled() {
                drop(writer);
                return Err(StepError::new(
                    FailureClass::Interrupted,
                    "interrupted before the install checkpoint was saved",
                ));
            }
            let committed = tokio::task::spawn_blocking(move || writer.commit(&inputs))
                .await
                .map_err(|e| {
                    StepError::with_source(FailureClass::Host, "the checkpoint task failed", e)
                })?;
            match committed {
                Ok(size) => ctx.reporter.info(
                    &ctx.build,
                    &format!(
                        "Saved the install checkpoint {} ({}) in {:.1}s",
                        store.dir(&key).display(),
                        crate::ui::console::format_bytes(size),
                        started.elapsed().as_secs_f64(),
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

    fn cleanup<'a>(
        &'a mut self,
        state: &'a mut VBoxState,
        ctx: &'a StepContext,
        _outcome: Outcome,
    ) -> CleanupFuture<'a> {
        Box::pin(async move {
            for result in [
                self.forget_clone(state).await,
                self.merge_snapshot(state).await,
            ] {
                if let Err(e) = result {
                    ctx.reporter.warn(&ctx.build, &e.to_string());
                }
            }
        })
    }
}

impl StepSaveCheckpoint {
    /// Snapshot, clone the frozen disk to `target`, close the clone, merge
    /// the snapshot back: steps 2 to 4 of the module's list.
    async fn freeze_and_clone(
        &mut self,
        state: &VBoxState,
        vm: &str,
        disk: &std::path::Path,
        target: &std::path::Path,
        description: &str,
    ) -> Result<(), StepError> {
        let vbox = state.vbox()?;
        run_all(vbox.clone(), vec![snapshot_take(vm, SNAPSHOT, description)]).await?;
        self.snapshot_taken = true;
        run_all(vbox, vec![clone_medium(disk, target)]).await?;
        self.registered_clone = Some(target.to_path_buf());
        self.forget_clone(state).await?;
        self.merge_snapshot(state).await
    }

    /// `closemedium` of the clone, once.
    async fn forget_clone(&mut self, state: &VBoxState) -> Result<(), StepError> {
        let Some(clone) = self.registered_clone.take() else {
            return Ok(());
        };
        run_all(state.vbox()?, vec![close_medium(&clone)]).await
    }

    /// `snapshot delete` of the checkpoint's snapshot, once.
    async fn merge_snapshot(&mut self, state: &VBoxState) -> Result<(), StepError> {
        if !std::mem::take(&mut self.snapshot_taken) {
            return Ok(());
        }
        run_all(
            state.vbox()?,
            vec![snapshot_delete(&state.config.vm_name, SNAPSHOT)],
        )
        .await
    }
}
