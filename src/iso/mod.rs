//! ISO acquisition: fetch an installer image from `iso_url`/`iso_urls`,
//! verify it against `iso_checksum`, and keep it in a content-addressed
//! cache that offline labs can pre-seed and trust.
//!
//! The entry point is [`IsoCache::get_or_fetch`]; `kiln cache …` uses
//! [`IsoCache::add`], [`IsoCache::list`], [`IsoCache::verify`] and
//! [`IsoCache::prune`]. See `cache.rs` for the on-disk layout and the stamp
//! rule that decides when a cached file is re-hashed.

mod cache;
mod checksum;
mod download;
mod error;
mod fetch;

use std::path::PathBuf;
use std::time::Duration;

pub use cache::{CacheEntry, IsoCache, PruneOptions, VerifyReport, parse_age};
pub use checksum::{
    ChecksumLine, ChecksumSpec, ChecksumSpecError, Digest, HashAlgo, Hasher, find_in_checksum_file,
    parse_checksum_line,
};
pub use error::IsoError;

/// Where an ISO comes from and what it must hash to (the template's
/// `iso_url`/`iso_urls`, `iso_checksum`, `iso_target_path`,
/// `iso_target_extension`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoSource {
    /// Tried in order; the next one when one fails. `http(s)://`,
    /// `file://` or a plain path (used in place, never copied).
    pub urls: Vec<String>,
    pub checksum: ChecksumSpec,
    /// Packer's `iso_target_path`: keep the download here instead of in
    /// the content-addressed cache.
    pub target_path: Option<PathBuf>,
    /// Packer's `iso_target_extension` (default `iso`): the cache entry's
    /// file extension.
    pub target_extension: String,
}

impl IsoSource {
    /// A source with Packer's defaults for the target fields.
    pub fn new(urls: Vec<String>, checksum: ChecksumSpec) -> IsoSource {
        IsoSource {
            urls,
            checksum,
            target_path: None,
            target_extension: "iso".to_owned(),
        }
    }
}

/// How to fetch: network limits and the offline switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// Never open a network connection; only the cache and local files.
    pub offline: bool,
    /// Giving up on establishing a TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Giving up when no byte arrived for this long (headers or body).
    pub idle_timeout: Duration,
    /// Extra attempts per URL on transient errors (5xx, resets, stalls).
    pub retries: u32,
    /// First wait before a retry; doubles each time (at most 30 s).
    pub retry_backoff: Duration,
    /// The build name to tag reporter events with ("" outside builds).
    pub build_name: String,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            offline: false,
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            retries: 3,
            retry_backoff: Duration::from_secs(1),
            build_name: String::new(),
        }
    }
}

/// A verified ISO ready for a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedIso {
    /// The file to attach: a cache entry, the target path, or a local
    /// source used in place.
    pub path: PathBuf,
    /// The digest it was verified against; with `iso_checksum: none` the
    /// sha256 computed while downloading (not a verification), or `None`
    /// for a local file used unverified.
    pub digest: Option<Digest>,
    /// The URL or path the data came from ("cache" for a cache hit).
    pub source: String,
    /// Whether bytes were transferred over the network this time.
    pub downloaded: bool,
}

/// Installs rustls' `ring` crypto provider as the process default. The CLI
/// calls it at start-up; fetching calls it too. Idempotent.
pub fn install_crypto_provider() {
    // An error only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
