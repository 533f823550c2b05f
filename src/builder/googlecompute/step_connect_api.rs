//! Finds the credentials (account_file, access_token, application default
//! credentials) and makes the compute v1 client; checks them at once by
//! fetching a token, so bad credentials fail before anything is created.

use std::sync::Arc;

use super::error::GceStepError;
use crate::cloud::gce::auth::iam_credentials_endpoint;
use crate::cloud::gce::{ComputeClient, Credentials, TokenSource, compute_endpoint};
use crate::config::googlecompute::GoogleComputeConfig;
use crate::run::runner::{Step, StepContext, StepError, StepFuture};

use super::GceState;

pub struct StepConnectApi;

/// The credentials the template or the environment gives, read before any
/// step runs (like Packer's prepare), so a build without any makes nothing.
pub fn find_credentials(
    config: &GoogleComputeConfig,
    pwd: &std::path::Path,
) -> Result<Credentials, StepError> {
    let own = own_credentials(config, pwd)?;
    Ok(match &config.impersonate_service_account {
        Some(target) => Credentials::Impersonated {
            source: Box::new(own),
            target: target.clone(),
            endpoint: iam_credentials_endpoint(&|k| std::env::var(k).ok()),
        },
        None => own,
    })
}

fn own_credentials(
    config: &GoogleComputeConfig,
    pwd: &std::path::Path,
) -> Result<Credentials, StepError> {
    if let Some(token) = &config.access_token {
        Ok(Credentials::AccessToken(token.clone()))
    } else if let Some(json) = &config.credentials_json {
        Credentials::from_json(json, "credentials_json")
            .map_err(|e| GceStepError::Credentials("credentials_json", e).into())
    } else if let Some(file) = &config.account_file {
        Credentials::from_file(&pwd.join(file))
            .map_err(|e| GceStepError::Credentials("account_file", e).into())
    } else {
        Credentials::application_default()
            .map_err(|e| GceStepError::Credentials("no credentials", e).into())
    }
}

impl Step<GceState> for StepConnectApi {
    fn name(&self) -> &'static str {
        "Connecting to the compute API"
    }

    fn run<'a>(&'a mut self, state: &'a mut GceState, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let config = &state.config;
            let credentials = state
                .credentials
                .clone()
                .ok_or(GceStepError::NoCredentials)?;
            let http = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(120))
                .build()
                .map_err(GceStepError::HttpClient)?;
            let endpoint = compute_endpoint();
            ctx.reporter.info(
                &ctx.build,
                &format!("Using {} with {endpoint}", credentials.describe()),
            );
            let tokens = TokenSource::new(credentials, config.scopes.clone(), http.clone());
            tokens.token().await.map_err(GceStepError::Token)?;
            state.client = Some(Arc::new(ComputeClient::new(
                config.project_id.clone(),
                endpoint,
                tokens,
                http,
            )));
            Ok(())
        })
    }
}
