//! `shell-local` as a post-processor: the provisioner's runner, with the
//! artifact described in the environment. Besides Packer's
//! `PACKER_BUILD_NAME` and `PACKER_BUILDER_TYPE`, kiln sets
//! `PACKER_ARTIFACT_ID`, `PACKER_ARTIFACT_BUILDER_ID` and
//! `PACKER_ARTIFACT_FILES` (the files' paths separated by spaces, as the
//! common Packer idiom `for f in $PACKER_ARTIFACT_FILES` expects; paths
//! with spaces are therefore ambiguous there) — Packer itself sets none of
//! the three. The input artifact is passed on unchanged and kept, as Packer
//! forces.

use super::{PostProcessContext, PostProcessError, StepOutput};
use crate::artifact::Artifact;
use crate::config::provisioner::ShellLocalConfig;
use crate::provision::{ProvisionEnv, ProvisionError, run_shell_local};

pub fn artifact_env(input: &Artifact) -> Vec<(String, String)> {
    let files: Vec<String> = input
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    vec![
        ("PACKER_ARTIFACT_ID".into(), input.id.clone()),
        ("PACKER_ARTIFACT_BUILDER_ID".into(), input.builder_id.into()),
        ("PACKER_ARTIFACT_FILES".into(), files.join(" ")),
    ]
}

pub(super) async fn run(
    c: &ShellLocalConfig,
    input: &Artifact,
    ctx: &PostProcessContext,
) -> Result<StepOutput, PostProcessError> {
    let env = ProvisionEnv {
        build: ctx.build.clone(),
        render: ctx.render.clone(),
        http: None,
        build_values: Default::default(),
        ssh_private_key_file: None,
        reporter: ctx.reporter.clone(),
        cancel: ctx.cancel.clone(),
    };
    run_shell_local(c, &env, Some(&artifact_env(input)))
        .await
        .map_err(|e| match e {
            ProvisionError::Cancelled => PostProcessError::Cancelled,
            e => PostProcessError::ShellLocal(e),
        })?;
    Ok(StepOutput {
        artifact: input.clone(),
        keep_default: true,
        force_keep: true,
    })
}
