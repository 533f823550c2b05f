//! `StepAttachIso`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`).

use super::VBoxState;
use super::calls::run_all;
use super::error::VBoxStepError;
use crate::hypervisor::virtualbox::IsoAttachment;
use crate::run::runner::{Step, StepContext, StepError, StepFuture};

/// The DVD slots a build fills, each with its image: the boot ISO, the
/// guest additions when `guest_additions_mode` is "attach", the
/// `cd_files` CD.
pub(super) fn dvd_slots(state: &VBoxState) -> Vec<(IsoAttachment, Option<std::path::PathBuf>)> {
    let disk = super::specs::disk_spec(&state.config);
    let mut slots = vec![(
        IsoAttachment::boot_iso(disk.iso_bus),
        state.common.iso_path.clone(),
    )];
    if let Some(bus) = disk.additions_bus {
        slots.push((
            IsoAttachment::guest_additions(bus),
            state.guest_additions.clone(),
        ));
    }
    if let Some(cd) = &state.common.cd_path {
        slots.push((IsoAttachment::cd_files(disk.iso_bus), Some(cd.clone())));
    }
    slots
}

pub struct StepAttachIso;

impl Step<VBoxState> for StepAttachIso {
    fn name(&self) -> &'static str {
        "Attaching the ISOs"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, _ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let mut commands = Vec::new();
            for (slot, image) in dvd_slots(state) {
                let image = image.ok_or_else(|| StepError::from(VBoxStepError::NoIso))?;
                // VirtualBox records the path it is given; a symlink into the
                // cache would dangle once pruned.
                let image = std::fs::canonicalize(&image).unwrap_or(image);
                commands.push(slot.attach(&state.config.vm_name, &image));
            }
            run_all(state.vbox()?, commands).await
        })
    }
}
