//! Packer's HCL2 function library, written against Packer's documented
//! behaviour. Every function takes its arguments untyped and checks them
//! itself, so that errors name the function and the argument the way
//! Packer's do ("Invalid value for \"str\" parameter").
//!
//! `try` and `can` are not here: they must see an argument's error rather
//! than its value, so the evaluator (`eval.rs`) handles them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};

#[path = "functions_extra.rs"]
mod functions_extra;
use functions_extra::{bcrypt, legacy_strftime, rsadecrypt};
#[path = "yaml_decode.rs"]
mod yaml_decode;
use hcl::{Map, Number, Value};
use yaml_decode::yamldecode;

use crate::digest::hex;

type R = Result<Value, String>;
/// The widest padding `indent` and `format` make: a typo must not ask for
/// gigabytes.
const MAX_PAD: usize = 4096;
#[cfg(test)]
type Impl = fn(&[Value]) -> R;

/// Every function kiln implements, by name, for the README table and
/// `did you mean`.
pub const IMPLEMENTED: &[&str] = &[
    "abs",
    "ceil",
    "floor",
    "log",
    "max",
    "min",
    "parseint",
    "pow",
    "signum",
    "chomp",
    "endswith",
    "format",
    "formatlist",
    "indent",
    "join",
    "lower",
    "regex",
    "regexall",
    "regex_replace",
    "replace",
    "split",
    "startswith",
    "strcontains",
    "strrev",
    "substr",
    "title",
    "trim",
    "trimprefix",
    "trimsuffix",
    "trimspace",
    "upper",
    "alltrue",
    "anytrue",
    "chunklist",
    "coalesce",
    "coalescelist",
    "compact",
    "concat",
    "contains",
    "distinct",
    "element",
    "flatten",
    "index",
    "keys",
    "length",
    "lookup",
    "merge",
    "range",
    "reverse",
    "setintersection",
    "setproduct",
    "setunion",
    "setsubtract",
    "slice",
    "sort",
    "sum",
    "transpose",
    "values",
    "zipmap",
    "base64decode",
    "base64encode",
    "base64gzip",
    "csvdecode",
    "jsondecode",
    "jsonencode",
    "textdecodebase64",
    "textencodebase64",
    "urlencode",
    "yamldecode",
    "yamlencode",
    "abspath",
    "basename",
    "dirname",
    "file",
    "filebase64",
    "fileexists",
    "fileset",
    "pathexpand",
    "templatefile",
    "formatdate",
    "legacy_isotime",
    "legacy_strftime",
    "timeadd",
    "timestamp",
    "md5",
    "sha1",
    "sha256",
    "sha512",
    "bcrypt",
    "rsadecrypt",
    "uuidv4",
    "uuidv5",
    "cidrhost",
    "cidrnetmask",
    "cidrsubnet",
    "cidrsubnets",
    "tobool",
    "tolist",
    "tomap",
    "tonumber",
    "toset",
    "tostring",
    "try",
    "can",
    "convert",
];

/// Functions Packer has that reach a network service: a clear error.
pub const NEEDS_NETWORK: &[&str] = &[
    "vault",
    "consul_key",
    "aws_secretsmanager",
    "aws_secretsmanager_raw",
];

/// Declares every function in `ctx`. `env` is only declared where Packer
/// allows it (variable defaults).
pub fn declare_all(ctx: &mut Context<'_>, with_env: bool) {
    macro_rules! declare {
        ($($name:literal => $f:ident),* $(,)?) => {
            $( ctx.declare_func($name, {
                fn wrapper(args: FuncArgs) -> R { $f(&args) }
                any_args(wrapper)
            }); )*
        };
    }
    declare! {
        "abs" => abs,
        "ceil" => ceil,
        "floor" => floor,
        "log" => log,
        "max" => max,
        "min" => min,
        "parseint" => parseint,
        "pow" => pow,
        "signum" => signum,
        "chomp" => chomp,
        "endswith" => endswith,
        "format" => format,
        "formatlist" => formatlist,
        "indent" => indent,
        "join" => join,
        "lower" => lower,
        "regex" => regex,
        "regexall" => regexall,
        "regex_replace" => regex_replace,
        "replace" => replace,
        "split" => split,
        "startswith" => startswith,
        "strcontains" => strcontains,
        "strrev" => strrev,
        "substr" => substr,
        "title" => title,
        "trim" => trim,
        "trimprefix" => trimprefix,
        "trimsuffix" => trimsuffix,
        "trimspace" => trimspace,
        "upper" => upper,
        "alltrue" => alltrue,
        "anytrue" => anytrue,
        "chunklist" => chunklist,
        "coalesce" => coalesce,
        "coalescelist" => coalescelist,
        "compact" => compact,
        "concat" => concat,
        "contains" => contains,
        "distinct" => distinct,
        "element" => element,
        "flatten" => flatten,
        "index" => index,
        "keys" => keys,
        "length" => length,
        "lookup" => lookup,
        "merge" => merge,
        "range" => range,
        "reverse" => reverse,
        "setintersection" => setintersection,
        "setproduct" => setproduct,
        "setunion" => setunion,
        "setsubtract" => setsubtract,
        "slice" => slice,
        "sort" => sort,
        "sum" => sum,
        "transpose" => transpose,
        "values" => values,
        "zipmap" => zipmap,
        "base64decode" => base64decode,
        "base64encode" => base64encode,
        "base64gzip" => base64gzip,
        "csvdecode" => csvdecode,
        "jsondecode" => jsondecode,
        "jsonencode" => jsonencode,
        "textdecodebase64" => textdecodebase64,
        "textencodebase64" => textencodebase64,
        "urlencode" => urlencode,
        "yamldecode" => yamldecode,
        "yamlencode" => yamlencode,
        "abspath" => abspath,
        "basename" => basename,
        "dirname" => dirname,
        "file" => file,
        "filebase64" => filebase64,
        "fileexists" => fileexists,
        "fileset" => fileset,
        "pathexpand" => pathexpand,
        "templatefile" => templatefile,
        "formatdate" => formatdate,
        "legacy_isotime" => legacy_isotime,
        "legacy_strftime" => legacy_strftime,
        "bcrypt" => bcrypt,
        "rsadecrypt" => rsadecrypt,
        "timeadd" => timeadd,
        "timestamp" => timestamp,
        "md5" => md5,
        "sha1" => sha1,
        "sha256" => sha256,
        "sha512" => sha512,
        "uuidv4" => uuidv4,
        "uuidv5" => uuidv5,
        "cidrhost" => cidrhost,
        "cidrnetmask" => cidrnetmask,
        "cidrsubnet" => cidrsubnet,
        "cidrsubnets" => cidrsubnets,
        "tobool" => tobool,
        "tolist" => tolist,
        "tomap" => tomap,
        "tonumber" => tonumber,
        "toset" => toset,
        "tostring" => tostring,
        "vault" => needs_network,
        "consul_key" => needs_network,
        "aws_secretsmanager" => needs_network,
        "aws_secretsmanager_raw" => needs_network,
    }
    // `try` and `can` are resolved before evaluation (eval.rs), except
    // inside `for` bodies and string templates, whose names are only bound
    // while hcl-rs evaluates them: there they work when their first
    // argument does, and an error in it is reported as it is.
    declare! {
        "try" => try_first,
        "can" => can_evaluated,
    }
    if with_env {
        declare! { "env" => env }
    }
}

fn any_args(f: hcl::eval::Func) -> FuncDef {
    FuncDef::builder().variadic_param(ParamType::Any).build(f)
}

// ---- argument helpers ----------------------------------------------------

fn count(args: &[Value], min: usize, max: usize) -> Result<(), String> {
    let n = args.len();
    if n < min || n > max {
        let want = if min == max {
            format!("{min}")
        } else if max == usize::MAX {
            format!("at least {min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(format!(
            "takes {want} argument{}, given {n}",
            if max == 1 && min == 1 { "" } else { "s" }
        ));
    }
    Ok(())
}

/// A value as a string, converting numbers and booleans as HCL does.
pub fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

fn string(args: &[Value], i: usize) -> Result<String, String> {
    as_string(&args[i]).ok_or_else(|| {
        format!(
            "argument {}: a string is required, found {}",
            i + 1,
            kind(&args[i])
        )
    })
}

fn number(args: &[Value], i: usize) -> Result<f64, String> {
    to_f64(&args[i]).ok_or_else(|| {
        format!(
            "argument {}: a number is required, found {}",
            i + 1,
            kind(&args[i])
        )
    })
}

fn to_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn integer(args: &[Value], i: usize) -> Result<i64, String> {
    let f = number(args, i)?;
    if f.fract() != 0.0 {
        return Err(format!(
            "argument {}: a whole number is required, found {f}",
            i + 1
        ));
    }
    Ok(f as i64)
}

fn list(args: &[Value], i: usize) -> Result<Vec<Value>, String> {
    match &args[i] {
        Value::Array(a) => Ok(a.clone()),
        other => Err(format!(
            "argument {}: a list is required, found {}",
            i + 1,
            kind(other)
        )),
    }
}

fn map(args: &[Value], i: usize) -> Result<Map<String, Value>, String> {
    match &args[i] {
        Value::Object(o) => Ok(o.clone()),
        other => Err(format!(
            "argument {}: a map or object is required, found {}",
            i + 1,
            kind(other)
        )),
    }
}

/// A number value, integral when it can be (so `2 * 2` prints `4`).
pub fn num(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::Number(Number::from(f as i64))
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

fn s(v: impl Into<String>) -> R {
    Ok(Value::String(v.into()))
}

// ---- numeric ---------------------------------------------------------------

fn abs(a: &[Value]) -> R {
    count(a, 1, 1)?;
    Ok(num(number(a, 0)?.abs()))
}
fn ceil(a: &[Value]) -> R {
    count(a, 1, 1)?;
    Ok(num(number(a, 0)?.ceil()))
}
fn floor(a: &[Value]) -> R {
    count(a, 1, 1)?;
    Ok(num(number(a, 0)?.floor()))
}
fn log(a: &[Value]) -> R {
    count(a, 2, 2)?;
    Ok(num(number(a, 0)?.ln() / number(a, 1)?.ln()))
}
fn pow(a: &[Value]) -> R {
    count(a, 2, 2)?;
    Ok(num(number(a, 0)?.powf(number(a, 1)?)))
}
fn signum(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let n = number(a, 0)?;
    Ok(num(if n == 0.0 { 0.0 } else { n.signum() }))
}
fn numbers(a: &[Value]) -> Result<Vec<f64>, String> {
    count(a, 1, usize::MAX)?;
    (0..a.len()).map(|i| number(a, i)).collect()
}
fn max(a: &[Value]) -> R {
    Ok(num(numbers(a)?.into_iter().fold(f64::MIN, f64::max)))
}
fn min(a: &[Value]) -> R {
    Ok(num(numbers(a)?.into_iter().fold(f64::MAX, f64::min)))
}
fn parseint(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let text = string(a, 0)?;
    let base = integer(a, 1)?;
    // Packer goes to 62; Rust's parser stops at 36 (0-9a-z).
    if !(2..=36).contains(&base) {
        return Err(format!("kiln parses bases 2 to 36, given {base}"));
    }
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.strip_prefix('+').unwrap_or(&text)),
    };
    i64::from_str_radix(digits, base as u32)
        .map(|n| num(if neg { -n } else { n } as f64))
        .map_err(|_| format!("cannot parse {text:?} as a base {base} integer"))
}

// ---- strings ---------------------------------------------------------------

fn chomp(a: &[Value]) -> R {
    count(a, 1, 1)?;
    s(string(a, 0)?.trim_end_matches(['\n', '\r']))
}
fn startswith(a: &[Value]) -> R {
    count(a, 2, 2)?;
    Ok(Value::Bool(string(a, 0)?.starts_with(&string(a, 1)?)))
}
fn endswith(a: &[Value]) -> R {
    count(a, 2, 2)?;
    Ok(Value::Bool(string(a, 0)?.ends_with(&string(a, 1)?)))
}
fn strcontains(a: &[Value]) -> R {
    count(a, 2, 2)?;
    Ok(Value::Bool(string(a, 0)?.contains(&string(a, 1)?)))
}
fn lower(a: &[Value]) -> R {
    count(a, 1, 1)?;
    s(string(a, 0)?.to_lowercase())
}
fn upper(a: &[Value]) -> R {
    count(a, 1, 1)?;
    s(string(a, 0)?.to_uppercase())
}
fn title(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let mut out = String::new();
    let mut start = true;
    for c in string(a, 0)?.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    s(out)
}
fn strrev(a: &[Value]) -> R {
    count(a, 1, 1)?;
    s(string(a, 0)?.chars().rev().collect::<String>())
}
fn trimspace(a: &[Value]) -> R {
    count(a, 1, 1)?;
    s(string(a, 0)?.trim())
}
fn trim(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let cut: Vec<char> = string(a, 1)?.chars().collect();
    s(string(a, 0)?.trim_matches(cut.as_slice()))
}
fn trimprefix(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let text = string(a, 0)?;
    let p = string(a, 1)?;
    s(text.strip_prefix(p.as_str()).unwrap_or(&text))
}
fn trimsuffix(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let text = string(a, 0)?;
    let p = string(a, 1)?;
    s(text.strip_suffix(p.as_str()).unwrap_or(&text))
}
fn indent(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let spaces = usize::try_from(integer(a, 0)?).map_err(|_| "negative indent")?;
    if spaces > MAX_PAD {
        return Err(format!("an indent of more than {MAX_PAD} spaces"));
    }
    let pad = " ".repeat(spaces);
    let text = string(a, 1)?;
    s(text.replace('\n', &format!("\n{pad}")))
}
fn join(a: &[Value]) -> R {
    count(a, 2, usize::MAX)?;
    let sep = string(a, 0)?;
    let mut parts = Vec::new();
    for i in 1..a.len() {
        for v in list(a, i)? {
            parts
                .push(as_string(&v).ok_or_else(|| {
                    format!("join: elements must be strings, found {}", kind(&v))
                })?);
        }
    }
    s(parts.join(&sep))
}
fn split(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let sep = string(a, 0)?;
    let text = string(a, 1)?;
    if text.is_empty() {
        return Ok(Value::Array(vec![Value::String(String::new())]));
    }
    Ok(Value::Array(
        text.split(sep.as_str())
            .map(|p| Value::String(p.to_owned()))
            .collect(),
    ))
}
fn substr(a: &[Value]) -> R {
    count(a, 3, 3)?;
    let chars: Vec<char> = string(a, 0)?.chars().collect();
    let len = chars.len() as i64;
    let mut offset = integer(a, 1)?;
    let length = integer(a, 2)?;
    if offset < 0 {
        offset += len;
    }
    if offset < 0 || offset > len {
        return Err("offset is out of range for the string".into());
    }
    let end = if length < 0 {
        len
    } else {
        offset.saturating_add(length).min(len)
    };
    s(chars[offset as usize..end as usize]
        .iter()
        .collect::<String>())
}
fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| format!("invalid regular expression: {e}"))
}
fn replace(a: &[Value]) -> R {
    count(a, 3, 3)?;
    let text = string(a, 0)?;
    let what = string(a, 1)?;
    let with = string(a, 2)?;
    // As in Terraform: a substring wrapped in slashes is a regular expression.
    if what.len() > 1 && what.starts_with('/') && what.ends_with('/') {
        let re = compile(&what[1..what.len() - 1])?;
        return s(re.replace_all(&text, go_replacement(&with)).into_owned());
    }
    s(text.replace(&what, &with))
}
/// Go's `$1` replacement syntax is Rust's, but `${1}` must stay braced.
fn go_replacement(with: &str) -> String {
    with.to_owned()
}
fn regex_replace(a: &[Value]) -> R {
    count(a, 3, 3)?;
    let re = compile(&string(a, 1)?)?;
    s(
        re.replace_all(&string(a, 0)?, go_replacement(&string(a, 2)?))
            .into_owned(),
    )
}
fn captures_value(re: &regex::Regex, caps: &regex::Captures<'_>) -> Value {
    let names: Vec<Option<&str>> = re.capture_names().skip(1).collect();
    if names.is_empty() {
        return Value::String(caps[0].to_owned());
    }
    if names.iter().all(Option::is_some) {
        let mut m = Map::new();
        for n in names.into_iter().flatten() {
            let v = caps
                .name(n)
                .map_or(Value::Null, |m| Value::String(m.as_str().to_owned()));
            m.insert(n.to_owned(), v);
        }
        return Value::Object(m);
    }
    Value::Array(
        (1..caps.len())
            .map(|i| {
                caps.get(i)
                    .map_or(Value::Null, |m| Value::String(m.as_str().to_owned()))
            })
            .collect(),
    )
}
fn regex(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let re = compile(&string(a, 0)?)?;
    let text = string(a, 1)?;
    let caps = re
        .captures(&text)
        .ok_or("pattern did not match any part of the given string")?;
    Ok(captures_value(&re, &caps))
}
fn regexall(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let re = compile(&string(a, 0)?)?;
    let text = string(a, 1)?;
    Ok(Value::Array(
        re.captures_iter(&text)
            .map(|c| captures_value(&re, &c))
            .collect(),
    ))
}

/// Go's fmt verbs as Packer's `format` knows them: %s %d %f %v %q %t %%,
/// with an optional width and precision.
fn format_with(spec: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek() {
            if f.is_ascii_digit() || f == '.' || f == '-' || f == '+' || f == '#' || f == ' ' {
                flags.push(f);
                chars.next();
            } else {
                break;
            }
        }
        let verb = chars
            .next()
            .ok_or("format: the string ends with a lone %")?;
        let arg = args
            .get(next)
            .ok_or_else(|| format!("format: not enough arguments for %{flags}{verb}"))?;
        next += 1;
        let (width, precision) = match flags
            .trim_start_matches(['-', '+', '#', ' '])
            .split_once('.')
        {
            Some((w, p)) => (w.parse::<usize>().ok(), p.parse::<usize>().ok()),
            None => (
                flags.trim_start_matches(['-', '+', '#', ' ']).parse().ok(),
                None,
            ),
        };
        let text = match verb {
            's' | 'v' => match arg {
                Value::Array(_) | Value::Object(_) => json_text(arg),
                other => as_string(other).unwrap_or_else(|| "null".into()),
            },
            'q' => format!("{:?}", as_string(arg).unwrap_or_default()),
            't' => match arg {
                Value::Bool(b) => b.to_string(),
                other => return Err(format!("format: %t needs a bool, found {}", kind(other))),
            },
            'd' => {
                let f = to_f64(arg)
                    .ok_or_else(|| format!("format: %d needs a number, found {}", kind(arg)))?;
                format!("{}", f.trunc() as i64)
            }
            'f' | 'g' | 'e' => {
                let f = to_f64(arg).ok_or_else(|| {
                    format!("format: %{verb} needs a number, found {}", kind(arg))
                })?;
                format!("{f:.*}", precision.unwrap_or(6))
            }
            'x' => {
                let f = to_f64(arg)
                    .ok_or_else(|| format!("format: %x needs a number, found {}", kind(arg)))?;
                format!("{:x}", f as i64)
            }
            other => return Err(format!("format: unsupported verb %{other}")),
        };
        let width = width.unwrap_or(0);
        if width > MAX_PAD || precision.is_some_and(|p| p > MAX_PAD) {
            return Err(format!("format: a width or precision over {MAX_PAD}"));
        }
        if flags.starts_with('-') {
            let _ = write!(out, "{text:<width$}");
        } else if flags.starts_with('0') && verb == 'd' {
            let _ = write!(out, "{text:0>width$}");
        } else {
            let _ = write!(out, "{text:>width$}");
        }
    }
    if next < args.len() {
        return Err(format!(
            "format: too many arguments; the format string uses {next}, {} given",
            args.len()
        ));
    }
    Ok(out)
}
fn format(a: &[Value]) -> R {
    count(a, 1, usize::MAX)?;
    s(format_with(&string(a, 0)?, &a[1..])?)
}
fn formatlist(a: &[Value]) -> R {
    count(a, 1, usize::MAX)?;
    let spec = string(a, 0)?;
    let n = a[1..]
        .iter()
        .filter_map(|v| match v {
            Value::Array(l) => Some(l.len()),
            _ => None,
        })
        .max()
        .unwrap_or(1);
    let mut out = Vec::new();
    for i in 0..n {
        let row: Vec<Value> = a[1..]
            .iter()
            .map(|v| match v {
                Value::Array(l) => l
                    .get(i)
                    .cloned()
                    .ok_or("formatlist: lists of different lengths"),
                other => Ok(other.clone()),
            })
            .collect::<Result<_, _>>()?;
        out.push(Value::String(format_with(&spec, &row)?));
    }
    Ok(Value::Array(out))
}

// ---- collections -----------------------------------------------------------

fn bools(a: &[Value]) -> Result<Vec<bool>, String> {
    count(a, 1, 1)?;
    list(a, 0)?
        .iter()
        .map(|v| match v {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
            other => Err(format!("elements must be bools, found {}", kind(other))),
        })
        .collect()
}
fn alltrue(a: &[Value]) -> R {
    Ok(Value::Bool(bools(a)?.into_iter().all(|b| b)))
}
fn anytrue(a: &[Value]) -> R {
    Ok(Value::Bool(bools(a)?.into_iter().any(|b| b)))
}
fn chunklist(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let items = list(a, 0)?;
    let size = integer(a, 1)?;
    if size < 0 {
        return Err("the chunk size must not be negative".into());
    }
    if size == 0 {
        return Ok(Value::Array(vec![Value::Array(items)]));
    }
    Ok(Value::Array(
        items
            .chunks(size as usize)
            .map(|c| Value::Array(c.to_vec()))
            .collect(),
    ))
}
fn coalesce(a: &[Value]) -> R {
    count(a, 1, usize::MAX)?;
    a.iter()
        .find(|v| !matches!(v, Value::Null) && !matches!(v, Value::String(s) if s.is_empty()))
        .cloned()
        .ok_or_else(|| "no non-null, non-empty-string arguments".into())
}
fn coalescelist(a: &[Value]) -> R {
    count(a, 1, usize::MAX)?;
    for i in 0..a.len() {
        if !list(a, i)?.is_empty() {
            return Ok(a[i].clone());
        }
    }
    Err("no non-null arguments".into())
}
fn compact(a: &[Value]) -> R {
    count(a, 1, 1)?;
    Ok(Value::Array(
        list(a, 0)?
            .into_iter()
            .filter(|v| !matches!(v, Value::Null) && !matches!(v, Value::String(s) if s.is_empty()))
            .collect(),
    ))
}
fn concat(a: &[Value]) -> R {
    let mut out = Vec::new();
    for i in 0..a.len() {
        out.extend(list(a, i)?);
    }
    Ok(Value::Array(out))
}
fn contains(a: &[Value]) -> R {
    count(a, 2, 2)?;
    Ok(Value::Bool(list(a, 0)?.contains(&a[1])))
}
fn distinct(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let mut out: Vec<Value> = Vec::new();
    for v in list(a, 0)? {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(Value::Array(out))
}
fn element(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let items = list(a, 0)?;
    if items.is_empty() {
        return Err("cannot use element function with an empty list".into());
    }
    let i = integer(a, 1)?;
    if i < 0 {
        return Err("cannot use element function with a negative index".into());
    }
    Ok(items[i as usize % items.len()].clone())
}
fn flatten_into(v: Vec<Value>, out: &mut Vec<Value>) {
    for item in v {
        match item {
            Value::Array(inner) => flatten_into(inner, out),
            other => out.push(other),
        }
    }
}
fn flatten(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let mut out = Vec::new();
    flatten_into(list(a, 0)?, &mut out);
    Ok(Value::Array(out))
}
fn index(a: &[Value]) -> R {
    count(a, 2, 2)?;
    list(a, 0)?
        .iter()
        .position(|v| *v == a[1])
        .map(|i| num(i as f64))
        .ok_or_else(|| "item not found".into())
}
fn keys(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let mut k: Vec<String> = map(a, 0)?.keys().cloned().collect();
    k.sort();
    Ok(Value::Array(k.into_iter().map(Value::String).collect()))
}
fn values(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let m = map(a, 0)?;
    let mut k: Vec<&String> = m.keys().collect();
    k.sort();
    Ok(Value::Array(k.into_iter().map(|k| m[k].clone()).collect()))
}
fn length(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let n = match &a[0] {
        Value::String(s) => s.chars().count(),
        Value::Array(l) => l.len(),
        Value::Object(o) => o.len(),
        other => {
            return Err(format!(
                "argument must be a string, a collection or a structural value, found {}",
                kind(other)
            ));
        }
    };
    Ok(num(n as f64))
}
fn lookup(a: &[Value]) -> R {
    count(a, 2, 3)?;
    let m = map(a, 0)?;
    let key = string(a, 1)?;
    match m.get(&key) {
        Some(v) => Ok(v.clone()),
        None if a.len() == 3 => Ok(a[2].clone()),
        None => Err(format!("the given key {key:?} does not exist in the map")),
    }
}
fn merge(a: &[Value]) -> R {
    let mut out = Map::new();
    for i in 0..a.len() {
        if matches!(a[i], Value::Null) {
            continue;
        }
        for (k, v) in map(a, i)? {
            out.insert(k, v);
        }
    }
    Ok(Value::Object(out))
}
fn range(a: &[Value]) -> R {
    count(a, 1, 3)?;
    let (start, limit, step) = match a.len() {
        1 => (0.0, number(a, 0)?, 1.0),
        2 => (number(a, 0)?, number(a, 1)?, 1.0),
        _ => (number(a, 0)?, number(a, 1)?, number(a, 2)?),
    };
    if step == 0.0 {
        return Err("step must not be zero".into());
    }
    let mut out = Vec::new();
    let mut x = start;
    while (step > 0.0 && x < limit) || (step < 0.0 && x > limit) {
        out.push(num(x));
        x += step;
        if out.len() > 1024 {
            return Err("more than 1024 values were generated; either increase the step or reduce the range".into());
        }
    }
    Ok(Value::Array(out))
}
fn reverse(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let mut l = list(a, 0)?;
    l.reverse();
    Ok(Value::Array(l))
}
fn set_of(a: &[Value], i: usize) -> Result<Vec<Value>, String> {
    let mut out: Vec<Value> = Vec::new();
    for v in list(a, i)? {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}
fn setunion(a: &[Value]) -> R {
    let mut out: Vec<Value> = Vec::new();
    for i in 0..a.len() {
        for v in set_of(a, i)? {
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    Ok(Value::Array(out))
}
/// The elements of the first set that are not in the second.
fn setsubtract(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let other = set_of(a, 1)?;
    let mut out = set_of(a, 0)?;
    out.retain(|v| !other.contains(v));
    Ok(Value::Array(out))
}
fn setintersection(a: &[Value]) -> R {
    count(a, 1, usize::MAX)?;
    let mut out = set_of(a, 0)?;
    for i in 1..a.len() {
        let other = set_of(a, i)?;
        out.retain(|v| other.contains(v));
    }
    Ok(Value::Array(out))
}
fn setproduct(a: &[Value]) -> R {
    count(a, 1, usize::MAX)?;
    let mut out: Vec<Vec<Value>> = vec![Vec::new()];
    for i in 0..a.len() {
        let items = list(a, i)?;
        out = out
            .into_iter()
            .flat_map(|prefix| {
                items.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push(v.clone());
                    p
                })
            })
            .collect();
    }
    Ok(Value::Array(out.into_iter().map(Value::Array).collect()))
}
fn slice(a: &[Value]) -> R {
    count(a, 3, 3)?;
    let l = list(a, 0)?;
    let (from, to) = (integer(a, 1)?, integer(a, 2)?);
    if from < 0 || to < from || to as usize > l.len() {
        return Err(format!(
            "invalid slice [{from}:{to}] of a list of {}",
            l.len()
        ));
    }
    Ok(Value::Array(l[from as usize..to as usize].to_vec()))
}
fn sort(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let mut strings: Vec<String> = list(a, 0)?
        .iter()
        .map(|v| as_string(v).ok_or("given list element must be a string"))
        .collect::<Result<_, _>>()?;
    strings.sort();
    Ok(Value::Array(
        strings.into_iter().map(Value::String).collect(),
    ))
}
fn sum(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let l = list(a, 0)?;
    if l.is_empty() {
        return Err("cannot sum an empty list".into());
    }
    let mut total = 0.0;
    for v in &l {
        total += to_f64(v).ok_or("elements must be numbers")?;
    }
    Ok(num(total))
}
fn transpose(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let mut out: Map<String, Value> = Map::new();
    for (k, v) in map(a, 0)? {
        let Value::Array(items) = v else {
            return Err("values must be lists of strings".into());
        };
        for item in items {
            let key = as_string(&item).ok_or("values must be lists of strings")?;
            if let Value::Array(l) = out.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
                l.push(Value::String(k.clone()));
            }
        }
    }
    Ok(Value::Object(out))
}
fn zipmap(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let k = list(a, 0)?;
    let v = list(a, 1)?;
    if k.len() != v.len() {
        return Err(format!(
            "number of keys ({}) does not match number of values ({})",
            k.len(),
            v.len()
        ));
    }
    let mut out = Map::new();
    for (k, v) in k.iter().zip(v) {
        out.insert(as_string(k).ok_or("keys must be strings")?, v);
    }
    Ok(Value::Object(out))
}

// ---- encoding --------------------------------------------------------------

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}
fn base64encode(a: &[Value]) -> R {
    use base64::Engine;
    count(a, 1, 1)?;
    s(b64().encode(string(a, 0)?))
}
/// Gzip, then Base64 (Terraform's: for an S3 object or user data that
/// must be sent compressed).
fn base64gzip(a: &[Value]) -> R {
    use base64::Engine;
    use std::io::Write as _;
    count(a, 1, 1)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(string(a, 0)?.as_bytes())
        .and_then(|()| gz.finish())
        .map(|bytes| Value::String(b64().encode(bytes)))
        .map_err(|e| format!("failed to write gzip raw data: {e}"))
}
fn base64decode(a: &[Value]) -> R {
    use base64::Engine;
    count(a, 1, 1)?;
    let bytes = b64()
        .decode(string(a, 0)?.trim())
        .map_err(|e| format!("failed to decode base64 data: {e}"))?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| "the result of decoding the provided string is not valid UTF-8".into())
}
fn textencodebase64(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let enc = string(a, 1)?;
    if !enc.eq_ignore_ascii_case("utf-8") && !enc.eq_ignore_ascii_case("utf8") {
        return Err(format!("kiln encodes only UTF-8, not {enc:?}"));
    }
    base64encode(&a[..1])
}
fn textdecodebase64(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let enc = string(a, 1)?;
    if !enc.eq_ignore_ascii_case("utf-8") && !enc.eq_ignore_ascii_case("utf8") {
        return Err(format!("kiln decodes only UTF-8, not {enc:?}"));
    }
    base64decode(&a[..1])
}
fn urlencode(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let text = string(a, 0)?;
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            other => {
                let _ = write!(out, "%{other:02X}");
            }
        }
    }
    s(out)
}

pub fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => n
            .as_i64()
            .map(serde_json::Value::from)
            .or_else(|| n.as_f64().map(serde_json::Value::from))
            .unwrap_or(serde_json::Value::Null),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Object(o) => {
            serde_json::Value::Object(o.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

pub fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n.as_f64().map_or(Value::Null, num),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        serde_json::Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

fn json_text(v: &Value) -> String {
    serde_json::to_string(&to_json(v)).unwrap_or_default()
}
fn jsonencode(a: &[Value]) -> R {
    count(a, 1, 1)?;
    s(json_text(&a[0]))
}
fn jsondecode(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let v: serde_json::Value =
        serde_json::from_str(&string(a, 0)?).map_err(|e| format!("invalid JSON: {e}"))?;
    Ok(from_json(&v))
}
fn csvdecode(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let text = string(a, 0)?;
    let mut rows = parse_csv(&text)?;
    if rows.is_empty() {
        return Err("missing header line".into());
    }
    let header = rows.remove(0);
    let mut out = Vec::new();
    for (i, row) in rows.into_iter().enumerate() {
        if row.len() != header.len() {
            return Err(format!(
                "record {} has {} fields, the header has {}",
                i + 1,
                row.len(),
                header.len()
            ));
        }
        let m: Map<String, Value> = header
            .iter()
            .cloned()
            .zip(row.into_iter().map(Value::String))
            .collect();
        out.push(Value::Object(m));
    }
    Ok(Value::Array(out))
}
fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                any = false;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    if any {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}
fn yaml_scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !matches!(
            s,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        )
        && s.parse::<f64>().is_err();
    if plain {
        s.to_owned()
    } else {
        format!("{s:?}")
    }
}
fn yaml_into(v: &Value, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    match v {
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                match item {
                    Value::Array(x) if !x.is_empty() => {
                        out.push('\n');
                        yaml_into(item, indent + 1, out);
                    }
                    Value::Object(x) if !x.is_empty() => {
                        out.push('\n');
                        yaml_into(item, indent + 1, out);
                    }
                    other => {
                        out.push(' ');
                        out.push_str(&yaml_inline(other));
                        out.push('\n');
                    }
                }
            }
        }
        Value::Object(m) if !m.is_empty() => {
            for (k, item) in m {
                out.push_str(&pad);
                out.push_str(&yaml_scalar(k));
                out.push(':');
                match item {
                    Value::Array(x) if !x.is_empty() => {
                        out.push('\n');
                        yaml_into(item, indent, out);
                    }
                    Value::Object(x) if !x.is_empty() => {
                        out.push('\n');
                        yaml_into(item, indent + 1, out);
                    }
                    other => {
                        out.push(' ');
                        out.push_str(&yaml_inline(other));
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&yaml_inline(other));
            out.push('\n');
        }
    }
}
fn yaml_inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => yaml_scalar(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}
fn yamlencode(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let mut out = String::new();
    yaml_into(&a[0], 0, &mut out);
    s(out)
}

// ---- filesystem -------------------------------------------------------------

thread_local! {
    /// The template's directory while it is evaluated: relative paths
    /// given to the filesystem functions are read from there, as in
    /// Packer (its parser's `Basedir`), not from the working directory.
    static BASE_DIR: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// While it lives, relative paths of `file`, `fileexists`, `fileset`,
/// `filebase64` and `templatefile` are read from `dir`.
pub struct BaseDir(Option<PathBuf>);

impl BaseDir {
    pub fn set(dir: &Path) -> Self {
        Self(BASE_DIR.with(|b| b.replace(Some(dir.to_owned()))))
    }
}

impl Drop for BaseDir {
    fn drop(&mut self) {
        let previous = self.0.take();
        BASE_DIR.with(|b| *b.borrow_mut() = previous);
    }
}

/// Where a path a template gives a filesystem function is, and how to
/// name it in an error: as written, and where a relative one was looked for.
fn locate(path: &str) -> (PathBuf, String) {
    let base = BASE_DIR.with(|b| b.borrow().clone());
    match base {
        Some(dir) if Path::new(path).is_relative() => {
            let full = dir.join(path);
            let shown = format!("{path} (in {})", dir.display());
            (full, shown)
        }
        _ => (PathBuf::from(path), path.to_owned()),
    }
}

fn read_text(path: &str) -> Result<String, String> {
    let (full, path) = locate(path);
    let bytes = std::fs::read(&full).map_err(|e| format!("cannot read {path}: {e}"))?;
    String::from_utf8(bytes).map_err(|_| {
        format!("contents of {path} are not valid UTF-8; use the filebase64 function to obtain the Base64 encoded contents or the other file functions (e.g. filemd5, filesha256) to obtain file hashing results instead")
    })
}
fn file(a: &[Value]) -> R {
    count(a, 1, 1)?;
    s(read_text(&string(a, 0)?)?)
}
/// A file's bytes, Base64-encoded (any content, UTF-8 or not).
fn filebase64(a: &[Value]) -> R {
    use base64::Engine;
    count(a, 1, 1)?;
    let (full, path) = locate(&string(a, 0)?);
    let bytes = std::fs::read(&full).map_err(|e| format!("cannot read {path}: {e}"))?;
    s(b64().encode(bytes))
}
fn fileexists(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let (full, p) = locate(&string(a, 0)?);
    match std::fs::metadata(&full) {
        Ok(m) if m.is_file() => Ok(Value::Bool(true)),
        Ok(_) => Err(format!("{p} is not a regular file")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Bool(false)),
        Err(e) => Err(format!("cannot stat {p}: {e}")),
    }
}
fn abspath(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let p = PathBuf::from(string(a, 0)?);
    let abs = std::path::absolute(&p).map_err(|e| e.to_string())?;
    s(abs.to_string_lossy())
}
fn basename(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let p = string(a, 0)?;
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return s(if p.is_empty() { "." } else { "/" });
    }
    s(trimmed.rsplit('/').next().unwrap_or(trimmed))
}
fn dirname(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let p = string(a, 0)?;
    let parent = Path::new(&p).parent().map(Path::to_path_buf);
    s(match parent {
        Some(d) if d.as_os_str().is_empty() => ".".into(),
        Some(d) => d.to_string_lossy().into_owned(),
        None if p.starts_with('/') => "/".into(),
        None => ".".into(),
    })
}
fn pathexpand(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let p = string(a, 0)?;
    match p.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            let home = std::env::var("HOME").map_err(|_| "HOME is not set")?;
            s(format!("{home}{rest}"))
        }
        _ => s(p),
    }
}
fn glob_to_regex(pattern: &str) -> String {
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                    re.push_str("(?:.*/)?");
                } else {
                    re.push_str(".*");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '{' => re.push_str("(?:"),
            '}' => re.push(')'),
            ',' => re.push('|'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    re
}
fn walk(dir: &Path, rel: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 32 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&e.path(), &r, out, depth + 1),
            Ok(t) if t.is_file() => out.push(r),
            _ => {}
        }
    }
}
fn fileset(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let (base, _) = locate(&string(a, 0)?);
    let re = compile(&glob_to_regex(&string(a, 1)?))?;
    let mut all = Vec::new();
    walk(&base, "", &mut all, 0);
    let mut hits: Vec<String> = all.into_iter().filter(|p| re.is_match(p)).collect();
    hits.sort();
    Ok(Value::Array(hits.into_iter().map(Value::String).collect()))
}
thread_local! {
    static TEMPLATEFILE_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn templatefile(a: &[Value]) -> R {
    count(a, 2, 2)?;
    // A template that renders itself would never end.
    let depth = TEMPLATEFILE_DEPTH.with(|d| {
        d.set(d.get() + 1);
        d.get()
    });
    let result = if depth > 8 {
        Err("templatefile calls nest more than 8 deep (does a template render itself?)".into())
    } else {
        render_templatefile(a)
    };
    TEMPLATEFILE_DEPTH.with(|d| d.set(d.get() - 1));
    result
}

fn render_templatefile(a: &[Value]) -> R {
    let path = string(a, 0)?;
    let vars = map(a, 1)?;
    let text = read_text(&path)?;
    let template: hcl::Template = text
        .parse()
        .map_err(|e: hcl::Error| format!("{path}: {e}"))?;
    let mut ctx = Context::new();
    declare_all(&mut ctx, false);
    for (k, v) in vars {
        ctx.declare_var(k, v);
    }
    use hcl::eval::Evaluate;
    template
        .evaluate(&ctx)
        .map(Value::String)
        .map_err(|e| format!("{path}: {e}"))
}

// ---- date and time ---------------------------------------------------------

/// The time kiln started, so every `timestamp()` in one run agrees, as in
/// Packer (which evaluates once per run).
static START: std::sync::LazyLock<SystemTime> = std::sync::LazyLock::new(SystemTime::now);

fn timestamp(a: &[Value]) -> R {
    count(a, 0, 0)?;
    let (secs, _) = crate::template::interp::go_time::unix_parts(*START);
    s(rfc3339(secs))
}
fn legacy_isotime(a: &[Value]) -> R {
    count(a, 0, 1)?;
    let layout = if a.is_empty() {
        "2006-01-02T15:04:05Z07:00".to_owned()
    } else {
        string(a, 0)?
    };
    s(crate::template::interp::go_time::format(*START, &layout))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
fn rfc3339(secs: i64) -> String {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}
/// Parses an RFC 3339 timestamp to seconds since the epoch (UTC).
fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let bad = || format!("not a valid RFC3339 timestamp: {text:?}");
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let n = |r: std::ops::Range<usize>| -> Result<i64, String> {
        text.get(r).and_then(|s| s.parse().ok()).ok_or_else(bad)
    };
    let (y, mo, d, h, mi, se) = (
        n(0..4)?,
        n(5..7)?,
        n(8..10)?,
        n(11..13)?,
        n(14..16)?,
        n(17..19)?,
    );
    let mut rest = text.get(19..).ok_or_else(bad)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.chars().take_while(char::is_ascii_digit).count();
        rest = frac.get(digits..).ok_or_else(bad)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) => {
            let hh: i64 = tz.get(1..3).and_then(|x| x.parse().ok()).ok_or_else(bad)?;
            let mm: i64 = tz.get(4..6).and_then(|x| x.parse().ok()).ok_or_else(bad)?;
            let off = hh * 3600 + mm * 60;
            if tz.starts_with('-') { -off } else { off }
        }
        _ => return Err(bad()),
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(bad());
    }
    Ok(days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se - offset)
}
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];

/// Terraform's `formatdate` spec: YYYY, YY, MMMM, MMM, MM, M, DD, D, EEEE,
/// EEE, hh, h, HH, H, AA, aa, mm, m, ss, s, ZZZZZ, ZZZZ, ZZZ, Z, 'literal'.
fn formatdate(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let spec = string(a, 0)?;
    let secs = parse_rfc3339(&string(a, 1)?)?;
    let days = secs.div_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    let t = secs.rem_euclid(86_400);
    let (h, mi, se) = (t / 3600, t / 60 % 60, t % 60);
    let wd = WEEKDAYS[days.rem_euclid(7) as usize];
    let month = MONTHS[mo as usize - 1];
    let chars: Vec<char> = spec.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&x| x == '\'')
                .ok_or("unterminated literal '")?;
            if end == 0 {
                out.push('\'');
            } else {
                out.extend(&chars[i + 1..i + 1 + end]);
            }
            i += end + 2;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let piece = match (c, run) {
            ('Y', 4) => format!("{y:04}"),
            ('Y', 2) => format!("{:02}", y % 100),
            ('M', 4) => month.to_owned(),
            ('M', 3) => month[..3].to_owned(),
            ('M', 2) => format!("{mo:02}"),
            ('M', 1) => mo.to_string(),
            ('D', 2) => format!("{d:02}"),
            ('D', 1) => d.to_string(),
            ('E', 4) => wd.to_owned(),
            ('E', 3) => wd[..3].to_owned(),
            ('h', 2) => format!("{h:02}"),
            ('h', 1) => h.to_string(),
            ('H', 2) => format!("{:02}", (h + 11) % 12 + 1),
            ('H', 1) => ((h + 11) % 12 + 1).to_string(),
            ('A', 2) => (if h < 12 { "AM" } else { "PM" }).to_owned(),
            ('a', 2) => (if h < 12 { "am" } else { "pm" }).to_owned(),
            ('m', 2) => format!("{mi:02}"),
            ('m', 1) => mi.to_string(),
            ('s', 2) => format!("{se:02}"),
            ('s', 1) => se.to_string(),
            ('Z', 1) => "Z".to_owned(),
            ('Z', 3) => "UTC".to_owned(),
            ('Z', 4) => "+0000".to_owned(),
            ('Z', 5) => "+00:00".to_owned(),
            _ => {
                return Err(format!(
                    "invalid date format verb {:?}",
                    chars[i..i + run].iter().collect::<String>()
                ));
            }
        };
        out.push_str(&piece);
        i += run;
    }
    s(out)
}
/// A Go duration ("1h30m", "-10s") in seconds, by the one Go-duration
/// parser that settings use too.
fn parse_go_duration(text: &str) -> Result<f64, String> {
    let (negative, magnitude) = crate::config::go_value::parse_signed_go_duration(text)
        .map_err(|_| format!("invalid duration {text:?}"))?;
    let secs = magnitude.as_secs_f64();
    Ok(if negative { -secs } else { secs })
}
fn timeadd(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let secs = parse_rfc3339(&string(a, 0)?)?;
    let add = parse_go_duration(&string(a, 1)?)?;
    s(rfc3339(secs + add.trunc() as i64))
}

// ---- hashing and uuid --------------------------------------------------------

fn md5(a: &[Value]) -> R {
    use md5::Digest;
    count(a, 1, 1)?;
    s(hex(&md5::Md5::digest(string(a, 0)?.as_bytes())))
}
fn sha1(a: &[Value]) -> R {
    use sha1::Digest;
    count(a, 1, 1)?;
    s(hex(&sha1::Sha1::digest(string(a, 0)?.as_bytes())))
}
fn sha256(a: &[Value]) -> R {
    use sha2::Digest;
    count(a, 1, 1)?;
    s(hex(&sha2::Sha256::digest(string(a, 0)?.as_bytes())))
}
fn sha512(a: &[Value]) -> R {
    use sha2::Digest;
    count(a, 1, 1)?;
    s(hex(&sha2::Sha512::digest(string(a, 0)?.as_bytes())))
}
fn uuidv4(a: &[Value]) -> R {
    count(a, 0, 0)?;
    s(uuid::Uuid::new_v4().to_string())
}
fn uuidv5(a: &[Value]) -> R {
    use sha1::Digest;
    count(a, 2, 2)?;
    let ns = string(a, 0)?;
    let namespace = match ns.as_str() {
        "dns" => uuid::Uuid::NAMESPACE_DNS,
        "url" => uuid::Uuid::NAMESPACE_URL,
        "oid" => uuid::Uuid::NAMESPACE_OID,
        "x500" => uuid::Uuid::NAMESPACE_X500,
        other => uuid::Uuid::parse_str(other)
            .map_err(|e| format!("uuidv5() doesn't support namespace {other}: {e}"))?,
    };
    let mut h = sha1::Sha1::new();
    h.update(namespace.as_bytes());
    h.update(string(a, 1)?.as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    s(uuid::Uuid::from_bytes(bytes).to_string())
}

// ---- IP networks (IPv4) ------------------------------------------------------

fn cidr(text: &str) -> Result<(u32, u32), String> {
    let (ip, bits) = text
        .split_once('/')
        .ok_or_else(|| format!("invalid CIDR expression: {text}"))?;
    let ip: std::net::Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("invalid CIDR expression (kiln handles IPv4): {text}"))?;
    let bits: u32 = bits
        .parse()
        .ok()
        .filter(|b| *b <= 32)
        .ok_or_else(|| format!("invalid CIDR prefix length in {text}"))?;
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    Ok((u32::from(ip) & mask, bits))
}
fn ip(n: u32) -> String {
    std::net::Ipv4Addr::from(n).to_string()
}
fn cidrhost(a: &[Value]) -> R {
    count(a, 2, 2)?;
    let (base, bits) = cidr(&string(a, 0)?)?;
    let host = integer(a, 1)?;
    let size = 1i64 << (32 - bits);
    let n = if host < 0 { size + host } else { host };
    if n < 0 || n >= size {
        return Err(format!(
            "prefix of {bits} does not accommodate a host numbered {host}"
        ));
    }
    s(ip(base + n as u32))
}
fn cidrnetmask(a: &[Value]) -> R {
    count(a, 1, 1)?;
    let (_, bits) = cidr(&string(a, 0)?)?;
    s(ip(if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    }))
}
fn subnet(base: u32, bits: u32, newbits: i64, num: i64) -> Result<(u32, u32), String> {
    let new = i64::from(bits) + newbits;
    if newbits < 0 || new > 32 {
        return Err(format!(
            "insufficient address space to extend prefix of {bits} by {newbits}"
        ));
    }
    if num < 0 || num >= 1i64 << newbits {
        return Err(format!(
            "prefix extension of {newbits} does not accommodate a subnet numbered {num}"
        ));
    }
    let shifted = if new == 32 {
        num as u32
    } else {
        (num as u32) << (32 - new as u32)
    };
    Ok((base | shifted, new as u32))
}
fn cidrsubnet(a: &[Value]) -> R {
    count(a, 3, 3)?;
    let (base, bits) = cidr(&string(a, 0)?)?;
    let (net, new) = subnet(base, bits, integer(a, 1)?, integer(a, 2)?)?;
    s(format!("{}/{new}", ip(net)))
}
fn cidrsubnets(a: &[Value]) -> R {
    count(a, 1, usize::MAX)?;
    let (base, bits) = cidr(&string(a, 0)?)?;
    let mut next = u64::from(base);
    let end = u64::from(base) + (1u64 << (32 - bits));
    let mut out = Vec::new();
    for i in 1..a.len() {
        let newbits = integer(a, i)?;
        let new = i64::from(bits) + newbits;
        if newbits < 1 || new > 32 {
            return Err(format!(
                "would extend prefix to {new} bits, which is too long for an IPv4 address"
            ));
        }
        let size = 1u64 << (32 - new);
        let start = next.div_ceil(size) * size;
        if start + size > end {
            return Err("not enough remaining address space for a subnet".into());
        }
        out.push(Value::String(format!("{}/{new}", ip(start as u32))));
        next = start + size;
    }
    Ok(Value::Array(out))
}

// ---- type conversion ---------------------------------------------------------

fn tostring(a: &[Value]) -> R {
    count(a, 1, 1)?;
    match &a[0] {
        Value::Null => Ok(Value::Null),
        v => as_string(v)
            .map(Value::String)
            .ok_or_else(|| format!("cannot convert {} to string", kind(v))),
    }
}
fn tonumber(a: &[Value]) -> R {
    count(a, 1, 1)?;
    match &a[0] {
        Value::Null => Ok(Value::Null),
        Value::Number(_) => Ok(a[0].clone()),
        Value::String(t) => t
            .trim()
            .parse::<f64>()
            .map(num)
            .map_err(|_| format!("cannot convert {t:?} to number; given string must be a decimal representation of a number")),
        v => Err(format!("cannot convert {} to number", kind(v))),
    }
}
fn tobool(a: &[Value]) -> R {
    count(a, 1, 1)?;
    match &a[0] {
        Value::Null | Value::Bool(_) => Ok(a[0].clone()),
        Value::String(t) if t == "true" || t == "false" => Ok(Value::Bool(t == "true")),
        v => Err(format!(
            "cannot convert {} to bool; only the strings \"true\" or \"false\" are allowed",
            kind(v)
        )),
    }
}
fn tolist(a: &[Value]) -> R {
    count(a, 1, 1)?;
    match &a[0] {
        Value::Null | Value::Array(_) => Ok(a[0].clone()),
        v => Err(format!("cannot convert {} to list", kind(v))),
    }
}
fn toset(a: &[Value]) -> R {
    distinct(a)
}
fn tomap(a: &[Value]) -> R {
    count(a, 1, 1)?;
    match &a[0] {
        Value::Null | Value::Object(_) => Ok(a[0].clone()),
        v => Err(format!("cannot convert {} to map", kind(v))),
    }
}

// ---- contextual ----------------------------------------------------------------

fn env(a: &[Value]) -> R {
    count(a, 1, 1)?;
    s(std::env::var(string(a, 0)?).unwrap_or_default())
}
fn try_first(a: &[Value]) -> R {
    count(a, 1, usize::MAX)?;
    Ok(a[0].clone())
}
fn can_evaluated(a: &[Value]) -> R {
    count(a, 1, 1)?;
    Ok(Value::Bool(true))
}
fn needs_network(_: &[Value]) -> R {
    Err("this function reads from a network service (Vault, Consul or AWS Secrets Manager), which kiln does not reach; pass the value in a variable instead (-var, a var file or PKR_VAR_name)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::needless_pass_by_value)]
    fn call(f: Impl, args: Vec<Value>) -> R {
        f(&args)
    }
    fn st(x: &str) -> Value {
        Value::String(x.into())
    }

    #[test]
    fn setsubtract_base64gzip_and_filebase64() {
        let list = |xs: &[&str]| Value::Array(xs.iter().map(|x| st(x)).collect());
        assert_eq!(
            call(setsubtract, vec![list(&["a", "b", "c"]), list(&["a", "c"])]),
            Ok(list(&["b"]))
        );
        // Gzip output varies with the compressor: decode it back.
        let Ok(Value::String(b)) = call(base64gzip, vec![st("test")]) else {
            panic!("a string");
        };
        use base64::Engine;
        let gz = b64().decode(b).expect("base64");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text)
            .expect("gzip");
        assert_eq!(text, "test");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bin");
        std::fs::write(&path, [0xffu8, 0x00, 0x41]).expect("write");
        let p = st(&path.to_string_lossy());
        assert_eq!(call(filebase64, vec![p]), Ok(st("/wBB")));
    }

    #[test]
    fn formatdate_follows_terraform_spec() {
        let v = call(
            formatdate,
            vec![
                st("YYYY-MM-DD'T'hh:mm:ssZ EEE MMM"),
                st("2018-01-02T23:12:01Z"),
            ],
        );
        assert_eq!(v, Ok(st("2018-01-02T23:12:01Z Tue Jan")));
        let v = call(
            formatdate,
            vec![st("DD MMM YYYY hh:mm ZZZ"), st("2018-01-02T23:12:01-08:00")],
        );
        assert_eq!(v, Ok(st("03 Jan 2018 07:12 UTC")));
        assert!(call(formatdate, vec![st("Q"), st("2018-01-02T23:12:01Z")]).is_err());
        assert!(call(formatdate, vec![st("YYYY"), st("yesterday")]).is_err());
    }

    #[test]
    fn timeadd_adds_go_durations() {
        let v = call(timeadd, vec![st("2017-11-22T00:00:00Z"), st("10m")]);
        assert_eq!(v, Ok(st("2017-11-22T00:10:00Z")));
        let v = call(timeadd, vec![st("2017-11-22T00:00:00Z"), st("-1h30m")]);
        assert_eq!(v, Ok(st("2017-11-21T22:30:00Z")));
    }

    #[test]
    fn cidr_functions_match_terraform_examples() {
        assert_eq!(
            call(cidrhost, vec![st("10.12.112.0/20"), num(16.0)]),
            Ok(st("10.12.112.16"))
        );
        assert_eq!(
            call(cidrhost, vec![st("10.12.112.0/20"), num(268.0)]),
            Ok(st("10.12.113.12"))
        );
        assert_eq!(
            call(cidrsubnet, vec![st("172.16.0.0/12"), num(4.0), num(2.0)]),
            Ok(st("172.18.0.0/16"))
        );
        assert_eq!(
            call(cidrnetmask, vec![st("172.16.0.0/12")]),
            Ok(st("255.240.0.0"))
        );
        let v = call(
            cidrsubnets,
            vec![st("10.1.0.0/16"), num(4.0), num(4.0), num(8.0), num(4.0)],
        );
        assert_eq!(
            v,
            Ok(Value::Array(vec![
                st("10.1.0.0/20"),
                st("10.1.16.0/20"),
                st("10.1.32.0/24"),
                st("10.1.48.0/20")
            ]))
        );
    }

    #[test]
    fn strings_and_collections() {
        assert_eq!(
            call(
                format,
                vec![st("Hello, %s! %03d %.2f"), st("Ander"), num(7.0), num(1.5)]
            ),
            Ok(st("Hello, Ander! 007 1.50"))
        );
        assert_eq!(
            call(substr, vec![st("hello world"), num(1.0), num(4.0)]),
            Ok(st("ello"))
        );
        assert_eq!(
            call(substr, vec![st("hello world"), num(-5.0), num(-1.0)]),
            Ok(st("world"))
        );
        assert_eq!(
            call(regex_replace, vec![st("hello"), st("l+"), st("L")]),
            Ok(st("heLo"))
        );
        assert_eq!(
            call(replace, vec![st("1 + 2 + 3"), st("+"), st("-")]),
            Ok(st("1 - 2 - 3"))
        );
        assert_eq!(
            call(
                element,
                vec![Value::Array(vec![st("a"), st("b")]), num(3.0)]
            ),
            Ok(st("b"))
        );
        assert_eq!(call(title, vec![st("hello world")]), Ok(st("Hello World")));
        assert!(call(element, vec![Value::Array(vec![]), num(0.0)]).is_err());
        assert_eq!(call(parseint, vec![st("FF"), num(16.0)]), Ok(num(255.0)));
        assert_eq!(
            call(range, vec![num(3.0)]),
            Ok(Value::Array(vec![num(0.0), num(1.0), num(2.0)]))
        );
    }

    #[test]
    fn hostile_arguments_are_errors_not_panics() {
        assert!(call(timeadd, vec![st("2017-11-22T00:00:00ééé"), st("1s")]).is_err());
        assert!(
            call(
                formatdate,
                vec![st("YYYY"), st("2017-11-22T00:00:00+é0:00")]
            )
            .is_err()
        );
        assert!(call(indent, vec![num(1e12), st("a\nb")]).is_err());
        assert!(call(format, vec![st("%999999999d"), num(1.0)]).is_err());
        assert!(call(parseint, vec![st("zz"), num(62.0)]).is_err());
        assert_eq!(
            call(substr, vec![st("abc"), num(1.0), num(9.3e18)]),
            Ok(st("bc"))
        );
    }

    #[test]
    fn hashes_and_encodings() {
        assert_eq!(
            call(sha256, vec![st("hello world")]),
            Ok(st(
                "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
            ))
        );
        assert_eq!(
            call(md5, vec![st("hello world")]),
            Ok(st("5eb63bbbe01eeed093cb22bb8f5acdc3"))
        );
        assert_eq!(
            call(base64encode, vec![st("Hello World")]),
            Ok(st("SGVsbG8gV29ybGQ="))
        );
        assert_eq!(
            call(uuidv5, vec![st("dns"), st("www.example.com")]),
            Ok(st("2ed6657d-e927-568b-95e1-2665a8aea6a2"))
        );
        let csv = call(csvdecode, vec![st("a,b\n1,\"x,y\"\n")]).expect("csv");
        assert_eq!(
            call(jsonencode, vec![csv]),
            Ok(st(r#"[{"a":"1","b":"x,y"}]"#))
        );
        assert_eq!(call(urlencode, vec![st("a b/c")]), Ok(st("a+b%2Fc")));
    }
}
