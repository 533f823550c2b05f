//! Finding an accelerator that really runs guests.
//!
//! `/dev/kvm` existing proves little: on some hosts KVM is a PVM flavour
//! that accepts an ordinary guest and then never runs it. So `auto` boots
//! a one-sector guest under KVM that must exit QEMU through
//! `isa-debug-exit` within [`KVM_PROBE_TIMEOUT`]; if it does not, the build
//! runs under TCG and the builder shows the reason as one warning. The
//! verdict is cached for the rest of the run, per QEMU binary.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::process::QemuProcess;
use crate::vm::Accelerator;

/// How long a probe guest may take under KVM before KVM counts as broken.
/// A working KVM finishes in well under a second, QEMU's start included.
pub const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// I/O port of the `isa-debug-exit` device: writing V makes QEMU exit
/// with status `(V << 1) | 1`.
pub const DEBUG_EXIT_PORT: u8 = 0xf4;

/// The probe's code, run by the BIOS at 0000:7c00 in real mode: a million
/// turns of a loop, then the exit.
///
/// Reaching the sector is not enough: on the PVM hosts this guards against,
/// SeaBIOS reaches it in ~2.8 s, but each real-mode instruction then costs
/// ~5 µs (the loop takes ~5 s there, milliseconds under TCG or a working
/// KVM), which is why installers' boot loaders appear to hang.
///
/// ```text
/// mov ecx, 0x100000 ; 66 b9 00 00 10 00
/// dec ecx           ; 66 49
/// jnz -4            ; 75 fc
/// mov al, 0x21      ; b0 21
/// out 0xf4, al      ; e6 f4
/// hlt               ; f4
/// jmp -3            ; eb fd
/// ```
pub const PROBE_CODE: &[u8] = &[
    0x66,
    0xb9,
    0x00,
    0x00,
    0x10,
    0x00,
    0x66,
    0x49,
    0x75,
    0xfc,
    0xb0,
    0x21,
    0xe6,
    DEBUG_EXIT_PORT,
    0xf4,
    0xeb,
    0xfd,
];

/// QEMU's exit status once the probe has run: `(0x21 << 1) | 1`.
pub const PROBE_EXIT_STATUS: i32 = 0x43;

/// The outcome of choosing an accelerator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// What the VM will run under.
    pub chosen: Accelerator,
    /// Why, in a sentence the builder can show.
    pub reason: String,
    /// True when `auto` wanted KVM and fell back; show `reason` as a warning.
    pub fell_back: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProbeError {
    #[error("accelerator: kvm was requested, but KVM cannot run guests here: {detail}")]
    KvmUnusable { detail: String },
}

/// Chooses the accelerator for `requested` (the `accelerator` setting;
/// `None` for `auto`).
///
/// `auto` and `kvm` boot a test guest under KVM (once per run and binary);
/// any other setting is taken as given, unprobed.
pub async fn probe_accelerator(
    requested: Option<Accelerator>,
    qemu_binary: &str,
) -> Result<ProbeResult, ProbeError> {
    if let Some(explicit) = requested
        && explicit != Accelerator::Kvm
    {
        return Ok(ProbeResult {
            chosen: explicit,
            reason: format!("accelerator: {explicit} is configured"),
            fell_back: false,
        });
    }
    let verdict = kvm_verdict(qemu_binary).await;
    match (requested, &verdict.broken) {
        (_, None) => Ok(ProbeResult {
            chosen: Accelerator::Kvm,
            reason: format!("KVM ran a test guest in {} ms", verdict.elapsed.as_millis()),
            fell_back: false,
        }),
        (Some(Accelerator::Kvm), Some(detail)) => Err(ProbeError::KvmUnusable {
            detail: detail.clone(),
        }),
        (_, Some(detail)) => Ok(ProbeResult {
            chosen: Accelerator::Tcg,
            reason: format!(
                "KVM cannot run guests here ({detail}); using TCG software emulation, which is much slower"
            ),
            fell_back: true,
        }),
    }
}

#[derive(Debug, Clone)]
struct KvmVerdict {
    /// Why KVM is unusable, or `None` when the probe guest ran.
    broken: Option<String>,
    elapsed: Duration,
}

async fn kvm_verdict(qemu_binary: &str) -> KvmVerdict {
    static VERDICTS: Mutex<Option<HashMap<String, Arc<OnceCell<KvmVerdict>>>>> = Mutex::new(None);
    let cell = {
        let mut map = VERDICTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get_or_insert_with(HashMap::new)
            .entry(qemu_binary.to_owned())
            .or_default()
            .clone()
    };
    cell.get_or_init(|| async {
        let start = Instant::now();
        let broken = if Path::new("/dev/kvm").exists() {
            run_probe_guest(qemu_binary, Accelerator::Kvm, KVM_PROBE_TIMEOUT)
                .await
                .err()
        } else {
            Some("/dev/kvm does not exist".to_owned())
        };
        KvmVerdict {
            broken,
            elapsed: start.elapsed(),
        }
    })
    .await
    .clone()
}

/// A bootable 512-byte sector: `code`, zero padding, the 0x55AA signature.
/// Longer code is cut at 510 bytes.
pub fn boot_sector(code: &[u8]) -> [u8; 512] {
    let mut sector = [0u8; 512];
    let n = code.len().min(510);
    sector[..n].copy_from_slice(&code[..n]);
    sector[510] = 0x55;
    sector[511] = 0xaa;
    sector
}

/// The arguments that boot `image` as the only disk, with the debug-exit
/// device and nothing else (no NIC, no display, no serial).
pub fn probe_guest_args(accel: Accelerator, image: &Path) -> Vec<String> {
    [
        "-machine",
        &format!("pc,accel={accel}"),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-m",
        "16",
        "-device",
        &format!("isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04"),
        "-drive",
        &format!(
            "format=raw,if=ide,file={}",
            image.display().to_string().replace(',', ",,")
        ),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Boots the probe sector under `accel`; `Ok(elapsed)` when it exited QEMU
/// as expected within `timeout`, else a one-line reason.
pub async fn run_probe_guest(
    qemu_binary: &str,
    accel: Accelerator,
    timeout: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let dir = crate::host::scratch::tempdir("probe")
        .map_err(|e| format!("could not create a directory for the test guest: {e}"))?;
    let image = dir.path().join("probe.img");
    std::fs::write(&image, boot_sector(PROBE_CODE))
        .map_err(|e| format!("could not write the test guest: {e}"))?;
    let mut qemu = QemuProcess::spawn_args(qemu_binary, &probe_guest_args(accel, &image))
        .map_err(|e| crate::error_chain::error_chain(&e, ": "))?;
    let status = qemu
        .wait_exit(timeout)
        .await
        .map_err(|e| crate::error_chain::error_chain(&e, ": "))?;
    match status {
        Some(s) if s.code() == Some(PROBE_EXIT_STATUS) => Ok(start.elapsed()),
        Some(s) => {
            let tail = qemu.final_stderr_tail();
            let last = tail.last().map(String::as_str).unwrap_or("no error output");
            let how = match (s.code(), s.signal()) {
                (Some(c), _) => format!("status {c}"),
                (None, Some(sig)) => format!("signal {sig}"),
                _ => s.to_string(),
            };
            Err(format!("QEMU exited with {how}: {last}"))
        }
        None => {
            let _ = qemu.kill().await;
            Err(format!(
                "a test guest did not finish within {} s",
                timeout.as_secs_f32()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_sector_layout() {
        let s = boot_sector(PROBE_CODE);
        assert_eq!(&s[..PROBE_CODE.len()], PROBE_CODE);
        assert!(s[PROBE_CODE.len()..510].iter().all(|&b| b == 0));
        assert_eq!(&s[510..], &[0x55, 0xaa]);
    }

    #[test]
    fn probe_argv() {
        assert_eq!(
            probe_guest_args(Accelerator::Kvm, Path::new("/tmp/a,b/probe.img")),
            [
                "-machine",
                "pc,accel=kvm",
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-m",
                "16",
                "-device",
                "isa-debug-exit,iobase=0xf4,iosize=0x04",
                "-drive",
                "format=raw,if=ide,file=/tmp/a,,b/probe.img"
            ]
        );
    }

    #[tokio::test]
    async fn explicit_accelerators_are_not_probed() {
        let r = probe_accelerator(Some(Accelerator::Tcg), "/nonexistent/qemu")
            .await
            .expect("tcg needs no probe");
        assert_eq!(r.chosen, Accelerator::Tcg);
        assert!(!r.fell_back);
    }
}
