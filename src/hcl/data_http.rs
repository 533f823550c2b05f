//! Packer's `http` data source: one request (GET unless `method` says
//! otherwise) while the template loads; a 2xx answer's body and headers
//! become `data.http.NAME.body` and `.request_headers` (Packer's name for
//! the response headers, kept for compatibility). Used to fetch a
//! checksum file whose line for the ISO a local then picks out.

use std::time::Duration;

use hcl::{Map, Value};

use super::functions::as_string;

/// Packer's list.
const METHODS: &[&str] = &["HEAD", "GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];

/// Packer sets no bound; a template load that hangs on a dead server
/// helps nobody, and a checksum file comes well within this.
const TIMEOUT: Duration = Duration::from_secs(60);

struct Request {
    url: String,
    method: reqwest::Method,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

fn request(attrs: &Map<String, Value>) -> Result<Request, String> {
    let url = attrs
        .get("url")
        .and_then(as_string)
        .filter(|u| !u.is_empty())
        .ok_or("url: a non-empty string is required")?;
    let method = match attrs.get("method") {
        None | Some(Value::Null) => "GET".to_owned(),
        Some(v) => as_string(v).ok_or("method: expected a string")?,
    };
    if !METHODS.contains(&method.as_str()) {
        return Err(format!(
            "method `{method}` is not supported: it must be one of {}",
            METHODS.join(", ")
        ));
    }
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let headers = match attrs.get("request_headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                as_string(v)
                    .map(|v| (k.clone(), v))
                    .ok_or_else(|| format!("request_headers.{k}: expected a string"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("request_headers: expected a map of strings".into()),
    };
    let body = match attrs.get("request_body") {
        None | Some(Value::Null) => None,
        Some(v) => Some(as_string(v).ok_or("request_body: expected a string")?),
    }
    .filter(|b| !b.is_empty());
    Ok(Request {
        url,
        method,
        headers,
        body,
    })
}

/// Makes the request and returns the data source's value.
pub fn fetch(attrs: &Map<String, Value>) -> Result<Value, String> {
    let req = request(attrs)?;
    // Loading runs outside kiln's runtime or inside it; a thread with its
    // own runtime works either way.
    let url = req.url.clone();
    let (headers, body) = std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the HTTP client: {e}"))?;
            rt.block_on(send(&req))
        })
        .join()
        .unwrap_or_else(|_| Err("the HTTP client failed".into()))
    })?;
    let mut m = Map::new();
    m.insert("url".to_owned(), Value::String(url));
    m.insert("body".to_owned(), Value::String(body));
    m.insert("request_headers".to_owned(), Value::Object(headers));
    Ok(Value::Object(m))
}

async fn send(req: &Request) -> Result<(Map<String, Value>, String), String> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| format!("cannot start the HTTP client: {e}"))?;
    let mut builder = client.request(req.method.clone(), &req.url);
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    if let Some(body) = &req.body {
        builder = builder.body(body.clone());
    }
    let url = &req.url;
    let resp = builder.send().await.map_err(|e| {
        format!(
            "{} {url}: {}",
            req.method,
            crate::error_chain::error_chain(&e, ": ")
        )
    })?;
    let status = resp.status();
    if !status.is_success() {
        // Packer's words, and the URL.
        return Err(format!(
            "HTTP request error. Response code: {} ({url})",
            status.as_u16()
        ));
    }
    let mut headers: Map<String, Value> = Map::new();
    for (name, value) in resp.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let key = canonical_header(name.as_str());
        // Repeated headers are joined with ", " (RFC 2616 4.2), as Packer does.
        match headers.get_mut(&key) {
            Some(Value::String(s)) => {
                s.push_str(", ");
                s.push_str(&value);
            }
            _ => {
                headers.insert(key, Value::String(value));
            }
        }
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("{url}: reading the body: {e}"))?;
    let body = String::from_utf8(bytes.to_vec())
        .map_err(|_| format!("{url}: the body is not UTF-8 text (HCL strings are text)"))?;
    Ok((headers, body))
}

/// Go's canonical header form (`content-type` → `Content-Type`), the keys
/// Packer's map has.
fn canonical_header(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_take_gos_canonical_form() {
        assert_eq!(canonical_header("content-type"), "Content-Type");
        assert_eq!(canonical_header("x-amz-meta-a"), "X-Amz-Meta-A");
    }

    #[test]
    fn a_method_outside_packers_list_is_refused() {
        let mut m = Map::new();
        m.insert("url".into(), Value::from("http://127.0.0.1/"));
        m.insert("method".into(), Value::from("TRACE"));
        let e = request(&m).err().expect("refused");
        assert!(e.contains("must be one of HEAD, GET"), "{e}");
    }
}
