//! Disk conversion for the upload post-processors: `qemu-img convert`, the
//! one program that reads every format a builder writes. A failed
//! conversion leaves no partial output.

use std::ffi::{OsStr, OsString};
use std::path::Path;

use crate::artifact::Disk;
use crate::host::program::run_captured_async;

/// Converts `disk` to `out` in qemu-img's `format` (`raw`, `vmdk`, `vpc`, …)
/// with extra `options`; on failure returns qemu-img's complaint.
pub async fn convert_disk(
    disk: &Disk,
    out: &Path,
    format: &str,
    options: &[&str],
) -> Result<(), String> {
    let mut args: Vec<OsString> = ["convert", "-f", disk.format.as_str(), "-O", format]
        .into_iter()
        .chain(options.iter().copied())
        .map(OsString::from)
        .collect();
    args.push(disk.path.clone().into_os_string());
    args.push(out.as_os_str().to_owned());
    let problem = match run_captured_async(OsStr::new("qemu-img"), &args).await {
        Ok(o) if o.status.success() => return Ok(()),
        Ok(o) => o.stderr,
        Err(e) => format!("cannot run qemu-img: {}", e.source),
    };
    let _ = std::fs::remove_file(out);
    Err(problem)
}
