//! Provisioners at run time: `shell`, `file` and `ansible-local` over the
//! communicator, `shell-local` and `ansible` on the host. Output is streamed line by line through the
//! reporter; a failure names the script and its exit status.

mod ansible;
mod ansible_local;
mod breakpoint;
mod chef_solo;
mod file;
pub mod guest_command;
pub mod remote;
mod salt_masterless;
mod shell;
mod shell_local;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::decode::Deferred;
use crate::config::provisioner::{EnvVar, Provisioner, ProvisionerKind};
use crate::template::interp::{self, Context};
use crate::template::render_env::RenderEnv;
use crate::ui::Reporter;
use remote::Remote;

/// What a provisioner knows about the build it runs in.
#[derive(Clone)]
pub struct ProvisionEnv {
    /// The full build name, for output lines (what scripts see as
    /// `PACKER_BUILD_NAME` is `render`'s `packer_build_name`).
    pub build: String,
    pub render: Arc<RenderEnv>,
    /// `PACKER_HTTP_ADDR` etc. when the build serves files.
    pub http: Option<(String, u16)>,
    /// `{{ build `Host` }}` values and `{{ .Host }}` in execute_command.
    pub build_values: BTreeMap<String, String>,
    /// `ssh_private_key_file`, for the breakpoint's login line (the
    /// temporary key, when used, is in `build_values`).
    pub ssh_private_key_file: Option<PathBuf>,
    pub reporter: Arc<dyn Reporter>,
    pub cancel: CancellationToken,
}

impl ProvisionEnv {
    /// An `inline` line (or any string kept for this moment) with the
    /// build's values.
    pub fn render_line(&self, line: &Deferred) -> Result<String, ProvisionError> {
        self.render_deferred(line, &BTreeMap::new())
    }

    /// `text` as kiln may print it: the build's own secrets (`{{ build
    /// `Password` }}`, `SSHPrivateKey`) become `<sensitive>`. A command line
    /// the user wrote with them in it (ansible's `extra_arguments`,
    /// shell-local's `environment_vars`) is shown through this; the
    /// template's sensitive variables are masked by the reporter anyway.
    pub fn shown(&self, text: &str) -> String {
        let secrets = ["Password", "SSHPrivateKey", "WinRMPassword"]
            .iter()
            .filter_map(|k| self.build_values.get(*k).cloned());
        crate::ui::console::SecretMask::new(secrets).mask(text)
    }

    /// Each of `lines` with the build's values (ansible's
    /// `extra_arguments`).
    pub fn render_all(&self, lines: &[Deferred]) -> Result<Vec<String>, ProvisionError> {
        lines.iter().map(|line| self.render_line(line)).collect()
    }

    /// The user's `environment_vars`, rendered and split at the first `=`,
    /// as Packer does.
    pub fn user_env(&self, vars: &[EnvVar]) -> Result<Vec<(String, String)>, ProvisionError> {
        vars.iter()
            .map(|EnvVar(entry)| {
                let text = self.render_line(entry)?;
                match text.split_once('=') {
                    Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
                    _ => Err(ProvisionError::Render {
                        text: entry.source().to_owned(),
                        message: format!("renders as `{text}`, which is not KEY=value"),
                    }),
                }
            })
            .collect()
    }

    /// A shell provisioner's own variables: `environment_vars`, then `env`,
    /// whose value wins for the same name (as in Packer), each rendered now.
    pub fn shell_user_env(
        &self,
        environment_vars: &[EnvVar],
        env: &BTreeMap<String, Deferred>,
    ) -> Result<Vec<(String, String)>, ProvisionError> {
        let mut vars = self.user_env(environment_vars)?;
        vars.retain(|(k, _)| !env.contains_key(k));
        for (k, value) in env {
            vars.push((k.clone(), self.render_line(value)?));
        }
        Ok(vars)
    }

    /// Renders a template parsed once at validation (`execute_command`,
    /// `install_command`, `inventory_file_template`) with this place's
    /// fields over the build values.
    pub fn render_deferred(
        &self,
        deferred: &Deferred,
        data: &BTreeMap<String, String>,
    ) -> Result<String, ProvisionError> {
        let mut all = self.build_values.clone();
        all.extend(data.iter().map(|(k, v)| (k.clone(), v.clone())));
        let ctx = Context {
            build_values: Some(&self.build_values),
            ..self.render.context(&all)
        };
        deferred
            .template
            .render(&ctx)
            .map_err(|e| ProvisionError::Render {
                text: deferred.source().to_owned(),
                message: e.to_string(),
            })
    }

    pub fn render_with(
        &self,
        text: &str,
        data: &BTreeMap<String, String>,
    ) -> Result<String, ProvisionError> {
        if !text.contains("{{") {
            return Ok(text.to_owned());
        }
        let mut all = self.build_values.clone();
        all.extend(data.iter().map(|(k, v)| (k.clone(), v.clone())));
        let ctx = Context {
            build_values: Some(&self.build_values),
            ..self.render.context(&all)
        };
        interp::parse(text)
            .and_then(|t| t.render(&ctx))
            .map_err(|e| ProvisionError::Render {
                text: text.to_owned(),
                message: e.to_string(),
            })
    }

    /// The environment every script gets, as Packer sets it: the build's
    /// name and type, the HTTP server's address, then the user's variables.
    pub fn script_env(&self, user: &[(String, String)]) -> Vec<(String, String)> {
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        vars.insert(
            "PACKER_BUILD_NAME".into(),
            self.render.packer_build_name().to_owned(),
        );
        vars.insert(
            "PACKER_BUILDER_TYPE".into(),
            self.render.build_type().to_owned(),
        );
        if let Some((ip, port)) = &self.http {
            vars.insert("PACKER_HTTP_ADDR".into(), format!("{ip}:{port}"));
            vars.insert("PACKER_HTTP_IP".into(), ip.clone());
            vars.insert("PACKER_HTTP_PORT".into(), port.to_string());
        }
        for (k, v) in user {
            vars.insert(k.clone(), v.clone());
        }
        vars.into_iter().collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("cannot render `{text}`: {message}")]
    Render { text: String, message: String },
    #[error("{what} exited with status {code}; allowed exit codes: {allowed:?}")]
    ExitStatus {
        what: String,
        code: i32,
        allowed: Vec<i64>,
    },
    #[error("{what} was killed by a signal")]
    Signal { what: String },
    #[error(
        "the connection dropped while {what} ran; if it reboots or shuts the machine down, set \"expect_disconnect\": true"
    )]
    Disconnected { what: String },
    #[error("{what}: {message}")]
    Remote {
        what: String,
        message: String,
        #[source]
        source: Option<remote::RemoteError>,
    },
    #[error("cannot read {path}")]
    ReadLocal {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run {what} on the host")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("this provisioner needs a communicator, but the build has \"communicator\": \"none\"")]
    NoCommunicator,
    #[error("{what} failed with exit status {code}; its output is above")]
    Failed { what: String, code: i32 },
    #[error("cannot write {what}")]
    WriteLocal {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the breakpoint cannot wait for Enter")]
    Breakpoint(#[source] crate::ui::NoAnswer),
    #[error(transparent)]
    Ansible(#[from] ansible::AnsibleError),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("interrupted")]
    Cancelled,
}

/// Runs one provisioner with its `pause_before`, `timeout` and `max_retries`.
pub async fn run(
    p: &Provisioner,
    env: &ProvisionEnv,
    remote: Option<&dyn Remote>,
) -> Result<(), ProvisionError> {
    if !p.pause_before.is_zero() {
        env.reporter.info(
            &env.build,
            &format!(
                "Pausing {:?} before the next provisioner...",
                p.pause_before
            ),
        );
        sleep_or_cancel(p.pause_before, &env.cancel).await?;
    }
    let mut attempt = 0;
    loop {
        let once = run_once(p, env, remote);
        let result = match p.timeout {
            Some(limit) => tokio::time::timeout(limit, once)
                .await
                .unwrap_or(Err(ProvisionError::Timeout(limit))),
            None => once.await,
        };
        match result {
            Err(e)
                if attempt < p.max_retries
                    && !matches!(e, ProvisionError::Cancelled)
                    && !env.cancel.is_cancelled() =>
            {
                attempt += 1;
                env.reporter.warn(
                    &env.build,
                    &format!(
                        "{} failed: {e}; retrying ({attempt} of {})",
                        p.type_name, p.max_retries
                    ),
                );
                // Packer backs off between attempts; a short fixed pause keeps tests fast.
                sleep_or_cancel(Duration::from_secs(2), &env.cancel).await?;
            }
            other => return other,
        }
    }
}

async fn run_once(
    p: &Provisioner,
    env: &ProvisionEnv,
    remote: Option<&dyn Remote>,
) -> Result<(), ProvisionError> {
    match &p.kind {
        ProvisionerKind::Shell(c) => {
            shell::run(c, env, remote.ok_or(ProvisionError::NoCommunicator)?).await
        }
        ProvisionerKind::File(c) => {
            file::run(c, env, remote.ok_or(ProvisionError::NoCommunicator)?).await
        }
        ProvisionerKind::ShellLocal(c) => shell_local::run(c, env, None).await,
        ProvisionerKind::Breakpoint(c) => breakpoint::run(c, env).await,
        ProvisionerKind::ChefSolo(c) => {
            chef_solo::run(c, env, remote.ok_or(ProvisionError::NoCommunicator)?).await
        }
        ProvisionerKind::SaltMasterless(c) => {
            salt_masterless::run(c, env, remote.ok_or(ProvisionError::NoCommunicator)?).await
        }
        ProvisionerKind::Ansible(c) => ansible::run(c, env).await,
        ProvisionerKind::AnsibleLocal(c) => {
            ansible_local::run(c, env, remote.ok_or(ProvisionError::NoCommunicator)?).await
        }
    }
}

pub(crate) async fn sleep_or_cancel(
    d: Duration,
    cancel: &CancellationToken,
) -> Result<(), ProvisionError> {
    tokio::select! {
        () = tokio::time::sleep(d) => Ok(()),
        () = cancel.cancelled() => Err(ProvisionError::Cancelled),
    }
}

/// `KEY='value' ` with single quotes escaped the way Packer does.
pub fn flatten_env(vars: &[(String, String)], format: Option<&str>) -> String {
    let mut out = String::new();
    for (k, v) in vars {
        let escaped = v.replace('\'', "'\"'\"'");
        match format {
            Some(f) => out.push_str(&f.replacen("%s", k, 1).replacen("%s", &escaped, 1)),
            None => out.push_str(&format!("{k}='{escaped}' ")),
        }
    }
    out
}

pub use shell_local::run as run_shell_local;

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with_host(host: &str) -> ProvisionEnv {
        ProvisionEnv {
            build: "b.qemu.y".into(),
            render: crate::template::render_env::RenderEnv::single_build(
                "x",
                "qemu",
                std::path::Path::new("."),
            ),
            http: None,
            build_values: [("Host".to_owned(), host.to_owned())].into(),
            ssh_private_key_file: None,
            reporter: Arc::new(crate::ui::RecordingReporter::new()),
            cancel: CancellationToken::new(),
        }
    }

    fn deferred(text: &str) -> Deferred {
        Deferred {
            template: interp::parse(text).expect("parses"),
            span: Default::default(),
        }
    }

    #[test]
    fn a_kept_line_renders_with_the_build_values_as_it_runs() {
        let env = env_with_host("10.0.2.15");
        let line = deferred("ssh {{ build `Host` }} as {{ build_name }}");
        assert_eq!(
            env.render_line(&line).expect("renders"),
            "ssh 10.0.2.15 as x"
        );
        let vars = [
            EnvVar(deferred("HOST={{ build `Host` }}")),
            EnvVar(deferred("EMPTY=")),
        ];
        assert_eq!(
            env.user_env(&vars).expect("renders"),
            [
                ("HOST".to_owned(), "10.0.2.15".to_owned()),
                ("EMPTY".to_owned(), String::new())
            ]
        );
        // The key may come from a build value only at run time: an empty
        // one is still refused, naming the entry.
        let env = env_with_host("");
        let bad = [EnvVar(deferred("{{ build `Host` }}=1"))];
        let e = env.user_env(&bad).expect_err("no key").to_string();
        assert!(e.contains("{{ build `Host` }}=1"), "{e}");
        assert!(e.contains("not KEY=value"), "{e}");
    }

    /// `env` after `environment_vars`: it wins for the same name, keeps
    /// its values whole (nothing is split at `=`), and is rendered with the
    /// build's values as it runs.
    #[test]
    fn env_wins_over_environment_vars_and_keeps_its_values_whole() {
        let env = env_with_host("10.0.2.15");
        let vars = [
            EnvVar(deferred("SHARED=from environment_vars")),
            EnvVar(deferred("ONLY_VARS=kept")),
        ];
        let map: BTreeMap<String, Deferred> = [
            ("SHARED", "from env"),
            ("EQUALS", "a=b=c"),
            ("HOST", "on {{ build `Host` }}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), deferred(v)))
        .collect();
        let merged = env.shell_user_env(&vars, &map).expect("renders");
        assert_eq!(
            merged,
            [
                ("ONLY_VARS", "kept"),
                ("EQUALS", "a=b=c"),
                ("HOST", "on 10.0.2.15"),
                ("SHARED", "from env"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        // Packer's own variables come first; the user's may replace them.
        let all = env.script_env(&merged);
        assert!(all.contains(&("PACKER_BUILD_NAME".to_owned(), "x".to_owned())));
        assert!(all.contains(&("SHARED".to_owned(), "from env".to_owned())));
    }

    #[test]
    fn env_is_flattened_with_quotes_escaped() {
        let vars = vec![
            ("A".to_owned(), "it's".to_owned()),
            ("B".to_owned(), "x y".to_owned()),
        ];
        assert_eq!(flatten_env(&vars, None), "A='it'\"'\"'s' B='x y' ");
        assert_eq!(
            flatten_env(&vars, Some("export %s='%s'\n")),
            "export A='it'\"'\"'s'\nexport B='x y'\n"
        );
    }
}
