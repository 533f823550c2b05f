//! Disk conversion for the upload post-processors: `qemu-img convert`, the
//! one program that reads every format a builder writes. A failed
//! conversion leaves no partial output.

use std::path::Path;

use crate::artifact::Disk;

/// Converts `disk` to `out` in qemu-img's `format` (`raw`, `vmdk`, `vpc`, …)
/// with extra `options`; on failure returns qemu-img's complaint.
pub async fn convert_disk(
    disk: &Disk,
    out: &Path,
    format: &str,
    options: &[&str],
) -> Result<(), String> {
    let source_format = disk.format.as_str();
    let status = tokio::process::Command::new("qemu-img")
        .args(["convert", "-f", source_format, "-O", format])
        .args(options)
        .arg(&disk.path)
        .arg(out)
        .kill_on_drop(true)
        .output()
        .await;
    let problem = match status {
        Ok(o) if o.status.success() => return Ok(()),
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
        Err(e) => format!("cannot run qemu-img: {e}"),
    };
    let _ = std::fs::remove_file(out);
    Err(problem)
}
