//! The answer-file server over real sockets on 127.0.0.1, with a raw
//! HTTP/1.1 client so what is on the wire is what is asserted.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use kiln::http::{HttpError, HttpServer, HttpServerConfig};
use kiln::ui::{Event, RecordingReporter, Reporter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) struct Reply {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `method path` exactly as written (no client-side normalisation)
/// and reads the whole reply.
pub(crate) async fn request(address: SocketAddr, method: &str, path: &str) -> Reply {
    let mut stream = TcpStream::connect(address).await.expect("connects");
    let head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("writes");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("reads");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn config(directory: Option<&Path>, content: &[(&str, &str)]) -> HttpServerConfig {
    HttpServerConfig {
        directory: directory.map(Path::to_path_buf),
        content: content
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        port_min: 0,
        port_max: 0,
        ..HttpServerConfig::default()
    }
}

async fn serve(config: HttpServerConfig) -> (HttpServer, Arc<RecordingReporter>) {
    let recorder = Arc::new(RecordingReporter::new());
    let reporter: Arc<dyn Reporter> = recorder.clone();
    let server = HttpServer::start(config, reporter, "qemu".to_owned())
        .await
        .expect("server starts");
    (server, recorder)
}

fn answer_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("preseed.cfg"),
        "d-i passwd/root-password x\n",
    )
    .expect("w");
    std::fs::create_dir(dir.path().join("empty")).expect("mkdir");
    std::fs::create_dir(dir.path().join("site")).expect("mkdir");
    std::fs::write(dir.path().join("site/index.html"), "<p>hi</p>").expect("w");
    dir
}

#[tokio::test]
async fn get_serves_a_file_with_length_and_type() {
    let dir = answer_dir();
    let (server, _) = serve(config(Some(dir.path()), &[])).await;
    let reply = request(server.address(), "GET", "/preseed.cfg").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "d-i passwd/root-password x\n");
    assert_eq!(reply.header("content-length"), Some("27"));
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
}

#[tokio::test]
async fn head_sends_the_length_but_no_body() {
    let dir = answer_dir();
    let (server, _) = serve(config(Some(dir.path()), &[("/ks.cfg", "text")])).await;
    let reply = request(server.address(), "HEAD", "/preseed.cfg").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some("27"));
    assert!(reply.body.is_empty());
    let reply = request(server.address(), "HEAD", "/ks.cfg").await;
    assert_eq!(reply.header("content-length"), Some("4"));
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn http_content_wins_over_a_file_of_the_same_path() {
    let dir = answer_dir();
    let content = [
        ("/preseed.cfg", "from http_content"),
        ("nested/user-data", "#cloud-config"),
    ];
    let (server, _) = serve(config(Some(dir.path()), &content)).await;
    let reply = request(server.address(), "GET", "/preseed.cfg").await;
    assert_eq!(reply.text(), "from http_content");
    assert_eq!(reply.header("content-length"), Some("17"));
    // Keys are matched as normalised paths, with or without a leading `/`.
    let reply = request(server.address(), "GET", "/nested//user-data").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "#cloud-config");
}

#[tokio::test]
async fn content_alone_needs_no_directory() {
    let (server, _) = serve(config(None, &[("/meta-data", "instance-id: x")])).await;
    assert_eq!(
        request(server.address(), "GET", "/meta-data").await.status,
        200
    );
    assert_eq!(request(server.address(), "GET", "/other").await.status, 404);
}

#[tokio::test]
async fn missing_files_and_directories_without_index_are_404() {
    let dir = answer_dir();
    let (server, _) = serve(config(Some(dir.path()), &[])).await;
    let address = server.address();
    assert_eq!(request(address, "GET", "/nope.cfg").await.status, 404);
    // No listings: answer files may hold passwords.
    assert_eq!(request(address, "GET", "/").await.status, 404);
    assert_eq!(request(address, "GET", "/empty/").await.status, 404);
    let index = request(address, "GET", "/site/").await;
    assert_eq!(index.status, 200);
    assert_eq!(index.text(), "<p>hi</p>");
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
}

#[tokio::test]
async fn other_methods_are_405_with_allow() {
    let dir = answer_dir();
    let (server, _) = serve(config(Some(dir.path()), &[])).await;
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let reply = request(server.address(), method, "/preseed.cfg").await;
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{method}");
    }
}

#[tokio::test]
async fn traversal_is_refused_in_every_spelling() {
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("secret"), "outside").expect("w");
    let dir = answer_dir();
    let name = outside
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a name");
    let (server, _) = serve(config(Some(dir.path()), &[])).await;
    let address = server.address();
    for path in [
        "/../etc/passwd".to_owned(),
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd".to_owned(),
        "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd".to_owned(),
        "/empty/../../etc/passwd".to_owned(),
        format!("/../{name}/secret"),
    ] {
        let reply = request(address, "GET", &path).await;
        assert!(
            reply.status == 400 || reply.status == 404,
            "{path}: {}",
            reply.status
        );
        assert!(!reply.text().contains("root:"), "{path}");
        assert!(!reply.text().contains("outside"), "{path}");
    }
    // An absolute path in the request line is a URI, not a file path.
    let reply = request(address, "GET", "//etc/passwd").await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn symlinks_are_followed_only_inside_the_directory() {
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("secret"), "outside").expect("w");
    let dir = answer_dir();
    let link = |target: &Path, name: &str| {
        std::os::unix::fs::symlink(target, dir.path().join(name)).expect("symlink");
    };
    link(&outside.path().join("secret"), "to-file-outside.cfg");
    link(outside.path(), "to-dir-outside");
    link(Path::new("/etc/passwd"), "passwd");
    link(&dir.path().join("preseed.cfg"), "alias.cfg");
    link(&dir.path().join("site/index.html"), "page.txt");
    let (server, _) = serve(config(Some(dir.path()), &[])).await;
    let address = server.address();
    for path in ["/to-file-outside.cfg", "/to-dir-outside/secret", "/passwd"] {
        let reply = request(address, "GET", path).await;
        assert_eq!(reply.status, 404, "{path}");
    }
    let alias = request(address, "GET", "/alias.cfg").await;
    assert_eq!(alias.status, 200);
    assert_eq!(alias.text(), "d-i passwd/root-password x\n");
    // The type is the requested name's, not the target's.
    let data = request(address, "GET", "/page.txt").await;
    assert_eq!(data.status, 200);
    assert_eq!(
        data.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
}

#[tokio::test]
async fn every_request_is_logged_for_the_build() {
    let dir = answer_dir();
    let (server, recorder) = serve(config(Some(dir.path()), &[])).await;
    request(server.address(), "GET", "/preseed.cfg").await;
    request(server.address(), "HEAD", "/preseed.cfg").await;
    request(server.address(), "GET", "/nope").await;
    request(server.address(), "POST", "/x").await;
    let lines: Vec<(String, String)> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Info { build, message } => Some((build, message)),
            _ => None,
        })
        .collect();
    let want = [
        "HTTP GET /preseed.cfg 200 (27 bytes)",
        "HTTP HEAD /preseed.cfg 200 (0 bytes)",
        "HTTP GET /nope 404 (10 bytes)",
        "HTTP POST /x 405 (19 bytes)",
    ];
    assert_eq!(
        lines,
        want.iter()
            .map(|m| ("qemu".to_owned(), (*m).to_owned()))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn binds_loopback_by_default() {
    assert_eq!(
        HttpServerConfig::default().bind_address,
        std::net::IpAddr::V4(Ipv4Addr::LOCALHOST)
    );
    let (server, _) = serve(config(None, &[])).await;
    assert_eq!(server.address().ip(), Ipv4Addr::LOCALHOST);
    assert_ne!(server.port(), 0);
    tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, server.port()))
        .await
        .expect("the guest's side of NAT (loopback) reaches it");
}

#[tokio::test]
async fn an_exhausted_port_range_is_a_clear_error() {
    let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binds");
    let port = taken.local_addr().expect("addr").port();
    let mut config = config(None, &[]);
    config.port_min = port;
    config.port_max = port;
    let reporter: Arc<dyn Reporter> = Arc::new(RecordingReporter::new());
    let err = HttpServer::start(config, reporter, "qemu".to_owned())
        .await
        .expect_err("the only port is taken");
    assert!(matches!(err, HttpError::NoFreePort { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "no free port for the HTTP server on 127.0.0.1 between {port} and {port} \
             (http_port_min, http_port_max)"
        )
    );
}

#[tokio::test]
async fn a_port_in_the_range_is_used() {
    let port = {
        let probe = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binds");
        probe.local_addr().expect("addr").port()
    };
    let mut config = config(None, &[]);
    config.port_min = port;
    config.port_max = port;
    let (server, _) = serve(config).await;
    assert_eq!(server.port(), port);
}

#[tokio::test]
async fn a_missing_directory_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("http");
    let reporter: Arc<dyn Reporter> = Arc::new(RecordingReporter::new());
    let err = HttpServer::start(config(Some(&missing), &[]), reporter, "qemu".into())
        .await
        .expect_err("no such directory");
    assert!(matches!(err, HttpError::Directory { .. }), "{err:?}");
}

#[tokio::test]
async fn shutdown_and_drop_release_the_port() {
    let (server, _) = serve(config(None, &[])).await;
    let address = server.address();
    server.shutdown().await;
    assert!(TcpStream::connect(address).await.is_err());
    std::net::TcpListener::bind(address).expect("the port is free again");

    let (server, _) = serve(config(None, &[])).await;
    let address = server.address();
    drop(server);
    // Dropping aborts the server task; it is gone once the runtime has run it.
    for _ in 0..50 {
        if TcpStream::connect(address).await.is_err() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("still listening on {address} after drop");
}

#[tokio::test]
async fn large_files_are_streamed_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("initrd.gz"), &data).expect("w");
    let (server, _) = serve(config(Some(dir.path()), &[])).await;
    let reply = request(server.address(), "GET", "/initrd.gz").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some("3000000"));
    assert_eq!(reply.header("content-type"), Some("application/gzip"));
    assert!(reply.body == data);
}
