//! Creates `output_directory`; refuses an existing one unless `-force`.
//! After a failure it is removed (kept under `-on-error=abort`).

use std::path::PathBuf;

use crate::run::runner::{
    CleanupFuture, FailureClass, Outcome, Step, StepContext, StepFailure, StepFuture,
};

use super::HasCommon;

#[derive(Debug, thiserror::Error)]
pub enum OutputDirError {
    /// Packer's error; kiln adds what changed when it knows.
    #[error(
        "the output directory {} already exists{}; remove it or run with -force to replace it",
        .path.display(),
        .stale_because.as_deref().map_or_else(String::new, |w| format!(" (not up to date: {w})"))
    )]
    Exists {
        path: PathBuf,
        stale_because: Option<String>,
    },
    #[error("cannot remove {}", .path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create {}", .path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StepFailure for OutputDirError {
    fn class(&self) -> FailureClass {
        match self {
            Self::Exists { .. } => FailureClass::Input,
            Self::Remove { .. } | Self::Create { .. } => FailureClass::Host,
        }
    }
}

/// Remembers whether it made the directory: a directory that was there
/// before (and refused) is never removed by the cleanup.
#[derive(Default)]
pub struct StepOutputDir {
    created: bool,
}

impl<S: HasCommon> Step<S> for StepOutputDir {
    fn name(&self) -> &'static str {
        "Creating the output directory"
    }

    fn run<'a>(&'a mut self, state: &'a mut S, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let dir = state.common().output_dir.clone();
            if dir.exists() {
                if !state.common().options.force {
                    return Err(OutputDirError::Exists {
                        path: dir,
                        stale_because: state.common().options.stale_because.clone(),
                    }
                    .into());
                }
                ctx.reporter.info(
                    &ctx.build,
                    &format!("-force: removing the existing {}", dir.display()),
                );
                std::fs::remove_dir_all(&dir).map_err(|source| OutputDirError::Remove {
                    path: dir.clone(),
                    source,
                })?;
            }
            std::fs::create_dir_all(&dir).map_err(|source| OutputDirError::Create {
                path: dir.clone(),
                source,
            })?;
            self.created = true;
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
            if outcome.is_success() || !self.created {
                return;
            }
            let dir = &state.common().output_dir;
            if ctx.remove_artifacts(outcome) {
                if let Err(e) = std::fs::remove_dir_all(dir) {
                    ctx.reporter.warn(
                        &ctx.build,
                        &format!("could not remove {}: {e}", dir.display()),
                    );
                }
            } else {
                ctx.reporter.info(
                    &ctx.build,
                    &format!("-on-error=abort: keeping {} for inspection", dir.display()),
                );
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_directory_is_the_users_to_remove_and_says_why_it_is_stale() {
        let e = OutputDirError::Exists {
            path: "out".into(),
            stale_because: Some("the template changed".into()),
        };
        assert_eq!(e.class(), FailureClass::Input);
        assert_eq!(
            e.to_string(),
            "the output directory out already exists (not up to date: the template changed); remove it or run with -force to replace it"
        );
        let plain = OutputDirError::Exists {
            path: "out".into(),
            stale_because: None,
        };
        assert_eq!(
            plain.to_string(),
            "the output directory out already exists; remove it or run with -force to replace it"
        );
    }
}
