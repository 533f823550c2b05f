//! Waits `boot_wait`, then types `boot_command` (or `boot_steps`, each
//! step's description printed first) through QMP.

use std::time::{Duration, Instant};

use crate::bootcmd::{self, Action};
use crate::builder::common::boot_command_actions;
use crate::run::runner::{Step, StepContext, StepError, StepFuture};

use super::{QemuState, fail};

pub struct StepTypeBootCommand;

/// Packer's default pause between key events.
const DEFAULT_KEY_INTERVAL: Duration = Duration::from_millis(100);

fn key_interval(configured: Option<Duration>) -> Duration {
    configured
        .or_else(|| {
            std::env::var("PACKER_KEY_INTERVAL")
                .ok()
                .and_then(|v| crate::config::go_value::parse_go_duration(&v).ok())
        })
        .unwrap_or(DEFAULT_KEY_INTERVAL)
}

impl Step<QemuState> for StepTypeBootCommand {
    fn name(&self) -> &'static str {
        "Typing the boot command"
    }

    fn run<'a>(&'a mut self, state: &'a mut QemuState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            if state.resumed_from().is_some() {
                ctx.reporter.info(
                    &ctx.build,
                    "Resumed from the install checkpoint: no boot command to type",
                );
                return Ok(());
            }
            let Some(batches) = boot_batches(&state.common, &state.config, ctx).await? else {
                return Ok(());
            };
            let actions: Vec<Action> = batches.iter().flat_map(|b| b.1.clone()).collect();
            // Where each described step starts, by action index.
            let mut starts = Vec::new();
            let mut at = 0;
            for (i, (description, batch)) in batches.iter().enumerate() {
                if let Some(d) = description {
                    starts.push((at, format!("Boot step {}/{}: {d}", i + 1, batches.len())));
                }
                at += batch.len();
            }
            let interval = key_interval(state.config.boot.key_interval);
            let qmp = state
                .qmp
                .as_mut()
                .ok_or_else(|| StepError::new("no QMP connection to type with"))?;
            let keys = actions
                .iter()
                .filter(|a| !matches!(a, Action::Wait(_)))
                .count();
            ctx.reporter.info(
                &ctx.build,
                &format!("Typing the boot command ({keys} key events)"),
            );
            let progress = ctx.reporter.progress_items(
                &ctx.build,
                "Typing the boot command",
                actions.len() as u64,
                "key events",
            );
            let started = Instant::now();
            for (done, action) in actions.iter().enumerate() {
                if let Some((_, text)) = starts.iter().find(|(at, _)| *at == done) {
                    ctx.reporter.info(&ctx.build, text);
                }
                match action {
                    Action::Wait(d) => tokio::time::sleep(*d).await,
                    other => {
                        let Some(command) = bootcmd::qmp::command(other) else {
                            continue;
                        };
                        let name = command["execute"].as_str().unwrap_or_default().to_owned();
                        let arguments = command.get("arguments").cloned();
                        qmp.execute(&name, arguments)
                            .await
                            .map_err(|e| fail("QEMU refused a key", e))?;
                        tokio::time::sleep(interval).await;
                    }
                }
                progress.set_position(done as u64 + 1);
            }
            let took = started.elapsed().as_secs_f64();
            progress.finish(&format!("typed in {took:.1}s"));
            ctx.reporter.info(
                &ctx.build,
                &format!("Typed {keys} key events in {took:.1}s"),
            );
            Ok(())
        })
    }
}

/// The actions to type, in batches: one for `boot_command`, one per
/// `boot_steps` step with its description. `boot_wait` is waited once,
/// before the first.
async fn boot_batches(
    common: &crate::builder::common::CommonState,
    c: &crate::config::qemu::QemuConfig,
    ctx: &StepContext,
) -> Result<Option<Vec<(Option<String>, Vec<Action>)>>, StepError> {
    if c.boot_steps.is_empty() {
        let actions = boot_command_actions(common, &c.boot, &c.vm_name, ctx).await?;
        return Ok(actions.map(|a| vec![(None, a)]));
    }
    let mut out = Vec::new();
    for (i, step) in c.boot_steps.iter().enumerate() {
        let boot = crate::config::common::BootConfig {
            command: vec![step.keys.clone()],
            wait: if i == 0 { c.boot.wait } else { Duration::ZERO },
            ..c.boot.clone()
        };
        if let Some(actions) = boot_command_actions(common, &boot, &c.vm_name, ctx).await? {
            out.push((step.description.clone(), actions));
        }
    }
    Ok(Some(out))
}
