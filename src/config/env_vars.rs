//! Environment variables for scripts: `KEY=value` lists
//! (`environment_vars`, ansible's `ansible_env_vars`) and `env` maps, kept
//! as templates, their shape checked at validation.

use std::collections::BTreeMap;

use super::decode::{Deferred, Fields};
use crate::template::interp;
use crate::template::json::Value;

/// One `environment_vars` entry, `KEY=value`: the whole entry is one
/// template (as Packer renders it before splitting at the first `=`),
/// checked at validation to split into a non-empty key.
#[derive(Debug, Clone)]
pub struct EnvVar(pub Deferred);

/// `["KEY=value", ...]` (`environment_vars`, ansible's `ansible_env_vars`):
/// the shape is checked now, on the value as it renders before the build;
/// each entry is rendered again when its provisioner runs. `example` is a
/// valid entry for the hint.
pub(super) fn key_value_templates(
    f: &mut Fields<'_>,
    key: &'static str,
    example: &str,
) -> Vec<EnvVar> {
    let mut out = Vec::new();
    for (template, entry) in f.run_time_string_list(key).unwrap_or_default() {
        match entry.split_once('=') {
            Some((k, _)) if !k.is_empty() => out.push(EnvVar(template)),
            _ => {
                let span = f.span_of(key).unwrap_or_default();
                f.error_at(
                    span,
                    format!("{key}: `{entry}` is not of the form KEY=value"),
                )
                .hint = Some(format!("e.g. \"{example}\""));
            }
        }
    }
    out
}

/// `env`: `{"KEY": "value", ...}` (the shell provisioners'). Each value is
/// a template rendered when its provisioner runs, as an `environment_vars`
/// entry is; there is nothing to split, so a value may hold anything (`=`,
/// quotes, `$`). A key goes unquoted before the `=` of `{{.Vars}}`, so it
/// must be a name a shell can set. A null value is empty, as Packer decodes
/// it.
pub(super) fn env_map(f: &mut Fields<'_>, key: &'static str) -> BTreeMap<String, Deferred> {
    let mut out = BTreeMap::new();
    let Some(node) = f.raw(key) else {
        return out;
    };
    let Some(members) = node.as_object() else {
        if !matches!(node.value, Value::Null) {
            f.error_at(
                node.span,
                format!(
                    "{key}: expected an object of NAME: value, found {}",
                    node.kind()
                ),
            )
            .hint = Some("e.g. \"env\": {\"DEBIAN_FRONTEND\": \"noninteractive\"}".into());
        }
        return out;
    };
    for m in members {
        if !is_env_name(&m.key) {
            f.error_at(
                m.key_span,
                format!("{key}: `{}` is not an environment variable name", m.key),
            )
            .hint = Some(
                "a name is letters, digits and `_`, not starting with a digit, e.g. DEBIAN_FRONTEND"
                    .into(),
            );
            continue;
        }
        let value = if matches!(m.value.value, Value::Null) {
            interp::parse("").ok().map(|template| Deferred {
                template,
                span: m.value.span,
            })
        } else {
            f.run_time_string(key, &m.value)
                .map(|(template, _)| template)
        };
        if let Some(value) = value {
            out.insert(m.key.clone(), value);
        }
    }
    out
}

/// What POSIX calls a name: what `export` accepts.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::is_env_name;

    #[test]
    fn env_names_are_what_a_shell_can_set() {
        for good in ["A", "_", "DEBIAN_FRONTEND", "a1", "_x_9"] {
            assert!(is_env_name(good), "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "$A", "Ä", "{{user `x`}}"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }
}
