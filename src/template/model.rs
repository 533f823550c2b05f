//! The template's structure: variables, builders, provisioners and
//! post-processor chains, read from the spanned JSON without interpreting
//! any plugin's configuration (that is `config`'s job).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::compat::Compat;
use super::diagnostic::{Diagnostics, Location, did_you_mean, shown_name};
use super::json::{self, Node, Span, Value};
use super::source::SourceFile;

/// Keys allowed at the top of a template. Keys starting with `_` are
/// comments, as in Packer.
pub const ROOT_KEYS: &[&str] = &[
    "description",
    "min_packer_version",
    "variables",
    "sensitive-variables",
    "builders",
    "provisioners",
    "post-processors",
    "error-cleanup-provisioner",
];

#[derive(Debug)]
pub struct Template {
    pub file: Arc<SourceFile>,
    /// More files whose spans are offset by `base` (an HCL2 directory is
    /// several files): a span at or past a base belongs to that file.
    /// Empty for a JSON template.
    pub more_files: Vec<FileAt>,
    /// The directory the template is in (`{{template_dir}}`), absolute.
    pub dir: PathBuf,
    pub description: Option<String>,
    pub min_packer_version: Option<(String, Span)>,
    pub variables: Vec<VariableDecl>,
    pub sensitive_variables: Vec<(String, Span)>,
    pub builders: Vec<Section>,
    pub provisioners: Vec<Section>,
    pub error_cleanup_provisioner: Option<Section>,
    /// Each inner list is one chain: every step takes the previous one's artifact.
    pub post_processors: Vec<Vec<Section>>,
}

#[derive(Debug, Clone)]
pub struct VariableDecl {
    pub name: String,
    /// `None` when the template declares the variable `null`: it must be set.
    pub default: Option<String>,
    pub key_span: Span,
    pub value_span: Span,
}

impl VariableDecl {
    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }
}

/// A file of a multi-file template and the offset its spans start at.
#[derive(Debug, Clone)]
pub struct FileAt {
    pub base: usize,
    pub file: Arc<SourceFile>,
}

/// One builder, provisioner or post-processor object.
#[derive(Debug, Clone)]
pub struct Section {
    /// Where it is, for messages: `builders[0] (qemu)`.
    pub path: String,
    pub type_name: String,
    pub type_span: Span,
    /// Builders: `name`, defaulting to the type. Others: `name` if given.
    pub name: String,
    /// An HCL2 builder: its source block's own name (`tiny` for
    /// `source "qemu" "tiny"`), which Packer gives the builder as its build
    /// name (the default `output_directory` and `vm_name`,
    /// `{{build_name}}`), while `name` is the full `qemu.tiny` that
    /// `-only`, `-except` and the output show. None: `name` is both.
    pub packer_build_name: Option<String>,
    /// The whole object (`type` and `name` included); for a post-processor
    /// written as a bare string, an empty object spanning the string.
    pub body: Node,
}

impl Template {
    pub fn location(&self, span: Span) -> Option<Location> {
        let (base, file) = self.file_of(span);
        Some(Location {
            file: file.clone(),
            span: Span::new(span.start - base, span.end.saturating_sub(base)),
        })
    }

    /// The text a span covers, in whichever file it is.
    pub fn text_at(&self, span: Span) -> &str {
        let (base, file) = self.file_of(span);
        file.text()
            .get(span.start - base..span.end.saturating_sub(base))
            .unwrap_or("")
    }

    fn file_of(&self, span: Span) -> (usize, &Arc<SourceFile>) {
        self.more_files
            .iter()
            .rev()
            .find(|f| span.start >= f.base)
            .map_or((0, &self.file), |f| (f.base, &f.file))
    }

    /// The builds' names, in template order.
    pub fn build_names(&self) -> impl Iterator<Item = &str> {
        self.builders.iter().map(|b| b.name.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read template {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: super::input::InputError,
    },
    #[error("template {path} is not valid UTF-8 text")]
    NotUtf8 { path: PathBuf },
    #[error("{}", .0.render())]
    Invalid(Diagnostics),
}

/// Reads and structurally checks a template file. Structural errors and
/// warnings are appended to `diags`; only a file that cannot be read or is
/// not a JSON object makes the result `Err`.
pub fn load(path: &Path, diags: &mut Diagnostics) -> Result<Template, LoadError> {
    let bytes = super::input::read_input(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8 {
        path: path.to_owned(),
    })?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    parse(SourceFile::new(path, text), dir, diags)
}

/// Structurally checks a template already in memory.
pub fn parse(
    file: SourceFile,
    dir: PathBuf,
    diags: &mut Diagnostics,
) -> Result<Template, LoadError> {
    let file = Arc::new(file);
    let loc = |span: Span| {
        Some(Location {
            file: file.clone(),
            span,
        })
    };
    let root = match json::parse(file.text()) {
        Ok(root) => root,
        Err(e) => {
            let mut d = Diagnostics::new();
            d.error(
                "",
                format!("invalid JSON: {}", e.message),
                loc(Span::new(e.offset, e.offset + 1)),
            );
            return Err(LoadError::Invalid(d));
        }
    };
    let mut errors = Diagnostics::new();
    let Some(members) = root.as_object() else {
        errors.error(
            "",
            format!("a template is a JSON object, found {}", root.kind()),
            loc(root.span),
        );
        return Err(LoadError::Invalid(errors));
    };

    let mut t = Template {
        file: file.clone(),
        more_files: Vec::new(),
        dir,
        description: None,
        min_packer_version: None,
        variables: Vec::new(),
        sensitive_variables: Vec::new(),
        builders: Vec::new(),
        provisioners: Vec::new(),
        error_cleanup_provisioner: None,
        post_processors: Vec::new(),
    };

    for (i, m) in members.iter().enumerate() {
        if m.key.starts_with('_') {
            // Packer reads root comments into a map of strings.
            if m.value.as_str().is_none() {
                diags.compat(
                    Compat::RootCommentNotString,
                    "",
                    format!(
                        "the comment `{}` is {}; Packer 1.6.6 refuses a comment that is not a string",
                        m.key,
                        m.value.kind()
                    ),
                    loc(m.value.span),
                );
            }
            continue;
        }
        if members[i + 1..].iter().any(|later| later.key == m.key) {
            diags.compat(
                Compat::DuplicateKey,
                "",
                format!(
                    "`{}` is given twice; the last one is used, as in Packer",
                    m.key
                ),
                loc(m.key_span),
            );
            continue;
        }
        let v = &m.value;
        match m.key.as_str() {
            "description" => t.description = expect_string(v, "description", &mut errors, &loc),
            "min_packer_version" => {
                t.min_packer_version =
                    expect_string(v, "min_packer_version", &mut errors, &loc).map(|s| (s, v.span));
            }
            "variables" => t.variables = read_variables(v, &mut errors, diags, &loc),
            "sensitive-variables" => match v.as_array() {
                Some(items) => {
                    for item in items {
                        match item.as_str() {
                            Some(s) => t.sensitive_variables.push((s.to_owned(), item.span)),
                            None => {
                                errors.error(
                                    "sensitive-variables",
                                    format!(
                                        "expected a variable name (string), found {}",
                                        item.kind()
                                    ),
                                    loc(item.span),
                                );
                            }
                        }
                    }
                }
                None => {
                    errors.error(
                        "sensitive-variables",
                        format!("expected an array of variable names, found {}", v.kind()),
                        loc(v.span),
                    );
                }
            },
            "builders" => t.builders = read_sections(v, "builders", true, &mut errors, &loc),
            "provisioners" => {
                t.provisioners = read_sections(v, "provisioners", false, &mut errors, &loc);
            }
            "error-cleanup-provisioner" => {
                t.error_cleanup_provisioner = read_section(
                    v,
                    "error-cleanup-provisioner".to_owned(),
                    false,
                    &mut errors,
                    &loc,
                );
            }
            "post-processors" => t.post_processors = read_post_processors(v, &mut errors, &loc),
            // Packer 1.6.6 still reads it, for `packer push` to Atlas,
            // a service that no longer exists; builds never used it.
            "push" => {
                if let Some(d) = diags.compat(
                    Compat::PushIgnored,
                    "push",
                    "ignored: it configured `packer push` to Atlas (Terraform Enterprise), which kiln does not do",
                    loc(m.key_span),
                ) {
                    d.hint = Some("remove the `push` section; builds never used it".into());
                }
            }
            other => {
                let d = errors.error(
                    "",
                    format!("unknown top-level key `{}`", shown_name(other)),
                    loc(m.key_span),
                );
                d.hint = Some(match did_you_mean(other, ROOT_KEYS.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "a template's keys are {}; prefix a key with `_` to make it a comment",
                        ROOT_KEYS.join(", ")
                    ),
                });
            }
        }
    }

    if t.builders.is_empty() && root.get("builders").is_none() {
        errors
            .error(
                "",
                "the template has no `builders`: at least one is required",
                loc(root.span),
            )
            .hint = Some("add \"builders\": [ { \"type\": \"qemu\", ... } ]".into());
    } else if t.builders.is_empty() && !errors.has_errors() {
        errors.error(
            "builders",
            "the list is empty: at least one builder is required",
            root.get("builders").and_then(|b| loc(b.span)),
        );
    }

    // Build names must be unique: -only/-except and overrides refer to them.
    for (i, b) in t.builders.iter().enumerate() {
        if let Some(first) = t.builders[..i].iter().find(|o| o.name == b.name) {
            let name_span = b.body.get("name").map_or(b.type_span, |n| n.span);
            errors
                .error(
                    b.path.clone(),
                    format!(
                        "the build name `{}` is already used by {}",
                        b.name, first.path
                    ),
                    loc(name_span),
                )
                .hint = Some("give each builder a distinct \"name\"".into());
        }
    }

    for (name, span) in &t.sensitive_variables {
        if !t.variables.iter().any(|v| &v.name == name) {
            let d = errors.error(
                "sensitive-variables",
                format!("`{name}` is not declared in `variables`"),
                loc(*span),
            );
            if let Some(s) = did_you_mean(name, t.variables.iter().map(|v| v.name.as_str())) {
                d.hint = Some(format!("did you mean `{s}`?"));
            }
        }
    }

    // Structural errors are reported with everything else found later: the
    // sections that were read are still checked.
    diags.extend(errors);
    Ok(t)
}

type Loc<'a> = dyn Fn(Span) -> Option<Location> + 'a;

fn expect_string(v: &Node, key: &str, errors: &mut Diagnostics, loc: &Loc<'_>) -> Option<String> {
    match v.as_str() {
        Some(s) => Some(s.to_owned()),
        None => {
            errors.error(
                key,
                format!("expected a string, found {}", v.kind()),
                loc(v.span),
            );
            None
        }
    }
}

fn read_variables(
    v: &Node,
    errors: &mut Diagnostics,
    warnings: &mut Diagnostics,
    loc: &Loc<'_>,
) -> Vec<VariableDecl> {
    let Some(members) = v.as_object() else {
        errors.error(
            "variables",
            format!("expected an object of name: default, found {}", v.kind()),
            loc(v.span),
        );
        return Vec::new();
    };
    let mut out: Vec<VariableDecl> = Vec::new();
    for m in members {
        // Packer decodes defaults weakly: numbers and booleans become strings.
        let default = match &m.value.value {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Array(_) | Value::Object(_) => {
                errors
                    .error(
                        format!("variables.{}", m.key),
                        format!(
                            "a variable's default must be a string or null, found {}",
                            m.value.kind()
                        ),
                        loc(m.value.span),
                    )
                    .hint = Some(
                    "JSON templates only have string variables; HCL2 templates have typed ones"
                        .into(),
                );
                continue;
            }
        };
        if let Some(prev) = out.iter_mut().find(|d| d.name == m.key) {
            warnings.compat(
                Compat::DuplicateKey,
                format!("variables.{}", m.key),
                "declared twice; the last declaration is used, as in Packer",
                loc(m.key_span),
            );
            prev.default = default;
            prev.key_span = m.key_span;
            prev.value_span = m.value.span;
            continue;
        }
        out.push(VariableDecl {
            name: m.key.clone(),
            default,
            key_span: m.key_span,
            value_span: m.value.span,
        });
    }
    out
}

fn read_sections(
    v: &Node,
    key: &str,
    is_builder: bool,
    errors: &mut Diagnostics,
    loc: &Loc<'_>,
) -> Vec<Section> {
    let Some(items) = v.as_array() else {
        errors.error(
            key,
            format!("expected an array of objects, found {}", v.kind()),
            loc(v.span),
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| read_section(item, format!("{key}[{i}]"), is_builder, errors, loc))
        .collect()
}

fn read_section(
    item: &Node,
    path: String,
    is_builder: bool,
    errors: &mut Diagnostics,
    loc: &Loc<'_>,
) -> Option<Section> {
    if item.as_object().is_none() {
        errors.error(
            path,
            format!("expected an object, found {}", item.kind()),
            loc(item.span),
        );
        return None;
    }
    let Some(type_node) = item.get("type") else {
        errors
            .error(path, "`type` is required", loc(item.span))
            .hint = Some("e.g. \"type\": \"qemu\"".into());
        return None;
    };
    let Some(type_name) = type_node.as_str() else {
        errors.error(
            format!("{path}.type"),
            format!("expected a string, found {}", type_node.kind()),
            loc(type_node.span),
        );
        return None;
    };
    let name = match item.get("name") {
        None if is_builder => type_name.to_owned(),
        None => String::new(),
        Some(n) => match n.as_str() {
            Some("") if is_builder => {
                errors.error(format!("{path}.name"), "must not be empty", loc(n.span));
                return None;
            }
            Some(s) => s.to_owned(),
            None => {
                errors.error(
                    format!("{path}.name"),
                    format!("expected a string, found {}", n.kind()),
                    loc(n.span),
                );
                return None;
            }
        },
    };
    let label = if is_builder && name != type_name {
        format!("{path} ({name}: {type_name})")
    } else {
        format!("{path} ({type_name})")
    };
    Some(Section {
        path: label,
        type_name: type_name.to_owned(),
        type_span: type_node.span,
        name,
        packer_build_name: None,
        body: item.clone(),
    })
}

/// `post-processors` is an array whose items are a type name, an object, or
/// an array of those (a chain). A lone string or object is a chain of one.
fn read_post_processors(v: &Node, errors: &mut Diagnostics, loc: &Loc<'_>) -> Vec<Vec<Section>> {
    let Some(items) = v.as_array() else {
        errors.error(
            "post-processors",
            format!("expected an array, found {}", v.kind()),
            loc(v.span),
        );
        return Vec::new();
    };
    let mut chains = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("post-processors[{i}]");
        let chain = match &item.value {
            Value::Array(steps) => steps
                .iter()
                .enumerate()
                .filter_map(|(j, step)| post_processor(step, format!("{path}[{j}]"), errors, loc))
                .collect(),
            _ => post_processor(item, path, errors, loc)
                .into_iter()
                .collect(),
        };
        chains.push(chain);
    }
    chains
}

fn post_processor(
    step: &Node,
    path: String,
    errors: &mut Diagnostics,
    loc: &Loc<'_>,
) -> Option<Section> {
    match &step.value {
        Value::String(type_name) => Some(Section {
            path: format!("{path} ({type_name})"),
            type_name: type_name.clone(),
            type_span: step.span,
            name: String::new(),
            packer_build_name: None,
            body: Node {
                value: Value::Object(Vec::new()),
                span: step.span,
            },
        }),
        Value::Object(_) => read_section(step, path, false, errors, loc),
        _ => {
            errors.error(
                path,
                format!(
                    "expected a post-processor type name or object, found {}",
                    step.kind()
                ),
                loc(step.span),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> (Result<Template, LoadError>, Diagnostics) {
        let mut diags = Diagnostics::new();
        let r = parse(
            SourceFile::new("t.json", text.to_owned()),
            PathBuf::from("/tmp"),
            &mut diags,
        );
        (r, diags)
    }

    fn errors_of(text: &str) -> String {
        match load_str(text) {
            (Err(LoadError::Invalid(d)), _) => d.render(),
            (Ok(_), d) if d.has_errors() => d.render(),
            other => panic!("expected errors, got {other:?}"),
        }
    }

    #[test]
    fn reads_sections_chains_and_names() {
        let (t, warnings) = load_str(
            r#"{
              "_comment": "ignored",
              "variables": {"a": null, "b": "x", "n": 3, "t": true},
              "builders": [{"type": "qemu"}, {"type": "qemu", "name": "second"}],
              "provisioners": [{"type": "shell", "inline": ["true"]}],
              "post-processors": ["checksum", {"type": "manifest"}, ["compress", {"type": "vagrant"}]]
            }"#,
        );
        let t = t.expect("valid");
        assert!(warnings.is_empty());
        assert_eq!(t.build_names().collect::<Vec<_>>(), ["qemu", "second"]);
        assert_eq!(t.builders[1].path, "builders[1] (second: qemu)");
        let defaults: Vec<_> = t.variables.iter().map(|v| v.default.clone()).collect();
        assert_eq!(
            defaults,
            [
                None,
                Some("x".into()),
                Some("3".into()),
                Some("true".into())
            ]
        );
        let chains: Vec<Vec<&str>> = t
            .post_processors
            .iter()
            .map(|c| c.iter().map(|s| s.type_name.as_str()).collect())
            .collect();
        assert_eq!(
            chains,
            [
                vec!["checksum"],
                vec!["manifest"],
                vec!["compress", "vagrant"]
            ]
        );
    }

    #[test]
    fn collects_every_structural_error() {
        let text = errors_of(
            r#"{
              "builderz": [],
              "variables": {"x": [1]},
              "sensitive-variables": ["y"],
              "builders": [{"type": "qemu"}, {"type": "qemu"}, {"name": "n"}]
            }"#,
        );
        assert!(text.contains("unknown top-level key `builderz`"), "{text}");
        assert!(text.contains("did you mean `builders`?"), "{text}");
        assert!(text.contains("must be a string or null"), "{text}");
        assert!(text.contains("`y` is not declared"), "{text}");
        assert!(
            text.contains("the build name `qemu` is already used by builders[0] (qemu)"),
            "{text}"
        );
        assert!(text.contains("builders[2]: `type` is required"), "{text}");
    }

    #[test]
    fn requires_builders() {
        assert!(errors_of("{}").contains("no `builders`"));
        assert!(errors_of(r#"{"builders": []}"#).contains("at least one builder"));
        assert!(errors_of("[1]").contains("a template is a JSON object"));
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let text = errors_of("{\n  \"builders\": [\n    {\"type\": \"qemu\",}\n  ]\n}");
        assert!(text.contains("t.json:3:21"), "{text}");
        assert!(text.contains("trailing comma"), "{text}");
    }

    #[test]
    fn duplicate_root_keys_warn_and_last_wins() {
        let (t, warnings) =
            load_str(r#"{"description": "a", "description": "b", "builders": [{"type": "qemu"}]}"#);
        assert_eq!(t.expect("valid").description.as_deref(), Some("b"));
        assert_eq!(warnings.warnings().count(), 1);
    }
}
