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

/// What kind of failure stopped a build. The CLI maps each class to its
/// exit status (and hint) in one place, `cli::exit_status`; steps say
/// which class their error is, never what the process should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// A signal, or the user answered `abort`: nothing went wrong by itself.
    Interrupted,
    /// The guest did not do its part: it stopped early, never let us in
    /// over SSH, or a command in it failed.
    Guest,
    /// Something on the host: a program kiln runs (qemu, qemu-img,
    /// VBoxManage), a file, a port, an accelerator, a cloud API.
    Host,
    /// The template asked for something found wrong only at run time (a
    /// string rendered with build-time values, an existing output
    /// directory): the user fixes the input.
    Input,
}

/// A module's typed error that a step can return with `?`: the step's
/// module says which class each of its variants is.
pub trait StepFailure: std::error::Error + Send + Sync + 'static {
    fn class(&self) -> FailureClass;
}

/// Why a step failed: its class and the typed error, with its causes.
#[derive(Debug)]
pub struct StepError {
    pub class: FailureClass,
    error: Box<dyn std::error::Error + Send + Sync>,
}

/// A step's own words, for failures with no module error of their own.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Message {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for StepError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

impl<E: StepFailure> From<E> for StepError {
    fn from(e: E) -> Self {
        Self {
            class: e.class(),
            error: Box::new(e),
        }
    }
}

impl StepError {
    pub fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Self {
            class,
            error: Box::new(Message {
                message: message.into(),
                source: None,
            }),
        }
    }

    pub fn with_source(
        class: FailureClass,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            class,
            error: Box::new(Message {
                message: message.into(),
                source: Some(Box::new(source)),
            }),
        }
    }

    /// The build was interrupted (a signal, or `abort` at a prompt).
    pub fn interrupted() -> Self {
        Self::new(FailureClass::Interrupted, "interrupted")
    }

    /// The message followed by every cause, one per line.
    pub fn chain(&self) -> String {
        crate::error_chain::error_chain(&*self.error, "\n  caused by: ")
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
    let mut keep_files = false;
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
        let result = loop {
            ctx.reporter.step_started(&ctx.build, name);
            let started = Instant::now();
            let result = tokio::select! {
                r = step.run(state, ctx) => r,
                () = ctx.cancel.cancelled() => Err(StepError::interrupted()),
            };
            let elapsed = started.elapsed();
            let ok = result.is_ok();
            ctx.reporter.step_finished(&ctx.build, name, elapsed, ok);
            timings.push(StepTiming { name, elapsed, ok });
            let Err(e) = result else { break Ok(()) };
            if ctx.cancel.is_cancelled() || ctx.on_error != OnError::Ask {
                break Err(e);
            }
            match ask_after_failure(ctx, name, &e).await {
                // Packer's retry: the same step runs again over the state
                // it left, without its cleanup in between.
                AfterFailure::Retry => continue,
                AfterFailure::CleanUp => break Err(e),
                AfterFailure::Abort => {
                    keep_files = true;
                    break Err(e);
                }
            }
        };
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
    if keep_files {
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
    let question = format!(
        "debug: next step is `{next}`. Press Enter to continue, or type q and Enter to stop."
    );
    match ask(ctx, &question).await {
        Some(answer) => !answer.eq_ignore_ascii_case("q"),
        None if ctx.cancel.is_cancelled() => false,
        None => {
            ctx.reporter.warn(
                &ctx.build,
                "-debug: no terminal to pause at (or end of input); continuing",
            );
            true
        }
    }
}

/// What the user chose after a failed step under `-on-error=ask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterFailure {
    CleanUp,
    Abort,
    Retry,
}

/// Packer's question, word for word, so scripts written for it still work.
pub const ASK_QUESTION: &str = "[c] Clean up and exit, [a] abort without cleanup, or [r] retry step (build may fail even if retry succeeds)?";

/// `-on-error=ask`: says what failed and asks until the answer is one of
/// c, a or r. Without anyone to answer, or on Ctrl-C, it cleans up.
async fn ask_after_failure(ctx: &StepContext, step: &str, error: &StepError) -> AfterFailure {
    ctx.reporter.info(
        &ctx.build,
        &format!("Step `{step}` failed: {}", error.chain()),
    );
    loop {
        let Some(answer) = ask(ctx, ASK_QUESTION).await else {
            if !ctx.cancel.is_cancelled() {
                ctx.reporter.warn(
                    &ctx.build,
                    "-on-error=ask: no answer (no terminal, or end of input); cleaning up",
                );
            }
            return AfterFailure::CleanUp;
        };
        match answer.to_ascii_lowercase().as_str() {
            "c" => return AfterFailure::CleanUp,
            "a" => return AfterFailure::Abort,
            "r" => return AfterFailure::Retry,
            _ => ctx.reporter.info(
                &ctx.build,
                &format!("`{answer}` is not an answer: type c, a or r, then Enter"),
            ),
        }
    }
}

/// Asks through the reporter (which owns the terminal) without blocking
/// the runtime; `None` when nobody answers or the build is cancelled.
async fn ask(ctx: &StepContext, question: &str) -> Option<String> {
    let reporter = ctx.reporter.clone();
    let build = ctx.build.clone();
    let question = question.to_owned();
    let read = tokio::task::spawn_blocking(move || reporter.ask(&build, &question));
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
                    Err(StepError::new(
                        FailureClass::Host,
                        format!("{} broke", self.name),
                    ))
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
            report.error.map(|e| e.to_string()),
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

    /// Fails its first `failures` runs, then succeeds.
    struct Flaky {
        failures: usize,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Step<Vec<&'static str>> for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }
        fn run<'a>(
            &'a mut self,
            _state: &'a mut Vec<&'static str>,
            _ctx: &'a StepContext,
        ) -> StepFuture<'a> {
            Box::pin(async move {
                self.log
                    .lock()
                    .map(|mut l| l.push("run flaky".to_owned()))
                    .ok();
                if self.failures > 0 {
                    self.failures -= 1;
                    return Err(StepError::new(FailureClass::Host, "flaky broke"));
                }
                Ok(())
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
                    .map(|mut l| l.push(format!("cleanup flaky {outcome:?} {keep}")))
                    .ok();
            })
        }
    }

    fn ask_run(
        failures: usize,
        answers: &[&str],
    ) -> (RunReport, Vec<String>, Arc<RecordingReporter>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut s = steps(&[("one", false, false)], &log);
        s.push(Box::new(Flaky {
            failures,
            log: log.clone(),
        }));
        s.extend(steps(&[("three", false, false)], &log));
        let reporter = Arc::new(RecordingReporter::with_answers(answers.iter().copied()));
        let ctx = StepContext {
            build: "b".into(),
            reporter: reporter.clone(),
            cancel: CancellationToken::new(),
            on_error: OnError::Ask,
            debug: false,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let report = rt.block_on(run_steps(&mut s, &mut Vec::new(), &ctx));
        (report, log_of(&log), reporter)
    }

    fn questions(reporter: &RecordingReporter) -> Vec<String> {
        reporter
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Asked { question, .. } => Some(question),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn ask_retry_runs_the_failed_step_again_and_goes_on() {
        let (report, log, reporter) = ask_run(2, &["r", "R"]);
        assert_eq!(report.outcome, Outcome::Succeeded);
        assert_eq!(
            log,
            [
                "run one",
                "run flaky",
                "run flaky",
                "run flaky",
                "run three",
                "cleanup three Succeeded remove",
                "cleanup flaky Succeeded remove",
                "cleanup one Succeeded remove"
            ]
        );
        assert_eq!(questions(&reporter), [ASK_QUESTION, ASK_QUESTION]);
        let flaky: Vec<bool> = report
            .steps
            .iter()
            .filter(|s| s.name == "flaky")
            .map(|s| s.ok)
            .collect();
        assert_eq!(flaky, [false, false, true], "each attempt is timed");
    }

    #[test]
    fn ask_abort_keeps_files_after_asking_again_on_a_bad_answer() {
        let (report, log, reporter) = ask_run(1, &["x", "a"]);
        assert_eq!(report.outcome, Outcome::Failed);
        assert_eq!(
            log[2..],
            ["cleanup flaky Failed keep", "cleanup one Failed keep"]
        );
        assert_eq!(questions(&reporter).len(), 2);
        assert!(reporter.events().iter().any(|e| matches!(
            e,
            Event::Info { message, .. } if message.contains("`x` is not an answer")
        )));
    }

    #[test]
    fn ask_clean_up_and_no_answer_both_remove_files() {
        for answers in [&["c"][..], &[][..]] {
            let (report, log, reporter) = ask_run(1, answers);
            assert_eq!(report.outcome, Outcome::Failed);
            assert_eq!(
                log[2..],
                ["cleanup flaky Failed remove", "cleanup one Failed remove"]
            );
            let warned = !reporter.warnings().is_empty();
            assert_eq!(warned, answers.is_empty(), "{answers:?}");
        }
    }

    #[test]
    fn error_chain_lists_causes() {
        let io = std::io::Error::other("disk full");
        let e = StepError::with_source(FailureClass::Host, "cannot create disk", io);
        assert_eq!(e.chain(), "cannot create disk\n  caused by: disk full");
    }

    #[test]
    fn step_errors_carry_their_class() {
        assert_eq!(StepError::interrupted().class, FailureClass::Interrupted);
        let guest = StepError::new(FailureClass::Guest, "no SSH");
        assert_eq!(
            (guest.class, guest.chain().as_str()),
            (FailureClass::Guest, "no SSH")
        );
    }

    #[test]
    fn a_typed_step_error_keeps_its_class_and_its_causes() {
        #[derive(Debug, thiserror::Error)]
        enum DiskError {
            #[error("cannot create the disk")]
            Create(#[source] std::io::Error),
            #[error("interrupted")]
            Stopped,
        }
        impl StepFailure for DiskError {
            fn class(&self) -> FailureClass {
                match self {
                    Self::Create(_) => FailureClass::Host,
                    Self::Stopped => FailureClass::Interrupted,
                }
            }
        }
        let e: StepError = DiskError::Create(std::io::Error::other("disk full")).into();
        assert_eq!(e.class, FailureClass::Host);
        assert_eq!(e.chain(), "cannot create the disk\n  caused by: disk full");
        assert_eq!(
            StepError::from(DiskError::Stopped).class,
            FailureClass::Interrupted
        );
    }
}
