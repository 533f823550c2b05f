//! User variables: defaults < each `-var-file` in order < each `-var` in
//! order; then every value is rendered (values may use `{{env}}` and refer
//! to other variables with `{{user}}`), as Packer does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::compat::Compat;
use super::diagnostic::{Diagnostics, Location, did_you_mean};
use super::interp::{self, Context};
use super::json::{self, Node, Span, Value};
use super::model::Template;
use super::render_env::RenderEnv;
use super::source::SourceFile;

/// Where a variable's value came from, for `inspect` and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    VarFile(PathBuf),
    CommandLine,
}

/// The variables as the user set them on the command line.
#[derive(Debug, Clone, Default)]
pub struct VariableInputs {
    pub var_files: Vec<PathBuf>,
    /// `key=value` strings, in command-line order.
    pub vars: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ResolvedVariables {
    pub values: BTreeMap<String, String>,
    pub origins: BTreeMap<String, Origin>,
    /// Values of the sensitive variables, to mask in every line printed.
    pub secrets: Vec<String>,
}

/// Everything a template function needs that does not come from the template.
pub struct Environment<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub init_time: SystemTime,
    pub pwd: &'a Path,
}

/// Renders a value through passes until no `{{` is left: a value may pick
/// up another variable's still-unrendered text in one pass.
const MAX_RENDER_PASSES: usize = 16;

pub fn resolve(
    template: &Template,
    inputs: &VariableInputs,
    environment: &Environment<'_>,
    diags: &mut Diagnostics,
) -> ResolvedVariables {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut origins = BTreeMap::new();
    let declared = |name: &str| template.variables.iter().any(|v| v.name == name);
    // Names set by -var or a var file that the template does not declare:
    // Packer 1.6.6 merges them into the variables all the same.
    let mut undeclared: Vec<UndeclaredSetting> = Vec::new();

    for decl in &template.variables {
        if let Some(default) = &decl.default {
            values.insert(decl.name.clone(), default.clone());
            origins.insert(decl.name.clone(), Origin::Default);
        }
    }

    for path in &inputs.var_files {
        let Some((file, members)) = read_var_file(path, diags) else {
            continue;
        };
        for (key, value, key_span) in members {
            if !declared(&key) {
                undeclared.push(UndeclaredSetting {
                    name: key.clone(),
                    source: format!("var-file {}", path.display()),
                    location: Some(Location {
                        file: file.clone(),
                        span: key_span,
                    }),
                });
            }
            values.insert(key.clone(), value);
            origins.insert(key, Origin::VarFile(path.clone()));
        }
    }

    for raw in &inputs.vars {
        let Some((key, value)) = raw.split_once('=') else {
            diags
                .error(
                    "-var",
                    format!("`{raw}` is not of the form key=value"),
                    None,
                )
                .hint = Some("write -var 'name=value'".into());
            continue;
        };
        if !declared(key) {
            undeclared.push(UndeclaredSetting {
                name: key.to_owned(),
                source: "-var".into(),
                location: None,
            });
        }
        values.insert(key.to_owned(), value.to_owned());
        origins.insert(key.to_owned(), Origin::CommandLine);
    }

    // What the template and the values refer to, before rendering.
    let mut used: BTreeSet<String> = values.values().flat_map(|v| user_references(v)).collect();
    each_section_string(template, &mut |_, _, text| {
        used.extend(user_references(text));
    });
    report_undeclared_settings(template, &undeclared, &used, diags);

    let mut missing = false;
    for decl in &template.variables {
        if !values.contains_key(&decl.name) {
            missing = true;
            diags
                .error(
                    "variables",
                    format!("required variable `{}` is not set", decl.name),
                    template.location(decl.key_span),
                )
                .hint = Some(format!(
                "set it with -var '{}=...' or in a -var-file",
                decl.name
            ));
        }
    }
    if !missing {
        render_values(template, &mut values, environment, diags);
        report_undeclared_uses(template, &values, diags);
    }

    let secrets = template
        .sensitive_variables
        .iter()
        .filter_map(|(name, _)| values.get(name).cloned())
        .filter(|v| !v.is_empty())
        .collect();
    ResolvedVariables {
        values,
        origins,
        secrets,
    }
}

/// A name given a value by `-var` or a var file without being declared.
struct UndeclaredSetting {
    name: String,
    /// `-var` or `var-file PATH`.
    source: String,
    location: Option<Location>,
}

/// The names a string reads with `{{user `name`}}` (none if it does not parse:
/// the place that renders it reports that).
fn user_references(text: &str) -> Vec<String> {
    if !text.contains("{{") {
        return Vec::new();
    }
    interp::parse(text)
        .map(|t| t.user_variables().into_iter().map(|(n, _)| n).collect())
        .unwrap_or_default()
}

/// Packer 1.6.6 keeps every name a var file or `-var` sets, declared or
/// not, and real build systems rely on it; one nothing uses is most
/// likely a typo, so it gets a note.
fn report_undeclared_settings(
    template: &Template,
    undeclared: &[UndeclaredSetting],
    used: &BTreeSet<String>,
    diags: &mut Diagnostics,
) {
    for s in undeclared {
        // A var file's `_comment` is a comment, as `_` keys are in templates.
        if s.name.starts_with('_') && s.source != "-var" && !used.contains(&s.name) {
            continue;
        }
        if used.contains(&s.name) {
            diags.compat(
                Compat::UndeclaredVariableSetting,
                s.source.clone(),
                format!(
                    "`{}` is not declared in the template's `variables`; it is set and used all the same, as in Packer",
                    s.name
                ),
                s.location.clone(),
            );
            continue;
        }
        let known = template
            .variables
            .iter()
            .map(|v| v.name.as_str())
            .chain(used.iter().map(String::as_str));
        let hint = did_you_mean(&s.name, known)
            .map(|n| format!("did you mean `{n}`?"))
            .unwrap_or_else(|| {
                format!(
                    "declare it (\"variables\": {{ \"{}\": \"\" }}) and use it with {{{{user `{}`}}}}, or remove it",
                    s.name, s.name
                )
            });
        if let Some(d) = diags.compat(
            Compat::UnusedVariableSetting,
            s.source.clone(),
            format!(
                "`{}` is not declared in the template's `variables` and nothing uses it",
                s.name
            ),
            s.location.clone(),
        ) {
            d.hint = Some(hint);
        }
    }
}

/// `{{user `x`}}` outside the variables, of a name nothing declares or
/// sets: Packer renders an empty string and templates rely on it.
fn report_undeclared_uses(
    template: &Template,
    values: &BTreeMap<String, String>,
    diags: &mut Diagnostics,
) {
    each_section_string(template, &mut |path, node, text| {
        let Ok(parsed) = interp::parse(text) else {
            return;
        };
        for (name, offset) in parsed.user_variables() {
            if values.contains_key(&name) {
                continue;
            }
            let raw = template
                .file
                .text()
                .get(node.span.start..node.span.end)
                .unwrap_or("");
            let at = node.span.start + json::raw_offset(raw, offset);
            let hint = did_you_mean(&name, values.keys().map(String::as_str))
                .map(|n| format!("did you mean `{n}`?"))
                .unwrap_or_else(|| format!("declare it: \"variables\": {{ \"{name}\": \"\" }}"));
            if let Some(d) = diags.compat(
                Compat::UndeclaredUserVariable,
                path,
                format!(
                    "`{name}` is not a declared variable; {{{{user `{name}`}}}} renders as an empty string, as in Packer"
                ),
                template.location(Span::new(at, at + 4)),
            ) {
                d.hint = Some(hint);
            }
        }
    });
}

/// Calls `visit(section path, node, text)` for every string value (and
/// nested one) in the builders, provisioners and post-processors.
fn each_section_string(template: &Template, visit: &mut dyn FnMut(&str, &Node, &str)) {
    let sections = template
        .builders
        .iter()
        .chain(&template.provisioners)
        .chain(&template.error_cleanup_provisioner)
        .chain(template.post_processors.iter().flatten());
    for section in sections {
        walk_strings(&section.body, &mut |node, text| {
            visit(&section.path, node, text);
        });
    }
}

fn walk_strings(node: &Node, visit: &mut dyn FnMut(&Node, &str)) {
    match &node.value {
        Value::String(s) => visit(node, s),
        Value::Array(items) => items.iter().for_each(|n| walk_strings(n, visit)),
        Value::Object(members) => members
            .iter()
            .filter(|m| !m.key.starts_with('_'))
            .for_each(|m| walk_strings(&m.value, visit)),
        _ => {}
    }
}

fn render_values(
    template: &Template,
    values: &mut BTreeMap<String, String>,
    environment: &Environment<'_>,
    diags: &mut Diagnostics,
) {
    let empty = BTreeMap::new();
    // Before any build, and before the run has an id.
    let run_env = RenderEnv::new(
        BTreeMap::new(),
        template.dir.clone(),
        environment.pwd.to_owned(),
        environment.init_time,
        String::new(),
    );
    let mut failed: Vec<String> = Vec::new();
    // Done: no action left but build-time fields, which stay for the place
    // the variable is used (as Packer leaves `{{ .HTTPIP }}` in variables).
    let unrendered = |v: &String| v.contains("{{") && interp::build_time_value(v).is_none();
    for _ in 0..MAX_RENDER_PASSES {
        let pending: Vec<String> = values
            .iter()
            .filter(|(k, v)| unrendered(v) && !failed.contains(k))
            .map(|(k, _)| k.clone())
            .collect();
        if pending.is_empty() {
            return;
        }
        let snapshot = values.clone();
        let mut changed = false;
        for name in pending {
            let text = &snapshot[&name];
            let span = template
                .variables
                .iter()
                .find(|d| d.name == name)
                .map(|d| d.value_span);
            // Variables may read the environment, and each other as
            // rendered so far.
            let ctx = Context {
                user_vars: &snapshot,
                env: Some(environment.env),
                ..run_env.context(&empty)
            };
            match interp::parse(text).and_then(|t| t.render_keeping_fields(&ctx)) {
                Ok(out) => {
                    changed |= out != *text;
                    values.insert(name, out);
                }
                Err(e) => {
                    diags.error(
                        format!("variables.{name}"),
                        e.to_string(),
                        span.and_then(|s| template.location(Span::new(s.start, s.end))),
                    );
                    failed.push(name);
                }
            }
        }
        if !changed {
            break;
        }
    }
    let cyclic: Vec<&String> = values
        .iter()
        .filter(|(k, v)| unrendered(v) && !failed.contains(k))
        .map(|(k, _)| k)
        .collect();
    if !cyclic.is_empty() {
        diags
            .error(
                "variables",
                format!(
                    "these variables refer to each other in a cycle: {}",
                    cyclic
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None,
            )
            .hint = Some("break the cycle: one of them must not use {{user}} of the others".into());
    }
}

type VarFileMember = (String, String, Span);

/// A var file is a JSON object of name: value. Scalars are taken as
/// strings (Packer decodes weakly); anything else is an error.
fn read_var_file(
    path: &Path,
    diags: &mut Diagnostics,
) -> Option<(Arc<SourceFile>, Vec<VarFileMember>)> {
    let label = format!("var-file {}", path.display());
    let bytes = match super::input::read_input(path) {
        Ok(b) => b,
        Err(e) => {
            let hint = match e.hint() {
                Some(hint) if !e.is_not_found() => hint,
                _ => "check the path given to -var-file",
            };
            diags
                .error(label, format!("cannot read it: {e}"), None)
                .hint = Some(hint.into());
            return None;
        }
    };
    let Ok(text) = String::from_utf8(bytes) else {
        diags.error(label, "it is not valid UTF-8 text", None).hint =
            Some("save the var file as UTF-8".into());
        return None;
    };
    let file = Arc::new(SourceFile::new(path, text));
    let loc = |span: Span| {
        Some(Location {
            file: file.clone(),
            span,
        })
    };
    let root = match json::parse(file.text()) {
        Ok(r) => r,
        Err(e) => {
            diags.error(
                label,
                format!("invalid JSON: {}", e.message),
                loc(Span::new(e.offset, e.offset + 1)),
            );
            return None;
        }
    };
    let Some(members) = root.as_object() else {
        diags.error(
            label,
            format!(
                "a var file is a JSON object of name: value, found {}",
                root.kind()
            ),
            loc(root.span),
        );
        return None;
    };
    let mut out = Vec::new();
    for m in members {
        let value = match &m.value.value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.clone(),
            Value::Bool(b) => b.to_string(),
            _ => {
                diags.error(
                    label.clone(),
                    format!("`{}` must be a string, found {}", m.key, m.value.kind()),
                    loc(m.value.span),
                );
                continue;
            }
        };
        out.push((m.key.clone(), value, m.key_span));
    }
    Some((file.clone(), out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::model;

    fn template(text: &str) -> Template {
        let mut d = Diagnostics::new();
        match model::parse(
            SourceFile::new("t.json", text.to_owned()),
            PathBuf::from("/tmp"),
            &mut d,
        ) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn resolve_with(t: &Template, inputs: &VariableInputs) -> (ResolvedVariables, Diagnostics) {
        let mut diags = Diagnostics::new();
        let env = Environment {
            env: &no_env,
            init_time: SystemTime::UNIX_EPOCH,
            pwd: Path::new("/"),
        };
        let r = resolve(t, inputs, &env, &mut diags);
        (r, diags)
    }

    #[test]
    fn precedence_is_default_then_files_then_flags() {
        let dir = tempdir();
        let f1 = dir.join("a.json");
        let f2 = dir.join("b.json");
        std::fs::write(&f1, r#"{"a": "file1", "b": "file1", "c": "file1"}"#).expect("write");
        std::fs::write(&f2, r#"{"b": "file2", "c": "file2"}"#).expect("write");
        let t = template(
            r#"{"variables": {"a": "d", "b": "d", "c": "d", "z": "d"}, "builders": [{"type": "qemu"}]}"#,
        );
        let (r, diags) = resolve_with(
            &t,
            &VariableInputs {
                var_files: vec![f1, f2.clone()],
                vars: vec!["c=flag1".into(), "c=flag2".into()],
            },
        );
        assert!(diags.is_empty(), "{}", diags.render());
        assert_eq!(r.values["a"], "file1");
        assert_eq!(r.values["b"], "file2");
        assert_eq!(r.values["c"], "flag2");
        assert_eq!(r.values["z"], "d");
        assert_eq!(r.origins["b"], Origin::VarFile(f2));
        assert_eq!(r.origins["c"], Origin::CommandLine);
    }

    #[test]
    fn every_missing_required_variable_is_reported() {
        let t = template(
            r#"{"variables": {"project_id": null, "zone": null, "m": "x"}, "builders": [{"type": "qemu"}]}"#,
        );
        let (_, diags) = resolve_with(&t, &VariableInputs::default());
        let text = diags.render();
        assert_eq!(diags.error_count(), 2, "{text}");
        assert!(
            text.contains("required variable `project_id` is not set"),
            "{text}"
        );
        assert!(text.contains("-var 'zone=...'"), "{text}");
    }

    #[test]
    fn bad_flags_and_files_are_errors_with_hints() {
        let t = template(r#"{"variables": {"project_id": ""}, "builders": [{"type": "qemu"}]}"#);
        let (_, diags) = resolve_with(
            &t,
            &VariableInputs {
                var_files: vec![PathBuf::from("/nonexistent/vars.json")],
                vars: vec!["projectid=1".into(), "novalue".into()],
            },
        );
        let text = diags.render();
        assert!(text.contains("did you mean `project_id`?"), "{text}");
        assert!(text.contains("not of the form key=value"), "{text}");
        assert!(text.contains("cannot read it"), "{text}");
    }

    #[test]
    fn sensitive_values_are_collected_for_masking() {
        let t = template(
            r#"{"variables": {"pw": "s3cret", "u": "me"}, "sensitive-variables": ["pw"], "builders": [{"type": "qemu"}]}"#,
        );
        let (r, _) = resolve_with(&t, &VariableInputs::default());
        assert_eq!(r.secrets, ["s3cret"]);
    }

    /// Packer issue 8033's layout: the boot command lives in a var file,
    /// with build-time fields and another variable.
    #[test]
    fn var_file_values_keep_build_time_fields_and_render_the_rest() {
        let dir = tempdir();
        let file = dir.join("boot.json");
        std::fs::write(
            &file,
            r#"{"boot_command": "<esc>url=http://{{.HTTPIP}}:{{ .HTTPPort }}/{{user `preseed`}}<enter>", "build_name": "ci"}"#,
        )
        .expect("write");
        let t = template(
            r#"{"variables": {"preseed": "debian.cfg", "boot_command": ""}, "builders": [{"type": "qemu", "name": "{{user `build_name`}}"}]}"#,
        );
        let (r, diags) = resolve_with(
            &t,
            &VariableInputs {
                var_files: vec![file],
                vars: Vec::new(),
            },
        );
        assert!(diags.is_empty(), "{}", diags.render());
        assert_eq!(
            r.values["boot_command"],
            "<esc>url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/debian.cfg<enter>"
        );
        assert_eq!(r.values["build_name"], "ci");
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "kiln-vars-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("tempdir");
        dir
    }
}
