//! The `breakpoint` provisioner: pauses the build until Enter is pressed,
//! printing how to log in to the machine meanwhile. Like Packer it reads a
//! line from stdin whether or not stdin is a terminal (so CI can feed it
//! one), and fails when stdin ends or output is `-machine-readable`
//! rather than continuing unseen.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::{ProvisionEnv, ProvisionError};
use crate::config::breakpoint::BreakpointConfig;
use crate::ui::NoAnswer;

pub async fn run(c: &BreakpointConfig, env: &ProvisionEnv) -> Result<(), ProvisionError> {
    let build = &env.build;
    if c.disable {
        let text = if c.note.is_empty() {
            "Breakpoint provisioner disabled; continuing...".to_owned()
        } else {
            format!(
                "Breakpoint provisioner with note \"{}\" disabled; continuing...",
                c.note
            )
        };
        env.reporter.info(build, &text);
        return Ok(());
    }
    let text = if c.note.is_empty() {
        "Pausing at breakpoint provisioner.".to_owned()
    } else {
        format!(
            "Pausing at breakpoint provisioner with note \"{}\".",
            c.note
        )
    };
    env.reporter.info(build, &text);
    // Held until the pause ends: the temporary key's file is removed with it.
    let key_dir = login_details(env)?;
    let result = wait_for_enter(env).await;
    drop(key_dir);
    result
}

/// Prints host, port, user and key file; writes the build's temporary
/// private key to a 0600 file in a scratch directory when it has one.
fn login_details(env: &ProvisionEnv) -> Result<Option<tempfile::TempDir>, ProvisionError> {
    let value = |k: &str| env.build_values.get(k).filter(|v| !v.is_empty());
    let (Some(host), Some(port), Some(user)) = (value("Host"), value("Port"), value("User")) else {
        env.reporter.info(
            &env.build,
            "The build has no SSH connection to log in with.",
        );
        return Ok(None);
    };
    let mut dir = None;
    let key_file: Option<PathBuf> = match (&env.ssh_private_key_file, value("SSHPrivateKey")) {
        (Some(file), _) => Some(file.clone()),
        (None, Some(pem)) => {
            let scratch = crate::host::scratch::tempdir("breakpoint").map_err(|source| {
                ProvisionError::WriteLocal {
                    what: "the temporary SSH key".into(),
                    source,
                }
            })?;
            let path = scratch.path().join("ssh-key");
            write_private(&path, pem.as_bytes()).map_err(|source| ProvisionError::WriteLocal {
                what: format!("the temporary SSH key to {}", path.display()),
                source,
            })?;
            dir = Some(scratch);
            Some(path)
        }
        (None, None) => None,
    };
    let mut login = format!("ssh -p {port}");
    if let Some(key) = &key_file {
        login.push_str(&format!(" -i {}", key.display()));
    }
    login.push_str(&format!(" {user}@{host}"));
    let mut lines = vec![
        format!("SSH: host {host}, port {port}, user {user}"),
        format!("To log in: {login}"),
    ];
    match (&key_file, value("Password")) {
        (Some(key), _) if dir.is_some() => lines.push(format!(
            "The temporary private key is in {} (removed when the build goes on)",
            key.display()
        )),
        (_, Some(_)) => lines.push("Password: the template's ssh_password".into()),
        _ => {}
    }
    for line in lines {
        env.reporter.info(&env.build, &line);
    }
    Ok(dir)
}

fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(data)
}

/// Reads stdin on a thread of its own: a blocked read cannot be
/// cancelled, and a detached thread does not hold up kiln's exit on Ctrl-C.
async fn wait_for_enter(env: &ProvisionEnv) -> Result<(), ProvisionError> {
    let (tx, rx) = tokio::sync::oneshot::channel::<Result<(), NoAnswer>>();
    let reporter = env.reporter.clone();
    let build = env.build.clone();
    std::thread::spawn(move || {
        let _ = tx.send(reporter.wait_for_enter(&build, "Press enter to continue."));
    });
    tokio::select! {
        answer = rx => match answer {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(ProvisionError::Breakpoint(reason)),
            Err(_) => Err(ProvisionError::Breakpoint(NoAnswer::EndOfInput)),
        },
        () = env.cancel.cancelled() => Err(ProvisionError::Cancelled),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::ui::RecordingReporter;

    fn env(reporter: Arc<RecordingReporter>, values: &[(&str, &str)]) -> ProvisionEnv {
        ProvisionEnv {
            build: "b".into(),
            render: crate::template::render_env::RenderEnv::single_build(
                "b",
                "qemu",
                std::path::Path::new("."),
            ),
            http: None,
            build_values: values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            ssh_private_key_file: None,
            reporter,
            cancel: tokio_util::sync::CancellationToken::new(),
        }
    }

    #[tokio::test]
    async fn the_temporary_key_is_written_0600_while_paused_and_removed_after() {
        use std::os::unix::fs::PermissionsExt;
        let reporter = Arc::new(RecordingReporter::with_answers([""]));
        let e = env(
            reporter.clone(),
            &[
                ("Host", "127.0.0.1"),
                ("Port", "2222"),
                ("User", "root"),
                ("SSHPrivateKey", "-----BEGIN OPENSSH PRIVATE KEY-----\n"),
            ],
        );
        let dir = login_details(&e).expect("written").expect("a key dir");
        let key = dir.path().join("ssh-key");
        let mode = std::fs::metadata(&key)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let lines = reporter.infos().join("\n");
        assert!(
            lines.contains(&format!("ssh -p 2222 -i {} root@127.0.0.1", key.display())),
            "{lines}"
        );
        assert!(
            !lines.contains("BEGIN"),
            "the key itself is never shown: {lines}"
        );
        drop(dir);
        assert!(!key.exists());
    }

    #[tokio::test]
    async fn a_password_is_never_printed_and_a_disabled_breakpoint_does_not_wait() {
        let reporter = Arc::new(RecordingReporter::new());
        let e = env(
            reporter.clone(),
            &[
                ("Host", "127.0.0.1"),
                ("Port", "2222"),
                ("User", "root"),
                ("Password", "s3cret-pw"),
            ],
        );
        let paused = BreakpointConfig {
            disable: false,
            note: "one".into(),
        };
        // No answer scripted: stdin "ended", the build must not go on unseen.
        let err = run(&paused, &e).await.expect_err("no Enter");
        assert!(matches!(
            err,
            ProvisionError::Breakpoint(NoAnswer::EndOfInput)
        ));
        let lines = reporter.infos().join("\n");
        assert!(!lines.contains("s3cret-pw"), "{lines}");
        assert!(lines.contains("with note \"one\""), "{lines}");
        let disabled = BreakpointConfig {
            disable: true,
            note: "two".into(),
        };
        run(&disabled, &e).await.expect("skipped");
    }
}
