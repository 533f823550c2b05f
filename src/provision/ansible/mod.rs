//! The `ansible` provisioner: runs `ansible-playbook` on the host against
//! the guest. kiln connects ansible straight to the guest's forwarded SSH
//! port (Packer's `use_proxy: false`) with a private key file it writes for
//! the run (0600, in a kiln scratch directory removed afterwards).

mod command;
mod inventory;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{ProvisionEnv, ProvisionError};
use crate::config::ansible::AnsibleConfig;
use crate::host::program::run_captured_async;
use command::Invocation;
use inventory::Target;

#[derive(Debug, thiserror::Error)]
pub enum AnsibleError {
    #[error(
        "`{command}` was not found: install ansible-core (scripts/bootstrap puts it in the project's .venv; put .venv/bin first in PATH) or set \"command\" to its path"
    )]
    NotFound { command: String },
    #[error("`{command} --version` exited with status {code}: {output}")]
    VersionCheck {
        command: String,
        code: i32,
        output: String,
    },
    #[error(
        "the build logs in without a key or a password that ansible could use; give the communicator ssh_private_key_file, or leave out ssh_password so kiln makes a temporary key"
    )]
    NoCredentials,
    #[error(
        "the build logs in with a password, and ansible needs `sshpass` on the host for that: install it (apt-get install sshpass), or log in with a key (ssh_private_key_file, or no ssh_password so kiln makes a temporary key)"
    )]
    NeedsSshpass,
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AnsibleError {
    let what = what.into();
    move |source| AnsibleError::Io { what, source }
}

/// Writes `data` to a new file only its owner can read.
fn write_private(path: &Path, data: &[u8]) -> Result<(), AnsibleError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(format!("cannot create {}", path.display())))?;
    file.write_all(data)
        .map_err(io(format!("cannot write {}", path.display())))
}

/// Is `program` runnable: a path that exists, or a name found on PATH.
fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// `ansible-playbook --version`, as Packer checks it before running.
async fn check_version(c: &AnsibleConfig, env: &ProvisionEnv) -> Result<(), ProvisionError> {
    let out = run_captured_async(c.command.as_ref(), &["--version".into()])
        .await
        .map_err(|e| {
            if e.source.kind() == std::io::ErrorKind::NotFound {
                AnsibleError::NotFound {
                    command: c.command.clone(),
                }
            } else {
                AnsibleError::Io {
                    what: format!("cannot run `{} --version`", c.command),
                    source: e.source,
                }
            }
        })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &out.stderr;
    if !out.status.success() {
        return Err(AnsibleError::VersionCheck {
            command: c.command.clone(),
            code: out.status.code().unwrap_or(-1),
            output: text.trim().to_owned(),
        }
        .into());
    }
    let first = text.lines().next().unwrap_or_default();
    env.reporter.info(&env.build, &format!("Using {first}"));
    Ok(())
}

pub async fn run(c: &AnsibleConfig, env: &ProvisionEnv) -> Result<(), ProvisionError> {
    if env.build_values.get("ConnType").map(String::as_str) != Some("ssh") {
        return Err(ProvisionError::NoCommunicator);
    }
    if !c.skip_version_check {
        check_version(c, env).await?;
    } else if find_program(&c.command).is_none() {
        return Err(AnsibleError::NotFound {
            command: c.command.clone(),
        }
        .into());
    }
    let value = |k: &str| env.build_values.get(k).cloned().unwrap_or_default();
    let target = Target {
        host_alias: c.host_alias.clone(),
        host: value("Host"),
        user: c.user.clone().unwrap_or_else(|| value("User")),
        port: value("Port"),
    };
    let scratch = crate::host::scratch::tempdir("ansible")
        .map_err(io("cannot make a scratch directory for ansible"))?;

    // How ansible logs in: the build's key (temporary or ssh_private_key_file),
    // else its password through sshpass.
    let private_key = value("SSHPrivateKey");
    let password = value("Password");
    let (key_file, password_vars) = if !private_key.is_empty() {
        let path = scratch.path().join("ansible-key");
        // OpenSSH refuses a key file whose last line has no newline.
        let mut pem = private_key;
        if !pem.ends_with('\n') {
            pem.push('\n');
        }
        write_private(&path, pem.as_bytes())?;
        (Some(path), None)
    } else if !password.is_empty() {
        if find_program("sshpass").is_none() {
            return Err(AnsibleError::NeedsSshpass.into());
        }
        let path = scratch.path().join("ansible-password.json");
        let vars = serde_json::json!({ "ansible_password": password });
        write_private(&path, vars.to_string().as_bytes())?;
        (None, Some(path))
    } else {
        return Err(AnsibleError::NoCredentials.into());
    };

    // The inventory: the user's, or one written like Packer's.
    let mut kept_inventory = None;
    let inventory = match &c.inventory_file {
        Some(p) => p.clone(),
        None => {
            let host_line = match &c.inventory_file_template {
                Some(t) => {
                    let data: BTreeMap<String, String> = [
                        ("HostAlias", &target.host_alias),
                        ("Host", &target.host),
                        ("User", &target.user),
                        ("Port", &target.port),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.clone()))
                    .collect();
                    env.render_deferred(t, &data)?
                }
                None => inventory::default_host_line(&target),
            };
            let text =
                inventory::inventory_text(&host_line, &c.host_alias, &c.groups, &c.empty_groups);
            let dir = c.inventory_directory.clone().unwrap_or_else(|| {
                if c.keep_inventory_file {
                    std::env::temp_dir()
                } else {
                    scratch.path().to_owned()
                }
            });
            let file = tempfile::Builder::new()
                .prefix("packer-provisioner-ansible")
                .tempfile_in(&dir)
                .map_err(io(format!(
                    "cannot create an inventory file in {}",
                    dir.display()
                )))?;
            std::fs::write(file.path(), text)
                .map_err(io(format!("cannot write {}", file.path().display())))?;
            let (_, path) = file
                .keep()
                .map_err(|e| io("cannot keep the inventory file")(e.error))?;
            if c.keep_inventory_file {
                env.reporter.info(
                    &env.build,
                    &format!("Keeping the inventory file {}", path.display()),
                );
            } else {
                kept_inventory = Some(path.clone());
            }
            path
        }
    };
    let result = run_with_inventory(
        c,
        env,
        &inventory,
        key_file.as_deref(),
        password_vars.as_deref(),
    )
    .await;
    // The inventory outside the scratch directory (inventory_directory) is
    // removed unless kept; the scratch directory goes with `scratch`.
    if let Some(p) = kept_inventory {
        let _ = std::fs::remove_file(p);
    }
    drop(scratch);
    result
}

async fn run_with_inventory(
    c: &AnsibleConfig,
    env: &ProvisionEnv,
    inventory: &Path,
    private_key: Option<&Path>,
    password_vars: Option<&Path>,
) -> Result<(), ProvisionError> {
    let http_addr = env
        .http
        .as_ref()
        .map(|(ip, port)| format!("{ip}:{port}"))
        .unwrap_or_default();
    let inv = Invocation {
        build_name: env.render.packer_build_name(),
        builder_type: env.render.build_type(),
        http_addr: &http_addr,
        inventory,
        private_key,
        password_vars,
    };
    let (extra, user_env) = user_arguments(c, env)?;
    let envs = command::playbook_env(c, &inv, &user_env);
    for args in command::galaxy_runs(c) {
        env.reporter.info(
            &env.build,
            &format!(
                "Executing Ansible Galaxy: {} {}",
                c.galaxy_command,
                args.join(" ")
            ),
        );
        let code = super::shell_local::run_streamed(&c.galaxy_command, &args, &envs, env)
            .await
            .map_err(|e| not_found_as_hint(e, &c.galaxy_command))?;
        if code != 0 {
            return Err(ProvisionError::ExitStatus {
                what: format!("{} {}", c.galaxy_command, args.join(" ")),
                code,
                allowed: vec![0],
            });
        }
    }
    let args = command::playbook_args(c, &inv, &extra);
    env.reporter.info(
        &env.build,
        &env.shown(&format!(
            "Executing Ansible: {} {}",
            c.command,
            args.join(" ")
        )),
    );
    let code = super::shell_local::run_streamed(&c.command, &args, &envs, env)
        .await
        .map_err(|e| not_found_as_hint(e, &c.command))?;
    if code != 0 {
        return Err(ProvisionError::ExitStatus {
            what: format!("{} {}", c.command, c.playbook_file.display()),
            code,
            allowed: vec![0],
        });
    }
    Ok(())
}

/// The user's `extra_arguments` and `ansible_env_vars`, rendered.
type UserArguments = (Vec<String>, Vec<(String, String)>);

/// `extra_arguments` and `ansible_env_vars`, rendered now that the build's
/// values are known (`{{ build `Host` }}`, `{{ build `Password` }}`), as
/// Packer renders them when the provisioner runs.
fn user_arguments(c: &AnsibleConfig, env: &ProvisionEnv) -> Result<UserArguments, ProvisionError> {
    Ok((
        env.render_all(&c.extra_arguments)?,
        env.user_env(&c.ansible_env_vars)?,
    ))
}

fn not_found_as_hint(e: ProvisionError, command: &str) -> ProvisionError {
    match e {
        ProvisionError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            AnsibleError::NotFound {
                command: command.to_owned(),
            }
            .into()
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::RecordingReporter;
    use std::sync::Arc;
    use tokio_util::sync::CancellationToken;

    fn env(values: &[(&str, &str)]) -> ProvisionEnv {
        ProvisionEnv {
            build: "b".into(),
            render: crate::template::render_env::RenderEnv::single_build(
                "b",
                "qemu",
                &std::env::temp_dir(),
            ),
            http: None,
            build_values: values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ssh_private_key_file: None,
            reporter: Arc::new(RecordingReporter::default()),
            cancel: CancellationToken::new(),
        }
    }

    fn config(command: &str) -> AnsibleConfig {
        AnsibleConfig {
            command: command.into(),
            playbook_file: "/nonexistent/site.yml".into(),
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
            galaxy_file: None,
            galaxy_command: "ansible-galaxy".into(),
            galaxy_force_install: false,
            roles_path: None,
            collections_path: None,
            ansible_ssh_extra_args: vec![],
            use_sftp: false,
            skip_version_check: false,
        }
    }

    #[tokio::test]
    async fn a_missing_ansible_playbook_says_where_to_get_it() {
        let e = run(
            &config("/nonexistent/ansible-playbook"),
            &env(&[("ConnType", "ssh")]),
        )
        .await
        .expect_err("fails");
        let text = e.to_string();
        assert!(
            text.contains("`/nonexistent/ansible-playbook` was not found"),
            "{text}"
        );
        assert!(text.contains("scripts/bootstrap"), "{text}");
    }

    fn deferred(text: &str) -> crate::config::decode::Deferred {
        crate::config::decode::Deferred {
            template: crate::template::interp::parse(text).expect("parses"),
            span: Default::default(),
        }
    }

    #[test]
    fn extra_arguments_and_env_vars_are_rendered_with_the_builds_values() {
        let mut c = config("ansible-playbook");
        c.extra_arguments = vec![
            deferred("-e"),
            deferred("target={{ build `User` }}@{{ build `Host` }}:{{ build `Port` }}"),
        ];
        c.ansible_env_vars = vec![crate::config::provisioner::EnvVar(deferred(
            "ANSIBLE_REMOTE_USER={{ build `User` }}",
        ))];
        let env = env(&[("Host", "127.0.0.1"), ("Port", "2222"), ("User", "root")]);
        let (extra, user_env) = user_arguments(&c, &env).expect("renders");
        assert_eq!(extra, ["-e", "target=root@127.0.0.1:2222"]);
        assert_eq!(
            user_env,
            [("ANSIBLE_REMOTE_USER".to_owned(), "root".to_owned())]
        );
        // A value the build does not have is an error naming it.
        c.extra_arguments = vec![deferred("{{ build `Hots` }}")];
        let e = user_arguments(&c, &env).expect_err("unknown value");
        assert!(e.to_string().contains("did you mean `Host`"), "{e}");
    }

    /// The command line kiln prints has the build's password masked, also
    /// where the user put it into `extra_arguments`; the program gets it
    /// (`echo` stands in for ansible-playbook and prints its arguments).
    #[tokio::test]
    async fn the_printed_command_masks_the_builds_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = config("/bin/echo");
        c.skip_version_check = true;
        c.playbook_file = dir.path().join("site.yml");
        c.inventory_directory = Some(dir.path().to_owned());
        c.extra_arguments = vec![deferred("-e"), deferred("pw={{ build `Password` }}")];
        let reporter = Arc::new(RecordingReporter::default());
        let mut env = env(&[
            ("ConnType", "ssh"),
            ("Host", "127.0.0.1"),
            ("Port", "2222"),
            ("User", "root"),
            ("Password", "hunter2-secret"),
        ]);
        env.reporter = reporter.clone();
        run(&c, &env).await.expect("echo runs");
        let events: Vec<String> = reporter
            .events()
            .into_iter()
            .map(|e| format!("{e:?}"))
            .collect();
        let (printed, rest): (Vec<_>, Vec<_>) =
            events.iter().partition(|e| e.contains("Executing Ansible"));
        assert_eq!(printed.len(), 1, "{events:?}");
        assert!(printed[0].contains("pw=<sensitive>"), "{printed:?}");
        assert!(!printed[0].contains("hunter2"), "{printed:?}");
        // What the program printed: it was given the password.
        assert!(
            rest.iter().any(|e| e.contains("pw=hunter2-secret")),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn without_a_communicator_or_credentials_it_says_so() {
        let e = run(&config("/bin/true"), &env(&[("ConnType", "none")]))
            .await
            .expect_err("fails");
        assert!(matches!(e, ProvisionError::NoCommunicator), "{e}");
        let e = run(
            &config("/bin/true"),
            &env(&[("ConnType", "ssh"), ("User", "root")]),
        )
        .await
        .expect_err("fails");
        assert!(
            matches!(e, ProvisionError::Ansible(AnsibleError::NoCredentials)),
            "{e}"
        );
    }
}
