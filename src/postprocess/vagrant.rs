//! `vagrant`: a Vagrant box (a `.tar.gz` with `metadata.json`, a
//! `Vagrantfile` and the provider's disk files) from a builder's artifact.
//!
//! - libvirt, from a qcow2 (`transcend.qemu`): `box.img`, `metadata.json`
//!   with the disk's virtual size in GiB (rounded up, read from the qcow2
//!   header), a Vagrantfile setting the libvirt driver and, when the
//!   artifact knows them, cpus and memory.
//! - virtualbox, from an OVF and its disks or from an OVA
//!   (`mitchellh.virtualbox`, or any artifact with a `.ovf` or `.ova`): the
//!   OVF as `box.ovf` (Vagrant looks for that name), the disks under their
//!   own names (the OVF refers to them), and `config.vm.base_mac` from the
//!   OVF's first NIC. An OVF manifest (`.mf`) is left out: it names the
//!   OVF's old file name, so it would no longer verify. An OVA's manifest
//!   is checked instead, as its members are copied
//!   ([`crate::artifact::ovf::read_ova`]).
//!
//! The box is streamed straight from the artifact's files (and out of an
//! OVA, never unpacked) into a parallel gzip ([`super::pgzip`]) under a
//! temporary name beside the output and renamed when complete; a failure or
//! interruption leaves nothing.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use super::compress::{self, Codec, Entry, Format};
use super::{PostProcessContext, PostProcessError, StepOutput, blocking};
use crate::artifact::ovf::read_ova;
use crate::artifact::{Artifact, Package, ids};
use crate::config::post_processor::VagrantConfig;
use crate::vm::ImageFormat;

pub const BUILDER_ID: &str = ids::VAGRANT;

/// Providers whose boxes only point at a cloud image: Packer always keeps
/// their input, or the box would be useless.
const CLOUD_PROVIDERS: &[&str] = &["aws", "azure", "digitalocean", "google", "scaleway"];

const GIB: u64 = 1 << 30;

/// The provider for an artifact, as Packer maps builder ids to providers.
pub fn provider_for(input: &Artifact, over: Option<&str>) -> Result<String, PostProcessError> {
    if let Some(p) = over {
        return Ok(p.to_owned());
    }
    match input.builder_id {
        // kiln's qemu builder exports an OVA/OVF only when `format` asks:
        // such a package is a VirtualBox box, not a libvirt one.
        ids::QEMU if input.package.is_some() => Ok("virtualbox".into()),
        ids::QEMU => Ok("libvirt".into()),
        ids::VIRTUALBOX => Ok("virtualbox".into()),
        _ if input.package.is_some() => Ok("virtualbox".into()),
        _ if input.disk(ImageFormat::Qcow2).is_some() => Ok("libvirt".into()),
        other => Err(PostProcessError::Unsupported(format!(
            "vagrant: no Vagrant provider for artifacts of `{other}`; set provider_override"
        ))),
    }
}

/// What a box holds besides `metadata.json`, plus its Vagrantfile part.
struct BoxPlan {
    entries: Vec<Entry>,
    metadata: serde_json::Value,
    vagrantfile: String,
}

/// The gzip level of a box whose template sets no `compression_level`.
/// Packer's default is 6, with its Go compressor (klauspost). kiln's
/// compressor (zlib-rs) at level 5 still makes a smaller box than Packer's
/// at 6, with 17 % less CPU than its own level 6: on a Debian 12 disk
/// (881 MiB qcow2, bench/box.sh) levels 4/5/6 took 14.9/16.0/19.0 CPU
/// seconds for 311.0/306.1/305.5 MB, Packer's box was 310.4 MB. An explicit
/// `compression_level` is used as given.
const BOX_DEFAULT_LEVEL: u32 = 5;

fn libvirt_plan(input: &Artifact) -> Result<BoxPlan, PostProcessError> {
    let disk = input.disk(ImageFormat::Qcow2).ok_or_else(|| {
        PostProcessError::Unsupported(
            "vagrant (libvirt): the artifact has no qcow2 disk; set \"format\": \"qcow2\" in the builder"
                .into(),
        )
    })?;
    let bytes = match disk.virtual_size {
        Some(bytes) => bytes,
        None => qcow2_virtual_size(&disk.path)?,
    };
    let gib = bytes.div_ceil(GIB).max(1);
    let mut settings = String::new();
    if let Some(machine) = &input.machine {
        // Packer's rule: a guest built under emulation gets libvirt's
        // `qemu` domain, which starts on hosts without KVM.
        let driver = match machine.accelerator {
            Some(accelerator) if accelerator.is_emulated() => "qemu",
            _ => "kvm",
        };
        settings.push_str(&format!("    libvirt.driver = \"{driver}\"\n"));
        settings.push_str(&format!("    libvirt.cpus = {}\n", machine.cpus));
        settings.push_str(&format!("    libvirt.memory = {}\n", machine.memory_mib));
    } else {
        settings.push_str("    libvirt.driver = \"kvm\"\n");
    }
    Ok(BoxPlan {
        entries: vec![Entry::File {
            name: "box.img".into(),
            path: disk.path.clone(),
        }],
        metadata: serde_json::json!({
            "provider": "libvirt",
            "format": "qcow2",
            "virtual_size": gib,
        }),
        vagrantfile: format!(
            "Vagrant.configure(\"2\") do |config|\n  config.vm.provider :libvirt do |libvirt|\n{settings}  end\nend\n"
        ),
    })
}

/// The virtual size in the qcow2 header (big-endian u64 at byte 24).
pub fn qcow2_virtual_size(path: &Path) -> Result<u64, PostProcessError> {
    let mut header = [0u8; 32];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(PostProcessError::io(
            "cannot read the qcow2 header of",
            path,
        ))?;
    if &header[..4] != b"QFI\xfb" {
        return Err(PostProcessError::Unsupported(format!(
            "vagrant (libvirt): {} is not a qcow2 image",
            path.display()
        )));
    }
    let mut size = [0u8; 8];
    size.copy_from_slice(&header[24..32]);
    Ok(u64::from_be_bytes(size))
}

fn virtualbox_plan(input: &Artifact) -> Result<BoxPlan, PostProcessError> {
    let Some(package) = &input.package else {
        return Err(PostProcessError::Unsupported(
            "vagrant (virtualbox): the artifact has no OVF or OVA; set \"format\": \"ova\" (qemu) or keep the export (virtualbox-iso)"
                .into(),
        ));
    };
    let (descriptor, mut entries) = match package {
        Package::Ovf { descriptor, .. } => {
            let text = std::fs::read_to_string(descriptor)
                .map_err(PostProcessError::io("cannot read", descriptor))?;
            let entries = vec![Entry::File {
                name: "box.ovf".into(),
                path: descriptor.clone(),
            }];
            (text, entries)
        }
        Package::Ova(ova) => {
            let package = read_ova(ova)?;
            let mut entries = vec![Entry::Bytes {
                name: "box.ovf".into(),
                data: package.descriptor.clone().into_bytes(),
            }];
            if !package.members.is_empty() {
                let members = package
                    .members
                    .into_iter()
                    .map(|m| compress::Member {
                        source: m.name.clone(),
                        name: m.name,
                        size: m.size,
                        digest: m.digest,
                    })
                    .collect();
                entries.push(Entry::Members {
                    archive: ova.clone(),
                    members,
                });
            }
            (package.descriptor, entries)
        }
    };
    // The disks beside an OVF, under their own names (the OVF refers to
    // them); its manifest is left out (it names the OVF's old name).
    let own = package.own_files();
    for f in input.files.iter().filter(|f| !own.contains(&f.as_path())) {
        entries.push(Entry::File {
            name: base_name(f),
            path: f.clone(),
        });
    }
    let mac = base_mac(&descriptor).unwrap_or_else(|| derived_mac(&descriptor));
    let mac = format!("  config.vm.base_mac = \"{mac}\"\n");
    Ok(BoxPlan {
        entries,
        metadata: serde_json::json!({ "provider": "virtualbox" }),
        vagrantfile: format!("Vagrant.configure(\"2\") do |config|\n{mac}end\n"),
    })
}

/// The first `MACAddress="…"` in an OVF (VirtualBox's own section), as
/// Packer reads it: twelve hex digits.
pub fn base_mac(ovf: &str) -> Option<String> {
    let key = "MACAddress=\"";
    let mut rest = ovf;
    while let Some(at) = rest.find(key) {
        let value = &rest[at + key.len()..];
        let end = value.find('"')?;
        let mac: String = value[..end].chars().filter(|c| *c != ':').collect();
        if mac.len() == 12 && mac.chars().all(|c| c.is_ascii_hexdigit()) {
            return Some(mac.to_ascii_uppercase());
        }
        rest = &value[end..];
    }
    None
}

/// A base MAC for a descriptor that names none (kiln's own OVF has no
/// VirtualBox section): VirtualBox's 08:00:27 prefix and three bytes of
/// the descriptor's SHA-256, so a rebuilt box keeps its MAC. Older Vagrant
/// releases refuse to start a VirtualBox box without `base_mac`.
pub fn derived_mac(ovf: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(ovf.as_bytes());
    format!("080027{:02X}{:02X}{:02X}", digest[0], digest[1], digest[2])
}

fn base_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Packer's box Vagrantfile: the provider's part, then the template's.
fn box_vagrantfile(provider_part: &str, custom: &str) -> String {
    format!(
        "# The contents below were provided by the kiln Vagrant post-processor\n{provider_part}\n# The contents below (if any) are custom contents provided by the\n# template during image build.\n{custom}\n"
    )
}

pub(super) async fn run(
    c: &VagrantConfig,
    input: &Artifact,
    ctx: &PostProcessContext,
) -> Result<StepOutput, PostProcessError> {
    // Packer fails too (no provider for its id); with provider_override
    // the box plans would blame the builder's disk format instead.
    if input.builder_id == ids::NULL {
        return Err(PostProcessError::Unsupported(
            "vagrant: the null builder made no files, so there is nothing to put in a box".into(),
        ));
    }
    let provider = provider_for(input, c.provider_override.as_deref())?;
    // `override` applies to the provider the box is made for.
    let s = c.settings_for(&provider);
    let mut data = BTreeMap::new();
    data.insert(
        "BuildName".to_owned(),
        ctx.render.packer_build_name().to_owned(),
    );
    data.insert("Provider".to_owned(), provider.clone());
    data.insert("ArtifactId".to_owned(), input.id.clone());
    let output = ctx.render_path("output", &s.output, &data)?;
    let plan = match provider.as_str() {
        "libvirt" => libvirt_plan(input)?,
        "virtualbox" => virtualbox_plan(input)?,
        other => {
            return Err(PostProcessError::Unsupported(format!(
                "vagrant: kiln cannot make `{other}` boxes yet (libvirt and virtualbox only)"
            )));
        }
    };
    let custom = match &s.vagrantfile_template {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(PostProcessError::io("cannot read", path))?;
            let source = path.display().to_string();
            let template =
                crate::template::interp::parse(&text).map_err(|e| PostProcessError::Render {
                    key: "vagrantfile_template".into(),
                    text: source.clone(),
                    source: e,
                })?;
            template
                .render(&ctx.interp_context(&data))
                .map_err(|e| PostProcessError::Render {
                    key: "vagrantfile_template".into(),
                    text: source,
                    source: e,
                })?
        }
        None => String::new(),
    };
    let mut entries = plan.entries;
    for extra in &s.include {
        entries.push(Entry::File {
            name: base_name(extra),
            path: extra.clone(),
        });
    }
    let metadata = serde_json::to_vec_pretty(&plan.metadata)
        .map_err(|e| PostProcessError::Unsupported(format!("metadata.json: {e}")))?;
    entries.push(Entry::Bytes {
        name: "metadata.json".into(),
        data: metadata,
    });
    entries.push(Entry::Bytes {
        name: "Vagrantfile".into(),
        data: box_vagrantfile(&plan.vagrantfile, &custom).into_bytes(),
    });
    ctx.reporter.info(
        &ctx.build,
        &format!("Creating a {provider} Vagrant box at {}", output.display()),
    );
    let level = s.compression_level.unwrap_or(BOX_DEFAULT_LEVEL);
    let progress: Arc<dyn crate::ui::Progress> = Arc::from(ctx.reporter.progress(
        &ctx.build,
        "box",
        Some(compress::total_size(&entries)),
    ));
    let cancel = ctx.cancel.clone();
    let out = output.clone();
    let bar = progress.clone();
    let mtime = ctx.render.init_time();
    let format = Format {
        tar: true,
        codec: Codec::Gzip,
    };
    blocking(move || compress::pack(&entries, &out, format, level, mtime, &cancel, &bar)).await?;
    progress.finish("packed");
    let cloud = CLOUD_PROVIDERS.contains(&provider.as_str());
    let mut artifact = Artifact::files_only(
        BUILDER_ID,
        &input.build_name,
        &input.build_type,
        provider.clone(),
        vec![output],
    );
    artifact.state.insert("provider".to_owned(), provider);
    Ok(StepOutput {
        artifact,
        keep_default: cloud,
        force_keep: cloud,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::Disk;

    #[test]
    fn base_mac_is_read_from_the_ovf() {
        let ovf = r#"<Network><Adapter slot="0" enabled="true" MACAddress="080027AbCdEf" type="82540EM"/>"#;
        assert_eq!(base_mac(ovf).as_deref(), Some("080027ABCDEF"));
        assert_eq!(base_mac("<Envelope/>"), None);
        let derived = derived_mac("<Envelope/>");
        assert_eq!(derived, derived_mac("<Envelope/>"), "stable");
        assert_ne!(derived, derived_mac("<Envelope></Envelope>"));
        assert!(derived.starts_with("080027") && derived.len() == 12);
        assert!(derived.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn provider_follows_the_builder() {
        let a = |id: &'static str, package: Option<Package>, disks: Vec<Disk>| {
            let mut a = Artifact::files_only(id, "b", "t", "", Vec::new());
            a.package = package;
            a.disks = disks;
            a
        };
        let ova = || Some(Package::Ova("vm.ova".into()));
        let qcow2 = || {
            vec![Disk {
                path: "x".into(),
                format: ImageFormat::Qcow2,
                virtual_size: None,
            }]
        };
        let p = |a: &Artifact| provider_for(a, None).ok();
        assert_eq!(
            p(&a("transcend.qemu", None, qcow2())).as_deref(),
            Some("libvirt")
        );
        assert_eq!(
            p(&a("transcend.qemu", ova(), Vec::new())).as_deref(),
            Some("virtualbox"),
            "a qemu build with format ova"
        );
        assert_eq!(
            p(&a("mitchellh.virtualbox", None, Vec::new())).as_deref(),
            Some("virtualbox")
        );
        assert_eq!(
            p(&a("other", ova(), Vec::new())).as_deref(),
            Some("virtualbox")
        );
        assert_eq!(p(&a("other", None, qcow2())).as_deref(), Some("libvirt"));
        assert_eq!(p(&a("other", None, Vec::new())), None);
    }
}
