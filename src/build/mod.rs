//! Running builds: the step runner with guaranteed cleanup, `-on-error`
//! policies and cancellation on signals.

pub mod artifact;
pub mod runner;
pub mod signals;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::builder::{BuildResult, RunOptions};
use crate::config::Build;
use crate::ui::Reporter;
use crate::ui::console::{format_bytes, format_duration};

/// Runs every build, at most `parallel` at once (0 = all), stopping them
/// all cleanly on Ctrl-C / SIGTERM. Results come back in template order.
pub async fn run_all(
    builds: &[Build],
    options: &RunOptions,
    parallel: usize,
    reporter: Arc<dyn Reporter>,
) -> Vec<BuildResult> {
    let cancel = CancellationToken::new();
    let warn = reporter.clone();
    signals::cancel_on_signals(cancel.clone(), move |name| {
        warn.warn("", &format!("{name} received: stopping every build and cleaning up (send it again to exit at once)"));
    });
    let limit = if parallel == 0 {
        builds.len().max(1)
    } else {
        parallel
    };
    let permits = Arc::new(tokio::sync::Semaphore::new(limit));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, build) in builds.iter().cloned().enumerate() {
        let options = options.clone();
        let reporter = reporter.clone();
        let cancel = cancel.clone();
        let permits = permits.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let result = crate::builder::run(&build, &options, reporter, cancel).await;
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
                artifact: Err(runner::StepError::new("the build task ended abnormally")),
                steps: Vec::new(),
                cancelled: false,
            })
        })
        .collect()
}

/// The final summary: each build's artifacts or error, and its steps' durations.
pub fn summary(results: &[BuildResult], elapsed: Duration) -> String {
    let mut out = String::new();
    let ok = results.iter().filter(|r| r.artifact.is_ok()).count();
    out.push_str(&format!(
        "\n==> {ok} of {} build(s) succeeded in {}\n",
        results.len(),
        format_duration(elapsed)
    ));
    for r in results {
        match &r.artifact {
            Ok(a) => {
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
            Err(e) => {
                let what = if r.cancelled { "interrupted" } else { "FAILED" };
                out.push_str(&format!(
                    "--> {}: {what}: {}\n",
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
