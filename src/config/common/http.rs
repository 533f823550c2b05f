//! The HTTP server that serves answer files to the installer:
//! `http_directory`, `http_content`, its port range and bind address.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::decode::{Deferred, Fields};

/// Template fields `http_content` can use: the key pair is made before the
/// server starts (its address is not known yet, so no `.HTTPIP`).
pub const HTTP_CONTENT_FIELDS: &[&str] = &["SSHPublicKey", "SSHPrivateKey"];

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub directory: Option<PathBuf>,
    /// Rendered when the server starts, with [`HTTP_CONTENT_FIELDS`].
    pub content: BTreeMap<String, Deferred>,
    pub port_min: u16,
    pub port_max: u16,
    /// kiln binds loopback by default: guests reach it at 10.0.2.2 through
    /// user networking / NAT, and answer files with passwords stay off the LAN.
    pub bind_address: String,
}

impl HttpConfig {
    pub fn decode(f: &mut Fields<'_>) -> Self {
        let directory = f
            .string("http_directory")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let content = f
            .deferred_map("http_content", HTTP_CONTENT_FIELDS)
            .unwrap_or_default();
        let port_min = f.u64_in("http_port_min", 1, 65535).unwrap_or(8000) as u16;
        let port_max = f.u64_in("http_port_max", 1, 65535).unwrap_or(9000) as u16;
        let bind_address = f
            .string("http_bind_address")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "127.0.0.1".into());
        if port_min > port_max {
            let span = f.span_of("http_port_min").unwrap_or_default();
            f.error_at(
                span,
                format!("http_port_min ({port_min}) is greater than http_port_max ({port_max})"),
            );
        }
        if directory.is_some() && !content.is_empty() {
            let span = f.span_of("http_content").unwrap_or_default();
            f.error_at(span, "set either http_directory or http_content, not both");
        }
        // The server refuses such paths, so the guest would only get a 404.
        for key in content.keys() {
            let unservable = key
                .split('/')
                .any(|s| s == "." || s == ".." || s.contains(['\0', '\\']));
            if unservable {
                let span = f.span_of("http_content").unwrap_or_default();
                f.error_at(
                    span,
                    format!(
                        "http_content: {key:?} cannot be served (`.`, `..` and `\\` are refused); name it like a URL path, e.g. \"/preseed.cfg\""
                    ),
                );
            }
        }
        if bind_address.parse::<std::net::IpAddr>().is_err() {
            let span = f.span_of("http_bind_address").unwrap_or_default();
            f.error_at(
                span,
                format!("http_bind_address: `{bind_address}` is not an IP address"),
            );
        }
        Self {
            directory,
            content,
            port_min,
            port_max,
            bind_address,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::qemu_with;

    #[test]
    fn the_server_binds_loopback_on_packers_port_range() {
        let (q, diags) = qemu_with("");
        let http = q.expect("decodes").http;
        assert_eq!(http.bind_address, "127.0.0.1", "{diags}");
        assert_eq!((http.port_min, http.port_max), (8000, 9000));
        assert!(http.directory.is_none() && http.content.is_empty());
    }

    #[test]
    fn http_content_is_kept_per_path() {
        let (q, diags) = qemu_with(r#""http_content": {"/preseed.cfg": "d-i x"}"#);
        let http = q.expect("decodes").http;
        assert_eq!(
            http.content.keys().collect::<Vec<_>>(),
            ["/preseed.cfg"],
            "{diags}"
        );
    }
}
