//! Decides how kiln will log in and offers the key pair to the templates
//! rendered later (`{{ .SSHPublicKey }}` in the boot command and
//! `http_content`), as Packer's ssh key pair step does: a password needs
//! nothing, a key file offers its own public key, the agent is used as it
//! is, and otherwise a temporary pair is made for this build.

use crate::communicator::ssh::generate_temporary_key;
use std::path::PathBuf;

use crate::run::runner::{
    CleanupFuture, FailureClass, Outcome, Step, StepContext, StepFailure, StepFuture,
};

use super::HasCommon;

#[derive(Debug, thiserror::Error)]
pub enum KeyPairError {
    #[error("ssh_private_key_file: cannot use {}", .path.display())]
    KeyFile {
        path: PathBuf,
        #[source]
        source: russh::keys::Error,
    },
    #[error("cannot write the public key of ssh_private_key_file")]
    PublicKey(#[source] russh::keys::ssh_key::Error),
    /// The cause is written into the message, as before the typed error.
    #[error("the key generation stopped: {0}")]
    Task(tokio::task::JoinError),
    #[error("no temporary SSH key")]
    Generate(#[source] crate::communicator::ssh::KeygenError),
}

impl StepFailure for KeyPairError {
    fn class(&self) -> FailureClass {
        match self {
            // The file the template names is missing, encrypted or not a key.
            Self::KeyFile { .. } => FailureClass::Input,
            Self::PublicKey(_) | Self::Task(_) | Self::Generate(_) => FailureClass::Host,
        }
    }
}

pub struct StepSshKeyPair;

impl<S: HasCommon> Step<S> for StepSshKeyPair {
    fn name(&self) -> &'static str {
        "Choosing the SSH key pair"
    }

    fn run<'a>(&'a mut self, state: &'a mut S, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let common = state.common();
            let Some(ssh) = common.communicator.ssh().cloned() else {
                return Ok(());
            };
            if ssh.password.is_some() {
                ctx.reporter
                    .info(&ctx.build, "Using the password for the communicator");
                return Ok(());
            }
            if let Some(path) = &ssh.private_key_file {
                // Relative paths are read from the working directory, as the
                // validation checked them.
                let path = common.options.render.pwd().join(path);
                let key = russh::keys::load_secret_key(&path, None)
                    .map_err(|source| KeyPairError::KeyFile { path, source })?;
                ctx.reporter.info(
                    &ctx.build,
                    "Using the existing SSH private key for the communicator",
                );
                common.ssh_public_key = key
                    .public_key()
                    .to_openssh()
                    .map_err(KeyPairError::PublicKey)?;
                common.ssh_private_key = key
                    .to_openssh(russh::keys::ssh_key::LineEnding::LF)
                    .map(|pem| pem.to_string())
                    .unwrap_or_default();
                return Ok(());
            }
            if ssh.agent_auth {
                ctx.reporter.info(
                    &ctx.build,
                    "Using the SSH agent (SSH_AUTH_SOCK) to authenticate the communicator",
                );
                return Ok(());
            }
            let spec = ssh.temporary_key_pair;
            ctx.reporter.info(
                &ctx.build,
                &format!(
                    "Creating a temporary {} SSH key pair ({} bits) for the communicator",
                    spec.kind.name(),
                    spec.bits()
                ),
            );
            let comment = format!("kiln_{}", common.options.render.run_uuid());
            // RSA keys take seconds to find their primes: off the runtime.
            let key = tokio::task::spawn_blocking(move || generate_temporary_key(&spec, &comment))
                .await
                .map_err(KeyPairError::Task)?
                .map_err(KeyPairError::Generate)?;
            common.ssh_public_key = key.public_line.clone();
            common.ssh_private_key = key.private_pem.clone();
            common.temporary_key = Some(key);
            Ok(())
        })
    }

    fn cleanup<'a>(
        &'a mut self,
        state: &'a mut S,
        _ctx: &'a StepContext,
        _outcome: Outcome,
    ) -> CleanupFuture<'a> {
        Box::pin(async move {
            // The pair was only ever in memory; drop it with the build.
            let common = state.common();
            common.temporary_key = None;
            common.ssh_private_key.clear();
        })
    }
}
