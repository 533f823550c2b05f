//! AWS Signature Version 4 (the `Authorization` header every S3 and EC2
//! request carries), written from AWS's specification and checked against
//! its published test vectors: a few dozen lines instead of an SDK.

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::credentials::Credentials;
use crate::digest::hex;

/// The SHA-256 of an empty body, which every body-less request signs.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What is signed: the parts of the request the server sees.
#[derive(Debug, Clone)]
pub struct SignableRequest<'a> {
    pub method: &'a str,
    /// `host[:port]` as it is sent in the Host header.
    pub host: &'a str,
    /// The path, already percent-encoded as it goes on the wire.
    pub path: &'a str,
    /// Query parameters, not yet encoded.
    pub query: &'a [(String, String)],
    /// Extra headers to sign (lower-case names), besides host and date.
    pub headers: &'a [(String, String)],
    /// Hex SHA-256 of the body.
    pub payload_sha256: &'a str,
}

/// Where and when a request is signed.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
    /// `YYYYMMDD'T'HHMMSS'Z'`.
    pub amz_date: &'a str,
}

/// The headers to add to the request: `x-amz-date`, the session token
/// when there is one, and `authorization`.
pub fn sign(
    credentials: &Credentials,
    scope: Scope<'_>,
    request: &SignableRequest<'_>,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    headers.push(("host".into(), request.host.to_owned()));
    headers.push(("x-amz-date".into(), scope.amz_date.to_owned()));
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token".into(), token.expose().to_owned()));
    }
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        request.path,
        canonical_query(request.query),
        canonical_headers,
        signed_headers,
        request.payload_sha256
    );
    let date = &scope.amz_date[..8.min(scope.amz_date.len())];
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{credential_scope}\n{}",
        scope.amz_date,
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let secret = format!("AWS4{}", credentials.secret_access_key.expose());
    let k_date = hmac(secret.as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, scope.region.as_bytes());
    let k_service = hmac(&k_region, scope.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex(&hmac(&k_signing, string_to_sign.as_bytes()));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id
    );
    let mut out = vec![("x-amz-date".to_owned(), scope.amz_date.to_owned())];
    if let Some(token) = &credentials.session_token {
        out.push(("x-amz-security-token".into(), token.expose().to_owned()));
    }
    out.push(("authorization".into(), authorization));
    out
}

/// Query parameters sorted by encoded name then value, each encoded with
/// only the unreserved characters left as they are.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// RFC 3986 encoding as SigV4 wants it: every byte but `A-Za-z0-9-._~`
/// (and `/` in paths) as `%XX` with upper-case hex.
pub fn uri_encode(text: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char);
            }
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `x-amz-date` for a time.
pub fn amz_date(time: std::time::SystemTime) -> String {
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// algorithm), to avoid a date crate for one format.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length: this cannot fail.
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::aws::credentials::Secret;

    fn example_credentials() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        }
    }

    fn authorization(headers: &[(String, String)]) -> &str {
        &headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .expect("authorization header")
            .1
    }

    const SCOPE: Scope<'static> = Scope {
        region: "us-east-1",
        service: "service",
        amz_date: "20150830T123600Z",
    };

    /// AWS's SigV4 test suite, `get-vanilla`.
    #[test]
    fn get_vanilla() {
        let headers = sign(
            &example_credentials(),
            SCOPE,
            &SignableRequest {
                method: "GET",
                host: "example.amazonaws.com",
                path: "/",
                query: &[],
                headers: &[],
                payload_sha256: EMPTY_SHA256,
            },
        );
        assert_eq!(
            authorization(&headers),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    /// AWS's SigV4 test suite, `get-vanilla-query-order-key-case`: the
    /// query is signed sorted, whatever order it was given in.
    #[test]
    fn query_is_signed_in_sorted_order() {
        let query = [
            ("Param2".to_owned(), "value2".to_owned()),
            ("Param1".to_owned(), "value1".to_owned()),
        ];
        let headers = sign(
            &example_credentials(),
            SCOPE,
            &SignableRequest {
                method: "GET",
                host: "example.amazonaws.com",
                path: "/",
                query: &query,
                headers: &[],
                payload_sha256: EMPTY_SHA256,
            },
        );
        assert!(
            authorization(&headers).ends_with(
                "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
            ),
            "{}",
            authorization(&headers)
        );
    }

    /// The worked example of AWS's "Signature Version 4 signing process"
    /// page (IAM ListUsers).
    #[test]
    fn iam_list_users_example() {
        let query = [
            ("Action".to_owned(), "ListUsers".to_owned()),
            ("Version".to_owned(), "2010-05-08".to_owned()),
        ];
        let extra = [(
            "content-type".to_owned(),
            "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
        )];
        let headers = sign(
            &example_credentials(),
            Scope {
                region: "us-east-1",
                service: "iam",
                amz_date: "20150830T123600Z",
            },
            &SignableRequest {
                method: "GET",
                host: "iam.amazonaws.com",
                path: "/",
                query: &query,
                headers: &extra,
                payload_sha256: EMPTY_SHA256,
            },
        );
        assert!(
            authorization(&headers).ends_with(
                "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
            ),
            "{}",
            authorization(&headers)
        );
    }

    #[test]
    fn dates_are_formatted_in_utc() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160);
        assert_eq!(amz_date(t), "20150830T123600Z");
        assert_eq!(amz_date(std::time::UNIX_EPOCH), "19700101T000000Z");
    }

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(uri_encode("a b/c~", true), "a%20b%2Fc~");
        assert_eq!(uri_encode("a b/c", false), "a%20b/c");
    }
}
