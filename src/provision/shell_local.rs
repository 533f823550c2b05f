//! `shell-local`: runs commands on the host, as a provisioner and as a
//! post-processor (which adds the artifact's files to the environment).

use std::collections::BTreeMap;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::{ProvisionEnv, ProvisionError, flatten_env};
use crate::config::provisioner::{ShellLocalConfig, ShellSource};

/// Runs the configured inline lines or scripts locally. `extra_env` is
/// added to the variables (the post-processor passes the artifact's paths).
pub async fn run(
    c: &ShellLocalConfig,
    env: &ProvisionEnv,
    extra_env: Option<&[(String, String)]>,
) -> Result<(), ProvisionError> {
    if !c.only_on.is_empty() && !c.only_on.iter().any(|os| os == std::env::consts::OS) {
        env.reporter.info(
            &env.build,
            &format!(
                "Skipping shell-local: only_on {:?} does not include {}",
                c.only_on,
                std::env::consts::OS
            ),
        );
        return Ok(());
    }
    let mut user: Vec<(String, String)> = env.shell_user_env(&c.environment_vars, &c.env)?;
    user.extend(extra_env.unwrap_or_default().iter().cloned());
    let vars = env.script_env(&user);

    // Inline lines become one temporary script, as in Packer.
    let mut temp = None;
    let scripts: Vec<std::path::PathBuf> = match &c.source {
        ShellSource::Inline(lines) => {
            let mut text = format!("#!{}\n", c.inline_shebang);
            for line in lines {
                text.push_str(&env.render_line(line)?);
                text.push('\n');
            }
            let ext = c
                .tempfile_extension
                .as_deref()
                .map(|e| format!(".{}", e.trim_start_matches('.')))
                .unwrap_or_default();
            let dir = tempfile::Builder::new()
                .prefix("kiln-shell-local-")
                .tempdir()
                .map_err(|source| ProvisionError::Spawn {
                    what: "a temporary script".into(),
                    source,
                })?;
            let path = dir.path().join(format!("script{ext}"));
            write_script(&path, &text)
                .await
                .map_err(|source| ProvisionError::Spawn {
                    what: format!("the temporary script {}", path.display()),
                    source,
                })?;
            temp = Some(dir);
            vec![path]
        }
        ShellSource::Scripts(paths) => paths.clone(),
    };

    for script in &scripts {
        let script_text = script.display().to_string();
        let mut data = BTreeMap::new();
        data.insert(
            "Vars".to_owned(),
            flatten_env(&vars, c.env_var_format.as_deref())
                .trim_end()
                .to_owned(),
        );
        data.insert("Script".to_owned(), script_text.clone());
        data.insert("Command".to_owned(), script_text.clone());
        let argv: Vec<String> = c
            .execute_command
            .iter()
            .map(|d| env.render_deferred(d, &data))
            .collect::<Result<_, _>>()?;
        let Some((program, args)) = argv.split_first() else {
            return Err(ProvisionError::Render {
                text: String::new(),
                message: "execute_command is empty".into(),
            });
        };
        env.reporter.info(
            &env.build,
            &env.shown(&format!("Running local command: {}", argv.join(" "))),
        );
        let code = run_streamed(program, args, &[], env).await?;
        if !c.valid_exit_codes.contains(&i64::from(code)) {
            return Err(ProvisionError::ExitStatus {
                what: env.shown(&format!("local command `{}`", argv.join(" "))),
                code,
                allowed: c.valid_exit_codes.clone(),
            });
        }
    }
    drop(temp);
    Ok(())
}

/// Writes `text` to `path` as a new script only its owner may run, from a
/// `sh` child rather than from kiln. A file kiln itself opened for writing
/// could not be run at once: a process that another of kiln's threads forks
/// in that moment inherits the descriptor and holds it until its own `exec`,
/// and running the script meanwhile fails with ETXTBSY ("text file busy").
/// The child is the only process that ever holds the file open for writing,
/// nothing forks from it, and it has exited before the script runs.
async fn write_script(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut writer = tokio::process::Command::new("/bin/sh")
        .args(["-c", "umask 077 && cat > \"$1\" && chmod 700 \"$1\"", "sh"])
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    // The block ends the pipe: `cat` sees its end.
    let wrote = match writer.stdin.take() {
        Some(mut stdin) => stdin.write_all(text.as_bytes()).await,
        None => Ok(()),
    };
    let out = writer.wait_with_output().await?;
    if out.status.success() {
        wrote
    } else {
        Err(std::io::Error::other(format!(
            "sh could not write it ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Stops the command and everything in its process group: SIGTERM, then
/// SIGKILL after two seconds.
async fn stop_group(child: &mut tokio::process::Child) {
    use rustix::process::{Pid, Signal, kill_process_group};
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw);
    if let Some(group) = group {
        let _ = kill_process_group(group, Signal::TERM);
        if tokio::time::timeout(std::time::Duration::from_secs(2), child.wait())
            .await
            .is_ok()
        {
            // The shell is gone; its children may not be.
            let _ = kill_process_group(group, Signal::KILL);
            return;
        }
        let _ = kill_process_group(group, Signal::KILL);
    }
    let _ = child.kill().await;
}

/// Spawns a host process with `envs` added to kiln's environment, streams
/// its output lines, kills it (and its process group) on cancel.
pub(super) async fn run_streamed(
    program: &str,
    args: &[String],
    envs: &[(String, String)],
    env: &ProvisionEnv,
) -> Result<i32, ProvisionError> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group, so cancelling reaches what the script started.
        .process_group(0)
        .spawn()
        .map_err(|source| ProvisionError::Spawn {
            what: program.to_owned(),
            source,
        })?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let stream = |pipe: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
        let reporter = env.reporter.clone();
        let build = env.build.clone();
        tokio::spawn(async move {
            let Some(pipe) = pipe else { return };
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                reporter.output_line(&build, &line);
            }
        })
    };
    let out = stream(stdout.map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>));
    let err = stream(stderr.map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>));
    let status = tokio::select! {
        s = child.wait() => s.map_err(|source| ProvisionError::Spawn { what: program.to_owned(), source })?,
        () = env.cancel.cancelled() => {
            stop_group(&mut child).await;
            return Err(ProvisionError::Cancelled);
        }
    };
    let _ = out.await;
    let _ = err.await;
    status.code().ok_or_else(|| ProvisionError::Signal {
        what: format!("local command {program}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::decode::Deferred;
    use crate::config::provisioner::EnvVar;
    use crate::ui::RecordingReporter;
    use std::sync::Arc;
    use tokio_util::sync::CancellationToken;

    fn deferred(s: &str) -> Deferred {
        Deferred {
            template: crate::template::interp::parse(s).expect("parses"),
            span: Default::default(),
        }
    }

    fn env(reporter: Arc<RecordingReporter>) -> ProvisionEnv {
        ProvisionEnv {
            build: "b".into(),
            render: crate::template::render_env::RenderEnv::single_build(
                "b",
                "qemu",
                &std::env::temp_dir(),
            ),
            http: Some(("10.0.2.2".into(), 8123)),
            build_values: BTreeMap::new(),
            ssh_private_key_file: None,
            reporter,
            cancel: CancellationToken::new(),
        }
    }

    fn config(lines: &[&str], codes: Vec<i64>) -> ShellLocalConfig {
        ShellLocalConfig {
            source: ShellSource::Inline(lines.iter().map(|s| deferred(s)).collect()),
            execute_command: ["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]
                .iter()
                .map(|s| deferred(s))
                .collect(),
            environment_vars: vec![EnvVar(deferred("GREETING=it's {{ build_name }}"))],
            env: BTreeMap::new(),
            env_var_format: None,
            inline_shebang: "/bin/sh -e".into(),
            only_on: vec![],
            tempfile_extension: None,
            use_linux_pathing: false,
            valid_exit_codes: codes,
        }
    }

    #[tokio::test]
    async fn runs_inline_lines_with_packer_environment() {
        let reporter = Arc::new(RecordingReporter::new());
        let c = config(
            &[
                "echo \"$GREETING via $PACKER_BUILD_NAME at $PACKER_HTTP_ADDR\"",
                "echo second",
            ],
            vec![0],
        );
        run(&c, &env(reporter.clone()), None).await.expect("runs");
        let out = reporter.infos();
        assert!(
            out.contains(&"it's b via b at 10.0.2.2:8123".to_owned()),
            "{out:?}"
        );
        assert!(out.contains(&"second".to_owned()), "{out:?}");
    }

    #[tokio::test]
    async fn a_failing_command_names_its_status() {
        let reporter = Arc::new(RecordingReporter::new());
        let c = config(&["echo before", "exit 3"], vec![0]);
        let e = run(&c, &env(reporter.clone()), None)
            .await
            .expect_err("fails");
        assert!(
            matches!(e, ProvisionError::ExitStatus { code: 3, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("exited with status 3"), "{e}");
        // -e in the shebang stops the script at the first failure.
        let c = config(&["false", "echo never"], vec![0]);
        let e = run(&c, &env(reporter.clone()), None)
            .await
            .expect_err("fails");
        assert!(!reporter.infos().contains(&"never".to_owned()), "{e}");
        // Allowed non-zero codes pass.
        run(&config(&["exit 3"], vec![0, 3]), &env(reporter), None)
            .await
            .expect("3 allowed");
    }

    /// Other threads spawning processes all the while, as a parallel
    /// build's do: the inline script must run every time. With the script
    /// written by kiln itself (`std::fs::write`, then run), a run of this
    /// test failed 1 of its 400 (`sh`: "Text file busy", status 126).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inline_scripts_run_while_other_threads_spawn_processes() {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spawners: Vec<_> = (0..3)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let _ = std::process::Command::new("true").status();
                    }
                })
            })
            .collect();
        let reporter = Arc::new(RecordingReporter::new());
        let c = config(&["true"], vec![0]);
        let mut failures = Vec::new();
        for _ in 0..RUNS {
            if let Err(e) = run(&c, &env(reporter.clone()), None).await {
                failures.push(e.to_string());
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for s in spawners {
            s.join().expect("spawner");
        }
        assert!(
            failures.is_empty(),
            "{} of {RUNS}: {failures:?}",
            failures.len()
        );
    }
    const RUNS: usize = 400;

    #[tokio::test]
    async fn cancellation_kills_the_command() {
        let reporter = Arc::new(RecordingReporter::new());
        let e = env(reporter);
        let cancel = e.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            cancel.cancel();
        });
        let started = std::time::Instant::now();
        // The shell waits for `sleep`, a process of its own: both must go.
        // The sleep's length names this test process, so that the same test
        // running in another suite on the machine is not taken for a survivor.
        let sleep = format!("sleep 31.{}", std::process::id());
        let line = format!("{sleep}; echo after");
        let r = run(&config(&[line.as_str()], vec![0]), &e, None).await;
        assert!(matches!(r, Err(ProvisionError::Cancelled)));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // The kill is sent; the process is gone once the kernel has reaped it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let survivors = loop {
            let survivors: Vec<String> = std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .filter(|c| c.trim_end() == sleep)
                .collect();
            if survivors.is_empty() || std::time::Instant::now() > deadline {
                break survivors;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert!(survivors.is_empty(), "left running: {survivors:?}");
    }
}
