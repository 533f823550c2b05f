//! compute v1 calls kiln makes, with their JSON shapes (only the fields kiln
//! reads or writes), and long-running operations polled with backoff.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::auth::TokenSource;
use super::error::{GceError, api_error, hint_for};

pub struct ComputeClient {
    http: reqwest::Client,
    base: String,
    tokens: TokenSource,
    pub project: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    pub name: String,
    pub self_link: String,
    #[serde(default)]
    pub family: Option<String>,
    #[serde(default)]
    pub disk_size_gb: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub network_interfaces: Vec<NetworkInterface>,
    #[serde(default)]
    pub disks: Vec<AttachedDisk>,
    #[serde(default)]
    pub metadata: Option<InstanceMetadata>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct InstanceMetadata {
    #[serde(default)]
    pub items: Vec<MetadataEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetadataEntry {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

impl Instance {
    /// The value of metadata `key` (a startup script reports through one).
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata
            .as_ref()?
            .items
            .iter()
            .find(|i| i.key == key)
            .map(|i| i.value.as_str())
    }

    /// The external IP (`use_internal_ip: false`) or the internal one.
    pub fn address(&self, internal: bool) -> Option<String> {
        let nic = self.network_interfaces.first()?;
        if internal {
            nic.network_ip.clone()
        } else {
            nic.access_configs.first()?.nat_ip.clone()
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    #[serde(rename = "networkIP", default)]
    pub network_ip: Option<String>,
    #[serde(default)]
    pub access_configs: Vec<AccessConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessConfig {
    #[serde(rename = "natIP", default)]
    pub nat_ip: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachedDisk {
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub zone: Option<String>,
    #[serde(default)]
    pub operation_type: Option<String>,
    #[serde(default)]
    pub target_link: Option<String>,
    #[serde(default)]
    pub error: Option<OperationErrors>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OperationErrors {
    #[serde(default)]
    pub errors: Vec<OperationError>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OperationError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// What the driver needs to create an instance (the builder maps its
/// config to this).
#[derive(Debug, Clone, Default)]
pub struct InstanceSpec {
    pub name: String,
    pub zone: String,
    pub machine_type: String,
    pub source_image: String,
    pub disk_name: String,
    pub disk_size_gb: u64,
    pub disk_type: String,
    pub network: String,
    pub network_project_id: String,
    pub subnetwork: Option<String>,
    pub external_ip: bool,
    pub address: Option<String>,
    pub tags: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    pub preemptible: bool,
    pub on_host_maintenance: String,
    pub service_account_email: Option<String>,
    pub scopes: Vec<String>,
    /// `guestAccelerators[0].acceleratorType`: a full `projects/…` path.
    pub accelerator_type: Option<String>,
    pub accelerator_count: u64,
    pub min_cpu_platform: Option<String>,
}

/// compute v1's `CustomerEncryptionKey` (one of its fields).
#[derive(Clone, PartialEq, Eq)]
pub enum CustomerEncryptionKey {
    KmsKeyName(String),
    /// A secret: kept out of Debug output.
    RawKey(String),
}

impl std::fmt::Debug for CustomerEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::KmsKeyName(name) => f.debug_tuple("KmsKeyName").field(name).finish(),
            Self::RawKey(_) => f.write_str("RawKey(<sensitive>)"),
        }
    }
}

impl CustomerEncryptionKey {
    fn body(&self) -> Value {
        match self {
            Self::KmsKeyName(name) => json!({ "kmsKeyName": name }),
            Self::RawKey(key) => json!({ "rawKey": key }),
        }
    }
}

/// What the driver needs to create an image from a disk.
#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    pub name: String,
    pub family: Option<String>,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    pub licenses: Vec<String>,
    pub storage_locations: Vec<String>,
    pub source_disk: String,
    /// `rawDisk.source`: a `disk.raw` in a `.tar.gz` in GCS, used instead
    /// of `source_disk` when set (googlecompute-import).
    pub raw_disk_source: Option<String>,
    pub guest_os_features: Vec<String>,
    pub encryption_key: Option<CustomerEncryptionKey>,
}

#[derive(Serialize)]
struct MetadataItem<'a> {
    key: &'a str,
    value: &'a str,
}

impl InstanceSpec {
    /// The body of `instances.insert`, with Packer's choices: the boot disk
    /// is not auto-deleted (the build deletes it after making the image).
    pub fn body(&self) -> Value {
        let zone = &self.zone;
        let items: Vec<MetadataItem<'_>> = self
            .metadata
            .iter()
            .map(|(key, value)| MetadataItem { key, value })
            .collect();
        let mut nic = json!({
            "network": format!("projects/{}/global/networks/{}", self.network_project_id, self.network),
        });
        if let Some(sub) = &self.subnetwork {
            let region = zone.get(..zone.len().saturating_sub(2)).unwrap_or(zone);
            nic["subnetwork"] = json!(format!(
                "projects/{}/regions/{region}/subnetworks/{sub}",
                self.network_project_id
            ));
        }
        if self.external_ip {
            let mut access =
                json!({ "name": "AccessConfig created by kiln", "type": "ONE_TO_ONE_NAT" });
            if let Some(address) = &self.address {
                access["natIP"] = json!(address);
            }
            nic["accessConfigs"] = json!([access]);
        }
        let mut body = json!({
            "name": self.name,
            "description": "New instance created by kiln",
            "machineType": format!("zones/{zone}/machineTypes/{}", self.machine_type),
            "disks": [{
                "type": "PERSISTENT",
                "mode": "READ_WRITE",
                "boot": true,
                "autoDelete": false,
                "initializeParams": {
                    "diskName": self.disk_name,
                    "sourceImage": self.source_image,
                    "diskSizeGb": self.disk_size_gb.to_string(),
                    "diskType": format!("zones/{zone}/diskTypes/{}", self.disk_type),
                },
            }],
            "networkInterfaces": [nic],
            "metadata": { "items": items },
            "scheduling": {
                "preemptible": self.preemptible,
                "onHostMaintenance": self.on_host_maintenance,
                "automaticRestart": !self.preemptible,
            },
            "tags": { "items": self.tags },
            "labels": self.labels,
        });
        if let Some(email) = &self.service_account_email {
            body["serviceAccounts"] = json!([{ "email": email, "scopes": self.scopes }]);
        } else {
            body["serviceAccounts"] = json!([{ "email": "default", "scopes": self.scopes }]);
        }
        // As Packer: one accelerator entry when a count is given.
        if let Some(kind) = self
            .accelerator_type
            .as_ref()
            .filter(|_| self.accelerator_count > 0)
        {
            body["guestAccelerators"] = json!([{
                "acceleratorType": kind,
                "acceleratorCount": self.accelerator_count,
            }]);
        }
        if let Some(platform) = &self.min_cpu_platform {
            body["minCpuPlatform"] = json!(platform);
        }
        body
    }
}

impl ImageSpec {
    pub fn body(&self) -> Value {
        let mut body = json!({
            "name": self.name,
            "description": self.description,
            "labels": self.labels,
            "licenses": self.licenses,
        });
        match &self.raw_disk_source {
            Some(source) => body["rawDisk"] = json!({ "source": source }),
            None => body["sourceDisk"] = json!(self.source_disk),
        }
        if !self.guest_os_features.is_empty() {
            let features: Vec<Value> = self
                .guest_os_features
                .iter()
                .map(|f| json!({ "type": f }))
                .collect();
            body["guestOsFeatures"] = json!(features);
        }
        if let Some(family) = &self.family {
            body["family"] = json!(family);
        }
        if !self.storage_locations.is_empty() {
            body["storageLocations"] = json!(self.storage_locations);
        }
        if let Some(key) = &self.encryption_key {
            body["imageEncryptionKey"] = key.body();
        }
        body
    }
}

/// The zonal resources a build makes and its cleanup deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZonalKind {
    Instance,
    Disk,
}

impl ZonalKind {
    /// As in messages and in `gcloud compute <noun>s delete`.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Instance => "instance",
            Self::Disk => "disk",
        }
    }
}

impl ComputeClient {
    pub fn new(project: String, base: String, tokens: TokenSource, http: reqwest::Client) -> Self {
        Self {
            http,
            base,
            tokens,
            project,
        }
    }

    /// The token source, for the other Google APIs of the same build.
    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    fn url(&self, project: &str, path: &str) -> String {
        format!("{}projects/{project}/{path}", self.base)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, GceError> {
        let token = self.tokens.token().await?;
        let mut request = self
            .http
            .request(method, url)
            .header("Authorization", format!("Bearer {token}"));
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let http_err = |source| GceError::Http {
            url: url.to_owned(),
            source,
        };
        let response = request.send().await.map_err(http_err)?;
        let status = response.status();
        let text = response.text().await.map_err(http_err)?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &text));
        }
        serde_json::from_str(&text).map_err(|e| GceError::BadResponse {
            url: url.to_owned(),
            reason: e.to_string(),
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, GceError> {
        let value = self.call(reqwest::Method::GET, url, None).await?;
        decode(url, value)
    }

    async fn post_op(&self, url: &str, body: &Value) -> Result<Operation, GceError> {
        let value = self.call(reqwest::Method::POST, url, Some(body)).await?;
        decode(url, value)
    }

    pub async fn get_image(&self, project: &str, name: &str) -> Result<Image, GceError> {
        self.get(&self.url(project, &format!("global/images/{name}")))
            .await
    }

    /// The newest non-deprecated image of `family` (GCE resolves it).
    pub async fn get_image_from_family(
        &self,
        project: &str,
        family: &str,
    ) -> Result<Image, GceError> {
        self.get(&self.url(project, &format!("global/images/family/{family}")))
            .await
    }

    pub async fn insert_instance(&self, spec: &InstanceSpec) -> Result<Operation, GceError> {
        let url = self.url(&self.project, &format!("zones/{}/instances", spec.zone));
        self.post_op(&url, &spec.body()).await
    }

    pub async fn get_instance(&self, zone: &str, name: &str) -> Result<Instance, GceError> {
        self.get(&self.url(&self.project, &format!("zones/{zone}/instances/{name}")))
            .await
    }

    /// Adds (or replaces) metadata `items` on a running instance with
    /// `instances.setMetadata`, sending the fingerprint read just before
    /// so a concurrent change is refused (412) instead of lost.
    pub async fn add_instance_metadata(
        &self,
        zone: &str,
        name: &str,
        items: &BTreeMap<String, String>,
    ) -> Result<Operation, GceError> {
        let url = self.url(&self.project, &format!("zones/{zone}/instances/{name}"));
        // A 412 means the metadata changed between the read and the write
        // (the guest reporting a status): read again, a few times.
        let mut attempts = 0;
        loop {
            let instance: Value = self.call(reqwest::Method::GET, &url, None).await?;
            let body = merged_metadata(&instance["metadata"], items);
            match self.post_op(&format!("{url}/setMetadata"), &body).await {
                Err(GceError::Api { code: 412, .. }) if attempts < 3 => attempts += 1,
                other => return other,
            }
        }
    }

    pub async fn stop_instance(&self, zone: &str, name: &str) -> Result<Operation, GceError> {
        let url = self.url(
            &self.project,
            &format!("zones/{zone}/instances/{name}/stop"),
        );
        self.post_op(&url, &json!({})).await
    }

    pub async fn delete_instance(&self, zone: &str, name: &str) -> Result<Operation, GceError> {
        let url = self.url(&self.project, &format!("zones/{zone}/instances/{name}"));
        let value = self.call(reqwest::Method::DELETE, &url, None).await?;
        decode(&url, value)
    }

    pub async fn delete_disk(&self, zone: &str, name: &str) -> Result<Operation, GceError> {
        let url = self.url(&self.project, &format!("zones/{zone}/disks/{name}"));
        let value = self.call(reqwest::Method::DELETE, &url, None).await?;
        decode(&url, value)
    }

    pub async fn insert_image(&self, spec: &ImageSpec) -> Result<Operation, GceError> {
        let url = self.url(&self.project, "global/images");
        self.post_op(&url, &spec.body()).await
    }

    /// Deletes a zonal instance or disk and waits for the deletion, for
    /// cleanup: the wait ignores the build's cancellation (a Ctrl-C must
    /// not leave a billed resource). `Ok(false)` when it was already gone.
    pub async fn delete_for_cleanup(
        &self,
        kind: ZonalKind,
        zone: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<bool, GceError> {
        let started = match kind {
            ZonalKind::Instance => self.delete_instance(zone, name).await,
            ZonalKind::Disk => self.delete_disk(zone, name).await,
        };
        let op = match started {
            Ok(op) => op,
            Err(GceError::Api { code: 404, .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let what = format!("deleting {} {name}", kind.noun());
        self.wait(op, &what, timeout, &CancellationToken::new())
            .await
            .map(|()| true)
    }

    pub fn disk_link(&self, zone: &str, disk: &str) -> String {
        self.url(&self.project, &format!("zones/{zone}/disks/{disk}"))
    }

    /// Polls `op` until it is DONE (backoff from 1 s to 5 s), failing with
    /// its errors; `what` names it in messages.
    pub async fn wait(
        &self,
        op: Operation,
        what: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<(), GceError> {
        let url = match &op.zone {
            Some(zone) => format!("{}/operations/{}", zone.trim_end_matches('/'), op.name),
            None => self.url(&self.project, &format!("global/operations/{}", op.name)),
        };
        // The zone field is a full URL on GCE; an emulator on another base
        // answers at the same path under its own base.
        let url = rebase(&url, &self.base);
        let started = Instant::now();
        let mut delay = Duration::from_secs(1);
        let mut op = op;
        loop {
            if op.status == "DONE" {
                return match op.error {
                    Some(errors) if !errors.errors.is_empty() => {
                        let hint = errors
                            .errors
                            .iter()
                            .find_map(|e| hint_for(&e.code, &e.message));
                        Err(GceError::Operation {
                            operation: what.to_owned(),
                            errors: errors
                                .errors
                                .iter()
                                .map(|e| format!("{}: {}", e.code, e.message))
                                .collect(),
                            hint,
                        })
                    }
                    _ => Ok(()),
                };
            }
            if started.elapsed() > timeout {
                return Err(GceError::OperationTimeout {
                    operation: what.to_owned(),
                    seconds: timeout.as_secs(),
                });
            }
            tokio::select! {
                () = cancel.cancelled() => return Err(GceError::Cancelled),
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 3 / 2).min(Duration::from_secs(5));
            op = self.get(&url).await?;
        }
    }
}

/// `url` with its `…/compute/v1/` prefix replaced by `base`.
/// The body of `instances.setMetadata`: the instance's `metadata` with
/// `items` set (replacing same-named entries), its fingerprint kept.
fn merged_metadata(current: &Value, items: &BTreeMap<String, String>) -> Value {
    let mut merged: Vec<Value> = current["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| !i["key"].as_str().is_some_and(|k| items.contains_key(k)))
        .cloned()
        .collect();
    merged.extend(items.iter().map(|(k, v)| json!({ "key": k, "value": v })));
    let mut body = json!({ "items": merged });
    if let Some(fp) = current["fingerprint"].as_str() {
        body["fingerprint"] = json!(fp);
    }
    body
}

fn rebase(url: &str, base: &str) -> String {
    match url.find("/compute/v1/") {
        Some(at) if url.starts_with("http") => {
            format!("{base}{}", &url[at + "/compute/v1/".len()..])
        }
        _ => url.to_owned(),
    }
}

fn decode<T: serde::de::DeserializeOwned>(url: &str, value: Value) -> Result<T, GceError> {
    serde_json::from_value(value).map_err(|e| GceError::BadResponse {
        url: url.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_body_carries_packers_keys_and_keeps_its_disk() {
        let spec = InstanceSpec {
            name: "packer-1".into(),
            zone: "europe-west1-b".into(),
            machine_type: "f1-micro".into(),
            source_image: "projects/ubuntu-os-cloud/global/images/u".into(),
            disk_name: "packer-1".into(),
            disk_size_gb: 10,
            disk_type: "pd-ssd".into(),
            network: "default".into(),
            network_project_id: "infra".into(),
            subnetwork: Some("sub".into()),
            external_ip: true,
            preemptible: true,
            on_host_maintenance: "TERMINATE".into(),
            tags: vec!["puma-server".into()],
            metadata: [(
                "ssh-keys".to_owned(),
                "muxun:ssh-ed25519 AAAA kiln".to_owned(),
            )]
            .into(),
            ..InstanceSpec::default()
        };
        let body = spec.body();
        assert_eq!(
            body["machineType"],
            "zones/europe-west1-b/machineTypes/f1-micro"
        );
        assert_eq!(body["disks"][0]["autoDelete"], false);
        assert_eq!(body["disks"][0]["initializeParams"]["diskSizeGb"], "10");
        assert_eq!(
            body["disks"][0]["initializeParams"]["diskType"],
            "zones/europe-west1-b/diskTypes/pd-ssd"
        );
        assert_eq!(
            body["networkInterfaces"][0]["subnetwork"],
            "projects/infra/regions/europe-west1/subnetworks/sub"
        );
        assert_eq!(
            body["networkInterfaces"][0]["accessConfigs"][0]["type"],
            "ONE_TO_ONE_NAT"
        );
        assert_eq!(body["scheduling"]["preemptible"], true);
        assert_eq!(body["scheduling"]["automaticRestart"], false);
        assert_eq!(body["tags"]["items"][0], "puma-server");
        assert_eq!(body["metadata"]["items"][0]["key"], "ssh-keys");
    }

    #[test]
    fn accelerators_and_the_cpu_platform_go_in_the_instance_body() {
        let spec = InstanceSpec {
            zone: "europe-west1-b".into(),
            accelerator_type: Some(
                "projects/infra/zones/europe-west1-b/acceleratorTypes/nvidia-tesla-t4".into(),
            ),
            accelerator_count: 2,
            min_cpu_platform: Some("Intel Skylake".into()),
            ..InstanceSpec::default()
        };
        let body = spec.body();
        assert_eq!(
            body["guestAccelerators"],
            json!([{
                "acceleratorType": "projects/infra/zones/europe-west1-b/acceleratorTypes/nvidia-tesla-t4",
                "acceleratorCount": 2,
            }])
        );
        assert_eq!(body["minCpuPlatform"], "Intel Skylake");
        // Neither key without its setting (a count of 0 means none, as in Packer).
        let plain = InstanceSpec {
            accelerator_type: spec.accelerator_type.clone(),
            ..InstanceSpec::default()
        }
        .body();
        assert!(plain.get("guestAccelerators").is_none(), "{plain}");
        assert!(plain.get("minCpuPlatform").is_none(), "{plain}");
    }

    #[test]
    fn the_image_encryption_key_goes_in_the_image_body_and_a_raw_key_stays_out_of_debug() {
        let kms = ImageSpec {
            encryption_key: Some(CustomerEncryptionKey::KmsKeyName(
                "projects/p/locations/global/keyRings/r/cryptoKeys/k".into(),
            )),
            ..ImageSpec::default()
        };
        assert_eq!(
            kms.body()["imageEncryptionKey"],
            json!({ "kmsKeyName": "projects/p/locations/global/keyRings/r/cryptoKeys/k" })
        );
        let raw = ImageSpec {
            encryption_key: Some(CustomerEncryptionKey::RawKey("c2VjcmV0LWtleQ==".into())),
            ..ImageSpec::default()
        };
        assert_eq!(
            raw.body()["imageEncryptionKey"],
            json!({ "rawKey": "c2VjcmV0LWtleQ==" })
        );
        let debug = format!("{raw:?}");
        assert!(!debug.contains("c2VjcmV0LWtleQ=="), "{debug}");
        assert!(
            ImageSpec::default()
                .body()
                .get("imageEncryptionKey")
                .is_none()
        );
    }

    #[test]
    fn set_metadata_keeps_other_items_replaces_the_same_key_and_sends_the_fingerprint() {
        let current = json!({
            "fingerprint": "abc=",
            "items": [
                { "key": "startup-script", "value": "echo hi" },
                { "key": "ssh-keys", "value": "old:ssh-ed25519 AAAA" },
            ],
        });
        let items = BTreeMap::from([("ssh-keys".to_owned(), "new:ssh-ed25519 BBBB".to_owned())]);
        let body = merged_metadata(&current, &items);
        assert_eq!(
            body,
            json!({
                "fingerprint": "abc=",
                "items": [
                    { "key": "startup-script", "value": "echo hi" },
                    { "key": "ssh-keys", "value": "new:ssh-ed25519 BBBB" },
                ],
            })
        );
    }

    #[test]
    fn operation_links_are_rebased_on_the_endpoint() {
        assert_eq!(
            rebase(
                "https://www.googleapis.com/compute/v1/projects/p/zones/z/operations/o",
                "http://127.0.0.1:9/compute/v1/"
            ),
            "http://127.0.0.1:9/compute/v1/projects/p/zones/z/operations/o"
        );
    }
}
