//! Go's literal syntax: decoding the escapes of "interpreted" string and
//! 'character' literals, and quoting a string the way Go's `%q` does.

use super::error::{InterpError, InterpErrorKind};

/// Decodes the body of a double-quoted Go string (without its quotes).
/// `base` is the body's byte offset in the template, for error offsets.
pub(crate) fn unescape_string(body: &str, base: usize) -> Result<String, InterpError> {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(pos) = rest.find('\\') {
        out.push_str(&rest[..pos]);
        let at = base + (body.len() - rest.len()) + pos;
        let (c, used) = unescape_one(&rest[pos..], '"', at)?;
        out.push(c);
        rest = &rest[pos + used..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Decodes the body of a Go character literal (without its quotes) to its code point.
pub(crate) fn unescape_char(body: &str, base: usize) -> Result<char, InterpError> {
    let (c, used) = if body.starts_with('\\') {
        unescape_one(body, '\'', base)?
    } else {
        match body.chars().next() {
            Some(c) => (c, c.len_utf8()),
            None => return Err(InterpError::new(base, InterpErrorKind::InvalidCharLiteral)),
        }
    };
    if used != body.len() {
        return Err(InterpError::new(base, InterpErrorKind::InvalidCharLiteral));
    }
    Ok(c)
}

/// Decodes one escape sequence at the start of `s` (which starts with `\`),
/// returning the character and the bytes consumed.
fn unescape_one(s: &str, quote: char, at: usize) -> Result<(char, usize), InterpError> {
    let bad = |len: usize| {
        let shown: String = s.chars().take(len).collect();
        InterpError::new(at, InterpErrorKind::InvalidEscape(shown))
    };
    let mut chars = s.chars();
    chars.next(); // the backslash
    let Some(kind) = chars.next() else {
        return Err(bad(1));
    };
    let simple = match kind {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '\\' => Some('\\'),
        c if c == quote => Some(c),
        _ => None,
    };
    if let Some(c) = simple {
        return Ok((c, 2));
    }
    let (digits, radix) = match kind {
        'x' => (2, 16),
        'u' => (4, 16),
        'U' => (8, 16),
        '0'..='7' => (3, 8),
        _ => return Err(bad(2)),
    };
    // Octal escapes include the digit already read as `kind`.
    let start = if radix == 8 { 1 } else { 2 };
    let end = start + digits;
    let Some(text) = s.get(start..end) else {
        return Err(bad(end.min(s.chars().count())));
    };
    // `from_str_radix` alone would accept a sign.
    let value = match u32::from_str_radix(text, radix) {
        Ok(v) if text.chars().all(|c| c.is_digit(radix)) => v,
        _ => return Err(bad(end)),
    };
    // Go's \x and octal escapes produce raw bytes; kiln strings are UTF-8,
    // so only the ASCII range of those is accepted.
    if (kind == 'x' || radix == 8) && value > 0x7f {
        return Err(bad(end));
    }
    match char::from_u32(value) {
        Some(c) => Ok((c, end)),
        None => Err(bad(end)),
    }
}

/// Quotes `s` as Go's `strconv.Quote` does: printable characters kept,
/// the rest escaped.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// Quotes a code point as a Go character literal (`%q` of an integer).
pub(crate) fn quote_char(c: char) -> String {
    let mut out = String::from("'");
    push_escaped(&mut out, c, '\'');
    out.push('\'');
    out
}

fn push_escaped(out: &mut String, c: char, quote: char) {
    use std::fmt::Write as _;
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if c.is_control() => {
            if (c as u32) <= 0xffff {
                let _ = write!(out, "\\u{:04x}", c as u32);
            } else {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
        c => out.push(c),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic loudly
mod tests {
    use super::*;

    #[test]
    fn decodes_go_escapes() {
        assert_eq!(
            unescape_string(r#"a\tb\n\\\x41\101\u00e9\U0001F600\""#, 0).as_deref(),
            Ok("a\tb\n\\AA\u{e9}\u{1F600}\"")
        );
    }

    #[test]
    fn rejects_bad_escapes_with_offset() {
        let err = unescape_string(r"ab\qc", 10).unwrap_err();
        assert_eq!(err.offset, 12);
        assert_eq!(err.to_string(), r"invalid escape sequence `\q` in literal");
        assert!(unescape_string(r"\x4", 0).is_err());
        assert!(unescape_string(r"\xff", 0).is_err(), "raw non-ASCII bytes");
        assert!(unescape_string(r"\uD800", 0).is_err(), "surrogate");
        assert!(
            unescape_string(r"\'", 0).is_err(),
            "\\' only in char literals"
        );
        assert!(unescape_string("\\", 0).is_err());
        assert!(unescape_string("\\é", 0).is_err());
        assert!(unescape_string("\\u00é", 0).is_err());
        assert!(unescape_string(r"\x+1", 0).is_err(), "no sign");
    }

    #[test]
    fn decodes_char_literals() {
        assert_eq!(unescape_char("a", 0), Ok('a'));
        assert_eq!(unescape_char(r"\n", 0), Ok('\n'));
        assert_eq!(unescape_char(r"\'", 0), Ok('\''));
        assert_eq!(unescape_char("é", 0), Ok('é'));
        assert!(unescape_char("ab", 0).is_err());
        assert!(unescape_char("", 0).is_err());
    }

    #[test]
    fn quotes_like_strconv_quote() {
        assert_eq!(quote("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\x01é""#);
        assert_eq!(quote_char('A'), "'A'");
        assert_eq!(quote_char('\''), r"'\''");
    }
}
