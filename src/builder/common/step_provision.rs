//! Runs the template's provisioners over the connection, in order; on a
//! failure with `-on-error=run-cleanup-provisioner`, the template's
//! error-cleanup-provisioner runs before the VM is stopped.

use std::collections::BTreeMap;

use crate::provision::{self, ProvisionEnv, ProvisionError, remote::Remote};
use crate::run::runner::{
    CleanupFuture, FailureClass, OnError, Outcome, Step, StepContext, StepFailure, StepFuture,
};

use super::super::ssh_remote::SshRemote;
use super::{CommonState, HasCommon};

/// A provisioner that failed, classed by where its command ran.
#[derive(Debug, thiserror::Error)]
#[error("{path} failed")]
pub struct ProvisionerFailed {
    path: String,
    /// shell-local: its commands run on the host, not in the guest.
    on_host: bool,
    #[source]
    source: ProvisionError,
}

impl StepFailure for ProvisionerFailed {
    fn class(&self) -> FailureClass {
        use ProvisionError as E;
        match &self.source {
            E::Cancelled => FailureClass::Interrupted,
            E::Render { .. } | E::NoCommunicator => FailureClass::Input,
            E::ReadLocal { .. }
            | E::Spawn { .. }
            | E::WriteLocal { .. }
            | E::Breakpoint(_)
            | E::Ansible(_) => FailureClass::Host,
            E::ExitStatus { .. } | E::Signal { .. } | E::Failed { .. } if self.on_host => {
                FailureClass::Host
            }
            E::ExitStatus { .. }
            | E::Signal { .. }
            | E::Failed { .. }
            | E::Disconnected { .. }
            | E::Remote { .. }
            | E::Timeout(_) => FailureClass::Guest,
        }
    }
}

pub struct StepProvision;

fn provision_env(common: &CommonState, ctx: &StepContext) -> ProvisionEnv {
    let mut build_values = BTreeMap::new();
    build_values.insert("ID".to_owned(), common.build_name.clone());
    build_values.insert(
        "PackerRunUUID".to_owned(),
        common.options.render.run_uuid().to_owned(),
    );
    build_values.insert(
        "ConnType".to_owned(),
        if common.ssh.is_some() { "ssh" } else { "none" }.to_owned(),
    );
    if let Some(ssh) = common.communicator.ssh() {
        build_values.insert(
            "Host".to_owned(),
            ssh.host.clone().unwrap_or_else(|| "127.0.0.1".to_owned()),
        );
        build_values.insert(
            "Port".to_owned(),
            common.ssh_host_port.unwrap_or(ssh.port).to_string(),
        );
        build_values.insert("User".to_owned(), ssh.username.clone());
        build_values.insert(
            "Password".to_owned(),
            ssh.password.clone().unwrap_or_default(),
        );
    }
    // `{{ build `SSHPublicKey` }}` / `SSHPrivateKey`, as Packer offers them.
    build_values.extend(common.ssh_key_data());
    let http = common.http_port().map(|p| (common.http_ip.clone(), p));
    if let Some((ip, port)) = &http {
        build_values.insert("PackerHTTPIP".to_owned(), ip.clone());
        build_values.insert("PackerHTTPPort".to_owned(), port.to_string());
        build_values.insert("PackerHTTPAddr".to_owned(), format!("{ip}:{port}"));
    }
    ProvisionEnv {
        build: common.build_name.clone(),
        render: common.options.render.clone(),
        http,
        build_values,
        ssh_private_key_file: common
            .communicator
            .ssh()
            .and_then(|ssh| ssh.private_key_file.clone()),
        reporter: ctx.reporter.clone(),
        cancel: ctx.cancel.clone(),
    }
}

impl<S: HasCommon> Step<S> for StepProvision {
    fn name(&self) -> &'static str {
        "Provisioning"
    }

    fn run<'a>(&'a mut self, state: &'a mut S, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let common = state.common();
            let env = provision_env(common, ctx);
            let remote = common.ssh.clone().map(SshRemote);
            for p in &common.provisioners {
                ctx.reporter
                    .info(&ctx.build, &format!("Running provisioner {}", p.path));
                provision::run(p, &env, remote.as_ref().map(|r| r as &dyn Remote))
                    .await
                    .map_err(|source| ProvisionerFailed {
                        path: p.path.clone(),
                        on_host: p.type_name == "shell-local",
                        source,
                    })?;
            }
            Ok(())
        })
    }

    fn cleanup<'a>(
        &'a mut self,
        state: &'a mut S,
        ctx: &'a StepContext,
        outcome: Outcome,
    ) -> CleanupFuture<'a> {
        Box::pin(async move {
            if outcome != Outcome::Failed || ctx.on_error != OnError::RunCleanupProvisioner {
                return;
            }
            let common = state.common();
            let Some(p) = common.error_cleanup_provisioner.clone() else {
                ctx.reporter.warn(&ctx.build, "-on-error=run-cleanup-provisioner, but the template has no error-cleanup-provisioner");
                return;
            };
            ctx.reporter
                .info(&ctx.build, "Running the error-cleanup-provisioner");
            let env = provision_env(common, ctx);
            let remote = common.ssh.clone().map(SshRemote);
            if let Err(e) =
                provision::run(&p, &env, remote.as_ref().map(|r| r as &dyn Remote)).await
            {
                ctx.reporter.warn(
                    &ctx.build,
                    &format!("the error-cleanup-provisioner failed: {e}"),
                );
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(type_name: &str, source: ProvisionError) -> FailureClass {
        ProvisionerFailed {
            path: format!("provisioners[0] ({type_name})"),
            on_host: type_name == "shell-local",
            source,
        }
        .class()
    }

    fn exit_3() -> ProvisionError {
        ProvisionError::ExitStatus {
            what: "script".into(),
            code: 3,
            allowed: vec![0],
        }
    }

    #[test]
    fn a_failed_command_is_the_guests_unless_it_ran_on_the_host() {
        assert_eq!(class("shell", exit_3()), FailureClass::Guest);
        assert_eq!(class("shell-local", exit_3()), FailureClass::Host);
        assert_eq!(
            class("shell", ProvisionError::Disconnected { what: "x".into() }),
            FailureClass::Guest
        );
        assert_eq!(
            class("shell", ProvisionError::Cancelled),
            FailureClass::Interrupted
        );
        assert_eq!(
            class("file", ProvisionError::NoCommunicator),
            FailureClass::Input
        );
    }

    #[test]
    fn the_message_names_the_provisioner_and_chains_the_cause() {
        let e: crate::run::runner::StepError = ProvisionerFailed {
            path: "provisioners[1] (shell)".into(),
            on_host: false,
            source: exit_3(),
        }
        .into();
        assert_eq!(
            e.chain(),
            "provisioners[1] (shell) failed\n  caused by: script exited with status 3; allowed exit codes: [0]"
        );
    }
}
