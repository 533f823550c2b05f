//! Creates the instance from the source image with the build's key in its
//! `ssh-keys` metadata; its cleanup deletes the instance, then its disk
//! (created with autoDelete off, as Packer does, so the image can be made
//! from it), on success, failure and interruption alike.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::GceStepError;
use crate::cloud::gce::{InstanceSpec, ZonalKind};
use crate::run::runner::{CleanupFuture, Outcome, Step, StepContext, StepError, StepFuture};

use super::GceState;

pub struct StepCreateInstance;

/// How long a cleanup call may wait for its operation.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(300);

/// The accelerator type as compute v1 wants it: a short name (`nvidia-tesla-t4`)
/// becomes the zone's path; a path or URL is kept as given.
pub(super) fn accelerator_type_path(project: &str, zone: &str, kind: &str) -> String {
    if kind.contains('/') {
        kind.to_owned()
    } else {
        format!("projects/{project}/zones/{zone}/acceleratorTypes/{kind}")
    }
}

/// The build's `ssh-keys` line for its SSH user, added to any keys the
/// template gives (Packer's format: "USER:KEY-TYPE KEY COMMENT").
fn ssh_keys(state: &GceState, existing: Option<&String>) -> Option<String> {
    let ssh = state.config.communicator.ssh()?;
    if state.common.ssh_public_key.is_empty() {
        return None;
    }
    let line = format!("{}:{}", ssh.username, state.common.ssh_public_key.trim());
    Some(match existing {
        Some(existing) if !existing.trim().is_empty() => {
            format!("{}\n{line}", existing.trim_end())
        }
        _ => line,
    })
}

fn metadata(state: &GceState) -> Result<BTreeMap<String, String>, StepError> {
    let config = &state.config;
    let mut items = config.metadata.clone();
    let pwd = state.common.options.render.pwd();
    for (key, file) in &config.metadata_files {
        let path = pwd.join(file);
        let value = std::fs::read_to_string(&path).map_err(|source| GceStepError::ReadFile {
            key: "metadata_files".into(),
            path: path.clone(),
            source,
        })?;
        items.insert(key.clone(), value);
    }
    if let Some(file) = &config.startup_script_file {
        let path = pwd.join(file);
        let value = std::fs::read_to_string(&path).map_err(|source| GceStepError::ReadFile {
            key: "startup_script_file".into(),
            path: path.clone(),
            source,
        })?;
        items.insert("startup-script".to_owned(), value);
    }
    // With wait_to_add_ssh_keys the key is added later (Packer: some
    // guests' agents must start before they see it).
    if state.config.wait_to_add_ssh_keys.is_none()
        && let Some(keys) = ssh_keys(state, items.get("ssh-keys"))
    {
        items.insert("ssh-keys".to_owned(), keys);
    }
    Ok(items)
}

/// Packer's `wait_to_add_ssh_keys`: waits (Ctrl-C ends the wait), then
/// adds the build's key to the running instance's `ssh-keys`.
async fn add_ssh_keys_after(
    state: &GceState,
    ctx: &StepContext,
    wait: Duration,
) -> Result<(), StepError> {
    let name = &state.instance_name;
    let zone = &state.config.zone;
    let client = state.client()?;
    ctx.reporter.info(
        &ctx.build,
        &format!("Waiting {} before adding SSH keys...", humantime_like(wait)),
    );
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        () = ctx.cancel.cancelled() => return Err(GceStepError::Interrupted("interrupted while waiting to add SSH keys").into()),
    }
    let current = client
        .get_instance(zone, name)
        .await
        .map_err(GceStepError::api(format!(
            "cannot read instance {name}'s metadata"
        )))?;
    let Some(keys) = ssh_keys(
        state,
        current
            .metadata_value("ssh-keys")
            .map(str::to_owned)
            .as_ref(),
    ) else {
        return Ok(());
    };
    let items = BTreeMap::from([("ssh-keys".to_owned(), keys)]);
    let op = client
        .add_instance_metadata(zone, name, &items)
        .await
        .map_err(GceStepError::api(format!(
            "cannot add SSH keys to instance {name}"
        )))?;
    client
        .wait(
            op,
            &format!("adding SSH keys to instance {name}"),
            state.config.state_timeout,
            &ctx.cancel,
        )
        .await
        .map_err(|e| {
            GceStepError::api(format!("SSH keys were not added to instance {name}"))(e).into()
        })
}

/// `1m30s`-style text for a wait (Go's Duration.String for whole seconds).
fn humantime_like(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 3600, secs / 60 % 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

impl Step<GceState> for StepCreateInstance {
    fn name(&self) -> &'static str {
        "Creating the instance"
    }

    fn run<'a>(&'a mut self, state: &'a mut GceState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let client = state.client()?;
            let config = &state.config;
            let source = state
                .source_image
                .as_ref()
                .ok_or(GceStepError::SourceImageMissing)?;
            let spec = InstanceSpec {
                name: state.instance_name.clone(),
                zone: config.zone.clone(),
                machine_type: config.machine_type.clone(),
                source_image: source.self_link.clone(),
                disk_name: state.disk_name.clone(),
                disk_size_gb: config.disk_size_gb,
                disk_type: config.disk_type.clone(),
                network: config.network.clone(),
                network_project_id: config
                    .network_project_id
                    .clone()
                    .unwrap_or_else(|| config.project_id.clone()),
                subnetwork: config.subnetwork.clone(),
                external_ip: !config.omit_external_ip,
                address: config.address.clone(),
                tags: config.tags.clone(),
                labels: config.labels.clone(),
                metadata: metadata(state)?,
                preemptible: config.preemptible,
                on_host_maintenance: config.on_host_maintenance.clone(),
                service_account_email: config.service_account_email.clone(),
                scopes: config.scopes.clone(),
                accelerator_type: config
                    .accelerator_type
                    .as_ref()
                    .map(|t| accelerator_type_path(&config.project_id, &config.zone, t)),
                accelerator_count: config.accelerator_count,
                min_cpu_platform: config.min_cpu_platform.clone(),
            };
            ctx.reporter.info(
                &ctx.build,
                &format!(
                    "Creating instance {} ({}) in zone {}",
                    spec.name, spec.machine_type, spec.zone
                ),
            );
            let op = client
                .insert_instance(&spec)
                .await
                .map_err(GceStepError::api(format!(
                    "cannot create instance {}",
                    spec.name
                )))?;
            // From here the instance may exist: the cleanup must look.
            state.instance_created = true;
            client
                .wait(
                    op,
                    &format!("creating instance {}", spec.name),
                    config.state_timeout,
                    &ctx.cancel,
                )
                .await
                .map_err(GceStepError::api(format!(
                    "instance {} was not created",
                    spec.name
                )))?;
            if let Some(wait) = config.wait_to_add_ssh_keys {
                add_ssh_keys_after(state, ctx, wait).await?;
            }
            Ok(())
        })
    }

    fn cleanup<'a>(
        &'a mut self,
        state: &'a mut GceState,
        ctx: &'a StepContext,
        _outcome: Outcome,
    ) -> CleanupFuture<'a> {
        Box::pin(async move {
            if !state.instance_created {
                return;
            }
            let Ok(client) = state.client() else { return };
            let zone = state.config.zone.clone();
            let resources = [
                (ZonalKind::Instance, state.instance_name.clone()),
                (ZonalKind::Disk, state.disk_name.clone()),
            ];
            for (kind, name) in resources {
                let noun = kind.noun();
                ctx.reporter
                    .info(&ctx.build, &format!("Deleting {noun} {name}"));
                if let Err(e) = client
                    .delete_for_cleanup(kind, &zone, &name, CLEANUP_TIMEOUT)
                    .await
                {
                    ctx.reporter.warn(
                        &ctx.build,
                        &format!(
                            "{noun} {name} may still exist ({e}): delete it by hand (gcloud compute {noun}s delete {name} --zone {zone})"
                        ),
                    );
                }
            }
            state.instance_created = false;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_accelerator_type_becomes_the_zones_path_and_a_path_is_kept() {
        assert_eq!(
            accelerator_type_path("infra", "europe-west1-b", "nvidia-tesla-t4"),
            "projects/infra/zones/europe-west1-b/acceleratorTypes/nvidia-tesla-t4"
        );
        let full = "projects/other/zones/us-east1-c/acceleratorTypes/nvidia-l4";
        assert_eq!(accelerator_type_path("infra", "europe-west1-b", full), full);
    }

    #[test]
    fn waits_are_written_as_go_writes_durations() {
        assert_eq!(humantime_like(Duration::from_secs(5)), "5s");
        assert_eq!(humantime_like(Duration::from_secs(120)), "2m0s");
        assert_eq!(humantime_like(Duration::from_secs(90)), "1m30s");
        assert_eq!(humantime_like(Duration::from_secs(3600)), "1h0m0s");
    }
}
