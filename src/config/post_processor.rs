//! Post-processors: `vagrant`, `checksum`, `manifest`, `compress`,
//! `shell-local`, each a step of a chain that takes the previous artifact.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::decode::{Deferred, Fields};
use super::provisioner::{ShellLocalConfig, decode_shell_local, resolve_local_path};

pub const POST_PROCESSOR_TYPES: &[&str] =
    &["vagrant", "checksum", "manifest", "compress", "shell-local"];

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

#[derive(Debug, Clone)]
pub struct VagrantConfig {
    pub output: Deferred,
    pub compression_level: Option<u32>,
    pub include: Vec<PathBuf>,
    pub vagrantfile_template: Option<PathBuf>,
    pub vagrantfile_template_generated: bool,
    pub provider_override: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ChecksumConfig {
    pub checksum_types: Vec<String>,
    pub output: Deferred,
}

#[derive(Debug, Clone)]
pub struct ManifestConfig {
    pub output: String,
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

#[derive(Debug, Clone)]
pub enum PostProcessorKind {
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

impl PostProcessorKind {
    pub fn decode(type_name: &str, f: &mut Fields<'_>) -> Option<Self> {
        f.skip(&["type", "name", "only", "except", "keep_input_artifact"]);
        match type_name {
            "vagrant" => {
                let output = f
                    .deferred("output", &["BuildName", "Provider", "ArtifactId"])
                    .or_else(|| deferred_default("packer_{{ .BuildName }}_{{ .Provider }}.box"));
                let compression_level = level(f);
                let include: Vec<PathBuf> = f
                    .string_list("include")
                    .unwrap_or_default()
                    .iter()
                    .map(|p| resolve_local_path(f, p))
                    .collect();
                for p in &include {
                    if !p.exists() {
                        let span = f.span_of("include").unwrap_or_default();
                        f.error_at(span, format!("include: {} does not exist", p.display()));
                    }
                }
                let generated = f.bool("vagrantfile_template_generated").unwrap_or(false);
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
                let provider_override = f.one_of("provider_override", VAGRANT_PROVIDERS);
                if let Some(span) = f.raw("override").map(|n| n.span) {
                    f.error_at(span, "per-provider `override` is not supported by kiln yet");
                }
                Some(Self::Vagrant(VagrantConfig {
                    output: output?,
                    compression_level,
                    include,
                    vagrantfile_template: template,
                    vagrantfile_template_generated: generated,
                    provider_override,
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
            _ => None,
        }
    }
}
