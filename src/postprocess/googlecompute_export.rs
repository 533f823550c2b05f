//! `googlecompute-export`: the googlecompute builder's image as a `.tar.gz`
//! in Cloud Storage, the way Packer's post-processor makes it. An exporter
//! instance boots from Google's worker image (`debian-9-worker` in
//! `compute-image-tools`) with a startup script in its metadata; the script
//! creates a disk from the image, attaches it, dumps it as `disk.raw` in a
//! `.tar.gz` to the first path and copies it to the others, then sets the
//! instance's metadata `startup-script-status` to `done` (or `error`).
//! kiln polls that key, then deletes the instance, its disk and the disk
//! the script made, on every exit path (failure and Ctrl-C included).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::artifact::{Artifact, ids};
use crate::cloud::gce::storage::{self, StorageClient};
use crate::cloud::gce::{ComputeClient, GceError, InstanceSpec, ZonalKind};
use crate::config::post_processor::GoogleComputeExportConfig;

use super::google_session::{BucketError, SessionError, connect, require_bucket};
use super::{PostProcessContext, PostProcessError, StepOutput};

/// The scopes Packer gives the exporter instance (its script calls compute
/// and writes to GCS); kiln's own calls use the same.
const SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/compute",
    "https://www.googleapis.com/auth/devstorage.full_control",
    "https://www.googleapis.com/auth/userinfo.email",
];
const WORKER_PROJECT: &str = "compute-image-tools";
const WORKER_FAMILY: &str = "debian-9-worker";
/// Packer's `StateTimeout` for the exporter instance.
const INSTANCE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The dump of a 200 GB disk takes a while; a stuck script is reported.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(3 * 60 * 60);
/// Deleting what the export made is bounded even when the API is slow.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The metadata key the script reports through (Packer's
/// `StartupScriptStatusKey`), and its values.
const STATUS_KEY: &str = "startup-script-status";

/// What the exporter runs. It is what Packer's post-processor puts in the
/// `startup-script` key, in the same steps, with gcloud and gsutil from
/// the worker image; the metadata keys it reads are set beside it.
const STARTUP_SCRIPT: &str = r#"#!/bin/bash
# Written by kiln's googlecompute-export: dumps the image `image_name` to
# the GCS `paths`, then reports through the startup-script-status metadata.
md() { curl -sf -H "Metadata-Flavor: Google" "http://metadata/computeMetadata/v1/instance/attributes/$1"; }
IMAGE=$(md image_name); NAME=$(md name); ZONE=$(md zone); PATHS=($(md paths))
DISK="${NAME}-toexport"
report() { gcloud compute instances add-metadata "$NAME" --zone "$ZONE" --metadata "startup-script-status=$1"; }
fail() {
  echo "$1"
  for p in "${PATHS[@]}"; do gsutil -h "Content-Type:text/plain" cp /var/log/daemon.log "$p.exporter.log"; done
  report error; exit 1
}
gcloud compute disks create "$DISK" --image "$IMAGE" --zone "$ZONE" || fail "Failed to create disk."
gcloud compute instances attach-disk "$NAME" --disk "$DISK" --device-name toexport --zone "$ZONE" || fail "Failed to attach disk."
gce_export -gcs_path "${PATHS[0]}" -disk /dev/disk/by-id/google-toexport -y || fail "ExportFailed: Failed to export disk source to ${PATHS[0]}."
echo ExportSuccess
gcloud compute instances detach-disk "$NAME" --disk "$DISK" --zone "$ZONE"
gcloud compute disks delete "$DISK" --zone "$ZONE" --quiet
for p in "${PATHS[@]:1}"; do gsutil cp "${PATHS[0]}" "$p" || fail "Failed to copy image to $p."; done
report done
"#;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(
        "the input artifact is not a GCE image (it comes from {builder_id})\n  = hint: googlecompute-export exports what a googlecompute builder made; put it after one"
    )]
    NotAnImage { builder_id: String },
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error(
        "the exporter's startup script failed{}\n  = hint: its whole log is in {log}",
        tail_suffix(.tail)
    )]
    ScriptFailed { log: String, tail: Vec<String> },
    #[error(
        "the exporter instance {instance} stopped ({status}) before its startup script reported"
    )]
    InstanceStopped { instance: String, status: String },
    #[error("the exporter's startup script did not report within {} min", .0.as_secs() / 60)]
    ScriptTimeout(Duration),
    #[error("{what}")]
    Gce {
        what: String,
        #[source]
        source: GceError,
    },
}

fn tail_suffix(tail: &[String]) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {}", tail.join(" / "))
    }
}

impl From<ExportError> for PostProcessError {
    fn from(e: ExportError) -> Self {
        Self::GoogleComputeExport(Box::new(e))
    }
}

/// `gs://bucket/object` → (bucket, object); validated at decode time.
fn split_gs(path: &str) -> (&str, &str) {
    let rest = path.strip_prefix("gs://").unwrap_or(path);
    rest.split_once('/').unwrap_or((rest, ""))
}

/// What the export needs from the builder's artifact.
struct Source {
    image: String,
    project: String,
    zone: String,
    key_file: Option<PathBuf>,
}

fn source(input: &Artifact, zone: Option<&String>) -> Result<Source, PostProcessError> {
    let state = |k: &str| input.state.get(k).cloned().unwrap_or_default();
    if input.builder_id != ids::GOOGLECOMPUTE || state("ImageName").is_empty() {
        return Err(ExportError::NotAnImage {
            builder_id: input.builder_id.to_owned(),
        }
        .into());
    }
    Ok(Source {
        image: state("ImageName"),
        project: state("ProjectId"),
        zone: zone.cloned().unwrap_or_else(|| state("BuildZone")),
        key_file: input.state.get("AccountFilePath").map(PathBuf::from),
    })
}

pub async fn run(
    config: &GoogleComputeExportConfig,
    input: &Artifact,
    ctx: &PostProcessContext,
) -> Result<StepOutput, PostProcessError> {
    let say = |line: &str| ctx.reporter.info(&ctx.build, line);
    let src = source(input, config.zone.as_ref())?;
    let session = connect(
        &config.access,
        src.key_file.as_deref(),
        &src.project,
        SCOPES,
        ctx,
    )
    .await
    .map_err(ExportError::from)?;
    let compute = &session.compute;
    let env = |k: &str| ctx.env_var(k);
    let gcs = StorageClient::new(
        storage::storage_endpoint(&env),
        compute.tokens(),
        session.http.clone(),
    );
    say(&format!("Using {}", session.who));
    // The script would fail on a missing bucket only after the instance
    // booted and the disk was dumped: say so before anything is made.
    for path in &config.paths {
        let (bucket, _) = split_gs(path);
        require_bucket(&gcs, "paths", bucket, &src.project)
            .await
            .map_err(ExportError::Bucket)?;
    }
    say(&format!(
        "Exporting image {} to destination: {}",
        src.image,
        config.paths.join(", ")
    ));
    let gce = |what: String| move |source| ExportError::Gce { what, source };
    let worker = compute
        .get_image_from_family(WORKER_PROJECT, WORKER_FAMILY)
        .await
        .map_err(gce(format!(
            "cannot find the exporter's worker image (family {WORKER_FAMILY} in {WORKER_PROJECT})"
        )))?;
    let name = format!("{}-exporter", src.image);
    let spec = exporter_spec(config, &src, &name, worker.self_link);
    say(&format!("Creating exporter instance {name}"));
    let op = compute
        .insert_instance(&spec)
        .await
        .map_err(gce(format!("cannot create instance {name}")))?;
    let outcome = async {
        compute
            .wait(
                op,
                &format!("creating instance {name}"),
                INSTANCE_TIMEOUT,
                &ctx.cancel,
            )
            .await
            .map_err(gce(format!("instance {name} did not start")))?;
        say("Waiting for the exporter's startup script to finish...");
        wait_for_script(compute, &gcs, &src.zone, &name, &config.paths, ctx).await
    }
    .await;
    clean_up(compute, &src.zone, &name, ctx).await;
    if let Err(e) = outcome {
        return Err(if ctx.cancel.is_cancelled() {
            PostProcessError::Cancelled
        } else {
            e.into()
        });
    }
    say(&format!(
        "Exported {} to {}",
        src.image,
        config.paths.join(", ")
    ));

    let mut artifact = Artifact::files_only(
        ids::GOOGLECOMPUTE_EXPORT,
        &ctx.build,
        ctx.render.build_type(),
        config.paths.join(","),
        Vec::new(),
    );
    artifact
        .state
        .insert("Paths".into(), format!("[{}]", config.paths.join(" ")));
    // The image is kept (see the README's differences from Packer).
    Ok(StepOutput {
        artifact,
        keep_default: true,
        force_keep: true,
    })
}

/// Packer's exporter instance: the worker image, its disk named as the
/// instance, in the builder's project and network.
fn exporter_spec(
    config: &GoogleComputeExportConfig,
    src: &Source,
    name: &str,
    worker: String,
) -> InstanceSpec {
    let metadata: BTreeMap<String, String> = [
        ("image_name", src.image.clone()),
        ("name", name.to_owned()),
        ("paths", config.paths.join(" ")),
        ("startup-script", STARTUP_SCRIPT.to_owned()),
        ("zone", src.zone.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    InstanceSpec {
        name: name.to_owned(),
        zone: src.zone.clone(),
        machine_type: config.machine_type.clone(),
        source_image: worker,
        disk_name: name.to_owned(),
        disk_size_gb: config.disk_size_gb,
        disk_type: config.disk_type.clone(),
        network: config.network.clone(),
        network_project_id: src.project.clone(),
        subnetwork: config.subnetwork.clone(),
        external_ip: true,
        metadata,
        on_host_maintenance: "MIGRATE".into(),
        service_account_email: config.service_account_email.clone(),
        scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        ..InstanceSpec::default()
    }
}

/// Polls the instance's `startup-script-status` (as Packer's
/// StepWaitStartupScript does) until `done` or `error`.
async fn wait_for_script(
    compute: &ComputeClient,
    gcs: &StorageClient<'_>,
    zone: &str,
    name: &str,
    paths: &[String],
    ctx: &PostProcessContext,
) -> Result<(), ExportError> {
    let started = Instant::now();
    let mut delay = Duration::from_secs(1);
    loop {
        let instance =
            compute
                .get_instance(zone, name)
                .await
                .map_err(|source| ExportError::Gce {
                    what: format!("cannot read instance {name}"),
                    source,
                })?;
        match instance.metadata_value(STATUS_KEY) {
            Some("done") => return Ok(()),
            Some("error") => {
                let log = format!("{}.exporter.log", paths[0]);
                let (bucket, object) = split_gs(&log);
                let tail = match gcs.read_object(bucket, object).await {
                    Ok(text) => {
                        let lines: Vec<String> = String::from_utf8_lossy(&text)
                            .lines()
                            .filter(|l| !l.trim().is_empty())
                            .map(str::to_owned)
                            .collect();
                        lines[lines.len().saturating_sub(3)..].to_vec()
                    }
                    Err(_) => Vec::new(),
                };
                return Err(ExportError::ScriptFailed { log, tail });
            }
            _ => {}
        }
        if matches!(
            instance.status.as_str(),
            "TERMINATED" | "STOPPED" | "SUSPENDED"
        ) {
            return Err(ExportError::InstanceStopped {
                instance: name.to_owned(),
                status: instance.status,
            });
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            return Err(ExportError::ScriptTimeout(SCRIPT_TIMEOUT));
        }
        tokio::select! {
            () = ctx.cancel.cancelled() => return Err(ExportError::Gce {
                what: "waiting for the exporter".into(),
                source: GceError::Cancelled,
            }),
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// Deletes the instance, its boot disk, and the disk its script made (left
/// behind when the export was interrupted), whatever happened before; each
/// failure is a warning that names what is left. Not cancellable: a
/// Ctrl-C must not leave a billed instance.
async fn clean_up(compute: &ComputeClient, zone: &str, name: &str, ctx: &PostProcessContext) {
    let resources = [
        (ZonalKind::Instance, name.to_owned()),
        (ZonalKind::Disk, name.to_owned()),
        (ZonalKind::Disk, format!("{name}-toexport")),
    ];
    for (kind, resource) in resources {
        let noun = kind.noun();
        if kind == ZonalKind::Instance {
            ctx.reporter
                .info(&ctx.build, &format!("Deleting {noun} {resource}"));
        }
        match compute
            .delete_for_cleanup(kind, zone, &resource, CLEANUP_TIMEOUT)
            .await
        {
            Ok(true) if kind == ZonalKind::Disk => ctx
                .reporter
                .info(&ctx.build, &format!("Deleted {noun} {resource}")),
            Ok(_) => {}
            Err(e) => ctx.reporter.warn(
                &ctx.build,
                &format!(
                    "{noun} {resource} may be left in project {} ({e}): delete it by hand (gcloud compute {noun}s delete {resource} --zone {zone} --project {})",
                    compute.project, compute.project
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gs_paths_split_into_bucket_and_object() {
        assert_eq!(split_gs("gs://b/dir/x.tar.gz"), ("b", "dir/x.tar.gz"));
        assert_eq!(split_gs("gs://b"), ("b", ""));
    }

    #[test]
    fn the_script_reads_the_keys_kiln_sets() {
        for key in ["image_name", "name", "zone", "paths"] {
            assert!(STARTUP_SCRIPT.contains(&format!("md {key}")), "{key}");
        }
        assert!(STARTUP_SCRIPT.contains(STATUS_KEY));
    }
}
