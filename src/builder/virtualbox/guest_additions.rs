//! VirtualBox guest additions: which ISO (`guest_additions_url`, the one
//! installed with VirtualBox, or virtualbox.org's), fetched and verified
//! through the ISO cache before any VM exists, then either attached as a
//! second DVD (`guest_additions_mode` "attach", in the attach step) or
//! uploaded over SSH ("upload", here).

use super::error::VBoxStepError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::VBoxState;
use crate::builder::common::{fetch_image, render_deferred};
use crate::config::common::IsoConfig;
use crate::config::virtualbox::GuestAdditionsMode;
use crate::run::runner::{Step, StepContext, StepError, StepFuture};

/// Where VirtualBox publishes each release's guest additions and checksums.
const DOWNLOAD_BASE: &str = "https://download.virtualbox.org/virtualbox";

/// The guest's file name when `guest_additions_path` is not set (Packer's).
const DEFAULT_GUEST_PATH: &str = "VBoxGuestAdditions.iso";

/// Where the guest additions come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdditionsSource {
    /// The ISO installed with the VirtualBox that runs the build, used in place.
    Installed(PathBuf),
    /// A local `guest_additions_url` with nothing to check it against (no
    /// `guest_additions_sha256`, no `SHA256SUMS` beside it): used in place,
    /// with a warning. Packer would look it up in virtualbox.org's list,
    /// which an offline machine cannot reach.
    Unverified(PathBuf),
    /// A download (or local file), verified by `checksum` in `iso_checksum` syntax.
    Fetch { url: String, checksum: String },
}

/// Chooses the source as Packer does, except where noted:
/// - `guest_additions_url` (rendered) wins. Its checksum is
///   `guest_additions_sha256`, or else the `SHA256SUMS` beside the URL
///   (Packer always reads virtualbox.org's, which a local mirror or an
///   offline lab cannot reach).
/// - Then the ISO VirtualBox installed (`installed`), unverified as in
///   Packer: it came with the VirtualBox that runs the build.
/// - Then virtualbox.org's ISO for `version`, checked against the release's
///   `SHA256SUMS` (or `guest_additions_sha256`).
///
/// `local` resolves a URL that names a file on this machine to its path.
pub fn additions_source(
    url: Option<&str>,
    sha256: Option<&str>,
    installed: Option<PathBuf>,
    version: &str,
    local: impl Fn(&str) -> Option<PathBuf>,
) -> AdditionsSource {
    let checksum_or = |sums: String| match sha256 {
        Some(sum) => format!("sha256:{sum}"),
        None => format!("file:{sums}"),
    };
    if let Some(url) = url.filter(|u| !u.is_empty()) {
        if let (None, Some(path)) = (sha256, local(url)) {
            let sums = path.with_file_name("SHA256SUMS");
            return if sums.is_file() {
                AdditionsSource::Fetch {
                    url: path.display().to_string(),
                    checksum: format!("file:{}", sums.display()),
                }
            } else {
                AdditionsSource::Unverified(path)
            };
        }
        let dir = url.rsplit_once('/').map(|(dir, _)| dir).unwrap_or(".");
        return AdditionsSource::Fetch {
            url: url.to_owned(),
            checksum: checksum_or(format!("{dir}/SHA256SUMS")),
        };
    }
    if let Some(path) = installed {
        return AdditionsSource::Installed(path);
    }
    AdditionsSource::Fetch {
        url: format!("{DOWNLOAD_BASE}/{version}/VBoxGuestAdditions_{version}.iso"),
        checksum: checksum_or(format!("{DOWNLOAD_BASE}/{version}/SHA256SUMS")),
    }
}

/// The existing file a URL names on this machine (`file://…` or a path,
/// a relative one from the working directory, then beside the template).
fn local_file(url: &str, pwd: &Path, template_dir: &Path) -> Option<PathBuf> {
    let path = match url.strip_prefix("file://") {
        Some(path) => PathBuf::from(path),
        None if url.contains("://") => return None,
        None => PathBuf::from(url),
    };
    [pwd.join(&path), template_dir.join(&path)]
        .into_iter()
        .find(|p| p.is_file())
}

fn version_data(state: &VBoxState) -> Result<BTreeMap<String, String>, StepError> {
    let version = state
        .version
        .as_ref()
        .ok_or(VBoxStepError::UnknownVersion)?;
    Ok(BTreeMap::from([("Version".to_owned(), version.number())]))
}

pub struct StepFetchGuestAdditions;

impl Step<VBoxState> for StepFetchGuestAdditions {
    fn name(&self) -> &'static str {
        "Fetching the guest additions"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            if state.config.guest_additions_mode == GuestAdditionsMode::Disable {
                return Ok(());
            }
            let data = version_data(state)?;
            let url = match &state.config.guest_additions_url {
                Some(d) => Some(render_deferred(
                    &state.common,
                    "guest_additions_url",
                    d,
                    &data,
                )?),
                None => None,
            };
            let installed = if url.as_deref().is_some_and(|u| !u.is_empty()) {
                None
            } else {
                let vbox = state.vbox()?;
                let found = tokio::task::spawn_blocking(move || vbox.default_guest_additions_iso())
                    .await
                    .map_err(VBoxStepError::Task)?;
                match found {
                    Ok(Some(path)) if path.is_file() => Some(path),
                    Ok(_) => {
                        ctx.reporter.warn(
                            &ctx.build,
                            "this VirtualBox reports no guest additions ISO; fetching it from virtualbox.org (set guest_additions_url to use a local copy, or guest_additions_mode \"disable\")",
                        );
                        None
                    }
                    Err(e) => {
                        return Err(VBoxStepError::AdditionsIso(e).into());
                    }
                }
            };
            let sha256 = state.config.guest_additions_sha256.as_deref();
            let (url, checksum) = match additions_source(
                url.as_deref(),
                sha256,
                installed,
                &data["Version"],
                |u| {
                    local_file(
                        u,
                        state.common.options.render.pwd(),
                        state.common.options.render.template_dir(),
                    )
                },
            ) {
                AdditionsSource::Unverified(path) => {
                    ctx.reporter.warn(
                            &ctx.build,
                            &format!(
                                "guest additions {} are used unverified: set guest_additions_sha256 (or put a SHA256SUMS beside them)",
                                path.display()
                            ),
                        );
                    state.guest_additions = Some(path);
                    return Ok(());
                }
                AdditionsSource::Installed(path) => {
                    ctx.reporter.info(
                        &ctx.build,
                        &format!("Using VirtualBox's guest additions {}", path.display()),
                    );
                    state.guest_additions = Some(path);
                    return Ok(());
                }
                AdditionsSource::Fetch { url, checksum } => (url, checksum),
            };
            let from_virtualbox_org = url.starts_with(DOWNLOAD_BASE);
            if state.common.options.offline && from_virtualbox_org && sha256.is_none() {
                return Err(VBoxStepError::OfflineAdditions { url }.into());
            }
            let image = IsoConfig {
                urls: vec![url],
                checksum,
                target_path: None,
                target_extension: "iso".into(),
            };
            let path = fetch_image(&state.common, &image, "the guest additions", ctx).await?;
            state.guest_additions = Some(path);
            Ok(())
        })
    }
}

pub struct StepUploadGuestAdditions;

impl Step<VBoxState> for StepUploadGuestAdditions {
    fn name(&self) -> &'static str {
        "Uploading the guest additions"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            if state.config.guest_additions_mode != GuestAdditionsMode::Upload {
                return Ok(());
            }
            let (Some(iso), Some(ssh)) = (state.guest_additions.clone(), state.common.ssh.clone())
            else {
                ctx.reporter.info(
                    &ctx.build,
                    "no communicator: the guest additions are not uploaded",
                );
                return Ok(());
            };
            let data = version_data(state)?;
            let target = match &state.config.guest_additions_path {
                Some(d) => render_deferred(&state.common, "guest_additions_path", d, &data)?,
                None => DEFAULT_GUEST_PATH.to_owned(),
            };
            let size = std::fs::metadata(&iso)
                .map_err(|source| VBoxStepError::Read {
                    path: iso.clone(),
                    source,
                })?
                .len();
            ssh.upload_file(&iso, &target)
                .await
                .map_err(|source| VBoxStepError::Upload {
                    target: target.clone(),
                    source,
                })?;
            ctx.reporter.info(
                &ctx.build,
                &format!(
                    "Uploaded the guest additions ({:.1} MiB) to {target}",
                    size as f64 / (1024.0 * 1024.0)
                ),
            );
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(url: &str, checksum: &str) -> AdditionsSource {
        AdditionsSource::Fetch {
            url: url.into(),
            checksum: checksum.into(),
        }
    }

    #[test]
    fn an_explicit_url_is_checked_against_its_own_sha256sums() {
        let url = "http://mirror.lan/vbox/7.0.20/VBoxGuestAdditions_7.0.20.iso";
        let installed = PathBuf::from("/usr/lib/virtualbox/additions/VBoxGuestAdditions.iso");
        assert_eq!(
            additions_source(Some(url), None, Some(installed), "7.0.20", |_| None),
            fetch(url, "file:http://mirror.lan/vbox/7.0.20/SHA256SUMS")
        );
    }

    #[test]
    fn a_given_sha256_wins() {
        let sum = "ab".repeat(32);
        assert_eq!(
            additions_source(Some("/srv/ga.iso"), Some(&sum), None, "7.0.20", |_| None),
            fetch("/srv/ga.iso", &format!("sha256:{sum}"))
        );
        assert_eq!(
            additions_source(None, Some(&sum), None, "7.0.20", |_| None),
            fetch(
                "https://download.virtualbox.org/virtualbox/7.0.20/VBoxGuestAdditions_7.0.20.iso",
                &format!("sha256:{sum}")
            )
        );
    }

    #[test]
    fn a_local_url_is_checked_against_a_sha256sums_beside_it_or_used_with_a_warning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let iso = dir.path().join("VBoxGuestAdditions.iso");
        std::fs::write(&iso, b"additions").expect("iso");
        let local = |u: &str| local_file(u, dir.path(), dir.path());
        assert_eq!(
            additions_source(Some("VBoxGuestAdditions.iso"), None, None, "7.0.20", local),
            AdditionsSource::Unverified(iso.clone())
        );
        let sums = dir.path().join("SHA256SUMS");
        std::fs::write(&sums, "").expect("sums");
        let url = format!("file://{}", iso.display());
        assert_eq!(
            additions_source(Some(&url), None, None, "7.0.20", local),
            fetch(
                &iso.display().to_string(),
                &format!("file:{}", sums.display())
            )
        );
        assert_eq!(local("http://mirror/VBoxGuestAdditions.iso"), None);
        assert_eq!(local("missing.iso"), None);
    }

    #[test]
    fn the_installed_iso_comes_next_then_virtualbox_org() {
        let installed = PathBuf::from("/usr/lib/virtualbox/additions/VBoxGuestAdditions.iso");
        assert_eq!(
            additions_source(None, None, Some(installed.clone()), "7.0.20", |_| None),
            AdditionsSource::Installed(installed)
        );
        assert_eq!(
            additions_source(Some(""), None, None, "7.0.20", |_| None),
            fetch(
                "https://download.virtualbox.org/virtualbox/7.0.20/VBoxGuestAdditions_7.0.20.iso",
                "file:https://download.virtualbox.org/virtualbox/7.0.20/SHA256SUMS"
            )
        );
    }
}
