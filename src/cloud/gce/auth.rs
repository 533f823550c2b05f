//! Google credentials → OAuth 2.0 access tokens.
//!
//! A service-account key is exchanged for a token with an RS256-signed JWT at
//! the key's `token_uri` (RFC 7523, as Google's libraries do); an
//! `authorized_user` file (gcloud's application default credentials) with its
//! refresh token; a given access token is used as it is. Tokens are cached
//! and refreshed a minute before they expire. No token or key is ever put
//! into an error or a log line.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::error::GceError;

/// Where the credentials come from.
#[derive(Clone)]
pub enum Credentials {
    ServiceAccount(ServiceAccountKey),
    AuthorizedUser(AuthorizedUser),
    /// `access_token`: used as it is, never refreshed.
    AccessToken(String),
    /// The metadata server of the GCE instance kiln runs on (`host`:
    /// `GCE_METADATA_HOST`, else Google's 169.254.169.254).
    MetadataServer {
        host: String,
    },
    /// `impersonate_service_account`: the `source` credentials ask the IAM
    /// Credentials API (`endpoint`) for a token of `target`.
    Impersonated {
        source: Box<Credentials>,
        target: String,
        endpoint: String,
    },
}

/// The IAM Credentials API's public endpoint.
pub const IAM_CREDENTIALS_ENDPOINT: &str = "https://iamcredentials.googleapis.com/";

/// The IAM Credentials base URL: `CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS`
/// (gcloud's variable for this API) or Google's.
pub fn iam_credentials_endpoint(env: &dyn Fn(&str) -> Option<String>) -> String {
    let url = env("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS")
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| IAM_CREDENTIALS_ENDPOINT.to_owned());
    if url.ends_with('/') {
        url
    } else {
        format!("{url}/")
    }
}

/// What `generateAccessToken` answers.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GeneratedToken {
    access_token: String,
}

/// Impersonated tokens are asked for this long (the API's default maximum).
const IMPERSONATED_LIFETIME: Duration = Duration::from_secs(3600);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ServiceAccount(k) => write!(f, "ServiceAccount({})", k.client_email),
            Self::AuthorizedUser(_) => f.write_str("AuthorizedUser"),
            Self::AccessToken(_) => f.write_str("AccessToken(<sensitive>)"),
            Self::Impersonated { source, target, .. } => {
                write!(f, "Impersonated({target} by {source:?})")
            }
            Self::MetadataServer { host } => write!(f, "MetadataServer({host})"),
        }
    }
}

#[derive(Clone, Deserialize)]
pub struct ServiceAccountKey {
    pub client_email: String,
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
    #[serde(default)]
    pub project_id: Option<String>,
}

#[derive(Clone, Deserialize)]
pub struct AuthorizedUser {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".to_owned()
}

#[derive(Deserialize)]
struct CredentialsFile {
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl Credentials {
    /// A credentials JSON document (`service_account` or `authorized_user`);
    /// `what` names it in errors.
    pub fn from_json(text: &str, what: &str) -> Result<Self, GceError> {
        let format = |reason: String| GceError::CredentialsFormat {
            what: what.to_owned(),
            reason,
        };
        let head: CredentialsFile =
            serde_json::from_str(text).map_err(|e| format(e.to_string()))?;
        match head.kind.as_deref() {
            Some("service_account") => serde_json::from_str(text)
                .map(Self::ServiceAccount)
                .map_err(|e| format(e.to_string())),
            Some("authorized_user") => serde_json::from_str(text)
                .map(Self::AuthorizedUser)
                .map_err(|e| format(e.to_string())),
            Some(other) => Err(format(format!(
                "type `{other}` is not supported (service_account or authorized_user)"
            ))),
            None => Err(format("it has no `type` field".to_owned())),
        }
    }

    pub fn from_file(path: &Path) -> Result<Self, GceError> {
        let text = std::fs::read_to_string(path).map_err(|source| GceError::ReadCredentials {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Application default credentials, in Google's order:
    /// `GOOGLE_APPLICATION_CREDENTIALS`, then gcloud's
    /// `~/.config/gcloud/application_default_credentials.json`.
    pub fn application_default() -> Result<Self, GceError> {
        Self::application_default_from(&|k| std::env::var(k).ok())
    }

    /// `application_default` with the environment given. Last, as Google's
    /// libraries do, the metadata server when kiln runs on GCE: the one
    /// `GCE_METADATA_HOST` names, else 169.254.169.254 if it answers at
    /// once (off GCE nothing listens there).
    pub fn application_default_from(
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, GceError> {
        let set = |k: &str| env(k).filter(|v| !v.is_empty());
        if let Some(path) = set("GOOGLE_APPLICATION_CREDENTIALS") {
            return Self::from_file(Path::new(&path));
        }
        let config_dir = set("CLOUDSDK_CONFIG")
            .map(PathBuf::from)
            .or_else(|| set("HOME").map(|h| PathBuf::from(h).join(".config/gcloud")));
        match config_dir.map(|d| d.join("application_default_credentials.json")) {
            Some(path) if path.is_file() => return Self::from_file(&path),
            _ => {}
        }
        if let Some(host) = set("GCE_METADATA_HOST") {
            return Ok(Self::MetadataServer { host });
        }
        let google = std::net::SocketAddr::from(([169, 254, 169, 254], 80));
        if is_metadata_server(google) {
            return Ok(Self::MetadataServer {
                host: "169.254.169.254".to_owned(),
            });
        }
        Err(GceError::NoCredentials)
    }

    /// Who the credentials are, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::ServiceAccount(k) => format!("service account {}", k.client_email),
            Self::AuthorizedUser(_) => "the gcloud user credentials".to_owned(),
            Self::AccessToken(_) => "the access_token".to_owned(),
            Self::Impersonated { source, target, .. } => {
                format!(
                    "service account {target}, impersonated by {}",
                    source.describe()
                )
            }
            Self::MetadataServer { host } => {
                format!("the instance's service account (metadata server {host})")
            }
        }
    }
}

/// Hands out a valid token, fetching a new one when the last is about to expire.
pub struct TokenSource {
    credentials: Credentials,
    scopes: Vec<String>,
    http: reqwest::Client,
    cached: Mutex<Option<(String, Instant)>>,
    /// The caller's own tokens, when impersonating.
    impersonator: Option<Box<TokenSource>>,
}

/// A token is renewed when less than this is left of its life.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl TokenSource {
    pub fn new(credentials: Credentials, scopes: Vec<String>, http: reqwest::Client) -> Self {
        let impersonator = match &credentials {
            // The caller needs only the scope that lets it call IAM.
            Credentials::Impersonated { source, .. } => Some(Box::new(Self::new(
                (**source).clone(),
                vec!["https://www.googleapis.com/auth/cloud-platform".to_owned()],
                http.clone(),
            ))),
            _ => None,
        };
        Self {
            credentials,
            scopes,
            http,
            cached: Mutex::new(None),
            impersonator,
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// A token valid for at least a minute.
    pub async fn token(&self) -> Result<String, GceError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, expiry)) = cached.as_ref()
            && Instant::now() + REFRESH_MARGIN < *expiry
        {
            return Ok(token.clone());
        }
        let (uri, body) = match &self.credentials {
            Credentials::AccessToken(token) => return Ok(token.clone()),
            Credentials::MetadataServer { host } => {
                let started = Instant::now();
                let (token, life) = self.metadata_token(host).await?;
                *cached = Some((token.clone(), started + life));
                return Ok(token);
            }
            Credentials::Impersonated {
                target, endpoint, ..
            } => {
                let started = Instant::now();
                let token = self.impersonate(target, endpoint).await?;
                *cached = Some((token.clone(), started + IMPERSONATED_LIFETIME));
                return Ok(token);
            }
            Credentials::ServiceAccount(key) => {
                let assertion = signed_assertion(key, &self.scopes, SystemTime::now())?;
                (
                    key.token_uri.clone(),
                    form(&[
                        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                        ("assertion", &assertion),
                    ]),
                )
            }
            Credentials::AuthorizedUser(user) => (
                user.token_uri.clone(),
                form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", &user.client_id),
                    ("client_secret", &user.client_secret),
                    ("refresh_token", &user.refresh_token),
                ]),
            ),
        };
        let started = Instant::now();
        let response = self
            .http
            .post(&uri)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|source| GceError::Http {
                url: uri.clone(),
                source,
            })?;
        let status = response.status();
        let text = response.text().await.map_err(|source| GceError::Http {
            url: uri.clone(),
            source,
        })?;
        if !status.is_success() {
            let (error, description) = match serde_json::from_str::<TokenError>(&text) {
                Ok(e) => (e.error, e.error_description),
                Err(_) => (format!("HTTP {status}"), None),
            };
            return Err(GceError::TokenRefused {
                uri,
                who: self.credentials.describe(),
                error,
                description,
            });
        }
        let token: TokenResponse =
            serde_json::from_str(&text).map_err(|e| GceError::BadResponse {
                url: uri.clone(),
                reason: format!("no access_token in the answer ({e})"),
            })?;
        let life = Duration::from_secs(token.expires_in.unwrap_or(3600));
        *cached = Some((token.access_token.clone(), started + life));
        Ok(token.access_token)
    }
}

impl TokenSource {
    /// The instance's token from its metadata server.
    async fn metadata_token(&self, host: &str) -> Result<(String, Duration), GceError> {
        let url = format!(
            "http://{host}/computeMetadata/v1/instance/service-accounts/default/token?scopes={}",
            percent_encoding::utf8_percent_encode(
                &self.scopes.join(","),
                percent_encoding::NON_ALPHANUMERIC
            )
        );
        let http_err = |source| GceError::Http {
            url: url.clone(),
            source,
        };
        let response = self
            .http
            .get(&url)
            .header("Metadata-Flavor", "Google")
            .send()
            .await
            .map_err(http_err)?;
        let status = response.status();
        let text = response.text().await.map_err(http_err)?;
        if !status.is_success() {
            return Err(GceError::TokenRefused {
                uri: url.clone(),
                who: self.credentials.describe(),
                error: format!("HTTP {status}"),
                description: Some(text.trim().chars().take(200).collect()),
            });
        }
        let token: TokenResponse =
            serde_json::from_str(&text).map_err(|e| GceError::BadResponse {
                url: url.clone(),
                reason: format!("no access_token in the answer ({e})"),
            })?;
        let life = Duration::from_secs(token.expires_in.unwrap_or(3600));
        Ok((token.access_token, life))
    }

    /// IAM Credentials `generateAccessToken` for `target`, called with the
    /// impersonator's own token.
    ///
    /// Boxed as a `Send` future: `token` → `impersonate` → the caller's
    /// `token` recurses, which an `async fn` cannot.
    fn impersonate<'a>(
        &'a self,
        target: &'a str,
        endpoint: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, GceError>> + Send + 'a>>
    {
        Box::pin(self.impersonate_inner(target, endpoint))
    }

    async fn impersonate_inner(&self, target: &str, endpoint: &str) -> Result<String, GceError> {
        let caller = self
            .impersonator
            .as_ref()
            .ok_or_else(|| GceError::BadResponse {
                url: endpoint.to_owned(),
                reason: "no impersonating credentials".into(),
            })?;
        let wrap = |source: GceError| GceError::Impersonate {
            target: target.to_owned(),
            source: Box::new(source),
        };
        let token = caller.token().await.map_err(wrap)?;
        let url = format!(
            "{endpoint}v1/projects/-/serviceAccounts/{}:generateAccessToken",
            percent_encoding::utf8_percent_encode(target, percent_encoding::NON_ALPHANUMERIC)
        );
        let body = serde_json::json!({
            "scope": self.scopes,
            "lifetime": format!("{}s", IMPERSONATED_LIFETIME.as_secs()),
        });
        let http_err = |source| GceError::Http {
            url: url.clone(),
            source,
        };
        let response = self
            .http
            .post(&url)
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(http_err)?;
        let status = response.status();
        let text = response.text().await.map_err(http_err)?;
        if !status.is_success() {
            return Err(wrap(super::error::api_error(status.as_u16(), &text)));
        }
        let generated: GeneratedToken =
            serde_json::from_str(&text).map_err(|e| GceError::BadResponse {
                url: url.clone(),
                reason: format!("no accessToken in the answer ({e})"),
            })?;
        Ok(generated.access_token)
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The JWT a service account presents at its `token_uri`: RS256 over
/// `header.claims`, valid for an hour from `now`.
pub fn signed_assertion(
    key: &ServiceAccountKey,
    scopes: &[String],
    now: SystemTime,
) -> Result<String, GceError> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let iat = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut header = serde_json::json!({ "alg": "RS256", "typ": "JWT" });
    if let Some(kid) = &key.private_key_id {
        header["kid"] = serde_json::Value::String(kid.clone());
    }
    let claims = serde_json::json!({
        "iss": key.client_email,
        "scope": scopes.join(" "),
        "aud": key.token_uri,
        "iat": iat,
        "exp": iat + 3600,
    });
    let message = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let bad_key = |reason: String| GceError::PrivateKey {
        email: key.client_email.clone(),
        reason,
    };
    let der = pem_body(&key.private_key, "PRIVATE KEY")
        .ok_or_else(|| bad_key("private_key is not a PEM \"PRIVATE KEY\" (PKCS #8)".to_owned()))?;
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der)
        .map_err(|e| bad_key(format!("not an RSA key ({e})")))?;
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        message.as_bytes(),
        &mut signature,
    )
    .map_err(|_| bad_key("signing failed".to_owned()))?;
    Ok(format!("{message}.{}", b64.encode(signature)))
}

/// The DER inside `-----BEGIN {label}-----` … `-----END {label}-----`.
fn pem_body(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let text: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Whether a GCE metadata server answers at `addr`: it must reply with
/// `Metadata-Flavor: Google`, as Google's libraries require. A proxy or
/// firewall that answers every address (seen: a 403 "denied destination"
/// for 169.254.169.254) is not one, and must not turn "no credentials"
/// into a refused token from a server that is not there.
fn is_metadata_server(addr: std::net::SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
    let request = format!(
        "GET / HTTP/1.0\r\nHost: {}\r\nMetadata-Flavor: Google\r\n\r\n",
        addr.ip()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = Vec::new();
    let _ = stream.take(8192).read_to_end(&mut head);
    has_google_flavor(&String::from_utf8_lossy(&head))
}

/// The response head carries `Metadata-Flavor: Google` (any case).
fn has_google_flavor(response: &str) -> bool {
    let head = response.split("\r\n\r\n").next().unwrap_or_default();
    head.lines().skip(1).any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("metadata-flavor") && value.trim() == "Google"
        })
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_reply_with_the_google_flavor_is_a_metadata_server() {
        assert!(super::has_google_flavor(
            "HTTP/1.1 200 OK\r\nmetadata-flavor: Google\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!super::has_google_flavor(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n\r\nresolve_deny: denied destination"
        ));
        assert!(!super::has_google_flavor(
            "HTTP/1.1 200 OK\r\n\r\nMetadata-Flavor: Google"
        ));
    }

    use super::*;

    #[test]
    fn a_key_without_a_pem_block_is_refused_without_quoting_it() {
        let key = ServiceAccountKey {
            client_email: "a@b.iam.gserviceaccount.com".into(),
            private_key: "secret-material".into(),
            private_key_id: None,
            token_uri: default_token_uri(),
            project_id: None,
        };
        let e = signed_assertion(&key, &[], SystemTime::now()).expect_err("no PEM");
        assert!(!e.to_string().contains("secret-material"), "{e}");
    }

    #[test]
    fn credentials_of_an_unknown_type_are_named() {
        let e = Credentials::from_json(r#"{"type":"external_account"}"#, "creds.json")
            .expect_err("unsupported");
        assert!(e.to_string().contains("external_account"), "{e}");
    }
}
