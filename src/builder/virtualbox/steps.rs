//! The virtualbox-iso builder's own steps. VBoxManage is a blocking
//! program, so every call runs on the blocking pool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::VBoxState;
use crate::bootcmd;
use crate::builder::common::{
    boot_command_actions, render_deferred, run_shutdown_command, serial_note,
};
use crate::host::port::{find_free_port, find_free_port_on};
use crate::hypervisor::virtualbox::command::{
    acpi_power_button, boot_command_steps, floppy, poweroff, startvm, unregister_delete, vrde_on,
};
use crate::hypervisor::virtualbox::{
    BootCommandStep, IsoAttachment, NatRule, VBoxCommand, VBoxManage, VBoxManageCli, VmState,
    render_vboxmanage_rows,
};
use crate::run::runner::{CleanupFuture, Outcome, Step, StepContext, StepError, StepFuture};

/// Runs `commands` in order; the first failure stops, with its stderr.
async fn run_all(vbox: Arc<dyn VBoxManage>, commands: Vec<VBoxCommand>) -> Result<(), StepError> {
    tokio::task::spawn_blocking(move || {
        for c in &commands {
            vbox.run_command(c)
                .map_err(|e| StepError::with_source("VBoxManage failed", e))?;
        }
        Ok(())
    })
    .await
    .map_err(|e| StepError::with_source("a VBoxManage task failed", e))?
}

async fn vm_state(vbox: Arc<dyn VBoxManage>, vm: String) -> Option<VmState> {
    tokio::task::spawn_blocking(move || vbox.vm_state(&vm).ok())
        .await
        .ok()
        .flatten()
}

pub struct StepFindVBoxManage;

impl Step<VBoxState> for StepFindVBoxManage {
    fn name(&self) -> &'static str {
        "Finding VBoxManage"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let cli = VBoxManageCli::locate()
                .map_err(|e| StepError::with_source("cannot use VirtualBox", e))?;
            let version = tokio::task::spawn_blocking(move || cli.version().map(|v| (cli, v)))
                .await
                .map_err(|e| StepError::with_source("a VBoxManage task failed", e))?;
            let (cli, version) =
                version.map_err(|e| StepError::with_source("cannot use VirtualBox", e))?;
            ctx.reporter
                .info(&ctx.build, &format!("VirtualBox {}", version.raw));
            state.vbox = Some(Arc::new(cli));
            state.version = Some(version);
            Ok(())
        })
    }
}

pub struct StepCreateVm;

impl Step<VBoxState> for StepCreateVm {
    fn name(&self) -> &'static str {
        "Creating the VM"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, _ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let commands = super::specs::vm_spec(&state.config).create_commands();
            let (first, rest) = commands.split_at(1.min(commands.len()));
            run_all(state.vbox()?, first.to_vec()).await?;
            state.registered = true;
            run_all(state.vbox()?, rest.to_vec()).await
        })
    }

    /// Unregisters and deletes the VM (its disk with it) unless
    /// `keep_registered`, after a power-off if it still runs.
    fn cleanup<'a>(
        &'a mut self,
        state: &'a mut VBoxState,
        ctx: &'a StepContext,
        outcome: Outcome,
    ) -> CleanupFuture<'a> {
        Box::pin(async move {
            let (Some(vbox), true) = (state.vbox.clone(), state.registered) else {
                return;
            };
            let vm = state.config.vm_name.clone();
            if vm_state(vbox.clone(), vm.clone())
                .await
                .is_some_and(|s| s.is_running())
            {
                let _ = run_all(vbox.clone(), vec![poweroff(&vm)]).await;
            }
            if state.config.keep_registered && outcome.is_success() {
                ctx.reporter.info(
                    &ctx.build,
                    &format!("keep_registered: leaving {vm} registered"),
                );
                return;
            }
            if !ctx.remove_artifacts(outcome) {
                ctx.reporter.info(
                    &ctx.build,
                    &format!("-on-error=abort: leaving {vm} registered for inspection"),
                );
                return;
            }
            // The session lock lingers briefly after a power-off (Packer retries too).
            for attempt in 0..5 {
                match run_all(vbox.clone(), vec![unregister_delete(&vm)]).await {
                    Ok(()) => return,
                    Err(e) if attempt == 4 => {
                        ctx.reporter
                            .warn(&ctx.build, &format!("could not unregister {vm}: {e}"));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
        })
    }
}

pub struct StepCreateDisk;

impl Step<VBoxState> for StepCreateDisk {
    fn name(&self) -> &'static str {
        "Creating the disk"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, _ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let commands =
                super::specs::disk_spec(&state.config).create_commands(&state.config.vm_name);
            run_all(state.vbox()?, commands).await
        })
    }
}

/// The DVD slots a build fills, each with its image: the boot ISO, the
/// guest additions when `guest_additions_mode` is "attach", the
/// `cd_files` CD.
fn dvd_slots(state: &VBoxState) -> Vec<(IsoAttachment, Option<std::path::PathBuf>)> {
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
                let image =
                    image.ok_or_else(|| StepError::new("an ISO to attach was not fetched"))?;
                // VirtualBox records the path it is given; a symlink into the
                // cache would dangle once pruned.
                let image = std::fs::canonicalize(&image).unwrap_or(image);
                commands.push(slot.attach(&state.config.vm_name, &image));
            }
            run_all(state.vbox()?, commands).await
        })
    }
}

pub struct StepDetachIso;

impl Step<VBoxState> for StepDetachIso {
    fn name(&self) -> &'static str {
        "Detaching the ISOs"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, _ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            // `bundle_iso` keeps the boot ISO (the first slot) in the export.
            let skip = usize::from(state.config.bundle_iso);
            let commands = dvd_slots(state)
                .into_iter()
                .skip(skip)
                .map(|(slot, _)| slot.detach(&state.config.vm_name))
                .collect();
            run_all(state.vbox()?, commands).await
        })
    }
}

/// Inserts the `floppy_files` image in a floppy drive on its own
/// controller, as Packer does.
pub struct StepAttachFloppy;

impl Step<VBoxState> for StepAttachFloppy {
    fn name(&self) -> &'static str {
        "Attaching the floppy"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, _ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let Some(image) = state.common.floppy_path.clone() else {
                return Ok(());
            };
            let commands = floppy::attach(&state.config.vm_name, &image);
            run_all(state.vbox()?, commands).await
        })
    }
}

/// Takes the floppy out and removes its controller before the export: the
/// image is deleted when the build ends.
pub struct StepDetachFloppy;

impl Step<VBoxState> for StepDetachFloppy {
    fn name(&self) -> &'static str {
        "Detaching the floppy"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, _ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            if state.common.floppy_path.is_none() {
                return Ok(());
            }
            let commands = floppy::detach(&state.config.vm_name);
            run_all(state.vbox()?, commands).await
        })
    }
}

/// Turns on VirtualBox's remote display (VRDP) on `vrdp_bind_address`
/// (loopback by default) at a free port of `vrdp_port_min..=max`, without a
/// password, as Packer does: the way to watch a headless build.
pub struct StepConfigureVrdp;

impl Step<VBoxState> for StepConfigureVrdp {
    fn name(&self) -> &'static str {
        "Configuring VRDP"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, _ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let c = &state.config;
            let address: std::net::IpAddr = c.vrdp_bind_address.parse().map_err(|e| {
                StepError::with_source(
                    format!(
                        "vrdp_bind_address {:?} is not an IP address",
                        c.vrdp_bind_address
                    ),
                    e,
                )
            })?;
            let port =
                find_free_port_on(address, c.vrdp_port_min, c.vrdp_port_max).ok_or_else(|| {
                    StepError::new(format!(
                        "no free port for VRDP on {address} between {} and {} (vrdp_port_min..vrdp_port_max)",
                        c.vrdp_port_min, c.vrdp_port_max
                    ))
                })?;
            let command = vrde_on(&c.vm_name, &c.vrdp_bind_address, port);
            run_all(state.vbox()?, vec![command]).await?;
            state.vrdp = Some((c.vrdp_bind_address.clone(), port));
            Ok(())
        })
    }
}

pub struct StepForwardSsh;

impl Step<VBoxState> for StepForwardSsh {
    fn name(&self) -> &'static str {
        "Forwarding the SSH port"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let Some(ssh) = state.common.communicator.ssh().cloned() else {
                return Ok(());
            };
            if state.config.skip_nat_mapping {
                return Ok(());
            }
            let port = find_free_port(state.config.host_port_min, state.config.host_port_max)
                .map_err(|e| StepError::with_source("cannot find a free port for SSH", e))?;
            let commands = NatRule::ssh(port, ssh.port).add_commands(&state.config.vm_name);
            run_all(state.vbox()?, commands).await?;
            ctx.reporter.info(
                &ctx.build,
                &format!("Forwarding 127.0.0.1:{port} to the guest's SSH port"),
            );
            state.common.ssh_host_port = Some(port);
            Ok(())
        })
    }
}

/// `vboxmanage` (before start) or `vboxmanage_post` (after shutdown).
pub struct StepVBoxManageRows {
    pub post: bool,
}

impl Step<VBoxState> for StepVBoxManageRows {
    fn name(&self) -> &'static str {
        if self.post {
            "Running vboxmanage_post"
        } else {
            "Running vboxmanage"
        }
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, _ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let (rows, key) = if self.post {
                (&state.config.vboxmanage_post, "vboxmanage_post")
            } else {
                (&state.config.vboxmanage, "vboxmanage")
            };
            let common = &state.common;
            let commands = render_vboxmanage_rows(rows, &state.config.vm_name, |d, data| {
                render_deferred(common, key, d, data)
            })?;
            run_all(state.vbox()?, commands).await
        })
    }
}

pub struct StepRunVm;

impl Step<VBoxState> for StepRunVm {
    fn name(&self) -> &'static str {
        "Starting the VM"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let command = startvm(&state.config.vm_name, state.config.headless);
            run_all(state.vbox()?, vec![command]).await?;
            if let (true, Some((address, port))) = (state.config.headless, &state.vrdp) {
                ctx.reporter.info(
                    &ctx.build,
                    &format!(
                        "The VM runs headless; to watch its screen, connect an RDP client (no password) to rdp://{address}:{port}"
                    ),
                );
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
            let Some(vbox) = state.vbox.clone() else {
                return;
            };
            let vm = state.config.vm_name.clone();
            if vm_state(vbox.clone(), vm.clone())
                .await
                .is_some_and(|s| s.is_running())
            {
                ctx.reporter.info(&ctx.build, "Stopping the VM");
                if let Err(e) = run_all(vbox, vec![poweroff(&vm)]).await {
                    ctx.reporter
                        .warn(&ctx.build, &format!("could not power off {vm}: {e}"));
                }
            }
        })
    }
}

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

pub struct StepShutdown;

impl Step<VBoxState> for StepShutdown {
    fn name(&self) -> &'static str {
        "Shutting down the VM"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let vbox = state.vbox()?;
            let vm = state.config.vm_name.clone();
            match (&state.config.shutdown.command, state.common.ssh.clone()) {
                (Some(command), Some(ssh)) if !state.config.disable_shutdown => {
                    run_shutdown_command(&ssh, command, ctx).await;
                }
                _ if state.config.disable_shutdown => {
                    ctx.reporter.info(
                        &ctx.build,
                        "disable_shutdown: waiting for the guest to stop by itself",
                    );
                }
                _ if state.config.acpi_shutdown => {
                    ctx.reporter
                        .info(&ctx.build, "Pressing the VM's ACPI power button");
                    run_all(vbox.clone(), vec![acpi_power_button(&vm)]).await?;
                }
                // As Packer: no shutdown_command and no acpi_shutdown means
                // pulling the plug (validation warned about it).
                _ => {
                    ctx.reporter.info(
                        &ctx.build,
                        "No shutdown_command or acpi_shutdown: powering the VM off",
                    );
                    run_all(vbox.clone(), vec![poweroff(&vm)]).await?;
                }
            }
            state.common.ssh = None;
            let deadline = Instant::now() + state.config.shutdown.timeout;
            loop {
                if !vm_state(vbox.clone(), vm.clone())
                    .await
                    .is_some_and(|s| s.is_running())
                {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(StepError::new(format!(
                        "the guest did not stop within shutdown_timeout ({:?}); it will be powered off. Check shutdown_command (or that the guest acts on the ACPI power button), or raise shutdown_timeout{}",
                        state.config.shutdown.timeout,
                        serial_note(state.common.serial_log.as_ref(), 10)
                    )));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            tokio::time::sleep(state.config.post_shutdown_delay).await;
            ctx.reporter.info(&ctx.build, "The VM has stopped");
            Ok(())
        })
    }
}

pub struct StepExport;

impl Step<VBoxState> for StepExport {
    fn name(&self) -> &'static str {
        "Exporting the VM"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            if state.config.skip_export {
                ctx.reporter.info(&ctx.build, "skip_export: not exporting");
                return Ok(());
            }
            let vm = &state.config.vm_name;
            let mut commands = Vec::new();
            // The build's SSH forward must not travel with the image: an
            // imported copy would claim this host port (Packer deletes it too).
            if let (Some(port), Some(ssh)) =
                (state.common.ssh_host_port, state.common.communicator.ssh())
            {
                ctx.reporter.info(
                    &ctx.build,
                    &format!("Deleting the SSH port forward (host port {port})"),
                );
                commands.push(NatRule::ssh(port, ssh.port).delete_command(vm));
            }
            commands.push(super::specs::export_spec(&state.config).command(vm));
            run_all(state.vbox()?, commands).await?;
            let dir = &state.common.output_dir;
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| StepError::with_source(format!("cannot list {}", dir.display()), e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|x| {
                        ["ova", "ovf", "vmdk", "mf"].contains(&x.to_string_lossy().as_ref())
                    })
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(StepError::new(format!(
                    "VBoxManage export wrote nothing to {}",
                    dir.display()
                )));
            }
            state.exported = files;
            Ok(())
        })
    }
}

/// Uploads `virtualbox_version_file` (default `.vbox_version`) so scripts
/// in the guest know the VirtualBox version.
pub struct StepUploadVersion;

impl Step<VBoxState> for StepUploadVersion {
    fn name(&self) -> &'static str {
        "Uploading the VirtualBox version"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let (Some(path), Some(ssh)) = (
                state.config.virtualbox_version_file.clone(),
                state.common.ssh.clone(),
            ) else {
                return Ok(());
            };
            // Read once by StepFindVBoxManage (Packer asks VBoxManage again).
            let version = state
                .version
                .as_ref()
                .ok_or_else(|| StepError::new("the VirtualBox version is not known"))?;
            let text = version.number();
            let mut reader = text.as_bytes();
            ssh.upload(&mut reader, text.len() as u64, &path, 0o644)
                .await
                .map_err(|e| StepError::with_source(format!("cannot upload {path}"), e))?;
            ctx.reporter.info(
                &ctx.build,
                &format!("Uploaded the VirtualBox version ({text}) to {path}"),
            );
            Ok(())
        })
    }
}
