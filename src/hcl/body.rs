//! A block's body evaluated to the spanned JSON value the config decoders
//! read: attributes become members, nested blocks become objects (a list
//! of objects when a block type repeats), every node spanning the HCL it
//! came from.

use hcl::Value as HclValue;
use hcl::edit::Span as _;
use hcl::edit::expr::Expression;
use hcl::edit::structure::{Body, Structure};

use super::eval::{Scope, eval};
use super::{Files, span_of};
use crate::template::diagnostic::Diagnostics;
use crate::template::json::{Member, Node, Span, Value};

/// Converts an evaluated value to a node; items of a literal list or
/// object get their own spans, so an error points at the item.
pub fn to_node(v: &HclValue, expr: Option<&Expression>, base: usize, span: Span) -> Node {
    let value = match v {
        HclValue::Null => Value::Null,
        HclValue::Bool(b) => Value::Bool(*b),
        HclValue::Number(n) => Value::Number(n.to_string()),
        HclValue::String(s) => Value::String(s.clone()),
        HclValue::Array(items) => {
            let literal = match expr {
                Some(Expression::Array(a)) if a.len() == items.len() => Some(a),
                _ => None,
            };
            Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let e = literal.and_then(|a| a.get(i));
                        let s = e.map_or(span, |e| span_of(base, e.span()));
                        to_node(item, e, base, s)
                    })
                    .collect(),
            )
        }
        HclValue::Object(members) => {
            let literal = match expr {
                Some(Expression::Object(o)) => Some(o),
                _ => None,
            };
            Value::Object(
                members
                    .iter()
                    .map(|(k, item)| {
                        let found = literal.and_then(|o| {
                            o.iter().find(|(key, _)| {
                                object_key_text(key).as_deref() == Some(k.as_str())
                            })
                        });
                        let (key_span, e) = match found {
                            Some((key, value)) => (span_of(base, key.span()), Some(value.expr())),
                            None => (span, None),
                        };
                        let s = e.map_or(span, |e| span_of(base, e.span()));
                        Member {
                            key: k.clone(),
                            key_span,
                            value: to_node(item, e, base, s),
                        }
                    })
                    .collect(),
            )
        }
    };
    Node { value, span }
}

fn object_key_text(key: &hcl::edit::expr::ObjectKey) -> Option<String> {
    match key {
        hcl::edit::expr::ObjectKey::Ident(i) => Some(i.as_str().to_owned()),
        hcl::edit::expr::ObjectKey::Expression(Expression::String(s)) => {
            Some(s.as_str().to_owned())
        }
        _ => None,
    }
}

/// What to leave out of a body (keys the caller reads itself).
pub struct Evaluated {
    pub members: Vec<Member>,
    pub ok: bool,
}

/// Evaluates every attribute and nested block of a body. `path` names the
/// block in messages (`source.qemu.tiny`).
pub fn evaluate(
    body: &Body,
    base: usize,
    scope: &Scope,
    path: &str,
    skip: &[&str],
    files: &Files,
    diags: &mut Diagnostics,
) -> Evaluated {
    let mut members: Vec<Member> = Vec::new();
    let mut ok = true;
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => {
                let key = a.key.as_str();
                if skip.contains(&key) {
                    continue;
                }
                let key_span = span_of(base, a.key.span());
                let span = span_of(base, a.value.span());
                if members.iter().any(|m| m.key == key) {
                    diags
                        .error(
                            path,
                            format!("`{key}` is set twice"),
                            files.location(key_span),
                        )
                        .hint = Some("an attribute may be set once in a block; remove one".into());
                    ok = false;
                    continue;
                }
                match eval(&a.value, scope) {
                    Ok(v) => members.push(Member {
                        key: key.to_owned(),
                        key_span,
                        value: to_node(&v, Some(&a.value), base, span),
                    }),
                    Err(e) => {
                        diags
                            .error(path, format!("{key}: {e}"), files.location(span))
                            .hint = hint_for(&e);
                        ok = false;
                    }
                }
            }
            Structure::Block(b) => {
                let key = b.ident.as_str();
                if skip.contains(&key) {
                    continue;
                }
                let key_span = span_of(base, b.ident.span());
                if key == "dynamic" {
                    diags
                        .error(
                            path,
                            "`dynamic` blocks are not supported by kiln yet",
                            files.location(key_span),
                        )
                        .hint = Some("write the blocks out, one per value".into());
                    ok = false;
                    continue;
                }
                let inner = evaluate(
                    &b.body,
                    base,
                    scope,
                    &format!("{path}.{key}"),
                    &[],
                    files,
                    diags,
                );
                ok &= inner.ok;
                let node = Node {
                    value: Value::Object(inner.members),
                    span: span_of(base, b.span()),
                };
                match members.iter_mut().find(|m| m.key == key) {
                    Some(m) => match &mut m.value.value {
                        Value::Array(items) => items.push(node),
                        other => {
                            let first = Node {
                                value: std::mem::replace(other, Value::Null),
                                span: m.value.span,
                            };
                            m.value.value = Value::Array(vec![first, node]);
                        }
                    },
                    None => members.push(Member {
                        key: key.to_owned(),
                        key_span,
                        value: node,
                    }),
                }
            }
        }
    }
    Evaluated { members, ok }
}

pub fn hint_for(message: &str) -> Option<String> {
    if message.contains("unknown variable") {
        Some("refer to a variable as var.NAME and to a local as local.NAME".into())
    } else if message.contains("no attribute") {
        Some("check the name: is it declared in a variable block or a locals block?".into())
    } else {
        None
    }
}
