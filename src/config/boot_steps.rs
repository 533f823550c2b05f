//! `boot_steps`: Packer's alternative to `boot_command`, a list of
//! `[keys, description]` pairs typed in order, each description printed
//! before its keys.

use super::common::BOOT_COMMAND_FIELDS;
use super::decode::{Deferred, Fields};

#[derive(Debug, Clone)]
pub struct BootStep {
    pub keys: Deferred,
    pub description: Option<String>,
}

/// The steps, or an empty list; `boot_command` and `boot_steps` together
/// are an error, as in Packer.
pub fn decode(f: &mut Fields<'_>, has_boot_command: bool) -> Vec<BootStep> {
    let Some(rows) = f.deferred_list_of_lists("boot_steps", BOOT_COMMAND_FIELDS) else {
        return Vec::new();
    };
    check_keys(f);
    let span = f.span_of("boot_steps").unwrap_or_default();
    let mut out = Vec::new();
    let mut bad_row = false;
    for row in rows {
        let mut items = row.into_iter();
        match (items.next(), items.next(), items.next()) {
            (Some(keys), description, None) => out.push(BootStep {
                keys,
                description: description
                    .map(|d| d.source().to_owned())
                    .filter(|d| !d.is_empty()),
            }),
            _ => bad_row = true,
        }
    }
    if bad_row {
        f.error_at(
            span,
            "boot_steps: each step is [keys] or [keys, description]",
        )
        .hint =
            Some("e.g. [[\"<esc><wait>\", \"open the boot prompt\"], [\"install<enter>\"]]".into());
    }
    if has_boot_command && !out.is_empty() {
        f.error_at(span, "boot_command and boot_steps cannot both be set")
            .hint = Some("keep one: boot_steps is boot_command with a description per step".into());
    }
    out
}

/// Each step's keys checked as `boot_command` is (unknown `<key>`s, bad
/// waits), with the span of the offending text.
fn check_keys(f: &mut Fields<'_>) {
    let Some(node) = f.raw("boot_steps") else {
        return;
    };
    let Some(rows) = node.as_array() else {
        return;
    };
    let keys: Vec<_> = rows
        .iter()
        .filter_map(|row| row.as_array().and_then(|r| r.first()).cloned())
        .collect();
    for item in &keys {
        let Some(text) = item.as_str() else { continue };
        let report = crate::bootcmd::validate(text);
        for e in report.errors {
            let span = f.string_offset_span(item, e.offset);
            f.error_at(span, format!("boot_steps: {}", e.message)).hint = e.hint;
        }
        for w in report.warnings {
            let span = f.string_offset_span(item, w.offset);
            let message = match &w.hint {
                Some(h) => format!("boot_steps: {} ({h})", w.message),
                None => format!("boot_steps: {}", w.message),
            };
            f.warn_at(span, message);
        }
    }
}
