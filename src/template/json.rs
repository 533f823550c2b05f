//! A strict JSON reader that keeps the byte span of every value and key, so
//! that a validation error can point at the exact line and column.
//!
//! serde_json gives positions only for syntax errors; templates need them for
//! every semantic error too ("builders[0]: unknown key" → the key's line).

use std::fmt;

/// A byte range in the template's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number as written, so integers are never rounded through f64.
    Number(String),
    String(String),
    Array(Vec<Node>),
    Object(Vec<Member>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

impl Node {
    /// What kind of value this is, for "expected a string, found an array".
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&[Member]> {
        match &self.value {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The last member named `key` (Go's encoding/json keeps the last duplicate).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_object()?
            .iter()
            .rev()
            .find(|m| m.key == key)
            .map(|m| &m.value)
    }

    /// Converts to a serde_json value (spans dropped), e.g. for `kiln fix`.
    pub fn to_serde(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(raw) => serde_json::from_str(raw).unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_serde).collect())
            }
            Value::Object(members) => serde_json::Value::Object(
                members
                    .iter()
                    .map(|m| (m.key.clone(), m.value.to_serde()))
                    .collect(),
            ),
        }
    }
}

/// A syntax error at a byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

const COMMENT_HINT: &str = "JSON has no comments; Packer templates use keys starting with `_` (\"_comment\": \"...\") instead";

/// Deeper nesting than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

/// Parses one JSON document (RFC 8259, no comments, no trailing commas).
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    // A UTF-8 byte-order mark is common in files saved by Windows editors.
    if text.starts_with('\u{feff}') {
        parser.pos = 3;
    }
    parser.skip_whitespace();
    if parser.pos >= parser.bytes.len() {
        return Err(parser.error_at(parser.pos, "the file is empty: expected a JSON object"));
    }
    let node = parser.value()?;
    parser.skip_whitespace();
    if parser.pos < parser.bytes.len() {
        return Err(parser.error_at(
            parser.pos,
            "unexpected text after the end of the JSON document",
        ));
    }
    Ok(node)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn error_at(&self, offset: usize, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            offset,
            message: message.into(),
        }
    }

    fn describe_here(&self) -> String {
        match self.text[self.pos..].chars().next() {
            None => "the end of the file".to_owned(),
            Some(c) if c.is_control() => format!("{c:?}"),
            Some(c) => format!("`{c}`"),
        }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Node, SyntaxError> {
        let start = self.pos;
        let value = match self.bytes.get(self.pos) {
            Some(b'{') => self.object()?,
            Some(b'[') => self.array()?,
            Some(b'"') => Value::String(self.string()?),
            Some(b't') => self.keyword("true", Value::Bool(true))?,
            Some(b'f') => self.keyword("false", Value::Bool(false))?,
            Some(b'n') => self.keyword("null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(b'\'') => {
                return Err(self.error_at(
                    self.pos,
                    "JSON strings use double quotes (\"), not single quotes",
                ));
            }
            Some(b'/') => return Err(self.error_at(self.pos, COMMENT_HINT)),
            _ => {
                return Err(self.error_at(
                    self.pos,
                    format!("expected a value, found {}", self.describe_here()),
                ));
            }
        };
        Ok(Node {
            value,
            span: Span::new(start, self.pos),
        })
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_at(self.pos, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn object(&mut self) -> Result<Value, SyntaxError> {
        self.enter()?;
        let open = self.pos;
        self.pos += 1;
        let mut members = Vec::new();
        self.skip_whitespace();
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_whitespace();
            let key_start = self.pos;
            match self.bytes.get(self.pos) {
                Some(b'"') => {}
                Some(b'}') => {
                    return Err(
                        self.error_at(self.pos, "trailing comma: remove the `,` before `}`")
                    );
                }
                None => {
                    return Err(self.error_at(open, "this object is never closed: expected `}`"));
                }
                Some(b'/') => return Err(self.error_at(self.pos, COMMENT_HINT)),
                _ => {
                    return Err(self.error_at(
                        self.pos,
                        format!(
                            "expected a key in double quotes, found {}",
                            self.describe_here()
                        ),
                    ));
                }
            }
            let key = self.string()?;
            let key_span = Span::new(key_start, self.pos);
            self.skip_whitespace();
            if self.bytes.get(self.pos) != Some(&b':') {
                return Err(self.error_at(
                    self.pos,
                    format!(
                        "expected `:` after the key \"{key}\", found {}",
                        self.describe_here()
                    ),
                ));
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.value()?;
            members.push(Member {
                key,
                key_span,
                value,
            });
            self.skip_whitespace();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(Value::Object(members));
                }
                None => {
                    return Err(self.error_at(open, "this object is never closed: expected `}`"));
                }
                Some(b'"') => {
                    return Err(self.error_at(
                        self.pos,
                        "expected `,` between members: a comma is missing before this key",
                    ));
                }
                _ => {
                    return Err(self.error_at(
                        self.pos,
                        format!("expected `,` or `}}`, found {}", self.describe_here()),
                    ));
                }
            }
        }
    }

    fn array(&mut self) -> Result<Value, SyntaxError> {
        self.enter()?;
        let open = self.pos;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            match self.bytes.get(self.pos) {
                Some(b']') => {
                    return Err(
                        self.error_at(self.pos, "trailing comma: remove the `,` before `]`")
                    );
                }
                None => {
                    return Err(self.error_at(open, "this array is never closed: expected `]`"));
                }
                _ => {}
            }
            items.push(self.value()?);
            self.skip_whitespace();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(Value::Array(items));
                }
                None => {
                    return Err(self.error_at(open, "this array is never closed: expected `]`"));
                }
                _ => {
                    return Err(self.error_at(
                        self.pos,
                        format!("expected `,` or `]`, found {}", self.describe_here()),
                    ));
                }
            }
        }
    }

    fn keyword(&mut self, word: &str, value: Value) -> Result<Value, SyntaxError> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error_at(
                self.pos,
                format!(
                    "expected a value, found {} (strings need double quotes)",
                    self.describe_here()
                ),
            ))
        }
    }

    fn number(&mut self) -> Result<Value, SyntaxError> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let s = p.pos;
            while p.bytes.get(p.pos).is_some_and(u8::is_ascii_digit) {
                p.pos += 1;
            }
            p.pos - s
        };
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let n = digits(self);
        if n == 0 {
            return Err(self.error_at(self.pos, "expected a digit"));
        }
        if n > 1 && self.bytes[int_start] == b'0' {
            return Err(self.error_at(int_start, "numbers cannot have leading zeros"));
        }
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return Err(self.error_at(self.pos, "expected a digit after the decimal point"));
            }
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(self.error_at(self.pos, "expected a digit in the exponent"));
            }
        }
        Ok(Value::Number(self.text[start..self.pos].to_owned()))
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let chunk_start = self.pos;
            while let Some(&b) = self.bytes.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[chunk_start..self.pos]);
            match self.bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                Some(b'\n') => {
                    return Err(self.error_at(
                        open,
                        "this string is not closed before the end of the line (a newline inside a string must be written \\n)",
                    ));
                }
                Some(_) => {
                    return Err(self.error_at(
                        self.pos,
                        "control characters must be escaped inside strings (\\t, \\n, \\u0000)",
                    ));
                }
                None => {
                    return Err(self.error_at(open, "this string is never closed: expected `\"`"));
                }
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), SyntaxError> {
        let at = self.pos - 1;
        let Some(&c) = self.bytes.get(self.pos) else {
            return Err(self.error_at(at, "unfinished escape at the end of the file"));
        };
        self.pos += 1;
        match c {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let first = self.hex4(at)?;
                let ch = if (0xD800..0xDC00).contains(&first) {
                    // A surrogate pair: the low half must follow.
                    if self.text[self.pos..].starts_with("\\u") {
                        self.pos += 2;
                        let second = self.hex4(at)?;
                        if !(0xDC00..0xE000).contains(&second) {
                            return Err(self.error_at(at, "invalid surrogate pair in \\u escape"));
                        }
                        char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
                    } else {
                        None
                    }
                } else {
                    char::from_u32(first)
                };
                // Go's decoder replaces lone surrogates with U+FFFD; so do we.
                out.push(ch.unwrap_or('\u{fffd}'));
            }
            _ => {
                return Err(self.error_at(
                    at,
                    format!(
                        "invalid escape `\\{}` (Windows paths need doubled backslashes: C:\\\\dir)",
                        char::from(c).escape_default()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn hex4(&mut self, at: usize) -> Result<u32, SyntaxError> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error_at(at, "\\u must be followed by four hex digits"))?;
        let value = u32::from_str_radix(digits, 16)
            .map_err(|_| self.error_at(at, "\\u must be followed by four hex digits"))?;
        self.pos += 4;
        Ok(value)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// Maps a byte offset in a string's decoded text to the offset in its JSON
/// literal (which starts with the opening quote and may contain escapes).
pub fn raw_offset(literal: &str, decoded: usize) -> usize {
    let bytes = literal.as_bytes();
    let mut raw = 1; // the opening quote
    let mut out = 0;
    while out < decoded && raw < bytes.len() {
        if bytes[raw] == b'\\' {
            let (consumed, produced) = match bytes.get(raw + 1) {
                Some(b'u') => unicode_escape_len(&literal[raw..]),
                _ => (2, 1),
            };
            raw += consumed;
            out += produced;
        } else {
            let ch_len = literal[raw..].chars().next().map_or(1, char::len_utf8);
            raw += ch_len;
            out += ch_len;
        }
    }
    raw.min(literal.len().saturating_sub(1))
}

/// Raw and decoded byte lengths of a `\\uXXXX` escape (or a surrogate pair).
fn unicode_escape_len(escape: &str) -> (usize, usize) {
    let hex = |at: usize| {
        escape
            .get(at..at + 4)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    match hex(2) {
        Some(0xD800..0xDC00) if escape.get(6..8) == Some("\\u") => match hex(8) {
            Some(0xDC00..0xE000) => (12, 4),
            _ => (6, 3),
        },
        Some(c) => (6, char::from_u32(c).map_or(3, char::len_utf8)),
        None => (2, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> SyntaxError {
        match parse(text) {
            Err(e) => e,
            Ok(v) => panic!("expected an error for {text:?}, got {v:?}"),
        }
    }

    #[test]
    fn parses_values_with_spans() {
        let text = r#"{"a": [1, "x", true, null], "b": {"c": -2.5e3}}"#;
        let node = parse(text).expect("valid");
        let a = node.get("a").expect("a");
        assert_eq!(&text[a.span.start..a.span.end], r#"[1, "x", true, null]"#);
        let members = node.as_object().expect("object");
        assert_eq!(
            &text[members[1].key_span.start..members[1].key_span.end],
            "\"b\""
        );
        let c = node.get("b").and_then(|b| b.get("c")).expect("c");
        assert_eq!(c.value, Value::Number("-2.5e3".into()));
    }

    #[test]
    fn decodes_escapes_and_surrogates() {
        let node = parse(r#""a\n\"\\\/\u00e9\ud83d\ude00""#).expect("valid");
        assert_eq!(node.as_str(), Some("a\n\"\\/é😀"));
        let lone = parse(r#""\ud800x""#).expect("valid");
        assert_eq!(lone.as_str(), Some("\u{fffd}x"));
    }

    #[test]
    fn keeps_duplicates_and_get_returns_last() {
        let node = parse(r#"{"a": 1, "a": 2}"#).expect("valid");
        assert_eq!(node.as_object().map(<[Member]>::len), Some(2));
        assert_eq!(
            node.get("a").map(|n| n.value.clone()),
            Some(Value::Number("2".into()))
        );
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = err("{\n  \"a\": 1,\n}");
        assert_eq!(e.offset, 12);
        assert!(e.message.contains("trailing comma"), "{e}");

        let e = err(r#"{"a": 1 "b": 2}"#);
        assert_eq!(e.offset, 8);
        assert!(e.message.contains("comma is missing"), "{e}");

        let e = err(r#"{"a": 'x'}"#);
        assert!(e.message.contains("double quotes"), "{e}");

        let e = err("{\"a\": 1 // note\n}");
        assert!(e.message.contains("expected `,` or `}`"), "{e}");

        let e = err(r#"{"a": "C:\dir"}"#);
        assert!(e.message.contains("backslashes"), "{e}");

        let e = err(r#"{"a": [1, 2"#);
        assert_eq!(e.offset, 6);
        assert!(e.message.contains("never closed"), "{e}");

        assert!(err("").message.contains("empty"));
        assert!(err("{} x").message.contains("after the end"));
        assert!(err("01").message.contains("leading zeros"));
        assert!(err("\"abc").message.contains("never closed"));
        assert!(err("tru").message.contains("expected a value"));
    }

    #[test]
    fn refuses_deep_nesting_without_overflowing() {
        let deep = "[".repeat(10_000);
        assert!(err(&deep).message.contains("nesting"));
    }

    #[test]
    fn accepts_a_byte_order_mark() {
        assert!(parse("\u{feff}{}").is_ok());
    }
}
