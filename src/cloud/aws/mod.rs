//! The AWS driver: credentials, SigV4, and the few S3 and EC2 calls the
//! `amazon-import` post-processor makes, over reqwest. Endpoints follow the
//! SDKs' conventions (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`,
//! `AWS_ENDPOINT_URL_EC2`) so tests and users can point kiln at moto.

pub mod credentials;
pub mod ec2;
pub mod s3;
pub mod sigv4;

use std::time::{Duration, SystemTime};

use bytes::Bytes;

pub use credentials::{Credentials, ResolvedAccess, Secret, TemplateAccess};

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// The service answered with an error document.
    #[error("{service} {action}: {code} (HTTP {status}): {message}")]
    Api {
        service: &'static str,
        action: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{service} {action}: cannot reach {url}")]
    Transport {
        service: &'static str,
        action: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{service} {action}: unexpected answer: {problem}")]
    BadAnswer {
        service: &'static str,
        action: String,
        problem: String,
    },
    #[error("endpoint `{url}` is not an http(s) URL")]
    BadEndpoint { url: String },
    #[error("interrupted")]
    Cancelled,
}

impl AwsError {
    /// The service's error code, when it sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True when the credentials themselves were refused.
    pub fn is_bad_credentials(&self) -> bool {
        matches!(
            self.code(),
            Some(
                "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "AuthFailure"
                    | "InvalidClientTokenId"
                    | "UnrecognizedClientException"
                    | "ExpiredToken"
            )
        )
    }
}

/// The base URLs of the services, resolved once.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub ec2: String,
    /// `None`: AWS's own S3, addressed virtual-hosted style.
    pub s3: Option<String>,
}

impl Endpoints {
    /// `custom_ec2` is Packer's `custom_endpoint_ec2`; then the SDKs'
    /// environment variables; then AWS's public endpoints.
    pub fn resolve(
        region: &str,
        custom_ec2: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let env = |k: &str| env(k).filter(|v| !v.is_empty());
        let shared = env("AWS_ENDPOINT_URL");
        let with_scheme = |u: String| {
            if u.contains("://") {
                u
            } else {
                format!("https://{u}")
            }
        };
        let ec2 = custom_ec2
            .map(str::to_owned)
            .or_else(|| env("AWS_ENDPOINT_URL_EC2"))
            .or_else(|| shared.clone())
            .map(with_scheme)
            .unwrap_or_else(|| format!("https://ec2.{region}.amazonaws.com"));
        let s3 = env("AWS_ENDPOINT_URL_S3").or(shared).map(with_scheme);
        Self { ec2, s3 }
    }
}

/// A signed-request sender for one account and region.
#[derive(Clone)]
pub struct AwsClient {
    http: reqwest::Client,
    credentials: Credentials,
    pub region: String,
    pub endpoints: Endpoints,
}

/// One request before signing.
pub(crate) struct Call<'a> {
    pub service: &'static str,
    /// For messages: `PutObject`, `ImportImage`, …
    pub action: &'a str,
    pub method: reqwest::Method,
    pub url: reqwest::Url,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// What came back.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

/// Attempts per request: S3 and EC2 ask clients to retry 500 and 503.
const ATTEMPTS: u32 = 3;

impl AwsClient {
    pub fn new(access: &ResolvedAccess, endpoints: Endpoints) -> Self {
        // reqwest is built without a TLS provider of its own; kiln's is
        // ring. Installing it again is harmless (and needed when kiln is
        // used as a library).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            http: reqwest::Client::new(),
            credentials: access.credentials.clone(),
            region: access.region.clone(),
            endpoints,
        }
    }

    pub(crate) fn url(&self, service: &'static str, text: &str) -> Result<reqwest::Url, AwsError> {
        let _ = service;
        reqwest::Url::parse(text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| AwsError::BadEndpoint {
                url: text.to_owned(),
            })
    }

    /// Signs and sends `call`, retrying server errors; an error status
    /// becomes `AwsError::Api` with the code from the error document.
    pub(crate) async fn send(&self, call: Call<'_>) -> Result<Answer, AwsError> {
        let mut delay = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            let result = self.send_once(&call).await;
            let retry = match &result {
                Err(AwsError::Api { status, .. }) => *status >= 500,
                Err(AwsError::Transport { .. }) => true,
                _ => false,
            };
            if !retry || attempt >= ATTEMPTS {
                return result;
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }

    async fn send_once(&self, call: &Call<'_>) -> Result<Answer, AwsError> {
        let url = &call.url;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => {
                return Err(AwsError::BadEndpoint {
                    url: url.to_string(),
                });
            }
        };
        let query: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let payload = sigv4::sha256_hex(&call.body);
        let mut headers = call.headers.clone();
        if call.service == "s3" {
            headers.push(("x-amz-content-sha256".into(), payload.clone()));
        }
        let amz_date = sigv4::amz_date(SystemTime::now());
        let signed = sigv4::sign(
            &self.credentials,
            sigv4::Scope {
                region: &self.region,
                service: call.service,
                amz_date: &amz_date,
            },
            &sigv4::SignableRequest {
                method: call.method.as_str(),
                host: &host,
                path: url.path(),
                query: &query,
                headers: &headers,
                payload_sha256: &payload,
            },
        );
        let mut request = self
            .http
            .request(call.method.clone(), url.clone())
            .body(call.body.clone());
        for (k, v) in headers.iter().chain(&signed) {
            request = request.header(k.as_str(), v.as_str());
        }
        let transport = |source| AwsError::Transport {
            service: call.service,
            action: call.action.to_owned(),
            url: format!("{}://{host}", url.scheme()),
            source,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport)?;
        if status >= 300 {
            let (code, message) = error_document(&body).unwrap_or_else(|| {
                (
                    status_code_name(status).to_owned(),
                    String::from_utf8_lossy(&body).trim().to_owned(),
                )
            });
            return Err(AwsError::Api {
                service: call.service,
                action: call.action.to_owned(),
                status,
                code,
                message,
            });
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// `Code` and `Message` from S3's `<Error>` or EC2's
/// `<Response><Errors><Error>` document.
fn error_document(body: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let doc = roxmltree::Document::parse(text).ok()?;
    let code = xml_text(doc.root(), "Code")?;
    let message = xml_text(doc.root(), "Message").unwrap_or_default();
    Some((code, message))
}

/// What a body-less error (HEAD) means.
fn status_code_name(status: u16) -> &'static str {
    match status {
        301 => "PermanentRedirect",
        400 => "BadRequest",
        403 => "Forbidden",
        404 => "NotFound",
        _ => "ServerError",
    }
}

/// The text of the first descendant element named `name`.
pub(crate) fn xml_text(node: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    node.descendants()
        .find(|n| n.is_element() && n.tag_name().name() == name)
        .map(|n| n.text().unwrap_or("").trim().to_owned())
}

/// Parses an answer's XML body.
pub(crate) fn parse_xml<'a>(
    service: &'static str,
    action: &str,
    body: &'a [u8],
) -> Result<roxmltree::Document<'a>, AwsError> {
    let bad = |problem: String| AwsError::BadAnswer {
        service,
        action: action.to_owned(),
        problem,
    };
    let text = std::str::from_utf8(body).map_err(|e| bad(e.to_string()))?;
    roxmltree::Document::parse(text).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_the_sdks_variables() {
        let none = |_: &str| None;
        let e = Endpoints::resolve("eu-west-1", None, &none);
        assert_eq!(e.ec2, "https://ec2.eu-west-1.amazonaws.com");
        assert!(e.s3.is_none());
        let shared = |k: &str| (k == "AWS_ENDPOINT_URL").then(|| "http://127.0.0.1:5000".into());
        let e = Endpoints::resolve("eu-west-1", None, &shared);
        assert_eq!(e.ec2, "http://127.0.0.1:5000");
        assert_eq!(e.s3.as_deref(), Some("http://127.0.0.1:5000"));
        let e = Endpoints::resolve("eu-west-1", Some("ec2.example.com"), &shared);
        assert_eq!(e.ec2, "https://ec2.example.com");
    }

    #[test]
    fn error_documents_of_both_services() {
        let s3 = b"<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(
            error_document(s3),
            Some((
                "NoSuchBucket".into(),
                "The specified bucket does not exist".into()
            ))
        );
        let ec2 = b"<Response><Errors><Error><Code>AuthFailure</Code><Message>no</Message></Error></Errors><RequestID>x</RequestID></Response>";
        assert_eq!(
            error_document(ec2),
            Some(("AuthFailure".into(), "no".into()))
        );
    }
}
