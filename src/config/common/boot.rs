//! The boot command and its timing: `boot_command` (its key language
//! checked now, its template actions filled in when the build runs),
//! `boot_wait`, `boot_key_interval`, `boot_keygroup_interval`.

use std::time::Duration;

use crate::config::decode::{Deferred, Fields};

/// Template fields `boot_command` can use.
pub const BOOT_COMMAND_FIELDS: &[&str] = &[
    "HTTPIP",
    "HTTPPort",
    "Name",
    "SSHPublicKey",
    "SSHPrivateKey",
];

#[derive(Debug, Clone)]
pub struct BootConfig {
    pub command: Vec<Deferred>,
    pub wait: Duration,
    /// Pause between key events; None = the hypervisor's default.
    pub key_interval: Option<Duration>,
    pub group_interval: Option<Duration>,
}

impl BootConfig {
    pub fn decode(f: &mut Fields<'_>) -> Self {
        let command = f
            .deferred_list("boot_command", BOOT_COMMAND_FIELDS)
            .unwrap_or_default();
        check_boot_command(f);
        // As in Packer: unset or zero waits 10s, a negative value not at all.
        let negative = f.span_of("boot_wait").is_some_and(|_| {
            f.raw("boot_wait")
                .and_then(|n| n.as_str())
                .is_some_and(|s| s.trim_start().starts_with('-'))
        });
        let wait = if negative {
            Duration::ZERO
        } else {
            f.duration("boot_wait")
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(10))
        };
        let key_interval = f.duration("boot_key_interval");
        let group_interval = f.duration("boot_keygroup_interval");
        Self {
            command,
            wait,
            key_interval,
            group_interval,
        }
    }
}

/// Checks the key language of each `boot_command` entry (template actions
/// are skipped: they are filled in when the build runs).
fn check_boot_command(f: &mut Fields<'_>) {
    let Some(node) = f.raw("boot_command") else {
        return;
    };
    let items: Vec<_> = match node.as_array() {
        Some(items) => items.to_vec(),
        None => vec![node.clone()],
    };
    for item in &items {
        let Some(text) = item.as_str() else { continue };
        let report = crate::bootcmd::validate(text);
        for e in report.errors {
            let span = f.string_offset_span(item, e.offset);
            f.error_at(span, format!("boot_command: {}", e.message))
                .hint = e.hint;
        }
        for w in report.warnings {
            let span = f.string_offset_span(item, w.offset);
            let message = match &w.hint {
                Some(h) => format!("boot_command: {} ({h})", w.message),
                None => format!("boot_command: {}", w.message),
            };
            f.warn_at(span, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::qemu_with;
    use std::time::Duration;

    #[test]
    fn waits_default_to_packers_and_take_go_durations() {
        let (q, diags) = qemu_with("");
        let boot = q.expect("decodes").boot;
        assert_eq!(boot.wait, Duration::from_secs(10), "{diags}");
        assert_eq!(boot.key_interval, None);
        let (q, _) = qemu_with(r#""boot_wait": "1m30s", "boot_key_interval": "20ms""#);
        let boot = q.expect("decodes").boot;
        assert_eq!(boot.wait, Duration::from_secs(90));
        assert_eq!(boot.key_interval, Some(Duration::from_millis(20)));
    }

    #[test]
    fn a_bad_key_in_the_boot_command_is_reported_at_its_place() {
        let (_, diags) = qemu_with(r#""boot_command": ["<enter><nosuchkey>"]"#);
        assert!(diags.contains("boot_command"), "{diags}");
        assert!(diags.contains("nosuchkey"), "{diags}");
    }
}
