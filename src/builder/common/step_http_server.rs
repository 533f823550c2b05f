//! Serves `http_directory` / `http_content` to the guest while it installs.

use std::net::IpAddr;

use crate::http::{HttpServer, HttpServerConfig};
use crate::run::runner::{
    CleanupFuture, FailureClass, Outcome, Step, StepContext, StepFailure, StepFuture,
};

use super::HasCommon;

#[derive(Debug, thiserror::Error)]
pub enum HttpServerStepError {
    #[error("http_bind_address `{0}` is not an IP address")]
    BindAddress(String),
    #[error("cannot start the HTTP server")]
    Start(#[source] crate::http::HttpError),
}

impl StepFailure for HttpServerStepError {
    fn class(&self) -> FailureClass {
        match self {
            Self::BindAddress(_) => FailureClass::Input,
            Self::Start(_) => FailureClass::Host,
        }
    }
}

pub struct StepHttpServer;

impl<S: HasCommon> Step<S> for StepHttpServer {
    fn name(&self) -> &'static str {
        "Starting the HTTP server"
    }

    fn run<'a>(&'a mut self, state: &'a mut S, ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let common = state.common();
            let http = &common.http_config;
            if http.directory.is_none() && http.content.is_empty() {
                ctx.reporter.info(
                    &ctx.build,
                    "No http_directory or http_content: no HTTP server needed",
                );
                return Ok(());
            }
            let bind_address: IpAddr = http
                .bind_address
                .parse()
                .map_err(|_| HttpServerStepError::BindAddress(http.bind_address.clone()))?;
            let directory = http.directory.as_ref().map(|d| {
                let from_cwd = common.options.render.pwd().join(d);
                if d.is_absolute() || from_cwd.exists() {
                    from_cwd
                } else {
                    common.options.render.template_dir().join(d)
                }
            });
            let data = common.ssh_key_data();
            let content = http
                .content
                .iter()
                .map(|(path, d)| {
                    super::render_deferred(common, "http_content", d, &data)
                        .map(|body| (path.clone(), body))
                })
                .collect::<Result<_, _>>()?;
            let config = HttpServerConfig {
                directory,
                content,
                bind_address,
                port_min: http.port_min,
                port_max: http.port_max,
            };
            let server = HttpServer::start(config, ctx.reporter.clone(), ctx.build.clone())
                .await
                .map_err(HttpServerStepError::Start)?;
            ctx.reporter.info(
                &ctx.build,
                &format!(
                    "HTTP server listening on {} (the guest reaches it at {}:{})",
                    server.address(),
                    common.http_ip,
                    server.port()
                ),
            );
            common.http = Some(server);
            Ok(())
        })
    }

    fn cleanup<'a>(
        &'a mut self,
        state: &'a mut S,
        _ctx: &'a StepContext,
        _outcome: Outcome,
    ) -> CleanupFuture<'a> {
        Box::pin(async move {
            if let Some(server) = state.common().http.take() {
                server.shutdown().await;
            }
        })
    }
}
