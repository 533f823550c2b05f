//! `boot_command` or `boot_steps` as batches of key actions, for every
//! builder that types at a console: one batch for `boot_command`, one per
//! `boot_steps` step with its description (printed as "Boot step i/n:
//! DESC" before its keys). `boot_wait` is waited once, before the first.

use std::time::Duration;

use crate::bootcmd::Action;
use crate::config::boot_steps::BootStep;
use crate::config::common::BootConfig;
use crate::run::runner::{StepContext, StepError};

use super::{CommonState, boot_command_actions};

/// One batch: the step's description (None for `boot_command`) and its actions.
pub type BootBatch = (Option<String>, Vec<Action>);

/// The batches to type, or None when there is nothing to type.
pub async fn boot_batches(
    common: &CommonState,
    boot: &BootConfig,
    steps: &[BootStep],
    vm_name: &str,
    ctx: &StepContext,
) -> Result<Option<Vec<BootBatch>>, StepError> {
    if steps.is_empty() {
        let actions = boot_command_actions(common, boot, vm_name, ctx).await?;
        return Ok(actions.map(|a| vec![(None, a)]));
    }
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let one = BootConfig {
            command: vec![step.keys.clone()],
            wait: if i == 0 { boot.wait } else { Duration::ZERO },
            ..boot.clone()
        };
        if let Some(actions) = boot_command_actions(common, &one, vm_name, ctx).await? {
            out.push((step.description.clone(), actions));
        }
    }
    Ok(Some(out))
}

/// Where each described step starts, by action index in the batches
/// joined, with the line that announces it.
pub fn step_announcements(batches: &[BootBatch]) -> Vec<(usize, String)> {
    let mut starts = Vec::new();
    let mut at = 0;
    for (i, (description, batch)) in batches.iter().enumerate() {
        if let Some(d) = description {
            starts.push((at, format!("Boot step {}/{}: {d}", i + 1, batches.len())));
        }
        at += batch.len();
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn described_steps_are_announced_at_their_first_action() {
        let wait = || Action::Wait(Duration::from_millis(1));
        let batches = vec![
            (Some("first".to_owned()), vec![wait(), wait()]),
            (None, vec![wait()]),
            (Some("third".to_owned()), vec![wait()]),
        ];
        assert_eq!(
            step_announcements(&batches),
            [
                (0, "Boot step 1/3: first".to_owned()),
                (3, "Boot step 3/3: third".to_owned()),
            ]
        );
    }
}
