//! Packer's boot-command language: the text typed into an installer's boot
//! prompt (`<esc><wait>linux ks=http://…<enter>`), parsed into key actions,
//! and encoded for QEMU (QMP qcodes) and VirtualBox (PC scancodes).
//!
//! Parsing follows Packer's PEG grammar (`bootcommand/boot_command.pigeon`):
//! a `<` that does not open a wait, a key toggle or a special key is typed as
//! a plain `<`, so `<foo>` types five characters. kiln warns about such
//! near-misses ([`validate`]) but does not reject what Packer accepts. Pure:
//! no I/O, no async.

mod duration;
mod key;
pub mod qmp;
pub mod scancode;

use std::time::Duration;

pub use key::{Key, KeyStroke, SPECIAL_KEYS, stroke_for_char, typable_chars};

use duration::WaitLength;

/// One thing to do to the guest's keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Press and release (with Shift around it when the stroke needs it).
    Press(KeyStroke),
    /// Press and hold: `<leftCtrlOn>`, `<aOn>`.
    Down(KeyStroke),
    /// Release a held key: `<leftCtrlOff>`, `<aOff>`.
    Up(KeyStroke),
    /// `<wait>`, `<wait5>`, `<wait1m30s>`.
    Wait(Duration),
}

/// A boot command Packer would reject, or kiln cannot type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("boot_command at offset {offset}: {message}")]
pub struct BootCommandError {
    /// Byte offset in the (concatenated) boot command of the offending
    /// `<…>` or character.
    pub offset: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// Something kiln will type as written that was probably meant otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootCommandWarning {
    pub offset: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// Everything [`validate`] found, errors and warnings apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validation {
    pub errors: Vec<BootCommandError>,
    pub warnings: Vec<BootCommandWarning>,
}

/// Parses an already interpolated boot command (the template's list joined
/// with no separator, as Packer does) into actions. Stops at the first error.
pub fn parse(text: &str) -> Result<Vec<Action>, BootCommandError> {
    let mut parser = Parser::new(text, 0);
    let mut actions = Vec::new();
    while let Some(item) = parser.next_item() {
        actions.push(item?);
    }
    Ok(actions)
}

/// Checks a raw boot command at template-validation time, before `{{ … }}`
/// actions can be evaluated: the actions are skipped and the text between
/// them checked. Collects every problem rather than the first.
pub fn validate(raw: &str) -> Validation {
    let mut found = Validation::default();
    for (start, segment) in text_segments(raw) {
        let mut parser = Parser::new(segment, start);
        while let Some(item) = parser.next_item() {
            if let Err(e) = item {
                found.errors.push(e);
            }
        }
        found.warnings.append(&mut parser.warnings);
    }
    found
}

/// The parts of `raw` outside `{{ … }}` actions, with their offsets. A `}}`
/// inside a quoted string of an action does not close it.
fn text_segments(raw: &str) -> Vec<(usize, &str)> {
    let mut segments = Vec::new();
    let mut rest_start = 0;
    while let Some(open) = raw[rest_start..].find("{{").map(|i| i + rest_start) {
        segments.push((rest_start, &raw[rest_start..open]));
        match action_end(&raw[open + 2..]) {
            Some(len) => rest_start = open + 2 + len,
            // An unterminated action is the template checker's to report.
            None => return segments,
        }
    }
    segments.push((rest_start, &raw[rest_start..]));
    segments
}

/// Bytes up to and including the `}}` that closes an action body.
fn action_end(body: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '`' || c == '\'' => quote = Some(c),
            None if c == '}' && chars.peek().is_some_and(|(_, n)| *n == '}') => {
                return Some(i + 2);
            }
            None => {}
        }
    }
    None
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    /// Added to every offset reported (the segment's place in the whole).
    base: usize,
    warnings: Vec<BootCommandWarning>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, base: usize) -> Self {
        Self {
            text,
            pos: 0,
            base,
            warnings: Vec::new(),
        }
    }

    fn error(&self, at: usize, message: String, hint: Option<String>) -> BootCommandError {
        BootCommandError {
            offset: self.base + at,
            message,
            hint,
        }
    }

    /// The next action, trying the grammar's alternatives in its order:
    /// wait, character toggle, special key, literal character.
    fn next_item(&mut self) -> Option<Result<Action, BootCommandError>> {
        let rest = &self.text[self.pos..];
        let first = rest.chars().next()?;
        let start = self.pos;
        if first == '<' {
            let inner = &rest[1..];
            if let Some(found) = self.wait(start, inner) {
                return Some(found);
            }
            if let Some(found) = self.char_toggle(start, inner) {
                return Some(found);
            }
            if let Some(found) = self.special(start, inner) {
                return Some(found);
            }
            self.warn_if_near_miss(start, inner);
        }
        self.pos += first.len_utf8();
        Some(self.literal(start, first).map(Action::Press))
    }

    fn wait(&mut self, start: usize, inner: &str) -> Option<Result<Action, BootCommandError>> {
        let after = inner.strip_prefix("wait")?;
        let (length, used) = duration::wait_length(after)?;
        let whole_len = 1 + 4 + used;
        self.pos = start + whole_len;
        let written = &self.text[start..start + whole_len];
        Some(match length {
            WaitLength::Default => Ok(Action::Wait(Duration::from_secs(1))),
            WaitLength::Nanos(n) if n > 0 => Ok(Action::Wait(duration::to_duration(n))),
            WaitLength::Nanos(_) => Err(self.error(
                start,
                format!("`{written}` must wait a positive time"),
                Some("use `<wait1s>`, or remove it".into()),
            )),
            WaitLength::Invalid(why) => {
                Err(self.error(start, format!("the duration in `{written}` {why}"), None))
            }
        })
    }

    /// `<cOn>` / `<cOff>`: any one character held or released.
    fn char_toggle(
        &mut self,
        start: usize,
        inner: &str,
    ) -> Option<Result<Action, BootCommandError>> {
        let c = inner.chars().next()?;
        let (down, used) = on_off(&inner[c.len_utf8()..])?;
        let tail = &inner[c.len_utf8() + used..];
        if !tail.starts_with('>') {
            return None;
        }
        self.pos = start + 1 + c.len_utf8() + used + 1;
        Some(
            self.literal(start + 1, c)
                .map(|s| if down { Action::Down(s) } else { Action::Up(s) }),
        )
    }

    fn special(&mut self, start: usize, inner: &str) -> Option<Result<Action, BootCommandError>> {
        // The grammar commits to the first name that matches, even if what
        // follows then fails: the table is ordered so that is the longest.
        let (name, key) = SPECIAL_KEYS.iter().find(|(name, _)| {
            inner
                .as_bytes()
                .get(..name.len())
                .is_some_and(|b| b.eq_ignore_ascii_case(name.as_bytes()))
        })?;
        let after = &inner[name.len()..];
        let (toggle, used) = match on_off(after) {
            Some((down, used)) => (Some(down), used),
            None => (None, 0),
        };
        if !after[used..].starts_with('>') {
            return None;
        }
        self.pos = start + 1 + name.len() + used + 1;
        let stroke = key.stroke();
        Some(Ok(match toggle {
            None => Action::Press(stroke),
            Some(true) => Action::Down(stroke),
            Some(false) => Action::Up(stroke),
        }))
    }

    fn literal(&self, at: usize, c: char) -> Result<KeyStroke, BootCommandError> {
        stroke_for_char(c).ok_or_else(|| {
            let hint = match c {
                '\n' | '\r' => Some("write `<enter>` to press Enter".to_owned()),
                '\t' => Some("write `<tab>` to press Tab".to_owned()),
                _ => Some("only characters of a US keyboard can be typed".to_owned()),
            };
            self.error(
                at,
                format!("{c:?} cannot be typed: no key of a US keyboard produces it"),
                hint,
            )
        })
    }

    /// A `<name>` that Packer types as text but that looks like an attempt
    /// at a special key or a wait.
    fn warn_if_near_miss(&mut self, start: usize, inner: &str) {
        let name_len = inner
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'.')
            .count();
        if name_len == 0 || !inner[name_len..].starts_with('>') {
            return;
        }
        let name = &inner[..name_len];
        let written = format!("<{name}>");
        let lower = name.to_ascii_lowercase();
        let hint = if lower.starts_with("wait") {
            Some("a wait is `<wait>`, `<wait5>` or a Go duration such as `<wait1m30s>`, `<wait500ms>`".to_owned())
        } else {
            let base = lower
                .strip_suffix("on")
                .or_else(|| lower.strip_suffix("off"))
                .filter(|b| !b.is_empty())
                .unwrap_or(&lower);
            let suffix = &name[base.len()..];
            closest_special(base).map(|m| format!("did you mean `<{m}{suffix}>`?"))
        };
        self.warnings.push(BootCommandWarning {
            offset: self.base + start,
            message: format!(
                "`{written}` is not a special key; it will be typed as the text `{written}`"
            ),
            hint,
        });
    }
}

/// The documented special name closest to `lower` (compared without case).
fn closest_special(lower: &str) -> Option<&'static str> {
    key::DOCUMENTED_NAMES
        .iter()
        .map(|name| {
            (
                strsim::jaro_winkler(lower, &name.to_ascii_lowercase()),
                *name,
            )
        })
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}

/// `"on"i / "off"i`: whether it is On, and the bytes used.
fn on_off(text: &str) -> Option<(bool, usize)> {
    let starts = |word: &str| {
        text.as_bytes()
            .get(..word.len())
            .is_some_and(|b| b.eq_ignore_ascii_case(word.as_bytes()))
    };
    if starts("on") {
        Some((true, 2))
    } else if starts("off") {
        Some((false, 3))
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
