//! The `shell` provisioner: uploads each script (or the inline lines as a
//! script), runs it through `execute_command`, checks its exit status.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::remote::{Remote, RemoteExit};
use super::{ProvisionEnv, ProvisionError, flatten_env, sleep_or_cancel};
use crate::config::provisioner::{ShellConfig, ShellSource};

struct Script {
    /// How messages name it: the local path, or "inline script".
    label: String,
    content: Vec<u8>,
}

fn scripts(c: &ShellConfig, env: &ProvisionEnv) -> Result<Vec<Script>, ProvisionError> {
    match &c.source {
        ShellSource::Inline(lines) => {
            let mut text = format!("#!{}\n", c.inline_shebang);
            for line in lines {
                text.push_str(&env.render_line(line)?);
                text.push('\n');
            }
            Ok(vec![Script {
                label: "inline script".into(),
                content: text.into_bytes(),
            }])
        }
        ShellSource::Scripts(paths) => paths
            .iter()
            .map(|p| {
                let bytes = std::fs::read(p).map_err(|source| ProvisionError::ReadLocal {
                    path: p.clone(),
                    source,
                })?;
                // Scripts written on Windows break /bin/sh; Packer converts too.
                let content = if c.binary { bytes } else { crlf_to_lf(&bytes) };
                Ok(Script {
                    label: p.display().to_string(),
                    content,
                })
            })
            .collect(),
    }
}

fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            continue;
        }
        out.push(b);
    }
    out
}

fn remote_path(c: &ShellConfig) -> String {
    if let Some(p) = &c.remote_path {
        return p.clone();
    }
    let file = c
        .remote_file
        .clone()
        .unwrap_or_else(|| format!("script_{}.sh", uuid::Uuid::new_v4().as_u128() % 10_000));
    format!("{}/{file}", c.remote_folder.trim_end_matches('/'))
}

pub async fn run(
    c: &ShellConfig,
    env: &ProvisionEnv,
    remote: &dyn Remote,
) -> Result<(), ProvisionError> {
    let user_env: Vec<(String, String)> = env.shell_user_env(&c.environment_vars, &c.env)?;
    let vars = env.script_env(&user_env);
    for script in scripts(c, env)? {
        let path = remote_path(c);
        env.reporter.info(
            &env.build,
            &format!("Provisioning with shell script: {}", script.label),
        );
        upload_with_retry(c, env, remote, &script, &path).await?;

        let mut data = BTreeMap::new();
        data.insert("Path".to_owned(), path.clone());
        if c.use_env_var_file {
            let env_file = format!(
                "{}/varfile_{}.sh",
                c.remote_folder.trim_end_matches('/'),
                std::process::id() % 10_000
            );
            let content = flatten_env(
                &vars,
                Some(c.env_var_format.as_deref().unwrap_or("export %s='%s'\n")),
            );
            remote
                .upload_bytes(content.as_bytes(), &env_file, 0o600)
                .await
                .map_err(|e| {
                    remote_error(&format!("uploading the environment file {env_file}"), e)
                })?;
            data.insert("EnvVarFile".to_owned(), env_file);
            data.insert("Vars".to_owned(), String::new());
        } else {
            data.insert("EnvVarFile".to_owned(), String::new());
            data.insert(
                "Vars".to_owned(),
                flatten_env(&vars, c.env_var_format.as_deref())
                    .trim_end()
                    .to_owned(),
            );
        }
        let command = env.render_deferred(&c.execute_command, &data)?;
        let build = env.build.clone();
        let reporter = env.reporter.clone();
        let mut on_line = move |line: &str| reporter.output_line(&build, line);
        let exit = tokio::select! {
            r = remote.exec(&command, &mut on_line) => r.map_err(|e| remote_error(&format!("running {}", script.label), e))?,
            () = env.cancel.cancelled() => return Err(ProvisionError::Cancelled),
        };
        match exit {
            RemoteExit::Code(code) if c.valid_exit_codes.contains(&i64::from(code)) => {}
            RemoteExit::Code(code) => {
                return Err(ProvisionError::ExitStatus {
                    what: env.shown(&format!("{} (`{command}`)", script.label)),
                    code,
                    allowed: c.valid_exit_codes.clone(),
                });
            }
            RemoteExit::Disconnected if c.expect_disconnect => {
                env.reporter.info(
                    &env.build,
                    "The connection dropped, as expect_disconnect says it may.",
                );
                continue;
            }
            RemoteExit::Disconnected => {
                return Err(ProvisionError::Disconnected { what: script.label });
            }
            RemoteExit::Signal => return Err(ProvisionError::Signal { what: script.label }),
        }
        if !c.skip_clean {
            let mut ignore = |_: &str| {};
            let cleanup = format!(
                "rm -f '{path}' '{}'",
                data.get("EnvVarFile").map_or("", String::as_str)
            );
            if let Err(e) = remote.exec(&cleanup, &mut ignore).await {
                env.reporter.warn(
                    &env.build,
                    &format!("could not remove {path} from the guest: {e}"),
                );
            }
        }
        if !c.pause_after.is_zero() {
            sleep_or_cancel(c.pause_after, &env.cancel).await?;
        }
    }
    Ok(())
}

/// The upload is retried for `start_retry_timeout`: the guest may be
/// rebooting after an earlier provisioner.
async fn upload_with_retry(
    c: &ShellConfig,
    env: &ProvisionEnv,
    remote: &dyn Remote,
    script: &Script,
    path: &str,
) -> Result<(), ProvisionError> {
    let started = Instant::now();
    loop {
        match remote.upload_bytes(&script.content, path, 0o755).await {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() < c.start_retry_timeout && !env.cancel.is_cancelled() => {
                env.reporter.warn(
                    &env.build,
                    &format!("uploading {} failed ({e}); retrying", script.label),
                );
                sleep_or_cancel(Duration::from_secs(2), &env.cancel).await?;
            }
            Err(e) => {
                return Err(remote_error(
                    &format!("uploading {} to {path}", script.label),
                    e,
                ));
            }
        }
    }
}

fn remote_error(what: &str, e: super::remote::RemoteError) -> ProvisionError {
    ProvisionError::Remote {
        what: what.to_owned(),
        message: e.message.clone(),
        source: Some(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_becomes_lf() {
        assert_eq!(crlf_to_lf(b"a\r\nb\rc\r\n"), b"a\nb\rc\n");
    }
}
