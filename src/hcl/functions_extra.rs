//! Packer functions that needed more than the others: `legacy_strftime`
//! (C-style layouts, as the go-strftime package Packer uses reads them)
//! `bcrypt` (Go's `x/crypto/bcrypt` output, `$2a$10$…`, over the
//! blowfish crate russh already builds) and `rsadecrypt` (PKCS #1 v1.5,
//! over the rsa crate russh already builds).

use std::time::SystemTime;

use hcl::Value;

use super::{R, count, s, string};

/// `%X` → the Go layout element that prints it (go-strftime's table).
fn go_layout(directive: char) -> Option<&'static str> {
    Some(match directive {
        'B' => "January",
        'b' => "Jan",
        'm' => "01",
        'A' => "Monday",
        'a' => "Mon",
        'd' => "02",
        'H' => "15",
        'I' => "03",
        'M' => "04",
        'S' => "05",
        'Y' => "2006",
        'y' => "06",
        'p' => "PM",
        'Z' => "MST",
        'z' => "-0700",
        _ => return None,
    })
}

/// `t` formatted with a strftime layout, in UTC. Directives go-strftime
/// does not know are written as they are, as it does.
pub(super) fn strftime(t: SystemTime, layout: &str) -> String {
    let mut out = String::new();
    let mut chars = layout.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(d) = chars.next() else {
            out.push('%');
            break;
        };
        let (secs, nanos) = crate::template::interp::go_time::unix_parts(t);
        match d {
            '%' => out.push('%'),
            'f' => out.push_str(&format!("{:06}", nanos / 1000)),
            'L' => out.push_str(&format!("{:03}", nanos / 1_000_000)),
            'j' => {
                let days = secs.div_euclid(86_400);
                let jan1 = days_to_jan1(days);
                out.push_str(&format!("{:03}", days - jan1 + 1));
            }
            d => match go_layout(d) {
                Some(l) => out.push_str(&crate::template::interp::go_time::format(t, l)),
                None => {
                    out.push('%');
                    out.push(d);
                }
            },
        }
    }
    out
}

/// The day number (since 1970-01-01) of January 1st of `days`' year.
fn days_to_jan1(days: i64) -> i64 {
    let year = crate::template::interp::go_time::format(
        SystemTime::UNIX_EPOCH
            + std::time::Duration::from_secs(days.max(0).unsigned_abs() * 86_400),
        "2006",
    );
    let year: i64 = year.parse().unwrap_or(1970);
    let y = year - 1;
    // Days from 1970-01-01 to year-01-01, proleptic Gregorian.
    365 * (year - 1970) + (y / 4 - y / 100 + y / 400) - (1969 / 4 - 1969 / 100 + 1969 / 400)
}

pub(super) fn legacy_strftime(a: &[Value]) -> R {
    count(a, 1, 1)?;
    s(strftime(*super::START, &string(a, 0)?))
}

/// Go's bcrypt refuses longer passwords (they would be cut silently).
const BCRYPT_MAX_PASSWORD: usize = 72;
const BCRYPT_DEFAULT_COST: u32 = 10;
/// bcrypt's own base64 alphabet.
const BCRYPT_ALPHABET: &[u8; 64] =
    b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub(super) fn bcrypt(a: &[Value]) -> R {
    count(a, 1, 2)?;
    let password = string(a, 0)?;
    let cost = match a.get(1) {
        None => BCRYPT_DEFAULT_COST,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(c @ 4..=31) => c as u32,
            _ => {
                return Err(format!(
                    "Invalid value for \"cost\" parameter: {n} is not between 4 and 31"
                ));
            }
        },
        Some(_) => return Err("Invalid value for \"cost\" parameter: a number is required".into()),
    };
    if password.len() > BCRYPT_MAX_PASSWORD {
        return Err(format!(
            "error occured generating password: bcrypt: password length exceeds {BCRYPT_MAX_PASSWORD} bytes"
        ));
    }
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| "bcrypt: no random salt: the system's random source failed".to_owned())?;
    s(bcrypt_hash(password.as_bytes(), cost, &salt))
}

/// `$2a$COST$` + salt (22 chars) + hash (31 chars), as Go writes it.
fn bcrypt_hash(password: &[u8], cost: u32, salt: &[u8; 16]) -> String {
    // The key is the password with its terminating NUL, as in C.
    let mut key = password.to_vec();
    key.push(0);
    let mut state = blowfish::Blowfish::bc_init_state();
    state.salted_expand_key(salt, &key);
    for _ in 0..1u64 << cost {
        state.bc_expand_key(&key);
        state.bc_expand_key(salt);
    }
    // "OrpheanBeholderScryDoubt", encrypted 64 times.
    let mut ctext: [u32; 6] = [
        0x4f72_7068,
        0x6561_6e42,
        0x6568_6f6c,
        0x6465_7253,
        0x6372_7944,
        0x6f75_6274,
    ];
    let mut out = [0u8; 24];
    for i in (0..6).step_by(2) {
        for _ in 0..64 {
            let [l, r] = state.bc_encrypt([ctext[i], ctext[i + 1]]);
            ctext[i] = l;
            ctext[i + 1] = r;
        }
        out[i * 4..i * 4 + 4].copy_from_slice(&ctext[i].to_be_bytes());
        out[i * 4 + 4..i * 4 + 8].copy_from_slice(&ctext[i + 1].to_be_bytes());
    }
    format!(
        "$2a${cost:02}${}{}",
        bcrypt_base64(salt),
        bcrypt_base64(&out[..23])
    )
}

fn bcrypt_base64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(BCRYPT_ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// `rsadecrypt(ciphertext_base64, private_key_pem)`: PKCS #1 v1.5, the
/// key as PKCS #1 (`RSA PRIVATE KEY`) or PKCS #8 (`PRIVATE KEY`) PEM.
pub(super) fn rsadecrypt(a: &[Value]) -> R {
    use base64::Engine;
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    count(a, 2, 2)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let ciphertext = b64.decode(string(a, 0)?.trim()).map_err(|_| {
        "failed to decode input \"ciphertext\": cipher text must be base64-encoded".to_owned()
    })?;
    let pem = string(a, 1)?;
    let der = pem_body(&pem).ok_or_else(|| {
        "invalid private key: no PEM block (-----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----)".to_owned()
    })?;
    let key = rsa::RsaPrivateKey::from_pkcs1_der(&der)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_der(&der))
        .map_err(|_| "invalid private key: not an RSA key in PKCS #1 or PKCS #8 form".to_owned())?;
    let plain = key
        .decrypt(rsa::Pkcs1v15Encrypt, &ciphertext)
        .map_err(|e| format!("failed to decrypt: {e}"))?;
    String::from_utf8(plain)
        .map(Value::String)
        .map_err(|_| "the decrypted text is not valid UTF-8".into())
}

/// The bytes of the first PEM block in `pem`.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let start = pem.find("-----BEGIN ")?;
    let rest = &pem[start..];
    let body_start = rest.find('\n')? + 1;
    let end = rest.find("-----END ")?;
    let body: String = rest
        .get(body_start..end)?
        .lines()
        .filter(|l| !l.contains(':')) // headers of encrypted keys
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenBSD's test vector (also in Go's and Python's suites).
    #[test]
    fn bcrypt_matches_the_reference_vector() {
        // $2a$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.
        // is "" with salt "DCq7YPn5Rq63x1Lad4cll.".
        let salt = decode_salt("DCq7YPn5Rq63x1Lad4cll.");
        assert_eq!(
            bcrypt_hash(b"", 6, &salt),
            "$2a$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s."
        );
        let salt = decode_salt("CCCCCCCCCCCCCCCCCCCCC.");
        assert_eq!(
            bcrypt_hash(b"U*U", 5, &salt),
            "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
        );
    }

    fn decode_salt(s: &str) -> [u8; 16] {
        let mut bits = 0u32;
        let mut n = 0;
        let mut out = Vec::new();
        for c in s.bytes() {
            let v = BCRYPT_ALPHABET
                .iter()
                .position(|&a| a == c)
                .expect("alphabet") as u32;
            bits = (bits << 6) | v;
            n += 6;
            if n >= 8 {
                n -= 8;
                out.push((bits >> n) as u8);
                bits &= (1 << n) - 1;
            }
        }
        out.truncate(16);
        out.try_into().expect("16 bytes")
    }

    /// A hash kiln generates (random salt) is accepted by the system's
    /// crypt(3) (libxcrypt, through Python's `crypt` module): an
    /// implementation that is not ours.
    #[test]
    fn a_generated_hash_verifies_with_the_system_crypt() {
        let Value::String(h) =
            bcrypt(&[Value::from("kiln-tiny pass\u{e9}"), Value::from(5)]).expect("hash")
        else {
            panic!("not a string");
        };
        let check = |password: &str| {
            let out = std::process::Command::new("python3")
                .args([
                    "-W",
                    "ignore",
                    "-c",
                    "import crypt, sys; print(crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2])",
                    password,
                    &h,
                ])
                .output()
                .expect("python3 runs");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        assert_eq!(check("kiln-tiny pass\u{e9}"), "True", "{h}");
        assert_eq!(check("kiln-tiny pass"), "False", "{h}");
    }

    #[test]
    fn bcrypt_writes_go_s_format() {
        let Value::String(h) = bcrypt(&[Value::from("secret")]).expect("hash") else {
            panic!("not a string");
        };
        assert!(h.starts_with("$2a$10$") && h.len() == 60, "{h}");
        assert!(bcrypt(&[Value::from("x".repeat(73))]).is_err());
        assert!(bcrypt(&[Value::from("x"), Value::from(3)]).is_err());
    }

    /// A message OpenSSL encrypts (an implementation that is not ours)
    /// comes back, with the key in both PEM forms.
    #[test]
    fn rsadecrypt_reads_what_openssl_encrypted() {
        use base64::Engine;
        let dir = tempfile::tempdir().expect("tempdir");
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        run(&["genrsa", "-traditional", "-out", "pkcs1.pem", "2048"]);
        run(&[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "pkcs1.pem",
            "-out",
            "pkcs8.pem",
        ]);
        std::fs::write(dir.path().join("msg"), "s3cret é").expect("write");
        run(&[
            "pkeyutl",
            "-encrypt",
            "-inkey",
            "pkcs1.pem",
            "-in",
            "msg",
            "-out",
            "msg.enc",
        ]);
        let ct = base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(dir.path().join("msg.enc")).expect("read"));
        for key in ["pkcs1.pem", "pkcs8.pem"] {
            let pem = std::fs::read_to_string(dir.path().join(key)).expect("key");
            assert_eq!(
                rsadecrypt(&[Value::from(ct.clone()), Value::from(pem)]),
                Ok(Value::from("s3cret é")),
                "{key}"
            );
        }
        let pem = std::fs::read_to_string(dir.path().join("pkcs1.pem")).expect("key");
        let err =
            rsadecrypt(&[Value::from("not base64!"), Value::from(pem.clone())]).expect_err("bad");
        assert!(err.contains("must be base64-encoded"), "{err}");
        let err = rsadecrypt(&[Value::from(ct.clone()), Value::from("nope")]).expect_err("bad");
        assert!(err.contains("invalid private key"), "{err}");
        let other = base64::engine::general_purpose::STANDARD.encode([1u8; 256]);
        let err = rsadecrypt(&[Value::from(other), Value::from(pem)]).expect_err("bad");
        assert!(err.starts_with("failed to decrypt"), "{err}");
    }

    #[test]
    fn strftime_reads_c_layouts() {
        // 2021-03-04T05:06:07.089Z, a Thursday, day 63.
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_614_834_367_089);
        assert_eq!(
            strftime(t, "%Y-%m-%d %H:%M:%S %a %b %j %L %y %p %% %Q"),
            "2021-03-04 05:06:07 Thu Mar 063 089 21 AM % %Q"
        );
    }
}
