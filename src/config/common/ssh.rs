//! The communicator: `communicator` and the `ssh_*` settings, with
//! the temporary key pair and Packer's keys kiln accepts but cannot honour.

use std::path::PathBuf;
use std::time::Duration;

use crate::communicator::ssh::{FileTransfer, KeyPairType, TemporaryKeyPair};
use crate::config::decode::Fields;

/// `temporary_key_pair_type` and `temporary_key_pair_bits`, checked.
fn decode_temporary_key_pair(f: &mut Fields<'_>) -> TemporaryKeyPair {
    let kind = match f
        .one_of(
            "temporary_key_pair_type",
            &["rsa", "ecdsa", "ed25519", "dsa"],
        )
        .as_deref()
    {
        Some("ecdsa") => KeyPairType::Ecdsa,
        Some("ed25519") => KeyPairType::Ed25519,
        Some("dsa") => {
            let span = f.span_of("temporary_key_pair_type").unwrap_or_default();
            f.error_at(span, "temporary_key_pair_type: kiln does not make DSA keys")
                .hint = Some(
                "DSA is deprecated and refused by current SSH servers; use \"ed25519\" or \"rsa\""
                    .into(),
            );
            KeyPairType::Rsa
        }
        _ => KeyPairType::Rsa,
    };
    let bits = f
        .u64("temporary_key_pair_bits")
        .filter(|&b| b != 0)
        .map(|b| u32::try_from(b).unwrap_or(u32::MAX));
    let allowed = match kind {
        KeyPairType::Rsa => bits.is_none_or(|b| (1024..=16384).contains(&b)),
        KeyPairType::Ecdsa => bits.is_none_or(|b| [256, 384, 521].contains(&b)),
        KeyPairType::Ed25519 => true,
    };
    if let (false, Some(b)) = (allowed, bits) {
        let span = f.span_of("temporary_key_pair_bits").unwrap_or_default();
        let expected = match kind {
            KeyPairType::Ecdsa => "256, 384 or 521 for ecdsa",
            _ => "from 1024 to 16384 for rsa (3072 is enough, 4096 is the default)",
        };
        f.error_at(
            span,
            format!("temporary_key_pair_bits: {b} is not a key size kiln can make"),
        )
        .hint = Some(format!("use {expected}"));
    }
    TemporaryKeyPair { kind, bits }
}

#[derive(Debug, Clone)]
pub struct SshConfig {
    pub host: Option<String>,
    pub port: u16,
    pub username: String,
    pub password: Option<String>,
    pub private_key_file: Option<PathBuf>,
    pub timeout: Duration,
    pub handshake_attempts: u32,
    pub pty: bool,
    pub agent_auth: bool,
    pub disable_agent_forwarding: bool,
    pub file_transfer: FileTransfer,
    pub keep_alive_interval: Duration,
    pub read_write_timeout: Option<Duration>,
    pub pause_before_connecting: Duration,
    pub clear_authorized_keys: bool,
    pub temporary_key_pair: TemporaryKeyPair,
}

impl SshConfig {
    /// Whether the build makes a key pair to log in with: the template
    /// gives no password, key file or agent (Packer's rule).
    pub fn needs_temporary_key(&self) -> bool {
        self.password.is_none() && self.private_key_file.is_none() && !self.agent_auth
    }
}

#[derive(Debug, Clone)]
pub enum Communicator {
    Ssh(SshConfig),
    None,
}

impl Communicator {
    pub fn ssh(&self) -> Option<&SshConfig> {
        match self {
            Self::Ssh(s) => Some(s),
            Self::None => None,
        }
    }

    /// `username_required`: false for builders that make their own user (googlecompute).
    pub fn decode(f: &mut Fields<'_>, default_username: Option<&str>) -> Option<Self> {
        let kind = f
            .string("communicator")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "ssh".into());
        let host = f.string("ssh_host").filter(|s| !s.is_empty());
        let port = f.u64_in("ssh_port", 1, 65535).unwrap_or(22) as u16;
        let username_text = f.string("ssh_username");
        let username = username_text.clone().filter(|s| !s.is_empty());
        let password = f.string("ssh_password").filter(|s| !s.is_empty());
        let key_new = f.string("ssh_private_key_file").filter(|s| !s.is_empty());
        let key_old = f.renamed_string("ssh_key_path", "ssh_private_key_file");
        let private_key_file = key_new.or(key_old).map(PathBuf::from);
        let timeout_new = f.duration("ssh_timeout");
        // Packer's SDK: a non-zero `ssh_wait_timeout` wins, even over
        // `ssh_timeout` (templates set both).
        let timeout_old = match f.raw("ssh_wait_timeout") {
            Some(node) => {
                let span = f.span_of("ssh_wait_timeout").unwrap_or(node.span);
                let both = if f.has("ssh_timeout") {
                    "; set with ssh_timeout, it wins, as in Packer"
                } else {
                    ""
                };
                f.compat_at(
                    crate::template::compat::Compat::DeprecatedKey,
                    span,
                    format!("`ssh_wait_timeout` is deprecated: use `ssh_timeout`{both} (`kiln fix` rewrites a JSON template)"),
                );
                f.duration_from("ssh_wait_timeout", node)
            }
            None => None,
        }
        .filter(|d| !d.is_zero());
        let timeout = timeout_old
            .or(timeout_new)
            .unwrap_or(Duration::from_secs(300));
        let handshake_attempts = f.u64("ssh_handshake_attempts").unwrap_or(10) as u32;
        let pty = f.bool("ssh_pty").unwrap_or(false);
        let agent_auth = f.bool("ssh_agent_auth").unwrap_or(false);
        let daf_new = f.bool("ssh_disable_agent_forwarding");
        let daf_old = f.renamed_bool("ssh_disable_agent", "ssh_disable_agent_forwarding");
        let disable_agent_forwarding = daf_new.or(daf_old).unwrap_or(false);
        let file_transfer = match f
            .one_of("ssh_file_transfer_method", &["scp", "sftp"])
            .as_deref()
        {
            Some("sftp") => FileTransfer::Sftp,
            _ => FileTransfer::Scp,
        };
        let keep_alive_interval = f
            .duration("ssh_keep_alive_interval")
            .unwrap_or(Duration::from_secs(5));
        let read_write_timeout = f
            .duration("ssh_read_write_timeout")
            .filter(|d| !d.is_zero());
        let pause_before_connecting = f.duration("pause_before_connecting").unwrap_or_default();
        let clear_authorized_keys = f.bool("ssh_clear_authorized_keys").unwrap_or(false);
        let temporary_key_pair = decode_temporary_key_pair(f);
        warn_unused_ssh_keys(f, read_write_timeout);
        for key in UNSUPPORTED_SSH_KEYS {
            if let Some(span) = f.raw(key).map(|n| n.span) {
                f.error_at(span, format!("`{key}` is not supported by kiln yet"))
                    .hint = Some("remove it; kiln connects directly to the forwarded port".into());
            }
        }
        for key in WINRM_KEYS {
            if let Some(span) = f.raw(key).map(|n| n.span).filter(|_| kind != "winrm") {
                f.error_at(span, format!("`{key}` needs \"communicator\": \"winrm\""));
            }
        }
        match kind.as_str() {
            "ssh" => {}
            "none" => return Some(Self::None),
            "winrm" => {
                let span = f.span_of("communicator").unwrap_or_default();
                f.error_at(
                    span,
                    "the winrm communicator is not supported by kiln yet; use \"ssh\" or \"none\"",
                );
                return None;
            }
            other => {
                let span = f.span_of("communicator").unwrap_or_default();
                f.error_at(
                    span,
                    format!("communicator: `{other}` is not one of ssh, winrm, none"),
                );
                return None;
            }
        }
        let username = match username.or(default_username.map(str::to_owned)) {
            Some(u) => u,
            // Given, but empty once rendered (an unset `{{user `x`}}`).
            None if username_text.is_some() => {
                let span = f.span_of("ssh_username").unwrap_or_default();
                f.error_at(span, "ssh_username is empty").hint = Some(
                    "it must name the user to log in as; if it comes from a variable, set that variable".into(),
                );
                return None;
            }
            None if f.has("ssh_username") => return None,
            None => {
                f.error("ssh_username is required with the ssh communicator")
                    .hint =
                    Some("set \"ssh_username\", or \"communicator\": \"none\" to skip SSH".into());
                return None;
            }
        };
        if let (Some(key), Some(span)) = (
            &private_key_file,
            f.span_of("ssh_private_key_file")
                .or(f.span_of("ssh_key_path")),
        ) {
            let path = if key.is_relative() {
                f.context().pwd().join(key)
            } else {
                key.clone()
            };
            if !path.is_file() {
                f.error_at(
                    span,
                    format!("ssh_private_key_file: {} does not exist", key.display()),
                );
            }
        }
        Some(Self::Ssh(SshConfig {
            host,
            port,
            username,
            password,
            private_key_file,
            timeout,
            handshake_attempts: handshake_attempts.max(1),
            pty,
            agent_auth,
            disable_agent_forwarding,
            file_transfer,
            keep_alive_interval,
            read_write_timeout,
            pause_before_connecting,
            clear_authorized_keys,
            temporary_key_pair,
        }))
    }
}

/// Keys Packer accepts that kiln parses but cannot honour: a warning at
/// the key, never silence.
fn warn_unused_ssh_keys(f: &mut Fields<'_>, read_write_timeout: Option<Duration>) {
    if read_write_timeout.is_some()
        && let Some(span) = f.span_of("ssh_read_write_timeout")
    {
        f.warn_at(
            span,
            "`ssh_read_write_timeout` is not supported by kiln yet and is ignored: use the provisioner's `timeout` to bound a command",
        );
    }
}

const UNSUPPORTED_SSH_KEYS: &[&str] = &[
    "ssh_bastion_host",
    "ssh_bastion_port",
    "ssh_bastion_agent_auth",
    "ssh_bastion_username",
    "ssh_bastion_password",
    "ssh_bastion_interactive",
    "ssh_bastion_private_key_file",
    "ssh_bastion_certificate_file",
    "ssh_proxy_host",
    "ssh_proxy_port",
    "ssh_proxy_username",
    "ssh_proxy_password",
    "ssh_local_tunnels",
    "ssh_remote_tunnels",
    "ssh_certificate_file",
    "ssh_ciphers",
    "ssh_key_exchange_algorithms",
    "ssh_keypair_name",
    "temporary_key_pair_name",
    "ssh_interface",
    "ssh_ip_version",
];

const WINRM_KEYS: &[&str] = &[
    "winrm_username",
    "winrm_password",
    "winrm_host",
    "winrm_port",
    "winrm_timeout",
    "winrm_use_ssl",
    "winrm_insecure",
    "winrm_use_ntlm",
    "winrm_no_proxy",
];

#[cfg(test)]
mod tests {
    use super::super::test_support::qemu_with;
    use crate::communicator::ssh::{FileTransfer, KeyPairType};

    #[test]
    fn ssh_defaults_follow_packer() {
        let (q, diags) = qemu_with("");
        let q = q.expect("decodes");
        let ssh = q.communicator.ssh().expect("ssh by default");
        assert_eq!(ssh.port, 22, "{diags}");
        assert_eq!(ssh.username, "root");
        assert_eq!(ssh.file_transfer, FileTransfer::Scp);
        assert_eq!(ssh.temporary_key_pair.kind, KeyPairType::Rsa);
        assert_eq!(ssh.temporary_key_pair.bits(), 4096);
        assert!(ssh.needs_temporary_key());
    }

    #[test]
    fn dsa_keys_are_refused_with_a_hint() {
        let (_, diags) = qemu_with(r#""temporary_key_pair_type": "dsa""#);
        assert!(diags.contains("kiln does not make DSA keys"), "{diags}");
        assert!(diags.contains("ed25519"), "{diags}");
    }

    #[test]
    fn communicator_none_has_no_ssh() {
        let (q, diags) = qemu_with(r#""communicator": "none""#);
        assert!(q.expect("decodes").communicator.ssh().is_none(), "{diags}");
    }
}
