//! Chooses the accelerator (probing KVM for real), builds the qemu-system
//! command line, starts QEMU as an owned process and connects to QMP.

use std::time::Duration;

use crate::builder::common::render_deferred;
use crate::host::port::find_free_port_on;
use crate::hypervisor::qemu::firmware::{DESCRIPTOR_DIR, find_uefi};
use crate::hypervisor::qemu::{
    CdromDrive, CpuTopology, DiskDrive, DiskInterface, Display, Firmware, NetBackend, NetDevice,
    QemuCommand, QemuProcess, SshForward, Vnc, probe_accelerator,
};
use crate::run::runner::{
    CleanupFuture, FailureClass, Outcome, Step, StepContext, StepError, StepFuture,
};

use super::{QemuState, checkpoint_memory, fail_on_host};
use crate::config::qemu::DiskInterface as ConfigDiskInterface;
use crate::vm::Accelerator;

pub struct StepRunVm;

const QMP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

fn has_display() -> bool {
    std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

/// The typed command line for this build.
///
/// With `incoming`, the command is the install's (the ISO in its slot:
/// a memory state loads only into the same devices) and QEMU waits for
/// the state instead of booting.
fn command(
    state: &QemuState,
    ctx: &StepContext,
    accel: Accelerator,
    incoming: bool,
) -> Result<QemuCommand, StepError> {
    let c = &state.config;
    let mut cmd = QemuCommand::new(c.qemu_binary.clone(), accel);
    cmd.name = Some(c.vm_name.clone());
    cmd.machine_type = c.machine_type.clone();
    cmd.cpus = c.cpus;
    cmd.memory_mib = c.memory_mib;
    if let Some(fw) = &c.firmware {
        cmd.firmware = if c.hardware.use_pflash {
            Firmware::PflashCode(fw.clone())
        } else {
            Firmware::Bios(fw.clone())
        };
    }
    set_hardware(&mut cmd, state)?;
    // A resumed build boots the installed disk; the ISO stays out.
    let installed = c.disk_image || (state.resumed_from().is_some() && !incoming);
    cmd.incoming_deferred = incoming;
    cmd.boot = Some(if installed { "c" } else { "once=d" }.to_owned());
    let interface = disk_interface(c.disk_interface);
    for path in std::iter::once(&state.disk_path).chain(&state.additional_disks) {
        let mut disk = DiskDrive::new(path.clone(), state.image_format());
        disk.interface = interface;
        disk.cache = c.disk_cache.clone();
        disk.discard = c.disk_discard.clone();
        disk.detect_zeroes = c.disk_detect_zeroes.clone();
        cmd.disks.push(disk);
    }
    if !installed && let Some(iso) = &state.common.iso_path {
        cmd.cdroms.push(CdromDrive {
            path: iso.clone(),
            interface: c.cdrom_interface.map(disk_interface),
        });
    }
    if let Some(cd) = &state.common.cd_path {
        cmd.cdroms.push(CdromDrive {
            path: cd.clone(),
            interface: c.cdrom_interface.map(disk_interface),
        });
    }
    cmd.floppy = state.common.floppy_path.clone();
    let ssh_forward = state
        .common
        .ssh_host_port
        .zip(state.common.communicator.ssh())
        .map(|(host_port, ssh)| SshForward {
            host_port,
            guest_port: ssh.port,
        });
    cmd.net = Some(NetDevice {
        model: c.net_device.clone(),
        backend: match &c.net_bridge {
            Some(bridge) => NetBackend::Bridge(bridge.clone()),
            None => NetBackend::User { ssh_forward },
        },
    });
    cmd.display = if c.headless {
        Display::Headless
    } else if c.use_default_display || c.display.as_deref() == Some("none") {
        Display::QemuDefault
    } else if let Some(d) = &c.display {
        Display::Named(d.clone())
    } else if has_display() {
        Display::Named("gtk".into())
    } else {
        ctx.reporter.warn(
            &ctx.build,
            "headless is false but there is no display (DISPLAY is not set): running headless",
        );
        Display::Headless
    };
    cmd.vnc = state.vnc.clone();
    cmd.qmp_socket = state
        .runtime_dir
        .as_ref()
        .map(|d| d.path().join("qmp.sock"));
    cmd.user_qmp_socket = c.qmp_enable.then(|| {
        c.qmp_socket_path
            .clone()
            .unwrap_or_else(|| state.output_dir.join(format!("{}.monitor", c.vm_name)))
    });
    cmd.serial_log = state.common.serial_log.clone();

    let mut data = state.common.http_data();
    data.insert(
        "HTTPDir".to_owned(),
        c.http
            .directory
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
    );
    data.insert(
        "OutputDir".to_owned(),
        state.output_dir.display().to_string(),
    );
    data.insert("Name".to_owned(), c.vm_name.clone());
    data.insert(
        "SSHHostPort".to_owned(),
        state.common.ssh_host_port.unwrap_or(0).to_string(),
    );
    for row in &c.qemuargs {
        let rendered = row
            .iter()
            .map(|d| render_deferred(&state.common, "qemuargs", d, &data))
            .collect::<Result<Vec<_>, _>>()?;
        cmd.qemuargs.push(rendered);
    }
    Ok(cmd)
}

/// QEMU's VNC server on a free port of `vnc_port_min..=vnc_port_max`, or
/// none with `disable_vnc`.
fn vnc_server(c: &crate::config::qemu::QemuConfig) -> Result<Option<Vnc>, StepError> {
    if c.disable_vnc {
        return Ok(None);
    }
    let port = find_free_port_on(c.vnc_bind_address, c.vnc_port_min, c.vnc_port_max)
        .ok_or_else(|| {
            StepError::new(FailureClass::Host, format!(
                "no free VNC port on {} between {} and {} (vnc_port_min..vnc_port_max); widen the range or set disable_vnc",
                c.vnc_bind_address, c.vnc_port_min, c.vnc_port_max
            ))
        })?;
    Ok(Some(Vnc {
        bind: c.vnc_bind_address,
        port,
        password: c.vnc_use_password,
    }))
}

/// CPU model and topology, `-vga`, and UEFI (`efi_boot`).
fn set_hardware(cmd: &mut QemuCommand, state: &QemuState) -> Result<(), StepError> {
    let hw = &state.config.hardware;
    cmd.cpu_model = hw.cpu_model.clone();
    cmd.topology = CpuTopology {
        sockets: hw.sockets,
        cores: hw.cores,
        threads: hw.threads,
    };
    cmd.vga = hw.vga.clone();
    if let (Some(device), Some(tpm)) = (&hw.tpm_device, &state.swtpm) {
        cmd.tpm = Some(crate::hypervisor::qemu::command::Tpm {
            socket: tpm.socket().to_owned(),
            device: device.clone(),
        });
    }
    if let Some(efi) = &hw.efi {
        cmd.firmware = uefi_firmware(efi, &state.config.machine_type, &state.output_dir)?;
    }
    Ok(())
}

/// UEFI code from `efi_firmware_code` or QEMU's firmware descriptors, and
/// the variable store copied into the output directory as `efivars.fd`
/// (Packer's name): the guest writes boot entries there, never into the
/// system's template.
fn uefi_firmware(
    efi: &crate::config::qemu::EfiConfig,
    machine: &str,
    output_dir: &std::path::Path,
) -> Result<Firmware, StepError> {
    let (code, template) = match (&efi.code, &efi.vars) {
        (Some(code), _) if efi.drop_efivars => return Ok(Firmware::PflashCode(code.clone())),
        (Some(code), Some(vars)) => (code.clone(), vars.clone()),
        _ => {
            let found = find_uefi(std::path::Path::new(DESCRIPTOR_DIR), "x86_64", machine)
                .map_err(|e| fail_on_host("cannot find UEFI firmware (install Debian's ovmf package, or set efi_firmware_code and efi_firmware_vars)", e))?;
            (
                efi.code.clone().unwrap_or(found.code),
                efi.vars.clone().unwrap_or(found.vars_template),
            )
        }
    };
    if efi.drop_efivars {
        return Ok(Firmware::PflashCode(code));
    }
    let vars = output_dir.join("efivars.fd");
    std::fs::copy(&template, &vars).map_err(|e| {
        fail_on_host(
            format!("cannot copy the UEFI variable store {}", template.display()),
            e,
        )
    })?;
    Ok(Firmware::Pflash { code, vars })
}

/// A fresh VNC password: 8 characters, all VNC's DES challenge uses.
fn vnc_password() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

impl Step<QemuState> for StepRunVm {
    fn name(&self) -> &'static str {
        "Starting the VM"
    }

    fn run<'a>(&'a mut self, state: &'a mut QemuState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let probe = probe_accelerator(state.config.accelerator, &state.config.qemu_binary)
                .await
                .map_err(|e| fail_on_host("cannot use the requested accelerator", e))?;
            if probe.fell_back {
                ctx.reporter.warn(&ctx.build, &probe.reason);
            } else {
                ctx.reporter.info(
                    &ctx.build,
                    &format!("Accelerator: {} ({})", probe.chosen, probe.reason),
                );
            }
            state.accel = Some(probe.chosen);
            let runtime = crate::host::scratch::tempdir("vm")
                .map_err(|e| fail_on_host("cannot create a runtime directory", e))?;
            if let Some(device) = &state.config.hardware.tpm_device {
                use crate::hypervisor::qemu::swtpm::{SOCKET_TIMEOUT, Swtpm};
                let tpm = Swtpm::start(runtime.path(), SOCKET_TIMEOUT)
                    .await
                    .map_err(|e| fail_on_host("cannot start the software TPM (vtpm)", e))?;
                ctx.reporter.info(
                    &ctx.build,
                    &format!("swtpm started (pid {}) for a {device} TPM 2.0", tpm.pid()),
                );
                state.swtpm = Some(tpm);
            }
            state.runtime_dir = Some(runtime);
            state.common.serial_log = Some(state.output_dir.join("serial.log"));

            state.vnc = vnc_server(&state.config)?;
            if let Some(memory) = checkpoint_memory::usable_memory(state, ctx).await {
                let cmd = command(state, ctx, probe.chosen, true)?;
                match start(state, ctx, &cmd).await {
                    Ok(()) => match checkpoint_memory::resume(state, &memory).await {
                        Ok(()) => {
                            state.memory_resumed = true;
                            ctx.reporter.info(
                                &ctx.build,
                                "Resumed the installed guest from the checkpoint's memory state: no boot",
                            );
                        }
                        Err(why) => {
                            ctx.reporter.warn(
                                &ctx.build,
                                &format!(
                                    "resuming the checkpoint's memory state failed ({why}): booting its disk instead"
                                ),
                            );
                        }
                    },
                    Err(e) => ctx.reporter.warn(
                        &ctx.build,
                        &format!(
                            "QEMU did not start to load the checkpoint's memory state ({}): booting its disk instead",
                            e.chain()
                        ),
                    ),
                }
                if !state.memory_resumed {
                    stop_vm(state, ctx).await;
                    checkpoint_memory::recreate_disk(state).await?;
                }
            }
            if !state.memory_resumed {
                let cmd = command(state, ctx, probe.chosen, false)?;
                start(state, ctx, &cmd).await?;
            }
            let qmp = state
                .qmp
                .as_mut()
                .ok_or_else(|| StepError::new(FailureClass::Host, "no QMP connection"))?;
            if let Some(vnc) = &state.vnc {
                let mut message = format!(
                    "To watch the VM's screen, connect a VNC client to {}",
                    vnc.url()
                );
                if vnc.password {
                    let password = vnc_password();
                    qmp.change_vnc_password(&password)
                        .await
                        .map_err(|e| fail_on_host("QEMU refused the VNC password", e))?;
                    // Asked for by vnc_use_password, so shown on purpose
                    // (as Packer does): it guards only this build's screen.
                    message.push_str(&format!(" with the password {password}"));
                }
                ctx.reporter.info(&ctx.build, &message);
            }
            Ok(())
        })
    }

    fn cleanup<'a>(
        &'a mut self,
        state: &'a mut QemuState,
        ctx: &'a StepContext,
        _outcome: Outcome,
    ) -> CleanupFuture<'a> {
        Box::pin(async move {
            stop_vm(state, ctx).await;
            if let Some(tpm) = state.swtpm.take()
                && let Err(e) = tpm.stop().await
            {
                ctx.reporter
                    .warn(&ctx.build, &format!("could not stop swtpm: {e}"));
            }
            state.runtime_dir = None;
        })
    }
}

/// Starts QEMU for `cmd` as an owned process and connects to its QMP
/// socket; both are in `state` from then on (so cleanup stops them).
async fn start(
    state: &mut QemuState,
    ctx: &StepContext,
    cmd: &QemuCommand,
) -> Result<(), StepError> {
    let mut vm = QemuProcess::spawn(cmd).map_err(|e| fail_on_host("cannot start QEMU", e))?;
    ctx.reporter.info(
        &ctx.build,
        &format!("QEMU started (pid {}): {}", vm.pid(), vm.command_line()),
    );
    let socket = cmd.qmp_socket.clone().unwrap_or_default();
    let qmp = vm.connect_qmp(&socket, QMP_CONNECT_TIMEOUT).await;
    state.vm = Some(vm);
    state.qmp = Some(qmp.map_err(|e| fail_on_host("QEMU did not start", e))?);
    Ok(())
}

/// Closes QMP and kills QEMU unless it has exited.
async fn stop_vm(state: &mut QemuState, ctx: &StepContext) {
    state.qmp = None;
    if let Some(mut vm) = state.vm.take() {
        match vm.try_wait() {
            Ok(Some(_)) => {}
            _ => {
                ctx.reporter.info(&ctx.build, "Stopping the VM");
                if let Err(e) = vm.kill().await {
                    ctx.reporter
                        .warn(&ctx.build, &format!("could not stop QEMU: {e}"));
                }
            }
        }
    }
}

/// The driver's interface for the configured one.
fn disk_interface(configured: ConfigDiskInterface) -> DiskInterface {
    match configured {
        ConfigDiskInterface::Virtio => DiskInterface::Virtio,
        ConfigDiskInterface::Ide => DiskInterface::Ide,
        ConfigDiskInterface::Scsi => DiskInterface::Scsi,
        ConfigDiskInterface::VirtioScsi => DiskInterface::VirtioScsi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::qemu::EfiConfig;

    #[test]
    fn the_uefi_variable_store_is_a_private_copy_in_the_output_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let template = dir.path().join("VARS.fd");
        std::fs::write(&template, b"vars-template").expect("write");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("out");
        let efi = EfiConfig {
            code: Some("/code.fd".into()),
            vars: Some(template.clone()),
            drop_efivars: false,
        };
        let fw = uefi_firmware(&efi, "q35", &out).expect("firmware");
        let vars = out.join("efivars.fd");
        assert_eq!(
            fw,
            Firmware::Pflash {
                code: "/code.fd".into(),
                vars: vars.clone()
            }
        );
        assert_eq!(std::fs::read(&vars).expect("copy"), b"vars-template");

        let missing = EfiConfig {
            code: Some("/code.fd".into()),
            vars: Some(dir.path().join("nope.fd")),
            drop_efivars: false,
        };
        let e = uefi_firmware(&missing, "q35", &out).expect_err("refused");
        assert!(
            e.to_string()
                .contains("cannot copy the UEFI variable store"),
            "{e}"
        );
    }

    /// With only efi_boot, the firmware comes from QEMU's descriptors
    /// (Debian's ovmf when installed).
    #[test]
    fn efi_boot_alone_finds_ovmf_from_the_descriptors() {
        if !std::path::Path::new(DESCRIPTOR_DIR).is_dir() {
            eprintln!("skipped: no firmware descriptors");
            return;
        }
        let out = tempfile::tempdir().expect("tempdir");
        let fw = uefi_firmware(&EfiConfig::default(), "pc", out.path()).expect("found");
        let Firmware::Pflash { code, vars } = fw else {
            panic!("pflash: {fw:?}");
        };
        assert!(code.exists(), "{code:?}");
        assert_eq!(vars, out.path().join("efivars.fd"));
        assert!(vars.metadata().expect("copied").len() > 0);
    }

    #[test]
    fn efi_drop_efivars_attaches_the_code_alone_and_copies_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let efi = EfiConfig {
            code: Some("/code.fd".into()),
            vars: Some(dir.path().join("VARS.fd")),
            drop_efivars: true,
        };
        let fw = uefi_firmware(&efi, "q35", dir.path()).expect("firmware");
        assert_eq!(fw, Firmware::PflashCode("/code.fd".into()));
        assert!(!dir.path().join("efivars.fd").exists());
    }
}
