//! "Up to date": before a build runs, its key is compared with the build
//! record its last successful run left in the output directory; after a
//! successful run (post-processors included) the record is written.
//! `-force` skips the check (Packer's meaning: rebuild, replacing the
//! output directory; the install checkpoint is still used).

use std::collections::BTreeSet;

use crate::checkpoint::record::{self, BuildKey, Freshness, MadeArtifact};
use crate::config::Build;
use crate::run::{BuildResult, RunOptions};
use crate::ui::Reporter;

use super::build_key::{build_key, output_dir};

/// What the check decided.
pub enum Before {
    /// Run the build; record it under `key` if it succeeds.
    Run { key: Option<BuildKey> },
    /// Nothing to do: the result that says so.
    UpToDate(Box<BuildResult>),
}

/// Decides whether `build` must run. Sets `options.stale_because` when its
/// output exists but is stale, so the output-directory error can say why.
pub fn check(build: &Build, options: &mut RunOptions, reporter: &dyn Reporter) -> Before {
    let Some(dir) = output_dir(build, options.render.pwd()) else {
        return Before::Run { key: None };
    };
    let key = match build_key(build, options) {
        Ok(key) => key,
        Err(untracked) => {
            if dir.exists() && !options.force {
                options.stale_because = Some(format!(
                    "kiln cannot tell whether it is up to date: {}",
                    untracked.0
                ));
            }
            return Before::Run { key: None };
        }
    };
    if options.force {
        return Before::Run { key: Some(key) };
    }
    match record::check(&dir, options.render.pwd(), &key) {
        Freshness::UpToDate(rec) => {
            let files: usize = rec.artifacts.iter().map(|a| a.files.len()).sum();
            reporter.info(
                &build.name,
                &format!(
                    "Up to date: its inputs are unchanged since the last build and its {files} artifact file(s) are intact; nothing to do (-force rebuilds)"
                ),
            );
            Before::UpToDate(Box::new(BuildResult {
                name: build.name.clone(),
                artifact: Err(crate::run::runner::StepError::new(
                    crate::run::runner::FailureClass::Input,
                    "up to date",
                )),
                final_artifacts: Vec::new(),
                steps: Vec::new(),
                cancelled: false,
                up_to_date: Some(rec.artifacts),
            }))
        }
        Freshness::Stale(why) => {
            options.stale_because = Some(why);
            Before::Run { key: Some(key) }
        }
        Freshness::NoRecord => Before::Run { key: Some(key) },
    }
}

/// Writes the build record after a successful build (a warning if it
/// cannot be: the next build then rebuilds, nothing worse).
pub fn record(
    build: &Build,
    options: &RunOptions,
    key: &BuildKey,
    result: &BuildResult,
    reporter: &dyn Reporter,
) {
    if result.artifact.is_err() {
        return;
    }
    let Some(dir) = output_dir(build, options.render.pwd()) else {
        return;
    };
    if !dir.is_dir() {
        // A post-processor took the output away: nothing can vouch for it.
        return;
    }
    let mut seen = BTreeSet::new();
    let made: Vec<MadeArtifact> = result
        .final_artifacts
        .iter()
        .map(|a| MadeArtifact {
            builder_id: a.builder_id.to_owned(),
            id: a.id.clone(),
            description: a.description(),
            files: a
                .files
                .iter()
                .filter(|f| seen.insert((*f).clone()))
                .cloned()
                .collect(),
        })
        .collect();
    if let Err(e) = record::write(&dir, options.render.pwd(), &build.name, key, made) {
        reporter.warn(
            &build.name,
            &format!(
                "the build record was not written, so the next build will not be up to date: {}",
                crate::error_chain::causes(Some(&e), ": ")
            ),
        );
    }
}
