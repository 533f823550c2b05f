//! `KEY=value` lists (`environment_vars`, ansible's `ansible_env_vars`):
//! kept as templates, their shape checked at validation.

use super::decode::{Deferred, Fields};

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
