//! The values a template computes with — Go's string, int and bool, plus the
//! data map that `.` starts as — with Go's truthiness and print forms.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::error::InterpErrorKind;

/// The longest string any function or the whole render may produce. Keeps
/// nested `replace_all` and friends from exhausting memory.
pub(crate) const MAX_LEN: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'d> {
    Str(String),
    Int(i64),
    Bool(bool),
    /// The template data (`.` at the top level).
    Map(&'d BTreeMap<String, String>),
}

impl Value<'_> {
    /// How the value is named in error messages ("… but is a string").
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Bool(_) => "a boolean",
            Value::Map(_) => "the template data",
        }
    }

    /// The Go type name, as `printf` shows it in `%!d(string=x)`.
    pub(crate) fn go_type(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Int(_) => "int",
            Value::Bool(_) => "bool",
            Value::Map(_) => "map[string]string",
        }
    }

    /// Go template truthiness: the zero value and empty things are false.
    pub(crate) fn is_true(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Int(i) => *i != 0,
            Value::Bool(b) => *b,
            Value::Map(m) => !m.is_empty(),
        }
    }

    /// Appends the value as Go's `fmt.Print` shows it.
    pub(crate) fn write_to(&self, out: &mut String) {
        match self {
            Value::Str(s) => out.push_str(s),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Value::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let _ = write!(out, "{k}:{v}");
                }
                out.push(']');
            }
        }
    }

    pub(crate) fn to_go_string(&self) -> String {
        let mut s = String::new();
        self.write_to(&mut s);
        s
    }
}

/// Fails if a string about to be built would exceed [`MAX_LEN`].
pub(crate) fn check_len(len: u128) -> Result<(), InterpErrorKind> {
    if len > MAX_LEN as u128 {
        Err(InterpErrorKind::TooLarge(MAX_LEN))
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic loudly
mod tests {
    use super::*;

    #[test]
    fn truthiness_follows_go() {
        let empty = BTreeMap::new();
        assert!(!Value::Str(String::new()).is_true());
        assert!(Value::Str("0".into()).is_true());
        assert!(!Value::Int(0).is_true());
        assert!(Value::Int(-1).is_true());
        assert!(!Value::Bool(false).is_true());
        assert!(!Value::Map(&empty).is_true());
    }

    #[test]
    fn prints_like_fmt_print() {
        let mut m = BTreeMap::new();
        m.insert("b".to_string(), "2".to_string());
        m.insert("a".to_string(), "1".to_string());
        assert_eq!(Value::Map(&m).to_go_string(), "map[a:1 b:2]");
        assert_eq!(Value::Int(-5).to_go_string(), "-5");
        assert_eq!(Value::Bool(true).to_go_string(), "true");
    }
}
