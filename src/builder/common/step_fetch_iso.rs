//! Gets the ISO through the content-addressed cache (or uses a local file in place).

use std::path::PathBuf;

use crate::config::common::IsoConfig;
use crate::iso::{FetchOptions, IsoCache};
use crate::run::runner::{FailureClass, Step, StepContext, StepError, StepFuture};

use super::{CommonState, HasCommon};

pub struct StepFetchIso;

impl<S: HasCommon> Step<S> for StepFetchIso {
    fn name(&self) -> &'static str {
        "Fetching the ISO"
    }

    fn run<'a>(&'a mut self, state: &'a mut S, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let common = state.common();
            let iso = common.iso.clone();
            let fetched = fetch_verified(common, &iso, "the ISO", ctx).await?;
            common.iso_path = Some(fetched.path);
            common.iso_digest = fetched.digest.map(|d| d.to_string());
            Ok(())
        })
    }
}

/// Fetches `image` (mirrors and checksum as in `iso_url`/`iso_checksum`)
/// into the cache, or verifies a local file in place, honouring
/// `-offline`; `what` names it in errors and progress ("the ISO").
pub async fn fetch_image(
    common: &CommonState,
    image: &IsoConfig,
    what: &str,
    ctx: &StepContext,
) -> Result<PathBuf, StepError> {
    Ok(fetch_verified(common, image, what, ctx).await?.path)
}

/// [`fetch_image`], with the digest the file was verified against.
pub async fn fetch_verified(
    common: &CommonState,
    image: &IsoConfig,
    what: &str,
    ctx: &StepContext,
) -> Result<crate::iso::FetchedIso, StepError> {
    let source = image
        .source(
            common.options.render.template_dir(),
            common.options.render.pwd(),
        )
        .map_err(|e| {
            StepError::with_source(
                FailureClass::Input,
                format!("the checksum of {what} is not valid"),
                e,
            )
        })?;
    let cache = IsoCache::locate()
        .map_err(|e| StepError::with_source(FailureClass::Host, "cannot open the ISO cache", e))?;
    let options = FetchOptions {
        offline: common.options.offline,
        build_name: ctx.build.clone(),
        ..FetchOptions::default()
    };
    let fetched = cache
        .get_or_fetch(&source, &options, ctx.reporter.as_ref())
        .await
        .map_err(|e| StepError::with_source(FailureClass::Host, format!("cannot get {what}"), e))?;
    ctx.reporter.info(
        &ctx.build,
        &format!("Using {what} {}", fetched.path.display()),
    );
    Ok(fetched)
}
