//! The `ansible-playbook` command line and environment for the `ansible`
//! provisioner, built in order (and unit-tested) apart from running it.

use std::path::Path;

use crate::config::ansible::AnsibleConfig;

/// What the build knows that goes on the command line.
pub struct Invocation<'a> {
    pub build_name: &'a str,
    pub builder_type: &'a str,
    /// `PACKER_HTTP_ADDR` (`ip:port`), empty when the build serves nothing.
    pub http_addr: &'a str,
    pub inventory: &'a Path,
    /// The private key file kiln wrote for ansible, if it logs in by key.
    pub private_key: Option<&'a Path>,
    /// A 0600 vars file holding `ansible_password`, when it logs in by password.
    pub password_vars: Option<&'a Path>,
}

/// `ansible-playbook` arguments, in Packer's order: the build's extra vars,
/// the key, `--ssh-extra-args`, the user's `extra_arguments` (rendered:
/// `extra`), then the inventory and the playbook.
pub fn playbook_args(c: &AnsibleConfig, inv: &Invocation<'_>, extra: &[String]) -> Vec<String> {
    let mut args = vec![
        "-e".to_owned(),
        format!("packer_build_name={}", inv.build_name),
        "-e".to_owned(),
        format!("packer_builder_type={}", inv.builder_type),
        "-e".to_owned(),
        format!("packer_http_addr={}", inv.http_addr),
    ];
    if let Some(key) = inv.private_key {
        args.push("-e".to_owned());
        args.push(format!("ansible_ssh_private_key_file={}", key.display()));
    }
    if let Some(vars) = inv.password_vars {
        args.push("-e".to_owned());
        args.push(format!("@{}", vars.display()));
    }
    // Packer's default: only the key it gives, not every key of the agent.
    // kiln adds a throwaway known_hosts: each build's guest has new host
    // keys on a reused loopback port, and a stale entry in the user's
    // known_hosts would turn off password logins.
    let ssh_extra = if c.ansible_ssh_extra_args.is_empty() {
        "-o IdentitiesOnly=yes -o UserKnownHostsFile=/dev/null".to_owned()
    } else {
        c.ansible_ssh_extra_args.join(" ")
    };
    args.push("--ssh-extra-args".to_owned());
    args.push(ssh_extra);
    args.extend(extra.iter().cloned());
    args.push("-i".to_owned());
    args.push(inv.inventory.display().to_string());
    args.push(c.playbook_file.display().to_string());
    args
}

/// The environment added to kiln's for ansible: host key checking off (the
/// guest's key is new every build), the file transfer method, the build's
/// `PACKER_*` values; the user's `ansible_env_vars` (rendered: `user`)
/// last, so they win.
pub fn playbook_env(
    c: &AnsibleConfig,
    inv: &Invocation<'_>,
    user: &[(String, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("ANSIBLE_HOST_KEY_CHECKING".into(), "False".into()),
        ("PACKER_BUILD_NAME".into(), inv.build_name.into()),
        ("PACKER_BUILDER_TYPE".into(), inv.builder_type.into()),
        ("PYTHONUNBUFFERED".into(), "1".into()),
    ];
    if !inv.http_addr.is_empty() {
        env.push(("PACKER_HTTP_ADDR".into(), inv.http_addr.into()));
    }
    if c.use_sftp {
        env.push(("ANSIBLE_SSH_TRANSFER_METHOD".into(), "sftp".into()));
    } else {
        // Packer sets ANSIBLE_SCP_IF_SSH=True (older ansible); ansible-core
        // 2.17+ reads ssh_transfer_method. OpenSSH 9's scp speaks SFTP
        // unless given -O, and minimal guests have no sftp-server.
        env.push(("ANSIBLE_SCP_IF_SSH".into(), "True".into()));
        env.push(("ANSIBLE_SSH_TRANSFER_METHOD".into(), "scp".into()));
        env.push(("ANSIBLE_SCP_EXTRA_ARGS".into(), "-O".into()));
    }
    if let Some(p) = &c.roles_path {
        env.push(("ANSIBLE_ROLES_PATH".into(), p.clone()));
    }
    if let Some(p) = &c.collections_path {
        env.push(("ANSIBLE_COLLECTIONS_PATH".into(), p.clone()));
    }
    for (k, v) in user {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

/// `ansible-galaxy` runs for `galaxy_file`: roles, then collections when a
/// `collections_path` says where they go.
pub fn galaxy_runs(c: &AnsibleConfig) -> Vec<Vec<String>> {
    let Some(file) = &c.galaxy_file else {
        return Vec::new();
    };
    let mut runs = Vec::new();
    let mut roles = vec![
        "install".to_owned(),
        "-r".to_owned(),
        file.display().to_string(),
    ];
    if let Some(p) = &c.roles_path {
        roles.extend(["-p".to_owned(), p.clone()]);
    }
    if c.galaxy_force_install {
        roles.push("--force".to_owned());
    }
    runs.push(roles);
    if let Some(p) = &c.collections_path {
        let mut collections = vec![
            "collection".to_owned(),
            "install".to_owned(),
            "-r".to_owned(),
            file.display().to_string(),
            "-p".to_owned(),
            p.clone(),
        ];
        if c.galaxy_force_install {
            collections.push("--force".to_owned());
        }
        runs.push(collections);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AnsibleConfig {
        AnsibleConfig {
            command: "ansible-playbook".into(),
            playbook_file: "/t/site.yml".into(),
            extra_arguments: vec![],
            ansible_env_vars: vec![],
            groups: vec![],
            empty_groups: vec![],
            host_alias: "default".into(),
            user: None,
            inventory_file: None,
            inventory_directory: None,
            inventory_file_template: None,
            keep_inventory_file: false,
            galaxy_file: Some("/t/req.yml".into()),
            galaxy_command: "ansible-galaxy".into(),
            galaxy_force_install: true,
            roles_path: Some("/t/roles".into()),
            collections_path: None,
            ansible_ssh_extra_args: vec![],
            use_sftp: false,
            skip_version_check: false,
        }
    }

    fn invocation() -> Invocation<'static> {
        Invocation {
            build_name: "b",
            builder_type: "qemu",
            http_addr: "10.0.2.2:8080",
            inventory: Path::new("/s/inv"),
            private_key: Some(Path::new("/s/key")),
            password_vars: None,
        }
    }

    #[test]
    fn playbook_arguments_in_packers_order() {
        assert_eq!(
            playbook_args(&config(), &invocation(), &["-v".to_owned()]),
            [
                "-e",
                "packer_build_name=b",
                "-e",
                "packer_builder_type=qemu",
                "-e",
                "packer_http_addr=10.0.2.2:8080",
                "-e",
                "ansible_ssh_private_key_file=/s/key",
                "--ssh-extra-args",
                "-o IdentitiesOnly=yes -o UserKnownHostsFile=/dev/null",
                "-v",
                "-i",
                "/s/inv",
                "/t/site.yml"
            ]
        );
    }

    #[test]
    fn the_users_env_vars_win_and_scp_is_the_default_transfer() {
        let user = [("ANSIBLE_HOST_KEY_CHECKING".to_owned(), "True".to_owned())];
        let env = playbook_env(&config(), &invocation(), &user);
        let get = |k: &str| env.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.as_str());
        assert_eq!(get("ANSIBLE_HOST_KEY_CHECKING"), Some("True"));
        assert_eq!(get("ANSIBLE_SSH_TRANSFER_METHOD"), Some("scp"));
        assert_eq!(get("ANSIBLE_SCP_EXTRA_ARGS"), Some("-O"));
        assert_eq!(get("PACKER_HTTP_ADDR"), Some("10.0.2.2:8080"));
        assert_eq!(get("ANSIBLE_ROLES_PATH"), Some("/t/roles"));
        let mut sftp = config();
        sftp.use_sftp = true;
        let env = playbook_env(&sftp, &invocation(), &[]);
        assert!(env.contains(&("ANSIBLE_SSH_TRANSFER_METHOD".into(), "sftp".into())));
    }

    #[test]
    fn galaxy_installs_roles_into_roles_path() {
        assert_eq!(
            galaxy_runs(&config()),
            [["install", "-r", "/t/req.yml", "-p", "/t/roles", "--force"]]
        );
    }
}
