//! The memory half of an install checkpoint: the VM's device and RAM state
//! saved beside the disk, so a later build resumes the running guest in
//! seconds instead of booting the installed disk again.
//!
//! A migration stream loads only into a VM with the same devices, so the
//! resumed QEMU gets the install's command line (ISO in the CD slot
//! included) and a compatibility line is kept with the stream: kiln's
//! memory format version, the QEMU version and the accelerator (the
//! devices themselves are in the install key). Anything that goes wrong in
//! a memory resume falls back to booting the disk, with a warning.

use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::checkpoint::MemoryState;
use crate::host::program::run_captured_async;
use crate::hypervisor::qemu::migrate::{self, load_state};
use crate::hypervisor::qemu::{Backing, ConvertOptions, ImageFormat, QemuImg, QemuImgCli};
use crate::run::runner::StepContext;
use crate::vm::Accelerator;

use super::{CheckpointStepError, QemuState};

/// Raised whenever what the memory state holds or how it is loaded
/// changes: a stream of another version is never loaded.
pub(super) const MEMORY_FORMAT_VERSION: u32 = 1;
/// Writing or reading a tiny guest's state takes a second or two; the
/// bound is for a stuck writer, not a slow disk.
pub(super) const MIGRATION_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a resumed guest gets to answer on its SSH port before kiln
/// boots the disk instead: a resumed guest's sshd is already listening.
const SSH_ANSWER_TIMEOUT: Duration = Duration::from_secs(45);

/// Why this build saves or loads no memory state, if it does not.
pub(super) fn why_no_memory(state: &QemuState) -> Option<&'static str> {
    let c = &state.config;
    if c.hardware.tpm_device.is_some() {
        Some("the software TPM's state (vtpm) lives in swtpm, outside QEMU's stream")
    } else if c.hardware.efi.is_some() || c.hardware.use_pflash {
        Some("UEFI's variable store is a file of the output directory, outside QEMU's stream")
    } else if c.net_bridge.is_some() {
        Some("a bridged guest's network lease belongs to the real network")
    } else if state.common.ssh_host_port.is_none() {
        Some(
            "without a forwarded SSH port (skip_nat_mapping) kiln cannot tell the resumed guest answers",
        )
    } else {
        None
    }
}

/// The first line of `qemu-system-… --version`.
async fn qemu_version(binary: &str) -> Result<String, String> {
    let out = run_captured_async(binary.as_ref(), &["--version".into()])
        .await
        .map_err(|e| format!("cannot run {binary} --version: {}", e.source))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .filter(|l| out.status.success() && !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
        .ok_or_else(|| format!("{binary} --version said nothing"))
}

/// What a VM must match to load this build's memory state, beyond the
/// install key: kiln's stream format, QEMU's version, the accelerator
/// (TCG's and KVM's CPU state differ) and, under KVM, the host CPU.
pub(super) async fn compat_line(state: &mut QemuState) -> Result<String, String> {
    let accel = state.accel.ok_or("no accelerator was chosen")?;
    let version = qemu_version(&state.config.qemu_binary).await?;
    let mut line = format!("kiln-memory v{MEMORY_FORMAT_VERSION}; {version}; accel {accel:?}");
    if accel == Accelerator::Kvm {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        line.push_str(&format!("; host cpu {}", cpu.trim()));
    }
    Ok(line)
}

/// The memory state this build can resume, or `None` (with the reason
/// reported) when it must boot the disk.
pub(super) async fn usable_memory(state: &mut QemuState, ctx: &StepContext) -> Option<MemoryState> {
    let memory = state.resumed_from()?.memory.clone()?;
    if let Some(why) = why_no_memory(state) {
        ctx.reporter.info(
            &ctx.build,
            &format!("The checkpoint's memory state is not used ({why}): booting its disk"),
        );
        return None;
    }
    match compat_line(state).await {
        Ok(mine) if mine == memory.compat => Some(memory),
        Ok(mine) => {
            ctx.reporter.warn(
                &ctx.build,
                &format!(
                    "the checkpoint's memory state was saved by \"{}\", this build runs \"{mine}\": booting its disk instead",
                    memory.compat
                ),
            );
            None
        }
        Err(why) => {
            ctx.reporter.warn(
                &ctx.build,
                &format!("the checkpoint's memory state is not used ({why}): booting its disk"),
            );
            None
        }
    }
}

/// Loads the memory state into the QEMU just started (paused, waiting
/// for it), runs the guest and waits for its SSH port to answer. `Err`
/// says why the resume failed; the caller then kills that QEMU.
pub(super) async fn resume(state: &mut QemuState, memory: &MemoryState) -> Result<(), String> {
    use crate::error_chain::error_chain;
    let qmp = state.qmp.as_mut().ok_or("no QMP connection")?;
    load_state(qmp, &memory.path, MIGRATION_TIMEOUT)
        .await
        .map_err(|e| error_chain(&e, ": "))?;
    qmp.cont().await.map_err(|e| error_chain(&e, ": "))?;
    let port = state.common.ssh_host_port.ok_or("no SSH port")?;
    wait_for_banner(port, SSH_ANSWER_TIMEOUT).await
}

/// Waits until `127.0.0.1:port` sends an SSH banner: the resumed guest's
/// sshd answered through the new QEMU's port forward.
async fn wait_for_banner(port: u16, bound: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + bound;
    let mut last = String::from("no answer");
    while tokio::time::Instant::now() < deadline {
        let attempt = async {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .map_err(|e| e.to_string())?;
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            if &buf == b"SSH-" {
                Ok(())
            } else {
                Err(format!("port {port} answered {buf:?}, not SSH"))
            }
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => last = e,
            Err(_) => last = "no banner within 5 s".into(),
        }
        // QEMU's forward accepts and drops at once while the guest's
        // network is not back yet: retry shortly, not in a busy loop.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!(
        "the guest's SSH did not answer within {bound:?} ({last})"
    ))
}

/// A fresh disk over the checkpoint (after a failed memory resume the
/// guest may have written to the first one), as the disk step makes it.
pub(super) async fn recreate_disk(state: &mut QemuState) -> Result<(), CheckpointStepError> {
    let Some(checkpoint) = state.resumed_from().map(|c| c.disk.clone()) else {
        return Ok(());
    };
    let (disk, format, config) = (
        state.disk_path.clone(),
        state.image_format(),
        state.config.clone(),
    );
    tokio::task::spawn_blocking(move || {
        let img = QemuImgCli::default();
        let _ = std::fs::remove_file(&disk);
        if format == ImageFormat::Qcow2 && !config.skip_compaction {
            let backing = Backing {
                path: &checkpoint,
                format: ImageFormat::Qcow2,
            };
            img.create(
                &disk,
                format,
                config.disk_size_mib,
                Some(backing),
                &config.qemu_img_args.create,
            )
            .map_err(|e| CheckpointStepError::Disk("cannot create the disk over the checkpoint", e))
        } else {
            let options = ConvertOptions {
                src_format: Some(ImageFormat::Qcow2),
                ..ConvertOptions::default()
            };
            img.convert(&checkpoint, &disk, format, &options, &[])
                .map_err(|e| CheckpointStepError::Disk("cannot copy the checkpoint", e))
        }
    })
    .await
    .map_err(|e| CheckpointStepError::Task("the disk task failed", e))?
}

/// Writes the paused VM's state to `path` (the checkpoint being written).
pub(super) async fn save(state: &mut QemuState, path: &Path) -> Result<(), String> {
    let qmp = state.qmp.as_mut().ok_or("no QMP connection")?;
    migrate::save_state(qmp, path, MIGRATION_TIMEOUT)
        .await
        .map_err(|e| crate::error_chain::error_chain(&e, ": "))
}
