//! Locals (`locals { name = … }` and `local "name" { expression, sensitive }`),
//! evaluated in dependency order; a cycle is reported with its path.

use hcl::edit::Span as _;
use hcl::edit::expr::Expression;
use hcl::edit::structure::Structure;
use hcl::{Map, Value};

use super::eval::{Scope, eval, references};
use super::{Files, Parsed, span_of};
use crate::template::diagnostic::{Diagnostics, did_you_mean};
use crate::template::json::Span;

pub struct Locals {
    pub values: Map<String, Value>,
    pub secrets: Vec<String>,
    /// Name and value as `inspect` shows them (sensitive ones masked).
    pub shown: Vec<(String, String)>,
}

struct Local<'a> {
    name: String,
    expr: &'a Expression,
    base: usize,
    span: Span,
    sensitive: bool,
}

fn collect<'a>(parsed: &'a [Parsed], files: &Files, diags: &mut Diagnostics) -> Vec<Local<'a>> {
    let mut out: Vec<Local<'a>> = Vec::new();
    let mut push = |l: Local<'a>, diags: &mut Diagnostics| {
        if out.iter().any(|x| x.name == l.name) {
            diags
                .error(
                    format!("local.{}", l.name),
                    "is defined twice",
                    files.location(l.span),
                )
                .hint = Some("a local is defined once across all the template's files".into());
        } else {
            out.push(l);
        }
    };
    for p in parsed {
        for s in p.body.iter() {
            let Structure::Block(b) = s else { continue };
            match b.ident.as_str() {
                "locals" => {
                    for item in b.body.iter() {
                        match item {
                            Structure::Attribute(a) => push(
                                Local {
                                    name: a.key.as_str().to_owned(),
                                    expr: &a.value,
                                    base: p.base,
                                    span: span_of(p.base, a.key.span()),
                                    sensitive: false,
                                },
                                diags,
                            ),
                            Structure::Block(inner) => {
                                diags.error(
                                    "locals",
                                    format!("unexpected block `{}`", inner.ident.as_str()),
                                    files.location(span_of(p.base, inner.ident.span())),
                                );
                            }
                        }
                    }
                }
                "local" => {
                    let span = span_of(p.base, b.ident.span());
                    let ([label], Some(expr)) =
                        (b.labels.as_slice(), b.body.get_attribute("expression"))
                    else {
                        diags
                            .error(
                                "local",
                                "a local block has one label, its name, and an `expression`",
                                files.location(span),
                            )
                            .hint = Some("write local \"name\" { expression = … }".into());
                        continue;
                    };
                    let sensitive = b.body.get_attribute("sensitive").is_some_and(|a| {
                        matches!(eval(&a.value, &Scope::default()), Ok(Value::Bool(true)))
                    });
                    push(
                        Local {
                            name: label.as_str().to_owned(),
                            expr: &expr.value,
                            base: p.base,
                            span: span_of(p.base, label.span()),
                            sensitive,
                        },
                        diags,
                    );
                }
                _ => {}
            }
        }
    }
    out
}

pub fn evaluate(
    parsed: &[Parsed],
    scope: &Scope,
    missing_vars: &[String],
    files: &Files,
    diags: &mut Diagnostics,
) -> Locals {
    let locals = collect(parsed, files, diags);
    let names: Vec<&str> = locals.iter().map(|l| l.name.as_str()).collect();
    let deps: Vec<Vec<usize>> = locals
        .iter()
        .map(|l| {
            let mut d = Vec::new();
            for r in references(l.expr, "local") {
                match names.iter().position(|n| *n == r) {
                    Some(i) => d.push(i),
                    None => {
                        diags
                            .error(
                                format!("local.{}", l.name),
                                format!("refers to `local.{r}`, which is not defined"),
                                files.location(span_of(l.base, l.expr.span())),
                            )
                            .hint = did_you_mean(&r, names.iter().copied())
                            .map(|s| format!("did you mean `local.{s}`?"));
                    }
                }
            }
            d
        })
        .collect();

    // Depth-first order; a node met again while on the stack is a cycle.
    let mut order = Vec::new();
    let mut state = vec![0u8; locals.len()]; // 0 new, 1 on stack, 2 done
    let mut in_cycle = vec![false; locals.len()];
    fn visit(
        i: usize,
        deps: &[Vec<usize>],
        state: &mut [u8],
        stack: &mut Vec<usize>,
        order: &mut Vec<usize>,
        cycles: &mut Vec<Vec<usize>>,
    ) {
        state[i] = 1;
        stack.push(i);
        for &d in &deps[i] {
            match state[d] {
                0 => visit(d, deps, state, stack, order, cycles),
                1 => {
                    let from = stack.iter().position(|&x| x == d).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(d);
                    cycles.push(cycle);
                }
                _ => {}
            }
        }
        stack.pop();
        state[i] = 2;
        order.push(i);
    }
    let mut cycles = Vec::new();
    for i in 0..locals.len() {
        if state[i] == 0 {
            visit(
                i,
                &deps,
                &mut state,
                &mut Vec::new(),
                &mut order,
                &mut cycles,
            );
        }
    }
    for cycle in &cycles {
        let path: Vec<String> = cycle
            .iter()
            .map(|&i| format!("local.{}", locals[i].name))
            .collect();
        let first = &locals[cycle[0]];
        diags
            .error(
                format!("local.{}", first.name),
                format!(
                    "locals refer to each other in a cycle: {}",
                    path.join(" -> ")
                ),
                files.location(first.span),
            )
            .hint = Some("break the cycle: one of these must not depend on the others".into());
        for &i in cycle {
            in_cycle[i] = true;
        }
    }

    let mut values = Map::new();
    let mut secrets = Vec::new();
    let mut shown = Vec::new();
    let mut local_scope = scope.clone();
    let mut unknown: Vec<String> = Vec::new();
    for i in order {
        let l = &locals[i];
        if in_cycle[i] {
            continue;
        }
        // A local built from a missing variable has no value yet: inspect
        // says so rather than showing a value made from null.
        let unknown_input = references(l.expr, "var")
            .iter()
            .any(|v| missing_vars.contains(v))
            || references(l.expr, "local")
                .iter()
                .any(|n| unknown.contains(n));
        if unknown_input {
            unknown.push(l.name.clone());
            shown.push((l.name.clone(), "<unknown>".to_owned()));
            values.insert(l.name.clone(), Value::Null);
            continue;
        }
        local_scope.set("local", Value::Object(values.clone()));
        match eval(l.expr, &local_scope) {
            Ok(v) => {
                if l.sensitive
                    && let Some(s) = super::functions::as_string(&v)
                {
                    secrets.push(s);
                }
                shown.push((
                    l.name.clone(),
                    if l.sensitive {
                        "<sensitive>".to_owned()
                    } else {
                        super::variables::display(&v)
                    },
                ));
                values.insert(l.name.clone(), v);
            }
            Err(e) => {
                let span = span_of(l.base, l.expr.span());
                diags
                    .error(format!("local.{}", l.name), e.clone(), files.location(span))
                    .hint = super::body::hint_for(&e);
            }
        }
    }
    // Show locals in the order written.
    shown.sort_by_key(|(n, _)| names.iter().position(|x| x == n));
    Locals {
        values,
        secrets,
        shown,
    }
}
