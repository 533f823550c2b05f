//! How kiln talks to the person (or CI log) watching it.
//!
//! The core never prints: it reports through [`Reporter`]. `ui::console`
//! renders those events for a terminal or a plain log; tests use
//! [`RecordingReporter`] to assert on what a user would have seen.

pub mod console;
pub mod machine;
pub mod printable;

use std::sync::Mutex;
use std::time::Duration;

/// Why nobody can press Enter for [`Reporter::wait_for_enter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoAnswer {
    /// stdin is closed or at its end (`</dev/null`, a finished pipe).
    #[error("stdin reached its end before Enter was pressed")]
    EndOfInput,
    /// `-machine-readable` output: Packer's machine UI cannot ask either.
    #[error("-machine-readable output cannot wait for Enter")]
    MachineReadable,
}

/// A long-running piece of work with a known or unknown size (a download,
/// a hash of a cached file, a disk copy).
pub trait Progress: Send + Sync {
    /// Absolute position, in the unit the progress was started with (bytes).
    fn set_position(&self, position: u64);
    /// The total became known (or changed) after the start.
    fn set_total(&self, total: u64);
    /// Work ended; `message` is a short outcome such as "verified".
    fn finish(&self, message: &str);
}

/// Events the core emits. Every method has a cheap default so a reporter
/// only implements what it renders.
pub trait Reporter: Send + Sync {
    /// A step of a build begins (`build` is the build name, or "" outside builds).
    fn step_started(&self, build: &str, step: &str);
    /// A step ended after `elapsed`; `ok` is false when it failed.
    fn step_finished(&self, build: &str, step: &str, elapsed: Duration, ok: bool);
    /// Something the user should know that does not stop the work.
    fn warn(&self, build: &str, message: &str);
    /// An ordinary status line.
    fn info(&self, build: &str, message: &str);
    /// A line of output from a guest, a provisioner or a child process.
    fn output_line(&self, build: &str, line: &str) {
        self.info(build, line);
    }
    /// Start a progress display for `label` of `total` bytes (None when unknown).
    fn progress(&self, build: &str, label: &str, total: Option<u64>) -> Box<dyn Progress>;
    /// Asks the person at the terminal `question` and waits for a line.
    /// `None` when nobody can answer (no terminal, end of input): the
    /// caller then takes its safe default. Blocks, so async code calls it
    /// from `spawn_blocking`; the core never reads stdin itself.
    fn ask(&self, _build: &str, _question: &str) -> Option<String> {
        None
    }
    /// Shows `prompt` and waits until the person presses Enter: a line on
    /// stdin, from a terminal or a pipe (Packer's breakpoint reads either).
    /// Blocks, so async code calls it from `spawn_blocking`.
    fn wait_for_enter(&self, _build: &str, _prompt: &str) -> Result<(), NoAnswer> {
        Err(NoAnswer::EndOfInput)
    }
    /// Start a progress display counting `total` things (key events, files).
    fn progress_items(
        &self,
        build: &str,
        label: &str,
        total: u64,
        _unit: &str,
    ) -> Box<dyn Progress> {
        self.progress(build, label, Some(total))
    }
}

/// One recorded event, for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    StepStarted {
        build: String,
        step: String,
    },
    StepFinished {
        build: String,
        step: String,
        ok: bool,
    },
    Warn {
        build: String,
        message: String,
    },
    Info {
        build: String,
        message: String,
    },
    ProgressStarted {
        label: String,
        total: Option<u64>,
    },
    ProgressFinished {
        label: String,
        message: String,
        position: u64,
    },
    Asked {
        build: String,
        question: String,
    },
}

/// A reporter that keeps every event in memory and answers questions
/// from a script given in advance.
#[derive(Debug, Default)]
pub struct RecordingReporter {
    events: std::sync::Arc<Mutex<Vec<Event>>>,
    answers: Mutex<std::collections::VecDeque<String>>,
}

impl RecordingReporter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A reporter whose `ask` returns `answers` in order, then `None`.
    pub fn with_answers<'a>(answers: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            answers: Mutex::new(answers.into_iter().map(str::to_owned).collect()),
            ..Self::default()
        }
    }

    /// A snapshot of the events so far.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.events).clone()
    }

    /// The info messages so far.
    pub fn infos(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Info { message, .. } => Some(message),
                _ => None,
            })
            .collect()
    }

    /// The warning messages so far.
    pub fn warnings(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Warn { message, .. } => Some(message),
                _ => None,
            })
            .collect()
    }

    fn push(&self, event: Event) {
        lock(&self.events).push(event);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked mid-push; the
    // events recorded so far are still the best record we have.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct RecordingProgress {
    label: String,
    position: std::sync::atomic::AtomicU64,
    events: std::sync::Arc<Mutex<Vec<Event>>>,
}

impl Progress for RecordingProgress {
    fn set_position(&self, position: u64) {
        self.position
            .store(position, std::sync::atomic::Ordering::Relaxed);
    }
    fn set_total(&self, _total: u64) {}
    fn finish(&self, message: &str) {
        lock(&self.events).push(Event::ProgressFinished {
            label: self.label.clone(),
            message: message.to_owned(),
            position: self.position.load(std::sync::atomic::Ordering::Relaxed),
        });
    }
}

impl Reporter for RecordingReporter {
    fn step_started(&self, build: &str, step: &str) {
        self.push(Event::StepStarted {
            build: build.to_owned(),
            step: step.to_owned(),
        });
    }
    fn step_finished(&self, build: &str, step: &str, _elapsed: Duration, ok: bool) {
        self.push(Event::StepFinished {
            build: build.to_owned(),
            step: step.to_owned(),
            ok,
        });
    }
    fn warn(&self, build: &str, message: &str) {
        self.push(Event::Warn {
            build: build.to_owned(),
            message: message.to_owned(),
        });
    }
    fn info(&self, build: &str, message: &str) {
        self.push(Event::Info {
            build: build.to_owned(),
            message: message.to_owned(),
        });
    }
    fn ask(&self, build: &str, question: &str) -> Option<String> {
        self.push(Event::Asked {
            build: build.to_owned(),
            question: question.to_owned(),
        });
        lock(&self.answers).pop_front()
    }
    fn wait_for_enter(&self, build: &str, prompt: &str) -> Result<(), NoAnswer> {
        self.ask(build, prompt)
            .map(drop)
            .ok_or(NoAnswer::EndOfInput)
    }
    fn progress(&self, _build: &str, label: &str, total: Option<u64>) -> Box<dyn Progress> {
        self.push(Event::ProgressStarted {
            label: label.to_owned(),
            total,
        });
        Box::new(RecordingProgress {
            label: label.to_owned(),
            position: std::sync::atomic::AtomicU64::new(0),
            events: self.events.clone(),
        })
    }
}
