//! `IsoCache::get_or_fetch`: resolve the checksum, look in the cache, then
//! try each source in order (local files verified in place, remote ones
//! downloaded under a per-digest lock), never touching the network offline.

use std::path::{Path, PathBuf};

use super::cache::{
    self, IsoCache, commit_to, lock_blocking, lock_key, lookup_verified, remove_entry, try_lock,
};
use super::checksum::{ChecksumSpec, Digest, HashAlgo, find_in_checksum_file};
use super::download::{build_client, download_to_part, fetch_text, with_suffix};
use super::error::IsoError;
use super::{FetchOptions, FetchedIso, IsoSource};
use crate::ui::Reporter;

/// One entry of `iso_urls`, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Remote(String),
    Local(PathBuf),
}

impl Source {
    fn classify(text: &str) -> Result<Source, IsoError> {
        if let Some(rest) = text.strip_prefix("file://") {
            // `file:///abs/path` (or `file://localhost/abs/path`).
            return reqwest::Url::parse(text)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .or_else(|| rest.starts_with('/').then(|| PathBuf::from(rest)))
                .map(Source::Local)
                .ok_or_else(|| IsoError::UnsupportedScheme {
                    url: text.to_owned(),
                });
        }
        if let Some(rest) = text.strip_prefix("file:") {
            return Ok(Source::Local(PathBuf::from(rest)));
        }
        match reqwest::Url::parse(text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Source::Remote(text.to_owned())),
            Ok(_) => Err(IsoError::UnsupportedScheme {
                url: text.to_owned(),
            }),
            // Not a URL: a relative or absolute path.
            Err(_) => Ok(Source::Local(PathBuf::from(text))),
        }
    }

    /// The name a checksum file lists this source under.
    fn file_name(&self) -> Option<String> {
        match self {
            Source::Remote(url) => reqwest::Url::parse(url).ok().and_then(|u| {
                u.path_segments()
                    .and_then(|mut s| s.next_back().map(str::to_owned))
                    .filter(|s| !s.is_empty())
            }),
            Source::Local(p) => p.file_name().map(|n| n.to_string_lossy().into_owned()),
        }
    }

    fn display(&self) -> String {
        match self {
            Source::Remote(u) => u.clone(),
            Source::Local(p) => p.display().to_string(),
        }
    }
}

/// Where a verified download ends up, with its `.part` and lock.
struct Destination {
    path: PathBuf,
    part: PathBuf,
    lock: PathBuf,
}

impl IsoCache {
    /// Returns a verified ISO for `src`: from the cache or `iso_target_path`
    /// when present (no download), else from the first source that works.
    /// Local sources are verified and used in place. Each failing source is
    /// reported with `reporter.warn` before the next is tried.
    pub async fn get_or_fetch(
        &self,
        src: &IsoSource,
        opts: &FetchOptions,
        reporter: &dyn Reporter,
    ) -> Result<FetchedIso, IsoError> {
        if src.urls.is_empty() {
            return Err(IsoError::NoSources);
        }
        let sources = src
            .urls
            .iter()
            .map(|u| Source::classify(u))
            .collect::<Result<Vec<_>, _>>()?;
        let mut client = None;
        let expected = match &src.checksum {
            ChecksumSpec::Digest(d) => d.clone(),
            ChecksumSpec::File { location } => {
                self.resolve_checksum_file(location, &sources, opts, &mut client, reporter)
                    .await?
            }
            ChecksumSpec::None => {
                return self.fetch_unverified(src, &sources, opts, reporter).await;
            }
        };
        let build = opts.build_name.as_str();
        let dest = self.destination(src, &expected);
        if let Some(path) = lookup_verified(dest.path.clone(), &expected, build, reporter).await? {
            return Ok(FetchedIso {
                path,
                digest: Some(expected),
                source: "cache".to_owned(),
                downloaded: false,
            });
        }

        let mut last_error = None;
        let mut skipped_remote = None;
        let mut tried = 0;
        for source in &sources {
            let result = match source {
                Source::Local(path) => {
                    tried += 1;
                    verify_in_place(path, &expected, build, reporter).await
                }
                Source::Remote(url) if opts.offline => {
                    skipped_remote.get_or_insert_with(|| url.clone());
                    continue;
                }
                Source::Remote(url) => {
                    tried += 1;
                    let client = match &client {
                        Some(c) => c,
                        None => client.insert(build_client(opts)?),
                    };
                    self.download_verified(client, url, &dest, &expected, opts, reporter)
                        .await
                }
            };
            match result {
                Ok(fetched) => return Ok(fetched),
                Err(e) => {
                    reporter.warn(
                        build,
                        &format!(
                            "{}: {}",
                            source.display(),
                            crate::error_chain::error_chain(&e, ": ")
                        ),
                    );
                    last_error = Some(e);
                }
            }
        }
        match (last_error, skipped_remote) {
            (_, Some(url)) if opts.offline => Err(IsoError::OfflineMissing {
                url,
                checksum: expected.to_string(),
                cache: self.root().to_path_buf(),
            }),
            (Some(e), _) if tried == 1 => Err(e),
            (Some(e), _) => Err(IsoError::AllSourcesFailed {
                tried,
                last: Box::new(e),
            }),
            (None, _) => Err(IsoError::NoSources),
        }
    }

    fn destination(&self, src: &IsoSource, digest: &Digest) -> Destination {
        match &src.target_path {
            Some(path) => Destination {
                path: path.clone(),
                part: with_suffix(path, ".part"),
                lock: with_suffix(path, ".lock"),
            },
            None => {
                let path = self.entry_path(digest, &src.target_extension);
                Destination {
                    part: with_suffix(&path, ".part"),
                    lock: self.lock_path(&lock_key(digest)),
                    path,
                }
            }
        }
    }

    /// Downloads `url` into `dest` under the destination's lock. A second
    /// kiln wanting the same ISO waits here and then finds it verified.
    async fn download_verified(
        &self,
        client: &reqwest::Client,
        url: &str,
        dest: &Destination,
        expected: &Digest,
        opts: &FetchOptions,
        reporter: &dyn Reporter,
    ) -> Result<FetchedIso, IsoError> {
        let build = opts.build_name.as_str();
        let _lock = acquire_lock(&dest.lock, build, reporter).await?;
        if let Some(path) = lookup_verified(dest.path.clone(), expected, build, reporter).await? {
            return Ok(FetchedIso {
                path,
                digest: Some(expected.clone()),
                source: "cache".to_owned(),
                downloaded: false,
            });
        }
        if let Some(dir) = dest.part.parent() {
            cache::mkdir(dir)?;
        }
        let mut got = download_to_part(
            client,
            url,
            &dest.part,
            expected.algo(),
            true,
            opts,
            reporter,
        )
        .await?;
        if got.digest != *expected && got.resumed {
            // The earlier part may have been damaged (a crash before its
            // data reached the disk): one clean try before giving up.
            reporter.warn(
                build,
                &format!(
                    "{url}: checksum mismatch after resuming; downloading again from the start"
                ),
            );
            got = download_to_part(
                client,
                url,
                &dest.part,
                expected.algo(),
                false,
                opts,
                reporter,
            )
            .await?;
        }
        if got.digest != *expected {
            remove_entry(&dest.part)?;
            return Err(IsoError::ChecksumMismatch {
                url: url.to_owned(),
                expected: expected.clone(),
                actual: got.digest,
            });
        }
        commit_to(&dest.part, &dest.path)?;
        cache::warn_unstamped(cache::write_stamp(&dest.path, expected), build, reporter);
        reporter.info(
            build,
            &format!("{url}: {} bytes verified ({expected})", got.size),
        );
        Ok(FetchedIso {
            path: dest.path.clone(),
            digest: Some(expected.clone()),
            source: url.to_owned(),
            downloaded: true,
        })
    }

    /// `iso_checksum: none`: local files are used as they are; a remote one
    /// is downloaded afresh every time (nothing to look it up by) and kept
    /// under its computed sha256.
    async fn fetch_unverified(
        &self,
        src: &IsoSource,
        sources: &[Source],
        opts: &FetchOptions,
        reporter: &dyn Reporter,
    ) -> Result<FetchedIso, IsoError> {
        let build = opts.build_name.as_str();
        reporter.warn(
            build,
            "iso_checksum is `none`: the ISO will NOT be verified, and every build downloads it \
             again. Anyone who can alter it on the way controls the VM. Set iso_checksum.",
        );
        let mut last_error = None;
        for source in sources {
            match source {
                Source::Local(path) => match std::fs::metadata(path) {
                    Ok(m) if m.is_file() => {
                        return Ok(FetchedIso {
                            path: path.clone(),
                            digest: None,
                            source: path.display().to_string(),
                            downloaded: false,
                        });
                    }
                    Ok(_) => reporter.warn(build, &format!("{}: not a file", path.display())),
                    Err(e) => {
                        reporter.warn(build, &format!("{}: {e}", path.display()));
                        last_error = Some(IsoError::io(path, "cannot read", e));
                    }
                },
                Source::Remote(url) if opts.offline => {
                    return Err(IsoError::OfflineNoChecksum { url: url.clone() });
                }
                Source::Remote(url) => {
                    match self.download_unverified(src, url, opts, reporter).await {
                        Ok(f) => return Ok(f),
                        Err(e) => {
                            reporter.warn(
                                build,
                                &format!("{url}: {}", crate::error_chain::error_chain(&e, ": ")),
                            );
                            last_error = Some(e);
                        }
                    }
                }
            }
        }
        Err(
            last_error.map_or(IsoError::NoSources, |e| IsoError::AllSourcesFailed {
                tried: sources.len(),
                last: Box::new(e),
            }),
        )
    }

    async fn download_unverified(
        &self,
        src: &IsoSource,
        url: &str,
        opts: &FetchOptions,
        reporter: &dyn Reporter,
    ) -> Result<FetchedIso, IsoError> {
        let build = opts.build_name.as_str();
        let client = build_client(opts)?;
        let (part, lock) = match &src.target_path {
            Some(p) => (with_suffix(p, ".part"), with_suffix(p, ".lock")),
            None => (
                self.url_part_path(url, &src.target_extension),
                self.lock_path(&format!("url-{}", cache::sha256_hex(url))),
            ),
        };
        let _lock = acquire_lock(&lock, build, reporter).await?;
        if let Some(dir) = part.parent() {
            cache::mkdir(dir)?;
        }
        let got =
            download_to_part(&client, url, &part, HashAlgo::Sha256, false, opts, reporter).await?;
        let dest = match &src.target_path {
            Some(p) => p.clone(),
            None => {
                let dest = self.entry_path(&got.digest, &src.target_extension);
                if let Some(dir) = dest.parent() {
                    cache::mkdir(dir)?;
                }
                dest
            }
        };
        commit_to(&part, &dest)?;
        cache::warn_unstamped(cache::write_stamp(&dest, &got.digest), build, reporter);
        reporter.info(
            build,
            &format!(
                "{url}: downloaded unverified; to pin it, set iso_checksum to {}",
                got.digest
            ),
        );
        Ok(FetchedIso {
            path: dest,
            digest: Some(got.digest),
            source: url.to_owned(),
            downloaded: true,
        })
    }

    /// Reads the checksum list named by `file:LOCATION` and picks the line
    /// for the ISO's file name (the last segment of each source, in order).
    /// Remote lists are kept in the cache so offline runs can use them.
    async fn resolve_checksum_file(
        &self,
        location: &str,
        sources: &[Source],
        opts: &FetchOptions,
        client: &mut Option<reqwest::Client>,
        reporter: &dyn Reporter,
    ) -> Result<Digest, IsoError> {
        let build = opts.build_name.as_str();
        let text = match Source::classify(location)? {
            Source::Local(path) => tokio::fs::read_to_string(&path)
                .await
                .map_err(|e| IsoError::io(&path, "cannot read checksum file", e))?,
            Source::Remote(url) => {
                let copy = self.checksum_file_copy(&url);
                if opts.offline {
                    let text = std::fs::read_to_string(&copy).map_err(|_| {
                        IsoError::OfflineChecksumFile {
                            location: url.clone(),
                        }
                    })?;
                    reporter.info(build, &format!("offline: using the cached copy of {url}"));
                    text
                } else {
                    let c = match client {
                        Some(c) => c,
                        None => client.insert(build_client(opts)?),
                    };
                    match fetch_text(c, &url, opts).await {
                        Ok(text) => {
                            save_copy(&copy, &text);
                            text
                        }
                        Err(e) => match std::fs::read_to_string(&copy) {
                            Ok(text) => {
                                reporter.warn(
                                    build,
                                    &format!(
                                        "{}; using the copy cached earlier",
                                        crate::error_chain::error_chain(&e, ": ")
                                    ),
                                );
                                text
                            }
                            Err(_) => return Err(e),
                        },
                    }
                }
            }
        };
        let names: Vec<String> = sources.iter().filter_map(Source::file_name).collect();
        names
            .iter()
            .find_map(|n| find_in_checksum_file(&text, n))
            .ok_or_else(|| IsoError::ChecksumNotListed {
                location: location.to_owned(),
                file_name: names.first().cloned().unwrap_or_default(),
            })
    }
}

/// Hashes a local source where it is; it is never copied.
async fn verify_in_place(
    path: &Path,
    expected: &Digest,
    build: &str,
    reporter: &dyn Reporter,
) -> Result<FetchedIso, IsoError> {
    let meta = std::fs::metadata(path).map_err(|e| IsoError::io(path, "cannot read", e))?;
    let progress = reporter.progress(
        build,
        &format!("verifying {}", path.display()),
        Some(meta.len()),
    );
    let actual = cache::hash_file_async(path.to_path_buf(), expected.algo(), progress).await?;
    if actual != *expected {
        return Err(IsoError::LocalMismatch {
            path: path.to_path_buf(),
            expected: expected.clone(),
            actual,
        });
    }
    Ok(FetchedIso {
        path: path.to_path_buf(),
        digest: Some(actual),
        source: path.display().to_string(),
        downloaded: false,
    })
}

/// Takes a lock file, saying so when another kiln holds it.
async fn acquire_lock(
    path: &Path,
    build: &str,
    reporter: &dyn Reporter,
) -> Result<std::fs::File, IsoError> {
    if let Some(f) = try_lock(path)? {
        return Ok(f);
    }
    reporter.info(
        build,
        &format!(
            "waiting for another kiln to finish this download ({})",
            path.display()
        ),
    );
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || lock_blocking(&path))
        .await
        .map_err(|e| IsoError::Task(e.to_string()))?
}

/// Best effort: a missing copy only costs offline use of a remote list.
fn save_copy(path: &Path, text: &str) {
    if let Some(dir) = path.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let tmp = with_suffix(path, &format!(".{}.tmp", std::process::id()));
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_sources() {
        assert_eq!(
            Source::classify("https://a.example/x/debian.iso").ok(),
            Some(Source::Remote("https://a.example/x/debian.iso".into()))
        );
        assert_eq!(
            Source::classify("file:///srv/isos/d.iso").ok(),
            Some(Source::Local("/srv/isos/d.iso".into()))
        );
        assert_eq!(
            Source::classify("file:./d.iso").ok(),
            Some(Source::Local("./d.iso".into()))
        );
        assert_eq!(
            Source::classify("isos/d.iso").ok(),
            Some(Source::Local("isos/d.iso".into()))
        );
        assert!(matches!(
            Source::classify("ftp://a.example/d.iso"),
            Err(IsoError::UnsupportedScheme { .. })
        ));
        assert_eq!(
            Source::classify("https://a.example/x/debian.iso?x=1")
                .ok()
                .and_then(|s| s.file_name()),
            Some("debian.iso".into())
        );
    }
}
