//! The `chef-solo` provisioner's keys, with Packer's defaults: cookbooks,
//! roles, data bags and environments uploaded under `staging_directory`,
//! a `solo.rb` from `config_template` (or Packer's default) and a
//! `node.json` from `json` plus `run_list`.

use std::path::PathBuf;

use super::decode::{Deferred, Fields};
use super::local_path::{self, Kind};
use crate::template::json::{Node, Value};

/// Packer's default `execute_command` (Unix guests).
pub const DEFAULT_EXECUTE_COMMAND: &str =
    "{{if .Sudo}}sudo {{end}}chef-solo --no-color -c {{.ConfigPath}} -j {{.JsonPath}}";
/// Packer's default `install_command`: Chef's omnitruck installer.
pub const DEFAULT_INSTALL_COMMAND: &str = "curl -L https://omnitruck.chef.io/install.sh | {{if .Sudo}}sudo {{end}}bash -s --{{if .Version}} -v {{.Version}}{{end}}";
pub const DEFAULT_STAGING_DIRECTORY: &str = "/tmp/packer-chef-solo";

/// The `{{ .Field }}`s a `config_template` can use, as in Packer.
pub const CONFIG_TEMPLATE_FIELDS: &[&str] = &[
    "CookbookPaths",
    "DataBagsPath",
    "EncryptedDataBagSecretPath",
    "RolesPath",
    "EnvironmentsPath",
    "ChefEnvironment",
    "ChefLicense",
    "HasDataBagsPath",
    "HasEncryptedDataBagSecretPath",
    "HasRolesPath",
    "HasEnvironmentsPath",
];
const EXECUTE_FIELDS: &[&str] = &["ConfigPath", "JsonPath", "Sudo"];
const INSTALL_FIELDS: &[&str] = &["Sudo", "Version"];

/// Packer's default `solo.rb` template, the same lines in the same order.
pub const DEFAULT_CONFIG_TEMPLATE: &str = r#"
chef_license 		"{{.ChefLicense}}"
cookbook_path 	[{{.CookbookPaths}}]
{{if .HasRolesPath}}
role_path		"{{.RolesPath}}"
{{end}}
{{if .HasDataBagsPath}}
data_bag_path	"{{.DataBagsPath}}"
{{end}}
{{if .HasEncryptedDataBagSecretPath}}
encrypted_data_bag_secret "{{.EncryptedDataBagSecretPath}}"
{{end}}
{{if .HasEnvironmentsPath}}
environment_path "{{.EnvironmentsPath}}"
environment "{{.ChefEnvironment}}"
{{end}}
"#;

#[derive(Debug, Clone)]
pub struct ChefSoloConfig {
    pub cookbook_paths: Vec<PathBuf>,
    pub remote_cookbook_paths: Vec<String>,
    pub run_list: Vec<String>,
    /// Node attributes, user variables already rendered.
    pub json: serde_json::Map<String, serde_json::Value>,
    pub roles_path: Option<PathBuf>,
    pub data_bags_path: Option<PathBuf>,
    pub encrypted_data_bag_secret_path: Option<PathBuf>,
    pub environments_path: Option<PathBuf>,
    pub chef_environment: String,
    pub chef_license: String,
    /// The `solo.rb` template's text: `config_template`'s file, read at
    /// validation, or Packer's default.
    pub config_template: String,
    pub execute_command: Deferred,
    pub install_command: Deferred,
    pub skip_install: bool,
    pub prevent_sudo: bool,
    pub staging_directory: String,
    pub version: String,
}

fn default_deferred(text: &str) -> Option<Deferred> {
    crate::template::interp::parse(text)
        .ok()
        .map(|template| Deferred {
            template,
            span: Default::default(),
        })
}

/// `json`: any JSON object; strings are interpolated (user variables),
/// as Packer does before writing `node.json`.
fn node_attributes(f: &mut Fields<'_>) -> serde_json::Map<String, serde_json::Value> {
    let Some(node) = f.raw("json") else {
        return serde_json::Map::new();
    };
    match to_json(f, node) {
        Some(serde_json::Value::Object(map)) => map,
        Some(serde_json::Value::Null) | None => serde_json::Map::new(),
        Some(_) => {
            f.error_at(
                node.span,
                format!(
                    "json: expected an object of node attributes, found {}",
                    node.kind()
                ),
            )
            .hint = Some("e.g. \"json\": {\"app\": {\"port\": 80}}".into());
            serde_json::Map::new()
        }
    }
}

fn to_json(f: &mut Fields<'_>, node: &Node) -> Option<serde_json::Value> {
    Some(match &node.value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => serde_json::from_str(n).unwrap_or(serde_json::Value::String(n.clone())),
        Value::String(_) => serde_json::Value::String(f.render_node("json", node)?),
        Value::Array(items) => {
            serde_json::Value::Array(items.iter().filter_map(|i| to_json(f, i)).collect())
        }
        Value::Object(members) => serde_json::Value::Object(
            members
                .iter()
                .filter_map(|m| Some((m.key.clone(), to_json(f, &m.value)?)))
                .collect(),
        ),
    })
}

/// `config_template`: read now so a missing file or an unknown field is a
/// validation error with its place, not a failure halfway through a build.
fn config_template(f: &mut Fields<'_>) -> String {
    let Some(path) = local_path::optional(f, "config_template", Kind::File) else {
        return DEFAULT_CONFIG_TEMPLATE.to_owned();
    };
    let span = f.span_of("config_template").unwrap_or_default();
    let Ok(text) = std::fs::read_to_string(&path) else {
        // `optional` has reported a missing file; one left is unreadable.
        if path.is_file() {
            f.error_at(
                span,
                format!("config_template: cannot read {}", path.display()),
            );
        }
        return DEFAULT_CONFIG_TEMPLATE.to_owned();
    };
    match crate::template::interp::parse(&text) {
        Ok(parsed) => {
            for (field, _) in parsed.data_fields() {
                if !CONFIG_TEMPLATE_FIELDS.contains(&field.as_str()) {
                    f.error_at(
                        span,
                        format!(
                            "config_template: {} uses `{{{{ .{field} }}}}`, which is not available",
                            path.display()
                        ),
                    )
                    .hint = Some(format!(
                        "a chef-solo config template can use {}",
                        CONFIG_TEMPLATE_FIELDS.join(", ")
                    ));
                }
            }
        }
        Err(e) => {
            f.error_at(span, format!("config_template: {}: {e}", path.display()));
        }
    }
    text
}

pub(crate) fn decode_chef_solo(f: &mut Fields<'_>) -> Option<ChefSoloConfig> {
    local_path::unix_guest_only(f);
    let cookbook_paths = f
        .string_list("cookbook_paths")
        .unwrap_or_default()
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| local_path::checked(f, "cookbook_paths", p, Kind::Dir))
        .collect();
    let remote_cookbook_paths = f.string_list("remote_cookbook_paths").unwrap_or_default();
    let run_list = f.string_list("run_list").unwrap_or_default();
    let json = node_attributes(f);
    let roles_path = local_path::optional(f, "roles_path", Kind::Dir);
    let data_bags_path = local_path::optional(f, "data_bags_path", Kind::Dir);
    let encrypted_data_bag_secret_path =
        local_path::optional(f, "encrypted_data_bag_secret_path", Kind::File);
    let environments_path = local_path::optional(f, "environments_path", Kind::Dir);
    let chef_environment = f.string("chef_environment").unwrap_or_default();
    let config_template = config_template(f);
    let execute_command = f
        .deferred("execute_command", EXECUTE_FIELDS)
        .filter(|d| !d.source().is_empty())
        .or_else(|| default_deferred(DEFAULT_EXECUTE_COMMAND));
    let custom_install = f
        .deferred("install_command", INSTALL_FIELDS)
        .filter(|d| !d.source().is_empty());
    let skip_install = f.bool("skip_install").unwrap_or(false);
    // Packer accepts Chef's licence silently only when it installs Chef
    // itself with its own command.
    let chef_license = f
        .string("chef_license")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            if !skip_install && custom_install.is_none() {
                "accept-silent".to_owned()
            } else {
                String::new()
            }
        });
    let install_command = custom_install.or_else(|| default_deferred(DEFAULT_INSTALL_COMMAND));
    let prevent_sudo = f.bool("prevent_sudo").unwrap_or(false);
    let staging_directory = f
        .string("staging_directory")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_STAGING_DIRECTORY.to_owned());
    let version = f.string("version").unwrap_or_default();
    Some(ChefSoloConfig {
        cookbook_paths,
        remote_cookbook_paths,
        run_list,
        json,
        roles_path,
        data_bags_path,
        encrypted_data_bag_secret_path,
        environments_path,
        chef_environment,
        chef_license,
        config_template,
        execute_command: execute_command?,
        install_command: install_command?,
        skip_install,
        prevent_sudo,
        staging_directory,
        version,
    })
}
