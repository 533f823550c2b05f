//! Errors and warnings about a template, collected rather than stopping at
//! the first, each with the template path (`builders[0] (qemu)`), the file,
//! line and column, and a hint on what to do.

use std::fmt::Write as _;
use std::sync::Arc;

use super::compat::Compat;
use super::json::Span;
use super::source::SourceFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone)]
pub struct Location {
    pub file: Arc<SourceFile>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Where in the template's structure, e.g. `builders[0] (qemu): iso_url`.
    pub path: String,
    pub message: String,
    pub location: Option<Location>,
    pub hint: Option<String>,
    /// The compatibility case this is, printed as `warning[id]`.
    pub compat: Option<Compat>,
}

impl Diagnostic {
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The one-line form: `error: builders[0] (qemu): iso_url is required`.
    pub fn headline(&self) -> String {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let label = match self.compat {
            Some(c) => format!("{severity}[{}]", c.id()),
            None => severity.to_owned(),
        };
        if self.path.is_empty() {
            format!("{label}: {}", self.message)
        } else {
            format!("{label}: {}: {}", self.path, self.message)
        }
    }

    /// The full form, with the source line and a caret under the span.
    pub fn render(&self) -> String {
        self.render_redacted(&NoSecrets)
    }

    /// [`Diagnostic::render`] with `redact` applied to everything printed.
    /// The caret is placed on the redacted line, so its offset says nothing
    /// about what was hidden; a long line is cut to a window around it.
    pub fn render_redacted(&self, redact: &dyn Redact) -> String {
        let mut out = redact.redact(&self.headline(), &mut []);
        out.push('\n');
        if let Some(loc) = &self.location {
            let (line, col) = loc.file.line_col(loc.span.start);
            let _ = writeln!(out, "  --> {}:{line}:{col}", loc.file.path().display());
            let snippet = Snippet::cut(&loc.file, line, loc.span, redact);
            let gutter = line.to_string().len();
            let pad = " ".repeat(gutter);
            let _ = writeln!(out, " {pad} |");
            let _ = writeln!(out, " {line} | {}", snippet.text);
            let _ = writeln!(
                out,
                " {pad} | {}{}",
                " ".repeat(snippet.caret),
                "^".repeat(snippet.width)
            );
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "  = hint: {}", redact.redact(hint, &mut []));
        }
        out
    }
}

/// Hides secrets in printed text (the CLI's mask of sensitive variables).
pub trait Redact {
    /// `text` with its secrets hidden; each byte offset in `positions` is
    /// moved to the same place in the result.
    fn redact(&self, text: &str, positions: &mut [usize]) -> String;
    /// The length in bytes of the longest secret (0 without secrets).
    fn longest(&self) -> usize;
}

/// Prints everything as it is.
pub struct NoSecrets;

impl Redact for NoSecrets {
    fn redact(&self, text: &str, _positions: &mut [usize]) -> String {
        text.to_owned()
    }
    fn longest(&self) -> usize {
        0
    }
}

/// Characters of a long line shown before and after the caret: a
/// minified one-line template must not be reprinted whole for each error.
const CONTEXT_BEFORE: usize = 60;
const CONTEXT_AFTER: usize = 100;
/// Lines up to this many characters are shown whole.
const WHOLE_LINE: usize = 240;
/// Carets drawn at most.
const MAX_CARETS: usize = 80;
/// Diagnostics of each severity printed; the rest are counted.
pub const MAX_SHOWN: usize = 50;

/// The quoted part of a source line, redacted, with tabs expanded, and
/// where the caret goes in it.
struct Snippet {
    text: String,
    /// Columns before the caret.
    caret: usize,
    width: usize,
}

impl Snippet {
    fn cut(file: &SourceFile, line: usize, span: Span, redact: &dyn Redact) -> Snippet {
        let bounds = file.line_bounds(line);
        let full = file.text().get(bounds.clone()).unwrap_or("");
        let full = full.trim_end_matches('\r');
        let at = span.start.clamp(bounds.start, bounds.start + full.len()) - bounds.start;
        let end = span.end.max(span.start + 1).min(bounds.start + full.len());
        let end = end.saturating_sub(bounds.start).max(at);
        // Only the region that can reach the window is redacted: enough
        // bytes for the shown characters (4 per UTF-8 character at most)
        // plus room for each secret that may be folded into the window, so
        // no secret is cut in half at the region's edge and shown in part.
        let secrets_in_window = (CONTEXT_BEFORE.max(CONTEXT_AFTER) / "<sensitive>".len()) + 2;
        let reach = 4 * CONTEXT_BEFORE.max(CONTEXT_AFTER) + secrets_in_window * redact.longest();
        let from = floor_char_boundary(full, at.saturating_sub(reach));
        let to = ceil_char_boundary(full, end.saturating_add(reach).min(full.len()));
        let region = &full[from..to];
        let mut marks = [at - from, end - from];
        let masked = redact.redact(region, &mut marks);
        let [caret_byte, end_byte] = marks;
        let (head, tail) = masked.split_at(caret_byte.min(masked.len()));
        let span_chars = masked
            .get(caret_byte..end_byte.max(caret_byte))
            .map_or(1, |s| s.chars().count().max(1));

        let head_chars = head.chars().count();
        let tail_chars = tail.chars().count();
        let cut_head =
            from > 0 || (head_chars + tail_chars > WHOLE_LINE && head_chars > CONTEXT_BEFORE);
        let cut_tail =
            to < full.len() || (head_chars + tail_chars > WHOLE_LINE && tail_chars > CONTEXT_AFTER);
        let shown_head: String = if cut_head {
            let skip = head_chars.saturating_sub(CONTEXT_BEFORE);
            format!("…{}", head.chars().skip(skip).collect::<String>())
        } else {
            head.to_owned()
        };
        let shown_tail: String = if cut_tail {
            format!("{}…", tail.chars().take(CONTEXT_AFTER).collect::<String>())
        } else {
            tail.to_owned()
        };
        // Expand tabs so the caret lines up whatever the terminal does.
        let head_text = shown_head.replace('\t', "    ");
        let tail_text = shown_tail.replace('\t', "    ");
        let caret = head_text.chars().count();
        let room = tail_text.chars().count().max(1);
        Snippet {
            width: span_chars.min(room).min(MAX_CARETS),
            text: format!("{head_text}{tail_text}"),
            caret,
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Every diagnostic found so far.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    /// `-strict`: compatibility cases are errors.
    strict: bool,
    /// Items by a hash of what makes two the same, so saying each problem
    /// once stays linear with thousands of diagnostics.
    seen: std::collections::HashMap<u64, Vec<usize>>,
}

fn same_place_key(severity: Severity, path: &str, message: &str, span: Option<Span>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (severity == Severity::Error).hash(&mut h);
    path.hash(&mut h);
    message.hash(&mut h);
    span.map(|s| (s.start, s.end)).hash(&mut h);
    h.finish()
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Diagnostics where every compatibility case is an error (`-strict`).
    pub fn strict() -> Self {
        Self {
            strict: true,
            ..Self::default()
        }
    }

    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// A compatibility case: a warning (or nothing, for the silent ones),
    /// an error under `-strict`. `None` when nothing is reported.
    pub fn compat(
        &mut self,
        case: Compat,
        path: impl Into<String>,
        message: impl Into<String>,
        location: Option<Location>,
    ) -> Option<&mut Diagnostic> {
        let severity = if self.strict {
            Severity::Error
        } else if case.warns_by_default() {
            Severity::Warning
        } else {
            return None;
        };
        let d = self.add(severity, path.into(), message.into(), location);
        d.compat = Some(case);
        Some(d)
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.index_last_after(d);
    }

    fn index_last_after(&mut self, d: Diagnostic) -> usize {
        let key = same_place_key(
            d.severity,
            &d.path,
            &d.message,
            d.location.as_ref().map(|l| l.span),
        );
        self.items.push(d);
        let last = self.items.len() - 1;
        self.seen.entry(key).or_default().push(last);
        last
    }

    pub fn error(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
        location: Option<Location>,
    ) -> &mut Diagnostic {
        self.add(Severity::Error, path.into(), message.into(), location)
    }

    pub fn warning(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
        location: Option<Location>,
    ) -> &mut Diagnostic {
        self.add(Severity::Warning, path.into(), message.into(), location)
    }

    fn add(
        &mut self,
        severity: Severity,
        path: String,
        message: String,
        location: Option<Location>,
    ) -> &mut Diagnostic {
        // A provisioner is checked once per build: say each problem once.
        let span = location.as_ref().map(|l| l.span);
        let same_place = |d: &Diagnostic| {
            d.severity == severity
                && d.path == path
                && d.message == message
                && d.location.as_ref().map(|l| l.span) == span
        };
        let key = same_place_key(severity, &path, &message, span);
        let found = self
            .seen
            .get(&key)
            .and_then(|ids| ids.iter().copied().find(|&i| same_place(&self.items[i])));
        let i = match found {
            Some(i) => i,
            None => self.index_last_after(Diagnostic {
                severity,
                path,
                message,
                location,
                hint: None,
                compat: None,
            }),
        };
        &mut self.items[i]
    }

    /// Appends `other`'s diagnostics (its strictness is not inherited).
    pub fn extend(&mut self, other: Diagnostics) {
        for d in other.items {
            self.index_last_after(d);
        }
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether a suggestion for one more diagnostic could still be shown:
    /// past twice [`MAX_SHOWN`] it would most likely not be printed, and
    /// computing did-you-means for thousands of unknown keys is what made
    /// a hostile file slow.
    pub fn worth_suggesting(&self) -> bool {
        self.items.len() < 2 * MAX_SHOWN
    }

    pub fn error_count(&self) -> usize {
        self.errors().count()
    }

    /// All diagnostics rendered, warnings first, in source order within each.
    pub fn render(&self) -> String {
        self.render_redacted(&NoSecrets)
    }

    /// [`Diagnostics::render`] with secrets hidden. At most [`MAX_SHOWN`]
    /// of each severity are printed, then how many more there were: a
    /// file with thousands of errors gets a readable, bounded report.
    pub fn render_redacted(&self, redact: &dyn Redact) -> String {
        let mut out = Vec::new();
        for severity in [Severity::Warning, Severity::Error] {
            let mut these: Vec<&Diagnostic> = self
                .items
                .iter()
                .filter(|d| d.severity == severity)
                .collect();
            these.sort_by_key(|d| d.location.as_ref().map_or(usize::MAX, |l| l.span.start));
            out.extend(
                these
                    .iter()
                    .take(MAX_SHOWN)
                    .map(|d| d.render_redacted(redact)),
            );
            let more = these.len().saturating_sub(MAX_SHOWN);
            if more > 0 {
                let what = match (severity, more) {
                    (Severity::Warning, 1) => "warning",
                    (Severity::Warning, _) => "warnings",
                    (Severity::Error, 1) => "error",
                    (Severity::Error, _) => "errors",
                };
                out.push(format!(
                    "... and {more} more {what} not shown (the first {MAX_SHOWN} are above; fix them and run again)\n"
                ));
            }
        }
        out.join("\n")
    }
}

/// Names longer than this get no suggestion: no key or variable kiln knows
/// is near it, and comparing costs the product of the lengths (a 1 MB key
/// took seconds).
const MAX_SUGGESTED_NAME: usize = 100;

/// "did you mean `iso_url`?" for a misspelt name, when one is close enough.
pub fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if wrong.len() > MAX_SUGGESTED_NAME {
        return None;
    }
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(wrong, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A name from the user's file as a message quotes it: a very long one is
/// cut (`first characters… (N bytes)`) so one key cannot flood the output.
pub fn shown_name(name: &str) -> std::borrow::Cow<'_, str> {
    const KEEP: usize = 60;
    if name.len() <= MAX_SUGGESTED_NAME {
        return name.into();
    }
    let head: String = name.chars().take(KEEP).collect();
    format!("{head}… ({} bytes)", name.len()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_column_and_caret() {
        let file = Arc::new(SourceFile::new(
            "t.json",
            "{\n\t\"iso_urll\": \"x\"\n}".to_owned(),
        ));
        let start = file.text().find("\"iso_urll\"").expect("present");
        let mut diags = Diagnostics::new();
        diags
            .error(
                "builders[0] (qemu)",
                "unknown key `iso_urll`",
                Some(Location {
                    file,
                    span: Span::new(start, start + 10),
                }),
            )
            .hint = Some("did you mean `iso_url`?".into());
        let text = diags.render();
        assert_eq!(
            text,
            "error: builders[0] (qemu): unknown key `iso_urll`\n  --> t.json:2:2\n   |\n 2 |     \"iso_urll\": \"x\"\n   |     ^^^^^^^^^^\n  = hint: did you mean `iso_url`?\n"
        );
    }

    #[test]
    fn a_long_line_is_cut_around_the_caret_and_secrets_stay_whole() {
        let secret = "s3cret-s3cret-s3cret-s3cret-42";
        let text = format!(
            "{{{}\"pw\": \"{secret}\", {}\"memroy\": 1, {}}}",
            "\"a\": 1, ".repeat(60),
            "\"b\": 2, ".repeat(5),
            "\"c\": 3, ".repeat(60)
        );
        let file = Arc::new(SourceFile::new("t.json", text.clone()));
        let start = text.find("\"memroy\"").expect("present");
        let mut diags = Diagnostics::new();
        diags.error(
            "builders[0]",
            "unknown key `memroy`",
            Some(Location {
                file,
                span: Span::new(start, start + 8),
            }),
        );
        let mask = crate::ui::console::SecretMask::new([secret.to_owned()]);
        let out = diags.render_redacted(&mask);
        let lines: Vec<&str> = out.lines().collect();
        let shown = lines[3];
        let caret = lines[4];
        assert!(shown.starts_with(" 1 | …") && shown.ends_with('…'), "{out}");
        assert!(shown.chars().count() < 200, "{out}");
        assert!(shown.contains("<sensitive>"), "{out}");
        for piece in secret.as_bytes().windows(6) {
            let piece = std::str::from_utf8(piece).expect("ascii");
            assert!(!shown.contains(piece), "{out}");
        }
        let at = caret.find('^').expect("caret");
        assert_eq!(
            shown.chars().skip(at).take(8).collect::<String>(),
            "\"memroy\"",
            "{out}"
        );
        assert_eq!(caret.matches('^').count(), 8, "{out}");
    }

    #[test]
    fn suggests_close_names_only() {
        let names = ["iso_url", "iso_urls", "iso_checksum"];
        assert_eq!(did_you_mean("iso_urll", names), Some("iso_url"));
        assert_eq!(did_you_mean("iso_chksum", names), Some("iso_checksum"));
        assert_eq!(did_you_mean("memory", names), None);
    }

    #[test]
    fn a_huge_name_costs_nothing_and_is_shown_cut() {
        let huge = format!("iso_url{}", "x".repeat(1 << 20));
        let started = std::time::Instant::now();
        assert_eq!(did_you_mean(&huge, ["iso_url", "iso_urls"]), None);
        assert!(started.elapsed() < std::time::Duration::from_millis(50));
        let shown = shown_name(&huge);
        assert!(shown.starts_with("iso_urlxxx") && shown.ends_with("(1048583 bytes)"));
        assert!(shown.len() < 100, "{shown}");
        assert_eq!(shown_name("memroy"), "memroy");
    }
}
