//! Reading one plugin's JSON object into typed values, the way Packer's
//! weak decoding does ("cpus": "2" is a number), with every string
//! interpolated first, every problem collected with its span, and unknown
//! keys reported with a suggestion.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::go_value::{parse_go_bool, parse_go_duration, parse_go_uint, parse_size_mib};
use crate::template::compat::Compat;
use crate::template::diagnostic::{Diagnostics, Location, did_you_mean, shown_name};
use crate::template::interp::{self, Context, Interp};
pub use crate::template::json::raw_offset;
use crate::template::json::{Member, Node, Span, Value};
use crate::template::model::Template;
use crate::template::render_env::RenderEnv;
use crate::template::variables::ResolvedVariables;

/// What decoding needs from outside the object: the template, the
/// resolved variables, and the build being configured.
pub struct DecodeContext<'a> {
    pub template: &'a Template,
    pub vars: &'a ResolvedVariables,
    /// The build's render environment: `{{build_name}}` and the defaults
    /// made of the name (`output-NAME`, `packer-NAME`) give its
    /// `packer_build_name`.
    pub render: &'a RenderEnv,
    /// The name as written: `only`, `except` and `override` refer to it,
    /// as in Packer.
    pub raw_build_name: Option<&'a str>,
}

impl DecodeContext<'_> {
    fn interp_context<'b>(&'b self, data: &'b BTreeMap<String, String>) -> Context<'b> {
        Context {
            build_values: Some(&BUILD_VALUE_PLACEHOLDERS),
            ..self.render.context(data)
        }
    }

    /// Packer's `packer_build_name` (None outside a build).
    pub fn build_name(&self) -> Option<&str> {
        self.render.build().map(|b| b.packer_build_name.as_str())
    }

    pub fn pwd(&self) -> &Path {
        self.render.pwd()
    }

    /// The run's start, which `{{timestamp}}` and defaults made of it read.
    pub fn init_time(&self) -> SystemTime {
        self.render.init_time()
    }
}

/// Before a build runs, `{{ build `Host` }}` renders to itself, so the step
/// that knows the value can render the string again (as Packer does).
static BUILD_VALUE_PLACEHOLDERS: std::sync::LazyLock<BTreeMap<String, String>> =
    std::sync::LazyLock::new(|| {
        super::build_values::BUILD_VALUES
            .iter()
            .map(|k| ((*k).to_owned(), format!("{{{{ build `{k}` }}}}")))
            .collect()
    });

/// A template string kept for a later step, which fills in build-time
/// values such as `{{ .HTTPIP }}`. Already checked for syntax, known
/// functions and allowed fields.
#[derive(Debug, Clone)]
pub struct Deferred {
    pub template: Interp,
    /// Where it is in the template, for errors when it is rendered.
    pub span: Span,
}

impl Deferred {
    pub fn source(&self) -> &str {
        self.template.source()
    }
}

/// The fields one object is decoded from.
pub struct Fields<'a> {
    ctx: &'a DecodeContext<'a>,
    path: String,
    members: &'a [Member],
    used: Vec<bool>,
    /// Every key asked for, so unknown keys get a suggestion.
    known: Vec<&'static str>,
    diags: &'a mut Diagnostics,
}

impl<'a> Fields<'a> {
    pub fn new(
        ctx: &'a DecodeContext<'a>,
        path: impl Into<String>,
        object: &'a Node,
        diags: &'a mut Diagnostics,
    ) -> Self {
        let members = object.as_object().unwrap_or(&[]);
        Self {
            ctx,
            path: path.into(),
            used: vec![false; members.len()],
            members,
            known: Vec::new(),
            diags,
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn context(&self) -> &'a DecodeContext<'a> {
        self.ctx
    }

    fn loc(&self, span: Span) -> Option<Location> {
        self.ctx.template.location(span)
    }

    /// Reports an error at a key's value.
    pub fn error_at(
        &mut self,
        span: Span,
        message: impl Into<String>,
    ) -> &mut crate::template::diagnostic::Diagnostic {
        let loc = self.loc(span);
        self.diags.error(self.path.clone(), message, loc)
    }

    /// Reports an error about the object as a whole (a missing key).
    pub fn error(
        &mut self,
        message: impl Into<String>,
    ) -> &mut crate::template::diagnostic::Diagnostic {
        let span = self.object_span();
        self.error_at(span, message)
    }

    pub fn warn_at(&mut self, span: Span, message: impl Into<String>) {
        let loc = self.loc(span);
        self.diags.warning(self.path.clone(), message, loc);
    }

    /// Reports a compatibility case (a warning, an error under `-strict`).
    pub fn compat_at(&mut self, case: Compat, span: Span, message: impl Into<String>) {
        let loc = self.loc(span);
        self.diags.compat(case, self.path.clone(), message, loc);
    }

    fn object_span(&self) -> Span {
        match (self.members.first(), self.members.last()) {
            (Some(first), Some(last)) => Span::new(first.key_span.start, last.value.span.end),
            _ => Span::default(),
        }
    }

    /// The raw node for `key` (the last one when repeated), marking it used.
    pub fn raw(&mut self, key: &'static str) -> Option<&'a Node> {
        self.known.push(key);
        let mut found = None;
        for (i, m) in self.members.iter().enumerate() {
            if m.key == key {
                self.used[i] = true;
                found = Some(i);
            }
        }
        let i = found?;
        if self.members[..i].iter().any(|m| m.key == key) {
            let span = self.members[i].key_span;
            self.compat_at(
                Compat::DuplicateKey,
                span,
                format!("`{key}` is given twice; the last one is used, as in Packer"),
            );
        }
        Some(&self.members[i].value)
    }

    /// Span of a key's value, if present (for cross-field errors).
    pub fn span_of(&self, key: &str) -> Option<Span> {
        self.members
            .iter()
            .rev()
            .find(|m| m.key == key)
            .map(|m| m.value.span)
    }

    pub fn has(&self, key: &str) -> bool {
        self.members.iter().any(|m| m.key == key)
    }

    /// Marks keys this decoder consumes elsewhere (`type`, `name`).
    pub fn skip(&mut self, keys: &[&'static str]) {
        for key in keys {
            let _ = self.raw(key);
        }
    }

    /// An old spelling: accepted with a warning naming the new one.
    /// Returns the old key's value when the new key is not also given.
    pub fn renamed(&mut self, old: &'static str, new: &'static str) -> Option<&'a Node> {
        let node = self.raw(old)?;
        let key_span = self
            .members
            .iter()
            .rev()
            .find(|m| m.key == old)
            .map_or(node.span, |m| m.key_span);
        if self.has(new) {
            self.compat_at(
                Compat::DeprecatedKey,
                key_span,
                format!(
                    "`{old}` is the old name of `{new}`, which is also set; `{old}` is ignored"
                ),
            );
            return None;
        }
        self.compat_at(
            Compat::DeprecatedKey,
            key_span,
            format!("`{old}` is deprecated: use `{new}` (`kiln fix` rewrites a JSON template)"),
        );
        Some(node)
    }

    /// An old spelling's value as a string, rendered like any other key's.
    pub fn renamed_string(&mut self, old: &'static str, new: &'static str) -> Option<String> {
        let node = self.renamed(old, new)?;
        self.string_from(old, node)
    }

    /// An old spelling's value as a boolean, rendered and decoded like any
    /// other key's (`"{{user `x`}}"`, `"true"`, `true`).
    pub fn renamed_bool(&mut self, old: &'static str, new: &'static str) -> Option<bool> {
        let node = self.renamed(old, new)?;
        self.bool_from(old, node)
    }

    /// An old spelling's value as a number in a range (a port), rendered and
    /// checked like any other key's.
    pub fn renamed_u64_in(
        &mut self,
        old: &'static str,
        new: &'static str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let node = self.renamed(old, new)?;
        let text = self.scalar_text(old, node, "a number")?;
        if text.is_empty() {
            return None;
        }
        match parse_go_uint(&text) {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                self.error_at(
                    node.span,
                    format!("{old}: {n} is out of range ({min} to {max})"),
                );
                None
            }
            None => {
                self.error_at(
                    node.span,
                    format!("{old}: expected a whole number, found `{text}`"),
                );
                None
            }
        }
    }

    /// A removed key that has no equivalent: accepted with a warning.
    pub fn obsolete(&mut self, key: &'static str, why: &str) {
        if let Some(node) = self.raw(key) {
            let span = node.span;
            self.compat_at(
                Compat::DeprecatedKey,
                span,
                format!("`{key}` is obsolete and ignored: {why}"),
            );
        }
    }

    /// Decodes `object`, a value inside this one, as its own object at
    /// `path` (unknown keys reported there too), sharing the diagnostics.
    pub fn nested<R>(
        &mut self,
        path: String,
        object: &Node,
        decode: impl FnOnce(&mut Fields<'_>) -> R,
    ) -> R {
        let mut inner = Fields::new(self.ctx, path, object, &mut *self.diags);
        let out = decode(&mut inner);
        inner.finish();
        out
    }

    /// Reports every key nobody asked for.
    pub fn finish(self) {
        for (i, m) in self.members.iter().enumerate() {
            // `_comment` keys are comments (Packer refuses them here; kiln
            // tolerates them); `packer_*` keys are Packer's own.
            if !self.used[i] && m.key.starts_with('_') {
                let loc = self.ctx.template.location(m.key_span);
                if let Some(d) = self.diags.compat(
                    Compat::CommentInSection,
                    self.path.clone(),
                    format!("`{}` is a comment; Packer 1.6.6 refuses unknown keys here, comments included", m.key),
                    loc,
                ) {
                    d.hint = Some("move the comment to the template's top level".into());
                }
                continue;
            }
            if self.used[i] || m.key.starts_with("packer_") {
                continue;
            }
            let suggestion = if self.diags.worth_suggesting() {
                did_you_mean(&m.key, self.known.iter().copied())
            } else {
                None
            };
            let hint = suggestion
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| {
                    "remove it, or prefix it with `_` to keep it as a comment".to_owned()
                });
            let loc = self.ctx.template.location(m.key_span);
            self.diags
                .error(
                    self.path.clone(),
                    format!("unknown key `{}`", shown_name(&m.key)),
                    loc,
                )
                .hint = Some(hint);
        }
    }

    // ---- strings -------------------------------------------------------

    /// Interpolates a string value now (user variables, functions).
    pub fn render_node(&mut self, key: &str, node: &Node) -> Option<String> {
        let text = node.as_str()?;
        let empty = BTreeMap::new();
        let ctx = self.ctx.interp_context(&empty);
        match interp::parse(text).and_then(|t| t.render(&ctx)) {
            Ok(s) => Some(s),
            Err(e) => {
                let span = self.string_offset_span(node, e.offset);
                let mut message = format!("{key}: {e}");
                if let interp::InterpErrorKind::InVariable { name, inner } = &e.kind
                    && let interp::InterpErrorKind::UnknownField { name: field, .. } = &**inner
                {
                    message = format!(
                        "{key}: variable `{name}` holds `{{{{ .{field} }}}}`, which is only known while a build runs, and `{key}` is interpolated before that"
                    );
                } else if let Some(field) = build_time_field(text) {
                    message = format!(
                        "{key}: `{{{{ .{field} }}}}` is only known while a build runs, and `{key}` is interpolated before that"
                    );
                }
                self.error_at(span, message);
                None
            }
        }
    }

    /// A span pointing at byte `offset` of a string value's decoded text.
    pub fn string_offset_span(&self, node: &Node, offset: usize) -> Span {
        let raw = self.ctx.template.text_at(node.span);
        let at = node.span.start + raw_offset(raw, offset);
        Span::new(at, at + 1)
    }

    /// Scalars are accepted as text, as Packer's weak decoding does.
    fn scalar_text(&mut self, key: &'static str, node: &Node, expected: &str) -> Option<String> {
        match &node.value {
            Value::String(_) => self.render_node(key, node),
            Value::Number(n) => Some(n.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => None,
            _ => {
                self.error_at(
                    node.span,
                    format!("{key}: expected {expected}, found {}", node.kind()),
                );
                None
            }
        }
    }

    pub fn string(&mut self, key: &'static str) -> Option<String> {
        let node = self.raw(key)?;
        self.string_from(key, node)
    }

    pub fn string_from(&mut self, key: &'static str, node: &Node) -> Option<String> {
        self.scalar_text(key, node, "a string")
    }

    /// A string that must be present and not empty.
    pub fn required_string(&mut self, key: &'static str) -> Option<String> {
        match self.string(key) {
            Some(s) if !s.is_empty() => Some(s),
            Some(_) => {
                let span = self.span_of(key).unwrap_or_default();
                self.error_at(span, format!("{key} must not be empty"));
                None
            }
            None if self.has(key) => None,
            None => {
                self.error(format!("{key} is required"));
                None
            }
        }
    }

    /// A string one of `allowed`.
    pub fn one_of(&mut self, key: &'static str, allowed: &[&str]) -> Option<String> {
        let value = self.string(key)?;
        if value.is_empty() {
            return None;
        }
        if allowed.contains(&value.as_str()) {
            return Some(value);
        }
        let span = self.span_of(key).unwrap_or_default();
        let hint =
            did_you_mean(&value, allowed.iter().copied()).map(|s| format!("did you mean `{s}`?"));
        let d = self.error_at(
            span,
            format!("{key}: `{value}` is not one of {}", allowed.join(", ")),
        );
        d.hint = hint;
        None
    }

    /// A string kept as a template for a later step; `fields` are the
    /// `{{ .Field }}` names that step provides.
    pub fn deferred(&mut self, key: &'static str, fields: &[&str]) -> Option<Deferred> {
        let node = self.raw(key)?;
        self.deferred_from(key, node, fields)
    }

    pub fn deferred_from(&mut self, key: &str, node: &Node, fields: &[&str]) -> Option<Deferred> {
        let Some(text) = node.as_str() else {
            self.error_at(
                node.span,
                format!("{key}: expected a string, found {}", node.kind()),
            );
            return None;
        };
        let parsed = match interp::parse(text) {
            Ok(p) => p,
            Err(e) => {
                let span = self.string_offset_span(node, e.offset);
                self.error_at(span, format!("{key}: {e}"));
                return None;
            }
        };
        // Unknown functions are already refused by the parser.
        let mut ok = true;
        let can_use = || {
            if fields.is_empty() {
                format!("`{key}` has no build-time values")
            } else {
                format!(
                    "`{key}` can use {}",
                    fields
                        .iter()
                        .map(|f| format!("{{{{ .{f} }}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        // A variable's value keeps its build-time fields: this place
        // decides whether they are available.
        for (name, offset) in parsed.user_variables() {
            let Some(value) = self.ctx.vars.values.get(&name) else {
                continue;
            };
            let Some(held) = interp::build_time_value(value) else {
                continue;
            };
            let mut missing: Vec<String> = held
                .data_fields()
                .into_iter()
                .filter(|(field, _)| !fields.contains(&field.as_str()))
                .map(|(field, _)| format!("`{{{{ .{field} }}}}`"))
                .collect();
            missing.dedup();
            if !missing.is_empty() {
                let span = self.string_offset_span(node, offset);
                let hint = can_use();
                let which = if missing.len() == 1 {
                    "which is"
                } else {
                    "which are"
                };
                self.error_at(
                    span,
                    format!(
                        "{key}: variable `{name}` holds {}, {which} not available here",
                        missing.join(", ")
                    ),
                )
                .hint = Some(hint);
                ok = false;
            }
        }
        for (field, offset) in parsed.data_fields() {
            if !fields.contains(&field.as_str()) {
                let span = self.string_offset_span(node, offset);
                let hint = can_use();
                self.error_at(span, format!("{key}: `.{field}` is not available here"))
                    .hint = Some(hint);
                ok = false;
            }
        }
        ok.then_some(Deferred {
            template: parsed,
            span: node.span,
        })
    }

    /// A string a provisioner renders as it runs, once `{{ build `Host` }}`
    /// has its value: kept parsed, and rendered now with the build values
    /// standing for themselves, so every mistake is reported at validation
    /// with its place. Gives the template and that trial rendering.
    pub fn run_time_string(
        &mut self,
        key: &'static str,
        node: &Node,
    ) -> Option<(Deferred, String)> {
        let trial = self.scalar_text(key, node, "a string")?;
        // A number or a boolean is its own text.
        let source = node.as_str().unwrap_or(&trial);
        let template = interp::parse(source).ok()?;
        Some((
            Deferred {
                template,
                span: node.span,
            },
            trial,
        ))
    }

    /// A list of [`Fields::run_time_string`]s (`inline`, `environment_vars`).
    pub fn run_time_string_list(&mut self, key: &'static str) -> Option<Vec<(Deferred, String)>> {
        let node = self.raw(key)?;
        let items = self.list_items(key, node)?;
        Some(
            items
                .iter()
                .filter_map(|item| self.run_time_string(key, item))
                .collect(),
        )
    }

    /// [`Fields::run_time_string_list`]'s templates alone (`inline`,
    /// ansible's `extra_arguments`).
    pub fn run_time_templates(&mut self, key: &'static str) -> Option<Vec<Deferred>> {
        self.run_time_string_list(key)
            .map(|l| l.into_iter().map(|(template, _)| template).collect())
    }

    /// A list of deferred strings (`boot_command`).
    pub fn deferred_list(&mut self, key: &'static str, fields: &[&str]) -> Option<Vec<Deferred>> {
        let node = self.raw(key)?;
        let items = self.list_items(key, node)?;
        Some(
            items
                .iter()
                .filter_map(|item| self.deferred_from(key, item, fields))
                .collect(),
        )
    }

    fn list_items(&mut self, key: &str, node: &Node) -> Option<Vec<Node>> {
        match &node.value {
            Value::Array(items) => Some(items.clone()),
            // Packer's decoder splits a string on commas into a list.
            Value::String(s) if s.is_empty() => Some(Vec::new()),
            Value::String(s) => Some(
                s.split(',')
                    .map(|part| Node {
                        value: Value::String(part.to_owned()),
                        span: node.span,
                    })
                    .collect(),
            ),
            // Weak decoding turns one value into a list of one.
            Value::Number(_) | Value::Bool(_) => Some(vec![node.clone()]),
            Value::Null => None,
            Value::Object(_) => {
                self.error_at(
                    node.span,
                    format!("{key}: expected a list of strings, found an object"),
                );
                None
            }
        }
    }

    pub fn string_list(&mut self, key: &'static str) -> Option<Vec<String>> {
        let node = self.raw(key)?;
        let items = self.list_items(key, node)?;
        Some(
            items
                .iter()
                .filter_map(|item| self.scalar_text(key, item, "a string"))
                .collect(),
        )
    }

    /// `[["-m", "512"], ...]`: a list of argument lists, kept deferred when
    /// `fields` is given (qemuargs, vboxmanage).
    pub fn deferred_list_of_lists(
        &mut self,
        key: &'static str,
        fields: &[&str],
    ) -> Option<Vec<Vec<Deferred>>> {
        let node = self.raw(key)?;
        let Some(rows) = node.as_array() else {
            self.error_at(
                node.span,
                format!(
                    "{key}: expected a list of argument lists, e.g. [[\"-m\", \"512M\"]], found {}",
                    node.kind()
                ),
            );
            return None;
        };
        let mut out = Vec::new();
        for row in rows {
            let Some(args) = row.as_array() else {
                self.error_at(
                    row.span,
                    format!(
                        "{key}: each entry is a list of strings, found {}",
                        row.kind()
                    ),
                );
                continue;
            };
            out.push(
                args.iter()
                    .filter_map(|a| self.deferred_from(key, a, fields))
                    .collect(),
            );
        }
        Some(out)
    }

    /// An object of string values kept as templates for a later step,
    /// which can use `fields` (`http_content` and `{{ .SSHPublicKey }}`).
    pub fn deferred_map(
        &mut self,
        key: &'static str,
        fields: &[&str],
    ) -> Option<BTreeMap<String, Deferred>> {
        let node = self.raw(key)?;
        let Some(members) = node.as_object() else {
            self.error_at(
                node.span,
                format!(
                    "{key}: expected an object of name: value, found {}",
                    node.kind()
                ),
            );
            return None;
        };
        let mut out = BTreeMap::new();
        for m in members {
            if let Some(d) = self.deferred_from(key, &m.value, fields) {
                out.insert(m.key.clone(), d);
            }
        }
        Some(out)
    }

    /// An object of string values, interpolated now.
    pub fn string_map(&mut self, key: &'static str) -> Option<BTreeMap<String, String>> {
        let node = self.raw(key)?;
        let Some(members) = node.as_object() else {
            self.error_at(
                node.span,
                format!(
                    "{key}: expected an object of name: value, found {}",
                    node.kind()
                ),
            );
            return None;
        };
        let mut out = BTreeMap::new();
        for m in members {
            if let Some(v) = self.scalar_text(key, &m.value, "a string") {
                out.insert(m.key.clone(), v);
            }
        }
        Some(out)
    }

    // ---- numbers, booleans, durations, sizes ---------------------------

    pub fn bool(&mut self, key: &'static str) -> Option<bool> {
        let node = self.raw(key)?;
        self.bool_from(key, node)
    }

    pub fn bool_from(&mut self, key: &'static str, node: &Node) -> Option<bool> {
        let text = self.scalar_text(key, node, "true or false")?;
        if text.is_empty() {
            return None;
        }
        match parse_go_bool(&text) {
            Some(b) => Some(b),
            None => {
                self.error_at(
                    node.span,
                    format!("{key}: expected true or false, found `{text}`"),
                );
                None
            }
        }
    }

    pub fn u64(&mut self, key: &'static str) -> Option<u64> {
        let node = self.raw(key)?;
        let text = self.scalar_text(key, node, "a number")?;
        if text.is_empty() {
            return None;
        }
        match parse_go_uint(&text) {
            Some(n) => Some(n),
            None => {
                self.error_at(
                    node.span,
                    format!("{key}: expected a whole number, found `{text}`"),
                );
                None
            }
        }
    }

    /// A number in a range, e.g. a port.
    pub fn u64_in(&mut self, key: &'static str, min: u64, max: u64) -> Option<u64> {
        let n = self.u64(key)?;
        if (min..=max).contains(&n) {
            Some(n)
        } else {
            let span = self.span_of(key).unwrap_or_default();
            self.error_at(span, format!("{key}: {n} is out of range ({min} to {max})"));
            None
        }
    }

    pub fn duration(&mut self, key: &'static str) -> Option<Duration> {
        let node = self.raw(key)?;
        self.duration_from(key, node)
    }

    pub fn duration_from(&mut self, key: &str, node: &Node) -> Option<Duration> {
        let text = match &node.value {
            Value::String(_) => self.render_node(key, node)?,
            Value::Number(n) if n == "0" => return Some(Duration::ZERO),
            _ => {
                self.error_at(
                    node.span,
                    format!(
                        "{key}: expected a duration such as \"30s\" or \"1m30s\", found {}",
                        node.kind()
                    ),
                )
                .hint = Some(
                    "durations are strings with a unit: \"500ms\", \"10s\", \"5m\", \"1h30m\""
                        .into(),
                );
                return None;
            }
        };
        if text.is_empty() {
            return None;
        }
        match parse_go_duration(&text) {
            Ok(d) => Some(d),
            Err(why) => {
                self.error_at(
                    node.span,
                    format!("{key}: `{text}` is not a duration: {why}"),
                )
                .hint = Some(
                    "durations are written as in Go: \"500ms\", \"10s\", \"5m\", \"1h30m\"".into(),
                );
                None
            }
        }
    }

    /// A size in MiB: a bare number is MiB; suffixes K, M, G, T (with an
    /// optional `iB`/`B`) as Packer's qemu builder reads `disk_size`.
    pub fn size_mib(&mut self, key: &'static str) -> Option<u64> {
        let node = self.raw(key)?;
        let text = self.scalar_text(key, node, "a size such as \"10G\" or 10240")?;
        if text.is_empty() {
            return None;
        }
        match parse_size_mib(&text) {
            Some(n) if n > 0 => Some(n),
            _ => {
                self.error_at(node.span, format!("{key}: `{text}` is not a size"))
                    .hint = Some(
                    "write a number of MiB (10240) or a number with a unit (\"10G\", \"512M\")"
                        .into(),
                );
                None
            }
        }
    }
}

/// Packer's build-time fields that users put in prepare-time keys by mistake.
fn build_time_field(text: &str) -> Option<&'static str> {
    [
        "HTTPIP",
        "HTTPPort",
        "Name",
        "Path",
        "Vars",
        "Host",
        "Port",
        "User",
        "Password",
        "SSHPublicKey",
        "SSHPrivateKey",
        "WinRMPassword",
    ]
    .into_iter()
    .find(|f| text.contains(&format!(".{f}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_offsets_skip_escapes() {
        // decoded: a\nb{{  — the `{` is at decoded offset 3, raw offset 5.
        let literal = r#""a\nb{{x}}""#;
        assert_eq!(&literal[raw_offset(literal, 3)..][..1], "{");
        assert_eq!(raw_offset(r#""\u00e9x""#, 2), 7);
    }
}
