//! `StepTypeBootCommand`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`).

use std::time::{Duration, Instant};

use super::VBoxState;
use super::calls::run_all;
use crate::bootcmd;
use crate::builder::common::boot_command_actions;
use crate::hypervisor::virtualbox::BootCommandStep;
use crate::hypervisor::virtualbox::command::boot_command_steps;
use crate::run::runner::{Step, StepContext, StepFuture};

pub struct StepTypeBootCommand;

impl Step<VBoxState> for StepTypeBootCommand {
    fn name(&self) -> &'static str {
        "Typing the boot command"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let Some(actions) = boot_command_actions(
                &state.common,
                &state.config.boot,
                &state.config.vm_name,
                ctx,
            )
            .await?
            else {
                return Ok(());
            };
            let group_interval = state
                .config
                .boot
                .group_interval
                .unwrap_or(Duration::from_millis(100));
            let started = Instant::now();
            let vbox = state.vbox()?;
            let steps = boot_command_steps(
                &state.config.vm_name,
                &actions,
                bootcmd::scancode::MAX_CODES_PER_CALL,
            );
            let total = steps.len();
            for step in steps {
                match step {
                    BootCommandStep::Wait(d) => tokio::time::sleep(d).await,
                    BootCommandStep::Run(command) => {
                        run_all(vbox.clone(), vec![command]).await?;
                        tokio::time::sleep(group_interval).await;
                    }
                }
            }
            ctx.reporter.info(
                &ctx.build,
                &format!(
                    "Typed the boot command ({total} VBoxManage steps) in {:.1}s",
                    started.elapsed().as_secs_f64()
                ),
            );
            Ok(())
        })
    }
}
