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
        let mut out = self.headline();
        out.push('\n');
        if let Some(loc) = &self.location {
            let (line, col) = loc.file.line_col(loc.span.start);
            let _ = writeln!(out, "  --> {}:{line}:{col}", loc.file.path().display());
            let text = loc.file.line_text(line);
            let gutter = line.to_string().len();
            let pad = " ".repeat(gutter);
            // Expand tabs so the caret lines up whatever the terminal does.
            let shown: String = text.replace('\t', "    ");
            let before: String = text.chars().take(col - 1).collect();
            let caret_start = before.replace('\t', "    ").chars().count();
            let (end_line, end_col) = loc.file.line_col(loc.span.end.max(loc.span.start + 1));
            let width = if end_line == line {
                end_col.saturating_sub(col).max(1)
            } else {
                shown.chars().count().saturating_sub(caret_start).max(1)
            };
            let _ = writeln!(out, " {pad} |");
            let _ = writeln!(out, " {line} | {shown}");
            let _ = writeln!(
                out,
                " {pad} | {}{}",
                " ".repeat(caret_start),
                "^".repeat(width.min(80))
            );
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "  = hint: {hint}");
        }
        out
    }
}

/// Every diagnostic found so far.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    /// `-strict`: compatibility cases are errors.
    strict: bool,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Diagnostics where every compatibility case is an error (`-strict`).
    pub fn strict() -> Self {
        Self {
            items: Vec::new(),
            strict: true,
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
        self.items.push(d);
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
        let same_place = |d: &Diagnostic| {
            d.severity == severity
                && d.path == path
                && d.message == message
                && d.location.as_ref().map(|l| l.span) == location.as_ref().map(|l| l.span)
        };
        if let Some(i) = self.items.iter().position(same_place) {
            return &mut self.items[i];
        }
        self.items.push(Diagnostic {
            severity,
            path,
            message,
            location,
            hint: None,
            compat: None,
        });
        let last = self.items.len() - 1;
        &mut self.items[last]
    }

    /// Appends `other`'s diagnostics (its strictness is not inherited).
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
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

    pub fn error_count(&self) -> usize {
        self.errors().count()
    }

    /// All diagnostics rendered, warnings first, in source order within each.
    pub fn render(&self) -> String {
        let mut sorted: Vec<&Diagnostic> = self.items.iter().collect();
        sorted.sort_by_key(|d| {
            (
                d.severity == Severity::Error,
                d.location.as_ref().map_or(usize::MAX, |l| l.span.start),
            )
        });
        sorted
            .iter()
            .map(|d| d.render())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// "did you mean `iso_url`?" for a misspelt name, when one is close enough.
pub fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(wrong, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
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
    fn suggests_close_names_only() {
        let names = ["iso_url", "iso_urls", "iso_checksum"];
        assert_eq!(did_you_mean("iso_urll", names), Some("iso_url"));
        assert_eq!(did_you_mean("iso_chksum", names), Some("iso_checksum"));
        assert_eq!(did_you_mean("memory", names), None);
    }
}
