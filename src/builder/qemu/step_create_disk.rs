//! Creates the VM's disk with qemu-img (or starts from `disk_image`).

use crate::hypervisor::qemu::{Backing, ConvertOptions, ImageFormat, QemuImg, QemuImgCli};
use crate::run::runner::{FailureClass, Step, StepContext, StepError, StepFuture};

use super::{QemuState, fail_on_host};

pub struct StepCreateDisk;

impl Step<QemuState> for StepCreateDisk {
    fn name(&self) -> &'static str {
        "Creating the disk"
    }

    fn run<'a>(&'a mut self, state: &'a mut QemuState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let config = state.config.clone();
            let format = state.image_format();
            let disk = state.disk_path.clone();
            let iso = state
                .common
                .iso_path
                .clone()
                .ok_or_else(|| StepError::new(FailureClass::Host, "no ISO was fetched"))?;
            let img = QemuImgCli::default();
            let extra = config.qemu_img_args.create.clone();
            let checkpoint = state.resumed_from().map(|c| c.disk.clone());
            // Compaction (qemu-img convert) flattens a qcow2 overlay into a
            // standalone image; without it, a copy keeps the artifact free
            // of the checkpoint.
            let overlay = format == ImageFormat::Qcow2 && !config.skip_compaction;
            let task = tokio::task::spawn_blocking(
                move || -> Result<Vec<std::path::PathBuf>, StepError> {
                    if let Some(checkpoint) = &checkpoint {
                        if overlay {
                            let backing = Backing {
                                path: checkpoint,
                                format: ImageFormat::Qcow2,
                            };
                            img.create(&disk, format, config.disk_size_mib, Some(backing), &extra)
                                .map_err(|e| {
                                    fail_on_host("cannot create the disk over the checkpoint", e)
                                })?;
                        } else {
                            let options = ConvertOptions {
                                src_format: Some(ImageFormat::Qcow2),
                                ..ConvertOptions::default()
                            };
                            img.convert(checkpoint, &disk, format, &options, &[])
                                .map_err(|e| fail_on_host("cannot copy the checkpoint", e))?;
                        }
                    } else if config.disk_image && config.use_backing_file {
                        let backing = Backing {
                            path: &iso,
                            format: ImageFormat::Qcow2,
                        };
                        img.create(&disk, format, config.disk_size_mib, Some(backing), &extra)
                            .map_err(|e| fail_on_host("cannot create the disk", e))?;
                    } else if config.disk_image {
                        img.convert(
                            &iso,
                            &disk,
                            format,
                            &ConvertOptions::default(),
                            &config.qemu_img_args.convert,
                        )
                        .map_err(|e| fail_on_host("cannot copy disk_image", e))?;
                        if !config.skip_resize_disk {
                            img.resize(
                                &disk,
                                format,
                                config.disk_size_mib,
                                &config.qemu_img_args.resize,
                            )
                            .map_err(|e| fail_on_host("cannot resize the disk", e))?;
                        }
                    } else {
                        img.create(&disk, format, config.disk_size_mib, None, &extra)
                            .map_err(|e| fail_on_host("cannot create the disk", e))?;
                    }
                    let mut extra_disks = Vec::new();
                    for (i, size) in config.disk_additional_size_mib.iter().enumerate() {
                        let path = disk.with_file_name(format!("{}-{}", config.vm_name, i + 1));
                        img.create(&path, format, *size, None, &extra)
                            .map_err(|e| fail_on_host("cannot create an additional disk", e))?;
                        extra_disks.push(path);
                    }
                    Ok(extra_disks)
                },
            );
            let extra_disks = task
                .await
                .map_err(|e| fail_on_host("the disk task failed", e))??;
            let from = if state.resumed_from().is_some() {
                ", from the install checkpoint"
            } else {
                ""
            };
            ctx.reporter.info(
                &ctx.build,
                &format!(
                    "Created {} ({} MiB, {}{from})",
                    state.disk_path.display(),
                    state.config.disk_size_mib,
                    format.as_str()
                ),
            );
            state.additional_disks = extra_disks;
            Ok(())
        })
    }
}
