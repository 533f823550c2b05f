//! `data "TYPE" "NAME" {}` blocks: the data sources that need nothing
//! beyond this machine or a URL. `null` (Packer's own: `input` → `output`),
//! `http` (Packer's own: a GET of a checksum file, say; see `data_http`),
//! `external-raw` and `external` (the joomcode/external plugin Bento uses
//! to learn the host: a program's standard output). Their values are
//! `data.TYPE.NAME.ATTR`. As in Packer, `validate` runs no program and
//! fetches nothing unless given `-evaluate-datasources`: the results are
//! then unknown values (see `unknown`). They are evaluated in one dependency order
//! with the locals (see `locals`).

use std::io::Write as _;
use std::process::{Command, Stdio};

use hcl::edit::Span as _;
use hcl::edit::expr::Expression;
use hcl::edit::structure::{Block, Structure};
use hcl::{Map, Value};

use super::eval::{Scope, eval};
use super::{Files, Parsed, span_of};
use crate::template::diagnostic::Diagnostics;
use crate::template::json::Span;

/// Data sources kiln cannot run here because they ask a cloud or network
/// service; named so the error says why rather than "unknown".
const NETWORK_TYPES: &[&str] = &[
    "amazon-ami",
    "amazon-parameterstore",
    "amazon-secretsmanager",
    "azure-keyvault-secret",
    "googlecompute-image",
    "hcp-packer-artifact",
    "hcp-packer-image",
    "hcp-packer-iteration",
    "hcp-packer-version",
    "vsphere-virtualmachine",
];

/// The data sources kiln runs.
const TYPES: &[&str] = &["null", "http", "external", "external-raw"];

/// One `data "TYPE" "NAME"` block, found but not yet evaluated: the
/// locals and data sources are evaluated together in dependency order.
pub struct DataBlock<'a> {
    pub ty: &'a str,
    pub name: &'a str,
    pub block: &'a Block,
    pub base: usize,
    /// The block's `data` keyword.
    pub span: Span,
}

impl DataBlock<'_> {
    /// `data.TYPE.NAME`.
    pub fn path(&self) -> String {
        format!("data.{}.{}", self.ty, self.name)
    }

    /// The expressions of the block's attributes (what it depends on).
    pub fn expressions(&self) -> impl Iterator<Item = &Expression> {
        self.block.body.iter().filter_map(|s| match s {
            Structure::Attribute(a) => Some(&a.value),
            Structure::Block(_) => None,
        })
    }
}

/// Every well-formed data block, each defined once.
pub fn collect<'a>(
    parsed: &'a [Parsed],
    files: &Files,
    diags: &mut Diagnostics,
) -> Vec<DataBlock<'a>> {
    let mut out: Vec<DataBlock<'a>> = Vec::new();
    for p in parsed {
        for s in p.body.iter() {
            let Structure::Block(b) = s else { continue };
            if b.ident.as_str() != "data" {
                continue;
            }
            let span = span_of(p.base, b.ident.span());
            let [ty, name] = b.labels.as_slice() else {
                diags
                    .error(
                        "data",
                        "a data block has two labels: its type and its name",
                        files.location(span),
                    )
                    .hint = Some("write data \"TYPE\" \"NAME\" { … }".into());
                continue;
            };
            let block = DataBlock {
                ty: ty.as_str(),
                name: name.as_str(),
                block: b,
                base: p.base,
                span,
            };
            if out.iter().any(|d| d.ty == block.ty && d.name == block.name) {
                diags
                    .error(block.path(), "is defined twice", files.location(span))
                    .hint =
                    Some("a data source is defined once across the template's files".into());
                continue;
            }
            out.push(block);
        }
    }
    out
}

/// True when `validate` without `-evaluate-datasources` gives this data
/// source unknown values (see `unknown`) instead of its result.
pub fn gives_placeholder(ty: &str, run_programs: bool) -> bool {
    !run_programs && matches!(ty, "external" | "external-raw" | "http")
}

/// Evaluates one data block in `scope` (which holds the locals and data
/// sources it depends on); `None` after reporting why it has no value.
pub fn evaluate(
    d: &DataBlock<'_>,
    scope: &Scope,
    run_programs: bool,
    files: &Files,
    diags: &mut Diagnostics,
) -> Option<Value> {
    let path = d.path();
    let attrs = read_attributes(d.block, d.base, scope, &path, d.ty, files, diags)?;
    let value = match d.ty {
        "null" => Ok(null_source(&attrs)),
        ty if gives_placeholder(ty, run_programs) => Ok(placeholder(ty)),
        "external" | "external-raw" => run_external(d.ty, &attrs),
        "http" => super::data_http::fetch(&attrs),
        _ => Err(format!("data source type `{}` is not supported", d.ty)),
    };
    match value {
        Ok(v) => Some(v),
        Err(e) => {
            let hint = if d.ty == "http" {
                "the data source fetches the URL while the template loads; try it with curl to see why it fails"
            } else {
                "the data source runs on this machine while the template loads; run the program by hand to see why it fails"
            };
            diags.error(&path, e, files.location(d.span)).hint = Some(hint.into());
            None
        }
    }
}

/// The block's attributes evaluated, after checking its type and keys.
fn read_attributes(
    b: &Block,
    base: usize,
    scope: &Scope,
    path: &str,
    ty: &str,
    files: &Files,
    diags: &mut Diagnostics,
) -> Option<Map<String, Value>> {
    let type_span = span_of(base, b.labels.first().and_then(|l| l.span()));
    if NETWORK_TYPES.contains(&ty) {
        diags
            .error(
                path,
                format!("data source `{ty}` needs a network service kiln does not reach"),
                files.location(type_span),
            )
            .hint = Some(format!(
            "kiln runs the data sources that need nothing beyond this machine ({}); pass the value in a variable instead",
            TYPES.join(", ")
        ));
        return None;
    }
    if !TYPES.contains(&ty) {
        let d = diags.error(
            path,
            format!("data source type `{ty}` is not supported by kiln yet"),
            files.location(type_span),
        );
        d.hint = Some(format!(
            "kiln runs these data sources: {}; pass the value in a variable instead",
            TYPES.join(", ")
        ));
        return None;
    }
    let allowed: &[&str] = match ty {
        "null" => &["input"],
        "http" => &["url", "method", "request_headers", "request_body"],
        _ => &["program", "query", "working_dir"],
    };
    let mut out = Map::new();
    let mut ok = true;
    for s in b.body.iter() {
        match s {
            Structure::Attribute(a) => {
                let key = a.key.as_str();
                let key_span = span_of(base, a.key.span());
                if !allowed.contains(&key) {
                    diags
                        .error(
                            path,
                            format!("unknown key `{key}`"),
                            files.location(key_span),
                        )
                        .hint = Some(format!(
                        "a `{ty}` data source takes: {}",
                        allowed.join(", ")
                    ));
                    ok = false;
                    continue;
                }
                match eval(&a.value, scope) {
                    Ok(v) => {
                        out.insert(key.to_owned(), v);
                    }
                    Err(e) => {
                        diags
                            .error(
                                path,
                                format!("{key}: {e}"),
                                files.location(span_of(base, a.value.span())),
                            )
                            .hint = super::body::hint_for(&e);
                        ok = false;
                    }
                }
            }
            Structure::Block(inner) => {
                diags.error(
                    path,
                    format!("unexpected block `{}`", inner.ident.as_str()),
                    files.location(span_of(base, inner.ident.span())),
                );
                ok = false;
            }
        }
    }
    if ty == "http" && !out.contains_key("url") {
        diags
            .error(path, "url is required", files.location(type_span))
            .hint = Some("url = \"https://example.com/SHA256SUMS\": the URL to fetch".into());
        ok = false;
    }
    if ty.starts_with("external") && !out.contains_key("program") {
        diags
            .error(path, "program is required", files.location(type_span))
            .hint = Some("program = [\"uname\", \"-s\"]: the command and its arguments".into());
        ok = false;
    }
    ok.then_some(out)
}

/// Packer's `null` data source: `output` is `input`.
fn null_source(attrs: &Map<String, Value>) -> Value {
    let mut m = Map::new();
    m.insert(
        "output".to_owned(),
        attrs.get("input").cloned().unwrap_or(Value::Null),
    );
    m.insert(
        "input".to_owned(),
        attrs.get("input").cloned().unwrap_or(Value::Null),
    );
    Value::Object(m)
}

/// What `validate` sees when programs are not run, as in Packer: the
/// data source's outputs, each an unknown value of its type.
fn placeholder(ty: &str) -> Value {
    use super::unknown::{Kind, unknown};
    let mut m = Map::new();
    if ty == "http" {
        m.insert("url".to_owned(), unknown(Kind::String));
        m.insert("body".to_owned(), unknown(Kind::String));
        m.insert("request_headers".to_owned(), unknown(Kind::Map));
        return Value::Object(m);
    }
    let result = if ty == "external" {
        unknown(Kind::Map)
    } else {
        unknown(Kind::String)
    };
    m.insert("result".to_owned(), result);
    Value::Object(m)
}

/// Runs the program: `external-raw` passes `query` (a string) on standard
/// input and returns standard output as `result`; `external` passes
/// `query` (a map) as JSON and reads a JSON object of strings back.
fn run_external(ty: &str, attrs: &Map<String, Value>) -> Result<Value, String> {
    let program: Vec<String> = match attrs.get("program") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| super::functions::as_string(v).ok_or("program: expected a list of strings"))
            .collect::<Result<_, _>>()?,
        _ => return Err("program: expected a non-empty list of strings".into()),
    };
    let stdin = match (ty, attrs.get("query")) {
        (_, None | Some(Value::Null)) => String::new(),
        ("external", Some(q @ Value::Object(_))) => {
            serde_json::to_string(&super::functions::to_json(q)).unwrap_or_default()
        }
        ("external", Some(_)) => return Err("query: expected a map of strings".into()),
        (_, Some(q)) => super::functions::as_string(q).ok_or("query: expected a string")?,
    };
    let mut cmd = Command::new(&program[0]);
    cmd.args(&program[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = attrs
        .get("working_dir")
        .and_then(super::functions::as_string)
    {
        cmd.current_dir(dir);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", program[0]))?;
    if let Some(mut input) = child.stdin.take() {
        // A program that does not read its input closes the pipe: not an error.
        let _ = input.write_all(stdin.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`{}`: {e}", program[0]))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = match stderr.trim() {
            "" => String::new(),
            s => format!(": {s}"),
        };
        return Err(format!(
            "`{}` failed ({}){said}",
            program.join(" "),
            out.status
        ));
    }
    let stdout = String::from_utf8(out.stdout)
        .map_err(|_| format!("`{}` printed text that is not UTF-8", program[0]))?;
    let result = if ty == "external" {
        match serde_json::from_str::<serde_json::Value>(&stdout) {
            Ok(serde_json::Value::Object(m)) if m.values().all(serde_json::Value::is_string) => {
                super::functions::from_json(&serde_json::Value::Object(m))
            }
            _ => {
                return Err(format!(
                    "`{}` must print a JSON object whose values are strings",
                    program[0]
                ));
            }
        }
    } else {
        Value::String(stdout)
    };
    let mut m = Map::new();
    m.insert("result".to_owned(), result);
    Ok(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(program: &[&str], query: Option<Value>) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            "program".into(),
            Value::Array(program.iter().map(|s| Value::from(*s)).collect()),
        );
        if let Some(q) = query {
            m.insert("query".into(), q);
        }
        m
    }

    fn result(v: &Value) -> &Value {
        match v {
            Value::Object(m) => m.get("result").expect("result"),
            other => panic!("an object: {other:?}"),
        }
    }

    #[test]
    fn external_raw_passes_the_query_and_returns_stdout() {
        let v = run_external(
            "external-raw",
            &attrs(&["rev"], Some(Value::from("foobar"))),
        )
        .expect("runs");
        assert_eq!(result(&v), &Value::from("raboof"));
    }

    #[test]
    fn external_reads_a_json_object_of_strings() {
        let mut q = Map::new();
        q.insert("name".into(), Value::from("x"));
        let v = run_external("external", &attrs(&["cat"], Some(Value::Object(q)))).expect("runs");
        let Value::Object(m) = result(&v) else {
            panic!("an object: {v:?}");
        };
        assert_eq!(m.get("name"), Some(&Value::from("x")));
        let e = run_external("external", &attrs(&["echo", "[1]"], None)).expect_err("refused");
        assert!(e.contains("JSON object"), "{e}");
        let e = run_external("external-raw", &attrs(&["false"], None)).expect_err("fails");
        assert!(e.contains("failed"), "{e}");
    }
}
