//! The `salt-masterless` provisioner, as Packer runs it: bootstrap Salt
//! (unless `skip_bootstrap`), put the minion config, grains, state tree
//! and pillar roots in place through `temp_config_dir`, then run
//! `salt-call --local`.

use std::path::Path;

use super::guest_command::{self as cmd, contents_of, run_checked, run_streamed, upload};
use super::remote::Remote;
use super::{ProvisionEnv, ProvisionError};
use crate::config::salt_masterless::{CONFIG_DIR, SaltMasterlessConfig};

/// Salt's bootstrap script: curl, or wget when curl is missing (Packer's order).
const BOOTSTRAP_FETCH: &str = "curl -L https://bootstrap.saltstack.com -o /tmp/install_salt.sh || wget -O /tmp/install_salt.sh https://bootstrap.saltstack.com";

pub async fn run(
    c: &SaltMasterlessConfig,
    env: &ProvisionEnv,
    remote: &dyn Remote,
) -> Result<(), ProvisionError> {
    let build = &env.build;
    let sudo = !c.disable_sudo;
    env.reporter.info(build, "Provisioning with Salt...");
    if !c.skip_bootstrap {
        env.reporter.info(
            build,
            "Downloading saltstack bootstrap to /tmp/install_salt.sh",
        );
        run_checked(
            env,
            remote,
            "downloading Salt's bootstrap script",
            BOOTSTRAP_FETCH,
        )
        .await?;
        let install = format!(
            "{} {}",
            cmd::with_sudo(sudo, "sh /tmp/install_salt.sh"),
            c.bootstrap_args
        );
        env.reporter
            .info(build, &format!("Installing Salt with command {install}"));
        run_checked(env, remote, "installing Salt", install.trim_end()).await?;
    }

    let temp = c.temp_config_dir.trim_end_matches('/').to_owned();
    env.reporter.info(
        build,
        &format!("Creating remote temporary directory: {temp}"),
    );
    let what = format!("creating {temp}");
    run_checked(env, remote, &what, &cmd::mkdir(sudo, &temp)).await?;
    // The login user uploads into it, even when sudo made it.
    run_checked(env, remote, &what, &cmd::chmod(sudo, "0777", &temp)).await?;

    let config_files = [
        (&c.minion_config, "minion", "minion config"),
        (&c.grains_file, "grains", "grains file"),
    ];
    for (local, name, label) in config_files {
        let Some(local) = local else { continue };
        env.reporter
            .info(build, &format!("Uploading {label}: {}", local.display()));
        let staged = format!("{temp}/{name}");
        upload(remote, label, local, &staged).await?;
        run_checked(
            env,
            remote,
            &format!("creating {CONFIG_DIR}"),
            &cmd::mkdir(sudo, CONFIG_DIR),
        )
        .await?;
        move_into_place(env, remote, sudo, &staged, &format!("{CONFIG_DIR}/{name}")).await?;
    }

    env.reporter.info(
        build,
        &format!(
            "Uploading local state tree: {}",
            c.local_state_tree.display()
        ),
    );
    place_tree(
        env,
        remote,
        sudo,
        &c.local_state_tree,
        &format!("{temp}/states"),
        c.state_root(),
    )
    .await?;
    if let Some(pillar) = &c.local_pillar_roots {
        env.reporter.info(
            build,
            &format!("Uploading local pillar roots: {}", pillar.display()),
        );
        place_tree(
            env,
            remote,
            sudo,
            pillar,
            &format!("{temp}/pillar"),
            c.pillar_root(),
        )
        .await?;
    }

    let args = c.salt_call_arguments();
    env.reporter
        .info(build, &format!("Running: salt-call --local {args}"));
    let command = cmd::with_sudo(sudo, &format!("{} --local {args}", c.salt_call()));
    let code = run_streamed(env, remote, "salt-call", &command).await?;
    match code {
        0 => Ok(()),
        code if c.no_exit_on_failure => {
            env.reporter.warn(
                build,
                &format!(
                    "salt-call exited with status {code}; continuing, as no_exit_on_failure says"
                ),
            );
            Ok(())
        }
        code => Err(ProvisionError::Failed {
            what: format!("salt-call (`{command}`)"),
            code,
        }),
    }
}

/// Uploads `local`'s contents to `staged`, then replaces `target` with it.
async fn place_tree(
    env: &ProvisionEnv,
    remote: &dyn Remote,
    sudo: bool,
    local: &Path,
    staged: &str,
    target: &str,
) -> Result<(), ProvisionError> {
    let what = format!("preparing {staged}");
    // A tree left by an earlier provisioner would be merged into, or moved inside.
    run_checked(env, remote, &what, &cmd::rm_rf(sudo, staged)).await?;
    run_checked(env, remote, &what, &cmd::mkdir(false, staged)).await?;
    upload(remote, "the tree", &contents_of(local), staged).await?;
    run_checked(
        env,
        remote,
        &format!("clearing {target}"),
        &cmd::rm_rf(sudo, target),
    )
    .await?;
    if let Some((parent, _)) = target.trim_end_matches('/').rsplit_once('/')
        && !parent.is_empty()
    {
        run_checked(
            env,
            remote,
            &format!("creating {parent}"),
            &cmd::mkdir(sudo, parent),
        )
        .await?;
    }
    move_into_place(env, remote, sudo, staged, target).await
}

async fn move_into_place(
    env: &ProvisionEnv,
    remote: &dyn Remote,
    sudo: bool,
    from: &str,
    to: &str,
) -> Result<(), ProvisionError> {
    env.reporter
        .info(&env.build, &format!("Moving {from} to {to}"));
    run_checked(
        env,
        remote,
        &format!("moving {from} to {to}"),
        &cmd::mv(sudo, from, to),
    )
    .await
}
