//! The `packer {}` block: `required_version` checked against the Packer
//! release kiln follows for HCL2, and `required_plugins` checked against
//! what kiln has built in (nothing is ever downloaded).

use hcl::Value;
use hcl::edit::Span as _;
use hcl::edit::structure::Structure;

use super::eval::{Scope, eval};
use super::{Files, PACKER_HCL2_VERSION, Parsed, span_of};
use crate::template::diagnostic::Diagnostics;

/// Plugins whose components kiln implements itself, by the end of their
/// source address (`github.com/hashicorp/qemu`), with what of each kiln
/// has.
const BUILT_IN_PLUGINS: &[(&str, &str)] = &[
    ("hashicorp/qemu", "the qemu builder"),
    ("hashicorp/virtualbox", "the virtualbox-iso builder"),
    ("hashicorp/vagrant", "the vagrant post-processor"),
    (
        "hashicorp/googlecompute",
        "the googlecompute builder, googlecompute-import and googlecompute-export",
    ),
    (
        "hashicorp/ansible",
        "the ansible and ansible-local provisioners",
    ),
    ("hashicorp/chef", "the chef-solo provisioner"),
    ("hashicorp/salt", "the salt-masterless provisioner"),
    ("hashicorp/amazon", "the amazon-import post-processor"),
    (
        "joomcode/external",
        "the external and external-raw data sources",
    ),
];

/// What kiln has of a required plugin, by its source address.
fn built_in(source: &str) -> Option<&'static str> {
    BUILT_IN_PLUGINS
        .iter()
        .find(|(name, _)| source == *name || source.ends_with(&format!("/{name}")))
        .map(|(_, components)| *components)
}

/// The plugins kiln has, by their short names, for messages.
fn built_in_names() -> String {
    BUILT_IN_PLUGINS
        .iter()
        .map(|(name, _)| name.rsplit('/').next().unwrap_or(name))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn check(parsed: &[Parsed], files: &Files, diags: &mut Diagnostics, notes: &mut Vec<String>) {
    for p in parsed {
        for s in p.body.iter() {
            let Structure::Block(b) = s else { continue };
            if b.ident.as_str() != "packer" {
                continue;
            }
            for item in b.body.iter() {
                match item {
                    Structure::Attribute(a) if a.key.as_str() == "required_version" => {
                        let span = span_of(p.base, a.value.span());
                        match eval(&a.value, &Scope::default()) {
                            Ok(Value::String(c)) => match satisfies(&c, PACKER_HCL2_VERSION) {
                                Ok(true) => {}
                                Ok(false) => {
                                    diags.error("packer.required_version", format!("the template needs Packer {c}; kiln follows Packer {PACKER_HCL2_VERSION} for HCL2 templates"), files.location(span)).hint =
                                        Some("relax the constraint if the template does not need a newer Packer".into());
                                }
                                Err(e) => {
                                    diags.error("packer.required_version", e, files.location(span));
                                }
                            },
                            _ => {
                                diags.error(
                                    "packer.required_version",
                                    "expected a version constraint string such as \">= 1.7.0\"",
                                    files.location(span),
                                );
                            }
                        }
                    }
                    Structure::Block(inner) if inner.ident.as_str() == "required_plugins" => {
                        for plugin in inner.body.iter() {
                            let Structure::Attribute(a) = plugin else {
                                continue;
                            };
                            let span = span_of(p.base, a.value.span());
                            let name = a.key.as_str();
                            let source = match eval(&a.value, &Scope::default()) {
                                Ok(Value::Object(o)) => {
                                    o.get("source").and_then(Value::as_str).map(str::to_owned)
                                }
                                _ => None,
                            };
                            let Some(source) = source else {
                                diags.error(
                                    format!("packer.required_plugins.{name}"),
                                    "expected { version = \"…\", source = \"github.com/…\" }",
                                    files.location(span),
                                );
                                continue;
                            };
                            if let Some(components) = built_in(&source) {
                                let note = format!(
                                    "plugin {source} is built into kiln ({components}); nothing to install"
                                );
                                if !notes.contains(&note) {
                                    notes.push(note);
                                }
                            } else {
                                // Packer would install it. What the template
                                // uses of it is refused where it is used (or
                                // left out by -only/-except, with a note), so
                                // the requirement itself only gets a note.
                                let note = format!(
                                    "plugin {source} is not provided by kiln: what the template uses of it is refused where it is used, and -only/-except leave such builds out (kiln has {})",
                                    built_in_names()
                                );
                                if !notes.contains(&note) {
                                    notes.push(note);
                                }
                            }
                        }
                    }
                    Structure::Attribute(a) => {
                        diags
                            .error(
                                "packer",
                                format!("unknown attribute `{}`", a.key.as_str()),
                                files.location(span_of(p.base, a.key.span())),
                            )
                            .hint = Some(
                            "the packer block takes required_version and required_plugins".into(),
                        );
                    }
                    Structure::Block(inner) => {
                        diags.error(
                            "packer",
                            format!("unexpected block `{}`", inner.ident.as_str()),
                            files.location(span_of(p.base, inner.ident.span())),
                        );
                    }
                }
            }
        }
    }
}

fn parse_version(text: &str) -> Option<Vec<u64>> {
    let core = text
        .trim()
        .trim_start_matches('v')
        .split(['-', '+'])
        .next()?;
    let parts: Option<Vec<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| !p.is_empty() && p.len() <= 3)
}

fn padded(v: &[u64]) -> [u64; 3] {
    [
        v.first().copied().unwrap_or(0),
        v.get(1).copied().unwrap_or(0),
        v.get(2).copied().unwrap_or(0),
    ]
}

/// go-version's constraints: comma-separated `op version`, op one of
/// = != > >= < <= ~> (pessimistic: ~> 1.2 means >= 1.2, < 2.0).
pub fn satisfies(constraints: &str, version: &str) -> Result<bool, String> {
    let have = padded(&parse_version(version).ok_or("kiln's own version is malformed")?);
    for c in constraints.split(',') {
        let c = c.trim();
        let (op, rest) = ["~>", ">=", "<=", "!=", ">", "<", "="]
            .iter()
            .find_map(|op| c.strip_prefix(op).map(|r| (*op, r)))
            .unwrap_or(("=", c));
        let want = parse_version(rest)
            .ok_or_else(|| format!("`{c}` is not a version constraint; write e.g. \">= 1.7.0\""))?;
        let w = padded(&want);
        let ok = match op {
            "=" => have == w,
            "!=" => have != w,
            ">" => have > w,
            ">=" => have >= w,
            "<" => have < w,
            "<=" => have <= w,
            _ => {
                // ~> x.y.z allows the last given part to grow.
                let keep = want.len().saturating_sub(1).max(1);
                have >= w && have[..keep] == w[..keep]
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::satisfies;

    #[test]
    fn version_constraints() {
        assert_eq!(satisfies(">= 1.7.0", "1.11.2"), Ok(true));
        assert_eq!(satisfies(">= 1.7.0, < 1.10", "1.11.2"), Ok(false));
        assert_eq!(satisfies("~> 1.11", "1.11.2"), Ok(true));
        assert_eq!(satisfies("~> 1.9.0", "1.11.2"), Ok(false));
        assert_eq!(satisfies("~> 1", "1.11.2"), Ok(true));
        assert_eq!(satisfies("1.11.2", "1.11.2"), Ok(true));
        assert!(satisfies(">= banana", "1.11.2").is_err());
    }
}
