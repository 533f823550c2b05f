//! Configuration of the `ansible` (on the host, against the guest) and
//! `ansible-local` (inside the guest) provisioners: Packer's keys, its
//! defaults, and the checks that need no guest (files exist, keys agree).

use std::path::PathBuf;

use super::decode::{Deferred, Fields};
use super::env_vars::{EnvVar, key_value_templates};
use super::local_path::resolve_local_path;

/// What `inventory_file_template` may use, as in Packer.
pub const INVENTORY_TEMPLATE_FIELDS: &[&str] = &["HostAlias", "Host", "User", "Port"];

#[derive(Debug, Clone)]
pub struct AnsibleConfig {
    /// `command`: the program that runs the playbook (`ansible-playbook`,
    /// found on PATH when it has no slash).
    pub command: String,
    pub playbook_file: PathBuf,
    /// Rendered when the provisioner runs, as Packer does: they may use
    /// `{{ build `Host` }}` and the other build values (HCL2: `build.Host`).
    pub extra_arguments: Vec<Deferred>,
    /// `KEY=value` entries, rendered when the provisioner runs.
    pub ansible_env_vars: Vec<EnvVar>,
    pub groups: Vec<String>,
    pub empty_groups: Vec<String>,
    pub host_alias: String,
    /// `user`: who ansible logs in as; the communicator's user when absent.
    pub user: Option<String>,
    /// `inventory_file`: the user's own inventory; kiln writes none then.
    pub inventory_file: Option<PathBuf>,
    pub inventory_directory: Option<PathBuf>,
    pub inventory_file_template: Option<Deferred>,
    pub keep_inventory_file: bool,
    pub galaxy_file: Option<PathBuf>,
    pub galaxy_command: String,
    pub galaxy_force_install: bool,
    pub roles_path: Option<String>,
    pub collections_path: Option<String>,
    pub ansible_ssh_extra_args: Vec<String>,
    pub use_sftp: bool,
    pub skip_version_check: bool,
}

#[derive(Debug, Clone)]
pub struct AnsibleLocalConfig {
    /// `command`: Packer's default sets the colour and unbuffered output.
    pub command: String,
    pub playbook_files: Vec<PathBuf>,
    pub playbook_dir: Option<PathBuf>,
    pub playbook_paths: Vec<PathBuf>,
    pub role_paths: Vec<PathBuf>,
    pub group_vars: Option<PathBuf>,
    pub host_vars: Option<PathBuf>,
    pub galaxy_file: Option<PathBuf>,
    pub galaxy_command: String,
    pub inventory_file: Option<PathBuf>,
    pub inventory_groups: Vec<String>,
    /// Rendered when the provisioner runs (build values), as for `ansible`.
    pub extra_arguments: Vec<Deferred>,
    /// `staging_directory`; Packer's default has a fresh UUID in it.
    pub staging_directory: String,
    pub clean_staging_directory: bool,
}

/// Keys that only mean something to Packer's SSH proxy adapter, which kiln
/// does not run (it connects ansible straight to the forwarded SSH port).
const PROXY_ONLY_KEYS: &[&str] = &[
    "local_port",
    "sftp_command",
    "ssh_host_key_file",
    "ssh_authorized_key_file",
    "adapter_key_type",
];

/// A local file that must exist (a playbook, a galaxy file, an inventory).
fn existing_file(f: &mut Fields<'_>, key: &'static str, want_dir: bool) -> Option<PathBuf> {
    let name = f.string(key).filter(|s| !s.is_empty())?;
    Some(checked_path(f, key, &name, want_dir))
}

fn existing_files(f: &mut Fields<'_>, key: &'static str, want_dir: bool) -> Vec<PathBuf> {
    let names = f.string_list(key).unwrap_or_default();
    names
        .into_iter()
        .filter(|n| !n.is_empty())
        .map(|name| checked_path(f, key, &name, want_dir))
        .collect()
}

/// `name` resolved, with an error at `key` when it is not a file (or a
/// directory, with `want_dir`).
fn checked_path(f: &mut Fields<'_>, key: &'static str, name: &str, want_dir: bool) -> PathBuf {
    let path = resolve_local_path(f, name);
    let ok = if want_dir {
        path.is_dir()
    } else {
        path.is_file()
    };
    if !ok {
        let span = f.span_of(key).unwrap_or_default();
        let what = if want_dir { "directory" } else { "file" };
        f.error_at(
            span,
            format!(
                "{key}: the {what} `{name}` does not exist (looked in {})",
                path.display()
            ),
        )
        .hint = (!std::path::Path::new(name).is_absolute())
            .then(|| "paths are relative to the directory kiln runs in".into());
    }
    path
}

/// Group names become INI section headers: no brackets, no spaces.
fn group_names(f: &mut Fields<'_>, key: &'static str) -> Vec<String> {
    let groups = f.string_list(key).unwrap_or_default();
    for g in &groups {
        if g.is_empty() || g.contains(|c: char| c.is_whitespace() || c == '[' || c == ']') {
            let span = f.span_of(key).unwrap_or_default();
            f.error_at(
                span,
                format!("{key}: `{g}` is not a group name (no spaces or brackets)"),
            );
        }
    }
    groups
}

pub(crate) fn decode_ansible(f: &mut Fields<'_>) -> Option<AnsibleConfig> {
    let command = f
        .string("command")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "ansible-playbook".into());
    let playbook_file = match existing_file(f, "playbook_file", false) {
        Some(p) => Some(p),
        None if f.has("playbook_file") => None,
        None => {
            f.error("playbook_file is required").hint =
                Some("e.g. \"playbook_file\": \"./playbook.yml\"".into());
            None
        }
    };
    let extra_arguments = f.run_time_templates("extra_arguments").unwrap_or_default();
    let ansible_env_vars = key_value_templates(f, "ansible_env_vars", "ANSIBLE_NOCOLOR=True");
    let groups = group_names(f, "groups");
    let empty_groups = group_names(f, "empty_groups");
    let host_alias = f
        .string("host_alias")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into());
    let user = f.string("user").filter(|s| !s.is_empty());
    let inventory_file = existing_file(f, "inventory_file", false);
    let inventory_directory = existing_file(f, "inventory_directory", true);
    let inventory_file_template = f.deferred("inventory_file_template", INVENTORY_TEMPLATE_FIELDS);
    let keep_inventory_file = f.bool("keep_inventory_file").unwrap_or(false);
    let galaxy_file = existing_file(f, "galaxy_file", false);
    let galaxy_command = f
        .string("galaxy_command")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "ansible-galaxy".into());
    let galaxy_force_install = f.bool("galaxy_force_install").unwrap_or(false);
    let roles_path = f.string("roles_path").filter(|s| !s.is_empty());
    let collections_path = f.string("collections_path").filter(|s| !s.is_empty());
    let ansible_ssh_extra_args = f.string_list("ansible_ssh_extra_args").unwrap_or_default();
    let use_sftp = f.bool("use_sftp").unwrap_or(false);
    let skip_version_check = f.bool("skip_version_check").unwrap_or(false);
    if f.bool("use_proxy") == Some(true) {
        let span = f.span_of("use_proxy").unwrap_or_default();
        f.error_at(
            span,
            "use_proxy: kiln does not run Packer's SSH proxy adapter; ansible connects straight to the guest's forwarded SSH port",
        )
        .hint = Some(
            "remove \"use_proxy\" (or set it to false): the guest is reachable on 127.0.0.1 at the forwarded port".into(),
        );
    }
    for key in PROXY_ONLY_KEYS {
        if f.raw(key).is_some() {
            let span = f.span_of(key).unwrap_or_default();
            f.warn_at(
                span,
                format!("{key} is ignored: it configures Packer's SSH proxy adapter, and kiln connects ansible to the guest directly"),
            );
        }
    }
    if inventory_file.is_some() && inventory_file_template.is_some() {
        let span = f.span_of("inventory_file_template").unwrap_or_default();
        f.error_at(
            span,
            "inventory_file_template is not used when inventory_file is given",
        )
        .hint = Some("give one of inventory_file and inventory_file_template".into());
    }
    if inventory_file.is_some() && (!groups.is_empty() || !empty_groups.is_empty()) {
        let key = if groups.is_empty() {
            "empty_groups"
        } else {
            "groups"
        };
        let span = f.span_of(key).unwrap_or_default();
        f.error_at(
            span,
            format!("{key} only applies to the inventory kiln writes, and inventory_file is given"),
        );
    }
    Some(AnsibleConfig {
        command,
        playbook_file: playbook_file?,
        extra_arguments,
        ansible_env_vars,
        groups,
        empty_groups,
        host_alias,
        user,
        inventory_file,
        inventory_directory,
        inventory_file_template,
        keep_inventory_file,
        galaxy_file,
        galaxy_command,
        galaxy_force_install,
        roles_path,
        collections_path,
        ansible_ssh_extra_args,
        use_sftp,
        skip_version_check,
    })
}

pub(crate) fn decode_ansible_local(f: &mut Fields<'_>) -> Option<AnsibleLocalConfig> {
    let command = f
        .string("command")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "ANSIBLE_FORCE_COLOR=1 PYTHONUNBUFFERED=1 ansible-playbook".into());
    let playbook_file = existing_file(f, "playbook_file", false);
    let mut playbook_files = existing_files(f, "playbook_files", false);
    let given_both = playbook_file.is_some() && !playbook_files.is_empty();
    if let Some(p) = playbook_file {
        playbook_files.insert(0, p);
    }
    if given_both {
        let span = f.span_of("playbook_files").unwrap_or_default();
        f.error_at(span, "give playbook_file or playbook_files, not both");
    }
    if playbook_files.is_empty() && !f.has("playbook_file") && !f.has("playbook_files") {
        f.error("playbook_file (or playbook_files) is required")
            .hint = Some("e.g. \"playbook_file\": \"./playbook.yml\"".into());
    }
    let playbook_dir = existing_file(f, "playbook_dir", true);
    let playbook_paths = existing_files(f, "playbook_paths", true);
    let role_paths = existing_files(f, "role_paths", true);
    let group_vars = existing_file(f, "group_vars", true);
    let host_vars = existing_file(f, "host_vars", true);
    let galaxy_file = existing_file(f, "galaxy_file", false);
    let galaxy_command = f
        .string("galaxy_command")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "ansible-galaxy".into());
    let inventory_file = existing_file(f, "inventory_file", false);
    let inventory_groups = group_names(f, "inventory_groups");
    let extra_arguments = f.run_time_templates("extra_arguments").unwrap_or_default();
    let staging_directory = f
        .string("staging_directory")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            format!(
                "/tmp/packer-provisioner-ansible-local/{}",
                uuid::Uuid::new_v4()
            )
        });
    let clean_staging_directory = f.bool("clean_staging_directory").unwrap_or(false);
    if inventory_file.is_some() && !inventory_groups.is_empty() {
        let span = f.span_of("inventory_groups").unwrap_or_default();
        f.error_at(
            span,
            "inventory_groups only applies to the inventory kiln writes, and inventory_file is given",
        );
    }
    if playbook_files.is_empty() {
        return None;
    }
    Some(AnsibleLocalConfig {
        command,
        playbook_files,
        playbook_dir,
        playbook_paths,
        role_paths,
        group_vars,
        host_vars,
        galaxy_file,
        galaxy_command,
        inventory_file,
        inventory_groups,
        extra_arguments,
        staging_directory,
        clean_staging_directory,
    })
}
