//! `amazon-import`: uploads the artifact's disk (OVA, raw, VMDK, VHD or
//! VHDX) to S3, imports it as an AMI with EC2's VM Import, waits for the
//! task, names, tags and shares the image, then deletes the S3 object
//! (unless `skip_clean`), as Packer's post-processor does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::artifact::{Artifact, Package};
use crate::cloud::aws::credentials::{self, CredentialsError, TemplateAccess};
use crate::cloud::aws::ec2::{ImportImageRequest, ImportTask};
use crate::cloud::aws::s3::{Encryption, UploadError, UploadSpec};
use crate::cloud::aws::{AwsClient, AwsError, Endpoints};
use crate::config::post_processor::{AmazonImportConfig, ImportFormat, S3Encryption};
use crate::vm::ImageFormat;

use super::{PostProcessContext, PostProcessError, StepOutput};

pub const BUILDER_ID: &str = crate::artifact::ids::AMAZON_IMPORT;

/// Why an import failed, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("AWS credentials")]
    Credentials(#[source] CredentialsError),
    #[error("AWS refused the credentials from {source_name}: check the access key and secret")]
    BadCredentials {
        source_name: String,
        #[source]
        source: AwsError,
    },
    #[error(
        "s3_bucket_name: bucket `{bucket}` does not exist in {region}: create it, or name one that does"
    )]
    NoBucket {
        bucket: String,
        region: String,
        #[source]
        source: AwsError,
    },
    #[error(
        "format {format}: the artifact has no {what}; set format to one the artifact has \
         (its disks: {have})"
    )]
    NoInput {
        format: &'static str,
        what: &'static str,
        have: String,
    },
    #[error("cannot convert {} to {format} with qemu-img: {problem}", source_disk.display())]
    Convert {
        source_disk: PathBuf,
        format: &'static str,
        problem: String,
    },
    #[error(
        "uploading to s3://{bucket}/{key} failed; the upload can resume: run the build again \
         (its state is in {})",
        state_file.display()
    )]
    Upload {
        bucket: String,
        key: String,
        state_file: PathBuf,
        #[source]
        source: UploadError,
    },
    #[error(
        "import task {task} ended `{status}`: {message}; check the disk format and that the \
         role `{role}` exists with VM Import's permissions on the bucket"
    )]
    TaskFailed {
        task: String,
        status: String,
        message: String,
        role: String,
    },
    #[error("{what}")]
    Aws {
        what: String,
        #[source]
        source: AwsError,
    },
}

impl From<ImportError> for PostProcessError {
    fn from(e: ImportError) -> Self {
        Self::AmazonImport(Box::new(e))
    }
}

pub async fn run(
    config: &AmazonImportConfig,
    input: &Artifact,
    ctx: &PostProcessContext,
) -> Result<StepOutput, PostProcessError> {
    let env = |k: &str| ctx.env_var(k);
    let access = credentials::resolve(
        &TemplateAccess {
            access_key: config.access_key.clone(),
            secret_key: config.secret_key.clone(),
            token: config.token.clone(),
            profile: config.profile.clone(),
            region: config.region.clone(),
        },
        &env,
    )
    .map_err(ImportError::Credentials)?;
    let endpoints = Endpoints::resolve(&access.region, config.custom_endpoint_ec2.as_deref(), &env);
    let client = AwsClient::new(&access, endpoints);
    let region = access.region.clone();
    let source_name = access.source.to_string();
    let refused = |what: &str| {
        let what = what.to_owned();
        let source_name = source_name.clone();
        move |e: AwsError| -> PostProcessError {
            if e.is_bad_credentials() {
                ImportError::BadCredentials {
                    source_name,
                    source: e,
                }
                .into()
            } else {
                ImportError::Aws { what, source: e }.into()
            }
        }
    };
    let say = |line: &str| ctx.reporter.info(&ctx.build, line);
    say(&format!(
        "Using AWS credentials from {source_name}, region {region}"
    ));

    let bucket = &config.s3_bucket_name;
    client.head_bucket(bucket).await.map_err(|e| {
        if e.code() == Some("NoSuchBucket") {
            ImportError::NoBucket {
                bucket: bucket.clone(),
                region: region.clone(),
                source: e,
            }
            .into()
        } else {
            refused(&format!("cannot reach bucket `{bucket}`"))(e)
        }
    })?;

    let (file, converted) = upload_source(config.format, input, ctx).await?;
    let key = ctx.render(
        "s3_key_name",
        config.s3_key_name.source(),
        &config.s3_key_name,
        &Default::default(),
    )?;
    let state_file = state_file_for(&file);
    let uploaded = upload(&client, config, &file, &key, &state_file, ctx).await;
    if let Some(c) = &converted {
        let _ = std::fs::remove_file(c);
    }
    let report = uploaded.map_err(|e| match e {
        UploadError::Aws(AwsError::Cancelled) => PostProcessError::Cancelled,
        UploadError::Aws(a) if a.is_bad_credentials() => ImportError::BadCredentials {
            source_name: source_name.clone(),
            source: a,
        }
        .into(),
        source => ImportError::Upload {
            bucket: bucket.clone(),
            key: key.clone(),
            state_file: state_file.clone(),
            source,
        }
        .into(),
    })?;
    if report.resumed {
        say(&format!(
            "Resumed the upload: {} of {} parts were already in S3",
            report.reused_parts, report.parts
        ));
    }
    let key = report.key;
    say(&format!("Uploaded s3://{bucket}/{key}"));

    let description = if config.ami_description.is_empty() {
        format!("packer-import-{}", unix_now())
    } else {
        config.ami_description.clone()
    };
    let task_id = client
        .import_image(&ImportImageRequest {
            description: description.clone(),
            format: config.format.name().to_ascii_uppercase(),
            bucket: bucket.clone(),
            key: key.clone(),
            license_type: config.license_type.clone(),
            role_name: Some(config.role_name.clone()),
            boot_mode: config.boot_mode.clone(),
            platform: config.platform.clone(),
            kms_key_id: config.ami_kms_key.clone(),
            encrypted: config.ami_encrypt,
        })
        .await
        .map_err(refused("ImportImage failed"))?;
    say(&format!(
        "Started import task {task_id}; waiting for it to finish"
    ));
    let task = wait_for_task(&client, &task_id, ctx).await;
    // The object is deleted whether or not the import worked, as Packer does.
    if !config.skip_clean {
        match client.delete_object(bucket, &key).await {
            Ok(()) => say(&format!("Deleted s3://{bucket}/{key}")),
            Err(e) => ctx.reporter.warn(
                &ctx.build,
                &format!("cannot delete s3://{bucket}/{key}: {e}"),
            ),
        }
    }
    let task = task?;
    if task.status != "completed" {
        return Err(ImportError::TaskFailed {
            task: task.id,
            status: task.status,
            message: task
                .status_message
                .unwrap_or_else(|| "no reason given".into()),
            role: config.role_name.clone(),
        }
        .into());
    }
    let mut image_id = task.image_id.ok_or_else(|| ImportError::Aws {
        what: format!("import task {task_id} completed without an image id"),
        source: AwsError::BadAnswer {
            service: "ec2",
            action: "DescribeImportImageTasks".into(),
            problem: "no imageId".into(),
        },
    })?;
    say(&format!("Imported {image_id}"));

    if let Some(name) = &config.ami_name {
        // ImportImage cannot name the image: Packer copies it under the
        // name and deregisters the unnamed one.
        let copy = client
            .copy_image(&image_id, name, &config.ami_description)
            .await
            .map_err(refused("CopyImage (ami_name) failed"))?;
        wait_for_image(&client, &copy, ctx).await?;
        client
            .deregister_image(&image_id)
            .await
            .map_err(refused("DeregisterImage of the unnamed import failed"))?;
        say(&format!("Named the image `{name}`: {copy}"));
        image_id = copy;
    }
    let image = client
        .describe_image(&image_id)
        .await
        .map_err(refused("DescribeImages failed"))?;
    let mut resources = vec![image_id.clone()];
    resources.extend(image.snapshot_ids.iter().cloned());
    client
        .create_tags(&resources, &config.tags)
        .await
        .map_err(refused("CreateTags failed"))?;
    client
        .add_launch_permissions(&image_id, &config.ami_users, &config.ami_groups)
        .await
        .map_err(refused(
            "ModifyImageAttribute (ami_users, ami_groups) failed",
        ))?;

    let mut artifact = Artifact::files_only(
        BUILDER_ID,
        &ctx.build,
        ctx.render.build_type(),
        format!("{region}:{image_id}"),
        Vec::new(),
    );
    artifact.state.insert("region".into(), region);
    artifact.state.insert("ami".into(), image_id);
    Ok(StepOutput {
        artifact,
        keep_default: false,
        force_keep: false,
    })
}

async fn upload(
    client: &AwsClient,
    config: &AmazonImportConfig,
    file: &Path,
    key: &str,
    state_file: &Path,
    ctx: &PostProcessContext,
) -> Result<crate::cloud::aws::s3::UploadReport, UploadError> {
    let size = std::fs::metadata(file).map(|m| m.len()).ok();
    let progress = ctx.reporter.progress(
        &ctx.build,
        &format!(
            "Uploading {} to s3://{}/{key}",
            file.display(),
            config.s3_bucket_name
        ),
        size,
    );
    let spec = UploadSpec {
        file: file.to_owned(),
        bucket: config.s3_bucket_name.clone(),
        key: key.to_owned(),
        encryption: config.s3_encryption.map(|e| match e {
            S3Encryption::Aes256 => Encryption::Aes256,
            S3Encryption::Kms => Encryption::Kms {
                key_id: config.s3_encryption_key.clone(),
            },
        }),
        state_file: state_file.to_owned(),
    };
    let result = client
        .upload_resumable(&spec, &|done| progress.set_position(done), &ctx.cancel)
        .await;
    progress.finish(if result.is_ok() { "uploaded" } else { "failed" });
    result
}

/// `disk.raw` → `disk.raw.s3-upload.json`: beside the file, so a rerun of
/// the same build finds it.
fn state_file_for(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".s3-upload.json");
    file.with_file_name(name)
}

/// The file to upload for `format`: the artifact's own when it has one in
/// that format, else its boot disk converted beside it (returned second,
/// to be deleted after the upload).
async fn upload_source(
    format: ImportFormat,
    input: &Artifact,
    ctx: &PostProcessContext,
) -> Result<(PathBuf, Option<PathBuf>), PostProcessError> {
    let have = || {
        let mut kinds: Vec<String> = input
            .disks
            .iter()
            .map(|d| format!("{:?}", d.format).to_ascii_lowercase())
            .collect();
        if let Some(Package::Ova(_)) = input.package {
            kinds.push("ova".into());
        }
        if kinds.is_empty() {
            "none".into()
        } else {
            kinds.join(", ")
        }
    };
    let native = match format {
        ImportFormat::Ova => {
            return match &input.package {
                Some(Package::Ova(path)) => Ok((path.clone(), None)),
                _ => Err(ImportError::NoInput {
                    format: "ova",
                    what: "OVA package (the builder's `format: ova` makes one)",
                    have: have(),
                }
                .into()),
            };
        }
        ImportFormat::Raw => input.disk(ImageFormat::Raw),
        ImportFormat::Vmdk => input.disk(ImageFormat::Vmdk),
        ImportFormat::Vhd | ImportFormat::Vhdx => None,
    };
    if let Some(disk) = native {
        return Ok((disk.path.clone(), None));
    }
    let Some(disk) = input.disks.first() else {
        return Err(ImportError::NoInput {
            format: format.name(),
            what: "disk",
            have: have(),
        }
        .into());
    };
    let (qemu_format, options): (&str, &[&str]) = match format {
        ImportFormat::Raw => ("raw", &[]),
        // VM Import takes stream-optimized VMDKs.
        ImportFormat::Vmdk => ("vmdk", &["-o", "subformat=streamOptimized"]),
        ImportFormat::Vhd => ("vpc", &[]),
        ImportFormat::Vhdx => ("vhdx", &[]),
        ImportFormat::Ova => unreachable!("handled above"),
    };
    let mut name = disk.path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".import.{}", format.name()));
    let out = disk.path.with_file_name(name);
    ctx.reporter.info(
        &ctx.build,
        &format!("Converting {} to {}", disk.path.display(), format.name()),
    );
    let problem = match super::convert_disk::convert_disk(disk, &out, qemu_format, options).await {
        Ok(()) => return Ok((out.clone(), Some(out))),
        Err(problem) => problem,
    };
    let src = disk.path.clone();
    Err(ImportError::Convert {
        source_disk: src,
        format: format.name(),
        problem,
    }
    .into())
}

/// Polls the task with a growing delay (VM Import takes minutes to hours
/// on AWS; an emulator answers at once).
async fn wait_for_task(
    client: &AwsClient,
    task_id: &str,
    ctx: &PostProcessContext,
) -> Result<ImportTask, PostProcessError> {
    let mut delay = Duration::from_millis(200);
    let mut last_progress = None;
    loop {
        let task = client
            .describe_import_image_task(task_id)
            .await
            .map_err(|source| ImportError::Aws {
                what: format!("cannot follow import task {task_id}"),
                source,
            })?;
        if matches!(task.status.as_str(), "completed" | "deleted" | "deleting") {
            return Ok(task);
        }
        if task.progress != last_progress {
            if let Some(p) = &task.progress {
                ctx.reporter.info(
                    &ctx.build,
                    &format!(
                        "Import task {task_id}: {}% ({})",
                        p,
                        task.status_message.as_deref().unwrap_or(&task.status)
                    ),
                );
            }
            last_progress = task.progress.clone();
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = ctx.cancel.cancelled() => return Err(PostProcessError::Cancelled),
        }
        delay = (delay * 3 / 2).min(Duration::from_secs(15));
    }
}

async fn wait_for_image(
    client: &AwsClient,
    image_id: &str,
    ctx: &PostProcessContext,
) -> Result<(), PostProcessError> {
    let mut delay = Duration::from_millis(200);
    loop {
        let image = client
            .describe_image(image_id)
            .await
            .map_err(|source| ImportError::Aws {
                what: format!("cannot follow the copy {image_id}"),
                source,
            })?;
        match image.state.as_deref() {
            Some("available") => return Ok(()),
            Some("failed" | "invalid" | "error" | "deregistered") => {
                return Err(ImportError::TaskFailed {
                    task: format!("CopyImage {image_id}"),
                    status: image.state.unwrap_or_default(),
                    message: "the named copy of the imported image failed".into(),
                    role: String::new(),
                }
                .into());
            }
            _ => {}
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = ctx.cancel.cancelled() => return Err(PostProcessError::Cancelled),
        }
        delay = (delay * 3 / 2).min(Duration::from_secs(15));
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_sits_beside_the_upload() {
        assert_eq!(
            state_file_for(Path::new("/out/disk.raw")),
            Path::new("/out/disk.raw.s3-upload.json")
        );
    }
}
