//! `googlecompute-import`: the artifact's boot disk as `disk.raw` in a GNU
//! `.tar.gz` (the only form GCE imports), uploaded to a GCS bucket with a
//! resumable upload, then `images.insert` with `rawDisk.source`; the object
//! is deleted afterwards unless `skip_clean`, as Packer's post-processor
//! does. An input that already has a `.tar.gz` (from `compress`) is
//! uploaded as it is, which is all Packer's does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::artifact::Artifact;
use crate::cloud::gce::storage::{self, StorageClient, UploadError};
use crate::cloud::gce::{ComputeClient, GceError, ImageSpec};
use crate::config::post_processor::GoogleComputeImportConfig;
use crate::vm::ImageFormat;

use super::google_session::{BucketError, SessionError, connect, require_bucket};

use super::compress::{Codec, Entry, Format, pack};
use super::{PostProcessContext, PostProcessError, StepOutput};

/// The scopes Packer's GCE post-processors ask for.
const SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/devstorage.full_control",
];

/// `images.insert` from a large raw disk takes minutes on GCE.
const IMAGE_TIMEOUT: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error(
        "the input artifact has no disk and no .tar.gz to import (it has: {have})\n  = hint: put googlecompute-import after a qemu or virtualbox builder, or after compress with a .tar.gz output"
    )]
    NoInput { have: String },
    #[error("cannot convert {} to raw: {problem}", source_disk.display())]
    Convert {
        source_disk: PathBuf,
        problem: String,
    },
    #[error(
        "cannot upload to gs://{bucket}/{object}\n  = hint: run the build again to resume the upload (its session is kept in {})",
        state_file.display()
    )]
    Upload {
        bucket: String,
        object: String,
        state_file: PathBuf,
        #[source]
        source: UploadError,
    },
    #[error("{what}")]
    Gce {
        what: String,
        #[source]
        source: GceError,
    },
}

impl From<ImportError> for PostProcessError {
    fn from(e: ImportError) -> Self {
        Self::GoogleComputeImport(Box::new(e))
    }
}

pub async fn run(
    config: &GoogleComputeImportConfig,
    input: &Artifact,
    ctx: &PostProcessContext,
) -> Result<StepOutput, PostProcessError> {
    let say = |line: &str| ctx.reporter.info(&ctx.build, line);
    let env = |k: &str| ctx.env_var(k);
    // Bad credentials fail here, before anything is converted or uploaded.
    let session = connect(&config.access, None, &config.project_id, SCOPES, ctx)
        .await
        .map_err(ImportError::from)?;
    let compute = session.compute;
    let gcs = StorageClient::new(
        storage::storage_endpoint(&env),
        compute.tokens(),
        session.http,
    );
    let who = session.who;
    say(&format!("Using {who}"));

    let bucket = &config.bucket;
    require_bucket(&gcs, "bucket", bucket, &config.project_id)
        .await
        .map_err(ImportError::Bucket)?;

    let (file, made_here) = tarball(input, ctx).await?;
    let object = ctx.render(
        "gcs_object_name",
        config.gcs_object_name.source(),
        &config.gcs_object_name,
        &Default::default(),
    )?;
    let state_file = state_file_for(&file);
    let size = std::fs::metadata(&file).map(|m| m.len()).ok();
    let progress = ctx.reporter.progress(
        &ctx.build,
        &format!("Uploading {} to gs://{bucket}/{object}", file.display()),
        size,
    );
    let uploaded = gcs
        .upload_resumable(
            &file,
            bucket,
            &object,
            &state_file,
            &|done| progress.set_position(done),
            &ctx.cancel,
        )
        .await;
    progress.finish(if uploaded.is_ok() {
        "uploaded"
    } else {
        "failed"
    });
    let report = uploaded.map_err(|source| match source {
        UploadError::Gce(GceError::Cancelled) => PostProcessError::Cancelled,
        source => ImportError::Upload {
            bucket: bucket.clone(),
            object: object.clone(),
            state_file: state_file.clone(),
            source,
        }
        .into(),
    })?;
    // The packed file is kept only while an upload of it may resume.
    if made_here {
        let _ = std::fs::remove_file(&file);
    }
    let object = report.object;
    if let Some(from) = report.resumed_from {
        say(&format!(
            "Resumed the upload: GCS already had {from} of {} bytes",
            size.unwrap_or(0)
        ));
    }
    say(&format!("Uploaded gs://{bucket}/{object}"));

    let spec = ImageSpec {
        name: config.image_name.clone(),
        family: config.image_family.clone(),
        description: config.image_description.clone(),
        labels: config.image_labels.clone(),
        storage_locations: config.image_storage_locations.clone(),
        guest_os_features: config.image_guest_os_features.clone(),
        raw_disk_source: Some(storage::object_url(bucket, &object)),
        ..ImageSpec::default()
    };
    say(&format!(
        "Creating image {} from gs://{bucket}/{object}",
        spec.name
    ));
    let made = create_image(&compute, &spec, ctx).await;
    // The object goes whether or not the image was made, as Packer does.
    if !config.skip_clean {
        match gcs.delete_object(bucket, &object).await {
            Ok(()) => say(&format!("Deleted gs://{bucket}/{object}")),
            Err(e) => ctx.reporter.warn(
                &ctx.build,
                &format!("cannot delete gs://{bucket}/{object}: {e}"),
            ),
        }
    }
    made?;
    say(&format!("Created image {}", spec.name));

    let mut artifact = Artifact::files_only(
        crate::artifact::ids::GOOGLECOMPUTE,
        &ctx.build,
        ctx.render.build_type(),
        config.image_name.clone(),
        Vec::new(),
    );
    artifact
        .state
        .insert("ImageName".into(), config.image_name.clone());
    artifact
        .state
        .insert("ProjectId".into(), config.project_id.clone());
    Ok(StepOutput {
        artifact,
        keep_default: false,
        force_keep: false,
    })
}

async fn create_image(
    compute: &ComputeClient,
    spec: &ImageSpec,
    ctx: &PostProcessContext,
) -> Result<(), PostProcessError> {
    let what = format!("creating image {}", spec.name);
    let gce = |source: GceError| -> PostProcessError {
        match source {
            GceError::Cancelled => PostProcessError::Cancelled,
            source => ImportError::Gce {
                what: what.clone(),
                source,
            }
            .into(),
        }
    };
    let op = compute.insert_image(spec).await.map_err(gce)?;
    compute
        .wait(op, &what, IMAGE_TIMEOUT, &ctx.cancel)
        .await
        .map_err(gce)
}

/// The `.tar.gz` to upload and whether it was made here (to be deleted
/// after the upload): the input's own, or its boot disk as `disk.raw`
/// packed beside it. A pack left by an interrupted upload is reused while
/// it is newer than the disk, so the resumed session gets the same bytes.
async fn tarball(
    input: &Artifact,
    ctx: &PostProcessContext,
) -> Result<(PathBuf, bool), PostProcessError> {
    if let Some(own) = input
        .files
        .iter()
        .find(|f| f.to_string_lossy().ends_with(".tar.gz"))
    {
        return Ok((own.clone(), false));
    }
    let Some(disk) = input.disks.first() else {
        let have: Vec<String> = input
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        return Err(ImportError::NoInput {
            have: if have.is_empty() {
                "no files".into()
            } else {
                have.join(", ")
            },
        }
        .into());
    };
    let mut name = disk.path.file_name().unwrap_or_default().to_os_string();
    name.push(".gce.tar.gz");
    let packed = disk.path.with_file_name(name);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if state_file_for(&packed).exists() && modified(&packed) >= modified(&disk.path) {
        ctx.reporter.info(
            &ctx.build,
            &format!("Reusing {} of the interrupted upload", packed.display()),
        );
        return Ok((packed, true));
    }
    let _ = std::fs::remove_file(state_file_for(&packed));
    let (raw, converted) = if disk.format == ImageFormat::Raw {
        (disk.path.clone(), false)
    } else {
        let mut name = disk.path.file_name().unwrap_or_default().to_os_string();
        name.push(".import.raw");
        let raw = disk.path.with_file_name(name);
        ctx.reporter.info(
            &ctx.build,
            &format!("Converting {} to raw", disk.path.display()),
        );
        super::convert_disk::convert_disk(disk, &raw, "raw", &[])
            .await
            .map_err(|problem| ImportError::Convert {
                source_disk: disk.path.clone(),
                problem,
            })?;
        (raw, true)
    };
    let size = std::fs::metadata(&raw).map(|m| m.len()).ok();
    let progress: std::sync::Arc<dyn crate::ui::Progress> =
        std::sync::Arc::from(ctx.reporter.progress(
            &ctx.build,
            &format!("Packing {} as disk.raw", disk.path.display()),
            size,
        ));
    let (out, cancel, bar) = (packed.clone(), ctx.cancel.clone(), progress.clone());
    let raw_in = raw.clone();
    let packed_result = super::blocking(move || {
        // GNU tar (compress writes GNU headers), gzip: what GCE imports.
        let format = Format {
            tar: true,
            codec: Codec::Gzip,
        };
        let entries = [Entry::File {
            name: "disk.raw".into(),
            path: raw_in,
        }];
        pack(
            &entries,
            &out,
            format,
            super::compress::DEFAULT_LEVEL,
            std::time::SystemTime::now(),
            &cancel,
            &bar,
        )
    })
    .await;
    progress.finish(if packed_result.is_ok() {
        "packed"
    } else {
        "failed"
    });
    if converted {
        let _ = std::fs::remove_file(&raw);
    }
    packed_result?;
    Ok((packed, true))
}

/// `disk.qcow2.gce.tar.gz` → `disk.qcow2.gce.tar.gz.gcs-upload.json`.
fn state_file_for(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".gcs-upload.json");
    file.with_file_name(name)
}
