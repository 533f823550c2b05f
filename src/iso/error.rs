//! Errors of ISO acquisition. Each variant names the URL or path involved
//! and, where the user can do something about it, says what.

use std::path::PathBuf;
use std::time::Duration;

use super::checksum::{ChecksumSpecError, Digest};

#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("iso_url/iso_urls is empty: no source to fetch the ISO from")]
    NoSources,

    #[error("{url}: unsupported URL scheme (kiln fetches http, https, file:// and plain paths)")]
    UnsupportedScheme { url: String },

    #[error("{url}: the server answered {status}")]
    HttpStatus { url: String, status: u16 },

    #[error("{url}: {what}")]
    Network {
        url: String,
        what: &'static str,
        #[source]
        source: reqwest::Error,
    },

    #[error("{url}: no data for {after:?}")]
    Stalled { url: String, after: Duration },

    #[error(
        "{url}: gave up after {attempts} attempts. Check the mirror, add another to iso_urls, or fetch the ISO elsewhere and `kiln cache add` it"
    )]
    GaveUp {
        url: String,
        attempts: u32,
        #[source]
        last: Box<IsoError>,
    },

    #[error("cannot set up the HTTP client")]
    Client(#[source] reqwest::Error),

    #[error("{url}: the server rejected the resume request (416); starting over")]
    RangeRejected { url: String },

    #[error("{url}: the download ended after {got} of {expected} bytes")]
    Truncated {
        url: String,
        got: u64,
        expected: u64,
    },

    #[error("{url}: larger than {limit} bytes, which is too big for a checksum file")]
    TooLarge { url: String, limit: usize },

    #[error("{url}: the server sent a range starting at {got}, kiln asked for {asked}")]
    BadRange { url: String, asked: u64, got: u64 },

    #[error(
        "checksum mismatch for {url}: expected {expected}, got {actual}; the downloaded data was deleted"
    )]
    ChecksumMismatch {
        url: String,
        expected: Digest,
        actual: Digest,
    },

    #[error(transparent)]
    Spec(#[from] ChecksumSpecError),

    #[error("checksum file {location} has no line for `{file_name}`")]
    ChecksumNotListed { location: String, file_name: String },

    #[error(
        "offline: {url} ({checksum}) is not in the cache at {cache}\n\
         hint: copy the ISO here and run `kiln cache add FILE --checksum {checksum}`"
    )]
    OfflineMissing {
        url: String,
        checksum: String,
        cache: PathBuf,
    },

    #[error(
        "offline: {url} has `iso_checksum: none`, so it cannot be looked up in the cache\n\
         hint: give the template a real iso_checksum (e.g. sha256:…) and `kiln cache add` the ISO"
    )]
    OfflineNoChecksum { url: String },

    #[error(
        "offline: the checksum file {location} is remote and no copy of it is cached\n\
         hint: use `iso_checksum: sha256:<hex>` or a `file:` path to a local checksum file"
    )]
    OfflineChecksumFile { location: String },

    #[error("no source of the ISO worked ({tried} tried); the last one failed")]
    AllSourcesFailed {
        tried: usize,
        #[source]
        last: Box<IsoError>,
    },

    #[error("{path}: {what}")]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: checksum mismatch: expected {expected}, got {actual}")]
    LocalMismatch {
        path: PathBuf,
        expected: Digest,
        actual: Digest,
    },

    #[error(
        "{part}: the disk is full: the ISO is {}, {} of it was written, and {} is free there\n\
         hint: make room, or run `kiln cache prune --parts` to remove interrupted downloads \
         (this one is kept so that the next fetch resumes it)",
        .size.map_or_else(|| "of unknown size".to_owned(), crate::ui::console::format_bytes),
        crate::ui::console::format_bytes(*.written),
        crate::ui::console::format_bytes(*.free)
    )]
    DiskFull {
        part: PathBuf,
        size: Option<u64>,
        written: u64,
        free: u64,
        #[source]
        source: std::io::Error,
    },

    #[error("no cache directory: set KILN_CACHE_DIR (neither XDG_CACHE_HOME nor HOME is set)")]
    NoCacheDir,

    #[error(
        "{count} cached ISO(s) failed verification and were moved to {dir}\n\
         hint: fetch them again, or `kiln cache prune --quarantine` to delete them"
    )]
    Quarantined { count: usize, dir: PathBuf },

    #[error(
        "--checksum none cannot be used to add a file; omit --checksum to store it under its sha256"
    )]
    NoneNotAllowed,

    #[error("a background task failed: {0}")]
    Task(String),
}

impl IsoError {
    pub(crate) fn io(path: impl Into<PathBuf>, what: &'static str, source: std::io::Error) -> Self {
        IsoError::Io {
            path: path.into(),
            what,
            source,
        }
    }

    /// Whether trying the same URL again may help (server hiccups, resets,
    /// stalls), as opposed to errors that will repeat (404, bad checksum).
    pub fn is_transient(&self) -> bool {
        match self {
            IsoError::HttpStatus { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            IsoError::Network { .. }
            | IsoError::Stalled { .. }
            | IsoError::BadRange { .. }
            | IsoError::RangeRejected { .. }
            | IsoError::Truncated { .. } => true,
            _ => false,
        }
    }
}
