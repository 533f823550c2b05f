//! How the guest is stopped: `shutdown_command`, `shutdown_timeout`.

use std::time::Duration;

use crate::config::decode::Fields;

#[derive(Debug, Clone)]
pub struct ShutdownConfig {
    pub command: Option<String>,
    pub timeout: Duration,
}

impl ShutdownConfig {
    pub fn decode(f: &mut Fields<'_>) -> Self {
        Self {
            command: f.string("shutdown_command").filter(|s| !s.is_empty()),
            timeout: f
                .duration("shutdown_timeout")
                .unwrap_or(Duration::from_secs(300)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::qemu_with;
    use std::time::Duration;

    #[test]
    fn an_empty_command_means_none_and_the_timeout_defaults_to_five_minutes() {
        let (q, diags) = qemu_with(r#""shutdown_command": """#);
        let shutdown = q.expect("decodes").shutdown;
        assert_eq!(shutdown.command, None, "{diags}");
        assert_eq!(shutdown.timeout, Duration::from_secs(300));
    }

    #[test]
    fn a_timeout_that_is_not_a_duration_is_an_error() {
        let (_, diags) = qemu_with(r#""shutdown_timeout": "5 minutes""#);
        assert!(diags.contains("shutdown_timeout"), "{diags}");
    }
}
