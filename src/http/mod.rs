//! The answer-file server: serves `http_directory` and `http_content` to the
//! installer in the guest (preseed, kickstart, autoinstall seeds) while the
//! boot command runs. Every request is logged through the [`Reporter`].
//!
//! Answer files may hold passwords, so the server binds loopback by default,
//! lists no directories, and never serves anything outside its directory.

mod body;
mod site;

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::host::port::ports_from_random_start;
use crate::ui::Reporter;

pub use site::content_type;

/// What to serve and where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpServerConfig {
    /// `http_directory`: files served under `/`.
    pub directory: Option<PathBuf>,
    /// `http_content`: path → body, already interpolated. Wins over a file
    /// of the same path.
    pub content: BTreeMap<String, String>,
    /// `http_bind_address`; loopback unless the template says otherwise.
    pub bind_address: IpAddr,
    /// `http_port_min` / `http_port_max`, inclusive. `0..=0` lets the
    /// system choose.
    pub port_min: u16,
    pub port_max: u16,
}

impl Default for HttpServerConfig {
    /// Packer's defaults, but on loopback (guests reach it at 10.0.2.2).
    fn default() -> Self {
        Self {
            directory: None,
            content: BTreeMap::new(),
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port_min: 8000,
            port_max: 9000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("http_port_min ({min}) is greater than http_port_max ({max})")]
    PortRange { min: u16, max: u16 },
    #[error(
        "no free port for the HTTP server on {address} between {min} and {max} \
         (http_port_min, http_port_max)"
    )]
    NoFreePort { address: IpAddr, min: u16, max: u16 },
    #[error("cannot listen on {address} (http_bind_address)")]
    Bind {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot serve http_directory {}", path.display())]
    Directory {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A running server. Dropping it stops it; [`HttpServer::shutdown`] also
/// waits until the port is released.
#[derive(Debug)]
pub struct HttpServer {
    address: SocketAddr,
    accept_loop: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds a free port in the configured range and starts serving on the
    /// current tokio runtime.
    pub async fn start(
        config: HttpServerConfig,
        reporter: Arc<dyn Reporter>,
        build_name: String,
    ) -> Result<HttpServer, HttpError> {
        if config.port_min > config.port_max {
            return Err(HttpError::PortRange {
                min: config.port_min,
                max: config.port_max,
            });
        }
        let root =
            match &config.directory {
                Some(dir) => Some(tokio::fs::canonicalize(dir).await.map_err(|source| {
                    HttpError::Directory {
                        path: dir.clone(),
                        source,
                    }
                })?),
                None => None,
            };
        let listener = bind_in_range(config.bind_address, config.port_min, config.port_max).await?;
        let address = listener.local_addr().map_err(|source| HttpError::Bind {
            address: SocketAddr::new(config.bind_address, config.port_min),
            source,
        })?;
        let site = Arc::new(site::Site::new(root, &config.content, reporter, build_name));
        let accept_loop = tokio::spawn(accept(listener, site));
        Ok(HttpServer {
            address,
            accept_loop: Some(accept_loop),
        })
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting, drops open connections, and returns once the
    /// listening socket is closed.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.accept_loop.take() {
            task.abort();
            // The loop owns the listener and the connections: once it has
            // been dropped, the port is free. Its result is only "cancelled".
            let _ = task.await;
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(task) = self.accept_loop.take() {
            task.abort();
        }
    }
}

/// Tries every port of the range once, in the order of
/// [`ports_from_random_start`], and keeps the first listener that binds
/// (so no other program can take the port in between).
async fn bind_in_range(address: IpAddr, min: u16, max: u16) -> Result<TcpListener, HttpError> {
    for port in ports_from_random_start(min, max) {
        let socket = SocketAddr::new(address, port);
        match TcpListener::bind(socket).await {
            Ok(listener) => return Ok(listener),
            // Taken, or privileged: another port of the range may do.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
                ) => {}
            Err(source) => {
                return Err(HttpError::Bind {
                    address: socket,
                    source,
                });
            }
        }
    }
    Err(HttpError::NoFreePort { address, min, max })
}

async fn accept(listener: TcpListener, site: Arc<site::Site>) {
    // Connections live in the set so that stopping the loop ends them too.
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            // Out of file descriptors or a connection reset before accept:
            // the listener itself is still good.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Reap finished connections so the set does not grow for ever.
        while connections.try_join_next().is_some() {}
        let site = site.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let site = site.clone();
                async move { Ok::<_, std::convert::Infallible>(site.respond(&request).await) }
            });
            // A client that hangs up mid-response is not the server's error.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
