//! `manifest`: appends this build's artifact to a Packer-compatible
//! `packer-manifest.json` (same field names, so tools that read Packer's
//! manifest read kiln's). The existing file is read, the build added and
//! the whole written to a temporary file renamed over the old one; builds
//! of one run write one after another (a process-wide lock).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{PostProcessContext, PostProcessError, StepOutput};
use crate::artifact::Artifact;
use crate::config::post_processor::ManifestConfig;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(default)]
    pub builds: Vec<ManifestBuild>,
    #[serde(default)]
    pub last_run_uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestBuild {
    pub name: String,
    pub builder_type: String,
    /// Unix seconds; omitted with `strip_time`, as Go's `omitempty` does.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub build_time: i64,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub files: Vec<ManifestFile>,
    #[serde(default)]
    pub artifact_id: String,
    #[serde(default)]
    pub packer_run_uuid: String,
    /// `null` when the template sets none, as Packer writes it.
    #[serde(default)]
    pub custom_data: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub name: String,
    pub size: u64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ManifestFile>, D::Error> {
    Ok(Option::<Vec<ManifestFile>>::deserialize(d)?.unwrap_or_default())
}

static WRITE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(super) async fn run(
    c: &ManifestConfig,
    input: &Artifact,
    ctx: &PostProcessContext,
) -> Result<StepOutput, PostProcessError> {
    let path = ctx.resolve(Path::new(&c.output));
    let files = input
        .files
        .iter()
        .map(|f| {
            let size = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
            let name = if c.strip_path {
                f.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            } else {
                f.display().to_string()
            };
            ManifestFile { name, size }
        })
        .collect();
    let build_time = if c.strip_time {
        0
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    };
    let build = ManifestBuild {
        name: c
            .build_name
            .clone()
            .unwrap_or_else(|| ctx.render.packer_build_name().to_owned()),
        builder_type: ctx.render.build_type().to_owned(),
        build_time,
        files,
        artifact_id: input.id.clone(),
        packer_run_uuid: ctx.render.run_uuid().to_owned(),
        custom_data: (!c.custom_data.is_empty()).then(|| c.custom_data.clone()),
    };
    let _guard = WRITE_LOCK.lock().await;
    append(&path, build, ctx.render.run_uuid())?;
    ctx.reporter.info(
        &ctx.build,
        &format!("Manifest written to {}", path.display()),
    );
    Ok(StepOutput {
        artifact: input.clone(),
        keep_default: true,
        force_keep: true,
    })
}

/// Reads the manifest at `path` (if any), adds `build` and writes it back
/// atomically.
pub fn append(path: &Path, build: ManifestBuild, run_uuid: &str) -> Result<(), PostProcessError> {
    let mut manifest = match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Manifest::default(),
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|source| PostProcessError::ManifestParse {
                path: path.to_owned(),
                source,
            })?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
        Err(e) => {
            return Err(PostProcessError::Io {
                what: "cannot read",
                path: path.to_owned(),
                source: e,
            });
        }
    };
    manifest.builds.push(build);
    manifest.last_run_uuid = run_uuid.to_owned();
    let mut text = serde_json::to_vec_pretty(&manifest).map_err(|e| PostProcessError::Io {
        what: "cannot encode",
        path: path.to_owned(),
        source: e.into(),
    })?;
    text.push(b'\n');
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(PostProcessError::io("cannot create", &dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".packer-manifest.")
        .tempfile_in(&dir)
        .map_err(PostProcessError::io(
            "cannot create a temporary file in",
            &dir,
        ))?;
    use std::io::Write;
    tmp.write_all(&text)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(PostProcessError::io("cannot write", tmp.path()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644));
    }
    tmp.persist(path).map_err(|e| PostProcessError::Io {
        what: "cannot replace",
        path: path.to_owned(),
        source: e.error,
    })?;
    Ok(())
}
