//! Errors from credentials and compute v1, each with what to do about it.
//! Tokens and private keys never appear in them.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum GceError {
    #[error("cannot read the credentials file {}", .path.display())]
    ReadCredentials {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is not a Google credentials JSON file: {reason}")]
    CredentialsFormat { what: String, reason: String },
    #[error(
        "no Google credentials: set account_file (a service-account key), access_token, or GOOGLE_APPLICATION_CREDENTIALS, or run `gcloud auth application-default login`"
    )]
    NoCredentials,
    #[error("the private key of {email} cannot sign a token: {reason}")]
    PrivateKey { email: String, reason: String },
    #[error(
        "the token endpoint {uri} refused the credentials of {who}: {error}{}\n  = hint: check that the key is current (not deleted or disabled in IAM) and belongs to this project",
        .description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()
    )]
    TokenRefused {
        uri: String,
        who: String,
        error: String,
        description: Option<String>,
    },
    #[error("cannot reach {url}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("unexpected answer from {url}: {reason}")]
    BadResponse { url: String, reason: String },
    #[error("{message} (HTTP {code}, {reason}){}", hint_suffix(.hint))]
    Api {
        code: u16,
        reason: String,
        message: String,
        hint: Option<String>,
    },
    #[error("{operation} failed: {}{}", .errors.join("; "), hint_suffix(.hint))]
    Operation {
        operation: String,
        errors: Vec<String>,
        hint: Option<String>,
    },
    #[error("{operation} did not finish within {seconds} s")]
    OperationTimeout { operation: String, seconds: u64 },
    #[error(
        "cannot impersonate {target}\n  = hint: the caller needs roles/iam.serviceAccountTokenCreator on {target}, and the account must exist"
    )]
    Impersonate {
        target: String,
        #[source]
        source: Box<GceError>,
    },
    #[error("interrupted")]
    Cancelled,
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref()
        .map(|h| format!("\n  = hint: {h}"))
        .unwrap_or_default()
}

/// What to do about an API error, from its reason (compute v1's
/// `errors[].reason`) or an operation's error code.
pub fn hint_for(reason: &str, message: &str) -> Option<String> {
    let r = reason.to_ascii_lowercase();
    let hint = match r.as_str() {
        "notfound" | "resource_not_found" if message.contains("/images/family/") => {
            "no image of that family: check source_image_family and source_image_project_id (public families live in projects such as ubuntu-os-cloud or debian-cloud)"
        }
        "notfound" | "resource_not_found" => "check the name, the project_id and the zone",
        "alreadyexists" | "already_exists" => {
            "choose another name (image_name: \"…-{{timestamp}}\" makes one per build) or delete the existing resource"
        }
        "forbidden" | "permission_denied" | "insufficientpermissions" | "accessnotconfigured" => {
            "the account lacks this permission: grant it a role that includes it (e.g. roles/compute.instanceAdmin.v1 and roles/iam.serviceAccountUser), and check that the Compute Engine API is enabled"
        }
        "quotaexceeded" | "quota_exceeded" | "ratelimitexceeded" => {
            "the project's quota is used up: free resources, pick another zone or region, or ask for more quota (IAM & Admin > Quotas)"
        }
        "autherror" | "unauthenticated" => "the token was refused: check the credentials",
        _ => return None,
    };
    Some(hint.to_owned())
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: u16,
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<ErrorItem>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    reason: String,
}

/// compute v1's error body → a typed error with a hint.
pub fn api_error(code: u16, text: &str) -> GceError {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => {
            let reason = body
                .error
                .errors
                .first()
                .map(|e| e.reason.clone())
                .filter(|r| !r.is_empty())
                .or(body.error.status)
                .unwrap_or_else(|| code.to_string());
            GceError::Api {
                code: body.error.code,
                hint: hint_for(&reason, &body.error.message),
                reason,
                message: body.error.message,
            }
        }
        Err(_) => GceError::Api {
            code,
            reason: "unknown".to_owned(),
            message: text.chars().take(300).collect(),
            hint: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_becomes_a_message_with_a_hint() {
        let e = api_error(
            404,
            r#"{"error":{"code":404,"message":"The resource 'projects/p/global/images/family/nope' was not found","errors":[{"message":"x","domain":"global","reason":"notFound"}]}}"#,
        );
        let text = e.to_string();
        assert!(
            text.contains("family/nope' was not found (HTTP 404, notFound)"),
            "{text}"
        );
        assert!(text.contains("source_image_family"), "{text}");
    }
}
