//! `source` and `build` blocks to the model's builders, provisioners and
//! post-processor chains. A build's sources are named as Packer names
//! them (`<build name>.<type>.<name>`, or `<type>.<name>`); provisioners
//! and post-processors of a build block apply to that block's sources
//! only, which the model says with an `only` list of full names.

use hcl::edit::Span as _;
use hcl::edit::structure::{Block, Structure};
use hcl::{Map, Value as HclValue};

use super::body::{self, hint_for};
use super::eval::{Scope, eval};
use super::{Files, Parsed, span_of};
use crate::template::diagnostic::{Diagnostics, did_you_mean};
use crate::template::json::{Member, Node, Span, Value};
use crate::template::model::{Section, Template};

struct Source<'a> {
    type_name: String,
    name: String,
    block: &'a Block,
    base: usize,
    type_span: Span,
}

/// The sources a build block uses, and every source the template defines
/// (`source.TYPE.NAME`): `only` and `except` may name one the build does
/// not use, as in a post-processor shared by several templates' builds.
struct BuildSources<'a, 'b> {
    used: &'a [Used<'b>],
    defined: &'a [String],
}

/// One source as used by a build block.
struct Used<'a> {
    source: &'a Source<'a>,
    /// `source "type.name" { … }` inside the build: overrides and `name`.
    over: Option<(&'a Block, usize)>,
    /// The iterator of the `dynamic "source"` block that made this use,
    /// in scope for its overrides.
    iterator: Option<(String, HclValue)>,
    name: String,
    full_name: String,
    ref_span: Span,
}

const BUILD_KEYS: &[&str] = &[
    "name",
    "description",
    "sources",
    "source",
    "provisioner",
    "error-cleanup-provisioner",
    "post-processor",
    "post-processors",
    "hcp_packer_registry",
];

/// A build block as `inspect` shows it: names and types only, so it can be
/// listed even when its values cannot be evaluated.
#[derive(Debug, Clone, Default)]
pub struct BuildOutline {
    pub name: Option<String>,
    pub sources: Vec<String>,
    pub provisioners: Vec<String>,
    pub post_processors: Vec<Vec<String>>,
}

pub(crate) fn read(
    parsed: &[Parsed],
    scope: &Scope,
    files: &Files,
    t: &mut Template,
    diags: &mut Diagnostics,
) -> Vec<BuildOutline> {
    let mut outlines = Vec::new();
    let mut sources: Vec<Source<'_>> = Vec::new();
    for p in parsed {
        for s in p.body.iter() {
            let Structure::Block(b) = s else { continue };
            if b.ident.as_str() != "source" {
                continue;
            }
            let span = span_of(p.base, b.ident.span());
            let [ty, name] = b.labels.as_slice() else {
                diags
                    .error(
                        "source",
                        "a source block has two labels: its type and its name",
                        files.location(span),
                    )
                    .hint = Some("write source \"qemu\" \"name\" { … }".into());
                continue;
            };
            if sources
                .iter()
                .any(|x| x.type_name == ty.as_str() && x.name == name.as_str())
            {
                diags.error(
                    format!("source.{}.{}", ty.as_str(), name.as_str()),
                    "is defined twice",
                    files.location(span),
                );
                continue;
            }
            sources.push(Source {
                type_name: ty.as_str().to_owned(),
                name: name.as_str().to_owned(),
                block: b,
                base: p.base,
                type_span: span_of(p.base, ty.span()),
            });
        }
    }
    let refs: Vec<String> = sources
        .iter()
        .map(|s| format!("source.{}.{}", s.type_name, s.name))
        .collect();

    let mut build_count = 0;
    for p in parsed {
        for s in p.body.iter() {
            let Structure::Block(b) = s else { continue };
            if b.ident.as_str() != "build" {
                continue;
            }
            build_count += 1;
            outlines.push(outline(b));
            read_build(b, p.base, &sources, &refs, scope, files, t, diags);
        }
    }
    if build_count == 0 && !parsed.is_empty() {
        diags
            .error("", "the template has no build block", None)
            .hint = Some("add build { sources = [\"source.TYPE.NAME\"] }".into());
    }
    outlines
}

fn label_of(b: &Block) -> String {
    b.labels
        .first()
        .map_or_else(String::new, |l| l.as_str().to_owned())
}

fn outline(b: &Block) -> BuildOutline {
    let literal = |key: &str| -> Option<String> {
        match &b.body.get_attribute(key)?.value {
            hcl::edit::expr::Expression::String(s) => Some(s.as_str().to_owned()),
            other => Some(other.to_string().trim().to_owned()),
        }
    };
    let mut o = BuildOutline {
        name: literal("name"),
        ..BuildOutline::default()
    };
    if let Some(a) = b.body.get_attribute("sources")
        && let hcl::edit::expr::Expression::Array(items) = &a.value
    {
        for item in items.iter() {
            if let hcl::edit::expr::Expression::String(s) = item {
                o.sources
                    .push(s.as_str().trim_start_matches("source.").to_owned());
            }
        }
    }
    for s in b.body.iter() {
        let Structure::Block(inner) = s else { continue };
        match inner.ident.as_str() {
            "source" => {
                // A `name` override is what the build is called by.
                let label = label_of(inner);
                let renamed = match inner.body.get_attribute("name").map(|a| &a.value) {
                    Some(hcl::edit::expr::Expression::String(n)) => label
                        .split_once('.')
                        .map(|(ty, _)| format!("{ty}.{}", n.as_str())),
                    _ => None,
                };
                o.sources.push(renamed.unwrap_or(label));
            }
            "provisioner" => o.provisioners.push(label_of(inner)),
            "post-processor" => o.post_processors.push(vec![label_of(inner)]),
            "post-processors" => o.post_processors.push(
                inner
                    .body
                    .blocks()
                    .filter(|p| p.ident.as_str() == "post-processor")
                    .map(label_of)
                    .collect(),
            ),
            _ => {}
        }
    }
    o
}

fn string_attr(
    b: &Block,
    key: &str,
    base: usize,
    scope: &Scope,
    files: &Files,
    path: &str,
    diags: &mut Diagnostics,
) -> Option<(String, Span)> {
    let a = b.body.get_attribute(key)?;
    let span = span_of(base, a.value.span());
    match eval(&a.value, scope) {
        // Plain `validate`: a value from a data source is not known yet.
        Ok(v) if super::unknown::is_unknown(&v) => Some(("<unknown>".to_owned(), span)),
        Ok(v) => match super::functions::as_string(&v) {
            Some(s) => Some((s, span)),
            None => {
                diags.error(
                    path,
                    format!("{key}: expected a string"),
                    files.location(span),
                );
                None
            }
        },
        Err(e) => {
            diags.error(path, format!("{key}: {e}"), files.location(span));
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn read_build<'a>(
    b: &'a Block,
    base: usize,
    sources: &[Source<'_>],
    refs: &[String],
    scope: &Scope,
    files: &Files,
    t: &mut Template,
    diags: &mut Diagnostics,
) {
    let build_name = string_attr(b, "name", base, scope, files, "build", diags).map(|(s, _)| s);
    let path = match &build_name {
        Some(n) => format!("build \"{n}\""),
        None => "build".to_owned(),
    };
    if let Some((d, _)) = string_attr(b, "description", base, scope, files, &path, diags) {
        t.description.get_or_insert(d);
    }
    // Set when a reference named no source: that error is the one to show.
    let unresolved = std::cell::Cell::new(false);
    let find = |r: &str, span: Span, diags: &mut Diagnostics| -> Option<&Source<'_>> {
        let key = source_key(r);
        let found = refs.iter().position(|x| *x == key).map(|i| &sources[i]);
        if found.is_none() {
            unresolved.set(true);
            let d = diags.error(
                &path,
                format!("`{r}` is not a defined source"),
                files.location(span),
            );
            d.hint = did_you_mean(&key, refs.iter().map(String::as_str))
                .map(|s| format!("did you mean `{s}`?"))
                .or_else(|| {
                    Some(if refs.is_empty() {
                        "define it: source \"TYPE\" \"NAME\" { … }".to_owned()
                    } else {
                        format!("the sources are: {}", refs.join(", "))
                    })
                });
        }
        found
    };
    let full = |ty: &str, name: &str| match &build_name {
        Some(b) => format!("{b}.{ty}.{name}"),
        None => format!("{ty}.{name}"),
    };

    let mut used: Vec<Used<'_>> = Vec::new();
    if let Some(a) = b.body.get_attribute("sources") {
        let span = span_of(base, a.value.span());
        match eval(&a.value, scope) {
            Ok(HclValue::Array(items)) => {
                let item_spans: Vec<Span> = match &a.value {
                    hcl::edit::expr::Expression::Array(arr) => {
                        arr.iter().map(|e| span_of(base, e.span())).collect()
                    }
                    _ => Vec::new(),
                };
                for (i, item) in items.iter().enumerate() {
                    let item_span = item_spans.get(i).copied().unwrap_or(span);
                    let Some(r) = item.as_str() else {
                        diags.error(
                            &path,
                            "sources: expected strings such as \"source.qemu.name\"",
                            files.location(item_span),
                        );
                        continue;
                    };
                    if let Some(src) = find(r, item_span, diags) {
                        used.push(Used {
                            source: src,
                            over: None,
                            iterator: None,
                            name: src.name.clone(),
                            full_name: full(&src.type_name, &src.name),
                            ref_span: item_span,
                        });
                    }
                }
            }
            Ok(_) => {
                diags.error(
                    &path,
                    "sources: expected a list of source names",
                    files.location(span),
                );
            }
            Err(e) => {
                diags.error(&path, format!("sources: {e}"), files.location(span));
            }
        }
    }
    for s in b.body.iter() {
        match s {
            Structure::Block(inner) if inner.ident.as_str() == "source" => {
                let span = span_of(base, inner.ident.span());
                let [label] = inner.labels.as_slice() else {
                    diags.error(
                        &path,
                        "a source block inside a build has one label: \"TYPE.NAME\"",
                        files.location(span),
                    );
                    continue;
                };
                let label_span = span_of(base, label.span());
                let Some(src) = find(label.as_str(), label_span, diags) else {
                    continue;
                };
                let name = string_attr(inner, "name", base, scope, files, &path, diags)
                    .map_or_else(|| src.name.clone(), |(n, _)| n);
                used.push(Used {
                    source: src,
                    over: Some((inner, base)),
                    iterator: None,
                    full_name: full(&src.type_name, &name),
                    name,
                    ref_span: label_span,
                });
            }
            // Packer expands dynamic blocks everywhere in a file: a build's
            // sources may come from a map (`labels` names the source).
            Structure::Block(inner)
                if inner.ident.as_str() == "dynamic"
                    && inner.labels.first().is_some_and(|l| l.as_str() == "source") =>
            {
                let Some(dynamic) = body::Dynamic::read(inner, base, scope, &path, files, diags)
                else {
                    unresolved.set(true);
                    continue;
                };
                let span = span_of(base, inner.ident.span());
                let Some(labels) = inner.body.get_attribute("labels") else {
                    diags
                        .error(
                            &dynamic.path,
                            "labels is required: the source this uses",
                            files.location(span),
                        )
                        .hint = Some("labels = [\"source.TYPE.NAME\"]".into());
                    unresolved.set(true);
                    continue;
                };
                let labels_span = span_of(base, labels.value.span());
                for iteration in &dynamic.scopes {
                    let label = match eval(&labels.value, iteration) {
                        Ok(HclValue::Array(items)) if items.len() == 1 => {
                            items[0].as_str().map(str::to_owned)
                        }
                        _ => None,
                    };
                    let Some(label) = label else {
                        diags.error(
                            &dynamic.path,
                            "labels: expected one string, the source: [\"source.TYPE.NAME\"]",
                            files.location(labels_span),
                        );
                        unresolved.set(true);
                        break;
                    };
                    let Some(src) = find(&label, labels_span, diags) else {
                        break;
                    };
                    let name = string_attr(
                        dynamic.content,
                        "name",
                        base,
                        iteration,
                        files,
                        &path,
                        diags,
                    )
                    .map_or_else(|| src.name.clone(), |(n, _)| n);
                    let iterator = iteration
                        .vars
                        .get(dynamic.iterator.as_str())
                        .cloned()
                        .map(|v| (dynamic.iterator.clone(), v));
                    used.push(Used {
                        source: src,
                        over: Some((dynamic.content, base)),
                        iterator,
                        full_name: full(&src.type_name, &name),
                        name,
                        ref_span: labels_span,
                    });
                }
            }
            Structure::Block(inner) if inner.ident.as_str() == "hcp_packer_registry" => {
                diags
                    .warning(
                        &path,
                        "hcp_packer_registry is ignored: kiln publishes to no HCP Packer registry",
                        files.location(span_of(base, inner.ident.span())),
                    )
                    .hint = Some(
                    "packer.iterationID and packer.versionFingerprint are empty strings in kiln"
                        .into(),
                );
            }
            // Expanded with the provisioners and post-processors below.
            Structure::Block(inner) if inner.ident.as_str() == "dynamic" => {}
            Structure::Block(inner) if !BUILD_KEYS.contains(&inner.ident.as_str()) => {
                let d = diags.error(
                    &path,
                    format!("unexpected block `{}`", inner.ident.as_str()),
                    files.location(span_of(base, inner.ident.span())),
                );
                d.hint = did_you_mean(inner.ident.as_str(), BUILD_KEYS.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"));
            }
            Structure::Attribute(a) if !BUILD_KEYS.contains(&a.key.as_str()) => {
                let d = diags.error(
                    &path,
                    format!("unknown attribute `{}`", a.key.as_str()),
                    files.location(span_of(base, a.key.span())),
                );
                d.hint = did_you_mean(a.key.as_str(), BUILD_KEYS.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"));
            }
            _ => {}
        }
    }
    // A reference that names no source has its own error already.
    if used.is_empty() && !unresolved.get() {
        diags
            .error(
                &path,
                "the build uses no source",
                files.location(span_of(base, b.ident.span())),
            )
            .hint = Some("add sources = [\"source.TYPE.NAME\"]".into());
    }

    for u in &used {
        if t.builders.iter().any(|x| x.name == u.full_name) {
            diags
                .error(
                    &path,
                    format!("two builds are named `{}`", u.full_name),
                    files.location(u.ref_span),
                )
                .hint =
                Some("give one a different name: source \"TYPE.NAME\" { name = \"other\" }".into());
            continue;
        }
        let src_scope = source_scope(scope, &u.source.type_name, &u.name);
        let src_path = format!("source.{}.{}", u.source.type_name, u.source.name);
        let evaluated = body::evaluate(
            &u.source.block.body,
            u.source.base,
            &src_scope,
            &src_path,
            &[],
            files,
            diags,
        );
        let mut members = evaluated.members;
        if let Some((over, obase)) = u.over {
            // A dynamic block's iterator wins over `source`, as in HCL.
            let mut over_scope = src_scope.clone();
            if let Some((name, value)) = &u.iterator {
                over_scope.set(name, value.clone());
            }
            let o = body::evaluate(
                &over.body,
                obase,
                &over_scope,
                &format!("{path}: {src_path}"),
                &["name"],
                files,
                diags,
            );
            for m in o.members {
                members.retain(|x| x.key != m.key);
                members.push(m);
            }
        }
        t.builders.push(Section {
            path: src_path,
            type_name: u.source.type_name.clone(),
            type_span: u.source.type_span,
            name: u.full_name.clone(),
            // Packer's builderVariables: the source's own name, not the
            // build's `name` nor a `name` given where the build uses it.
            packer_build_name: Some(u.source.name.clone()),
            body: Node {
                value: Value::Object(members),
                span: span_of(u.source.base, u.source.block.span()),
            },
        });
    }

    let build_sources = BuildSources {
        used: &used,
        defined: refs,
    };
    let mut chains: Vec<Vec<Section>> = Vec::new();
    let mut index = 0;
    // Written blocks, and the ones a `dynamic` block makes, in order.
    let blocks_of =
        |inner: &'a Block, kind: &str, diags: &mut Diagnostics| -> Vec<PluginBlock<'a>> {
            if inner.ident.as_str() == "dynamic" {
                PluginBlock::dynamic(inner, base, &path, scope, files, diags)
            } else {
                PluginBlock::written(inner, base, kind, &path, scope, files, diags)
                    .into_iter()
                    .collect()
            }
        };
    let dynamic_of = |inner: &Block| {
        inner.ident.as_str() == "dynamic"
            && inner.labels.first().map(|l| l.as_str()) != Some("source")
    };
    for s in b.body.iter() {
        let Structure::Block(inner) = s else { continue };
        let kind = if dynamic_of(inner) {
            inner.labels.first().map_or("", |l| l.as_str())
        } else {
            inner.ident.as_str()
        };
        match kind {
            "provisioner" => {
                for pb in blocks_of(inner, kind, diags) {
                    t.provisioners.extend(plugin_sections(
                        &pb,
                        base,
                        "provisioner",
                        index,
                        &path,
                        &build_sources,
                        files,
                        diags,
                    ));
                    index += 1;
                }
            }
            "error-cleanup-provisioner" => {
                for pb in blocks_of(inner, kind, diags) {
                    let mut secs = plugin_sections(
                        &pb,
                        base,
                        "error-cleanup-provisioner",
                        0,
                        &path,
                        &build_sources,
                        files,
                        diags,
                    );
                    if t.error_cleanup_provisioner.is_some() || secs.len() > 1 {
                        diags.error(
                            &path,
                            "kiln takes one error-cleanup-provisioner per template",
                            files.location(span_of(base, inner.ident.span())),
                        );
                    } else if let Some(sec) = secs.pop() {
                        t.error_cleanup_provisioner = Some(sec);
                    }
                }
            }
            "post-processor" => {
                for pb in blocks_of(inner, kind, diags) {
                    let secs = plugin_sections(
                        &pb,
                        base,
                        "post-processor",
                        chains.len(),
                        &path,
                        &build_sources,
                        files,
                        diags,
                    );
                    if !secs.is_empty() {
                        chains.push(secs);
                    }
                }
            }
            "post-processors" if !dynamic_of(inner) => {
                let mut chain = Vec::new();
                let mut i = 0;
                for pp in inner.body.iter() {
                    match pp {
                        Structure::Block(ppb)
                            if ppb.ident.as_str() == "post-processor"
                                || (dynamic_of(ppb)
                                    && ppb.labels.first().map(|l| l.as_str())
                                        == Some("post-processor")) =>
                        {
                            for pb in blocks_of(ppb, "post-processor", diags) {
                                chain.extend(plugin_sections(
                                    &pb,
                                    base,
                                    "post-processors",
                                    i,
                                    &path,
                                    &build_sources,
                                    files,
                                    diags,
                                ));
                                i += 1;
                            }
                        }
                        other => {
                            diags.error(
                                &path,
                                "a post-processors block holds post-processor blocks only",
                                files.location(span_of(base, other.span())),
                            );
                        }
                    }
                }
                if !chain.is_empty() {
                    chains.push(chain);
                }
            }
            _ if dynamic_of(inner) => {
                diags
                    .error(
                        &path,
                        format!("dynamic \"{kind}\": a build makes source, provisioner, error-cleanup-provisioner and post-processor blocks"),
                        files.location(span_of(base, inner.ident.span())),
                    )
                    .hint = Some("check the label of the dynamic block".into());
            }
            _ => {}
        }
    }
    t.post_processors.extend(chains);
}

/// The scope with `source` (inside a build) and `build` (placeholders the
/// Go-template engine fills in once the build runs).
fn source_scope(scope: &Scope, ty: &str, name: &str) -> Scope {
    let mut s = scope.clone();
    let mut src = Map::new();
    src.insert("type".to_owned(), HclValue::String(ty.to_owned()));
    src.insert("name".to_owned(), HclValue::String(name.to_owned()));
    s.set("source", HclValue::Object(src));
    let mut build = Map::new();
    for k in crate::config::build_values::BUILD_VALUES {
        build.insert(
            (*k).to_owned(),
            HclValue::String(format!("{{{{ build `{k}` }}}}")),
        );
    }
    s.set("build", HclValue::Object(build));
    s
}

/// A provisioner or post-processor block as written, or one a `dynamic`
/// block makes (its type from `labels`, its body the `content`, evaluated
/// with the iterator in scope).
struct PluginBlock<'a> {
    body: &'a hcl::edit::structure::Body,
    type_name: String,
    type_span: Span,
    span: Span,
    scope: Scope,
}

impl<'a> PluginBlock<'a> {
    fn written(
        b: &'a Block,
        base: usize,
        kind: &str,
        build_path: &str,
        scope: &Scope,
        files: &Files,
        diags: &mut Diagnostics,
    ) -> Option<Self> {
        let [ty] = b.labels.as_slice() else {
            diags
                .error(
                    build_path,
                    format!("a {kind} block has one label, its type"),
                    files.location(span_of(base, b.ident.span())),
                )
                .hint = Some(format!("write {kind} \"shell\" {{ … }}"));
            return None;
        };
        Some(Self {
            body: &b.body,
            type_name: ty.as_str().to_owned(),
            type_span: span_of(base, ty.span()),
            span: span_of(base, b.span()),
            scope: scope.clone(),
        })
    }

    /// The blocks `dynamic "provisioner"` (or `"post-processor"`) makes, one
    /// per element of its `for_each`.
    fn dynamic(
        b: &'a Block,
        base: usize,
        build_path: &str,
        scope: &Scope,
        files: &Files,
        diags: &mut Diagnostics,
    ) -> Vec<Self> {
        let Some(dynamic) = body::Dynamic::read(b, base, scope, build_path, files, diags) else {
            return Vec::new();
        };
        let Some(labels) = b.body.get_attribute("labels") else {
            diags
                .error(
                    &dynamic.path,
                    "labels is required: the type of the blocks it makes",
                    files.location(span_of(base, b.ident.span())),
                )
                .hint = Some("labels = [\"shell\"]".into());
            return Vec::new();
        };
        let labels_span = span_of(base, labels.value.span());
        let mut blocks = Vec::new();
        for iteration in dynamic.scopes {
            let type_name = match eval(&labels.value, &iteration) {
                Ok(HclValue::Array(items)) if items.len() == 1 => {
                    items[0].as_str().map(str::to_owned)
                }
                _ => None,
            };
            let Some(type_name) = type_name else {
                diags.error(
                    &dynamic.path,
                    "labels: expected one string, the type: [\"shell\"]",
                    files.location(labels_span),
                );
                return Vec::new();
            };
            blocks.push(Self {
                body: &dynamic.content.body,
                type_name,
                type_span: labels_span,
                span: span_of(base, dynamic.content.span()),
                scope: iteration,
            });
        }
        blocks
    }
}

/// A provisioner or post-processor block, evaluated for each source it
/// applies to; one section when every source gives the same body.
#[allow(clippy::too_many_arguments)]
fn plugin_sections(
    b: &PluginBlock<'_>,
    base: usize,
    kind: &str,
    index: usize,
    build_path: &str,
    build_sources: &BuildSources<'_, '_>,
    files: &Files,
    diags: &mut Diagnostics,
) -> Vec<Section> {
    let used = build_sources.used;
    let scope = &b.scope;
    let type_name = b.type_name.clone();
    let type_span = b.type_span;
    // `name` names the block for -except and messages; it is not a setting.
    let block_name = match b.body.get_attribute("name").map(|a| &a.value) {
        Some(hcl::edit::expr::Expression::String(n)) => n.as_str().to_owned(),
        _ => type_name.clone(),
    };
    let path = format!("{build_path}: {kind}[{index}] ({type_name})");
    let filter = |key: &str, diags: &mut Diagnostics| -> Option<Vec<String>> {
        let a = b.body.get_attribute(key)?;
        let aspan = span_of(base, a.value.span());
        match eval(&a.value, scope) {
            // Null is unset, as in Packer: `except = cond ? list : null`.
            Ok(HclValue::Null) => None,
            Ok(HclValue::Array(items)) => {
                let names: Vec<String> = items
                    .iter()
                    .filter(|i| !super::unknown::is_unknown(i))
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect();
                for n in &names {
                    // A build with no source has its error already.
                    let known = used.is_empty()
                        || used.iter().any(|u| matches_source(n, u))
                        || build_sources.defined.contains(&source_key(n));
                    if !known {
                        let all: Vec<String> = used
                            .iter()
                            .map(|u| format!("{}.{}", u.source.type_name, u.name))
                            .collect();
                        diags
                            .error(
                                &path,
                                format!("{key}: `{n}` is not a source of this build"),
                                files.location(aspan),
                            )
                            .hint = Some(format!(
                            "{key} takes TYPE.NAME of this build's sources: {}",
                            all.join(", ")
                        ));
                    }
                }
                Some(names)
            }
            Ok(_) => {
                diags.error(
                    &path,
                    format!("{key}: expected a list of source names (TYPE.NAME)"),
                    files.location(aspan),
                );
                None
            }
            Err(e) => {
                diags.error(&path, format!("{key}: {e}"), files.location(aspan));
                None
            }
        }
    };
    let only = filter("only", diags);
    let except = filter("except", diags);
    let applies: Vec<&Used<'_>> = used
        .iter()
        .filter(|u| match (&only, &except) {
            (Some(o), _) => o.iter().any(|n| matches_source(n, u)),
            (None, Some(e)) => !e.iter().any(|n| matches_source(n, u)),
            (None, None) => true,
        })
        .collect();

    let mut bodies: Vec<(Vec<Member>, Vec<String>)> = Vec::new();
    for u in &applies {
        let s = source_scope(scope, &u.source.type_name, &u.name);
        let ev = body::evaluate(
            b.body,
            base,
            &s,
            &path,
            &["only", "except", "name", "override"],
            files,
            diags,
        );
        if !ev.ok {
            // The same error for every source would only repeat itself.
            return Vec::new();
        }
        let mut members = ev.members;
        if let Some(a) = b.body.get_attribute("override") {
            let aspan = span_of(base, a.value.span());
            match eval(&a.value, &s) {
                Ok(HclValue::Object(o)) => {
                    for (key, settings) in &o {
                        if !used.iter().any(|x| matches_source(key, x)) {
                            diags.error(
                                &path,
                                format!("override: `{key}` is not a source of this build"),
                                files.location(aspan),
                            );
                        }
                        if matches_source(key, u) {
                            let node = body::to_node(settings, None, base, aspan);
                            if let Value::Object(ms) = node.value {
                                for m in ms {
                                    members.retain(|x| x.key != m.key);
                                    members.push(m);
                                }
                            }
                        }
                    }
                }
                Ok(_) => {
                    diags.error(
                        &path,
                        "override: expected an object of TYPE.NAME = { settings }",
                        files.location(aspan),
                    );
                }
                Err(e) => {
                    diags
                        .error(&path, format!("override: {e}"), files.location(aspan))
                        .hint = hint_for(&e);
                }
            }
        }
        match bodies.iter_mut().find(|(m, _)| *m == members) {
            Some((_, names)) => names.push(u.full_name.clone()),
            None => bodies.push((members, vec![u.full_name.clone()])),
        }
    }
    bodies
        .into_iter()
        .map(|(mut members, names)| {
            members.push(Member {
                key: "only".to_owned(),
                key_span: type_span,
                value: Node {
                    value: Value::Array(
                        names
                            .into_iter()
                            .map(|n| Node {
                                value: Value::String(n),
                                span: type_span,
                            })
                            .collect(),
                    ),
                    span: type_span,
                },
            });
            Section {
                path: path.clone(),
                type_name: type_name.clone(),
                type_span,
                name: block_name.clone(),
                packer_build_name: None,
                body: Node {
                    value: Value::Object(members),
                    span: b.span,
                },
            }
        })
        .collect()
}

/// `only`/`except` name a source as TYPE.NAME (Packer), or by its full
/// build name.
/// A build's reference to a source as `source.TYPE.NAME`. Packer reads
/// `TYPE.NAME`, and drops the first part of a longer reference whatever it
/// is: `sources.TYPE.NAME`, from early HCL2 examples, is common.
fn source_key(reference: &str) -> String {
    let parts: Vec<&str> = reference.split('.').collect();
    match parts.as_slice() {
        [ty, name] | [_, ty, name, ..] => format!("source.{ty}.{name}"),
        _ => format!("source.{reference}"),
    }
}

fn matches_source(n: &str, u: &Used<'_>) -> bool {
    let short = format!("{}.{}", u.source.type_name, u.name);
    n == short || n == u.full_name || n == format!("source.{short}")
}
