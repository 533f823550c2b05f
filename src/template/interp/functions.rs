//! The function table: every name a template may call, its arity (checked at
//! parse time), and the Packer functions themselves (`user`, `isotime`, …).

use super::Context;
use super::error::{InterpErrorKind as K, did_you_mean};
use super::go_time;
use super::value::{Value, check_len};

/// A function kiln knows. Go's builtins live in `builtins.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    // Go text/template builtins
    And,
    Or,
    Not,
    Len,
    Index,
    Print,
    Printf,
    Println,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    // Packer
    User,
    Env,
    Timestamp,
    Isotime,
    Uuid,
    Pwd,
    TemplateDir,
    BuildName,
    BuildType,
    PackerVersion,
    Lower,
    Upper,
    Split,
    Replace,
    ReplaceAll,
    CleanResourceName,
    Build,
}

/// How many arguments a function takes (counting a piped value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arity {
    Exact(usize),
    Range(usize, usize),
    AtLeast(usize),
}

impl Arity {
    fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exact(k) => n == k,
            Arity::Range(lo, hi) => (lo..=hi).contains(&n),
            Arity::AtLeast(k) => n >= k,
        }
    }

    fn describe(self) -> String {
        let args = |n: usize| if n == 1 { "argument" } else { "arguments" };
        match self {
            Arity::Exact(0) => "no arguments".into(),
            Arity::Exact(n) => format!("{n} {}", args(n)),
            Arity::Range(lo, hi) if hi == lo + 1 => format!("{lo} or {hi} {}", args(hi)),
            Arity::Range(lo, hi) => format!("{lo} to {hi} {}", args(hi)),
            Arity::AtLeast(n) => format!("at least {n} {}", args(n)),
        }
    }
}

use Arity::{AtLeast, Exact, Range};

const TABLE: &[(&str, Func, Arity)] = &[
    ("and", Func::And, AtLeast(1)),
    ("or", Func::Or, AtLeast(1)),
    ("not", Func::Not, Exact(1)),
    ("len", Func::Len, Exact(1)),
    ("index", Func::Index, AtLeast(1)),
    ("print", Func::Print, AtLeast(0)),
    ("printf", Func::Printf, AtLeast(1)),
    ("println", Func::Println, AtLeast(0)),
    ("eq", Func::Eq, AtLeast(2)),
    ("ne", Func::Ne, Exact(2)),
    ("lt", Func::Lt, Exact(2)),
    ("le", Func::Le, Exact(2)),
    ("gt", Func::Gt, Exact(2)),
    ("ge", Func::Ge, Exact(2)),
    ("user", Func::User, Exact(1)),
    ("env", Func::Env, Exact(1)),
    ("timestamp", Func::Timestamp, Exact(0)),
    ("isotime", Func::Isotime, Range(0, 1)),
    ("uuid", Func::Uuid, Exact(0)),
    ("pwd", Func::Pwd, Exact(0)),
    ("template_dir", Func::TemplateDir, Exact(0)),
    ("build_name", Func::BuildName, Exact(0)),
    ("build_type", Func::BuildType, Exact(0)),
    ("packer_version", Func::PackerVersion, Exact(0)),
    ("lower", Func::Lower, Exact(1)),
    ("upper", Func::Upper, Exact(1)),
    ("split", Func::Split, Exact(3)),
    ("replace", Func::Replace, Exact(4)),
    ("replace_all", Func::ReplaceAll, Exact(3)),
    ("clean_resource_name", Func::CleanResourceName, Exact(1)),
    ("build", Func::Build, Exact(1)),
];

/// Functions Packer (or Go) has that kiln deliberately does not, with a hint.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "vault",
        "; pass the secret in with `-var` or `-var-file` instead",
    ),
    (
        "consul_key",
        "; pass the value in with `-var` or `-var-file` instead",
    ),
    (
        "aws_secretsmanager",
        "; pass the secret in with `-var` or `-var-file` instead",
    ),
    (
        "aws_secretsmanager_raw",
        "; pass the secret in with `-var` or `-var-file` instead",
    ),
    (
        "sed",
        " (Packer deprecated it too); use `replace` or `replace_all`",
    ),
    ("strftime", "; use `isotime` with a Go layout"),
    ("html", ""),
    ("js", ""),
    ("urlquery", ""),
    ("slice", ""),
    ("call", ""),
];

/// Resolves a function name, or explains why it cannot be called.
pub(crate) fn lookup(name: &str) -> Result<Func, K> {
    if let Some((_, func, _)) = TABLE.iter().find(|(n, _, _)| *n == name) {
        return Ok(*func);
    }
    if let Some((_, hint)) = UNSUPPORTED.iter().find(|(n, _)| *n == name) {
        return Err(K::UnsupportedFunction {
            name: name.to_string(),
            hint,
        });
    }
    Err(K::UnknownFunction {
        name: name.to_string(),
        suggestion: did_you_mean(name, TABLE.iter().map(|(n, _, _)| *n)),
    })
}

impl Func {
    fn entry(self) -> &'static (&'static str, Func, Arity) {
        // Every variant is in TABLE (checked by a test); the fallback is unreachable.
        TABLE
            .iter()
            .find(|(_, f, _)| *f == self)
            .unwrap_or(&("?", Func::Print, AtLeast(0)))
    }

    pub(crate) fn name(self) -> &'static str {
        self.entry().0
    }

    /// Checks the number of arguments a call site passes.
    pub(crate) fn check_arity(self, n: usize) -> Result<(), K> {
        let arity = self.entry().2;
        if arity.accepts(n) {
            Ok(())
        } else {
            Err(K::WrongArgCount {
                function: self.name().to_string(),
                expected: arity.describe(),
                found: n,
            })
        }
    }
}

/// Typed access to a call's arguments, with errors naming the function.
pub(crate) struct Args<'v, 'd> {
    pub func: Func,
    pub values: &'v [Value<'d>],
}

impl<'v, 'd> Args<'v, 'd> {
    fn wrong(&self, i: usize, expected: &'static str) -> K {
        K::WrongArgType {
            function: self.func.name().to_string(),
            position: i + 1,
            expected,
            found: self.values.get(i).map_or("missing", Value::describe),
        }
    }

    pub(crate) fn str(&self, i: usize) -> Result<&'v str, K> {
        match self.values.get(i) {
            Some(Value::Str(s)) => Ok(s),
            _ => Err(self.wrong(i, "a string")),
        }
    }

    pub(crate) fn int(&self, i: usize) -> Result<i64, K> {
        match self.values.get(i) {
            Some(Value::Int(n)) => Ok(*n),
            _ => Err(self.wrong(i, "an integer")),
        }
    }
}

/// Calls a Packer function (the builtins are dispatched in `builtins.rs`).
pub(crate) fn call_packer<'d>(
    func: Func,
    args: &Args<'_, 'd>,
    ctx: &Context<'_>,
) -> Result<Value<'d>, K> {
    let s = |text: &str| Ok(Value::Str(text.to_string()));
    match func {
        Func::User => {
            let name = args.str(0)?;
            match ctx.user_vars.get(name) {
                Some(v) => s(v),
                // As in Packer: among the variables (where `env` is allowed)
                // an unknown one is an error; elsewhere it renders empty,
                // and validation has warned about it.
                None if ctx.env.is_some() => Err(K::UndeclaredVariable {
                    name: name.to_string(),
                    suggestion: did_you_mean(name, ctx.user_vars.keys().map(String::as_str)),
                }),
                None => Ok(Value::Str(String::new())),
            }
        }
        Func::Env => {
            let name = args.str(0)?;
            let lookup = ctx.env.ok_or(K::EnvNotAllowed)?;
            Ok(Value::Str(lookup(name).unwrap_or_default()))
        }
        Func::Timestamp => s(&go_time::unix_parts(ctx.init_time).0.to_string()),
        Func::Isotime => {
            let layout = if args.values.is_empty() {
                go_time::RFC3339
            } else {
                args.str(0)?
            };
            // Each layout byte yields at most a few dozen output bytes.
            check_len(layout.len() as u128 * 16)?;
            Ok(Value::Str(go_time::format(ctx.init_time, layout)))
        }
        Func::Uuid => Ok(Value::Str(uuid::Uuid::new_v4().to_string())),
        Func::Pwd => path(ctx.pwd, "pwd"),
        Func::TemplateDir => path(ctx.template_dir, "template_dir"),
        Func::BuildName => present(ctx.build_name, "build_name"),
        Func::BuildType => present(ctx.build_type, "build_type"),
        Func::PackerVersion => present(Some(ctx.packer_version), "packer_version"),
        Func::Lower => case_mapped(args.str(0)?, str::to_lowercase),
        Func::Upper => case_mapped(args.str(0)?, str::to_uppercase),
        Func::Split => split(args.str(0)?, args.str(1)?, args.int(2)?),
        Func::Replace => replace(args.str(3)?, args.str(0)?, args.str(1)?, args.int(2)?),
        Func::ReplaceAll => replace(args.str(2)?, args.str(0)?, args.str(1)?, -1),
        Func::CleanResourceName => s(&clean_resource_name(args.str(0)?)),
        Func::Build => {
            let name = args.str(0)?;
            let values = ctx.build_values.ok_or(K::NoBuildValues)?;
            match values.get(name) {
                Some(v) => s(v),
                None => Err(K::UnknownBuildValue {
                    name: name.to_string(),
                    suggestion: did_you_mean(name, values.keys().map(String::as_str)),
                }),
            }
        }
        _ => Err(K::UnknownFunction {
            name: func.name().to_string(),
            suggestion: super::error::DidYouMean(None),
        }),
    }
}

fn path<'d>(p: &std::path::Path, what: &'static str) -> Result<Value<'d>, K> {
    if p.as_os_str().is_empty() {
        return Err(K::NotAvailable(what));
    }
    Ok(Value::Str(p.to_string_lossy().into_owned()))
}

fn present<'d>(v: Option<&str>, what: &'static str) -> Result<Value<'d>, K> {
    match v {
        Some(v) if !v.is_empty() => Ok(Value::Str(v.to_string())),
        _ => Err(K::NotAvailable(what)),
    }
}

fn case_mapped<'d>(s: &str, map: fn(&str) -> String) -> Result<Value<'d>, K> {
    // Case mapping grows a string at most threefold (e.g. `ΐ`), so the
    // result is built first and checked after.
    let mapped = map(s);
    check_len(mapped.len() as u128)?;
    Ok(Value::Str(mapped))
}

/// `split s sep n`: the nth piece of Go's `strings.Split(s, sep)`.
fn split<'d>(s: &str, sep: &str, n: i64) -> Result<Value<'d>, K> {
    let piece = if sep.is_empty() {
        // Go splits into UTF-8 sequences when the separator is empty.
        let count = s.chars().count();
        usize::try_from(n)
            .ok()
            .and_then(|i| s.char_indices().nth(i))
            .map(|(at, c)| &s[at..at + c.len_utf8()])
            .ok_or(count)
    } else {
        let count = s.matches(sep).count() + 1;
        usize::try_from(n)
            .ok()
            .and_then(|i| s.split(sep).nth(i))
            .ok_or(count)
    };
    match piece {
        Ok(p) => Ok(Value::Str(p.to_string())),
        Err(count) => Err(K::SplitOutOfRange {
            index: n,
            separator: sep.to_string(),
            count,
        }),
    }
}

/// Go's `strings.Replace(s, old, new, n)`: n < 0 replaces every match; an empty
/// `old` matches before every character and at the end.
fn replace<'d>(s: &str, old: &str, new: &str, n: i64) -> Result<Value<'d>, K> {
    let matches = if old.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(old).count()
    };
    let replaced = match usize::try_from(n) {
        Ok(limit) => matches.min(limit),
        Err(_) => matches,
    };
    let grown = replaced as u128 * new.len() as u128;
    check_len((s.len() as u128 + grown).saturating_sub(replaced as u128 * old.len() as u128))?;
    let out = if n < 0 {
        s.replace(old, new)
    } else {
        s.replacen(old, new, replaced)
    };
    Ok(Value::Str(out))
}

/// Packer's GCE rule: lower-case, then every byte that is not `[a-z0-9]`
/// becomes `-` (so a multi-byte character becomes several dashes, as in Packer).
pub(crate) fn clean_resource_name(s: &str) -> String {
    s.to_lowercase()
        .bytes()
        .map(|b| {
            if b.is_ascii_lowercase() || b.is_ascii_digit() {
                char::from(b)
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic loudly
mod tests {
    use super::*;

    #[test]
    fn every_function_is_in_the_table() {
        for (name, func, _) in TABLE {
            assert_eq!(func.name(), *name);
            assert_eq!(lookup(name), Ok(*func));
        }
    }

    #[test]
    fn unknown_and_unsupported_names_explain_themselves() {
        assert_eq!(
            lookup("lowr").unwrap_err().to_string(),
            "unknown function `lowr` (did you mean `lower`?)"
        );
        assert_eq!(
            lookup("clean_resource_nam").unwrap_err().to_string(),
            "unknown function `clean_resource_nam` (did you mean `clean_resource_name`?)"
        );
        assert_eq!(
            lookup("frobnicate").unwrap_err().to_string(),
            "unknown function `frobnicate`"
        );
        assert_eq!(
            lookup("vault").unwrap_err().to_string(),
            "function `vault` is not supported by kiln; pass the secret in with `-var` or `-var-file` instead"
        );
        assert!(matches!(lookup("sed"), Err(K::UnsupportedFunction { .. })));
    }

    #[test]
    fn arity_messages() {
        assert_eq!(
            Func::Split.check_arity(2).unwrap_err().to_string(),
            "`split` takes 3 arguments, but is given 2"
        );
        assert_eq!(
            Func::Timestamp.check_arity(1).unwrap_err().to_string(),
            "`timestamp` takes no arguments, but is given 1"
        );
        assert_eq!(
            Func::Isotime.check_arity(2).unwrap_err().to_string(),
            "`isotime` takes 0 or 1 argument, but is given 2"
        );
        assert!(Func::Isotime.check_arity(0).is_ok());
        assert!(Func::Print.check_arity(0).is_ok());
    }

    #[test]
    fn split_follows_go() {
        let get = |s, sep, n| split(s, sep, n).map(|v| v.to_go_string());
        assert_eq!(get("a-b-c", "-", 1).as_deref(), Ok("b"));
        assert_eq!(get("a--c", "-", 1).as_deref(), Ok(""));
        assert_eq!(get("héllo", "", 1).as_deref(), Ok("é"));
        assert_eq!(
            get("a-b", "-", 2).unwrap_err().to_string(),
            "`split`: there is no element 2 when splitting by \"-\" (found 2)"
        );
        assert!(get("a-b", "-", -1).is_err());
        assert!(
            get("", "", 0).is_err(),
            "Go splits an empty string into no pieces"
        );
    }

    #[test]
    fn replace_follows_go() {
        let get = |s, old, new, n| replace(s, old, new, n).map(|v| v.to_go_string());
        assert_eq!(
            get("oink oink oink", "k", "ky", 2).as_deref(),
            Ok("oinky oinky oink")
        );
        assert_eq!(
            get("oink oink oink", "oink", "moo", -1).as_deref(),
            Ok("moo moo moo")
        );
        assert_eq!(get("abc", "", "-", -1).as_deref(), Ok("-a-b-c-"));
        assert_eq!(get("abc", "", "-", 2).as_deref(), Ok("-a-bc"));
        assert_eq!(get("abc", "b", "x", 0).as_deref(), Ok("abc"));
        let big = "x".repeat(1 << 10);
        assert_eq!(
            replace(&big, "", &big, -1).unwrap_err(),
            K::TooLarge(super::super::value::MAX_LEN)
        );
    }

    #[test]
    fn clean_resource_name_follows_packer_gce() {
        assert_eq!(
            clean_resource_name("2017-10-18T02:06:30Z"),
            "2017-10-18t02-06-30z"
        );
        assert_eq!(clean_resource_name("My_Image.v1"), "my-image-v1");
        assert_eq!(clean_resource_name("é"), "--", "one dash per UTF-8 byte");
        assert_eq!(clean_resource_name("ok-name-1"), "ok-name-1");
    }
}
