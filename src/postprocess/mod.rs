//! Post-processors at run time: each chain of the template starts from the
//! builder's artifact and hands every step the previous step's artifact,
//! deleting inputs that are not kept, exactly as Packer's core does.
//!
//! Keep rules (Packer's `build.go`): every post-processor returns a default
//! "keep my input" and whether that default is forced. `keep_input_artifact`
//! overrides the default unless the default is a forced `true`
//! (checksum, manifest and shell-local force it; vagrant forces it only for
//! cloud providers). A step's input is deleted after the step succeeds
//! unless kept; the builder's artifact is deleted once every chain has run
//! unless the first step of some chain keeps it or there are no chains.
//! One difference from Packer, on purpose: when any step fails, the
//! builder's artifact and the failed step's input are never deleted, so a
//! failure never costs the user the image they just built.

mod amazon_import;
mod checksum;
mod compress;
mod convert_disk;
mod google_session;
mod googlecompute_export;
mod googlecompute_import;
mod manifest;
pub mod pgzip;
mod shell_local;
mod vagrant;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::artifact::Artifact;
use crate::config::decode::Deferred;
use crate::config::post_processor::{PostProcessor, PostProcessorKind};
use crate::template::interp::{Context, InterpError};
use crate::template::render_env::RenderEnv;
use crate::ui::Reporter;

pub use checksum::checksum_line;
pub use compress::{Codec, Entry, Format, pack};
pub use manifest::{Manifest, ManifestBuild, ManifestFile};
/// The builder ids of the artifacts post-processors make (the summary
/// describes each kind as Packer does).
pub use {
    amazon_import::BUILDER_ID as AMAZON_IMPORT_BUILDER_ID,
    checksum::BUILDER_ID as CHECKSUM_BUILDER_ID, compress::BUILDER_ID as COMPRESS_BUILDER_ID,
    vagrant::BUILDER_ID as VAGRANT_BUILDER_ID,
};

/// What post-processors know about the build and run they belong to.
#[derive(Clone)]
pub struct PostProcessContext {
    /// The full build name, for output lines; `.BuildName` is `render`'s
    /// `packer_build_name`.
    pub build: String,
    /// The build's render environment; relative outputs are resolved
    /// against its `pwd`, as Packer resolves them against its working
    /// directory.
    pub render: Arc<RenderEnv>,
    pub reporter: Arc<dyn Reporter>,
    pub cancel: CancellationToken,
    /// The environment post-processors read (AWS credentials, profiles
    /// and endpoints); `None` is kiln's own. Tests pass theirs here
    /// rather than changing the process's.
    pub env: Option<Arc<BTreeMap<String, String>>>,
}

impl PostProcessContext {
    /// Renders an output template with this place's fields (`.BuildName`,
    /// `.Provider`, …) and resolves a relative result against `pwd`.
    fn render_path(
        &self,
        key: &str,
        deferred: &Deferred,
        data: &BTreeMap<String, String>,
    ) -> Result<PathBuf, PostProcessError> {
        let text = self.render(key, deferred.source(), deferred, data)?;
        Ok(self.resolve(Path::new(&text)))
    }

    fn render(
        &self,
        key: &str,
        source: &str,
        deferred: &Deferred,
        data: &BTreeMap<String, String>,
    ) -> Result<String, PostProcessError> {
        deferred
            .template
            .render(&self.interp_context(data))
            .map_err(|e| PostProcessError::Render {
                key: key.to_owned(),
                text: source.to_owned(),
                source: e,
            })
    }

    fn interp_context<'a>(&'a self, data: &'a BTreeMap<String, String>) -> Context<'a> {
        self.render.context(data)
    }

    /// `.BuildName` and `.BuilderType`, the fields every output template
    /// of a post-processor may read.
    fn build_data(&self) -> BTreeMap<String, String> {
        [
            ("BuildName", self.render.packer_build_name()),
            ("BuilderType", self.render.build_type()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// An environment variable, from `env` when it is given.
    fn env_var(&self, key: &str) -> Option<String> {
        match &self.env {
            Some(map) => map.get(key).cloned(),
            None => std::env::var(key).ok(),
        }
    }

    fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.render.pwd().join(path)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PostProcessError {
    #[error("post-processor {path}")]
    Step {
        path: String,
        type_name: String,
        #[source]
        source: Box<PostProcessError>,
    },
    #[error("{key}: cannot render `{text}`")]
    Render {
        key: String,
        text: String,
        #[source]
        source: InterpError,
    },
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Unsupported(String),
    /// An archive read as input (an OVA) that kiln will not take apart.
    #[error("{}: {problem}", archive.display())]
    BadArchive { archive: PathBuf, problem: String },
    #[error(transparent)]
    Corrupt(Box<crate::artifact::ovf::DigestMismatch>),
    #[error("shell-local failed")]
    ShellLocal(#[source] crate::provision::ProvisionError),
    #[error("manifest {}: existing file is not a Packer manifest", path.display())]
    ManifestParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("amazon-import")]
    AmazonImport(#[source] Box<amazon_import::ImportError>),
    #[error("googlecompute-import")]
    GoogleComputeImport(#[source] Box<googlecompute_import::ImportError>),
    #[error("googlecompute-export")]
    GoogleComputeExport(#[source] Box<googlecompute_export::ExportError>),
    #[error("interrupted")]
    Cancelled,
}

/// An OVA that cannot be read fails the post-processor with the same
/// words.
impl From<crate::artifact::ovf::OvaReadError> for PostProcessError {
    fn from(e: crate::artifact::ovf::OvaReadError) -> Self {
        use crate::artifact::ovf::OvaReadError;
        match e {
            OvaReadError::Bad { archive, problem } => Self::BadArchive { archive, problem },
            OvaReadError::Corrupt(mismatch) => Self::Corrupt(mismatch),
            OvaReadError::Io { what, path, source } => Self::Io { what, path, source },
        }
    }
}

impl PostProcessError {
    fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| Self::Io { what, path, source }
    }

    /// True when the error (or its cause) is a cancellation.
    pub fn is_cancelled(&self) -> bool {
        match self {
            Self::Cancelled => true,
            Self::Step { source, .. } => source.is_cancelled(),
            _ => false,
        }
    }
}

/// What one post-processor returned: its artifact and Packer's
/// `(keep, mustKeep)` pair for its input.
struct StepOutput {
    artifact: Artifact,
    keep_default: bool,
    force_keep: bool,
}

/// Packer's rule: the user's `keep_input_artifact` wins unless the
/// post-processor's default is a forced `true`.
pub fn effective_keep(user: Option<bool>, keep_default: bool, force_keep: bool) -> bool {
    match user {
        Some(false) if keep_default && force_keep => true,
        Some(user) => user,
        None => keep_default,
    }
}

/// Runs every chain on the builder's artifact and returns the artifacts
/// left at the end, the builder's first when it is kept (Packer's order).
/// Every chain runs even when one fails; the first failure is returned and
/// the others are reported as warnings.
pub async fn run_chains(
    chains: &[Vec<PostProcessor>],
    artifact: Artifact,
    ctx: &PostProcessContext,
) -> Result<Vec<Artifact>, PostProcessError> {
    let mut keep_original = chains.iter().all(Vec::is_empty);
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for chain in chains {
        if ctx.cancel.is_cancelled() {
            errors.push(PostProcessError::Cancelled);
            break;
        }
        let mut prior = artifact.clone();
        let mut failed = false;
        for (index, pp) in chain.iter().enumerate() {
            let label = format!("post-processor {}", pp.path);
            ctx.reporter.step_started(&ctx.build, &label);
            let started = std::time::Instant::now();
            let out = run_one(pp, &prior, ctx)
                .await
                .map_err(|e| PostProcessError::Step {
                    path: pp.path.clone(),
                    type_name: pp.type_name.clone(),
                    source: Box::new(e),
                });
            ctx.reporter
                .step_finished(&ctx.build, &label, started.elapsed(), out.is_ok());
            let out = match out {
                Ok(out) => out,
                Err(e) => {
                    // The failed step's input and the builder's artifact stay.
                    keep_original = true;
                    if index > 0 && !same_artifact(&prior, &artifact) {
                        results.push(prior.clone());
                    }
                    errors.push(e);
                    failed = true;
                    break;
                }
            };
            let keep = effective_keep(pp.keep_input_artifact, out.keep_default, out.force_keep);
            let passthrough = same_artifact(&out.artifact, &prior);
            // After a pass-through first step (manifest, shell-local) the
            // input is still the builder's artifact: the same rule applies.
            if index == 0 || same_artifact(&prior, &artifact) {
                keep_original |= keep || passthrough;
            } else if keep {
                if !passthrough {
                    results.push(prior.clone());
                }
            } else if !passthrough {
                destroy(&prior, ctx);
            }
            prior = out.artifact;
        }
        if !failed && !chain.is_empty() && !(same_artifact(&prior, &artifact)) {
            results.push(prior);
        }
    }
    if keep_original {
        results.insert(0, artifact);
    } else {
        destroy(&artifact, ctx);
    }
    let mut errors = errors.into_iter();
    match errors.next() {
        None => Ok(results),
        Some(first) => {
            for other in errors {
                ctx.reporter.warn(
                    &ctx.build,
                    &crate::error_chain::error_chain(&other, ": ").replace('\n', ": "),
                );
            }
            Err(first)
        }
    }
}

/// Manifest and shell-local hand their input on unchanged: it must be
/// neither deleted nor listed twice.
fn same_artifact(a: &Artifact, b: &Artifact) -> bool {
    a.builder_id == b.builder_id && a.files == b.files && a.id == b.id
}

async fn run_one(
    pp: &PostProcessor,
    input: &Artifact,
    ctx: &PostProcessContext,
) -> Result<StepOutput, PostProcessError> {
    match &pp.kind {
        PostProcessorKind::Checksum(c) => checksum::run(c, input, ctx).await,
        PostProcessorKind::Manifest(c) => manifest::run(c, input, ctx).await,
        PostProcessorKind::Compress(c) => compress::run(c, input, ctx).await,
        PostProcessorKind::Vagrant(c) => vagrant::run(c, input, ctx).await,
        PostProcessorKind::ShellLocal(c) => shell_local::run(c, input, ctx).await,
        PostProcessorKind::AmazonImport(c) => amazon_import::run(c, input, ctx).await,
        PostProcessorKind::GoogleComputeImport(c) => googlecompute_import::run(c, input, ctx).await,
        PostProcessorKind::GoogleComputeExport(c) => googlecompute_export::run(c, input, ctx).await,
    }
}

/// Deletes an artifact that is not kept: its files, then their directory
/// when that is left empty (the builder's output directory). Failures are
/// warnings, as in Packer: the build itself succeeded. An artifact without
/// files (a GCE image, an AMI) is kept, and the user is told so: kiln does
/// not delete cloud resources (README, differences from Packer).
fn destroy(artifact: &Artifact, ctx: &PostProcessContext) {
    // The null builder made nothing: there is nothing to delete or keep.
    if artifact.builder_id == crate::artifact::ids::NULL {
        return;
    }
    if artifact.files.is_empty() {
        ctx.reporter.info(
            &ctx.build,
            &format!(
                "Keeping input artifact {}: kiln does not delete cloud images (Packer does unless keep_input_artifact is true); delete it yourself if it is not wanted",
                artifact.id
            ),
        );
        return;
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    for file in &artifact.files {
        match std::fs::remove_file(file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => ctx.reporter.warn(
                &ctx.build,
                &format!("cannot delete input artifact file {}: {e}", file.display()),
            ),
        }
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty())
            && !dirs.iter().any(|d| d == parent)
        {
            dirs.push(parent.to_owned());
        }
    }
    for dir in dirs {
        if dir != ctx.render.pwd() {
            // Only succeeds when empty: never removes anything else.
            let _ = std::fs::remove_dir(&dir);
        }
    }
    ctx.reporter.info(
        &ctx.build,
        &format!("Deleted input artifact {}", artifact.id),
    );
}

/// Runs blocking work (hashing, packing) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PostProcessError> + Send + 'static,
) -> Result<T, PostProcessError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        PostProcessError::Unsupported(format!("a post-processor task ended abnormally: {e}"))
    })?
}

/// A reader that reports progress and stops when the build is cancelled.
struct WatchedReader<R> {
    inner: R,
    cancel: CancellationToken,
    progress: Arc<dyn crate::ui::Progress>,
    position: u64,
}

impl<R: std::io::Read> std::io::Read for WatchedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(cancelled_io());
        }
        let n = self.inner.read(buf)?;
        self.position += n as u64;
        self.progress.set_position(self.position);
        Ok(n)
    }
}

/// The io::Error a cancelled read or write returns (not `Interrupted`,
/// which `read_exact`/`write_all` retry).
fn cancelled_io() -> std::io::Error {
    std::io::Error::other("interrupted")
}

/// Maps an I/O failure to `Cancelled` when the build was cancelled.
fn io_or_cancel(
    cancel: &CancellationToken,
    what: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> PostProcessError {
    let cancelled = cancel.clone();
    let path = path.to_owned();
    move |source| {
        if cancelled.is_cancelled() {
            PostProcessError::Cancelled
        } else {
            PostProcessError::Io { what, path, source }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file-less artifact (a cloud image) that is not kept is not
    /// reported as deleted: kiln cannot delete it, and says so.
    #[test]
    fn a_cloud_image_not_kept_is_reported_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reporter = Arc::new(crate::ui::RecordingReporter::new());
        let ctx = PostProcessContext {
            build: "gce".into(),
            render: RenderEnv::single_build("gce", "googlecompute", dir.path()),
            reporter: reporter.clone(),
            cancel: CancellationToken::new(),
            env: None,
        };
        let image = Artifact::files_only(
            crate::artifact::ids::GOOGLECOMPUTE,
            "gce",
            "googlecompute",
            "reddit-base-1",
            Vec::new(),
        );
        destroy(&image, &ctx);
        let said = format!("{:?}", reporter.events());
        assert!(
            said.contains(
                "Keeping input artifact reddit-base-1: kiln does not delete cloud images"
            ),
            "{said}"
        );
        assert!(!said.contains("Deleted"), "{said}");

        let file = dir.path().join("out/disk.qcow2");
        std::fs::create_dir(dir.path().join("out")).expect("mkdir");
        std::fs::write(&file, b"disk").expect("write");
        let disk = Artifact::files_only(
            crate::artifact::ids::QEMU,
            "gce",
            "qemu",
            "disk",
            vec![file.clone()],
        );
        destroy(&disk, &ctx);
        assert!(!file.exists() && !dir.path().join("out").exists());
        assert!(format!("{:?}", reporter.events()).contains("Deleted input artifact disk"));
    }

    #[test]
    fn keep_follows_packer() {
        // No user setting: the post-processor's default.
        assert!(!effective_keep(None, false, false));
        assert!(effective_keep(None, true, true));
        // The user overrides an unforced default either way.
        assert!(effective_keep(Some(true), false, false));
        assert!(!effective_keep(Some(false), true, false));
        // A forced keep ignores keep_input_artifact: false.
        assert!(effective_keep(Some(false), true, true));
    }
}
