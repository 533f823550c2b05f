//! The `null` builder's configuration: only the communicator. It makes no
//! machine, so with SSH it needs the address of one that exists and a way
//! to log in that the template gives (no temporary key can be installed).

use super::common::{Communicator, SshConfig};
use super::decode::Fields;

#[derive(Debug, Clone)]
pub struct NullConfig {
    pub communicator: Communicator,
}

/// Keys of the temporary key pair, which the null builder never makes.
const TEMPORARY_KEY_KEYS: &[&str] = &[
    "temporary_key_pair_type",
    "temporary_key_pair_bits",
    "ssh_clear_authorized_keys",
];

impl NullConfig {
    pub fn decode(f: &mut Fields<'_>) -> Option<Self> {
        let communicator = Communicator::decode(f, None);
        match &communicator {
            Some(Communicator::Ssh(ssh)) => {
                if ssh.host.is_none() {
                    host_required(f);
                }
                one_way_to_log_in(f, ssh);
                for key in TEMPORARY_KEY_KEYS {
                    if let Some(span) = f.span_of(key) {
                        f.warn_at(
                            span,
                            format!(
                                "`{key}` has no effect: the null builder makes no temporary key"
                            ),
                        );
                    }
                }
            }
            Some(Communicator::None) => {}
            // The default SSH communicator failed to decode (no
            // ssh_username): a missing host is said too, not after a fix.
            None if !f.has("communicator") && !f.has("ssh_host") => host_required(f),
            None => {}
        }
        Some(Self {
            communicator: communicator?,
        })
    }
}

fn host_required(f: &mut Fields<'_>) {
    let hint =
        "set \"ssh_host\" to its address, or \"communicator\": \"none\" to run only local steps";
    // Given, but empty once rendered (an unset variable).
    if let Some(span) = f.span_of("ssh_host") {
        f.error_at(
            span,
            "ssh_host is empty: the null builder connects to a machine that already exists",
        )
        .hint = Some(hint.into());
        return;
    }
    f.error("ssh_host is required: the null builder connects to a machine that already exists")
        .hint = Some(hint.into());
}

/// Packer's rule for this builder: exactly one of the agent, a password
/// and a key file.
fn one_way_to_log_in(f: &mut Fields<'_>, ssh: &SshConfig) {
    let methods = [
        ("ssh_agent_auth", ssh.agent_auth),
        ("ssh_password", ssh.password.is_some()),
        ("ssh_private_key_file", ssh.private_key_file.is_some()),
    ];
    let given: Vec<&str> = methods
        .iter()
        .filter(|(_, set)| *set)
        .map(|(key, _)| *key)
        .collect();
    match given.as_slice() {
        [] => {
            f.error(
                "ssh_password, ssh_private_key_file or ssh_agent_auth is required with the null builder",
            )
            .hint = Some(
                "kiln cannot put a temporary key on a machine it did not make; give one way to log in"
                    .into(),
            );
        }
        [_] => {}
        several => {
            let span = f.span_of(several[1]).unwrap_or_default();
            f.error_at(
                span,
                format!(
                    "{} cannot be given together with the null builder: give one way to log in",
                    several.join(" and ")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BuilderConfig, Selection, prepare_text};
    use std::time::Duration;

    /// The null builder of a template with `fields` (JSON members).
    fn null_with(fields: &str) -> (Option<NullConfig>, String) {
        let text = format!(r#"{{"builders": [{{"type": "null", {fields}}}]}}"#);
        let (prepared, diags) = prepare_text(&text, &Selection::default());
        let config = prepared.builds.into_iter().next().map(|b| match b.builder {
            BuilderConfig::Null(c) => *c,
            other => panic!("not null: {other:?}"),
        });
        (config, diags.render())
    }

    #[test]
    fn ssh_follows_packer_defaults() {
        let (c, diags) = null_with(
            r#""ssh_host": "10.0.0.5", "ssh_username": "admin", "ssh_password": "secret""#,
        );
        let c = c.unwrap_or_else(|| panic!("{diags}"));
        let ssh = c.communicator.ssh().expect("ssh by default");
        assert_eq!(ssh.host.as_deref(), Some("10.0.0.5"));
        assert_eq!(ssh.port, 22);
        assert_eq!(ssh.timeout, Duration::from_secs(300));
    }

    #[test]
    fn communicator_none_needs_nothing_else() {
        let (c, diags) = null_with(r#""communicator": "none""#);
        assert!(c.expect("decodes").communicator.ssh().is_none(), "{diags}");
        assert!(!diags.contains("warning"), "{diags}");
    }

    #[test]
    fn ssh_needs_a_host_a_user_and_one_way_to_log_in() {
        let (_, diags) = null_with(r#""ssh_password": "x""#);
        assert!(diags.contains("ssh_host is required"), "{diags}");
        assert!(diags.contains("ssh_username is required"), "{diags}");

        let (_, diags) = null_with(r#""ssh_host": "", "ssh_username": "u", "ssh_password": "x""#);
        assert!(diags.contains("ssh_host is empty"), "{diags}");

        let (_, diags) = null_with(r#""ssh_host": "h", "ssh_username": "u""#);
        assert!(
            diags.contains("ssh_password, ssh_private_key_file or ssh_agent_auth is required"),
            "{diags}"
        );

        let (_, diags) = null_with(
            r#""ssh_host": "h", "ssh_username": "u", "ssh_password": "x", "ssh_agent_auth": true"#,
        );
        assert!(
            diags.contains("ssh_agent_auth and ssh_password cannot be given together"),
            "{diags}"
        );
    }

    #[test]
    fn temporary_key_settings_are_said_to_do_nothing() {
        let (c, diags) = null_with(
            r#""ssh_host": "h", "ssh_username": "u", "ssh_password": "x", "temporary_key_pair_type": "ed25519""#,
        );
        assert!(c.is_some(), "{diags}");
        assert!(
            diags.contains("`temporary_key_pair_type` has no effect"),
            "{diags}"
        );
    }
}
