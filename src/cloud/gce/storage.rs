//! Google Cloud Storage through its JSON API: the bucket check, resumable
//! uploads that survive an interrupted run, and object deletion.
//!
//! A resumable upload is a session URI (from `POST …/upload/storage/v1/b/
//! BUCKET/o?uploadType=resumable`) that takes the file in chunks (`PUT` with
//! `Content-Range: bytes S-E/TOTAL`); GCS answers 308 with `Range:
//! bytes=0-N` until the last chunk. The session is written to a state file
//! before the first chunk, so a rerun asks GCS what it already has
//! (`Content-Range: bytes */TOTAL`, as Google documents) and sends the rest.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::auth::TokenSource;
use super::error::GceError;
use super::error::api_error;

/// GCS's public endpoint.
pub const STORAGE_ENDPOINT: &str = "https://storage.googleapis.com/";

/// Chunks are multiples of 256 KiB, as GCS requires; 8 MiB is Google's
/// recommended minimum for throughput.
pub const CHUNK_SIZE: u64 = 8 * 1024 * 1024;

/// Object names are one path segment in the JSON API: `/` is encoded too.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The storage base URL: `STORAGE_EMULATOR_HOST` (what Google's client
/// libraries read: `host:port` or a URL) or Google's.
pub fn storage_endpoint(env: &dyn Fn(&str) -> Option<String>) -> String {
    match env("STORAGE_EMULATOR_HOST").filter(|s| !s.trim().is_empty()) {
        Some(host) if host.starts_with("http://") || host.starts_with("https://") => {
            format!("{}/", host.trim_end_matches('/'))
        }
        Some(host) => format!("http://{}/", host.trim_end_matches('/')),
        None => STORAGE_ENDPOINT.to_owned(),
    }
}

/// The URL `images.insert` takes as `rawDisk.source` (GCE accepts only
/// storage.googleapis.com URLs, whatever endpoint uploaded it).
pub fn object_url(bucket: &str, object: &str) -> String {
    format!("{STORAGE_ENDPOINT}{bucket}/{object}")
}

pub struct StorageClient<'a> {
    http: reqwest::Client,
    base: String,
    tokens: &'a TokenSource,
}

/// What a rerun needs to resume: kept beside the uploaded file.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UploadState {
    pub session_uri: String,
    pub bucket: String,
    pub object: String,
    pub size: u64,
}

/// How an upload went.
#[derive(Debug)]
pub struct UploadReport {
    /// The object's name (the state file's, when resumed).
    pub object: String,
    /// Bytes GCS already had when this run started, when it resumed.
    pub resumed_from: Option<u64>,
}

/// Where a session stands.
enum SessionStatus {
    Complete,
    /// GCS has bytes `0..n`.
    Incomplete(u64),
    /// The session expired (a week) or never existed: start again.
    Gone,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Gce(#[from] GceError),
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the upload state {}", path.display())]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the upload session answered HTTP {status} to the chunk at byte {offset}")]
    Session { status: u16, offset: u64 },
}

impl<'a> StorageClient<'a> {
    pub fn new(base: String, tokens: &'a TokenSource, http: reqwest::Client) -> Self {
        Self { http, base, tokens }
    }

    /// Fails with GCS's error (404 `notFound` for a missing bucket).
    pub async fn get_bucket(&self, bucket: &str) -> Result<(), GceError> {
        let url = format!(
            "{}storage/v1/b/{}",
            self.base,
            utf8_percent_encode(bucket, SEGMENT)
        );
        self.send(self.http.get(&url), &url).await.map(drop)
    }

    /// An object's bytes (`alt=media`), for small objects such as logs.
    pub async fn read_object(&self, bucket: &str, object: &str) -> Result<Vec<u8>, GceError> {
        let url = format!(
            "{}storage/v1/b/{}/o/{}?alt=media",
            self.base,
            utf8_percent_encode(bucket, SEGMENT),
            utf8_percent_encode(object, SEGMENT)
        );
        let response = self.send(self.http.get(&url), &url).await?;
        let bytes = response.bytes().await.map_err(|source| GceError::Http {
            url: url.clone(),
            source,
        })?;
        Ok(bytes.to_vec())
    }

    pub async fn delete_object(&self, bucket: &str, object: &str) -> Result<(), GceError> {
        let url = format!(
            "{}storage/v1/b/{}/o/{}",
            self.base,
            utf8_percent_encode(bucket, SEGMENT),
            utf8_percent_encode(object, SEGMENT)
        );
        self.send(self.http.delete(&url), &url).await.map(drop)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, GceError> {
        let token = self.tokens.token().await?;
        let http_err = |source| GceError::Http {
            url: url.to_owned(),
            source,
        };
        let response = request
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .map_err(http_err)?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let text = response.text().await.map_err(http_err)?;
        Err(api_error(status, &text))
    }

    /// Uploads `file` as `bucket/object`, resuming the session recorded in
    /// `state_file` when it is for the same bucket and size. The state file
    /// is removed when the object is complete and kept on failure.
    pub async fn upload_resumable(
        &self,
        file: &Path,
        bucket: &str,
        object: &str,
        state_file: &Path,
        progress: &(dyn Fn(u64) + Sync),
        cancel: &CancellationToken,
    ) -> Result<UploadReport, UploadError> {
        let read_err = |source| UploadError::Read {
            path: file.to_owned(),
            source,
        };
        let size = std::fs::metadata(file).map_err(read_err)?.len();
        let previous = std::fs::read(state_file)
            .ok()
            .and_then(|b| serde_json::from_slice::<UploadState>(&b).ok())
            .filter(|s| s.bucket == bucket && s.size == size);
        let mut resumed_from = None;
        let (state, mut offset) = match previous {
            Some(state) => match self.status(&state.session_uri, size).await? {
                SessionStatus::Complete => {
                    let _ = std::fs::remove_file(state_file);
                    return Ok(UploadReport {
                        object: state.object,
                        resumed_from: Some(size),
                    });
                }
                SessionStatus::Incomplete(have) => {
                    resumed_from = Some(have);
                    (state, have)
                }
                SessionStatus::Gone => {
                    (self.start(file, bucket, object, size, state_file).await?, 0)
                }
            },
            None => (self.start(file, bucket, object, size, state_file).await?, 0),
        };
        let mut reader = std::fs::File::open(file).map_err(read_err)?;
        loop {
            progress(offset);
            let len = CHUNK_SIZE.min(size - offset);
            reader.seek(SeekFrom::Start(offset)).map_err(read_err)?;
            let mut chunk = vec![0; usize::try_from(len).unwrap_or(usize::MAX)];
            reader.read_exact(&mut chunk).map_err(read_err)?;
            let range = if len == 0 {
                format!("bytes */{size}")
            } else {
                format!("bytes {offset}-{}/{size}", offset + len - 1)
            };
            let request = self
                .http
                .put(&state.session_uri)
                .header("Content-Range", range)
                .body(chunk)
                .send();
            let response = tokio::select! {
                r = request => r.map_err(|source| GceError::Http { url: redact(&state.session_uri), source })?,
                () = cancel.cancelled() => return Err(GceError::Cancelled.into()),
            };
            match session_status(&response) {
                Some(SessionStatus::Complete) => break,
                Some(SessionStatus::Incomplete(have)) if have > offset => offset = have,
                Some(SessionStatus::Incomplete(_)) | Some(SessionStatus::Gone) | None => {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    if serde_json::from_str::<serde_json::Value>(&text).is_ok() {
                        return Err(api_error(status, &text).into());
                    }
                    return Err(UploadError::Session { status, offset });
                }
            }
        }
        progress(size);
        let _ = std::fs::remove_file(state_file);
        Ok(UploadReport {
            object: state.object,
            resumed_from,
        })
    }

    /// Opens a session and records it before any byte is sent.
    async fn start(
        &self,
        file: &Path,
        bucket: &str,
        object: &str,
        size: u64,
        state_file: &Path,
    ) -> Result<UploadState, UploadError> {
        let url = format!(
            "{}upload/storage/v1/b/{}/o?uploadType=resumable&name={}",
            self.base,
            utf8_percent_encode(bucket, SEGMENT),
            utf8_percent_encode(object, SEGMENT)
        );
        let request = self
            .http
            .post(&url)
            .header("Content-Type", "application/json; charset=UTF-8")
            .header("X-Upload-Content-Type", content_type(file))
            .header("X-Upload-Content-Length", size.to_string())
            .body(serde_json::json!({ "name": object }).to_string());
        let response = self.send(request, &url).await?;
        let session_uri = response
            .headers()
            .get("Location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| GceError::BadResponse {
                url: url.clone(),
                reason: "no Location header with the upload session".into(),
            })?;
        let state = UploadState {
            session_uri,
            bucket: bucket.to_owned(),
            object: object.to_owned(),
            size,
        };
        let text = serde_json::to_vec(&state).unwrap_or_default();
        std::fs::write(state_file, text).map_err(|source| UploadError::State {
            path: state_file.to_owned(),
            source,
        })?;
        Ok(state)
    }

    /// Asks the session what it has: an empty `PUT` with `bytes */TOTAL`.
    async fn status(&self, session_uri: &str, size: u64) -> Result<SessionStatus, GceError> {
        let response = self
            .http
            .put(session_uri)
            .header("Content-Range", format!("bytes */{size}"))
            .header("Content-Length", "0")
            .send()
            .await
            .map_err(|source| GceError::Http {
                url: redact(session_uri),
                source,
            })?;
        match session_status(&response) {
            Some(status) => Ok(status),
            None => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                Err(api_error(status, &text))
            }
        }
    }
}

/// 200/201: complete; 308 with `Range: bytes=0-N`: N+1 bytes persisted
/// (no `Range`: none); 404/410: the session is gone.
fn session_status(response: &reqwest::Response) -> Option<SessionStatus> {
    match response.status().as_u16() {
        200 | 201 => Some(SessionStatus::Complete),
        308 => {
            let have = response
                .headers()
                .get("Range")
                .and_then(|v| v.to_str().ok())
                .and_then(persisted_bytes)
                .unwrap_or(0);
            Some(SessionStatus::Incomplete(have))
        }
        404 | 410 => Some(SessionStatus::Gone),
        _ => None,
    }
}

/// `bytes=0-N` → N+1.
fn persisted_bytes(range: &str) -> Option<u64> {
    let end = range.strip_prefix("bytes=0-")?;
    end.trim().parse::<u64>().ok().map(|n| n + 1)
}

/// The session URI authorises the upload by itself: never show its id.
fn redact(session_uri: &str) -> String {
    match session_uri.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => session_uri.to_owned(),
    }
}

fn content_type(file: &Path) -> &'static str {
    let name = file.to_string_lossy();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        "application/gzip"
    } else {
        "application/octet-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emulator_host_is_taken_as_google_libraries_take_it() {
        let env =
            |v: &'static str| move |k: &str| (k == "STORAGE_EMULATOR_HOST").then(|| v.to_owned());
        assert_eq!(
            storage_endpoint(&env("127.0.0.1:9023")),
            "http://127.0.0.1:9023/"
        );
        assert_eq!(storage_endpoint(&env("http://h:1/")), "http://h:1/");
        assert_eq!(storage_endpoint(&|_| None), STORAGE_ENDPOINT);
    }

    #[test]
    fn a_308_range_counts_the_bytes_gcs_has() {
        assert_eq!(persisted_bytes("bytes=0-8388607"), Some(8 * 1024 * 1024));
        assert_eq!(persisted_bytes("bytes=5-9"), None);
    }

    #[test]
    fn the_session_id_is_not_shown() {
        assert_eq!(
            redact("https://storage.googleapis.com/upload/storage/v1/b/b/o?upload_id=SECRET"),
            "https://storage.googleapis.com/upload/storage/v1/b/b/o?…"
        );
    }
}
