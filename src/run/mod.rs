//! Running builds (the runner, named apart from `builder/` and from build
//! output): the step runner with guaranteed cleanup, `-on-error`
//! policies and cancellation on signals.

pub mod build_key;
pub mod runner;
pub mod signals;
pub mod up_to_date;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::artifact::Artifact;
use crate::config::Build;
use crate::template::render_env::RenderEnv;
use crate::ui::Reporter;
use crate::ui::console::{format_bytes, format_duration};
use runner::{OnError, StepError, StepTiming};

/// What every build needs from the command line and the template.
#[derive(Clone)]
pub struct RunOptions {
    pub force: bool,
    pub on_error: OnError,
    pub debug: bool,
    pub offline: bool,
    /// `-force-install`: ignore (and replace) a matching install checkpoint.
    pub force_install: bool,
    /// False with `KILN_NO_CHECKPOINT=1`: no checkpoint is read or written.
    pub checkpoints: bool,
    /// The run's render environment (variables, directories, start time,
    /// run UUID); inside a build, that build's (with its names).
    pub render: Arc<RenderEnv>,
    /// Why this build's existing output is not up to date (set per build
    /// by the up-to-date check): the output-directory error names it.
    pub stale_because: Option<String>,
}

/// How one build ended.
pub struct BuildResult {
    pub name: String,
    pub artifact: Result<Artifact, StepError>,
    /// What is left after the post-processor chains (the builder's
    /// artifact when there are none).
    pub final_artifacts: Vec<Artifact>,
    pub steps: Vec<StepTiming>,
    pub cancelled: bool,
    /// Set when nothing ran because the last run's artifacts are up to
    /// date: those artifacts, as its build record lists them.
    pub up_to_date: Option<Vec<crate::checkpoint::record::RecordedArtifact>>,
}

impl BuildResult {
    /// Built, or up to date.
    pub fn succeeded(&self) -> bool {
        self.artifact.is_ok() || self.up_to_date.is_some()
    }

    /// Why the build failed, as a class the CLI maps to an exit status;
    /// `None` when it succeeded.
    pub fn failure(&self) -> Option<runner::FailureClass> {
        if self.succeeded() {
            return None;
        }
        if self.cancelled {
            return Some(runner::FailureClass::Interrupted);
        }
        self.artifact.as_ref().err().map(|e| e.class)
    }
}

/// Runs every build, at most `parallel` at once (0 = all), stopping them
/// all cleanly on Ctrl-C / SIGTERM. Results come back in template order.
///
/// `run_builder` runs one build's builder (the CLI passes
/// `builder::run`): builders are made of this module's steps, so the
/// runner takes them as a function instead of importing them, and the two
/// modules do not import each other.
pub async fn run_all<F, Fut>(
    builds: &[Build],
    options: &RunOptions,
    parallel: usize,
    reporter: Arc<dyn Reporter>,
    run_builder: F,
) -> Vec<BuildResult>
where
    F: Fn(Build, RunOptions, Arc<dyn Reporter>, CancellationToken) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = BuildResult> + Send + 'static,
{
    let run_builder = Arc::new(run_builder);
    let cancel = CancellationToken::new();
    let warn = reporter.clone();
    signals::cancel_on_signals(cancel.clone(), move |name| {
        warn.warn("", &format!("{name} received: stopping every build and cleaning up (send it again to exit at once, leaving files behind)"));
    });
    let limit = if parallel == 0 {
        builds.len().max(1)
    } else {
        parallel
    };
    let permits = Arc::new(tokio::sync::Semaphore::new(limit));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, build) in builds.iter().cloned().enumerate() {
        let mut options = options.clone();
        options.render = options.render.for_build(build.names());
        let reporter = reporter.clone();
        let cancel = cancel.clone();
        let permits = permits.clone();
        let run_builder = run_builder.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let key = match up_to_date::check(&build, &mut options, reporter.as_ref()) {
                up_to_date::Before::UpToDate(result) => return (index, *result),
                up_to_date::Before::Run { key } => key,
            };
            let mut result = run_builder(
                build.clone(),
                options.clone(),
                reporter.clone(),
                cancel.clone(),
            )
            .await;
            post_process(&build, &options, reporter.clone(), cancel, &mut result).await;
            if let Some(key) = &key {
                up_to_date::record(&build, &options, key, &result, reporter.as_ref());
            }
            (index, result)
        });
    }
    let mut results: Vec<Option<BuildResult>> = (0..builds.len()).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, result)) => results[index] = Some(result),
            Err(e) => reporter.warn("", &format!("a build task ended abnormally: {e}")),
        }
    }
    results
        .into_iter()
        .zip(builds)
        .map(|(r, b)| {
            r.unwrap_or_else(|| BuildResult {
                name: b.name.clone(),
                artifact: Err(runner::StepError::new(
                    runner::FailureClass::Host,
                    "the build task ended abnormally",
                )),
                final_artifacts: Vec::new(),
                steps: Vec::new(),
                cancelled: false,
                up_to_date: None,
            })
        })
        .collect()
}

/// Runs the build's post-processor chains on its artifact; a failure fails
/// the build (the files made so far are kept and listed).
async fn post_process(
    build: &Build,
    options: &RunOptions,
    reporter: Arc<dyn Reporter>,
    cancel: CancellationToken,
    result: &mut BuildResult,
) {
    let Ok(artifact) = &result.artifact else {
        return;
    };
    if build.post_processors.is_empty() {
        return;
    }
    let ctx = crate::postprocess::PostProcessContext {
        build: build.name.clone(),
        render: options.render.clone(),
        reporter: reporter.clone(),
        cancel,
        env: None,
    };
    reporter.step_started(&build.name, "Post-processing");
    let started = std::time::Instant::now();
    let outcome =
        crate::postprocess::run_chains(&build.post_processors, artifact.clone(), &ctx).await;
    let elapsed = started.elapsed();
    reporter.step_finished(&build.name, "Post-processing", elapsed, outcome.is_ok());
    result.steps.push(runner::StepTiming {
        name: "Post-processing",
        elapsed,
        ok: outcome.is_ok(),
    });
    match outcome {
        Ok(artifacts) => result.final_artifacts = artifacts,
        Err(e) => {
            result.cancelled = e.is_cancelled();
            result.artifact = Err(PostProcessingFailed(e).into());
        }
    }
}

/// A post-processor chain that failed, classed by its innermost error.
#[derive(Debug, thiserror::Error)]
#[error("post-processing failed")]
struct PostProcessingFailed(#[source] crate::postprocess::PostProcessError);

impl runner::StepFailure for PostProcessingFailed {
    fn class(&self) -> runner::FailureClass {
        post_process_class(&self.0)
    }
}

fn post_process_class(e: &crate::postprocess::PostProcessError) -> runner::FailureClass {
    use crate::postprocess::PostProcessError as E;
    use runner::FailureClass;
    match e {
        E::Step { source, .. } => post_process_class(source),
        E::Cancelled => FailureClass::Interrupted,
        // The template's strings, or a post-processor that cannot take
        // this artifact: the user changes the template.
        E::Render { .. } | E::Unsupported(_) => FailureClass::Input,
        E::Io { .. }
        | E::BadArchive { .. }
        | E::Corrupt(_)
        | E::ShellLocal(_)
        | E::ManifestParse { .. }
        | E::AmazonImport(_)
        | E::GoogleComputeImport(_)
        | E::GoogleComputeExport(_) => FailureClass::Host,
    }
}

/// Packer's `-machine-readable` records after the builds: for each build
/// in template order, its artifacts (`artifact-count`, `artifact,…`) or
/// its error; `error-count` first when some failed.
pub fn machine_summary(results: &[BuildResult]) -> Vec<String> {
    use crate::ui::machine::{ArtifactRecord, UiKind, artifact_records, record, ui_record};
    let mut out = Vec::new();
    let failed = results.iter().filter(|r| !r.succeeded()).count();
    if failed > 0 {
        out.push(record("", "error-count", &[&failed.to_string()]));
    }
    for r in results {
        if let Some(recorded) = &r.up_to_date {
            // The last run's artifacts, as Packer's records: a CI job
            // reading them works the same; the say line tells it nothing ran.
            let artifacts: Vec<ArtifactRecord<'_>> = recorded
                .iter()
                .map(|a| ArtifactRecord {
                    builder_id: &a.builder_id,
                    id: &a.id,
                    description: &a.description,
                    files: a
                        .files
                        .iter()
                        .map(|f| f.path.display().to_string())
                        .collect(),
                })
                .collect();
            out.extend(artifact_records(&r.name, &artifacts));
            out.push(ui_record(
                "",
                UiKind::Say,
                &format!("--> {}: up to date, nothing to do", r.name),
            ));
            continue;
        }
        match &r.artifact {
            Ok(_) => {
                let descriptions: Vec<String> = r
                    .final_artifacts
                    .iter()
                    .map(crate::artifact::Artifact::description)
                    .collect();
                let artifacts: Vec<ArtifactRecord<'_>> = r
                    .final_artifacts
                    .iter()
                    .zip(&descriptions)
                    .map(|(a, description)| ArtifactRecord {
                        builder_id: a.builder_id,
                        id: &a.id,
                        description,
                        files: a.files.iter().map(|f| f.display().to_string()).collect(),
                    })
                    .collect();
                out.extend(artifact_records(&r.name, &artifacts));
                for d in &descriptions {
                    out.push(ui_record("", UiKind::Say, &format!("--> {}: {d}", r.name)));
                }
            }
            Err(e) => {
                out.push(record(&r.name, "error", &[&e.chain()]));
                out.push(ui_record(
                    "",
                    UiKind::Error,
                    &format!("--> {}: {}", r.name, e.chain()),
                ));
            }
        }
    }
    out
}

/// What a cancelled build says: by which signal, during which step. The
/// step's own error is left out: it is only the consequence of stopping
/// (e.g. "no SSH connection to the guest").
fn interrupted(r: &BuildResult) -> String {
    let by = signals::received().map_or_else(String::new, |s| format!(" by {s}"));
    match r.steps.iter().rev().find(|s| !s.ok) {
        Some(step) => format!("interrupted{by} during \"{}\"", step.name),
        None => match r.steps.last() {
            Some(step) => format!("interrupted{by} after \"{}\"", step.name),
            None => format!("interrupted{by} before its first step"),
        },
    }
}

/// The final summary: each build's artifacts or error, and its steps' durations.
pub fn summary(results: &[BuildResult], elapsed: Duration) -> String {
    let mut out = String::new();
    let ok = results.iter().filter(|r| r.succeeded()).count();
    out.push_str(&format!(
        "\n==> {ok} of {} build(s) succeeded in {}\n",
        results.len(),
        format_duration(elapsed)
    ));
    for r in results {
        if let Some(recorded) = &r.up_to_date {
            out.push_str(&format!(
                "--> {}: up to date, nothing to do (-force rebuilds)\n",
                r.name
            ));
            for f in recorded.iter().flat_map(|a| &a.files) {
                out.push_str(&format!("    {}\n", f.path.display()));
            }
            continue;
        }
        match &r.artifact {
            Ok(_) => {
                for a in &r.final_artifacts {
                    if a.files.is_empty() {
                        // A cloud image (an AMI, a GCE image) has no local
                        // file: Packer's description says what was made.
                        out.push_str(&format!(
                            "--> {}: {}\n",
                            r.name,
                            a.description().trim_end().replace('\n', "\n    ")
                        ));
                        continue;
                    }
                    out.push_str(&format!(
                        "--> {}: {} file(s), {}\n",
                        r.name,
                        a.files.len(),
                        format_bytes(a.size())
                    ));
                    for f in &a.files {
                        out.push_str(&format!("    {}\n", f.display()));
                    }
                }
            }
            Err(_) if r.cancelled => {
                out.push_str(&format!("--> {}: {}\n", r.name, interrupted(r)));
            }
            Err(e) => {
                out.push_str(&format!(
                    "--> {}: FAILED: {}\n",
                    r.name,
                    e.chain().replace('\n', "\n    ")
                ));
            }
        }
        if !r.steps.is_empty() {
            let steps: Vec<String> = r
                .steps
                .iter()
                .map(|s| {
                    format!(
                        "{} {}{}",
                        s.name,
                        format_duration(s.elapsed),
                        if s.ok { "" } else { " (failed)" }
                    )
                })
                .collect();
            out.push_str(&format!("    steps: {}\n", steps.join(", ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::runner::{FailureClass, StepError};
    use super::*;

    fn failed(error: StepError, cancelled: bool) -> BuildResult {
        BuildResult {
            name: "b".into(),
            artifact: Err(error),
            final_artifacts: Vec::new(),
            steps: Vec::new(),
            cancelled,
            up_to_date: None,
        }
    }

    #[test]
    fn a_failed_build_reports_its_steps_class_and_a_cancelled_one_is_interrupted() {
        let guest = StepError::new(FailureClass::Guest, "no SSH");
        assert_eq!(failed(guest, false).failure(), Some(FailureClass::Guest));
        let host = StepError::new(FailureClass::Host, "qemu-img failed");
        assert_eq!(
            failed(host, true).failure(),
            Some(FailureClass::Interrupted)
        );
        let up_to_date = BuildResult {
            up_to_date: Some(Vec::new()),
            ..failed(StepError::new(FailureClass::Input, "stale"), false)
        };
        assert_eq!(up_to_date.failure(), None);
    }

    #[test]
    fn a_post_processor_failure_is_classed_by_its_innermost_error() {
        use crate::postprocess::PostProcessError as E;
        let step = |source| E::Step {
            path: "post-processors[0]".into(),
            type_name: "vagrant".into(),
            source: Box::new(source),
        };
        let io = E::Io {
            what: "cannot read",
            path: "disk.qcow2".into(),
            source: std::io::Error::other("gone"),
        };
        let cases = [
            (step(E::Cancelled), FailureClass::Interrupted),
            (
                step(E::Unsupported("no provider".into())),
                FailureClass::Input,
            ),
            (step(io), FailureClass::Host),
        ];
        for (e, class) in cases {
            let e: StepError = PostProcessingFailed(e).into();
            assert_eq!(e.class, class, "{}", e.chain());
            assert!(e.chain().starts_with(
                "post-processing failed\n  caused by: post-processor post-processors[0]"
            ));
        }
    }
}
