//! The `ansible-local` provisioner: uploads the playbooks, roles, vars and
//! inventory into `staging_directory` in the guest and runs
//! `ansible-playbook -c local` there, as Packer does (ansible must already
//! be installed in the guest).

use std::path::Path;

use super::remote::{Remote, RemoteExit};
use super::{ProvisionEnv, ProvisionError};
use crate::config::ansible::AnsibleLocalConfig;

/// Single-quotes `s` for the guest's `/bin/sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

fn base_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The inventory Packer writes when `inventory_file` is not given.
pub fn local_inventory(groups: &[String]) -> String {
    if groups.is_empty() {
        return "127.0.0.1".to_owned();
    }
    groups
        .iter()
        .map(|g| format!("[{g}]\n127.0.0.1\n"))
        .collect()
}

/// `cd STAGING && COMMAND PLAYBOOK --extra-vars "…" EXTRA -c local -i INVENTORY`,
/// Packer's command for one playbook.
pub fn playbook_command(
    c: &AnsibleLocalConfig,
    extra_arguments: &[String],
    playbook: &str,
    inventory: &str,
    build_name: &str,
    builder_type: &str,
    http_addr: &str,
) -> String {
    let mut extra = format!(
        " --extra-vars \"packer_build_name={build_name} packer_builder_type={builder_type} packer_http_addr={http_addr}\""
    );
    for a in extra_arguments {
        extra.push(' ');
        extra.push_str(a);
    }
    format!(
        "cd {} && {} {}{extra} -c local -i {}",
        sh_quote(&c.staging_directory),
        c.command,
        sh_quote(playbook),
        sh_quote(inventory)
    )
}

async fn exec(
    env: &ProvisionEnv,
    remote: &dyn Remote,
    what: &str,
    command: &str,
) -> Result<(), ProvisionError> {
    let build = env.build.clone();
    let reporter = env.reporter.clone();
    let mut on_line = move |line: &str| reporter.output_line(&build, line);
    let exit = tokio::select! {
        r = remote.exec(command, &mut on_line) => r.map_err(|e| ProvisionError::Remote {
            what: what.to_owned(),
            message: e.message.clone(),
            source: Some(e),
        })?,
        () = env.cancel.cancelled() => return Err(ProvisionError::Cancelled),
    };
    match exit {
        RemoteExit::Code(0) => Ok(()),
        RemoteExit::Code(code) => Err(ProvisionError::ExitStatus {
            what: env.shown(&format!("{what} (`{command}`)")),
            code,
            allowed: vec![0],
        }),
        RemoteExit::Disconnected => Err(ProvisionError::Disconnected {
            what: what.to_owned(),
        }),
        RemoteExit::Signal => Err(ProvisionError::Signal {
            what: what.to_owned(),
        }),
    }
}

async fn upload(
    env: &ProvisionEnv,
    remote: &dyn Remote,
    local: &Path,
    dest: &str,
) -> Result<(), ProvisionError> {
    env.reporter.info(
        &env.build,
        &format!("Uploading {} => {dest}", local.display()),
    );
    remote
        .upload_path(local, dest)
        .await
        .map_err(|e| ProvisionError::Remote {
            what: format!("uploading {} to {dest}", local.display()),
            message: e.message.clone(),
            source: Some(e),
        })
}

/// A directory's contents into `dest` (Packer's trailing-slash rule).
async fn upload_dir(
    env: &ProvisionEnv,
    remote: &dyn Remote,
    local: &Path,
    dest: &str,
) -> Result<(), ProvisionError> {
    exec(
        env,
        remote,
        "creating a staging directory",
        &format!("mkdir -p {}", sh_quote(dest)),
    )
    .await?;
    let mut contents = local.as_os_str().to_owned();
    contents.push("/");
    upload(env, remote, Path::new(&contents), dest).await
}

pub async fn run(
    c: &AnsibleLocalConfig,
    env: &ProvisionEnv,
    remote: &dyn Remote,
) -> Result<(), ProvisionError> {
    let staging = c.staging_directory.trim_end_matches('/').to_owned();
    let result = stage_and_run(c, env, remote, &staging).await;
    if c.clean_staging_directory {
        env.reporter
            .info(&env.build, &format!("Removing staging directory {staging}"));
        let mut ignore = |_: &str| {};
        if let Err(e) = remote
            .exec(&format!("rm -rf {}", sh_quote(&staging)), &mut ignore)
            .await
        {
            env.reporter.warn(
                &env.build,
                &format!("could not remove {staging} from the guest: {e}"),
            );
        }
    }
    result
}

async fn stage_and_run(
    c: &AnsibleLocalConfig,
    env: &ProvisionEnv,
    remote: &dyn Remote,
    staging: &str,
) -> Result<(), ProvisionError> {
    env.reporter
        .info(&env.build, &format!("Creating staging directory {staging}"));
    exec(
        env,
        remote,
        "creating the staging directory",
        &format!("mkdir -p {}", sh_quote(staging)),
    )
    .await?;
    if let Some(dir) = &c.playbook_dir {
        upload_dir(env, remote, dir, staging).await?;
    }
    let mut playbooks = Vec::new();
    for p in &c.playbook_files {
        let dest = format!("{staging}/{}", base_name(p));
        upload(env, remote, p, &dest).await?;
        playbooks.push(base_name(p));
    }
    for dir in &c.playbook_paths {
        upload_dir(env, remote, dir, &format!("{staging}/playbooks")).await?;
    }
    for dir in &c.role_paths {
        upload_dir(
            env,
            remote,
            dir,
            &format!("{staging}/roles/{}", base_name(dir)),
        )
        .await?;
    }
    if let Some(dir) = &c.group_vars {
        upload_dir(env, remote, dir, &format!("{staging}/group_vars")).await?;
    }
    if let Some(dir) = &c.host_vars {
        upload_dir(env, remote, dir, &format!("{staging}/host_vars")).await?;
    }
    let inventory = match &c.inventory_file {
        Some(p) => {
            let name = base_name(p);
            upload(env, remote, p, &format!("{staging}/{name}")).await?;
            name
        }
        None => {
            let name = format!(
                "packer-provisioner-ansible-local{}",
                uuid::Uuid::new_v4().simple()
            );
            let text = local_inventory(&c.inventory_groups);
            remote
                .upload_bytes(text.as_bytes(), &format!("{staging}/{name}"), 0o644)
                .await
                .map_err(|e| ProvisionError::Remote {
                    what: "uploading the inventory".into(),
                    message: e.message.clone(),
                    source: Some(e),
                })?;
            name
        }
    };
    if let Some(file) = &c.galaxy_file {
        let name = base_name(file);
        upload(env, remote, file, &format!("{staging}/{name}")).await?;
        let command = format!(
            "cd {} && {} install -r {} -p {}",
            sh_quote(staging),
            c.galaxy_command,
            sh_quote(&name),
            sh_quote(&format!("{staging}/roles"))
        );
        env.reporter
            .info(&env.build, &format!("Executing Ansible Galaxy: {command}"));
        exec(env, remote, "ansible-galaxy", &command).await?;
    }
    let http_addr = env
        .http
        .as_ref()
        .map(|(ip, port)| format!("{ip}:{port}"))
        .unwrap_or_default();
    // Rendered now, with the build's values, as for `ansible`.
    let extra_arguments = env.render_all(&c.extra_arguments)?;
    for playbook in playbooks {
        let command = playbook_command(
            c,
            &extra_arguments,
            &playbook,
            &inventory,
            env.render.packer_build_name(),
            env.render.build_type(),
            &http_addr,
        );
        env.reporter.info(
            &env.build,
            &env.shown(&format!("Executing Ansible: {command}")),
        );
        exec(
            env,
            remote,
            &format!("ansible-playbook {playbook}"),
            &command,
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AnsibleLocalConfig {
        AnsibleLocalConfig {
            command: "ANSIBLE_FORCE_COLOR=1 PYTHONUNBUFFERED=1 ansible-playbook".into(),
            playbook_files: vec!["site.yml".into()],
            playbook_dir: None,
            playbook_paths: vec![],
            role_paths: vec![],
            group_vars: None,
            host_vars: None,
            galaxy_file: None,
            galaxy_command: "ansible-galaxy".into(),
            inventory_file: None,
            inventory_groups: vec![],
            extra_arguments: vec![],
            staging_directory: "/tmp/packer-provisioner-ansible-local/x".into(),
            clean_staging_directory: false,
        }
    }

    #[test]
    fn the_command_is_packers() {
        assert_eq!(
            playbook_command(
                &config(),
                &["-v".into(), "--tags=web".into()],
                "site.yml",
                "inv",
                "b",
                "qemu",
                "10.0.2.2:8000"
            ),
            "cd '/tmp/packer-provisioner-ansible-local/x' && ANSIBLE_FORCE_COLOR=1 PYTHONUNBUFFERED=1 ansible-playbook 'site.yml' \
             --extra-vars \"packer_build_name=b packer_builder_type=qemu packer_http_addr=10.0.2.2:8000\" -v --tags=web -c local -i 'inv'"
        );
    }

    #[test]
    fn inventory_groups_each_hold_localhost() {
        assert_eq!(local_inventory(&[]), "127.0.0.1");
        assert_eq!(
            local_inventory(&["web".into(), "db".into()]),
            "[web]\n127.0.0.1\n[db]\n127.0.0.1\n"
        );
    }
}
