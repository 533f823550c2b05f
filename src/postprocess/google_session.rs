//! What Packer's GCE post-processors share: credentials from their keys
//! (else the builder's key file, else application default credentials),
//! a token fetched up front so bad credentials fail before anything is
//! made, and the compute client over it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cloud::gce::auth::iam_credentials_endpoint;
use crate::cloud::gce::storage::StorageClient;
use crate::cloud::gce::{ComputeClient, Credentials, GceError, TokenSource, compute_endpoint_from};
use crate::config::post_processor::GceAccess;

use super::PostProcessContext;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{key}: cannot read the credentials")]
    ReadCredentials {
        key: &'static str,
        #[source]
        source: GceError,
    },
    #[error("Google refused the credentials ({who})")]
    BadCredentials {
        who: String,
        #[source]
        source: GceError,
    },
    #[error("cannot make an HTTP client: {0}")]
    Client(String),
}

/// A bucket a post-processor writes to, found missing or unreachable
/// before anything is made.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error(
        "{} does not exist or this account cannot see it\n  = hint: create it (`gcloud storage buckets create gs://{bucket} --project {project}`) or grant the account roles/storage.objectAdmin on it",
        named_by(key, bucket)
    )]
    Missing {
        /// The key that named the bucket (`bucket`, `paths`).
        key: &'static str,
        bucket: String,
        project: String,
        #[source]
        source: GceError,
    },
    #[error("cannot reach bucket `{bucket}`")]
    Unreachable {
        bucket: String,
        #[source]
        source: GceError,
    },
}

/// `bucket: `b`` where the key is the bucket, `paths: bucket `b`` where
/// the key holds more than its name.
fn named_by(key: &str, bucket: &str) -> String {
    if key == "bucket" {
        format!("bucket: `{bucket}`")
    } else {
        format!("{key}: bucket `{bucket}`")
    }
}

/// Checks that `bucket` (named by `key`) exists and this account sees it.
pub async fn require_bucket(
    gcs: &StorageClient<'_>,
    key: &'static str,
    bucket: &str,
    project: &str,
) -> Result<(), BucketError> {
    gcs.get_bucket(bucket)
        .await
        .map(|_| ())
        .map_err(|source| match &source {
            GceError::Api { code: 404, .. } => BucketError::Missing {
                key,
                bucket: bucket.to_owned(),
                project: project.to_owned(),
                source,
            },
            _ => BucketError::Unreachable {
                bucket: bucket.to_owned(),
                source,
            },
        })
}

/// An authenticated compute client and who it acts as.
pub struct GoogleSession {
    pub compute: ComputeClient,
    pub http: reqwest::Client,
    /// "service account x@…", for the log (never a secret).
    pub who: String,
}

/// Connects as the keys say: `access` first, then `builder_key` (the key
/// file the build used, as Packer's export falls back to), then
/// application default credentials.
pub async fn connect(
    access: &GceAccess,
    builder_key: Option<&Path>,
    project: &str,
    scopes: &[&str],
    ctx: &PostProcessContext,
) -> Result<GoogleSession, SessionError> {
    let credentials = credentials(access, builder_key, ctx)?;
    let who = credentials.describe();
    // Built in-process (tests, library use) there is no provider yet.
    crate::iso::install_crypto_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| SessionError::Client(e.to_string()))?;
    let scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
    let tokens = TokenSource::new(credentials, scopes, http.clone());
    tokens
        .token()
        .await
        .map_err(|source| SessionError::BadCredentials {
            who: who.clone(),
            source,
        })?;
    let env = |k: &str| ctx.env_var(k);
    let compute = ComputeClient::new(
        project.to_owned(),
        compute_endpoint_from(&env),
        tokens,
        http.clone(),
    );
    Ok(GoogleSession { compute, http, who })
}

fn credentials(
    access: &GceAccess,
    builder_key: Option<&Path>,
    ctx: &PostProcessContext,
) -> Result<Credentials, SessionError> {
    let own = own_credentials(access, builder_key, ctx)?;
    Ok(match &access.impersonate_service_account {
        Some(target) => Credentials::Impersonated {
            source: Box::new(own),
            target: target.clone(),
            endpoint: iam_credentials_endpoint(&|k| ctx.env_var(k)),
        },
        None => own,
    })
}

fn own_credentials(
    access: &GceAccess,
    builder_key: Option<&Path>,
    ctx: &PostProcessContext,
) -> Result<Credentials, SessionError> {
    let read = |key| move |source| SessionError::ReadCredentials { key, source };
    if let Some(token) = &access.access_token {
        Ok(Credentials::AccessToken(token.clone()))
    } else if let Some(json) = &access.credentials_json {
        Credentials::from_json(json, "credentials_json").map_err(read("credentials_json"))
    } else if let Some(file) = &access.account_file {
        Credentials::from_file(&ctx.render.pwd().join(file)).map_err(read("account_file"))
    } else if let Some(file) = builder_key {
        let file: PathBuf = ctx.render.pwd().join(file);
        Credentials::from_file(&file).map_err(read("the builder's account_file"))
    } else {
        Credentials::application_default_from(&|k| ctx.env_var(k))
            .map_err(read("application default credentials"))
    }
}
