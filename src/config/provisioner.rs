//! Provisioners: `shell` (over the communicator), `file`, `shell-local`,
//! and the keys every provisioner has (`only`, `except`, `override`,
//! `pause_before`, `timeout`, `max_retries`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::build_values::BUILD_VALUES;
use super::decode::{Deferred, Fields};
pub use super::env_vars::EnvVar;
use super::env_vars::{env_map, key_value_templates};
use super::local_path::resolve_local_path;
use crate::template::json::Value;

fn with_build_values(extra: &[&'static str]) -> Vec<&'static str> {
    extra.iter().chain(BUILD_VALUES).copied().collect()
}

#[derive(Debug, Clone)]
pub enum ShellSource {
    /// Rendered as the provisioner runs, with the build's values.
    Inline(Vec<Deferred>),
    Scripts(Vec<PathBuf>),
}

#[derive(Debug, Clone)]
pub struct ShellConfig {
    pub source: ShellSource,
    pub environment_vars: Vec<EnvVar>,
    /// `env`: rendered as the provisioner runs; wins over
    /// `environment_vars` for the same name.
    pub env: BTreeMap<String, Deferred>,
    pub env_var_format: Option<String>,
    pub use_env_var_file: bool,
    pub execute_command: Deferred,
    pub inline_shebang: String,
    pub remote_folder: String,
    pub remote_file: Option<String>,
    pub remote_path: Option<String>,
    pub valid_exit_codes: Vec<i64>,
    pub expect_disconnect: bool,
    pub start_retry_timeout: Duration,
    pub pause_after: Duration,
    pub skip_clean: bool,
    pub binary: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

/// What the `file` provisioner copies; rendered as it runs, with the
/// build's values.
#[derive(Debug, Clone)]
pub enum FileSource {
    /// `source` / `sources`: local paths to upload, or guest paths to
    /// download.
    Paths(Vec<Deferred>),
    /// `content`: the text itself, uploaded to `destination` (as
    /// `pkr-file-content` in it when it ends in `/`).
    Content(Deferred),
}

#[derive(Debug, Clone)]
pub struct FileConfig {
    pub source: FileSource,
    /// Rendered as the provisioner runs, with the build's values.
    pub destination: Deferred,
    pub direction: Direction,
    pub generated: bool,
}

#[derive(Debug, Clone)]
pub struct ShellLocalConfig {
    pub source: ShellSource,
    pub execute_command: Vec<Deferred>,
    pub environment_vars: Vec<EnvVar>,
    /// `env`: rendered as it runs; wins over `environment_vars` for the
    /// same name.
    pub env: BTreeMap<String, Deferred>,
    pub env_var_format: Option<String>,
    pub inline_shebang: String,
    pub only_on: Vec<String>,
    pub tempfile_extension: Option<String>,
    pub use_linux_pathing: bool,
    pub valid_exit_codes: Vec<i64>,
}

#[derive(Debug, Clone)]
pub enum ProvisionerKind {
    Shell(ShellConfig),
    File(FileConfig),
    ShellLocal(ShellLocalConfig),
    Breakpoint(super::breakpoint::BreakpointConfig),
    ChefSolo(Box<super::chef_solo::ChefSoloConfig>),
    SaltMasterless(Box<super::salt_masterless::SaltMasterlessConfig>),
    Ansible(super::ansible::AnsibleConfig),
    AnsibleLocal(super::ansible::AnsibleLocalConfig),
}

/// A provisioner as it runs for one build (its `override` applied).
#[derive(Debug, Clone)]
pub struct Provisioner {
    pub path: String,
    pub type_name: String,
    pub pause_before: Duration,
    pub timeout: Option<Duration>,
    pub max_retries: u32,
    pub kind: ProvisionerKind,
}

pub const PROVISIONER_TYPES: &[&str] = &[
    "shell",
    "file",
    "shell-local",
    "breakpoint",
    "chef-solo",
    "salt-masterless",
    "ansible",
    "ansible-local",
];

/// The keys every provisioner has; decoded by the planner, not the plugin.
pub const COMMON_KEYS: &[&str] = &[
    "type",
    "only",
    "except",
    "override",
    "pause_before",
    "timeout",
    "max_retries",
];

impl ProvisionerKind {
    /// Decodes the plugin's own keys (the common ones are skipped).
    pub fn decode(type_name: &str, f: &mut Fields<'_>) -> Option<Self> {
        f.skip(&[
            "type",
            "only",
            "except",
            "override",
            "pause_before",
            "timeout",
            "max_retries",
        ]);
        match type_name {
            "shell" => decode_shell(f).map(Self::Shell),
            "file" => decode_file(f).map(Self::File),
            "shell-local" => decode_shell_local(f).map(Self::ShellLocal),
            "breakpoint" => super::breakpoint::decode_breakpoint(f).map(Self::Breakpoint),
            "chef-solo" => super::chef_solo::decode_chef_solo(f)
                .map(Box::new)
                .map(Self::ChefSolo),
            "salt-masterless" => super::salt_masterless::decode_salt_masterless(f)
                .map(Box::new)
                .map(Self::SaltMasterless),
            "ansible" => super::ansible::decode_ansible(f).map(Self::Ansible),
            "ansible-local" => super::ansible::decode_ansible_local(f).map(Self::AnsibleLocal),
            _ => None,
        }
    }
}

/// `inline` / `script` / `scripts`: exactly one, scripts must exist.
fn decode_source(f: &mut Fields<'_>, allow_command: bool) -> Option<ShellSource> {
    let command = if allow_command {
        f.renamed("command", "inline")
            .and_then(|node| f.run_time_string("command", node))
            .map(|(line, _)| line)
    } else {
        None
    };
    let inline = f
        .run_time_templates("inline")
        .filter(|l| !l.is_empty())
        .or(command.map(|c| vec![c]));
    let script = f.string("script").filter(|s| !s.is_empty());
    let scripts = f.string_list("scripts").filter(|l| !l.is_empty());
    let given = [inline.is_some(), script.is_some(), scripts.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if given == 0 {
        f.error("one of inline, script or scripts is required").hint =
            Some("e.g. \"inline\": [\"echo hello\"] or \"script\": \"scripts/setup.sh\"".into());
        return None;
    }
    if given > 1 {
        f.error("only one of inline, script or scripts may be given");
        return None;
    }
    if let Some(lines) = inline {
        return Some(ShellSource::Inline(lines));
    }
    let key = if script.is_some() {
        "script"
    } else {
        "scripts"
    };
    let names: Vec<String> = script.map(|s| vec![s]).or(scripts).unwrap_or_default();
    let mut paths = Vec::new();
    for name in names {
        let path = resolve_local_path(f, &name);
        // Packer only stats a script: `/dev/null` (a default for "no
        // customisation" in real templates) is an empty script.
        if path.is_dir() {
            let span = f.span_of(key).unwrap_or_default();
            f.error_at(
                span,
                format!("{key}: `{name}` is a directory, not a script"),
            )
            .hint = Some(
                "name the script files, or use the file provisioner to upload a directory".into(),
            );
        } else if !path.exists() {
            let span = f.span_of(key).unwrap_or_default();
            f.error_at(
                span,
                format!(
                    "{key}: `{name}` does not exist (looked in {})",
                    path.display()
                ),
            )
            .hint = (!std::path::Path::new(&name).is_absolute())
                .then(|| "script paths are relative to the directory kiln runs in".into());
        }
        paths.push(path);
    }
    Some(ShellSource::Scripts(paths))
}

fn exit_codes(f: &mut Fields<'_>) -> Vec<i64> {
    let Some(list) = f.string_list("valid_exit_codes") else {
        return vec![0];
    };
    let mut out = Vec::new();
    for code in list {
        match code.trim().parse() {
            Ok(n) => out.push(n),
            Err(_) => {
                let span = f.span_of("valid_exit_codes").unwrap_or_default();
                f.error_at(span, format!("valid_exit_codes: `{code}` is not a number"));
            }
        }
    }
    out
}

fn decode_shell(f: &mut Fields<'_>) -> Option<ShellConfig> {
    let source = decode_source(f, false);
    let environment_vars =
        key_value_templates(f, "environment_vars", "DEBIAN_FRONTEND=noninteractive");
    let env = env_map(f, "env");
    let env_var_format = f.string("env_var_format").filter(|s| !s.is_empty());
    let use_env_var_file = f.bool("use_env_var_file").unwrap_or(false);
    let fields = with_build_values(&["Vars", "Path", "EnvVarFile"]);
    let execute_command = f.deferred("execute_command", &fields).or_else(|| {
        let default = if use_env_var_file {
            "chmod +x {{.Path}}; . {{.EnvVarFile}} && {{.Path}}"
        } else {
            "chmod +x {{.Path}}; {{.Vars}} {{.Path}}"
        };
        crate::template::interp::parse(default)
            .ok()
            .map(|template| Deferred {
                template,
                span: Default::default(),
            })
    });
    let inline_shebang = f
        .string("inline_shebang")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh -e".into());
    let remote_folder = f
        .string("remote_folder")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/tmp".into());
    let remote_file = f.string("remote_file").filter(|s| !s.is_empty());
    let remote_path = f.string("remote_path").filter(|s| !s.is_empty());
    let valid_exit_codes = exit_codes(f);
    let expect_disconnect = f.bool("expect_disconnect").unwrap_or(false);
    let start_retry_timeout = f
        .duration("start_retry_timeout")
        .unwrap_or(Duration::from_secs(300));
    let pause_after = f.duration("pause_after").unwrap_or_default();
    let skip_clean = f.bool("skip_clean").unwrap_or(false);
    let binary = f.bool("binary").unwrap_or(false);
    Some(ShellConfig {
        source: source?,
        environment_vars,
        env,
        env_var_format,
        use_env_var_file,
        execute_command: execute_command?,
        inline_shebang,
        remote_folder,
        remote_file,
        remote_path,
        valid_exit_codes,
        expect_disconnect,
        start_retry_timeout,
        pause_after,
        skip_clean,
        binary,
    })
}

fn decode_file(f: &mut Fields<'_>) -> Option<FileConfig> {
    let source = f
        .raw("source")
        .and_then(|node| f.run_time_string("source", node))
        .filter(|(_, s)| !s.is_empty());
    let mut sources = f.run_time_string_list("sources").unwrap_or_default();
    let content_node = f.raw("content");
    let content = content_node.and_then(|node| f.run_time_string("content", node));
    // One that does not render is reported already; empty is not given, as
    // in Packer.
    let content_failed = content.is_none()
        && content_node.is_some_and(|n| !matches!(n.value, Value::Null) && n.as_str() != Some(""));
    let content = content.filter(|(_, s)| !s.is_empty());
    let destination = match f.raw("destination") {
        Some(node) => match f.run_time_string("destination", node) {
            Some((_, text)) if text.is_empty() => {
                f.error_at(node.span, "destination must not be empty");
                None
            }
            other => other,
        },
        None => {
            f.error("destination is required");
            None
        }
    };
    let direction = match f.one_of("direction", &["upload", "download"]).as_deref() {
        Some("download") => Direction::Download,
        _ => Direction::Upload,
    };
    let generated = f.bool("generated").unwrap_or(false);
    if let Some(s) = source {
        sources.insert(0, s);
    }
    if let Some((content, _)) = content {
        return decode_file_content(f, content, !sources.is_empty(), destination, direction);
    }
    if content_failed {
        return None;
    }
    if sources.is_empty() {
        f.error("one of source, sources or content is required")
            .hint =
            Some("e.g. \"source\": \"files/app.conf\" or \"content\": \"key = value\"".into());
        return None;
    }
    if sources.len() > 1 && destination.as_ref().is_some_and(|(_, d)| !d.ends_with('/')) {
        let span = f.span_of("destination").unwrap_or_default();
        f.error_at(
            span,
            "with several sources, destination must be a directory ending in `/`",
        );
    }
    if direction == Direction::Upload && !generated {
        for (_, s) in &sources {
            let path = resolve_local_path(f, s);
            if !path.exists() {
                let key = if f.has("sources") {
                    "sources"
                } else {
                    "source"
                };
                let span = f.span_of(key).unwrap_or_default();
                f.error_at(
                    span,
                    format!("{key}: `{s}` does not exist (looked in {})", path.display()),
                )
                .hint = Some("set \"generated\": true if an earlier step creates it".into());
            }
        }
    }
    Some(FileConfig {
        source: FileSource::Paths(sources.into_iter().map(|(source, _)| source).collect()),
        destination: destination?.0,
        direction,
        generated,
    })
}

/// `content` instead of a file: nothing local to check, but it neither
/// goes with `source`/`sources` nor downloads.
fn decode_file_content(
    f: &mut Fields<'_>,
    content: Deferred,
    has_sources: bool,
    destination: Option<(Deferred, String)>,
    direction: Direction,
) -> Option<FileConfig> {
    let mut ok = true;
    if has_sources {
        let span = f.span_of("content").unwrap_or_default();
        f.error_at(span, "content cannot be given with source or sources")
            .hint = Some("content is the text to upload: remove it, or the source".into());
        ok = false;
    }
    if direction == Direction::Download {
        let span = f.span_of("direction").unwrap_or_default();
        f.error_at(
            span,
            "content is uploaded: it cannot be used with direction `download`",
        )
        .hint = Some("to download a file from the guest, name it in `source`".into());
        ok = false;
    }
    let destination = destination?.0;
    ok.then_some(FileConfig {
        source: FileSource::Content(content),
        destination,
        direction,
        generated: false,
    })
}

pub(crate) fn decode_shell_local(f: &mut Fields<'_>) -> Option<ShellLocalConfig> {
    let source = decode_source(f, true);
    let fields = with_build_values(&["Vars", "Script", "Command"]);
    let execute_command = match f.raw("execute_command") {
        Some(node) => {
            let items: Vec<_> = match node.as_array() {
                Some(items) => items.iter().collect(),
                None => vec![node],
            };
            items
                .iter()
                .filter_map(|n| f.deferred_from("execute_command", n, &fields))
                .collect()
        }
        None => ["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]
            .iter()
            .filter_map(|s| crate::template::interp::parse(s).ok())
            .map(|template| Deferred {
                template,
                span: Default::default(),
            })
            .collect(),
    };
    let environment_vars =
        key_value_templates(f, "environment_vars", "DEBIAN_FRONTEND=noninteractive");
    let env = env_map(f, "env");
    let env_var_format = f.string("env_var_format").filter(|s| !s.is_empty());
    let inline_shebang = f
        .string("inline_shebang")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh -e".into());
    let only_on = f.string_list("only_on").unwrap_or_default();
    for os in &only_on {
        if ![
            "darwin", "freebsd", "linux", "openbsd", "solaris", "windows",
        ]
        .contains(&os.as_str())
        {
            let span = f.span_of("only_on").unwrap_or_default();
            f.error_at(span, format!("only_on: `{os}` is not an OS name (darwin, freebsd, linux, openbsd, solaris, windows)"));
        }
    }
    let tempfile_extension = f.string("tempfile_extension").filter(|s| !s.is_empty());
    let use_linux_pathing = f.bool("use_linux_pathing").unwrap_or(false);
    let valid_exit_codes = exit_codes(f);
    Some(ShellLocalConfig {
        source: source?,
        execute_command,
        environment_vars,
        env,
        env_var_format,
        inline_shebang,
        only_on,
        tempfile_extension,
        use_linux_pathing,
        valid_exit_codes,
    })
}
