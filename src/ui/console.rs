//! The human-facing reporter: one line per step with its duration, progress
//! bars on a terminal, periodic plain lines otherwise, and secrets masked in
//! everything it prints.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::machine::UiKind;
use super::{NoAnswer, Progress, Reporter};

/// How output should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Human output; progress bars when stderr is a terminal.
    Human,
    /// Packer's `timestamp,target,type,data...` lines on stdout.
    MachineReadable,
}

#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    pub mode: OutputMode,
    pub color: bool,
    pub timestamps: bool,
}

/// Replaces every occurrence of a sensitive value with `<sensitive>`.
#[derive(Debug, Clone, Default)]
pub struct SecretMask {
    /// What to hide, longest first: each secret and its encoded forms.
    secrets: Vec<String>,
    /// The secrets as given, for [`SecretMask::extend`].
    given: Vec<String>,
}

const MASKED: &str = "<sensitive>";

/// Secrets shorter than this are not masked: masking a one-letter password
/// everywhere turns `-except` into `-e<sensitive>cept` and makes every
/// line unreadable while hiding nothing an observer could not guess.
/// [`SecretMask::too_short`] counts them so the CLI can say so.
pub const MIN_MASKED_CHARS: usize = 4;

impl SecretMask {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let given: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        let mut all = Vec::new();
        for secret in given.iter().cloned() {
            if secret.chars().count() < MIN_MASKED_CHARS {
                continue;
            }
            // A secret inside a URL (`http://user:SECRET@host/`) may be
            // printed percent-encoded by whatever parsed the URL.
            let encoded =
                percent_encoding::utf8_percent_encode(&secret, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            if encoded != secret {
                all.push(encoded);
            }
            all.push(secret);
        }
        // Longest first, so a secret that contains another is masked whole.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        all.dedup();
        Self {
            secrets: all,
            given,
        }
    }

    /// Adds more secrets (values resolved after the mask was made).
    pub fn extend(&mut self, secrets: impl IntoIterator<Item = String>) {
        let given = std::mem::take(&mut self.given);
        *self = Self::new(given.into_iter().chain(secrets));
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// How many distinct secrets are too short to be masked.
    pub fn too_short(&self) -> usize {
        let mut short: Vec<&String> = self
            .given
            .iter()
            .filter(|s| s.chars().count() < MIN_MASKED_CHARS)
            .collect();
        short.sort();
        short.dedup();
        short.len()
    }

    /// Bytes in the longest secret (they are sorted longest first).
    pub fn longest_secret(&self) -> usize {
        self.secrets.first().map_or(0, String::len)
    }

    pub fn mask(&self, text: &str) -> String {
        self.mask_tracking(text, &mut [])
    }

    /// Masks `text` and moves each byte offset in `positions` to the same
    /// place in the masked text (an offset inside a secret moves to the
    /// start of its `<sensitive>`), so a caret computed from them points at
    /// what is printed and says nothing about a secret's length.
    pub fn mask_tracking(&self, text: &str, positions: &mut [usize]) -> String {
        let mut found: Vec<(usize, usize)> = Vec::new();
        for secret in &self.secrets {
            for (start, _) in text.match_indices(secret.as_str()) {
                let end = start + secret.len();
                // Longer secrets came first and win where two overlap.
                if found.iter().all(|&(s, e)| end <= s || start >= e) {
                    found.push((start, end));
                }
            }
        }
        if found.is_empty() {
            return text.to_owned();
        }
        found.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut moved: Vec<Option<usize>> = vec![None; positions.len()];
        for &(start, end) in &found {
            for (i, &p) in positions.iter().enumerate() {
                if moved[i].is_none() && p < end {
                    let at = if p < start {
                        out.len() + (p.max(copied) - copied)
                    } else {
                        out.len() + (start - copied)
                    };
                    moved[i] = Some(at);
                }
            }
            out.push_str(&text[copied..start]);
            out.push_str(MASKED);
            copied = end;
        }
        for (i, &p) in positions.iter().enumerate() {
            if moved[i].is_none() {
                moved[i] = Some(out.len() + p.saturating_sub(copied));
            }
        }
        out.push_str(&text[copied..]);
        for (p, m) in positions.iter_mut().zip(moved) {
            *p = m.unwrap_or(*p).min(out.len());
        }
        out
    }
}

pub struct ConsoleReporter {
    options: ConsoleOptions,
    mask: SecretMask,
    is_terminal: bool,
    out: Mutex<()>,
}

impl ConsoleReporter {
    pub fn new(options: ConsoleOptions, mask: SecretMask) -> Self {
        let is_terminal = std::io::stderr().is_terminal();
        Self {
            options,
            mask,
            is_terminal,
            out: Mutex::new(()),
        }
    }

    /// Prints one line: `human` on stderr, or a Packer `ui` record of
    /// `kind` with `plain` (the text without kiln's own decorations) on stdout.
    fn line(&self, build: &str, kind: UiKind, human: &str, plain: &str) {
        let _guard = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match self.options.mode {
            OutputMode::MachineReadable => {
                let record = super::machine::ui_record(build, kind, &self.mask.mask(plain));
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "{record}");
                let _ = stdout.flush();
            }
            OutputMode::Human => {
                let text = self.mask.mask(human);
                let mut stderr = std::io::stderr().lock();
                let stamp = if self.options.timestamps {
                    format!("{} ", humantime_now())
                } else {
                    String::new()
                };
                let prefix = if build.is_empty() {
                    String::new()
                } else if self.options.color {
                    format!("\x1b[1m{build}:\x1b[0m ")
                } else {
                    format!("{build}: ")
                };
                let _ = writeln!(stderr, "{stamp}{prefix}{text}");
            }
        }
    }
}

fn humantime_now() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02}")
}

/// Formats a duration the way step lines show it: `850ms`, `12.3s`, `2m05s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        let secs = d.as_secs();
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

impl Reporter for ConsoleReporter {
    fn step_started(&self, build: &str, step: &str) {
        self.line(build, UiKind::Say, &format!("==> {step}"), step);
    }

    fn step_finished(&self, build: &str, step: &str, elapsed: Duration, ok: bool) {
        let outcome = if ok { "done" } else { "FAILED" };
        let text = format!("{step}: {outcome} in {}", format_duration(elapsed));
        let kind = if ok { UiKind::Message } else { UiKind::Error };
        self.line(build, kind, &format!("    {text}"), &text);
    }

    fn warn(&self, build: &str, message: &str) {
        let plain = format!("warning: {message}");
        let human = if self.options.color {
            format!("\x1b[33mwarning:\x1b[0m {message}")
        } else {
            plain.clone()
        };
        self.line(build, UiKind::Say, &human, &plain);
    }

    fn info(&self, build: &str, message: &str) {
        self.line(build, UiKind::Message, message, message);
    }

    fn ask(&self, build: &str, question: &str) -> Option<String> {
        // Without a terminal nobody is there to answer (a CI job, a pipe):
        // waiting for a line would hang or read a script's input.
        if !std::io::stdin().is_terminal() {
            return None;
        }
        self.line(build, UiKind::Say, question, question);
        let mut answer = String::new();
        match std::io::stdin().read_line(&mut answer) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(answer.trim().to_owned()),
        }
    }

    fn wait_for_enter(&self, build: &str, prompt: &str) -> Result<(), NoAnswer> {
        if self.options.mode == OutputMode::MachineReadable {
            return Err(NoAnswer::MachineReadable);
        }
        self.line(build, UiKind::Say, prompt, prompt);
        let mut line = String::new();
        match std::io::stdin().read_line(&mut line) {
            Ok(0) | Err(_) => Err(NoAnswer::EndOfInput),
            Ok(_) => Ok(()),
        }
    }

    fn progress_items(
        &self,
        build: &str,
        label: &str,
        total: u64,
        unit: &str,
    ) -> Box<dyn Progress> {
        if !(self.is_terminal && self.options.mode == OutputMode::Human) {
            // Without a terminal the start and end lines say enough.
            return Box::new(QuietProgress);
        }
        let bar = ProgressBar::new(total);
        bar.set_draw_target(ProgressDrawTarget::stderr());
        let template = format!("{{prefix}}{{msg}} [{{bar:30}}] {{pos}}/{{len}} {unit}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        if !build.is_empty() {
            bar.set_prefix(format!("{build}: "));
        }
        bar.set_message(self.mask.mask(label));
        Box::new(TerminalProgress { bar })
    }

    fn progress(&self, build: &str, label: &str, total: Option<u64>) -> Box<dyn Progress> {
        let label = self.mask.mask(label);
        if self.is_terminal && self.options.mode == OutputMode::Human {
            let bar = match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::new_spinner(),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr());
            let template = if total.is_some() {
                "{prefix}{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}"
            } else {
                "{prefix}{msg} {spinner} {bytes} {binary_bytes_per_sec}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            if !build.is_empty() {
                bar.set_prefix(format!("{build}: "));
            }
            bar.set_message(label);
            Box::new(TerminalProgress { bar })
        } else {
            Box::new(PlainProgress {
                build: build.to_owned(),
                label,
                state: Arc::new(Mutex::new(PlainState {
                    total,
                    position: 0,
                    started: Instant::now(),
                    last_report: Instant::now(),
                })),
                machine: self.options.mode == OutputMode::MachineReadable,
            })
        }
    }
}

struct QuietProgress;

impl Progress for QuietProgress {
    fn set_position(&self, _position: u64) {}
    fn set_total(&self, _total: u64) {}
    fn finish(&self, _message: &str) {}
}

struct TerminalProgress {
    bar: ProgressBar,
}

impl Progress for TerminalProgress {
    fn set_position(&self, position: u64) {
        self.bar.set_position(position);
    }
    fn set_total(&self, total: u64) {
        self.bar.set_length(total);
    }
    fn finish(&self, message: &str) {
        let label = self.bar.message();
        self.bar.finish_and_clear();
        eprintln!("{}{label}: {message}", self.bar.prefix());
    }
}

struct PlainState {
    total: Option<u64>,
    position: u64,
    started: Instant,
    last_report: Instant,
}

/// Without a terminal, a progress line every 10 seconds keeps CI logs alive
/// without flooding them.
struct PlainProgress {
    build: String,
    label: String,
    state: Arc<Mutex<PlainState>>,
    machine: bool,
}

const PLAIN_PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

impl PlainProgress {
    fn print(&self, text: &str) {
        if self.machine {
            return;
        }
        if self.build.is_empty() {
            eprintln!("{text}");
        } else {
            eprintln!("{}: {text}", self.build);
        }
    }
}

fn describe(position: u64, total: Option<u64>, elapsed: Duration) -> String {
    let rate = position as f64 / elapsed.as_secs_f64().max(0.001);
    match total {
        Some(t) if t > 0 => format!(
            "{} of {} ({:.0}%), {}/s",
            format_bytes(position),
            format_bytes(t),
            position as f64 * 100.0 / t as f64,
            format_bytes(rate as u64)
        ),
        _ => format!(
            "{}, {}/s",
            format_bytes(position),
            format_bytes(rate as u64)
        ),
    }
}

/// `1.5 GiB`, `300 KiB`, `12 B`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl Progress for PlainProgress {
    fn set_position(&self, position: u64) {
        let line = {
            let mut s = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            s.position = position;
            if s.last_report.elapsed() < PLAIN_PROGRESS_INTERVAL {
                return;
            }
            s.last_report = Instant::now();
            describe(s.position, s.total, s.started.elapsed())
        };
        self.print(&format!("{}: {line}", self.label));
    }
    fn set_total(&self, total: u64) {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.total = Some(total);
    }
    fn finish(&self, message: &str) {
        let line = {
            let s = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            describe(s.position, s.total, s.started.elapsed())
        };
        self.print(&format!("{}: {message} ({line})", self.label));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_secret_longest_first() {
        let mask = SecretMask::new([
            "hunter2".to_owned(),
            "hunter2-extra".to_owned(),
            String::new(),
        ]);
        assert_eq!(
            mask.mask("pw=hunter2-extra and hunter2"),
            "pw=<sensitive> and <sensitive>"
        );
        assert_eq!(mask.mask("nothing here"), "nothing here");
    }

    #[test]
    fn extending_keeps_every_secret_once() {
        let mut mask = SecretMask::new(["a  b".to_owned()]);
        mask.extend(["c  d".to_owned()]);
        mask.extend(Vec::new());
        assert_eq!(
            mask.mask("a  b, c  d, a%20%20b"),
            "<sensitive>, <sensitive>, <sensitive>"
        );
        assert_eq!(mask.secrets.len(), 4, "{:?}", mask.secrets);
    }

    #[test]
    fn leaves_secrets_too_short_to_mask_and_counts_them() {
        let mask = SecretMask::new(["x".to_owned(), "abc".to_owned(), "abcd".to_owned()]);
        assert_eq!(mask.mask("-except x abc abcd"), "-except x abc <sensitive>");
        assert_eq!(mask.too_short(), 2);
        assert_eq!(SecretMask::new(["abcd".to_owned()]).too_short(), 0);
    }

    #[test]
    fn masks_the_percent_encoded_form_too() {
        let mask = SecretMask::new(["p@ss word".to_owned()]);
        assert_eq!(
            mask.mask("http://u:p%40ss%20word@h/ and p@ss word"),
            "http://u:<sensitive>@h/ and <sensitive>"
        );
    }

    #[test]
    fn positions_follow_the_masked_text() {
        let mask = SecretMask::new(["hunter2".to_owned()]);
        let text = "a hunter2 b hunter2 c";
        // Before, inside, between, after the secrets, and the end.
        let mut at = [0, 4, 10, 20, text.len()];
        let masked = mask.mask_tracking(text, &mut at);
        assert_eq!(masked, "a <sensitive> b <sensitive> c");
        assert_eq!(&masked[at[0]..], masked.as_str());
        assert_eq!(&masked[at[1]..], "<sensitive> b <sensitive> c");
        assert_eq!(&masked[at[2]..], "b <sensitive> c");
        assert_eq!(&masked[at[3]..], "c");
        assert_eq!(at[4], masked.len());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(format_duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m05s");
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(format_bytes(12), "12 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
