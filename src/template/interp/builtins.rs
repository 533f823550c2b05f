//! Go text/template's builtin functions that kiln keeps: comparisons, `not`,
//! `len`, `index`, `print` and `println` (`and`/`or` short-circuit in eval.rs,
//! `printf` is in printf.rs).

use std::cmp::Ordering;

use super::error::InterpErrorKind as K;
use super::functions::{Args, Func};
use super::printf;
use super::value::{MAX_LEN, Value, check_len};

/// Calls a builtin; `None` if `func` is not one handled here.
pub(crate) fn call<'d>(func: Func, args: &Args<'_, 'd>) -> Option<Result<Value<'d>, K>> {
    let v = args.values;
    let result = match func {
        Func::Not => Ok(Value::Bool(!v.first().is_some_and(Value::is_true))),
        Func::Len => len(v.first()),
        Func::Index => index(v),
        Func::Eq => eq(v).map(Value::Bool),
        Func::Ne => eq(v).map(|same| Value::Bool(!same)),
        Func::Lt => compare(v).map(|o| Value::Bool(o == Ordering::Less)),
        Func::Le => compare(v).map(|o| Value::Bool(o != Ordering::Greater)),
        Func::Gt => compare(v).map(|o| Value::Bool(o == Ordering::Greater)),
        Func::Ge => compare(v).map(|o| Value::Bool(o != Ordering::Less)),
        Func::Print => print(v, false),
        Func::Println => print(v, true),
        Func::Printf => args
            .str(0)
            .and_then(|format| printf::sprintf(format, &v[1..])),
        _ => return None,
    };
    Some(result)
}

fn len<'d>(v: Option<&Value<'d>>) -> Result<Value<'d>, K> {
    let n = match v {
        Some(Value::Str(s)) => s.len(),
        Some(Value::Map(m)) => m.len(),
        Some(other) => return Err(K::NoLength(other.describe())),
        None => 0,
    };
    Ok(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

/// `index x i j …` is `x[i][j]…`: a string gives the byte at an index, the
/// data map the value of a key.
fn index<'d>(v: &[Value<'d>]) -> Result<Value<'d>, K> {
    let Some((first, keys)) = v.split_first() else {
        return Err(K::CannotIndex("nothing"));
    };
    let mut current = first.clone();
    for key in keys {
        current = match (&current, key) {
            (Value::Str(s), Value::Int(i)) => {
                let byte = usize::try_from(*i).ok().and_then(|i| s.as_bytes().get(i));
                match byte {
                    Some(b) => Value::Int(i64::from(*b)),
                    None => {
                        return Err(K::IndexOutOfRange {
                            index: *i,
                            len: s.len(),
                        });
                    }
                }
            }
            (Value::Map(m), Value::Str(k)) => match m.get(k) {
                Some(value) => Value::Str(value.clone()),
                None => return Err(K::MissingKey(k.clone())),
            },
            (Value::Str(_) | Value::Map(_), key) => {
                return Err(K::WrongArgType {
                    function: "index".into(),
                    position: 2,
                    expected: if matches!(current, Value::Map(_)) {
                        "a string"
                    } else {
                        "an integer"
                    },
                    found: key.describe(),
                });
            }
            (other, _) => return Err(K::CannotIndex(other.describe())),
        };
    }
    Ok(current)
}

/// Go's `eq a b c…`: whether `a` equals any of the others. Mixed kinds are an
/// error, as in Go.
fn eq(v: &[Value<'_>]) -> Result<bool, K> {
    let Some((first, others)) = v.split_first() else {
        return Ok(false);
    };
    for other in others {
        let same = match (first, other) {
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (a, b) => {
                return Err(K::IncompatibleComparison {
                    left: a.describe(),
                    right: b.describe(),
                });
            }
        };
        if same {
            return Ok(true);
        }
    }
    Ok(false)
}

fn compare(v: &[Value<'_>]) -> Result<Ordering, K> {
    match v {
        [Value::Str(a), Value::Str(b)] => Ok(a.as_bytes().cmp(b.as_bytes())),
        [Value::Int(a), Value::Int(b)] => Ok(a.cmp(b)),
        [a @ (Value::Bool(_) | Value::Map(_)), _] | [_, a @ (Value::Bool(_) | Value::Map(_))] => {
            Err(K::NotOrdered(a.describe()))
        }
        [a, b] => Err(K::IncompatibleComparison {
            left: a.describe(),
            right: b.describe(),
        }),
        _ => Err(K::NotOrdered("nothing")),
    }
}

/// Go's `fmt.Sprint` (spaces only between two non-strings) or `fmt.Sprintln`
/// (spaces always, and a newline).
fn print<'d>(v: &[Value<'d>], line: bool) -> Result<Value<'d>, K> {
    let mut out = String::new();
    for (i, value) in v.iter().enumerate() {
        if i > 0 {
            let both_non_strings =
                !matches!(value, Value::Str(_)) && !matches!(v[i - 1], Value::Str(_));
            if line || both_non_strings {
                out.push(' ');
            }
        }
        value.write_to(&mut out);
        if out.len() > MAX_LEN {
            check_len(out.len() as u128)?;
        }
    }
    if line {
        out.push('\n');
    }
    Ok(Value::Str(out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic loudly
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn run<'d>(func: Func, values: &[Value<'d>]) -> Result<Value<'d>, K> {
        call(func, &Args { func, values }).expect("a builtin")
    }

    fn s(text: &str) -> Value<'static> {
        Value::Str(text.into())
    }

    #[test]
    fn comparisons() {
        assert_eq!(
            run(Func::Eq, &[s("a"), s("b"), s("a")]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            run(Func::Eq, &[Value::Int(1), Value::Int(2)]),
            Ok(Value::Bool(false))
        );
        assert_eq!(run(Func::Ne, &[s("a"), s("b")]), Ok(Value::Bool(true)));
        assert_eq!(
            run(Func::Eq, &[s("1"), Value::Int(1)])
                .unwrap_err()
                .to_string(),
            "cannot compare a string with an integer"
        );
        assert_eq!(run(Func::Lt, &[s("a"), s("b")]), Ok(Value::Bool(true)));
        assert_eq!(
            run(Func::Le, &[Value::Int(2), Value::Int(2)]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            run(Func::Gt, &[Value::Int(-1), Value::Int(2)]),
            Ok(Value::Bool(false))
        );
        assert_eq!(run(Func::Ge, &[s("b"), s("a")]), Ok(Value::Bool(true)));
        assert_eq!(
            run(Func::Lt, &[Value::Bool(true), Value::Bool(false)])
                .unwrap_err()
                .to_string(),
            "a boolean cannot be ordered"
        );
    }

    #[test]
    fn not_len_index() {
        assert_eq!(run(Func::Not, &[s("")]), Ok(Value::Bool(true)));
        assert_eq!(
            run(Func::Len, &[s("héllo")]),
            Ok(Value::Int(6)),
            "bytes, as in Go"
        );
        assert!(run(Func::Len, &[Value::Int(3)]).is_err());
        assert_eq!(
            run(Func::Index, &[s("abc"), Value::Int(1)]),
            Ok(Value::Int(98))
        );
        assert_eq!(
            run(Func::Index, &[s("abc"), Value::Int(3)])
                .unwrap_err()
                .to_string(),
            "index 3 is out of range (length 3)"
        );
        let mut m = BTreeMap::new();
        m.insert("HTTPIP".to_string(), "10.0.2.2".to_string());
        assert_eq!(
            run(Func::Index, &[Value::Map(&m), s("HTTPIP")]),
            Ok(s("10.0.2.2"))
        );
        assert!(run(Func::Index, &[Value::Map(&m), s("nope")]).is_err());
        assert!(run(Func::Index, &[Value::Map(&m), Value::Int(0)]).is_err());
        assert_eq!(run(Func::Index, &[s("abc")]), Ok(s("abc")));
    }

    #[test]
    fn print_and_println_space_like_go() {
        assert_eq!(run(Func::Print, &[s("a"), s("b")]), Ok(s("ab")));
        assert_eq!(
            run(
                Func::Print,
                &[Value::Int(1), Value::Int(2), s("x"), Value::Int(3)]
            ),
            Ok(s("1 2x3"))
        );
        assert_eq!(run(Func::Println, &[s("a"), Value::Int(1)]), Ok(s("a 1\n")));
        assert_eq!(run(Func::Print, &[]), Ok(s("")));
    }
}
