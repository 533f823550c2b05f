//! Finding UEFI firmware the way libvirt does: from QEMU's firmware
//! descriptors (`/usr/share/qemu/firmware/*.json`, the interop format QEMU
//! documents in docs/interop/firmware.json), not from fixed paths that
//! differ between distributions. The first matching descriptor in file
//! name order wins (the names carry the distribution's priority).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where distributions install the descriptors.
pub const DESCRIPTOR_DIR: &str = "/usr/share/qemu/firmware";

/// UEFI code and the template of its variable store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UefiFirmware {
    pub code: PathBuf,
    pub vars_template: PathBuf,
    /// The descriptor it came from, for messages.
    pub descriptor: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum FirmwareError {
    #[error("cannot read QEMU's firmware descriptors in {dir}")]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no UEFI firmware for {arch} machine `{machine}` among QEMU's firmware descriptors in {dir}"
    )]
    NotFound {
        dir: PathBuf,
        arch: String,
        machine: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Descriptor {
    #[serde(default)]
    interface_types: Vec<String>,
    mapping: Mapping,
    #[serde(default)]
    targets: Vec<Target>,
    #[serde(default)]
    features: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Mapping {
    device: String,
    executable: Option<FlashFile>,
    nvram_template: Option<FlashFile>,
}

#[derive(Deserialize)]
struct FlashFile {
    filename: PathBuf,
    #[serde(default)]
    format: Option<String>,
}

#[derive(Deserialize)]
struct Target {
    architecture: String,
    #[serde(default)]
    machines: Vec<String>,
}

/// QEMU's machine aliases and the versioned names descriptors list.
fn versioned_machine(machine: &str) -> &str {
    match machine {
        "pc" => "pc-i440fx-",
        "q35" => "pc-q35-",
        other => other,
    }
}

/// A descriptor's machine pattern (`pc-q35-*`) against a machine type.
fn machine_matches(pattern: &str, machine: &str) -> bool {
    let machine = versioned_machine(machine);
    match pattern.strip_suffix('*') {
        Some(prefix) => machine.starts_with(prefix) || prefix.starts_with(machine),
        None => pattern == machine,
    }
}

/// The first plain UEFI firmware (no Secure Boot: it needs SMM and
/// enrolled keys, which an installer build does not set up) for `arch`
/// and `machine`, with a raw flash variable store to copy.
pub fn find_uefi(dir: &Path, arch: &str, machine: &str) -> Result<UefiFirmware, FirmwareError> {
    let entries = std::fs::read_dir(dir).map_err(|source| FirmwareError::ReadDir {
        dir: dir.to_owned(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    for path in paths {
        // A descriptor that cannot be read or parsed is skipped, as QEMU's
        // other consumers do: one bad file must not hide the rest.
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(d) = serde_json::from_str::<Descriptor>(&text) else {
            continue;
        };
        if !d.interface_types.iter().any(|t| t == "uefi")
            || d.mapping.device != "flash"
            || d.features
                .iter()
                .any(|f| f == "secure-boot" || f == "requires-smm" || f == "enrolled-keys")
        {
            continue;
        }
        let fits = d.targets.iter().any(|t| {
            t.architecture == arch && t.machines.iter().any(|m| machine_matches(m, machine))
        });
        let raw = |f: &FlashFile| f.format.as_deref().is_none_or(|x| x == "raw");
        if let (true, Some(code), Some(vars)) =
            (fits, &d.mapping.executable, &d.mapping.nvram_template)
            && raw(code)
            && raw(vars)
        {
            return Ok(UefiFirmware {
                code: code.filename.clone(),
                vars_template: vars.filename.clone(),
                descriptor: path,
            });
        }
    }
    Err(FirmwareError::NotFound {
        dir: dir.to_owned(),
        arch: arch.to_owned(),
        machine: machine.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(code: &str, features: &str, machines: &str) -> String {
        format!(
            r#"{{"interface-types": ["uefi"],
                "mapping": {{"device": "flash",
                  "executable": {{"filename": "{code}", "format": "raw"}},
                  "nvram-template": {{"filename": "/v.fd", "format": "raw"}}}},
                "targets": [{{"architecture": "x86_64", "machines": [{machines}]}}],
                "features": [{features}]}}"#
        )
    }

    #[test]
    fn the_first_plain_uefi_descriptor_for_the_machine_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let write = |n: &str, t: String| std::fs::write(d.join(n), t).expect("write");
        write(
            "40-secure.json",
            descriptor(
                "/secure.fd",
                r#""secure-boot", "requires-smm""#,
                r#""pc-q35-*""#,
            ),
        );
        write(
            "50-q35-only.json",
            descriptor("/q35.fd", "", r#""pc-q35-*""#),
        );
        write(
            "60-plain.json",
            descriptor("/plain.fd", r#""acpi-s3""#, r#""pc-i440fx-*", "pc-q35-*""#),
        );
        write("10-broken.json", "{ not json".into());
        let pc = find_uefi(d, "x86_64", "pc").expect("found");
        assert_eq!(pc.code, PathBuf::from("/plain.fd"));
        assert_eq!(pc.vars_template, PathBuf::from("/v.fd"));
        let q35 = find_uefi(d, "x86_64", "q35").expect("found");
        assert_eq!(q35.code, PathBuf::from("/q35.fd"));
        let e = find_uefi(d, "aarch64", "virt").expect_err("none");
        assert!(
            e.to_string().contains("no UEFI firmware for aarch64"),
            "{e}"
        );
    }

    /// Debian's `ovmf` package, when installed (scripts/bootstrap installs it).
    #[test]
    fn debians_ovmf_is_found_from_its_descriptors() {
        let dir = Path::new(DESCRIPTOR_DIR);
        if !dir.join("60-edk2-x86_64.json").exists() {
            eprintln!("skipped: ovmf is not installed");
            return;
        }
        let fw = find_uefi(dir, "x86_64", "q35").expect("found");
        assert!(fw.code.exists() && fw.vars_template.exists(), "{fw:?}");
        assert!(!fw.code.to_string_lossy().contains("secboot"), "{fw:?}");
    }
}
