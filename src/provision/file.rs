//! The `file` provisioner: uploads or downloads files and directories, or
//! uploads `content` given in the template.

use std::path::PathBuf;

use super::remote::Remote;
use super::{ProvisionEnv, ProvisionError};
use crate::config::decode::Deferred;
use crate::config::provisioner::{Direction, FileConfig, FileSource};

/// What `content` is called in a destination ending in `/`, as Packer's
/// documentation names it.
const CONTENT_FILE_NAME: &str = "pkr-file-content";

pub async fn run(
    c: &FileConfig,
    env: &ProvisionEnv,
    remote: &dyn Remote,
) -> Result<(), ProvisionError> {
    let destination = env.render_line(&c.destination)?;
    let sources = match &c.source {
        FileSource::Content(content) => {
            return upload_content(env, remote, content, &destination).await;
        }
        FileSource::Paths(sources) => sources,
    };
    for source in sources {
        let source = env.render_line(source)?;
        match c.direction {
            Direction::Upload => {
                let local = local_path(env, &source);
                env.reporter
                    .info(&env.build, &format!("Uploading {source} => {destination}"));
                remote
                    .upload_path(&local, &destination)
                    .await
                    .map_err(|e| ProvisionError::Remote {
                        what: format!("uploading {source} to {destination}"),
                        message: e.message.clone(),
                        source: Some(e),
                    })?;
            }
            Direction::Download => {
                let local = local_path(env, &destination);
                env.reporter.info(
                    &env.build,
                    &format!("Downloading {source} => {destination}"),
                );
                remote.download_path(&source, &local).await.map_err(|e| {
                    ProvisionError::Remote {
                        what: format!("downloading {source} to {destination}"),
                        message: e.message.clone(),
                        source: Some(e),
                    }
                })?;
            }
        }
    }
    Ok(())
}

/// `content` may hold secrets: it goes from kiln's memory to the guest
/// (Packer writes it to a temporary file first), is never printed, and
/// lands readable by its owner alone, as Packer's upload of that file
/// leaves it.
async fn upload_content(
    env: &ProvisionEnv,
    remote: &dyn Remote,
    content: &Deferred,
    destination: &str,
) -> Result<(), ProvisionError> {
    let text = env.render_line(content).map_err(|e| match e {
        ProvisionError::Render { message, .. } => ProvisionError::Render {
            text: "content".into(),
            message,
        },
        e => e,
    })?;
    let target = if destination.ends_with('/') {
        format!("{destination}{CONTENT_FILE_NAME}")
    } else {
        destination.to_owned()
    };
    env.reporter
        .info(&env.build, &format!("Uploading content => {target}"));
    remote
        .upload_bytes(text.as_bytes(), &target, 0o600)
        .await
        .map_err(|e| ProvisionError::Remote {
            what: format!("uploading content to {target}"),
            message: e.message.clone(),
            source: Some(e),
        })
}

/// Relative local paths are taken from the working directory, then beside
/// the template (as validation resolved them). A trailing `/` is kept: it
/// decides whether a directory or its contents are copied.
fn local_path(env: &ProvisionEnv, path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    if p.is_absolute() {
        return p;
    }
    let from_cwd = env.render.pwd().join(path);
    if from_cwd.exists() {
        return from_cwd;
    }
    let beside = env.render.template_dir().join(path);
    if beside.exists() { beside } else { from_cwd }
}
