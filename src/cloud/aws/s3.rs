//! The S3 calls an import needs: does the bucket exist, a multipart upload
//! that survives an interruption, and deleting the object afterwards.
//!
//! Resuming: the upload id lives in a small state file beside the file
//! being uploaded. A rerun finds it, lists the parts S3 already holds,
//! keeps each whose ETag is the MD5 of the same range of the local file,
//! and sends only the rest. Unlike Packer (whose uploader aborts the
//! multipart upload on failure), a failed upload is left open for that.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use md5::Digest;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{AwsClient, AwsError, Call, parse_xml, sigv4, xml_text};

/// S3 takes parts of at least 5 MiB (but the last) and at most 10,000.
pub const MIN_PART_SIZE: u64 = 8 * 1024 * 1024;
const MAX_PARTS: u64 = 10_000;

/// Server-side encryption for the uploaded object (`s3_encryption`,
/// `s3_encryption_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    Aes256,
    Kms { key_id: Option<String> },
}

/// What an upload is: where from, where to.
#[derive(Debug, Clone)]
pub struct UploadSpec {
    pub file: PathBuf,
    pub bucket: String,
    pub key: String,
    pub encryption: Option<Encryption>,
    /// Where the multipart upload id is kept between runs.
    pub state_file: PathBuf,
}

/// How the upload went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadReport {
    /// The key actually written: a resumed upload keeps its first key.
    pub key: String,
    pub parts: u32,
    /// Parts found already uploaded and not sent again.
    pub reused_parts: u32,
    pub resumed: bool,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct UploadState {
    bucket: String,
    key: String,
    upload_id: String,
    size: u64,
    part_size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> UploadError {
    let path = path.to_owned();
    move |source| UploadError::Io { what, path, source }
}

impl AwsClient {
    fn object_url(&self, bucket: &str, key: &str) -> Result<reqwest::Url, AwsError> {
        let key = sigv4::uri_encode(key, false);
        let text = match &self.endpoints.s3 {
            // Custom endpoints (moto, MinIO) take path-style addresses.
            Some(base) => format!("{}/{bucket}/{key}", base.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{}.amazonaws.com/{key}", self.region),
        };
        self.url("s3", &text)
    }

    /// Fails with `NoSuchBucket` (or the service's refusal) unless the
    /// bucket exists and is reachable with these credentials.
    pub async fn head_bucket(&self, bucket: &str) -> Result<(), AwsError> {
        let url = self.object_url(bucket, "")?;
        let result = self
            .send(Call {
                service: "s3",
                action: "HeadBucket",
                method: Method::HEAD,
                url,
                headers: Vec::new(),
                body: Default::default(),
            })
            .await;
        match result {
            Err(AwsError::Api {
                status: 404,
                action,
                ..
            }) => Err(AwsError::Api {
                service: "s3",
                action,
                status: 404,
                code: "NoSuchBucket".into(),
                message: format!("bucket `{bucket}` does not exist"),
            }),
            // HEAD has no body: ask again with GET for the error's code.
            Err(AwsError::Api { status: 403, .. }) => {
                let mut url = self.object_url(bucket, "")?;
                url.set_query(Some("location"));
                self.send(Call {
                    service: "s3",
                    action: "GetBucketLocation",
                    method: Method::GET,
                    url,
                    headers: Vec::new(),
                    body: Default::default(),
                })
                .await
                .map(drop)
            }
            other => other.map(drop),
        }
    }

    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), AwsError> {
        let url = self.object_url(bucket, key)?;
        self.send(Call {
            service: "s3",
            action: "DeleteObject",
            method: Method::DELETE,
            url,
            headers: Vec::new(),
            body: Default::default(),
        })
        .await
        .map(drop)
    }

    /// Uploads `spec.file` in parts, resuming the upload recorded in the
    /// state file when it is for the same bucket and file size. `progress`
    /// is told the bytes done so far.
    pub async fn upload_resumable(
        &self,
        spec: &UploadSpec,
        progress: &(dyn Fn(u64) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<UploadReport, UploadError> {
        let size = std::fs::metadata(&spec.file)
            .map_err(io("cannot read", &spec.file))?
            .len();
        let part_size = MIN_PART_SIZE.max(size.div_ceil(MAX_PARTS));
        let previous = read_state(&spec.state_file)
            .filter(|s| s.bucket == spec.bucket && s.size == size && s.part_size == part_size);
        let mut existing = Vec::new();
        let (state, resumed) = match previous {
            Some(state) => match self.list_parts(&state).await {
                Ok(parts) => {
                    existing = parts;
                    (state, true)
                }
                Err(e) if e.code() == Some("NoSuchUpload") => {
                    (self.create_upload(spec, size, part_size).await?, false)
                }
                Err(e) => return Err(e.into()),
            },
            None => (self.create_upload(spec, size, part_size).await?, false),
        };
        if !resumed {
            let text = serde_json::to_string_pretty(&state).unwrap_or_default();
            std::fs::write(&spec.state_file, text)
                .map_err(io("cannot write the upload state", &spec.state_file))?;
        }
        let count = size.div_ceil(part_size).max(1);
        let mut etags = Vec::with_capacity(count as usize);
        let mut reused = 0;
        let mut file = std::fs::File::open(&spec.file).map_err(io("cannot open", &spec.file))?;
        let mut done = 0;
        for number in 1..=count {
            if cancel.is_cancelled() {
                return Err(AwsError::Cancelled.into());
            }
            let offset = (number - 1) * part_size;
            let len = part_size.min(size - offset);
            let mut data = vec![0; len as usize];
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.read_exact(&mut data))
                .map_err(io("cannot read", &spec.file))?;
            let md5 = format!("\"{}\"", crate::digest::hex(&md5::Md5::digest(&data)));
            let number = number as u32;
            let etag = if existing.iter().any(|(n, e)| *n == number && *e == md5) {
                reused += 1;
                md5
            } else {
                // A hung request must not outlive Ctrl-C.
                tokio::select! {
                    etag = self.upload_part(&state, number, data) => etag?,
                    () = cancel.cancelled() => return Err(AwsError::Cancelled.into()),
                }
            };
            etags.push((number, etag));
            done += len;
            progress(done);
        }
        self.complete_upload(&state, &etags).await?;
        let _ = std::fs::remove_file(&spec.state_file);
        Ok(UploadReport {
            key: state.key,
            parts: count as u32,
            reused_parts: reused,
            resumed,
        })
    }

    async fn create_upload(
        &self,
        spec: &UploadSpec,
        size: u64,
        part_size: u64,
    ) -> Result<UploadState, AwsError> {
        let mut url = self.object_url(&spec.bucket, &spec.key)?;
        url.set_query(Some("uploads="));
        let mut headers = Vec::new();
        match &spec.encryption {
            None => {}
            Some(Encryption::Aes256) => {
                headers.push(("x-amz-server-side-encryption".into(), "AES256".into()));
            }
            Some(Encryption::Kms { key_id }) => {
                headers.push(("x-amz-server-side-encryption".into(), "aws:kms".into()));
                if let Some(id) = key_id {
                    headers.push((
                        "x-amz-server-side-encryption-aws-kms-key-id".into(),
                        id.clone(),
                    ));
                }
            }
        }
        let action = "CreateMultipartUpload";
        let answer = self
            .send(Call {
                service: "s3",
                action,
                method: Method::POST,
                url,
                headers,
                body: Default::default(),
            })
            .await?;
        let doc = parse_xml("s3", action, &answer.body)?;
        let upload_id = xml_text(doc.root(), "UploadId").ok_or_else(|| AwsError::BadAnswer {
            service: "s3",
            action: action.into(),
            problem: "no UploadId".into(),
        })?;
        Ok(UploadState {
            bucket: spec.bucket.clone(),
            key: spec.key.clone(),
            upload_id,
            size,
            part_size,
        })
    }

    /// The parts already uploaded: number and ETag.
    async fn list_parts(&self, state: &UploadState) -> Result<Vec<(u32, String)>, AwsError> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut url = self.object_url(&state.bucket, &state.key)?;
            url.query_pairs_mut()
                .append_pair("uploadId", &state.upload_id);
            if let Some(m) = &marker {
                url.query_pairs_mut().append_pair("part-number-marker", m);
            }
            let answer = self
                .send(Call {
                    service: "s3",
                    action: "ListParts",
                    method: Method::GET,
                    url,
                    headers: Vec::new(),
                    body: Default::default(),
                })
                .await?;
            let doc = parse_xml("s3", "ListParts", &answer.body)?;
            for part in doc
                .descendants()
                .filter(|n| n.is_element() && n.tag_name().name() == "Part")
            {
                let number = xml_text(part, "PartNumber").and_then(|n| n.parse().ok());
                let etag = xml_text(part, "ETag");
                if let (Some(n), Some(e)) = (number, etag) {
                    parts.push((n, e));
                }
            }
            let truncated = xml_text(doc.root(), "IsTruncated").is_some_and(|t| t == "true");
            marker = xml_text(doc.root(), "NextPartNumberMarker");
            if !truncated || marker.is_none() {
                return Ok(parts);
            }
        }
    }

    async fn upload_part(
        &self,
        state: &UploadState,
        number: u32,
        data: Vec<u8>,
    ) -> Result<String, AwsError> {
        let mut url = self.object_url(&state.bucket, &state.key)?;
        url.query_pairs_mut()
            .append_pair("partNumber", &number.to_string())
            .append_pair("uploadId", &state.upload_id);
        let answer = self
            .send(Call {
                service: "s3",
                action: "UploadPart",
                method: Method::PUT,
                url,
                headers: Vec::new(),
                body: data.into(),
            })
            .await?;
        answer
            .headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| AwsError::BadAnswer {
                service: "s3",
                action: "UploadPart".into(),
                problem: format!("no ETag for part {number} (HTTP {})", answer.status),
            })
    }

    async fn complete_upload(
        &self,
        state: &UploadState,
        etags: &[(u32, String)],
    ) -> Result<(), AwsError> {
        let mut url = self.object_url(&state.bucket, &state.key)?;
        url.query_pairs_mut()
            .append_pair("uploadId", &state.upload_id);
        let mut body = String::from("<CompleteMultipartUpload>");
        for (n, etag) in etags {
            body.push_str(&format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag></Part>",
                xml_escape(etag)
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        let answer = self
            .send(Call {
                service: "s3",
                action: "CompleteMultipartUpload",
                method: Method::POST,
                url,
                headers: vec![("content-type".into(), "application/xml".into())],
                body: body.into(),
            })
            .await?;
        // S3 may answer 200 with an error document when completing fails.
        if let Ok(doc) = parse_xml("s3", "CompleteMultipartUpload", &answer.body)
            && doc.root_element().tag_name().name() == "Error"
        {
            return Err(AwsError::Api {
                service: "s3",
                action: "CompleteMultipartUpload".into(),
                status: answer.status,
                code: xml_text(doc.root(), "Code").unwrap_or_default(),
                message: xml_text(doc.root(), "Message").unwrap_or_default(),
            });
        }
        Ok(())
    }
}

fn read_state(path: &Path) -> Option<UploadState> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

pub(crate) fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
