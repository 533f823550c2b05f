//! Splits a template into text and `{{ … }}` actions, applying `{{- ` / ` -}}`
//! trim markers and dropping `{{/* … */}}` comments; each action becomes a
//! list of tokens carrying their byte span in the source.

use super::error::{InterpError, InterpErrorKind as K};
use super::go_quote;

/// One piece of a template: literal text or an action's tokens.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Text(String),
    Action {
        /// Offset of the action's `{{`.
        start: usize,
        tokens: Vec<Token>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A function name, keyword, `true`, `false` or `nil`.
    Ident(String),
    /// `.A` or `.A.B`: each name with the offset of its `.`.
    Field(Vec<(String, usize)>),
    /// `.` alone.
    Dot,
    Str(String),
    Int(i64),
    Pipe,
    LParen,
    RParen,
}

impl Tok {
    /// How the token is named in "unexpected …" errors.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("`{name}`"),
            Tok::Field(names) => {
                let joined: String = names.iter().map(|(n, _)| format!(".{n}")).collect();
                format!("`{joined}`")
            }
            Tok::Dot => "`.`".into(),
            Tok::Str(_) => "string".into(),
            Tok::Int(_) => "number".into(),
            Tok::Pipe => "`|`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
        }
    }
}

const OPEN: &str = "{{";
const CLOSE: &str = "}}";

/// Go's notion of space for trim markers and token separation.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn trim_space_end(s: &str) -> &str {
    s.trim_end_matches(is_space)
}

fn trim_space_start(s: &str) -> &str {
    s.trim_start_matches(is_space)
}

/// Splits `src` into text and action items.
pub(crate) fn lex(src: &str) -> Result<Vec<Item>, InterpError> {
    let mut items = Vec::new();
    let mut pos = 0;
    let mut trim_next_text = false;
    loop {
        let rest = &src[pos..];
        let Some(rel) = rest.find(OPEN) else {
            push_text(&mut items, rest, trim_next_text, false);
            return Ok(items);
        };
        let open = pos + rel;
        let after_open = &src[open + OPEN.len()..];
        // `{{-` is a trim marker only when followed by a space, as in Go
        // (`{{-3}}` is the number -3).
        let trim_left = after_open.starts_with('-') && after_open[1..].starts_with(is_space);
        push_text(&mut items, &rest[..rel], trim_next_text, trim_left);
        let inner = open + OPEN.len() + if trim_left { 2 } else { 0 };

        if src[inner..].starts_with("/*") {
            let (end, trim_right) = skip_comment(src, open, inner)?;
            pos = end;
            trim_next_text = trim_right;
            continue;
        }
        let (tokens, end, trim_right) = lex_action(src, open, inner)?;
        items.push(Item::Action {
            start: open,
            tokens,
        });
        pos = end;
        trim_next_text = trim_right;
    }
}

fn push_text(items: &mut Vec<Item>, text: &str, trim_start: bool, trim_end: bool) {
    let text = if trim_start {
        trim_space_start(text)
    } else {
        text
    };
    let text = if trim_end { trim_space_end(text) } else { text };
    if !text.is_empty() {
        items.push(Item::Text(text.to_string()));
    }
}

/// If `src[at..]` closes an action, returns (offset after it, right-trim?).
fn close_at(src: &str, at: usize) -> Option<(usize, bool)> {
    let rest = &src[at..];
    if rest.starts_with(CLOSE) {
        return Some((at + CLOSE.len(), false));
    }
    let mut chars = rest.chars();
    if chars.next().is_some_and(is_space) && chars.as_str().starts_with("-}}") {
        // The space is one byte (Go's spaces are all ASCII).
        return Some((at + 1 + "-}}".len(), true));
    }
    None
}

/// Skips `/* … */` and the action's close, which must follow it directly.
fn skip_comment(src: &str, open: usize, inner: usize) -> Result<(usize, bool), InterpError> {
    let body = inner + 2;
    let Some(rel) = src[body..].find("*/") else {
        return Err(InterpError::new(open, K::UnterminatedComment));
    };
    let after = body + rel + 2;
    close_at(src, after).ok_or_else(|| InterpError::new(after, K::CommentNotAtEnd))
}

/// Lexes tokens from `inner` to the action's close.
/// Returns the tokens, the offset after the close and whether it trims.
fn lex_action(
    src: &str,
    open: usize,
    inner: usize,
) -> Result<(Vec<Token>, usize, bool), InterpError> {
    let mut tokens: Vec<Token> = Vec::new();
    let mut p = inner;
    loop {
        if let Some((end, trim)) = close_at(src, p) {
            return Ok((tokens, end, trim));
        }
        let Some(c) = src[p..].chars().next() else {
            return Err(InterpError::new(open, K::UnterminatedAction));
        };
        let start = p;
        let single = |tok| Token {
            tok,
            start,
            end: start + 1,
        };
        let token = match c {
            c if is_space(c) => {
                p += 1;
                continue;
            }
            '|' => single(Tok::Pipe),
            '(' => single(Tok::LParen),
            ')' => single(Tok::RParen),
            '"' => lex_quoted(src, start)?,
            '`' => lex_raw(src, start)?,
            '\'' => lex_char(src, start)?,
            '.' => lex_dot(src, start)?,
            '0'..='9' => lex_number(src, start)?,
            '+' | '-' if src[start + 1..].starts_with(|d: char| d.is_ascii_digit()) => {
                lex_number(src, start)?
            }
            '$' => {
                return Err(InterpError::new(
                    start,
                    K::UnsupportedSyntax("template variables (`$name`)"),
                ));
            }
            c if is_ident_char(c) => lex_ident(src, start)?,
            c => return Err(InterpError::new(start, K::UnexpectedChar(c))),
        };
        p = token.end;
        tokens.push(token);
    }
}

fn lex_quoted(src: &str, start: usize) -> Result<Token, InterpError> {
    let body = start + 1;
    let mut escaped = false;
    for (i, c) in src[body..].char_indices() {
        match c {
            '\n' => break,
            '\\' if !escaped => escaped = true,
            '"' if !escaped => {
                let text = go_quote::unescape_string(&src[body..body + i], body)?;
                return Ok(Token {
                    tok: Tok::Str(text),
                    start,
                    end: body + i + 1,
                });
            }
            _ => escaped = false,
        }
    }
    Err(InterpError::new(start, K::UnterminatedString))
}

fn lex_raw(src: &str, start: usize) -> Result<Token, InterpError> {
    let body = start + 1;
    let Some(len) = src[body..].find('`') else {
        return Err(InterpError::new(start, K::UnterminatedString));
    };
    // Go drops carriage returns from raw strings.
    let text = src[body..body + len].replace('\r', "");
    Ok(Token {
        tok: Tok::Str(text),
        start,
        end: body + len + 1,
    })
}

fn lex_char(src: &str, start: usize) -> Result<Token, InterpError> {
    let body = start + 1;
    let mut escaped = false;
    for (i, c) in src[body..].char_indices() {
        match c {
            '\n' => break,
            '\\' if !escaped => escaped = true,
            '\'' if !escaped => {
                let c = go_quote::unescape_char(&src[body..body + i], body)?;
                return Ok(Token {
                    tok: Tok::Int(i64::from(u32::from(c))),
                    start,
                    end: body + i + 1,
                });
            }
            _ => escaped = false,
        }
    }
    Err(InterpError::new(start, K::UnterminatedChar))
}

/// Length in bytes of the identifier at the start of `s`.
fn ident_len(s: &str) -> usize {
    s.find(|c: char| !is_ident_char(c)).unwrap_or(s.len())
}

/// `.`, `.Field`, `.A.B` (a leading `.5` is a number).
fn lex_dot(src: &str, start: usize) -> Result<Token, InterpError> {
    if src[start + 1..].starts_with(|d: char| d.is_ascii_digit()) {
        return lex_number(src, start);
    }
    let mut names = Vec::new();
    let mut p = start;
    while src[p..].starts_with('.') {
        let len = ident_len(&src[p + 1..]);
        if len == 0 {
            if names.is_empty() {
                break;
            }
            // `.A.` — a dangling dot after a field.
            return Err(InterpError::new(p, K::UnexpectedChar('.')));
        }
        names.push((src[p + 1..p + 1 + len].to_string(), p));
        p += 1 + len;
    }
    if names.is_empty() {
        return Ok(Token {
            tok: Tok::Dot,
            start,
            end: start + 1,
        });
    }
    Ok(Token {
        tok: Tok::Field(names),
        start,
        end: p,
    })
}

fn lex_ident(src: &str, start: usize) -> Result<Token, InterpError> {
    let end = start + ident_len(&src[start..]);
    if src[end..].starts_with('.') {
        // Go's `$x.Field` / `func.Field` chains are not part of kiln's subset.
        return Err(InterpError::new(end, K::UnexpectedChar('.')));
    }
    Ok(Token {
        tok: Tok::Ident(src[start..end].to_string()),
        start,
        end,
    })
}

/// Scans a Go number literal and accepts it only if it is an integer.
fn lex_number(src: &str, start: usize) -> Result<Token, InterpError> {
    let bytes = src.as_bytes();
    let mut end = start;
    if matches!(bytes.get(end), Some(b'+' | b'-')) {
        end += 1;
    }
    while let Some(&b) = bytes.get(end) {
        let exponent_sign =
            matches!(b, b'+' | b'-') && matches!(bytes[end - 1], b'e' | b'E' | b'p' | b'P');
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || exponent_sign {
            end += 1;
        } else {
            break;
        }
    }
    // `end` only ever advanced over ASCII bytes, so it is a char boundary.
    let text = &src[start..end];
    let value = parse_int(text).map_err(|kind| InterpError::new(start, kind))?;
    Ok(Token {
        tok: Tok::Int(value),
        start,
        end,
    })
}

fn parse_int(text: &str) -> Result<i64, K> {
    let invalid = || K::InvalidNumber(text.to_string());
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|b| b.is_ascii_digit())
    {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    let float_marks: &[char] = if radix == 16 {
        &['.', 'p']
    } else {
        &['.', 'e']
    };
    if (radix == 10 || radix == 16) && digits.contains(float_marks) {
        return Err(K::FloatNotSupported(text.to_string()));
    }
    let digits = digits.strip_prefix('_').unwrap_or(digits);
    if digits.is_empty() || digits.ends_with('_') || digits.contains("__") {
        return Err(invalid());
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if !clean.chars().all(|c| c.is_digit(radix)) {
        return Err(invalid());
    }
    let magnitude = u64::from_str_radix(&clean, radix).map_err(|_| invalid())?;
    let signed = if negative {
        0i128 - i128::from(magnitude)
    } else {
        i128::from(magnitude)
    };
    i64::try_from(signed).map_err(|_| invalid())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic loudly
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        match lex(src).unwrap().into_iter().next() {
            Some(Item::Action { tokens, .. }) => tokens.into_iter().map(|t| t.tok).collect(),
            other => panic!("expected an action, got {other:?}"),
        }
    }

    fn err(src: &str) -> (usize, String) {
        let e = lex(src).unwrap_err();
        (e.offset, e.to_string())
    }

    fn text(s: &str) -> Item {
        Item::Text(s.into())
    }

    #[test]
    fn splits_text_and_actions() {
        let items = lex("a {{ x }} b").unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0], text("a "));
        assert!(matches!(&items[1], Item::Action { start: 2, .. }));
        assert_eq!(items[2], text(" b"));
        assert_eq!(
            lex("no actions }} here").unwrap(),
            vec![text("no actions }} here")]
        );
        assert_eq!(lex("").unwrap(), vec![]);
    }

    #[test]
    fn trim_markers_need_a_space() {
        let items = lex("a \n {{- x -}} \t b").unwrap();
        assert_eq!(items[0], text("a"));
        assert_eq!(items[2], text("b"));
        // `{{-3}}` is a negative number, not a trim marker.
        assert_eq!(toks("{{-3}}"), vec![Tok::Int(-3)]);
        assert_eq!(lex("a {{-3}}").unwrap()[0], text("a "));
        // `-}}` without a preceding space is not a trim marker.
        assert_eq!(err("{{ x-}}").0, 4);
    }

    #[test]
    fn comments_are_dropped() {
        assert_eq!(lex("a{{/* c */}}b").unwrap(), vec![text("a"), text("b")]);
        assert_eq!(
            lex("a {{- /* c */ -}} b").unwrap(),
            vec![text("a"), text("b")]
        );
        assert_eq!(lex("{{/* }} */}}").unwrap(), vec![]);
        assert_eq!(
            err("ab{{/* c */ }}"),
            (11, "a comment must end right before `}}`".into())
        );
        assert_eq!(
            err("ab{{/* c }}"),
            (2, "unterminated comment: expected `*/}}`".into())
        );
    }

    #[test]
    fn lexes_tokens() {
        assert_eq!(
            toks(r#"{{ f "s\n" `r\n` 12 'a' . .A.B | ( ) }}"#),
            vec![
                Tok::Ident("f".into()),
                Tok::Str("s\n".into()),
                Tok::Str("r\\n".into()),
                Tok::Int(12),
                Tok::Int(97),
                Tok::Dot,
                Tok::Field(vec![("A".into(), 26), ("B".into(), 28)]),
                Tok::Pipe,
                Tok::LParen,
                Tok::RParen,
            ]
        );
        assert_eq!(
            toks("{{\n user\n `x`\n}}"),
            vec![Tok::Ident("user".into()), Tok::Str("x".into())]
        );
        assert_eq!(toks("{{`a\r\nb`}}"), vec![Tok::Str("a\nb".into())]);
        assert_eq!(toks(r#"{{"}}"}}"#), vec![Tok::Str("}}".into())]);
    }

    #[test]
    fn lexes_go_integers() {
        for (src, want) in [
            ("{{0x1F}}", 31),
            ("{{0o17}}", 15),
            ("{{017}}", 15),
            ("{{0b101}}", 5),
            ("{{1_000}}", 1000),
            ("{{+7}}", 7),
            ("{{-9223372036854775808}}", i64::MIN),
            ("{{0}}", 0),
        ] {
            assert_eq!(toks(src), vec![Tok::Int(want)], "{src}");
        }
        assert_eq!(
            err("{{ 1.5 }}"),
            (
                3,
                "number `1.5` is not an integer; kiln supports integers only".into()
            )
        );
        assert_eq!(err("{{ 1e3 }}").0, 3);
        assert_eq!(err("{{ 12ab }}"), (3, "invalid number `12ab`".into()));
        assert!(lex("{{ 99999999999999999999 }}").is_err());
        assert!(lex("{{ 1__0 }}").is_err());
        assert!(lex("{{ 08 }}").is_err());
        assert!(lex("{{ 0x }}").is_err());
    }

    #[test]
    fn errors_point_at_the_problem() {
        assert_eq!(
            err("ab {{ user `x`"),
            (3, "unterminated action: expected `}}`".into())
        );
        assert_eq!(
            err("{{ \"abc }}"),
            (3, "unterminated string literal".into())
        );
        assert_eq!(err("{{ `abc }}"), (3, "unterminated string literal".into()));
        assert_eq!(
            err("{{ f # }}"),
            (5, "unexpected character `#` in action".into())
        );
        assert_eq!(err("{{ $x }}").0, 3);
        assert_eq!(err("{{ .A. }}").0, 5);
        assert_eq!(err("{{ f.A }}").0, 4);
        assert_eq!(err("{{ 'ab' }}").0, 4);
        assert_eq!(err("{{ 'a }}").0, 3);
        assert_eq!(err("{{"), (0, "unterminated action: expected `}}`".into()));
        assert_eq!(err("{{-"), (2, "unexpected character `-` in action".into()));
        assert_eq!(
            err("{{- "),
            (0, "unterminated action: expected `}}`".into())
        );
    }
}
