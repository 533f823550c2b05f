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
                    Ok(v) if go_variable_function(&v).is_some() => {
                        let f = go_variable_function(&v).unwrap_or_default();
                        let replacement = if f == "user" {
                            "var.NAME"
                        } else {
                            "a variable whose default is env(\"NAME\")"
                        };
                        diags
                            .error(path, format!("{key}: `{{{{{f} …}}}}` is a JSON-template function; HCL2 templates do not have it"), files.location(span))
                            .hint = Some(format!("use {replacement} in a ${{…}} interpolation instead"));
                        ok = false;
                    }
                    // In HCL an attribute set to null is not set:
                    // `cd_content = var.cidata ? {…} : null`.
                    Ok(HclValue::Null) => {}
                    Ok(v) => members.push(Member {
                        key: key.to_owned(),
                        key_span,
                        value: to_node(&v, Some(&a.value), base, span),
                    }),
                    // Its cause (a local or data source that failed) is
                    // reported already.
                    Err(_) if scope.uses_failed(&a.value) => ok = false,
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
                    match expand_dynamic(b, base, scope, path, files, diags) {
                        Some((name, nodes)) => {
                            for node in nodes {
                                add_block(&mut members, &name, key_span, node);
                            }
                        }
                        None => ok = false,
                    }
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
                add_block(&mut members, key, key_span, node);
            }
        }
    }
    Evaluated { members, ok }
}

/// A nested block joins the members: a second block of the same type
/// turns the member into a list of blocks.
fn add_block(members: &mut Vec<Member>, key: &str, key_span: Span, node: Node) {
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

/// `dynamic "NAME" { for_each, iterator, labels, content { … } }`: one
/// NAME block per element, `content` evaluated with the iterator
/// (`NAME.key`, `NAME.value`, or the `iterator` name) in scope.
fn expand_dynamic(
    b: &hcl::edit::structure::Block,
    base: usize,
    scope: &Scope,
    path: &str,
    files: &Files,
    diags: &mut Diagnostics,
) -> Option<(String, Vec<Node>)> {
    let dynamic = Dynamic::read(b, base, scope, path, files, diags)?;
    let mut nodes = Vec::new();
    for s in &dynamic.scopes {
        let inner = evaluate(
            &dynamic.content.body,
            base,
            s,
            &dynamic.path,
            &[],
            files,
            diags,
        );
        if !inner.ok {
            return None;
        }
        nodes.push(Node {
            value: Value::Object(inner.members),
            span: span_of(base, dynamic.content.span()),
        });
    }
    Some((dynamic.name, nodes))
}

/// A `dynamic` block read: the type of the blocks it makes, its `content`,
/// and one scope per element of `for_each`, with the iterator (`NAME.key`,
/// `NAME.value`, or the `iterator` name) set.
pub(super) struct Dynamic<'a> {
    pub name: String,
    pub iterator: String,
    pub path: String,
    pub content: &'a hcl::edit::structure::Block,
    pub scopes: Vec<Scope>,
}

impl<'a> Dynamic<'a> {
    pub fn read(
        b: &'a hcl::edit::structure::Block,
        base: usize,
        scope: &Scope,
        path: &str,
        files: &Files,
        diags: &mut Diagnostics,
    ) -> Option<Self> {
        let span = span_of(base, b.ident.span());
        let [label] = b.labels.as_slice() else {
            diags
                .error(
                    path,
                    "a dynamic block has one label: the type of the blocks it makes",
                    files.location(span),
                )
                .hint = Some("write dynamic \"NAME\" { for_each = …, content { … } }".into());
            return None;
        };
        let name = label.as_str().to_owned();
        let path = format!("{path}.dynamic.{name}");
        let Some(for_each) = b.body.get_attribute("for_each") else {
            diags.error(&path, "for_each is required", files.location(span));
            return None;
        };
        let Some(content) = b.body.get_blocks("content").next() else {
            diags.error(&path, "a content block is required", files.location(span));
            return None;
        };
        let iterator = match b.body.get_attribute("iterator") {
            Some(a) => match &a.value {
                hcl::edit::expr::Expression::Variable(v) => v.as_str().to_owned(),
                _ => {
                    diags.error(
                        &path,
                        "iterator: expected a name",
                        files.location(span_of(base, a.value.span())),
                    );
                    return None;
                }
            },
            None => name.clone(),
        };
        let each_span = span_of(base, for_each.value.span());
        let items: Vec<(HclValue, HclValue)> = match eval(&for_each.value, scope) {
            // As HCL's dynblock: an unknown for_each makes one block whose
            // iterator is unknown, so the rest of its content is still checked.
            Ok(v) if super::unknown::is_unknown(&v) => {
                let unknown = super::unknown::unknown(super::unknown::Kind::Dynamic);
                vec![(unknown.clone(), unknown)]
            }
            Ok(HclValue::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (HclValue::from(i as u64), v))
                .collect(),
            // In key order, as HCL iterates a map or an object.
            Ok(HclValue::Object(m)) => {
                let mut items: Vec<(String, HclValue)> = m.into_iter().collect();
                items.sort_by(|a, b| a.0.cmp(&b.0));
                items
                    .into_iter()
                    .map(|(k, v)| (HclValue::String(k), v))
                    .collect()
            }
            Ok(other) => {
                diags.error(
                    &path,
                    format!("for_each: expected a list, set or map, found {other}"),
                    files.location(each_span),
                );
                return None;
            }
            Err(e) => {
                diags
                    .error(&path, format!("for_each: {e}"), files.location(each_span))
                    .hint = hint_for(&e);
                return None;
            }
        };
        let scopes = items
            .into_iter()
            .map(|(k, v)| {
                let mut s = scope.clone();
                let mut it = hcl::Map::new();
                it.insert("key".to_owned(), k);
                it.insert("value".to_owned(), v);
                s.set(&iterator, HclValue::Object(it));
                s
            })
            .collect();
        Some(Self {
            name,
            iterator,
            path,
            content,
            scopes,
        })
    }
}

/// `{{user …}}` or `{{env …}}` in a string: Packer refuses them in HCL2
/// (values come from `var.*` there), so kiln says so instead of letting
/// the build-time template engine report an undeclared variable.
fn go_variable_function(v: &HclValue) -> Option<&'static str> {
    static PATTERN: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\{\{-?\s*(user|env)\b").ok());
    match v {
        HclValue::String(s) => {
            let caps = PATTERN.as_ref()?.captures(s)?;
            Some(if &caps[1] == "user" { "user" } else { "env" })
        }
        HclValue::Array(items) => items.iter().find_map(go_variable_function),
        HclValue::Object(m) => m.values().find_map(go_variable_function),
        _ => None,
    }
}

pub fn hint_for(message: &str) -> Option<String> {
    if message.contains("unknown variable") {
        Some("refer to a variable as var.NAME and to a local as local.NAME".into())
    } else if message.contains("no attribute") {
        Some("check the name: is it declared in a variable block or a locals block?".into())
    } else if message.starts_with("yamldecode(): on line") {
        Some("the line and column are in the YAML text; yamldecode reads one document, as Packer's does".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(src: &str) -> (Vec<Member>, Diagnostics) {
        let body = hcl::edit::parser::parse_body(src).expect("parses");
        let mut files = Files::default();
        files.add(std::path::Path::new("t.pkr.hcl"), src.to_owned());
        let mut diags = Diagnostics::new();
        let ev = evaluate(&body, 0, &Scope::default(), "t", &[], &files, &mut diags);
        (ev.members, diags)
    }

    #[test]
    fn nested_blocks_repeat_into_a_list_and_dynamic_blocks_expand() {
        let (m, diags) = members(
            r#"
a = 1
disk { size = "1G" }
dynamic "disk" {
  for_each = { second = "2G", third = "3G" }
  iterator = d
  content {
    name = d.key
    size = d.value
  }
}
"#,
        );
        assert!(diags.is_empty(), "{}", diags.render());
        let disks = m.iter().find(|m| m.key == "disk").expect("disk");
        let Value::Array(items) = &disks.value.value else {
            panic!("a list of blocks: {disks:?}");
        };
        assert_eq!(items.len(), 3);
        assert_eq!(items[2].get("size").and_then(Node::as_str), Some("3G"));
        assert_eq!(items[1].get("name").and_then(Node::as_str), Some("second"));
    }

    /// Plain `validate`: a `for_each` from a data source is unknown; HCL
    /// makes one block whose iterator is unknown, and the content's known
    /// parts are still evaluated (and their errors reported).
    #[test]
    fn a_dynamic_block_over_an_unknown_makes_one_block_with_unknown_values() {
        use super::super::unknown::{Kind, is_unknown, unknown};
        let src = "dynamic \"disk\" {\n  for_each = data.x\n  content {\n    size = disk.value\n    kind = \"virtio\"\n  }\n}\n";
        let body = hcl::edit::parser::parse_body(src).expect("parses");
        let mut files = Files::default();
        files.add(std::path::Path::new("t.pkr.hcl"), src.to_owned());
        let mut scope = Scope::default();
        let mut data = hcl::Map::new();
        data.insert("x".to_owned(), unknown(Kind::List));
        scope.set("data", HclValue::Object(data));
        let mut diags = Diagnostics::new();
        let ev = evaluate(&body, 0, &scope, "t", &[], &files, &mut diags);
        assert!(diags.is_empty(), "{}", diags.render());
        let disk = ev.members.iter().find(|m| m.key == "disk").expect("disk");
        let Value::Object(fields) = &disk.value.value else {
            panic!("one block: {disk:?}");
        };
        let field = |k: &str| {
            fields
                .iter()
                .find(|m| m.key == k)
                .and_then(|m| m.value.as_str())
                .map(str::to_owned)
        };
        assert!(field("size").is_some_and(|s| is_unknown(&HclValue::String(s))));
        assert_eq!(field("kind").as_deref(), Some("virtio"));

        let bad = src.replace("\"virtio\"", "nosuch.thing");
        let body = hcl::edit::parser::parse_body(&bad).expect("parses");
        let mut diags = Diagnostics::new();
        let _ = evaluate(&body, 0, &scope, "t", &[], &files, &mut diags);
        assert!(diags.render().contains("nosuch"), "{}", diags.render());
    }

    #[test]
    fn dynamic_errors_are_located() {
        let (_, diags) = members("dynamic \"disk\" {\n  for_each = 3\n  content {}\n}\n");
        let text = diags.render();
        assert!(
            text.contains("for_each: expected a list, set or map"),
            "{text}"
        );
        assert!(text.contains("t.pkr.hcl:2:14"), "{text}");
        let (_, diags) = members("dynamic \"disk\" {\n  for_each = [1]\n}\n");
        assert!(diags.render().contains("a content block is required"));
    }
}
