//! One request → one response: which path is asked for, whether it may be
//! served, from `http_content` or from the directory, and the log line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::body::ServeBody;
use crate::ui::Reporter;

pub(super) struct Site {
    /// The canonical directory, so a resolved path can be compared to it.
    root: Option<PathBuf>,
    /// `http_content` keyed by normalised path (`/a/b.cfg`).
    content: BTreeMap<String, Bytes>,
    reporter: Arc<dyn Reporter>,
    build: String,
}

/// What a request resolved to, before it is turned into a response.
enum Found {
    Content(Bytes, String),
    File(tokio::fs::File, u64, String),
    Status(StatusCode),
}

impl Site {
    pub(super) fn new(
        root: Option<PathBuf>,
        content: &BTreeMap<String, String>,
        reporter: Arc<dyn Reporter>,
        build: String,
    ) -> Self {
        let content = content
            .iter()
            .filter_map(|(path, body)| {
                let segments = segments(path)?;
                Some((joined(&segments), Bytes::from(body.clone())))
            })
            .collect();
        Self {
            root,
            content,
            reporter,
            build,
        }
    }

    pub(super) async fn respond<B>(&self, request: &Request<B>) -> Response<ServeBody> {
        let method = request.method();
        let raw_path = request.uri().path();
        let head = method == Method::HEAD;
        let found = if method == Method::GET || head {
            self.find(raw_path).await
        } else {
            Found::Status(StatusCode::METHOD_NOT_ALLOWED)
        };
        let (status, length, content_type, body) = match found {
            Found::Content(bytes, kind) => {
                let len = bytes.len() as u64;
                (StatusCode::OK, len, kind, ServeBody::Full(bytes))
            }
            Found::File(file, len, kind) => (StatusCode::OK, len, kind, ServeBody::file(file, len)),
            Found::Status(status) => {
                let text = format!("{}\n", status.canonical_reason().unwrap_or("error"));
                let len = text.len() as u64;
                let kind = "text/plain; charset=utf-8".to_owned();
                (status, len, kind, ServeBody::Full(Bytes::from(text)))
            }
        };
        let sent = if head { 0 } else { length };
        self.reporter.info(
            &self.build,
            &format!(
                "HTTP {method} {raw_path} {} ({sent} bytes)",
                status.as_u16()
            ),
        );
        let mut response = Response::new(if head { ServeBody::Empty } else { body });
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        if let Ok(value) = HeaderValue::from_str(&content_type) {
            headers.insert(CONTENT_TYPE, value);
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        response
    }

    async fn find(&self, raw_path: &str) -> Found {
        let Some(segments) = decoded_segments(raw_path) else {
            return Found::Status(StatusCode::BAD_REQUEST);
        };
        let path = joined(&segments);
        if let Some(body) = self.content.get(&path) {
            return Found::Content(body.clone(), content_type(&path).to_owned());
        }
        match &self.root {
            Some(root) => from_directory(root, &segments)
                .await
                .unwrap_or(Found::Status(StatusCode::NOT_FOUND)),
            None => Found::Status(StatusCode::NOT_FOUND),
        }
    }
}

/// The file under `root` for these segments, if it exists and, with every
/// symlink resolved, is still inside `root`. A directory is served only
/// through its `index.html`.
async fn from_directory(root: &Path, segments: &[String]) -> Option<Found> {
    let mut candidate = root.to_path_buf();
    candidate.extend(segments);
    let mut resolved = inside(root, &candidate).await?;
    let mut meta = tokio::fs::metadata(&resolved).await.ok()?;
    // The type follows the name asked for, as a client expects, not the
    // name a symlink points at.
    let mut name = joined(segments);
    if meta.is_dir() {
        resolved = inside(root, &resolved.join("index.html")).await?;
        meta = tokio::fs::metadata(&resolved).await.ok()?;
        name = "index.html".to_owned();
    }
    if !meta.is_file() {
        return None;
    }
    let file = tokio::fs::File::open(&resolved).await.ok()?;
    // The length of what was opened, not of what the name pointed at before.
    let len = file.metadata().await.ok()?.len();
    Some(Found::File(file, len, content_type(&name).to_owned()))
}

/// `path` with symlinks resolved, when that stays under `root`.
async fn inside(root: &Path, path: &Path) -> Option<PathBuf> {
    let resolved = tokio::fs::canonicalize(path).await.ok()?;
    resolved.starts_with(root).then_some(resolved)
}

/// The request path percent-decoded and split, or None when it must be
/// refused: `.`/`..` segments (also when encoded), NUL, backslashes, or
/// text that is not UTF-8.
fn decoded_segments(raw_path: &str) -> Option<Vec<String>> {
    if !raw_path.starts_with('/') {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(raw_path)
        .decode_utf8()
        .ok()?;
    segments(&decoded)
}

/// Splits a decoded path on `/`, dropping empty segments.
fn segments(path: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." || segment.contains(['\0', '\\']) {
            return None;
        }
        out.push(segment.to_owned());
    }
    Some(out)
}

fn joined(segments: &[String]) -> String {
    format!("/{}", segments.join("/"))
}

/// The Content-Type kiln sends for a path, by its extension. Answer files
/// (`.cfg`, `.preseed`, `.ks`, `.seed`) and extension-less files such as
/// cloud-init's `user-data` are plain text.
pub fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some((_, extension)) = name.rsplit_once('.') else {
        return "text/plain; charset=utf-8";
    };
    match extension.to_ascii_lowercase().as_str() {
        "cfg" | "preseed" | "ks" | "seed" | "txt" | "conf" | "sh" | "ps1" | "bat" | "cmd"
        | "ini" | "pub" | "log" => "text/plain; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "gz" | "tgz" => "application/gzip",
        "xz" => "application/x-xz",
        "zip" => "application/zip",
        "tar" => "application/x-tar",
        "iso" => "application/x-iso9660-image",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_traversal_in_every_spelling() {
        for path in [
            "/../etc/passwd",
            "/a/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E/etc/passwd",
            "/a/%2e%2e/%2e%2e/x",
            "/./x",
            "/%2e/x",
            "/a%2f..%2f..%2fetc",
            "/a\\..\\b",
            "/a%5c..%5cb",
            "/nul%00.cfg",
            "/%ff",
            "relative",
        ] {
            assert_eq!(decoded_segments(path), None, "{path}");
        }
    }

    #[test]
    fn accepts_ordinary_paths() {
        let cases: &[(&str, &[&str])] = &[
            ("/", &[]),
            ("/preseed.cfg", &["preseed.cfg"]),
            ("//a///b.ks", &["a", "b.ks"]),
            ("/with%20space.cfg", &["with space.cfg"]),
            ("/..hidden/x..y", &["..hidden", "x..y"]),
        ];
        for (path, want) in cases {
            assert_eq!(
                decoded_segments(path),
                Some(want.iter().map(|s| (*s).to_owned()).collect()),
                "{path}"
            );
        }
    }

    #[test]
    fn content_types_by_extension() {
        let cases = [
            ("/preseed.cfg", "text/plain; charset=utf-8"),
            ("/x.preseed", "text/plain; charset=utf-8"),
            ("/ks.KS", "text/plain; charset=utf-8"),
            ("/a.seed", "text/plain; charset=utf-8"),
            ("/user-data", "text/plain; charset=utf-8"),
            ("/index.html", "text/html; charset=utf-8"),
            ("/autounattend.xml", "application/xml"),
            ("/x.json", "application/json"),
            ("/initrd.gz", "application/gzip"),
            ("/vmlinuz.bin", "application/octet-stream"),
            ("/dir.d/user-data", "text/plain; charset=utf-8"),
        ];
        for (path, want) in cases {
            assert_eq!(content_type(path), want, "{path}");
        }
    }
}
