//! Why a googlecompute step failed: what the step was doing, the API's
//! error as the cause, and the class the CLI maps to an exit status.

use std::path::PathBuf;

use crate::cloud::gce::GceError;
use crate::run::runner::{FailureClass, StepFailure};

#[derive(Debug, thiserror::Error)]
pub enum GceStepError {
    #[error("no connection to the compute API")]
    NotConnected,
    /// Which credentials setting could not be used (`credentials_json`,
    /// `account_file`), or "no credentials" for the default ones.
    #[error("{0}")]
    Credentials(&'static str, #[source] GceError),
    #[error("no credentials")]
    NoCredentials,
    #[error("cannot make an HTTP client")]
    HttpClient(#[source] reqwest::Error),
    #[error("cannot get an access token")]
    Token(#[source] GceError),
    #[error(
        "image {name} already exists in project {project}\n  = hint: choose another image_name (\"…-{{{{timestamp}}}}\" makes one per build) or delete the image"
    )]
    ImageExists { name: String, project: String },
    #[error("source_image or source_image_family is required")]
    NoSourceImage,
    /// The source image step ran before and found none (a kiln bug).
    #[error("no source image")]
    SourceImageMissing,
    #[error(
        "{kind} `{what}` was not found in project{} {}\n  = hint: check {key} and source_image_project_id (public images live in projects such as ubuntu-os-cloud or debian-cloud)",
        if .projects.len() == 1 { "" } else { "s" },
        .projects.join(", ")
    )]
    SourceImageNotFound {
        kind: &'static str,
        what: String,
        key: &'static str,
        projects: Vec<String>,
    },
    #[error("{key}: cannot read {}", .path.display())]
    ReadFile {
        key: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("instance {name} is still {status} after {timeout:?} (state_timeout)")]
    NotRunning {
        name: String,
        status: String,
        timeout: std::time::Duration,
    },
    #[error(
        "instance {name} has no {} IP address\n  = hint: use_internal_ip: true reaches it on its network's address",
        if *.internal { "internal" } else { "external" }
    )]
    NoAddress { name: String, internal: bool },
    #[error("{0}")]
    Interrupted(&'static str),
    /// A compute API call that failed: `doing` says which ("cannot create
    /// instance kiln-1"), the API's error follows as the cause.
    #[error("{doing}")]
    Api {
        doing: String,
        #[source]
        source: GceError,
    },
}

impl GceStepError {
    /// The API error of a call, with what the step was doing.
    pub fn api(doing: impl Into<String>) -> impl FnOnce(GceError) -> Self {
        let doing = doing.into();
        move |source| Self::Api { doing, source }
    }
}

impl StepFailure for GceStepError {
    fn class(&self) -> FailureClass {
        match self {
            Self::Interrupted(_)
            | Self::Api {
                source: GceError::Cancelled,
                ..
            } => FailureClass::Interrupted,
            // The template's settings name what does not exist or cannot work.
            Self::Credentials(..)
            | Self::NoCredentials
            | Self::ImageExists { .. }
            | Self::NoSourceImage
            | Self::SourceImageNotFound { .. }
            | Self::ReadFile { .. }
            | Self::NoAddress { .. } => FailureClass::Input,
            // The instance never came up.
            Self::NotRunning { .. } => FailureClass::Guest,
            Self::NotConnected
            | Self::SourceImageMissing
            | Self::HttpClient(_)
            | Self::Token(_)
            | Self::Api { .. } => FailureClass::Host,
        }
    }
}
