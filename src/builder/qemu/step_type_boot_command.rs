//! Waits `boot_wait`, then types `boot_command` (or `boot_steps`, each
//! step's description printed first) through QMP.

use std::time::{Duration, Instant};

use crate::bootcmd::{self, Action};
use crate::builder::common::boot_batches::{boot_batches, step_announcements};
use crate::hypervisor::qemu::qmp::QmpError;
use crate::run::runner::{FailureClass, Step, StepContext, StepFailure, StepFuture};

use super::QemuState;

#[derive(Debug, thiserror::Error)]
pub enum TypingError {
    #[error("no QMP connection to type with")]
    NoQmp,
    #[error("QEMU refused a key")]
    KeyRefused(#[source] QmpError),
}

impl StepFailure for TypingError {
    fn class(&self) -> FailureClass {
        FailureClass::Host
    }
}

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
            let c = &state.config;
            let Some(batches) =
                boot_batches(&state.common, &c.boot, &c.boot_steps, &c.vm_name, ctx).await?
            else {
                return Ok(());
            };
            let actions: Vec<Action> = batches.iter().flat_map(|b| b.1.clone()).collect();
            let starts = step_announcements(&batches);
            let interval = key_interval(state.config.boot.key_interval);
            let qmp = state.qmp.as_mut().ok_or(TypingError::NoQmp)?;
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
                            .map_err(TypingError::KeyRefused)?;
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
