//! The `file` provisioner: uploads or downloads files and directories.

use std::path::PathBuf;

use super::remote::Remote;
use super::{ProvisionEnv, ProvisionError};
use crate::config::provisioner::{Direction, FileConfig};

pub async fn run(
    c: &FileConfig,
    env: &ProvisionEnv,
    remote: &dyn Remote,
) -> Result<(), ProvisionError> {
    let destination = env.render_line(&c.destination)?;
    for source in &c.sources {
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
