//! HCL2 `data "http"` through the kiln binary, against an HTTP server the
//! test runs on loopback: the checksum file Packer templates fetch, the
//! request as sent, and a failed answer's error.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use crate::support::{run_in, transcript};

/// Serves `count` requests: `/SHA256SUMS` is a checksum file, any other
/// path is a 404. Each request's head (request line and headers) is sent
/// back to the test.
fn serve(count: usize) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let (status, body) = if head.starts_with("GET /SHA256SUMS ") {
                (
                    "200 OK",
                    format!(
                        "{}  other.iso\n{}  tiny.iso\n",
                        "1".repeat(64),
                        "ab".repeat(32)
                    ),
                )
            } else {
                ("404 Not Found", "no such file\n".to_owned())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nX-Mirror: a\r\nX-Mirror: b\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tx.send(head);
        }
    });
    (url, rx)
}

const TEMPLATE: &str = r#"
variable "mirror" {
  type = string
}

locals {
  iso      = "tiny.iso"
  checksum = regex("([0-9a-f]{64})  ${local.iso}", data.http.sums.body)[0]
}

data "http" "sums" {
  url             = "${var.mirror}/${var.path}"
  request_headers = { Accept = "text/plain" }
}

data "null" "seen" {
  input = "${local.checksum}-${data.http.sums.request_headers["X-Mirror"]}"
}

variable "path" {
  type    = string
  default = "SHA256SUMS"
}

source "qemu" "small" {
  iso_url          = "${var.mirror}/${local.iso}"
  iso_checksum     = "sha256:${local.checksum}"
  ssh_username     = "root"
  shutdown_command = "poweroff"
  # Not a size: the error shows what the data sources gave.
  disk_size = data.null.seen.output
}

build {
  sources = ["source.qemu.small"]
}
"#;

#[test]
fn an_http_data_source_fetches_a_checksum_file_for_a_local() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("t.pkr.hcl"), TEMPLATE).expect("template");
    let (url, requests) = serve(1);
    let mirror = format!("mirror={url}");
    let out = run_in(
        dir.path(),
        &[
            "validate",
            "-evaluate-datasources",
            "-var",
            &mirror,
            "t.pkr.hcl",
        ],
    );
    let text = transcript(&out, dir.path());
    let head = requests
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("kiln made the request");
    assert!(head.starts_with("GET /SHA256SUMS HTTP/1.1\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("accept: text/plain\r\n"),
        "{head}"
    );
    // The checksum the local picked out, and the repeated header joined.
    let expected = format!("`{}-a, b` is not a size", "ab".repeat(32));
    assert!(text.contains(&expected), "{text}");
    assert_eq!(out.status.code(), Some(1), "{text}");
}

#[test]
fn an_http_data_source_that_gets_an_error_status_says_so_with_its_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("t.pkr.hcl"), TEMPLATE).expect("template");
    let (url, _requests) = serve(1);
    let mirror = format!("mirror={url}");
    let out = run_in(
        dir.path(),
        &[
            "validate",
            "-evaluate-datasources",
            "-var",
            &mirror,
            "-var",
            "path=gone",
            "t.pkr.hcl",
        ],
    );
    let text = transcript(&out, dir.path());
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "error: data.http.sums: HTTP request error. Response code: 404 ({url}/gone)"
        )) && text.contains("t.pkr.hcl:11:1"),
        "{text}"
    );
    // What depends on it is not evaluated into errors of its own.
    assert!(!text.contains("local.checksum"), "{text}");
}

#[test]
fn plain_validate_fetches_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("t.pkr.hcl"), TEMPLATE).expect("template");
    // A port nothing listens on: a request would fail.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("binds")
        .local_addr()
        .expect("addr")
        .port();
    let mirror = format!("mirror=http://127.0.0.1:{port}");
    let out = run_in(dir.path(), &["validate", "-var", &mirror, "t.pkr.hcl"]);
    let text = transcript(&out, dir.path());
    // The body is an unknown string, as in Packer: the local built from it
    // is unknown too, and the build is still checked (its disk_size, made
    // from a data source, passes: Packer skips what it does not know).
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("Template validated successfully (1 build).")
            && !text.contains("warning")
            && !text.contains("error"),
        "{text}"
    );
}
