//! `ssh_clear_authorized_keys`: after provisioning, removes the build's
//! temporary key from the guest's `authorized_keys`, so the image does not
//! trust a key nobody holds any more (Packer's cleanup of temporary keys).
//! A failure is reported and does not fail the build, as in Packer.

use crate::communicator::ssh::Stream;
use crate::run::runner::{Step, StepContext, StepFuture};

use super::HasCommon;

pub struct StepClearTemporaryKey;

/// Deletes the line ending in ` COMMENT` from `file`, keeping no backup.
/// The comment is `kiln_<uuid>`: nothing in it needs quoting for sed.
fn remove_line(file: &str, comment: &str, sudo: bool) -> String {
    let sudo = if sudo { "sudo " } else { "" };
    format!("{sudo}sed -i.bak '/ {comment}$/d' {file} && {sudo}rm -f {file}.bak")
}

impl<S: HasCommon> Step<S> for StepClearTemporaryKey {
    fn name(&self) -> &'static str {
        "Removing the temporary SSH key"
    }

    fn run<'a>(&'a mut self, state: &'a mut S, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let common = state.common();
            let Some(ssh) = common.communicator.ssh() else {
                return Ok(());
            };
            if !ssh.clear_authorized_keys {
                return Ok(());
            }
            let (Some(key), Some(session)) = (&common.temporary_key, &common.ssh) else {
                ctx.reporter.info(
                    &ctx.build,
                    "ssh_clear_authorized_keys: no temporary key was made, nothing to remove",
                );
                return Ok(());
            };
            let mut commands = vec![remove_line("~/.ssh/authorized_keys", &key.comment, false)];
            if ssh.username != "root" {
                commands.push(remove_line(
                    "/root/.ssh/authorized_keys",
                    &key.comment,
                    true,
                ));
            }
            for command in commands {
                let mut output = Vec::new();
                let outcome = session
                    .exec(&command, |stream, line| {
                        if stream == Stream::Stderr {
                            output.push(line.to_owned());
                        }
                    })
                    .await;
                let failure = match outcome {
                    Ok(status) if status.success() => continue,
                    Ok(status) => format!("{status}: {}", output.join("; ")),
                    Err(e) => e.to_string(),
                };
                ctx.reporter.warn(
                    &ctx.build,
                    &format!(
                        "could not remove the temporary key from authorized_keys (`{command}`: {failure}); remove the line ending in {} by hand",
                        key.comment
                    ),
                );
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_deletes_only_the_line_with_the_runs_comment() {
        assert_eq!(
            remove_line("~/.ssh/authorized_keys", "kiln_1234", false),
            "sed -i.bak '/ kiln_1234$/d' ~/.ssh/authorized_keys && rm -f ~/.ssh/authorized_keys.bak"
        );
        assert!(remove_line("/root/.ssh/authorized_keys", "kiln_1", true).starts_with("sudo sed"));
    }
}
