//! Runs a build's steps in order. Each step that ran gets its cleanup, in
//! reverse order, whether the build succeeded, failed or was interrupted,
//! so a VM is always killed and temporary files always go.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::ui::Reporter;

/// What a failed build leaves behind (`-on-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Kill the VM and remove what the build created.
    #[default]
    Cleanup,
    /// Kill the VM but keep every file for inspection.
    Abort,
    /// Ask on the terminal (cleanup when there is none).
    Ask,
    /// Run the error-cleanup provisioner, then clean up.
    RunCleanupProvisioner,
}

/// How the steps ended, as each cleanup sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    Cancelled,
}

impl Outcome {
    pub fn is_success(self) -> bool {
        self == Self::Succeeded
    }
}

/// What every step may use besides the build's own state.
#[derive(Clone)]
pub struct StepContext {
    pub build: String,
    pub reporter: Arc<dyn Reporter>,
    pub cancel: CancellationToken,
    pub on_error: OnError,
    pub debug: bool,
}

impl StepContext {
    /// Whether cleanups should remove what the build made. After a failure
    /// with `-on-error=abort`, files are kept (the VM is still killed).
    pub fn remove_artifacts(&self, outcome: Outcome) -> bool {
        outcome.is_success() || self.on_error != OnError::Abort
    }
}

pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<(), StepError>> + Send + 'a>>;
pub type CleanupFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// One step of a build, over the builder's typed state `S`.
pub trait Step<S>: Send {
    /// A short name for the step line: "Creating disk".
    fn name(&self) -> &'static str;

    fn run<'a>(&'a mut self, state: &'a mut S, ctx: &'a StepContext) -> StepFuture<'a>;

    /// Undoes what `run` did (also after a partial run). Called only for
    /// steps whose `run` was started.
    fn cleanup<'a>(
        &'a mut self,
        _state: &'a mut S,
        _ctx: &'a StepContext,
        _outcome: Outcome,
    ) -> CleanupFuture<'a> {
        Box::pin(async {})
    }
}

/// Why a step failed: the message the user sees, and its cause chain.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StepError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The message followed by every cause, one per line.
    pub fn chain(&self) -> String {
        let first = self
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static));
        format!(
            "{}{}",
            self.message,
            crate::error_chain::causes(first, "\n  caused by: ")
        )
    }
}

/// What happened to one step, for the final summary.
#[derive(Debug, Clone)]
pub struct StepTiming {
    pub name: &'static str,
    pub elapsed: Duration,
    pub ok: bool,
}

#[derive(Debug)]
pub struct RunReport {
    pub outcome: Outcome,
    pub error: Option<StepError>,
    pub steps: Vec<StepTiming>,
}

/// Runs `steps` over `state`, then the cleanups of those that ran.
pub async fn run_steps<S: Send>(
    steps: &mut [Box<dyn Step<S>>],
    state: &mut S,
    ctx: &StepContext,
) -> RunReport {
    let mut ran = 0;
    let mut timings = Vec::new();
    let mut outcome = Outcome::Succeeded;
    let mut error = None;
    for step in steps.iter_mut() {
        if ctx.cancel.is_cancelled() {
            outcome = Outcome::Cancelled;
            break;
        }
        if ctx.debug && !pause_for_debug(ctx, step.name()).await {
            outcome = Outcome::Cancelled;
            break;
        }
        ran += 1;
        let name = step.name();
        ctx.reporter.step_started(&ctx.build, name);
        let started = Instant::now();
        let result = tokio::select! {
            r = step.run(state, ctx) => r,
            () = ctx.cancel.cancelled() => Err(StepError::new("interrupted")),
        };
        let elapsed = started.elapsed();
        let ok = result.is_ok();
        ctx.reporter.step_finished(&ctx.build, name, elapsed, ok);
        timings.push(StepTiming { name, elapsed, ok });
        if let Err(e) = result {
            outcome = if ctx.cancel.is_cancelled() {
                Outcome::Cancelled
            } else {
                Outcome::Failed
            };
            error = Some(e);
            break;
        }
    }
    if outcome == Outcome::Failed && ctx.on_error == OnError::Ask && !ask_cleanup(ctx).await {
        let ctx = StepContext {
            on_error: OnError::Abort,
            ..ctx.clone()
        };
        cleanup(steps, ran, state, &ctx, outcome).await;
    } else {
        cleanup(steps, ran, state, ctx, outcome).await;
    }
    RunReport {
        outcome,
        error,
        steps: timings,
    }
}

async fn cleanup<S: Send>(
    steps: &mut [Box<dyn Step<S>>],
    ran: usize,
    state: &mut S,
    ctx: &StepContext,
    outcome: Outcome,
) {
    for step in steps[..ran].iter_mut().rev() {
        step.cleanup(state, ctx, outcome).await;
    }
}

/// `-debug`: waits for Enter before each step; false when the user quits.
async fn pause_for_debug(ctx: &StepContext, next: &str) -> bool {
    ctx.reporter.info(
        &ctx.build,
        &format!(
            "debug: next step is `{next}`. Press Enter to continue, or type q and Enter to stop."
        ),
    );
    read_answer(ctx)
        .await
        .is_none_or(|a| !a.eq_ignore_ascii_case("q"))
}

/// `-on-error=ask`: true to clean up, false to keep everything.
async fn ask_cleanup(ctx: &StepContext) -> bool {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        ctx.reporter
            .warn(&ctx.build, "-on-error=ask needs a terminal; cleaning up");
        return true;
    }
    ctx.reporter.info(
        &ctx.build,
        "The build failed. [c] clean up and exit, [a] abort and keep everything for inspection: ",
    );
    !matches!(read_answer(ctx).await.as_deref(), Some("a" | "A"))
}

async fn read_answer(ctx: &StepContext) -> Option<String> {
    let read = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .ok()
            .map(|_| line.trim().to_owned())
    });
    tokio::select! {
        r = read => r.ok().flatten(),
        () = ctx.cancel.cancelled() => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::{Event, RecordingReporter};
    use std::sync::Mutex;

    struct Recorder {
        name: &'static str,
        fail: bool,
        hang: bool,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Step<Vec<&'static str>> for Recorder {
        fn name(&self) -> &'static str {
            self.name
        }
        fn run<'a>(
            &'a mut self,
            state: &'a mut Vec<&'static str>,
            _ctx: &'a StepContext,
        ) -> StepFuture<'a> {
            Box::pin(async move {
                state.push(self.name);
                self.log
                    .lock()
                    .map(|mut l| l.push(format!("run {}", self.name)))
                    .ok();
                if self.hang {
                    std::future::pending::<()>().await;
                }
                if self.fail {
                    Err(StepError::new(format!("{} broke", self.name)))
                } else {
                    Ok(())
                }
            })
        }
        fn cleanup<'a>(
            &'a mut self,
            _state: &'a mut Vec<&'static str>,
            ctx: &'a StepContext,
            outcome: Outcome,
        ) -> CleanupFuture<'a> {
            Box::pin(async move {
                let keep = if ctx.remove_artifacts(outcome) {
                    "remove"
                } else {
                    "keep"
                };
                self.log
                    .lock()
                    .map(|mut l| l.push(format!("cleanup {} {outcome:?} {keep}", self.name)))
                    .ok();
            })
        }
    }

    fn steps(
        spec: &[(&'static str, bool, bool)],
        log: &Arc<Mutex<Vec<String>>>,
    ) -> Vec<Box<dyn Step<Vec<&'static str>>>> {
        spec.iter()
            .map(|&(name, fail, hang)| {
                Box::new(Recorder {
                    name,
                    fail,
                    hang,
                    log: log.clone(),
                }) as Box<dyn Step<Vec<&'static str>>>
            })
            .collect()
    }

    fn context(on_error: OnError) -> (StepContext, Arc<RecordingReporter>) {
        let reporter = Arc::new(RecordingReporter::new());
        (
            StepContext {
                build: "b".into(),
                reporter: reporter.clone(),
                cancel: CancellationToken::new(),
                on_error,
                debug: false,
            },
            reporter,
        )
    }

    fn log_of(log: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
        log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    #[tokio::test]
    async fn success_cleans_up_every_step_in_reverse() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut s = steps(&[("one", false, false), ("two", false, false)], &log);
        let (ctx, reporter) = context(OnError::Cleanup);
        let report = run_steps(&mut s, &mut Vec::new(), &ctx).await;
        assert_eq!(report.outcome, Outcome::Succeeded);
        assert_eq!(
            log_of(&log),
            [
                "run one",
                "run two",
                "cleanup two Succeeded remove",
                "cleanup one Succeeded remove"
            ]
        );
        let finished = reporter
            .events()
            .iter()
            .filter(|e| matches!(e, Event::StepFinished { ok: true, .. }))
            .count();
        assert_eq!(finished, 2);
    }

    #[tokio::test]
    async fn failure_stops_and_cleans_only_steps_that_ran() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut s = steps(
            &[
                ("one", false, false),
                ("two", true, false),
                ("three", false, false),
            ],
            &log,
        );
        let (ctx, _) = context(OnError::Cleanup);
        let report = run_steps(&mut s, &mut Vec::new(), &ctx).await;
        assert_eq!(report.outcome, Outcome::Failed);
        assert_eq!(
            report.error.map(|e| e.message),
            Some("two broke".to_owned())
        );
        assert_eq!(
            log_of(&log),
            [
                "run one",
                "run two",
                "cleanup two Failed remove",
                "cleanup one Failed remove"
            ]
        );
    }

    #[tokio::test]
    async fn abort_keeps_files() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut s = steps(&[("one", false, false), ("two", true, false)], &log);
        let (ctx, _) = context(OnError::Abort);
        run_steps(&mut s, &mut Vec::new(), &ctx).await;
        assert_eq!(
            log_of(&log)[2..],
            ["cleanup two Failed keep", "cleanup one Failed keep"]
        );
    }

    #[tokio::test]
    async fn cancellation_interrupts_a_running_step_and_cleans_up() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut s = steps(
            &[
                ("one", false, false),
                ("hangs", false, true),
                ("never", false, false),
            ],
            &log,
        );
        let (ctx, _) = context(OnError::Cleanup);
        let cancel = ctx.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cancel.cancel();
        });
        let report = run_steps(&mut s, &mut Vec::new(), &ctx).await;
        assert_eq!(report.outcome, Outcome::Cancelled);
        assert_eq!(
            log_of(&log),
            [
                "run one",
                "run hangs",
                "cleanup hangs Cancelled remove",
                "cleanup one Cancelled remove"
            ]
        );
    }

    #[test]
    fn error_chain_lists_causes() {
        let io = std::io::Error::other("disk full");
        let e = StepError::with_source("cannot create disk", io);
        assert_eq!(e.chain(), "cannot create disk\n  caused by: disk full");
    }
}
