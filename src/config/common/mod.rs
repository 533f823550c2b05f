//! Configuration blocks shared by several builders, decoded once: the ISO,
//! the HTTP server, the boot command, the communicator and shutdown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::decode::{Deferred, Fields};
use crate::communicator::ssh::{FileTransfer, KeyPairType, TemporaryKeyPair};

/// Template fields `boot_command` can use.
pub const BOOT_COMMAND_FIELDS: &[&str] = &[
    "HTTPIP",
    "HTTPPort",
    "Name",
    "SSHPublicKey",
    "SSHPrivateKey",
];

/// Template fields `http_content` can use: the key pair is made before the
/// server starts (its address is not known yet, so no `.HTTPIP`).
pub const HTTP_CONTENT_FIELDS: &[&str] = &["SSHPublicKey", "SSHPrivateKey"];

#[derive(Debug, Clone)]
pub struct IsoConfig {
    /// Mirrors in the order they are tried.
    pub urls: Vec<String>,
    /// As written (`sha256:…`, `file:…`, `none`, bare hex).
    pub checksum: String,
    pub target_path: Option<PathBuf>,
    pub target_extension: String,
}

impl IsoConfig {
    pub fn decode(f: &mut Fields<'_>) -> Option<Self> {
        let url_text = f.string("iso_url");
        let url = url_text.clone().filter(|s| !s.is_empty());
        let urls = f.string_list("iso_urls").unwrap_or_default();
        let mut checksum = f.string("iso_checksum").unwrap_or_default();
        // Packer < 1.6 split the checksum over three keys.
        // Old keys are rendered like new ones: `{{user `checksum_type`}}` is common.
        let old_type = f.string("iso_checksum_type");
        if let Some(span) = f.span_of("iso_checksum_type") {
            f.compat_at(
                crate::template::compat::Compat::DeprecatedKey,
                span,
                "`iso_checksum_type` is deprecated: put the type in iso_checksum (\"sha256:…\"); `kiln fix` rewrites the template",
            );
        }
        let old_url = f.renamed_string("iso_checksum_url", "iso_checksum");
        // Where a bad type came from, for the caret.
        let mut type_from_old_key = false;
        if checksum.is_empty() {
            match (old_type.as_deref(), old_url) {
                (_, Some(url)) if !url.is_empty() => checksum = format!("file:{url}"),
                (Some("none"), _) => checksum = "none".into(),
                _ => {}
            }
        } else if let Some(t) = old_type
            .as_deref()
            .filter(|t| !t.is_empty() && *t != "none" && !checksum.contains(':'))
        {
            checksum = format!("{t}:{checksum}");
            type_from_old_key = true;
        }
        if let Some(md5) = f.renamed_string("iso_md5", "iso_checksum")
            && checksum.is_empty()
        {
            checksum = format!("md5:{md5}");
        }
        let target_path = f
            .string("iso_target_path")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let target_extension = f
            .string("iso_target_extension")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "iso".into());
        f.obsolete("iso_skip_cache", "kiln always verifies cached ISOs");

        let urls = match (url, urls.is_empty()) {
            (Some(u), true) => vec![u],
            (None, false) => urls,
            (Some(_), false) => {
                let span = f.span_of("iso_urls").unwrap_or_default();
                f.error_at(span, "set either iso_url or iso_urls, not both");
                return None;
            }
            // Given, but empty once rendered (an unset `{{user `x`}}`).
            (None, true) if url_text.is_some() => {
                let span = f.span_of("iso_url").unwrap_or_default();
                f.error_at(span, "iso_url is empty").hint = Some(
                    "it must name the installer ISO; if it comes from a variable, set that variable".into(),
                );
                return None;
            }
            // Present but wrong: that error is already reported.
            (None, true) if f.has("iso_url") || f.has("iso_urls") => return None,
            (None, true) => {
                f.error("iso_url (or iso_urls) is required").hint =
                    Some("\"iso_url\": \"https://…/installer.iso\"".into());
                return None;
            }
        };
        if checksum.is_empty() && f.has("iso_checksum") {
            return None;
        }
        if checksum.is_empty() {
            f.error("iso_checksum is required").hint = Some(
                "give the ISO's digest (\"sha256:…\"), a checksum file (\"file:https://…/SHA256SUMS\"), or \"none\" to skip verification".into(),
            );
            return None;
        }
        match crate::iso::ChecksumSpec::parse(&checksum) {
            Ok(crate::iso::ChecksumSpec::None) => {
                let span = f.span_of("iso_checksum").unwrap_or_default();
                f.warn_at(span, "iso_checksum is \"none\": the ISO will not be verified, and a changed or corrupt download would be used as it is");
            }
            Ok(_) => {}
            Err(e) => {
                let key = if type_from_old_key {
                    "iso_checksum_type"
                } else {
                    "iso_checksum"
                };
                let span = f.span_of(key).unwrap_or_default();
                f.error_at(span, e.to_string());
                return None;
            }
        }
        Some(Self {
            urls,
            checksum,
            target_path,
            target_extension,
        })
    }

    /// What the ISO cache needs. Relative local paths (and `file:` checksum
    /// lists) are taken from the working directory, as in Packer, or from
    /// beside the template when only there.
    pub fn source(
        &self,
        template_dir: &Path,
        pwd: &Path,
    ) -> Result<crate::iso::IsoSource, crate::iso::ChecksumSpecError> {
        let local = |s: &str| -> String {
            if s.contains("://") || Path::new(s).is_absolute() {
                return s.to_owned();
            }
            let from_cwd = pwd.join(s);
            if from_cwd.exists() {
                return from_cwd.display().to_string();
            }
            let beside = template_dir.join(s);
            if beside.exists() {
                beside.display().to_string()
            } else {
                from_cwd.display().to_string()
            }
        };
        let checksum = match self.checksum.strip_prefix("file:") {
            Some(rest) => format!("file:{}", local(rest)),
            None => self.checksum.clone(),
        };
        let mut source = crate::iso::IsoSource::new(
            self.urls.iter().map(|u| local(u)).collect(),
            crate::iso::ChecksumSpec::parse(&checksum)?,
        );
        source.target_path = self.target_path.clone();
        source.target_extension = self.target_extension.clone();
        Ok(source)
    }
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub directory: Option<PathBuf>,
    /// Rendered when the server starts, with [`HTTP_CONTENT_FIELDS`].
    pub content: BTreeMap<String, Deferred>,
    pub port_min: u16,
    pub port_max: u16,
    /// kiln binds loopback by default: guests reach it at 10.0.2.2 through
    /// user networking / NAT, and answer files with passwords stay off the LAN.
    pub bind_address: String,
}

impl HttpConfig {
    pub fn decode(f: &mut Fields<'_>) -> Self {
        let directory = f
            .string("http_directory")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let content = f
            .deferred_map("http_content", HTTP_CONTENT_FIELDS)
            .unwrap_or_default();
        let port_min = f.u64_in("http_port_min", 1, 65535).unwrap_or(8000) as u16;
        let port_max = f.u64_in("http_port_max", 1, 65535).unwrap_or(9000) as u16;
        let bind_address = f
            .string("http_bind_address")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "127.0.0.1".into());
        if port_min > port_max {
            let span = f.span_of("http_port_min").unwrap_or_default();
            f.error_at(
                span,
                format!("http_port_min ({port_min}) is greater than http_port_max ({port_max})"),
            );
        }
        if directory.is_some() && !content.is_empty() {
            let span = f.span_of("http_content").unwrap_or_default();
            f.error_at(span, "set either http_directory or http_content, not both");
        }
        // The server refuses such paths, so the guest would only get a 404.
        for key in content.keys() {
            let unservable = key
                .split('/')
                .any(|s| s == "." || s == ".." || s.contains(['\0', '\\']));
            if unservable {
                let span = f.span_of("http_content").unwrap_or_default();
                f.error_at(
                    span,
                    format!(
                        "http_content: {key:?} cannot be served (`.`, `..` and `\\` are refused); name it like a URL path, e.g. \"/preseed.cfg\""
                    ),
                );
            }
        }
        if bind_address.parse::<std::net::IpAddr>().is_err() {
            let span = f.span_of("http_bind_address").unwrap_or_default();
            f.error_at(
                span,
                format!("http_bind_address: `{bind_address}` is not an IP address"),
            );
        }
        Self {
            directory,
            content,
            port_min,
            port_max,
            bind_address,
        }
    }
}

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
        let timeout_old = f
            .renamed("ssh_wait_timeout", "ssh_timeout")
            .and_then(|n| f.duration_from("ssh_wait_timeout", n));
        let timeout = timeout_new
            .or(timeout_old)
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
                f.context().pwd.join(key)
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

/// The extra media some installers read their answers from: a CD
/// (`cd_files`, `cd_content`, `cd_label`) and a floppy (`floppy_files`,
/// `floppy_dirs`, `floppy_content`, `floppy_label`).
#[derive(Debug, Clone, Default)]
pub struct MediaConfig {
    pub cd: crate::media::cd::CdSpec,
    pub floppy: crate::media::floppy::FloppySpec,
}

impl MediaConfig {
    pub fn decode(f: &mut Fields<'_>) -> Self {
        let cd = crate::media::cd::CdSpec {
            files: f.string_list("cd_files").unwrap_or_default(),
            content: f.string_map("cd_content").unwrap_or_default(),
            label: f.string("cd_label").filter(|s| !s.is_empty()),
        };
        let floppy = crate::media::floppy::FloppySpec {
            files: f.string_list("floppy_files").unwrap_or_default(),
            dirs: f.string_list("floppy_dirs").unwrap_or_default(),
            content: f.string_map("floppy_content").unwrap_or_default(),
            label: f.string("floppy_label").filter(|s| !s.is_empty()),
        };
        validate_floppy(f, &floppy);
        Self { cd, floppy }
    }
}

/// Checks what the floppy would hold now, without making it, so a
/// missing answer file or a floppy too small is reported with its place
/// in the template instead of failing (or hanging) the build later.
fn validate_floppy(f: &mut Fields<'_>, spec: &crate::media::floppy::FloppySpec) {
    use crate::media::floppy::{self, FloppyError};
    if let Some(problem) = spec.label.as_deref().and_then(floppy::label_problem) {
        let span = f.span_of("floppy_label").unwrap_or_default();
        f.error_at(span, format!("floppy_label: {problem}"));
    }
    if spec.is_empty() {
        return;
    }
    let cancel = tokio_util::sync::CancellationToken::new();
    let ctx = f.context();
    // As the build does: the working directory, then beside the template.
    let planned = floppy::plan(spec, ctx.pwd, &cancel).or_else(|first| match first {
        FloppyError::NoMatch { .. } if ctx.template.dir != ctx.pwd => {
            floppy::plan(spec, &ctx.template.dir, &cancel).map_err(|_| first)
        }
        other => Err(other),
    });
    let present = ["floppy_files", "floppy_dirs", "floppy_content"]
        .into_iter()
        .find(|k| f.has(k))
        .unwrap_or("floppy_files");
    let error = match planned.map(|entries| floppy::space_needed(&entries)) {
        Ok(Ok(needed)) if needed > floppy::DATA_BYTES => FloppyError::TooBig { needed },
        Ok(Ok(_)) => return,
        Ok(Err(e)) | Err(e) => e,
    };
    let key = error.key().unwrap_or(present);
    let message = match error {
        // The build's message names the folder it read; here both were.
        FloppyError::NoMatch { key, entry, .. } => format!(
            "{key}: {entry:?} matches nothing in the working directory or beside the template"
        ),
        other => other.to_string(),
    };
    let span = f.span_of(key).unwrap_or_default();
    f.error_at(span, message);
}

/// `output_directory`, defaulting to `output-<build name>` as in Packer.
pub fn output_directory(f: &mut Fields<'_>) -> PathBuf {
    let default = format!("output-{}", f.context().build_name.unwrap_or("build"));
    PathBuf::from(
        f.string("output_directory")
            .filter(|s| !s.is_empty())
            .unwrap_or(default),
    )
}

/// The host side of the SSH forward (`host_port_min`/`max`,
/// `skip_nat_mapping`), with Packer's old `ssh_host_port_*` spellings.
#[derive(Debug, Clone, Copy)]
pub struct HostPortConfig {
    pub min: u16,
    pub max: u16,
    pub skip_nat_mapping: bool,
}

impl HostPortConfig {
    pub fn decode(f: &mut Fields<'_>) -> Self {
        let old_min = f.renamed_u64_in("ssh_host_port_min", "host_port_min", 1, 65535);
        let old_max = f.renamed_u64_in("ssh_host_port_max", "host_port_max", 1, 65535);
        let min = f
            .u64_in("host_port_min", 1, 65535)
            .or(old_min)
            .unwrap_or(2222) as u16;
        let max = f
            .u64_in("host_port_max", 1, 65535)
            .or(old_max)
            .unwrap_or(4444) as u16;
        let skip_nat_mapping = f.bool("skip_nat_mapping").unwrap_or(false);
        if min > max {
            let span = f.span_of("host_port_min").unwrap_or_default();
            f.error_at(
                span,
                format!("host_port_min ({min}) is greater than host_port_max ({max})"),
            );
        }
        Self {
            min,
            max,
            skip_nat_mapping,
        }
    }
}
