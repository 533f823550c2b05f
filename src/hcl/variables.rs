//! Input variables: `variable` blocks (type, default, sensitive, nullable,
//! validation) and the older `variables {}` block, set in Packer's order
//! of precedence: default < PKR_VAR_name < *.auto.pkrvars.* (lexical) <
//! each -var-file in order < each -var in order.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hcl::edit::Span as _;
use hcl::edit::structure::{Block, Structure};
use hcl::{Map, Value};

use super::eval::{Scope, eval};
use super::types::{self, Type};
use super::{Files, Parsed, span_of};
use crate::template::diagnostic::{Diagnostics, Location, did_you_mean};
use crate::template::json::{self, Span};
use crate::template::model::VariableDecl;
use crate::template::source::SourceFile;

pub struct Resolved {
    pub values: Map<String, Value>,
    /// Required variables that were given no value (null in `values`).
    pub missing: Vec<String>,
    pub decls: Vec<VariableDecl>,
    pub sensitive: Vec<(String, Span)>,
    pub secrets: Vec<String>,
}

struct Validation {
    condition: hcl::edit::expr::Expression,
    message: hcl::edit::expr::Expression,
    base: usize,
    span: Span,
}

struct Var {
    name: String,
    ty: Option<Type>,
    default: Option<Value>,
    /// Set by the user (env, files, -var); wins over the default.
    value: Option<Value>,
    sensitive: bool,
    nullable: bool,
    validations: Vec<Validation>,
    label_span: Span,
    default_span: Span,
    /// The default could not be evaluated, and that was reported: the
    /// variable has no value, but is not reported again as unset.
    default_failed: bool,
}

pub fn resolve(
    parsed: &[Parsed],
    auto_var_files: &[PathBuf],
    inputs: &super::Inputs<'_>,
    files: &Files,
    diags: &mut Diagnostics,
) -> Resolved {
    let mut vars: Vec<Var> = Vec::new();
    for p in parsed {
        for s in p.body.iter() {
            let Structure::Block(b) = s else { continue };
            match b.ident.as_str() {
                "variable" => {
                    if let Some(v) = declare(b, p.base, files, diags) {
                        push_unique(&mut vars, v, files, diags);
                    }
                }
                "variables" => {
                    for item in b.body.iter() {
                        let Structure::Attribute(a) = item else {
                            diags.error(
                                "variables",
                                "a `variables` block holds only `name = default` attributes",
                                files.location(span_of(p.base, item.span())),
                            );
                            continue;
                        };
                        let default_span = span_of(p.base, a.value.span());
                        let default = match eval(
                            &a.value,
                            &Scope {
                                allow_env: true,
                                ..Scope::default()
                            },
                        ) {
                            Ok(v) => Some(v),
                            Err(e) => {
                                diags.error(
                                    format!("variables.{}", a.key.as_str()),
                                    e,
                                    files.location(default_span),
                                );
                                None
                            }
                        };
                        let v = Var {
                            name: a.key.as_str().to_owned(),
                            ty: None,
                            default,
                            value: None,
                            sensitive: false,
                            nullable: true,
                            validations: Vec::new(),
                            label_span: span_of(p.base, a.key.span()),
                            default_span,
                            default_failed: false,
                        };
                        push_unique(&mut vars, v, files, diags);
                    }
                }
                _ => {}
            }
        }
    }

    let names: Vec<String> = vars.iter().map(|v| v.name.clone()).collect();
    let suggest = |name: &str| {
        did_you_mean(name, names.iter().map(String::as_str)).map(|s| format!("did you mean `{s}`?"))
    };

    // PKR_VAR_name: undeclared ones are ignored, as in Packer (the
    // environment is shared by every template).
    for (name, raw) in &inputs.env_vars {
        if let Some(v) = vars.iter_mut().find(|v| &v.name == name) {
            match from_text(raw, v.ty.as_ref()) {
                Ok(value) => v.value = Some(value),
                Err(e) => {
                    diags.error(format!("PKR_VAR_{name}"), e, None).hint = Some(format!(
                        "fix or unset the environment variable PKR_VAR_{name}"
                    ));
                }
            }
        }
    }
    for path in auto_var_files.iter().chain(inputs.var_files) {
        for (key, value, loc) in read_var_file(path, diags) {
            match vars.iter_mut().find(|v| v.name == key) {
                Some(v) => v.value = Some(value),
                None if !inputs.warn_undeclared => {}
                None => {
                    // Var files are often shared between templates: a warning.
                    diags
                        .warning(
                            format!("var-file {}", path.display()),
                            format!("`{key}` is set but no variable block declares it; ignored"),
                            loc,
                        )
                        .hint = suggest(&key).or_else(|| {
                        Some(format!(
                            "declare it: variable \"{key}\" {{ type = string }}"
                        ))
                    });
                }
            }
        }
    }
    for raw in inputs.vars {
        let Some((key, text)) = raw.split_once('=') else {
            diags
                .error(
                    "-var",
                    format!("`{raw}` is not of the form name=value"),
                    None,
                )
                .hint = Some("write -var 'name=value'".into());
            continue;
        };
        let Some(v) = vars.iter_mut().find(|v| v.name == key) else {
            diags
                .error(
                    "-var",
                    format!("`{key}` is not declared by any variable block"),
                    None,
                )
                .hint = suggest(key).or_else(|| {
                Some(format!(
                    "declare it: variable \"{key}\" {{ type = string }}"
                ))
            });
            continue;
        };
        match from_text(text, v.ty.as_ref()) {
            Ok(value) => v.value = Some(value),
            Err(e) => {
                diags.error(format!("-var {key}"), e, None);
            }
        }
    }

    let mut values = Map::new();
    let mut missing = Vec::new();
    for v in &mut vars {
        let chosen = v.value.clone().or_else(|| v.default.clone());
        let Some(mut value) = chosen else {
            missing.push(v.name.clone());
            if !inputs.lenient && !v.default_failed {
                diags
                    .error(
                        format!("variable \"{}\"", v.name),
                        "no value is set and there is no default",
                        files.location(v.label_span),
                    )
                    .hint = Some(format!(
                    "set it with -var '{0}=…', in a -var-file, or with the environment variable PKR_VAR_{0}",
                    v.name
                ));
            }
            values.insert(v.name.clone(), Value::Null);
            continue;
        };
        if let Some(t) = &v.ty {
            match types::convert(value.clone(), t) {
                Ok(c) => value = c,
                Err(e) => {
                    let span = if v.value.is_some() {
                        v.label_span
                    } else {
                        v.default_span
                    };
                    diags.error(
                        format!("variable \"{}\"", v.name),
                        format!("invalid value: {e}"),
                        files.location(span),
                    );
                    values.insert(v.name.clone(), Value::Null);
                    continue;
                }
            }
        }
        if matches!(value, Value::Null) && !v.nullable {
            diags.error(
                format!("variable \"{}\"", v.name),
                "the value is null, and the variable is declared with nullable = false",
                files.location(v.label_span),
            );
        }
        values.insert(v.name.clone(), value);
    }

    // Validation rules see every variable, once all are set.
    let mut scope = Scope::default();
    scope.set("var", Value::Object(values.clone()));
    for v in &vars {
        if missing.contains(&v.name) {
            continue;
        }
        for rule in &v.validations {
            let path = format!("variable \"{}\"", v.name);
            match eval(&rule.condition, &scope) {
                Ok(Value::Bool(true)) => {}
                Ok(Value::Bool(false)) => {
                    let msg = eval(&rule.message, &scope)
                        .ok()
                        .and_then(|m| super::functions::as_string(&m))
                        .unwrap_or_else(|| "the validation condition is false".into());
                    diags
                        .error(
                            path,
                            format!("invalid value: {msg}"),
                            files.location(rule.span),
                        )
                        .hint = Some(
                        "this is the variable's validation rule; set a value it accepts".into(),
                    );
                }
                Ok(other) => {
                    diags.error(
                        path,
                        format!("validation condition must be a bool, found {other}"),
                        files.location(span_of(rule.base, rule.condition.span())),
                    );
                }
                Err(e) => {
                    diags.error(
                        path,
                        format!("validation condition: {e}"),
                        files.location(span_of(rule.base, rule.condition.span())),
                    );
                }
            }
        }
    }

    let mut secrets = Vec::new();
    let mut sensitive = Vec::new();
    for v in &vars {
        if v.sensitive {
            sensitive.push((v.name.clone(), v.label_span));
            collect_strings(values.get(&v.name), &mut secrets);
        }
    }
    let decls = vars
        .iter()
        .map(|v| VariableDecl {
            name: v.name.clone(),
            default: v.default.as_ref().map(display),
            key_span: v.label_span,
            value_span: v.default_span,
        })
        .collect();
    Resolved {
        values,
        missing,
        decls,
        sensitive,
        secrets,
    }
}

fn push_unique(vars: &mut Vec<Var>, v: Var, files: &Files, diags: &mut Diagnostics) {
    if vars.iter().any(|x| x.name == v.name) {
        diags
            .error(
                format!("variable \"{}\"", v.name),
                "is declared twice",
                files.location(v.label_span),
            )
            .hint = Some("a variable is declared once across all the template's files".into());
        return;
    }
    vars.push(v);
}

/// How `inspect` shows a default: strings as they are, others as HCL.
pub fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => serde_json::to_string(&super::functions::to_json(other)).unwrap_or_default(),
    }
}

fn collect_strings(v: Option<&Value>, out: &mut Vec<String>) {
    match v {
        Some(Value::Array(items)) => items.iter().for_each(|i| collect_strings(Some(i), out)),
        Some(Value::Object(m)) => m.values().for_each(|i| collect_strings(Some(i), out)),
        Some(Value::Null) | None => {}
        Some(other) => {
            if let Some(s) = super::functions::as_string(other).filter(|s| !s.is_empty()) {
                out.push(s);
            }
        }
    }
}

const VARIABLE_KEYS: &[&str] = &[
    "type",
    "default",
    "description",
    "sensitive",
    "nullable",
    "validation",
];

fn declare(b: &Block, base: usize, files: &Files, diags: &mut Diagnostics) -> Option<Var> {
    let ident_span = span_of(base, b.ident.span());
    let [label] = b.labels.as_slice() else {
        diags
            .error(
                "variable",
                "a variable block has one label, its name",
                files.location(ident_span),
            )
            .hint = Some("write variable \"name\" { … }".into());
        return None;
    };
    let name = label.as_str().to_owned();
    let path = format!("variable \"{name}\"");
    let label_span = span_of(base, label.span());
    let mut v = Var {
        name,
        ty: None,
        default: None,
        value: None,
        sensitive: false,
        nullable: true,
        validations: Vec::new(),
        label_span,
        default_span: label_span,
        default_failed: false,
    };
    let mut default_expr = None;
    for s in b.body.iter() {
        match s {
            Structure::Attribute(a) => {
                let key = a.key.as_str();
                let span = span_of(base, a.value.span());
                match key {
                    "type" => match types::parse(&a.value) {
                        Ok(t) => v.ty = Some(t),
                        Err(e) => {
                            diags.error(&path, format!("type: {e}"), files.location(span));
                        }
                    },
                    "default" => default_expr = Some((&a.value, span)),
                    "description" => {}
                    "sensitive" | "nullable" => match eval(&a.value, &Scope::default()) {
                        Ok(Value::Bool(flag)) => {
                            if key == "sensitive" {
                                v.sensitive = flag;
                            } else {
                                v.nullable = flag;
                            }
                        }
                        _ => {
                            diags.error(
                                &path,
                                format!("{key}: expected true or false"),
                                files.location(span),
                            );
                        }
                    },
                    other => {
                        let d = diags.error(
                            &path,
                            format!("unknown attribute `{other}`"),
                            files.location(span_of(base, a.key.span())),
                        );
                        d.hint = did_you_mean(other, VARIABLE_KEYS.iter().copied())
                            .map(|s| format!("did you mean `{s}`?"))
                            .or_else(|| {
                                Some(format!(
                                    "a variable block takes {}",
                                    VARIABLE_KEYS.join(", ")
                                ))
                            });
                    }
                }
            }
            Structure::Block(inner) if inner.ident.as_str() == "validation" => {
                let cond = inner.body.get_attribute("condition");
                let msg = inner.body.get_attribute("error_message");
                match (cond, msg) {
                    (Some(c), Some(m)) => v.validations.push(Validation {
                        condition: c.value.clone(),
                        message: m.value.clone(),
                        base,
                        span: span_of(base, c.value.span()),
                    }),
                    _ => {
                        diags.error(
                            &path,
                            "a validation block needs `condition` and `error_message`",
                            files.location(span_of(base, inner.ident.span())),
                        );
                    }
                }
            }
            Structure::Block(inner) => {
                diags.error(
                    &path,
                    format!("unexpected block `{}`", inner.ident.as_str()),
                    files.location(span_of(base, inner.ident.span())),
                );
            }
        }
    }
    if let Some((expr, span)) = default_expr {
        v.default_span = span;
        // Defaults may call env(), and only defaults may (as in Packer).
        match eval(
            expr,
            &Scope {
                allow_env: true,
                ..Scope::default()
            },
        ) {
            Ok(value) => {
                v.default = match &v.ty {
                    Some(t) => match types::convert(value, t) {
                        Ok(c) => Some(c),
                        Err(e) => {
                            diags.error(&path, format!("default: {e}"), files.location(span));
                            // Reported once: not again as a missing value.
                            Some(Value::Null)
                        }
                    },
                    None => Some(value),
                }
            }
            Err(e) => {
                // Packer: "Variables not allowed". Naming the reference says
                // more than "unknown variable `local`", which is not unknown.
                let reference = super::eval::REFERENCE_ROOTS.iter().find_map(|root| {
                    super::eval::references(expr, root)
                        .first()
                        .map(|name| format!("{root}.{name}"))
                });
                let message = match reference {
                    Some(r) => format!("default: a default cannot refer to `{r}`"),
                    None => format!("default: {e}"),
                };
                diags.error(&path, message, files.location(span)).hint = Some(
                    "a default is a value: compute the value in a locals block, or set the variable with -var or a var file".into(),
                );
                v.default_failed = true;
            }
        }
    }
    Some(v)
}

/// A value given as text (-var, PKR_VAR_): the raw string for a primitive
/// or untyped variable, an HCL expression for a collection type.
fn from_text(text: &str, ty: Option<&Type>) -> Result<Value, String> {
    match ty {
        None | Some(Type::Any) => Ok(Value::String(text.to_owned())),
        Some(t) if t.is_primitive() => types::convert(Value::String(text.to_owned()), t),
        Some(t) => {
            let expr: hcl::edit::expr::Expression =
                text.parse().map_err(|e: hcl::edit::parser::Error| {
                    format!(
                        "`{text}` is not a valid {} value: {}",
                        t.name(),
                        e.message()
                    )
                })?;
            let v = eval(&expr, &Scope::default())?;
            types::convert(v, t)
        }
    }
}

/// The name, value and location of every variable set in a var file.
fn read_var_file(path: &Path, diags: &mut Diagnostics) -> Vec<(String, Value, Option<Location>)> {
    let label = format!("var-file {}", path.display());
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            diags
                .error(&label, format!("cannot read it: {e}"), None)
                .hint = Some("check the path given to -var-file".into());
            return Vec::new();
        }
    };
    let file = Arc::new(SourceFile::new(path, text));
    let loc = |span: Span| {
        Some(Location {
            file: file.clone(),
            span,
        })
    };
    let mut out = Vec::new();
    if path.to_string_lossy().ends_with(".json") {
        match json::parse(file.text()) {
            Ok(root) => match root.as_object() {
                Some(members) => {
                    for m in members {
                        let v: Value = super::functions::from_json(&m.value.to_serde());
                        out.push((m.key.clone(), v, loc(m.key_span)));
                    }
                }
                None => {
                    diags.error(
                        &label,
                        format!("a var file is a JSON object, found {}", root.kind()),
                        loc(root.span),
                    );
                }
            },
            Err(e) => {
                diags.error(
                    &label,
                    format!("invalid JSON: {}", e.message),
                    loc(Span::new(e.offset, e.offset + 1)),
                );
            }
        }
        return out;
    }
    let body = match hcl::edit::parser::parse_body(file.text()) {
        Ok(b) => b,
        Err(e) => {
            let at = e.location().offset();
            diags.error(
                &label,
                format!("invalid HCL: {}", e.message()),
                loc(Span::new(at, at + 1)),
            );
            return out;
        }
    };
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => {
                let span = span_of(0, a.value.span());
                match eval(&a.value, &Scope::default()) {
                    Ok(v) => {
                        out.push((a.key.as_str().to_owned(), v, loc(span_of(0, a.key.span()))))
                    }
                    Err(e) => {
                        diags.error(&label, format!("{}: {e}", a.key.as_str()), loc(span)).hint =
                            Some("a var file holds values only: it cannot refer to variables or call env()".into());
                    }
                }
            }
            Structure::Block(b) => {
                diags.error(
                    &label,
                    format!(
                        "a var file holds `name = value` lines only; found a `{}` block",
                        b.ident.as_str()
                    ),
                    loc(span_of(0, b.ident.span())),
                );
            }
        }
    }
    out
}
