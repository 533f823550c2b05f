//! `kiln inspect` for an HCL2 template, in the shape of Packer's HCL2
//! inspect: input variables, locals, and each build's sources,
//! provisioners and post-processors. Only names and types are needed, so
//! sources of types kiln cannot build are listed too.

use std::fmt::Write as _;

use super::Loaded;

pub fn render(loaded: &Loaded) -> String {
    let t = &loaded.template;
    let mut out = String::from("Packer Inspect: HCL2 mode\n\n> input-variables:\n\n");
    let sensitive = |name: &str| t.sensitive_variables.iter().any(|(n, _)| n == name);
    for v in &t.variables {
        // The value var files, -var and PKR_VAR_* give, as Packer shows it.
        let value = match loaded.variable_values.get(&v.name) {
            _ if sensitive(&v.name) => "<sensitive>".to_owned(),
            Some(value) => super::variables::display(value),
            None => match &v.default {
                Some(d) => d.clone(),
                None => "<unknown> (required)".to_owned(),
            },
        };
        let _ = writeln!(out, "var.{}: {value}", v.name);
    }
    out.push_str("\n> local-variables:\n\n");
    for (name, value) in &loaded.locals {
        let _ = writeln!(out, "local.{name}: {value}");
    }
    out.push_str("\n> sources:\n\n");
    for s in &loaded.sources {
        let _ = writeln!(out, "  source.{s}");
    }
    out.push_str("\n> builds:\n");
    for (i, b) in loaded.builds.iter().enumerate() {
        let name = b
            .name
            .clone()
            .unwrap_or_else(|| format!("<unnamed build {i}>"));
        let _ = write!(out, "\n  > {name}:\n\n    sources:\n\n");
        for s in &b.sources {
            let _ = writeln!(out, "      {s}");
        }
        out.push_str("\n    provisioners:\n\n");
        if b.provisioners.is_empty() {
            out.push_str("      <no provisioner>\n");
        }
        for p in &b.provisioners {
            let _ = writeln!(out, "      {p}");
        }
        out.push_str("\n    post-processors:\n\n");
        if b.post_processors.is_empty() {
            out.push_str("      <no post-processor>\n");
        }
        for (j, chain) in b.post_processors.iter().enumerate() {
            let _ = writeln!(out, "      {j}:\n        {}", chain.join(" -> "));
        }
    }
    out
}
