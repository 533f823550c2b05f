//! HCL's JSON syntax (`*.pkr.json`): a JSON file is translated to the
//! native syntax that the rest of the front end reads, with a map from each
//! generated offset back to the JSON text, so that every message points at
//! the user's file. hcl-edit cannot be given spans from outside (its
//! `SetSpan` is private), hence the translation rather than a second
//! evaluator.
//!
//! Which keys are blocks follows Packer's schema, as hcl's JSON decoder
//! does: `source` and `data` take two labels (`{"source": {"qemu": {"x":
//! {…}}}}`), `variable`, `local`, `provisioner`, `post-processor` one, and
//! a list of objects at any level is several blocks. Strings are templates
//! (`"${var.x}"`); `type` and `iterator` are read as expressions, as Packer
//! reads them. A key `//` in a block is a comment.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::template::json::{self, Member, Node, Span, Value};

/// Generated offset → offset in the JSON text, sorted by the first.
#[derive(Debug, Default)]
pub struct OffsetMap {
    points: Vec<(usize, usize)>,
}

impl OffsetMap {
    /// The JSON offset of a generated one: the nearest point at or before
    /// it, shifted by the distance (exact inside a copied token).
    pub fn original(&self, generated: usize) -> usize {
        let i = self.points.partition_point(|&(g, _)| g <= generated);
        match i.checked_sub(1).and_then(|i| self.points.get(i)) {
            Some(&(g, o)) => o + (generated - g),
            None => 0,
        }
    }
}

thread_local! {
    /// The maps of the JSON-syntax files being loaded on this thread, by
    /// the base offset of their file. Set for the duration of one load
    /// (see `MapsInUse`): `span_of` is the one place spans are made, and
    /// it does not have the file list at hand.
    static MAPS: RefCell<Vec<(usize, Arc<OffsetMap>)>> = const { RefCell::new(Vec::new()) };
}

/// Registers a file's map until dropped.
pub(crate) struct MapsInUse;

impl MapsInUse {
    pub fn new() -> Self {
        MAPS.with(|m| m.borrow_mut().clear());
        Self
    }

    pub fn add(&self, base: usize, map: Arc<OffsetMap>) {
        MAPS.with(|m| m.borrow_mut().push((base, map)));
    }
}

impl Drop for MapsInUse {
    fn drop(&mut self) {
        MAPS.with(|m| m.borrow_mut().clear());
    }
}

/// Maps an offset inside the file at `base` if that file was JSON.
pub(crate) fn map_offset(base: usize, local: usize) -> usize {
    MAPS.with(|m| {
        m.borrow()
            .iter()
            .find(|(b, _)| *b == base)
            .map_or(local, |(_, map)| map.original(local))
    })
}

/// A problem in the JSON's shape, at a byte range of the JSON text.
#[derive(Debug)]
pub struct ShapeError {
    pub span: Span,
    pub message: String,
    pub hint: String,
}

/// The translation of one file.
#[derive(Debug)]
pub struct Translated {
    pub hcl: String,
    pub map: OffsetMap,
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Root,
    Packer,
    Variable,
    Build,
    PostProcessors,
    Dynamic,
    /// A body whose keys are attributes (a source, a provisioner…), except
    /// `dynamic` blocks.
    Plain,
}

/// Which keys of a context are blocks, with their label count and the
/// context of their body.
fn block_kind(ctx: Ctx, key: &str) -> Option<(usize, Ctx)> {
    Some(match (ctx, key) {
        (Ctx::Root, "packer") => (0, Ctx::Packer),
        (Ctx::Root, "variable") => (1, Ctx::Variable),
        (Ctx::Root, "variables" | "locals") => (0, Ctx::Plain),
        (Ctx::Root, "local") => (1, Ctx::Plain),
        (Ctx::Root, "source" | "data") => (2, Ctx::Plain),
        (Ctx::Root, "build") => (0, Ctx::Build),
        (Ctx::Packer, "required_plugins") => (0, Ctx::Plain),
        (Ctx::Variable, "validation") => (0, Ctx::Plain),
        (Ctx::Build, "source") => (1, Ctx::Plain),
        (Ctx::Build, "provisioner" | "error-cleanup-provisioner" | "post-processor") => {
            (1, Ctx::Plain)
        }
        (Ctx::Build, "post-processors") => (0, Ctx::PostProcessors),
        (Ctx::Build, "hcp_packer_registry") => (0, Ctx::Plain),
        (Ctx::PostProcessors, "post-processor") => (1, Ctx::Plain),
        (Ctx::Dynamic, "content") => (0, Ctx::Plain),
        (Ctx::Root | Ctx::Dynamic, _) => return None,
        (_, "dynamic") => (1, Ctx::Dynamic),
        _ => return None,
    })
}

/// Keys whose string is an expression, not a template.
fn is_expression_key(ctx: Ctx, key: &str) -> bool {
    matches!(
        (ctx, key),
        (Ctx::Variable, "type") | (Ctx::Dynamic, "iterator")
    )
}

struct Writer {
    out: String,
    map: OffsetMap,
    errors: Vec<ShapeError>,
}

/// Translates a `*.pkr.json` file's text. A JSON syntax error is returned
/// with its offset.
pub fn translate(text: &str) -> Result<Translated, Vec<ShapeError>> {
    let root = json::parse(text).map_err(|e| {
        vec![ShapeError {
            span: Span::new(e.offset, e.offset + 1),
            message: format!("invalid JSON: {}", e.message),
            hint: "a *.pkr.json file is one JSON object; check the brackets and commas".into(),
        }]
    })?;
    let mut w = Writer {
        out: String::new(),
        map: OffsetMap::default(),
        errors: Vec::new(),
    };
    match &root.value {
        Value::Object(members) => w.body(members, Ctx::Root, 0),
        _ => w.error(
            root.span,
            format!(
                "expected an object at the top of the file, found {}",
                root.kind()
            ),
            "a *.pkr.json file is an object: {\"source\": {…}, \"build\": {…}}",
        ),
    }
    if w.errors.is_empty() {
        Ok(Translated {
            hcl: w.out,
            map: w.map,
        })
    } else {
        Err(w.errors)
    }
}

impl Writer {
    fn mark(&mut self, orig: usize) {
        self.map.points.push((self.out.len(), orig));
    }

    fn error(&mut self, span: Span, message: String, hint: &str) {
        self.errors.push(ShapeError {
            span,
            message,
            hint: hint.to_owned(),
        });
    }

    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.out.push_str("  ");
        }
    }

    fn body(&mut self, members: &[Member], ctx: Ctx, depth: usize) {
        for m in members {
            if m.key == "//" {
                continue;
            }
            match block_kind(ctx, &m.key) {
                Some((labels, inner)) => {
                    self.blocks(m, &m.value, labels, &mut Vec::new(), inner, depth);
                }
                None => {
                    self.indent(depth);
                    self.mark(m.key_span.start);
                    if is_identifier(&m.key) {
                        self.out.push_str(&m.key);
                    } else {
                        self.error(
                            m.key_span,
                            format!("`{}` is not a valid attribute name", m.key),
                            "names are letters, digits, `_` and `-`, starting with a letter",
                        );
                    }
                    self.out.push_str(" = ");
                    if is_expression_key(ctx, &m.key) {
                        self.raw_expression(&m.value);
                    } else {
                        self.expression(&m.value, depth);
                    }
                    self.out.push('\n');
                }
            }
        }
    }

    /// One or more blocks named `m.key`: `labels` labels still to read
    /// from nested object keys.
    fn blocks(
        &mut self,
        m: &Member,
        node: &Node,
        labels: usize,
        got: &mut Vec<(String, Span)>,
        ctx: Ctx,
        depth: usize,
    ) {
        match &node.value {
            Value::Array(items) => {
                for item in items {
                    self.blocks(m, item, labels, got, ctx, depth);
                }
            }
            Value::Object(members) if got.len() < labels => {
                for inner in members {
                    got.push((inner.key.clone(), inner.key_span));
                    self.blocks(m, &inner.value, labels, got, ctx, depth);
                    got.pop();
                }
            }
            Value::Object(members) => {
                self.indent(depth);
                self.mark(m.key_span.start);
                self.out.push_str(&m.key);
                for (label, span) in got.iter() {
                    self.out.push(' ');
                    self.mark(span.start);
                    self.out.push('"');
                    push_escaped(&mut self.out, label, true);
                    self.out.push('"');
                }
                self.mark(node.span.start);
                self.out.push_str(" {\n");
                self.body(members, ctx, depth + 1);
                self.indent(depth);
                self.mark(node.span.end.saturating_sub(1));
                self.out.push_str("}\n");
            }
            _ => {
                let what = if got.len() < labels {
                    format!(
                        "an object whose keys are the block's {} label{}",
                        labels,
                        if labels == 1 { "" } else { "s" }
                    )
                } else {
                    "an object (the block's body) or a list of them".to_owned()
                };
                self.error(
                    node.span,
                    format!("`{}`: expected {what}, found {}", m.key, node.kind()),
                    block_hint(&m.key),
                );
            }
        }
    }

    fn expression(&mut self, node: &Node, depth: usize) {
        self.mark(node.span.start);
        match &node.value {
            Value::Null => self.out.push_str("null"),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Number(raw) => self.out.push_str(raw),
            Value::String(s) => {
                self.out.push('"');
                push_template(&mut self.out, s);
                self.out.push('"');
            }
            Value::Array(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.expression(item, depth);
                }
                self.out.push(']');
            }
            Value::Object(members) => {
                self.out.push_str("{\n");
                for m in members {
                    self.indent(depth + 1);
                    self.mark(m.key_span.start);
                    self.out.push('"');
                    push_template(&mut self.out, &m.key);
                    self.out.push_str("\" = ");
                    self.expression(&m.value, depth + 1);
                    self.out.push('\n');
                }
                self.indent(depth);
                self.out.push('}');
            }
        }
    }

    /// A string read as an expression (`"type": "list(string)"`).
    fn raw_expression(&mut self, node: &Node) {
        match &node.value {
            Value::String(s) if !s.contains(['\n', '#']) && !s.contains("//") => {
                // Inside the quotes, so offsets within the expression line up.
                self.mark(node.span.start + 1);
                let _ = write!(self.out, "{s}");
            }
            _ => {
                self.error(
                    node.span,
                    format!("expected an expression in a string, found {}", node.kind()),
                    "write the expression as a string, as in \"type\": \"list(string)\"",
                );
                self.out.push_str("null");
            }
        }
    }
}

fn block_hint(key: &str) -> &'static str {
    match key {
        "source" | "data" => "write {\"source\": {\"TYPE\": {\"NAME\": {…}}}}",
        "variable" | "local" => "write {\"variable\": {\"NAME\": {…}}}",
        "provisioner" | "post-processor" | "error-cleanup-provisioner" => {
            "write {\"provisioner\": {\"TYPE\": {…}}} or a list of them"
        }
        _ => "write the block as an object, or a list of objects for several",
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// Escapes literal text for a quoted HCL string; `literal` also escapes
/// `${` and `%{` (labels are not templates).
fn push_escaped(out: &mut String, s: &str, literal: bool) {
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if literal && chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// A JSON string as an HCL quoted template: literal parts escaped, the
/// insides of `${…}` and `%{…}` copied as they are (their own strings
/// keep their quotes).
fn push_template(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut literal_start = 0;
    while i < bytes.len() {
        let escaped_open = i + 2 < bytes.len()
            && (bytes[i] == b'$' || bytes[i] == b'%')
            && bytes[i + 1] == bytes[i]
            && bytes[i + 2] == b'{';
        if escaped_open {
            i += 3;
            continue;
        }
        let opens =
            i + 1 < bytes.len() && (bytes[i] == b'$' || bytes[i] == b'%') && bytes[i + 1] == b'{';
        if !opens {
            i += 1;
            continue;
        }
        push_escaped(out, &s[literal_start..i], false);
        let end = interpolation_end(bytes, i + 2);
        out.push_str(&s[i..end]);
        i = end;
        literal_start = end;
    }
    push_escaped(out, &s[literal_start..], false);
}

/// The offset just past the `}` closing an interpolation whose body
/// starts at `from` (or the end of the text when it is not closed: the
/// parser then reports it).
fn interpolation_end(bytes: &[u8], from: usize) -> usize {
    let mut depth = 1usize;
    let mut i = from;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hcl(json: &str) -> String {
        translate(json).expect("translates").hcl
    }

    #[test]
    fn blocks_take_their_labels_from_nested_keys() {
        let out = hcl(
            r#"{"source": {"qemu": {"a": {"cpus": 2}, "b": {"cpus": 1}}},
               "variable": {"v": {"type": "list(string)", "default": ["x"]}},
               "build": [{"sources": ["source.qemu.a"],
                          "provisioner": [{"shell": {"inline": ["echo ${var.v[0]}"]}},
                                          {"file": {"source": "a\"b", "destination": "/x"}}]}]}"#,
        );
        let body = hcl::edit::parser::parse_body(&out).expect(&out);
        assert_eq!(body.get_blocks("source").count(), 2, "{out}");
        assert!(out.contains("source \"qemu\" \"b\" {"), "{out}");
        assert!(out.contains("type = list(string)"), "{out}");
        assert!(out.contains("provisioner \"file\" {"), "{out}");
        assert!(out.contains(r#""a\"b""#), "{out}");
        assert!(out.contains(r#""echo ${var.v[0]}""#), "{out}");
    }

    #[test]
    fn interpolations_keep_their_quotes_and_escapes_stay_literal() {
        let out = hcl(r#"{"locals": {"a": "${join(\",\", [\"x}\", \"y\"])} \"q\" $${no}"}}"#);
        assert!(
            out.contains(r#"a = "${join(",", ["x}", "y"])} \"q\" $${no}""#),
            "{out}"
        );
        hcl::edit::parser::parse_body(&out).expect(&out);
    }

    #[test]
    fn shape_errors_point_into_the_json() {
        let text = "{\"source\": {\"qemu\": \"x\"}}";
        let errors = translate(text).expect_err("refused");
        assert_eq!(&text[errors[0].span.start..errors[0].span.end], "\"x\"");
        assert!(errors[0].message.contains("label"), "{}", errors[0].message);
        let errors = translate("{\"build\": {").expect_err("refused");
        assert!(errors[0].message.starts_with("invalid JSON"));
    }

    #[test]
    fn offsets_map_back_to_the_json() {
        let text = "{\n  \"locals\": {\n    \"a\": \"${1 +}\"\n  }\n}";
        let t = translate(text).expect("translates");
        let at = t.hcl.find("\"${1").expect("string");
        let orig = t.map.original(at);
        assert_eq!(&text[orig..orig + 4], "\"${1");
    }
}
