//! `StepTypeBootCommand`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`): `boot_command`, or `boot_steps` with each step's
//! description printed before its keys, as scancodes through VBoxManage.

use std::time::{Duration, Instant};

use super::VBoxState;
use super::calls::run_all;
use crate::bootcmd;
use crate::builder::common::boot_batches::boot_batches;
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
            if state.checkpoint.resumed_from().is_some() {
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
            let group_interval = state
                .config
                .boot
                .group_interval
                .unwrap_or(Duration::from_millis(100));
            let started = Instant::now();
            let vbox = state.vbox()?;
            let count = batches.len();
            let mut total = 0;
            for (i, (description, actions)) in batches.iter().enumerate() {
                if let Some(d) = description {
                    ctx.reporter
                        .info(&ctx.build, &format!("Boot step {}/{count}: {d}", i + 1));
                }
                let steps = boot_command_steps(
                    &state.config.vm_name,
                    actions,
                    bootcmd::scancode::MAX_CODES_PER_CALL,
                );
                total += steps.len();
                for step in steps {
                    match step {
                        BootCommandStep::Wait(d) => tokio::time::sleep(d).await,
                        BootCommandStep::Run(command) => {
                            run_all(vbox.clone(), vec![command]).await?;
                            tokio::time::sleep(group_interval).await;
                        }
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
