//! A small driver for bench/ova.sh: exports one disk as an OVA so the
//! script can time it against the bare qemu-img convert it wraps.
//!
//! usage: ova_bench SOURCE_DISK OUT.ova

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use kiln::artifact::ovf::{OsType, OvfSpec, export_ova};
use kiln::hypervisor::qemu::{QemuImg, QemuImgCli};
use kiln::ui::{Progress, Reporter};
use tokio_util::sync::CancellationToken;

struct Quiet;
struct NoProgress;

impl Progress for NoProgress {
    fn set_position(&self, _: u64) {}
    fn set_total(&self, _: u64) {}
    fn finish(&self, _: &str) {}
}

impl Reporter for Quiet {
    fn step_started(&self, _: &str, _: &str) {}
    fn step_finished(&self, _: &str, _: &str, _: Duration, _: bool) {}
    fn warn(&self, _: &str, m: &str) {
        eprintln!("warning: {m}");
    }
    fn info(&self, _: &str, _: &str) {}
    fn progress(&self, _: &str, _: &str, _: Option<u64>) -> Box<dyn Progress> {
        Box::new(NoProgress)
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
