//! The `chef-solo` provisioner, as Packer runs it: install Chef (unless
//! `skip_install`), upload cookbooks/roles/data bags/environments under
//! the staging directory, write `solo.rb` and `node.json`, run
//! `execute_command`.

use std::collections::BTreeMap;

use super::guest_command::{self as cmd, contents_of, run_checked, upload, upload_bytes};
use super::remote::Remote;
use super::{ProvisionEnv, ProvisionError};
use crate::config::chef_solo::ChefSoloConfig;

/// The guest paths of what was uploaded, for `solo.rb`.
#[derive(Debug, Default)]
struct Staged {
    cookbook_paths: Vec<String>,
    roles: String,
    data_bags: String,
    secret: String,
    environments: String,
}

/// Go templates test a value for truth; an empty string is false.
fn go_bool(b: bool) -> String {
    if b { "true".into() } else { String::new() }
}

fn config_data(c: &ChefSoloConfig, s: &Staged) -> BTreeMap<String, String> {
    // Remote cookbook paths come first, then the uploaded ones, as in Packer.
    let cookbook_paths = c
        .remote_cookbook_paths
        .iter()
        .chain(&s.cookbook_paths)
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(",");
    [
        ("CookbookPaths", cookbook_paths),
        ("RolesPath", s.roles.clone()),
        ("DataBagsPath", s.data_bags.clone()),
        ("EncryptedDataBagSecretPath", s.secret.clone()),
        ("EnvironmentsPath", s.environments.clone()),
        ("ChefEnvironment", c.chef_environment.clone()),
        ("ChefLicense", c.chef_license.clone()),
        ("HasRolesPath", go_bool(!s.roles.is_empty())),
        ("HasDataBagsPath", go_bool(!s.data_bags.is_empty())),
        (
            "HasEncryptedDataBagSecretPath",
            go_bool(!s.secret.is_empty()),
        ),
        ("HasEnvironmentsPath", go_bool(!s.environments.is_empty())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Objects with their keys sorted at every level: Go's encoder writes a
/// map that way, and Chef users diff node.json between tools.
fn sorted(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            serde_json::Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(sorted).collect())
        }
        other => other.clone(),
    }
}

/// `node.json`: the `json` attributes, with `run_list` set when given.
pub fn node_json(c: &ChefSoloConfig) -> String {
    let mut attrs = c.json.clone();
    if !c.run_list.is_empty() {
        attrs.insert("run_list".into(), c.run_list.clone().into());
    }
    serde_json::to_string_pretty(&sorted(&serde_json::Value::Object(attrs)))
        .unwrap_or_else(|_| "{}".into())
}

pub async fn run(
    c: &ChefSoloConfig,
    env: &ProvisionEnv,
    remote: &dyn Remote,
) -> Result<(), ProvisionError> {
    let build = &env.build;
    let sudo = !c.prevent_sudo;
    env.reporter.info(build, "Provisioning with chef-solo");
    if !c.skip_install {
        env.reporter.info(build, "Installing Chef...");
        let mut data = BTreeMap::new();
        data.insert("Sudo".to_owned(), go_bool(sudo));
        data.insert("Version".to_owned(), c.version.clone());
        let install = env.render_deferred(&c.install_command, &data)?;
        run_checked(env, remote, "the Chef install command", &install).await?;
    }
    let staging = c.staging_directory.trim_end_matches('/').to_owned();
    create_dir(env, remote, sudo, &staging).await?;

    let mut staged = Staged::default();
    for (i, local) in c.cookbook_paths.iter().enumerate() {
        let target = format!("{staging}/cookbooks-{i}");
        create_dir(env, remote, sudo, &target).await?;
        upload(remote, "cookbooks", &contents_of(local), &target).await?;
        staged.cookbook_paths.push(target);
    }
    let trees = [
        (&c.roles_path, "roles", &mut staged.roles),
        (&c.data_bags_path, "data_bags", &mut staged.data_bags),
        (
            &c.environments_path,
            "environments",
            &mut staged.environments,
        ),
    ];
    for (local, name, slot) in trees {
        if let Some(local) = local {
            let target = format!("{staging}/{name}");
            create_dir(env, remote, sudo, &target).await?;
            upload(remote, name, &contents_of(local), &target).await?;
            *slot = target;
        }
    }
    if let Some(secret) = &c.encrypted_data_bag_secret_path {
        let target = format!("{staging}/encrypted_data_bag_secret");
        upload(remote, "the encrypted data bag secret", secret, &target).await?;
        staged.secret = target;
    }

    env.reporter
        .info(build, "Creating configuration file 'solo.rb'");
    let solo_rb = env.render_with(&c.config_template, &config_data(c, &staged))?;
    let config_path = format!("{staging}/solo.rb");
    upload_bytes(remote, "solo.rb", solo_rb.as_bytes(), &config_path, 0o644).await?;

    env.reporter.info(build, "Creating JSON attribute file");
    let json_path = format!("{staging}/node.json");
    upload_bytes(
        remote,
        "node.json",
        node_json(c).as_bytes(),
        &json_path,
        0o644,
    )
    .await?;

    let mut data = BTreeMap::new();
    data.insert("ConfigPath".to_owned(), config_path);
    data.insert("JsonPath".to_owned(), json_path);
    data.insert("Sudo".to_owned(), go_bool(sudo));
    let command = env.render_deferred(&c.execute_command, &data)?;
    env.reporter
        .info(build, &format!("Executing Chef: {command}"));
    run_checked(env, remote, "chef-solo", &command).await
}

/// `mkdir -p` then `chmod 0777`, so the login user can upload into a
/// directory made with sudo (Packer does the same).
async fn create_dir(
    env: &ProvisionEnv,
    remote: &dyn Remote,
    sudo: bool,
    dir: &str,
) -> Result<(), ProvisionError> {
    env.reporter
        .info(&env.build, &format!("Creating directory: {dir}"));
    let what = format!("creating {dir}");
    run_checked(env, remote, &what, &cmd::mkdir(sudo, dir)).await?;
    run_checked(env, remote, &what, &cmd::chmod(sudo, "0777", dir)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::chef_solo::DEFAULT_CONFIG_TEMPLATE;

    #[test]
    fn node_json_sorts_keys_and_sets_the_run_list() {
        let mut json = serde_json::Map::new();
        json.insert("zeta".into(), serde_json::json!({"b": 1, "a": [true]}));
        json.insert("run_list".into(), serde_json::json!(["old::default"]));
        json.insert("alpha".into(), "x".into());
        let c = ChefSoloConfig {
            cookbook_paths: vec![],
            remote_cookbook_paths: vec![],
            run_list: vec!["web::default".into()],
            json,
            roles_path: None,
            data_bags_path: None,
            encrypted_data_bag_secret_path: None,
            environments_path: None,
            chef_environment: String::new(),
            chef_license: String::new(),
            config_template: DEFAULT_CONFIG_TEMPLATE.into(),
            execute_command: crate::config::decode::Deferred {
                template: crate::template::interp::parse("x").expect("parses"),
                span: Default::default(),
            },
            install_command: crate::config::decode::Deferred {
                template: crate::template::interp::parse("x").expect("parses"),
                span: Default::default(),
            },
            skip_install: true,
            prevent_sudo: true,
            staging_directory: "/tmp/packer-chef-solo".into(),
            version: String::new(),
        };
        assert_eq!(
            node_json(&c),
            "{\n  \"alpha\": \"x\",\n  \"run_list\": [\n    \"web::default\"\n  ],\n  \"zeta\": {\n    \"a\": [\n      true\n    ],\n    \"b\": 1\n  }\n}"
        );
        let staged = Staged {
            cookbook_paths: vec!["/tmp/packer-chef-solo/cookbooks-0".into()],
            roles: "/tmp/packer-chef-solo/roles".into(),
            ..Staged::default()
        };
        let mut c = c;
        c.remote_cookbook_paths = vec!["/opt/cookbooks".into()];
        let data = config_data(&c, &staged);
        assert_eq!(
            data["CookbookPaths"],
            "\"/opt/cookbooks\",\"/tmp/packer-chef-solo/cookbooks-0\""
        );
        assert_eq!(data["HasRolesPath"], "true");
        assert_eq!(data["HasDataBagsPath"], "");
    }
}
