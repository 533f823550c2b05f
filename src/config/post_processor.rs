//! Post-processors: `vagrant`, `checksum`, `manifest`, `compress`,
//! `shell-local`, `amazon-import`, `googlecompute-import`, `googlecompute-export`, each a step
//! of a chain that takes the
//! previous artifact.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::decode::{Deferred, Fields};
use super::local_path::resolve_local_path;
use super::provisioner::{ShellLocalConfig, decode_shell_local};

pub const POST_PROCESSOR_TYPES: &[&str] = &[
    "vagrant",
    "checksum",
    "manifest",
    "compress",
    "shell-local",
    "amazon-import",
    "googlecompute-import",
    "googlecompute-export",
];

pub const VAGRANT_PROVIDERS: &[&str] = &[
    "aws",
    "virtualbox",
    "vmware",
    "digitalocean",
    "google",
    "scaleway",
    "parallels",
    "hyperv",
    "libvirt",
    "lxc",
    "azure",
    "docker",
];

pub const CHECKSUM_TYPES: &[&str] = &["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

/// What a Vagrant box is made with; `override` may change it per provider.
#[derive(Debug, Clone)]
pub struct VagrantBoxSettings {
    pub output: Deferred,
    pub compression_level: Option<u32>,
    pub include: Vec<PathBuf>,
    pub vagrantfile_template: Option<PathBuf>,
    pub vagrantfile_template_generated: bool,
}

#[derive(Debug, Clone)]
pub struct VagrantConfig {
    pub settings: VagrantBoxSettings,
    pub provider_override: Option<String>,
    /// `override`: for a provider, the settings with its keys applied over
    /// the others (Packer decodes them over the whole config when that
    /// provider's box is made).
    pub overrides: BTreeMap<String, VagrantBoxSettings>,
}

impl VagrantConfig {
    /// The settings a `provider` box is made with.
    pub fn settings_for(&self, provider: &str) -> &VagrantBoxSettings {
        self.overrides.get(provider).unwrap_or(&self.settings)
    }
}

/// The keys `override` may set for a provider.
pub const VAGRANT_OVERRIDE_KEYS: &[&str] = &[
    "output",
    "compression_level",
    "include",
    "vagrantfile_template",
    "vagrantfile_template_generated",
];

#[derive(Debug, Clone)]
pub struct ChecksumConfig {
    pub checksum_types: Vec<String>,
    pub output: Deferred,
}

#[derive(Debug, Clone)]
pub struct ManifestConfig {
    pub output: String,
    /// The build name the builder was given (an HCL2 source's own name,
    /// `tiny`, not `qemu.tiny`): Packer's manifest records
    /// `packer_build_name`.
    pub build_name: Option<String>,
    pub strip_path: bool,
    pub strip_time: bool,
    pub custom_data: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct CompressConfig {
    pub output: Deferred,
    pub format: Option<String>,
    pub compression_level: Option<u32>,
}

/// The disk formats EC2's VM Import takes (`format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Ova,
    Raw,
    Vmdk,
    Vhd,
    Vhdx,
}

impl ImportFormat {
    pub const NAMES: &[&str] = &["ova", "raw", "vmdk", "vhd", "vhdx"];

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "ova" => Self::Ova,
            "raw" => Self::Raw,
            "vmdk" => Self::Vmdk,
            "vhd" => Self::Vhd,
            "vhdx" => Self::Vhdx,
            _ => return None,
        })
    }

    /// The name in templates and file extensions.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ova => "ova",
            Self::Raw => "raw",
            Self::Vmdk => "vmdk",
            Self::Vhd => "vhd",
            Self::Vhdx => "vhdx",
        }
    }
}

/// `s3_encryption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Encryption {
    Aes256,
    Kms,
}

/// Packer's `amazon-import` keys (its AccessConfig and its own).
#[derive(Debug, Clone)]
pub struct AmazonImportConfig {
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub token: Option<String>,
    pub profile: Option<String>,
    pub region: Option<String>,
    pub custom_endpoint_ec2: Option<String>,
    pub s3_bucket_name: String,
    /// Rendered when the post-processor runs (`{{timestamp}}` is then).
    pub s3_key_name: Deferred,
    pub s3_encryption: Option<S3Encryption>,
    pub s3_encryption_key: Option<String>,
    pub skip_clean: bool,
    pub tags: BTreeMap<String, String>,
    pub ami_name: Option<String>,
    pub ami_description: String,
    pub ami_users: Vec<String>,
    pub ami_groups: Vec<String>,
    pub ami_encrypt: bool,
    pub ami_kms_key: Option<String>,
    pub license_type: Option<String>,
    pub role_name: String,
    pub format: ImportFormat,
    pub boot_mode: Option<String>,
    pub platform: Option<String>,
}

fn decode_amazon_import(f: &mut Fields<'_>) -> Option<AmazonImportConfig> {
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let format = f
        .one_of("format", ImportFormat::NAMES)
        .and_then(|n| ImportFormat::parse(&n));
    let format_bad = f.has("format") && format.is_none();
    let format = format.unwrap_or(ImportFormat::Ova);
    let s3_bucket_name = f.required_string("s3_bucket_name");
    let s3_key_name = f.deferred("s3_key_name", &[]).or_else(|| {
        deferred_default(&format!(
            "packer-import-{{{{timestamp}}}}.{}",
            format.name()
        ))
    });
    let s3_encryption = f.one_of("s3_encryption", &["AES256", "aws:kms"]).map(|e| {
        if e == "AES256" {
            S3Encryption::Aes256
        } else {
            S3Encryption::Kms
        }
    });
    let s3_encryption_key = non_empty(f.string("s3_encryption_key"));
    if s3_encryption_key.is_some() && s3_encryption != Some(S3Encryption::Kms) {
        let span = f.span_of("s3_encryption_key").unwrap_or_default();
        f.error_at(
            span,
            "s3_encryption_key: needs s3_encryption set to `aws:kms`",
        )
        .hint = Some("set \"s3_encryption\": \"aws:kms\", or remove s3_encryption_key".into());
    }
    let ami_kms_key = non_empty(f.string("ami_kms_key"));
    let ami_encrypt = f.bool("ami_encrypt").unwrap_or(false);
    if ami_kms_key.is_some() && !ami_encrypt {
        let span = f.span_of("ami_kms_key").unwrap_or_default();
        f.error_at(span, "ami_kms_key: needs ami_encrypt set to true");
    }
    let config = AmazonImportConfig {
        access_key: non_empty(f.string("access_key")),
        secret_key: non_empty(f.string("secret_key")),
        token: non_empty(f.string("token")),
        profile: non_empty(f.string("profile")),
        region: non_empty(f.string("region")),
        custom_endpoint_ec2: non_empty(f.string("custom_endpoint_ec2")),
        s3_bucket_name: s3_bucket_name.unwrap_or_default(),
        s3_key_name: s3_key_name?,
        s3_encryption,
        s3_encryption_key,
        skip_clean: f.bool("skip_clean").unwrap_or(false),
        tags: f.string_map("tags").unwrap_or_default(),
        ami_name: non_empty(f.string("ami_name")),
        ami_description: f.string("ami_description").unwrap_or_default(),
        ami_users: f.string_list("ami_users").unwrap_or_default(),
        ami_groups: f.string_list("ami_groups").unwrap_or_default(),
        ami_encrypt,
        ami_kms_key,
        license_type: f.one_of("license_type", &["AWS", "BYOL"]),
        role_name: non_empty(f.string("role_name")).unwrap_or_else(|| "vmimport".into()),
        format,
        boot_mode: f.one_of("boot_mode", &["legacy-bios", "uefi"]),
        platform: f.one_of("platform", &["Linux", "Windows"]),
    };
    (!format_bad && !config.s3_bucket_name.is_empty()).then_some(config)
}

/// How a GCE post-processor authenticates (Packer's keys; the first one
/// set wins, else application default credentials).
#[derive(Clone, Default)]
pub struct GceAccess {
    pub account_file: Option<PathBuf>,
    pub credentials_json: Option<String>,
    pub access_token: Option<String>,
    pub impersonate_service_account: Option<String>,
}

impl std::fmt::Debug for GceAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GceAccess")
            .field("account_file", &self.account_file)
            .field(
                "credentials_json",
                &self.credentials_json.as_ref().map(|_| "<sensitive>"),
            )
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<sensitive>"),
            )
            .finish()
    }
}

fn decode_gce_access(f: &mut Fields<'_>) -> GceAccess {
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    // `credentials_file` is the plugin's newer name for `account_file`.
    let account_file =
        non_empty(f.string("account_file")).or_else(|| non_empty(f.string("credentials_file")));
    GceAccess {
        account_file: account_file.map(PathBuf::from),
        credentials_json: non_empty(f.string("credentials_json")),
        access_token: non_empty(f.string("access_token")),
        impersonate_service_account: non_empty(f.string("impersonate_service_account")),
    }
}

/// Packer's `googlecompute-import` keys.
#[derive(Debug, Clone)]
pub struct GoogleComputeImportConfig {
    pub access: GceAccess,
    pub project_id: String,
    pub bucket: String,
    /// Rendered when the post-processor runs (`{{timestamp}}` is then).
    pub gcs_object_name: Deferred,
    pub image_name: String,
    pub image_description: String,
    pub image_family: Option<String>,
    pub image_labels: BTreeMap<String, String>,
    pub image_guest_os_features: Vec<String>,
    pub image_storage_locations: Vec<String>,
    pub skip_clean: bool,
}

fn decode_googlecompute_import(f: &mut Fields<'_>) -> Option<GoogleComputeImportConfig> {
    let access = decode_gce_access(f);
    let project_id = f.required_string("project_id");
    let bucket = f.required_string("bucket");
    let image_name = f.required_string("image_name");
    let gcs_object_name = f
        .deferred("gcs_object_name", &[])
        .or_else(|| deferred_default("packer-import-{{timestamp}}.tar.gz"));
    Some(GoogleComputeImportConfig {
        access,
        image_description: f.string("image_description").unwrap_or_default(),
        image_family: f.string("image_family").filter(|s| !s.is_empty()),
        image_labels: f.string_map("image_labels").unwrap_or_default(),
        image_guest_os_features: super::googlecompute::guest_os_features(f),
        image_storage_locations: f.string_list("image_storage_locations").unwrap_or_default(),
        skip_clean: f.bool("skip_clean").unwrap_or(false),
        project_id: project_id?,
        bucket: bucket?,
        image_name: image_name?,
        gcs_object_name: gcs_object_name?,
    })
}

/// Packer's `googlecompute-export` keys (the exporter instance's settings;
/// the project, image and default zone come from the builder's artifact).
#[derive(Debug, Clone)]
pub struct GoogleComputeExportConfig {
    pub access: GceAccess,
    /// `gs://BUCKET/OBJECT` paths, the first written by the exporter, the
    /// others copied from it.
    pub paths: Vec<String>,
    pub disk_size_gb: u64,
    pub disk_type: String,
    pub machine_type: String,
    pub network: String,
    pub subnetwork: Option<String>,
    pub zone: Option<String>,
    pub service_account_email: Option<String>,
}

/// `gs://bucket/object`, with an object name that is not a folder.
fn is_gcs_object_path(path: &str) -> bool {
    path.strip_prefix("gs://")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(bucket, object)| {
            !bucket.is_empty() && !object.is_empty() && !object.ends_with('/')
        })
}

fn decode_googlecompute_export(f: &mut Fields<'_>) -> Option<GoogleComputeExportConfig> {
    let access = decode_gce_access(f);
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let paths = f.string_list("paths").unwrap_or_default();
    let mut bad = false;
    if paths.is_empty() {
        f.error("paths is required: the GCS objects the image is exported to")
            .hint = Some("e.g. \"paths\": [\"gs://my-bucket/images/my-image.tar.gz\"]".into());
        bad = true;
    }
    for path in paths.iter().filter(|p| !is_gcs_object_path(p)) {
        let span = f.span_of("paths").unwrap_or_default();
        f.error_at(
            span,
            format!("paths: `{path}` is not a Cloud Storage object (gs://BUCKET/OBJECT)"),
        )
        .hint = Some("e.g. gs://my-bucket/images/my-image.tar.gz".into());
        bad = true;
    }
    let subnetwork = non_empty(f.string("subnetwork"));
    let config = GoogleComputeExportConfig {
        access,
        disk_size_gb: f.u64("disk_size").filter(|&n| n > 0).unwrap_or(200),
        disk_type: non_empty(f.string("disk_type")).unwrap_or_else(|| "pd-ssd".into()),
        machine_type: non_empty(f.string("machine_type")).unwrap_or_else(|| "n1-highcpu-4".into()),
        network: non_empty(f.string("network")).unwrap_or_else(|| "default".into()),
        subnetwork,
        zone: non_empty(f.string("zone")),
        service_account_email: non_empty(f.string("service_account_email")),
        paths,
    };
    (!bad).then_some(config)
}

#[derive(Debug, Clone)]
pub enum PostProcessorKind {
    AmazonImport(Box<AmazonImportConfig>),
    GoogleComputeImport(Box<GoogleComputeImportConfig>),
    GoogleComputeExport(Box<GoogleComputeExportConfig>),
    Vagrant(VagrantConfig),
    Checksum(ChecksumConfig),
    Manifest(ManifestConfig),
    Compress(CompressConfig),
    ShellLocal(ShellLocalConfig),
}

#[derive(Debug, Clone)]
pub struct PostProcessor {
    pub path: String,
    pub type_name: String,
    pub keep_input_artifact: Option<bool>,
    pub kind: PostProcessorKind,
}

fn deferred_default(text: &str) -> Option<Deferred> {
    crate::template::interp::parse(text)
        .ok()
        .map(|template| Deferred {
            template,
            span: Default::default(),
        })
}

fn level(f: &mut Fields<'_>) -> Option<u32> {
    f.u64("compression_level").map(|l| l.min(9) as u32)
}

/// The box settings in `f`; a key `f` leaves out keeps its value in
/// `base` (an override), or Packer's default.
fn decode_vagrant_settings(
    f: &mut Fields<'_>,
    base: Option<&VagrantBoxSettings>,
) -> Option<VagrantBoxSettings> {
    let output = match f.deferred("output", &["BuildName", "Provider", "ArtifactId"]) {
        Some(output) => Some(output),
        None if f.has("output") => None,
        None => base
            .map(|b| b.output.clone())
            .or_else(|| deferred_default("packer_{{ .BuildName }}_{{ .Provider }}.box")),
    };
    let compression_level = level(f).or(base.and_then(|b| b.compression_level));
    let include = if f.has("include") {
        // Not checked here: a build may make what it includes (EFI vars in
        // its output directory); Packer copies them after the build, and a
        // missing one fails the post-processor then, naming it.
        f.string_list("include")
            .unwrap_or_default()
            .iter()
            .map(|p| resolve_local_path(f, p))
            .collect()
    } else {
        base.map(|b| b.include.clone()).unwrap_or_default()
    };
    let generated = f
        .bool("vagrantfile_template_generated")
        .or(base.map(|b| b.vagrantfile_template_generated))
        .unwrap_or(false);
    let template = if f.has("vagrantfile_template") {
        let template = f
            .string("vagrantfile_template")
            .filter(|s| !s.is_empty())
            .map(|p| resolve_local_path(f, &p));
        if let Some(t) = template.as_ref().filter(|t| !generated && !t.is_file()) {
            let span = f.span_of("vagrantfile_template").unwrap_or_default();
            f.error_at(
                span,
                format!("vagrantfile_template: {} does not exist", t.display()),
            );
        }
        template
    } else {
        base.and_then(|b| b.vagrantfile_template.clone())
    };
    Some(VagrantBoxSettings {
        output: output?,
        compression_level,
        include,
        vagrantfile_template: template,
        vagrantfile_template_generated: generated,
    })
}

/// `override`: `{"virtualbox": {"output": …}, "libvirt": {…}}`, each
/// provider's keys decoded over `base` (in their own place in the template,
/// so a mistake there is reported there).
fn decode_vagrant_overrides(
    f: &mut Fields<'_>,
    base: &VagrantBoxSettings,
) -> BTreeMap<String, VagrantBoxSettings> {
    let mut out = BTreeMap::new();
    let Some(node) = f.raw("override") else {
        return out;
    };
    let Some(providers) = node.as_object() else {
        f.error_at(
            node.span,
            format!(
                "override: expected an object of provider: settings, e.g. {{\"virtualbox\": {{\"compression_level\": 9}}}}, found {}",
                node.kind()
            ),
        );
        return out;
    };
    for p in providers {
        if !VAGRANT_PROVIDERS.contains(&p.key.as_str()) {
            let hint = crate::template::diagnostic::did_you_mean(
                &p.key,
                VAGRANT_PROVIDERS.iter().copied(),
            )
            .map(|s| format!("did you mean `{s}`?"))
            .unwrap_or_else(|| format!("the providers are {}", VAGRANT_PROVIDERS.join(", ")));
            f.error_at(
                p.key_span,
                format!("override: `{}` is not a Vagrant provider", p.key),
            )
            .hint = Some(hint);
            continue;
        }
        if p.value.as_object().is_none() {
            f.error_at(
                p.value.span,
                format!(
                    "override.{}: expected an object of the vagrant post-processor's keys, found {}",
                    p.key,
                    p.value.kind()
                ),
            );
            continue;
        }
        let path = format!("{} override.{}", f.path(), p.key);
        let settings = f.nested(path, &p.value, |o| {
            for key in ["keep_input_artifact", "provider_override", "override"] {
                if let Some(span) = o.raw(key).map(|n| n.span) {
                    o.error_at(
                        span,
                        format!(
                            "`{key}` cannot be set per provider; `override` may set {}",
                            VAGRANT_OVERRIDE_KEYS.join(", ")
                        ),
                    );
                }
            }
            decode_vagrant_settings(o, Some(base))
        });
        if let Some(settings) = settings {
            out.insert(p.key.clone(), settings);
        }
    }
    out
}

impl PostProcessorKind {
    pub fn decode(type_name: &str, f: &mut Fields<'_>) -> Option<Self> {
        f.skip(&["type", "name", "only", "except", "keep_input_artifact"]);
        match type_name {
            "vagrant" => {
                let settings = decode_vagrant_settings(f, None);
                let provider_override = f.one_of("provider_override", VAGRANT_PROVIDERS);
                let overrides = settings
                    .as_ref()
                    .map(|base| decode_vagrant_overrides(f, base))
                    .unwrap_or_default();
                Some(Self::Vagrant(VagrantConfig {
                    settings: settings?,
                    provider_override,
                    overrides,
                }))
            }
            "checksum" => {
                let types = f
                    .string_list("checksum_types")
                    .unwrap_or_else(|| vec!["md5".into()]);
                for t in &types {
                    if !CHECKSUM_TYPES.contains(&t.as_str()) {
                        let span = f.span_of("checksum_types").unwrap_or_default();
                        f.error_at(
                            span,
                            format!(
                                "checksum_types: `{t}` is not one of {}",
                                CHECKSUM_TYPES.join(", ")
                            ),
                        );
                    }
                }
                let output = f
                    .deferred("output", &["BuildName", "BuilderType", "ChecksumType"])
                    .or_else(|| {
                        deferred_default(
                            "packer_{{.BuildName}}_{{.BuilderType}}_{{.ChecksumType}}.checksum",
                        )
                    });
                Some(Self::Checksum(ChecksumConfig {
                    checksum_types: types,
                    output: output?,
                }))
            }
            "manifest" => {
                let old = f.renamed_string("filename", "output");
                let output = f
                    .string("output")
                    .filter(|s| !s.is_empty())
                    .or(old)
                    .unwrap_or_else(|| "packer-manifest.json".into());
                Some(Self::Manifest(ManifestConfig {
                    output,
                    build_name: f.context().build_name().map(str::to_owned),
                    strip_path: f.bool("strip_path").unwrap_or(false),
                    strip_time: f.bool("strip_time").unwrap_or(false),
                    custom_data: f.string_map("custom_data").unwrap_or_default(),
                }))
            }
            "compress" => {
                let output = f
                    .deferred("output", &["BuildName", "BuilderType"])
                    .or_else(|| deferred_default("packer_{{.BuildName}}_{{.BuilderType}}.tar.gz"));
                let format = f.string("format").filter(|s| !s.is_empty());
                let compression_level = level(f);
                Some(Self::Compress(CompressConfig {
                    output: output?,
                    format,
                    compression_level,
                }))
            }
            "shell-local" => decode_shell_local(f).map(Self::ShellLocal),
            "amazon-import" => decode_amazon_import(f).map(|c| Self::AmazonImport(Box::new(c))),
            "googlecompute-import" => {
                decode_googlecompute_import(f).map(|c| Self::GoogleComputeImport(Box::new(c)))
            }
            "googlecompute-export" => {
                decode_googlecompute_export(f).map(|c| Self::GoogleComputeExport(Box::new(c)))
            }
            _ => None,
        }
    }
}
