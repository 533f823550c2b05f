//! `format: "ova"` / `"ovf"`: exports the finished disk as an OVF 1.0
//! package (streamOptimized VMDK, descriptor, SHA-256 manifest) and
//! replaces the qcow2 with it.

use crate::artifact::ovf::{DiskController, OsType, OvfSpec, export_ova, export_ovf};
use crate::config::qemu::{DiskInterface, ExportFormat};
use crate::hypervisor::qemu::QemuImgCli;
use crate::run::runner::{Step, StepContext, StepFuture};

use super::{QemuState, fail_on_host};

pub struct StepExport;

impl Step<QemuState> for StepExport {
    fn name(&self) -> &'static str {
        "Exporting OVF"
    }

    fn run<'a>(&'a mut self, state: &'a mut QemuState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let Some(export) = state.config.export else {
                return Ok(());
            };
            let c = &state.config;
            let base = c.vm_name.trim_end_matches(".qcow2").to_owned();
            let mut spec = OvfSpec::new(&base, OsType::linux_64(), c.disk_size_mib * 1024 * 1024);
            spec.cpus = c.cpus;
            spec.memory_mib = c.memory_mib;
            spec.disk_controller = match c.disk_interface {
                DiskInterface::Ide => DiskController::Ide,
                DiskInterface::Scsi | DiskInterface::VirtioScsi => DiskController::Scsi,
                DiskInterface::Virtio => DiskController::Sata,
            };
            let disk = state.disk_path.clone();
            let out_dir = state.output_dir.clone();
            let reporter = ctx.reporter.clone();
            let build = ctx.build.clone();
            let cancel = ctx.cancel.clone();
            let files = tokio::task::spawn_blocking(move || {
                let img = QemuImgCli::default();
                match export {
                    ExportFormat::Ova => {
                        let out = out_dir.join(format!("{base}.ova"));
                        export_ova(&img, &disk, &spec, &out, reporter.as_ref(), &build, &cancel)
                    }
                    ExportFormat::Ovf => export_ovf(
                        &img,
                        &disk,
                        &spec,
                        &out_dir,
                        reporter.as_ref(),
                        &build,
                        &cancel,
                    ),
                }
            })
            .await
            .map_err(|e| fail_on_host("the export task failed", e))?
            .map_err(|e| fail_on_host("cannot export the OVF package", e))?;
            // The package replaces the working disk as the build's artifact.
            std::fs::remove_file(&state.disk_path)
                .map_err(|e| fail_on_host("cannot remove the working disk", e))?;
            for f in &files {
                ctx.reporter
                    .info(&ctx.build, &format!("Exported {}", f.display()));
            }
            state.exported = files;
            Ok(())
        })
    }
}
