//! The `googlecompute` builder's configuration (validated now; the upload
//! itself comes with the cloud issues).

use std::collections::BTreeMap;
use std::time::Duration;

use super::common::Communicator;
use super::decode::Fields;

#[derive(Debug, Clone)]
pub struct GoogleComputeConfig {
    pub project_id: String,
    pub zone: String,
    pub region: String,
    pub source_image: Option<String>,
    pub source_image_family: Option<String>,
    pub source_image_project_id: Vec<String>,
    pub image_name: String,
    pub image_family: Option<String>,
    pub image_description: String,
    pub image_labels: BTreeMap<String, String>,
    pub image_licenses: Vec<String>,
    pub image_storage_locations: Vec<String>,
    /// `guestOsFeatures` of the image, each one of `GUEST_OS_FEATURES`.
    pub image_guest_os_features: Vec<String>,
    pub instance_name: Option<String>,
    pub machine_type: String,
    pub disk_size_gb: u64,
    pub disk_type: String,
    pub disk_name: Option<String>,
    pub network: String,
    pub network_project_id: Option<String>,
    pub subnetwork: Option<String>,
    pub tags: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    pub metadata_files: BTreeMap<String, String>,
    pub account_file: Option<String>,
    /// `credentials_json`: the key itself, sensitive.
    pub credentials_json: Option<String>,
    pub access_token: Option<String>,
    /// `impersonate_service_account`: the credentials above act as it.
    pub impersonate_service_account: Option<String>,
    pub skip_create_image: bool,
    pub service_account_email: Option<String>,
    pub scopes: Vec<String>,
    pub preemptible: bool,
    pub on_host_maintenance: String,
    pub use_internal_ip: bool,
    pub omit_external_ip: bool,
    pub address: Option<String>,
    pub use_os_login: bool,
    pub use_iap: bool,
    pub startup_script_file: Option<String>,
    /// `accelerator_type` (a short name, or a `projects/…` path kept as given).
    pub accelerator_type: Option<String>,
    pub accelerator_count: u64,
    pub min_cpu_platform: Option<String>,
    pub image_encryption_key: Option<ImageEncryptionKey>,
    /// `wait_to_add_ssh_keys`: the instance starts without `ssh-keys`;
    /// they are added by setMetadata after this long (Packer's step).
    pub wait_to_add_ssh_keys: Option<Duration>,
    pub state_timeout: Duration,
    pub communicator: Communicator,
}

/// `image_encryption_key`: Packer's `CustomerEncryptionKey`, one of its
/// two fields.
#[derive(Clone, PartialEq, Eq)]
pub enum ImageEncryptionKey {
    KmsKeyName(String),
    /// `rawKey`: a base64 AES-256 key, a secret (never in Debug output).
    RawKey(String),
}

impl std::fmt::Debug for ImageEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::KmsKeyName(name) => f.debug_tuple("KmsKeyName").field(name).finish(),
            Self::RawKey(_) => f.write_str("RawKey(<sensitive>)"),
        }
    }
}

/// `image_encryption_key` as Packer reads it: an object with `kmsKeyName`
/// or `rawKey` (not both, not neither; other fields are errors).
fn image_encryption_key(f: &mut Fields<'_>) -> Option<ImageEncryptionKey> {
    const KEY: &str = "image_encryption_key";
    let span = f.span_of(KEY).unwrap_or_default();
    let fields = f.string_map(KEY)?;
    let hint = "e.g. {\"kmsKeyName\": \"projects/P/locations/L/keyRings/R/cryptoKeys/K\"} or {\"rawKey\": \"BASE64-AES-256-KEY\"}";
    if let Some(other) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "kmsKeyName" | "rawKey"))
    {
        f.error_at(
            span,
            format!("{KEY}: unknown field `{other}`; expected kmsKeyName or rawKey"),
        )
        .hint = Some(hint.into());
        return None;
    }
    let kms = fields.get("kmsKeyName").filter(|v| !v.is_empty());
    let raw = fields.get("rawKey").filter(|v| !v.is_empty());
    match (kms, raw) {
        (Some(kms), None) => Some(ImageEncryptionKey::KmsKeyName(kms.clone())),
        (None, Some(raw)) => Some(ImageEncryptionKey::RawKey(raw.clone())),
        (Some(_), Some(_)) => {
            f.error_at(span, format!("{KEY}: give kmsKeyName or rawKey, not both"))
                .hint = Some(hint.into());
            None
        }
        (None, None) => {
            f.error_at(span, format!("{KEY}: kmsKeyName or rawKey is required"))
                .hint = Some(hint.into());
            None
        }
    }
}

/// GCE resource names: a lowercase letter, then letters, digits and dashes, at most 63.
fn is_gce_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[bytes.len() - 1] != b'-'
}

/// compute v1's `GuestOsFeature.type` values (its discovery document);
/// GCE refuses any other with a 400 after the build has run.
pub const GUEST_OS_FEATURES: &[&str] = &[
    "BARE_METAL_LINUX_COMPATIBLE",
    "CCA_CAPABLE",
    "GVNIC",
    "IDPF",
    "MULTI_IP_SUBNET",
    "SECURE_BOOT",
    "SEV_CAPABLE",
    "SEV_LIVE_MIGRATABLE",
    "SEV_LIVE_MIGRATABLE_V2",
    "SEV_SNP_CAPABLE",
    "SNP_SVSM_CAPABLE",
    "SUSPEND_RESUME_COMPATIBLE",
    "TDX_CAPABLE",
    "UEFI_COMPATIBLE",
    "VIRTIO_SCSI_MULTIQUEUE",
    "WINDOWS",
];

/// `image_guest_os_features`, each checked against GCE's known values (an
/// error names the bad one and lists them).
pub fn guest_os_features(f: &mut Fields<'_>) -> Vec<String> {
    let features = f.string_list("image_guest_os_features").unwrap_or_default();
    for feature in features
        .iter()
        .filter(|v| !GUEST_OS_FEATURES.contains(&v.as_str()))
    {
        let span = item_span(f, "image_guest_os_features", feature);
        let hint =
            crate::template::diagnostic::did_you_mean(feature, GUEST_OS_FEATURES.iter().copied())
                .map(|s| format!("did you mean `{s}`?"));
        f.error_at(
            span,
            format!(
                "image_guest_os_features: `{feature}` is not a GCE guest OS feature; known: {}",
                GUEST_OS_FEATURES.join(", ")
            ),
        )
        .hint = hint;
    }
    features
}

/// The span of the list item `value` of `key` (the key's value when the
/// list was written as a comma-separated string).
fn item_span(f: &mut Fields<'_>, key: &'static str, value: &str) -> crate::template::json::Span {
    use crate::template::json::Value;
    let whole = f.span_of(key).unwrap_or_default();
    match f.raw(key).map(|n| &n.value) {
        Some(Value::Array(items)) => items
            .iter()
            .find(|i| matches!(&i.value, Value::String(s) if s == value))
            .map_or(whole, |i| i.span),
        _ => whole,
    }
}

const DEFAULT_SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/compute",
    "https://www.googleapis.com/auth/devstorage.full_control",
];

impl GoogleComputeConfig {
    pub fn decode(f: &mut Fields<'_>) -> Option<Self> {
        let project_id = f.required_string("project_id");
        let zone = f.required_string("zone");
        let region = f.string("region").filter(|s| !s.is_empty());
        let source_image = f.string("source_image").filter(|s| !s.is_empty());
        let source_image_family = f.string("source_image_family").filter(|s| !s.is_empty());
        let source_image_project_id = f.string_list("source_image_project_id").unwrap_or_default();
        let image_name = f.string("image_name").filter(|s| !s.is_empty());
        let image_family = f.string("image_family").filter(|s| !s.is_empty());
        let image_description = f
            .string("image_description")
            .unwrap_or_else(|| "Created by kiln".into());
        let image_labels = f.string_map("image_labels").unwrap_or_default();
        let image_licenses = f.string_list("image_licenses").unwrap_or_default();
        let image_storage_locations = f.string_list("image_storage_locations").unwrap_or_default();
        let image_guest_os_features = guest_os_features(f);
        let image_encryption_key = image_encryption_key(f);
        let instance_name = f.string("instance_name").filter(|s| !s.is_empty());
        let machine_type = f
            .string("machine_type")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "n1-standard-1".into());
        let disk_size_gb = f.u64("disk_size").filter(|&n| n > 0).unwrap_or(20);
        let disk_type = f
            .string("disk_type")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "pd-standard".into());
        let disk_name = f.string("disk_name").filter(|s| !s.is_empty());
        let network = f.string("network").filter(|s| !s.is_empty());
        let network_project_id = f.string("network_project_id").filter(|s| !s.is_empty());
        let subnetwork = f.string("subnetwork").filter(|s| !s.is_empty());
        let tags = f.string_list("tags").unwrap_or_default();
        let labels = f.string_map("labels").unwrap_or_default();
        let metadata = f.string_map("metadata").unwrap_or_default();
        let metadata_files = f.string_map("metadata_files").unwrap_or_default();
        // `credentials_file` is the newer plugin's name for `account_file`.
        let account_file = f
            .string("account_file")
            .filter(|s| !s.is_empty())
            .or_else(|| f.string("credentials_file").filter(|s| !s.is_empty()));
        let credentials_json = f.string("credentials_json").filter(|s| !s.is_empty());
        let access_token = f.string("access_token").filter(|s| !s.is_empty());
        let impersonate_service_account = f
            .string("impersonate_service_account")
            .filter(|s| !s.is_empty());
        let skip_create_image = f.bool("skip_create_image").unwrap_or(false);
        let service_account_email = f.string("service_account_email").filter(|s| !s.is_empty());
        let scopes = f
            .string_list("scopes")
            .unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect());
        let preemptible = f.bool("preemptible").unwrap_or(false);
        let on_host_maintenance = f.one_of("on_host_maintenance", &["MIGRATE", "TERMINATE"]);
        let use_internal_ip = f.bool("use_internal_ip").unwrap_or(false);
        let omit_external_ip = f.bool("omit_external_ip").unwrap_or(false);
        let address = f.string("address").filter(|s| !s.is_empty());
        // OS Login and IAP are not supported: the build still works with
        // the temporary key in `ssh-keys` and the instance's address, as
        // Packer's does with them off, so each is a warning naming it.
        let use_os_login = f.bool("use_os_login").unwrap_or(false);
        let use_iap = f.bool("use_iap").unwrap_or(false);
        for (key, on) in [("use_os_login", use_os_login), ("use_iap", use_iap)] {
            if on {
                let span = f.span_of(key).unwrap_or_default();
                f.warn_at(span, format!("{key} is not supported by kiln: the build goes on as with {key}: false (the temporary key in the instance's ssh-keys metadata, SSH to its address)"));
            }
        }
        for key in [
            "iap_localhost_port",
            "iap_hashbang",
            "iap_ext",
            "iap_tunnel_launch_wait",
        ] {
            if f.raw(key).is_some() {
                let span = f.span_of(key).unwrap_or_default();
                f.warn_at(
                    span,
                    format!("{key} is ignored: kiln does not support IAP tunnels"),
                );
            }
        }
        // Keys of later googlecompute plugins that change the instance kiln
        // makes: refused by name rather than as typos with a did-you-mean.
        for key in [
            "disk_attachment",
            "max_run_duration_in_seconds",
            "instance_termination_action",
        ] {
            if f.raw(key).is_some() {
                let span = f.span_of(key).unwrap_or_default();
                f.error_at(
                    span,
                    format!(
                        "{key} (a key of later googlecompute plugins) is not supported by kiln yet"
                    ),
                )
                .hint = Some(format!(
                    "remove {key}; kiln follows the googlecompute builder of Packer 1.6.6 with the keys its README lists"
                ));
            }
        }
        let accelerator_type = f.string("accelerator_type").filter(|s| !s.is_empty());
        let accelerator_count = f.u64("accelerator_count").unwrap_or(0);
        let min_cpu_platform = f.string("min_cpu_platform").filter(|s| !s.is_empty());
        let wait_to_add_ssh_keys = f.duration("wait_to_add_ssh_keys").filter(|d| !d.is_zero());
        for key in [
            "disable_default_service_account",
            "enable_secure_boot",
            "enable_vtpm",
            "enable_integrity_monitoring",
            "wrap_startup_script",
            "vault_gcp_oauth_engine",
        ] {
            let _ = f.raw(key);
        }
        let startup_script_file = f.string("startup_script_file").filter(|s| !s.is_empty());
        let state_timeout = f
            .duration("state_timeout")
            .unwrap_or(Duration::from_secs(300));
        let communicator = Communicator::decode(f, None);

        if source_image.is_none() && source_image_family.is_none() {
            f.error("source_image or source_image_family is required")
                .hint = Some("e.g. \"source_image_family\": \"debian-12\"".into());
        }
        for (key, value) in [("image_name", &image_name), ("image_family", &image_family)] {
            if let Some(v) = value.as_ref().filter(|v| !is_gce_name(v)) {
                let span = f.span_of(key).unwrap_or_default();
                f.error_at(span, format!("{key}: `{v}` is not a valid GCE name (lowercase letters, digits and dashes, starting with a letter, at most 63)"))
                    .hint = Some("the clean_resource_name function makes a valid name: {{ timestamp | clean_resource_name }}".into());
            }
        }
        if preemptible && on_host_maintenance.as_deref() == Some("MIGRATE") {
            let span = f.span_of("on_host_maintenance").unwrap_or_default();
            f.error_at(
                span,
                "on_host_maintenance MIGRATE is not allowed with preemptible instances",
            );
        }
        // Packer's two accelerator rules, in its words.
        if accelerator_count > 0 && accelerator_type.is_none() {
            let span = f.span_of("accelerator_count").unwrap_or_default();
            f.error_at(
                span,
                "'accelerator_type' must be set when 'accelerator_count' is more than 0",
            );
        }
        // Preemptible instances default to TERMINATE, as in Packer.
        let terminates = on_host_maintenance.as_deref() == Some("TERMINATE")
            || (on_host_maintenance.is_none() && preemptible);
        if accelerator_count > 0 && !terminates {
            let span = f
                .span_of("on_host_maintenance")
                .or_else(|| f.span_of("accelerator_count"))
                .unwrap_or_default();
            f.error_at(
                span,
                "'on_host_maintenance' must be set to 'TERMINATE' when 'accelerator_count' is more than 0",
            )
            .hint = Some("GPUs cannot live-migrate: add \"on_host_maintenance\": \"TERMINATE\"".into());
        }
        if omit_external_ip && !use_internal_ip {
            let span = f.span_of("omit_external_ip").unwrap_or_default();
            f.error_at(span, "omit_external_ip needs use_internal_ip: true");
        }
        if omit_external_ip && address.is_some() {
            let span = f.span_of("address").unwrap_or_default();
            f.error_at(span, "address cannot be used with omit_external_ip");
        }
        let stamp = f
            .context()
            .init_time()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let zone = zone?;
        let region = region.unwrap_or_else(|| {
            zone.get(..zone.len().saturating_sub(2))
                .unwrap_or(&zone)
                .to_owned()
        });
        Some(Self {
            project_id: project_id?,
            zone,
            region,
            source_image,
            source_image_family,
            source_image_project_id,
            image_name: image_name.unwrap_or_else(|| format!("packer-{stamp}")),
            image_family,
            image_description,
            image_labels,
            image_licenses,
            image_storage_locations,
            image_guest_os_features,
            instance_name,
            machine_type,
            disk_size_gb,
            disk_type,
            disk_name,
            network: network.unwrap_or_else(|| "default".into()),
            network_project_id,
            subnetwork,
            tags,
            labels,
            metadata,
            metadata_files,
            account_file,
            credentials_json,
            access_token,
            impersonate_service_account,
            skip_create_image,
            service_account_email,
            scopes,
            on_host_maintenance: on_host_maintenance.unwrap_or_else(|| {
                if preemptible {
                    "TERMINATE".into()
                } else {
                    "MIGRATE".into()
                }
            }),
            preemptible,
            use_internal_ip,
            omit_external_ip,
            address,
            use_os_login,
            use_iap,
            startup_script_file,
            accelerator_type,
            accelerator_count,
            min_cpu_platform,
            image_encryption_key,
            wait_to_add_ssh_keys,
            state_timeout,
            communicator: communicator?,
        })
    }
}
