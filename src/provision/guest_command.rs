//! Small commands provisioners run on a Unix guest (make a directory, move,
//! remove), with `sudo` when the provisioner uses it, and a runner that
//! streams their output and turns a non-zero status into an error.

use super::remote::{Remote, RemoteExit};
use super::{ProvisionEnv, ProvisionError};

/// `text` as one word for the guest's `/bin/sh`.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\"'\"'"))
}

/// Prefixes `sudo ` when `sudo` is set, as Packer's guest commands do.
pub fn with_sudo(sudo: bool, command: &str) -> String {
    if sudo {
        format!("sudo {command}")
    } else {
        command.to_owned()
    }
}

pub fn mkdir(sudo: bool, dir: &str) -> String {
    with_sudo(sudo, &format!("mkdir -p {}", quote(dir)))
}

pub fn chmod(sudo: bool, mode: &str, path: &str) -> String {
    with_sudo(sudo, &format!("chmod {mode} {}", quote(path)))
}

pub fn mv(sudo: bool, from: &str, to: &str) -> String {
    with_sudo(sudo, &format!("mv {} {}", quote(from), quote(to)))
}

pub fn rm_rf(sudo: bool, path: &str) -> String {
    with_sudo(sudo, &format!("rm -rf {}", quote(path)))
}

/// Runs `command`, each output line shown as the build's output. Returns
/// its exit status; a dropped connection or a signal is an error.
pub async fn run_streamed(
    env: &ProvisionEnv,
    remote: &dyn Remote,
    what: &str,
    command: &str,
) -> Result<i32, ProvisionError> {
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
        RemoteExit::Code(code) => Ok(code),
        RemoteExit::Signal => Err(ProvisionError::Signal {
            what: what.to_owned(),
        }),
        RemoteExit::Disconnected => Err(ProvisionError::Disconnected {
            what: what.to_owned(),
        }),
    }
}

/// Like [`run_streamed`], and a non-zero status is an error naming `what`.
pub async fn run_checked(
    env: &ProvisionEnv,
    remote: &dyn Remote,
    what: &str,
    command: &str,
) -> Result<(), ProvisionError> {
    match run_streamed(env, remote, what, command).await? {
        0 => Ok(()),
        code => Err(ProvisionError::Failed {
            what: format!("{what} (`{command}`)"),
            code,
        }),
    }
}

/// Uploads a local file or directory; a trailing `/` on `local` copies a
/// directory's contents into `remote_path`.
pub async fn upload(
    remote: &dyn Remote,
    what: &str,
    local: &std::path::Path,
    remote_path: &str,
) -> Result<(), ProvisionError> {
    remote
        .upload_path(local, remote_path)
        .await
        .map_err(|e| ProvisionError::Remote {
            what: format!("uploading {what} ({}) to {remote_path}", local.display()),
            message: e.message.clone(),
            source: Some(e),
        })
}

pub async fn upload_bytes(
    remote: &dyn Remote,
    what: &str,
    data: &[u8],
    remote_path: &str,
    mode: u32,
) -> Result<(), ProvisionError> {
    remote
        .upload_bytes(data, remote_path, mode)
        .await
        .map_err(|e| ProvisionError::Remote {
            what: format!("uploading {what} to {remote_path}"),
            message: e.message.clone(),
            source: Some(e),
        })
}

/// `dir` with a trailing `/`, so its contents (not the directory itself)
/// are copied, as Packer's provisioners upload trees.
pub fn contents_of(dir: &std::path::Path) -> std::path::PathBuf {
    let mut s = dir.as_os_str().to_owned();
    if !s.as_encoded_bytes().ends_with(b"/") {
        s.push("/");
    }
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_sh_and_sudo_is_a_prefix() {
        assert_eq!(quote("it's"), "'it'\"'\"'s'");
        assert_eq!(
            mv(true, "/tmp/a b", "/srv/salt"),
            "sudo mv '/tmp/a b' '/srv/salt'"
        );
        assert_eq!(mkdir(false, "/tmp/x"), "mkdir -p '/tmp/x'");
        assert_eq!(
            contents_of(std::path::Path::new("salt")),
            std::path::PathBuf::from("salt/")
        );
    }
}
