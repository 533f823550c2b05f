//! Gets the ISO through the content-addressed cache (or uses a local file in place).

use crate::build::runner::{Step, StepContext, StepError, StepFuture};
use crate::iso::{FetchOptions, IsoCache};

use super::HasCommon;

pub struct StepFetchIso;

impl<S: HasCommon> Step<S> for StepFetchIso {
    fn name(&self) -> &'static str {
        "Fetching the ISO"
    }

    fn run<'a>(&'a mut self, state: &'a mut S, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let common = state.common();
            let source = common
                .iso
                .source(&common.options.template_dir, &common.options.pwd)
                .map_err(|e| StepError::with_source("iso_checksum is not valid", e))?;
            let cache = IsoCache::locate()
                .map_err(|e| StepError::with_source("cannot open the ISO cache", e))?;
            let options = FetchOptions {
                offline: common.options.offline,
                build_name: ctx.build.clone(),
                ..FetchOptions::default()
            };
            let fetched = cache
                .get_or_fetch(&source, &options, ctx.reporter.as_ref())
                .await
                .map_err(|e| StepError::with_source("cannot get the ISO", e))?;
            ctx.reporter
                .info(&ctx.build, &format!("Using ISO {}", fetched.path.display()));
            common.iso_path = Some(fetched.path);
            Ok(())
        })
    }
}
