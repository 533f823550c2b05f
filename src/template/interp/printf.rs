//! A subset of Go's `fmt.Sprintf` for `printf`: the verbs %s %v %d %q %t %x %X
//! %%, flags `-` `+` `0`, width and (for strings) precision, with Go's
//! in-band error forms such as `%!d(string=x)` and `%!s(MISSING)`.

use std::fmt::Write as _;

use super::error::InterpErrorKind as K;
use super::go_quote;
use super::value::{MAX_LEN, Value, check_len};

#[derive(Debug, Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
}

pub(crate) fn sprintf<'d>(format: &str, args: &[Value<'_>]) -> Result<Value<'d>, K> {
    let mut out = String::with_capacity(format.len());
    let mut next_arg = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if out.len() > MAX_LEN {
            check_len(out.len() as u128)?;
        }
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                '#' | ' ' => {}
                _ => break,
            }
            chars.next();
        }
        spec.width = read_number(&mut chars)?;
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(read_number(&mut chars)?);
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match next_arg.next() {
            Some(arg) => format_one(&mut out, verb, spec, arg)?,
            None => {
                let _ = write!(out, "%!{verb}(MISSING)");
            }
        }
    }
    let extra: Vec<&Value<'_>> = next_arg.collect();
    if !extra.is_empty() {
        out.push_str("%!(EXTRA ");
        for (i, arg) in extra.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}={}", arg.go_type(), arg.to_go_string());
        }
        out.push(')');
    }
    check_len(out.len() as u128)?;
    Ok(Value::Str(out))
}

fn read_number(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<usize, K> {
    let mut n: usize = 0;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        chars.next();
        n = n.saturating_mul(10).saturating_add(d as usize);
    }
    check_len(n as u128)?;
    Ok(n)
}

fn format_one(out: &mut String, verb: char, spec: Spec, arg: &Value<'_>) -> Result<(), K> {
    let body = match (verb, arg) {
        ('s' | 'v', Value::Str(s)) => match spec.precision {
            Some(p) => s.chars().take(p).collect(),
            None => s.clone(),
        },
        ('d' | 'v', Value::Int(i)) => signed(spec, i.to_string()),
        ('v', other) | ('s', other @ Value::Map(_)) => other.to_go_string(),
        ('t', Value::Bool(b)) => b.to_string(),
        ('q', Value::Str(s)) => go_quote::quote(s),
        ('q', Value::Int(i)) if char_of(*i).is_some() => {
            go_quote::quote_char(char_of(*i).unwrap_or('\u{fffd}'))
        }
        ('x', Value::Int(i)) => signed(spec, hex(*i, false)),
        ('X', Value::Int(i)) => signed(spec, hex(*i, true)),
        ('x', Value::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
        ('X', Value::Str(s)) => s.bytes().map(|b| format!("{b:02X}")).collect(),
        (verb, other) => {
            let _ = write!(
                out,
                "%!{verb}({}={})",
                other.go_type(),
                other.to_go_string()
            );
            return Ok(());
        }
    };
    pad(out, spec, &body, matches!(arg, Value::Int(_)));
    Ok(())
}

fn char_of(i: i64) -> Option<char> {
    u32::try_from(i).ok().and_then(char::from_u32)
}

fn hex(i: i64, upper: bool) -> String {
    let digits = if upper {
        format!("{:X}", i.unsigned_abs())
    } else {
        format!("{:x}", i.unsigned_abs())
    };
    if i < 0 { format!("-{digits}") } else { digits }
}

fn signed(spec: Spec, text: String) -> String {
    if spec.plus && !text.starts_with('-') {
        format!("+{text}")
    } else {
        text
    }
}

fn pad(out: &mut String, spec: Spec, body: &str, numeric: bool) {
    let len = body.chars().count();
    let fill = spec.width.saturating_sub(len);
    if spec.minus {
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero && numeric {
        // Zeros go after the sign, as in Go.
        let (sign, digits) = match body.strip_prefix(['-', '+']) {
            Some(rest) => (&body[..1], rest),
            None => ("", body),
        };
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(digits);
    } else {
        out.extend(std::iter::repeat_n(if spec.zero { '0' } else { ' ' }, fill));
        out.push_str(body);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic loudly
mod tests {
    use super::*;

    fn f(format: &str, args: &[Value<'_>]) -> String {
        sprintf(format, args).map(|v| v.to_go_string()).unwrap()
    }

    fn s(text: &str) -> Value<'static> {
        Value::Str(text.into())
    }

    #[test]
    fn common_verbs() {
        assert_eq!(
            f(
                "%s-%d-%v-%t",
                &[s("a"), Value::Int(4), Value::Bool(true), Value::Bool(false)]
            ),
            "a-4-true-false"
        );
        assert_eq!(f("%q", &[s("a\"b")]), r#""a\"b""#);
        assert_eq!(f("%q", &[Value::Int(65)]), "'A'");
        assert_eq!(
            f("%x %X %x", &[Value::Int(255), Value::Int(-255), s("hi")]),
            "ff -FF 6869"
        );
        assert_eq!(f("100%%", &[]), "100%");
    }

    #[test]
    fn width_flags_precision() {
        assert_eq!(
            f(
                "%02d|%5s|%-5s|%.2s",
                &[Value::Int(7), s("ab"), s("ab"), s("abc")]
            ),
            "07|   ab|ab   |ab"
        );
        assert_eq!(f("%05d|%+d", &[Value::Int(-42), Value::Int(3)]), "-0042|+3");
        assert!(
            sprintf("%99999999999d", &[Value::Int(1)]).is_err(),
            "width is capped"
        );
    }

    #[test]
    fn go_error_forms() {
        assert_eq!(f("%d", &[s("x")]), "%!d(string=x)");
        assert_eq!(f("%s", &[Value::Int(3)]), "%!s(int=3)");
        assert_eq!(f("%s %s", &[s("a")]), "a %!s(MISSING)");
        assert_eq!(
            f("%s", &[s("a"), Value::Int(1), s("b")]),
            "a%!(EXTRA int=1, string=b)"
        );
        assert_eq!(f("%z", &[s("a")]), "%!z(string=a)");
        assert_eq!(f("abc%", &[]), "abc%!(NOVERB)");
    }
}
