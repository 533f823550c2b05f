//! Creates the instance from the source image with the build's key in its
//! `ssh-keys` metadata; its cleanup deletes the instance, then its disk
//! (created with autoDelete off, as Packer does, so the image can be made
//! from it), on success, failure and interruption alike.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cloud::gce::{GceError, InstanceSpec};
use crate::run::runner::{CleanupFuture, Outcome, Step, StepContext, StepError, StepFuture};

use super::GceState;

pub struct StepCreateInstance;

/// How long a cleanup call may wait for its operation.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(300);

fn metadata(state: &GceState) -> Result<BTreeMap<String, String>, StepError> {
    let config = &state.config;
    let mut items = config.metadata.clone();
    let pwd = &state.common.options.pwd;
    for (key, file) in &config.metadata_files {
        let path = pwd.join(file);
        let value = std::fs::read_to_string(&path).map_err(|e| {
            StepError::with_source(format!("metadata_files: cannot read {}", path.display()), e)
        })?;
        items.insert(key.clone(), value);
    }
    if let Some(file) = &config.startup_script_file {
        let path = pwd.join(file);
        let value = std::fs::read_to_string(&path).map_err(|e| {
            StepError::with_source(
                format!("startup_script_file: cannot read {}", path.display()),
                e,
            )
        })?;
        items.insert("startup-script".to_owned(), value);
    }
    // The build's public key for its SSH user, added to any keys the
    // template gives (Packer's format: "USER:KEY-TYPE KEY COMMENT").
    if let Some(ssh) = config.communicator.ssh()
        && !state.common.ssh_public_key.is_empty()
    {
        let line = format!("{}:{}", ssh.username, state.common.ssh_public_key.trim());
        let keys = match items.get("ssh-keys") {
            Some(existing) if !existing.trim().is_empty() => {
                format!("{}\n{line}", existing.trim_end())
            }
            _ => line,
        };
        items.insert("ssh-keys".to_owned(), keys);
    }
    Ok(items)
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
                .ok_or_else(|| StepError::new("no source image"))?;
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
            };
            ctx.reporter.info(
                &ctx.build,
                &format!(
                    "Creating instance {} ({}) in zone {}",
                    spec.name, spec.machine_type, spec.zone
                ),
            );
            let op = client.insert_instance(&spec).await.map_err(|e| {
                StepError::with_source(format!("cannot create instance {}", spec.name), e)
            })?;
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
                .map_err(|e| {
                    StepError::with_source(format!("instance {} was not created", spec.name), e)
                })?;
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
            // Cleanup runs after an interruption too: its waits must not
            // end with the build's cancellation.
            let never = CancellationToken::new();
            let name = state.instance_name.clone();
            ctx.reporter
                .info(&ctx.build, &format!("Deleting instance {name}"));
            let deleted = match client.delete_instance(&zone, &name).await {
                Ok(op) => {
                    client
                        .wait(
                            op,
                            &format!("deleting instance {name}"),
                            CLEANUP_TIMEOUT,
                            &never,
                        )
                        .await
                }
                Err(e) => Err(e),
            };
            match deleted {
                Ok(()) | Err(GceError::Api { code: 404, .. }) => {}
                Err(e) => ctx.reporter.warn(
                    &ctx.build,
                    &format!(
                        "instance {name} may still exist ({e}): delete it by hand (gcloud compute instances delete {name} --zone {zone})"
                    ),
                ),
            }
            let disk = state.disk_name.clone();
            ctx.reporter
                .info(&ctx.build, &format!("Deleting disk {disk}"));
            let deleted = match client.delete_disk(&zone, &disk).await {
                Ok(op) => {
                    client
                        .wait(
                            op,
                            &format!("deleting disk {disk}"),
                            CLEANUP_TIMEOUT,
                            &never,
                        )
                        .await
                }
                Err(e) => Err(e),
            };
            match deleted {
                Ok(()) | Err(GceError::Api { code: 404, .. }) => {}
                Err(e) => ctx.reporter.warn(
                    &ctx.build,
                    &format!(
                        "disk {disk} may still exist ({e}): delete it by hand (gcloud compute disks delete {disk} --zone {zone})"
                    ),
                ),
            }
            state.instance_created = false;
        })
    }
}
