//! Google Compute Engine: credentials (`auth`), compute v1 calls and their
//! JSON shapes (`compute`), and errors that say what to do (`error`).

pub mod auth;
pub mod compute;
pub mod error;
pub mod storage;

pub use auth::{Credentials, TokenSource};
pub use compute::{ComputeClient, CustomerEncryptionKey, ImageSpec, InstanceSpec, ZonalKind};
pub use error::GceError;

/// compute v1's public endpoint.
pub const COMPUTE_ENDPOINT: &str = "https://compute.googleapis.com/compute/v1/";

/// The compute v1 base URL: `CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE` (the
/// variable gcloud reads, e.g. `http://127.0.0.1:PORT/compute/v1/`, for
/// emulators and private endpoints) or Google's.
pub fn compute_endpoint() -> String {
    compute_endpoint_from(&|k| std::env::var(k).ok())
}

/// `compute_endpoint` with the environment given (post-processors read
/// theirs through their context).
pub fn compute_endpoint_from(env: &dyn Fn(&str) -> Option<String>) -> String {
    let url = env("CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE")
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| COMPUTE_ENDPOINT.to_owned());
    if url.ends_with('/') {
        url
    } else {
        format!("{url}/")
    }
}
