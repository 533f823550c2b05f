//! A small driver for bench/ova.sh: exports one disk as an OVA so the
//! script can time it against the bare qemu-img convert it wraps.
//!
//! usage: ova_bench SOURCE_DISK OUT.ova
//!
//! Prints to stderr how long the pack took after qemu-img finished: the
//! copy-and-hash into the tar, then the fsync before the rename.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kiln::artifact::ovf::{OsType, OvfSpec, export_ova};
use kiln::hypervisor::qemu::{QemuImg, QemuImgCli};
use kiln::ui::{Progress, Reporter};
use tokio_util::sync::CancellationToken;

struct Quiet;

/// Times the pack: from its start to the last byte copied, then to the end.
struct PackTimer {
    started: Instant,
    total: u64,
    copied: Mutex<Option<Instant>>,
}

impl Progress for PackTimer {
    fn set_position(&self, position: u64) {
        if position >= self.total {
            let mut copied = self.copied.lock().unwrap_or_else(|e| e.into_inner());
            copied.get_or_insert_with(Instant::now);
        }
    }
    fn set_total(&self, _: u64) {}
    fn finish(&self, _: &str) {
        let end = Instant::now();
        let copied = self
            .copied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(end);
        eprintln!(
            "pack: copy+hash {:.2} s, manifest+fsync {:.2} s",
            (copied - self.started).as_secs_f64(),
            (end - copied).as_secs_f64()
        );
    }
}

impl Reporter for Quiet {
    fn step_started(&self, _: &str, _: &str) {}
    fn step_finished(&self, _: &str, _: &str, _: Duration, _: bool) {}
    fn warn(&self, _: &str, m: &str) {
        eprintln!("warning: {m}");
    }
    fn info(&self, _: &str, _: &str) {}
    fn progress(&self, _: &str, _: &str, total: Option<u64>) -> Box<dyn Progress> {
        Box::new(PackTimer {
            started: Instant::now(),
            total: total.unwrap_or(0),
            copied: Mutex::new(None),
        })
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [source, out] = args.as_slice() else {
        eprintln!("usage: ova_bench SOURCE_DISK OUT.ova");
        return ExitCode::from(2);
    };
    let img = QemuImgCli::default();
    let capacity = match img.info(Path::new(source)) {
        Ok(info) => info.virtual_size,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let spec = OvfSpec::new("bench", OsType::debian_64(), capacity);
    match export_ova(
        &img,
        Path::new(source),
        &spec,
        Path::new(out),
        &Quiet,
        "bench",
        &CancellationToken::new(),
    ) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            let mut err: &dyn std::error::Error = &e;
            eprintln!("error: {err}");
            while let Some(cause) = err.source() {
                eprintln!("caused by: {cause}");
                err = cause;
            }
            ExitCode::FAILURE
        }
    }
}
