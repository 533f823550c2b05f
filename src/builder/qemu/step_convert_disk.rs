//! Compacts (and optionally compresses) the finished disk with
//! `qemu-img convert`, writing a temporary file renamed over the original.

use crate::hypervisor::qemu::{ConvertOptions, QemuImg, QemuImgCli};
use crate::run::runner::{Step, StepContext, StepFuture};
use crate::vm::ImageFormat;

use super::{QemuState, fail_on_host};

pub struct StepConvertDisk;

impl Step<QemuState> for StepConvertDisk {
    fn name(&self) -> &'static str {
        "Compacting the disk"
    }

    fn run<'a>(&'a mut self, state: &'a mut QemuState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let c = &state.config;
            if c.skip_compaction || c.format != ImageFormat::Qcow2 || c.use_backing_file {
                ctx.reporter.info(
                    &ctx.build,
                    "Not compacting (skip_compaction, raw format or backing file)",
                );
                return Ok(());
            }
            let disk = state.disk_path.clone();
            let tmp = disk.with_file_name(format!(".{}.kiln-convert", c.vm_name));
            let options = ConvertOptions {
                compress: c.disk_compression,
                ..ConvertOptions::default()
            };
            let extra = c.qemu_img_args.convert.clone();
            let format = state.image_format();
            let before = std::fs::metadata(&disk).map(|m| m.len()).unwrap_or(0);
            let convert_tmp = tmp.clone();
            let result = tokio::task::spawn_blocking(move || {
                QemuImgCli::default().convert(&disk, &convert_tmp, format, &options, &extra)
            })
            .await
            .map_err(|e| fail_on_host("the convert task failed", e))?;
            if let Err(e) = result {
                let _ = std::fs::remove_file(&tmp);
                return Err(fail_on_host("qemu-img convert failed", e));
            }
            std::fs::rename(&tmp, &state.disk_path)
                .map_err(|e| fail_on_host("cannot replace the disk with its compacted copy", e))?;
            let after = std::fs::metadata(&state.disk_path)
                .map(|m| m.len())
                .unwrap_or(0);
            ctx.reporter.info(
                &ctx.build,
                &format!(
                    "Compacted {}: {} → {}",
                    state.disk_path.display(),
                    crate::ui::console::format_bytes(before),
                    crate::ui::console::format_bytes(after)
                ),
            );
            Ok(())
        })
    }
}
