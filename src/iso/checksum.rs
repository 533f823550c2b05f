//! Checksums: the `iso_checksum` syntax, digests, checksum-file lines and
//! the incremental hashers. Everything here is pure (no I/O) so template
//! validation can call [`ChecksumSpec::parse`] and tests can cover every form.

use std::fmt;

/// A hash algorithm Packer templates may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlgo {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl HashAlgo {
    /// Every algorithm, in the order the cache lists directories.
    pub const ALL: [HashAlgo; 4] = [
        HashAlgo::Md5,
        HashAlgo::Sha1,
        HashAlgo::Sha256,
        HashAlgo::Sha512,
    ];

    /// The lowercase name used in `iso_checksum` and as the cache directory.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "md5",
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha512 => "sha512",
        }
    }

    /// Number of hex digits in a digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            HashAlgo::Md5 => 32,
            HashAlgo::Sha1 => 40,
            HashAlgo::Sha256 => 64,
            HashAlgo::Sha512 => 128,
        }
    }

    /// Parses an algorithm name, case-insensitively (`SHA256` in BSD lines).
    pub fn from_name(name: &str) -> Option<HashAlgo> {
        HashAlgo::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// The algorithm whose digests have `len` hex digits.
    pub fn from_hex_len(len: usize) -> Option<HashAlgo> {
        HashAlgo::ALL.into_iter().find(|a| a.hex_len() == len)
    }

    /// A fresh incremental hasher.
    pub fn hasher(self) -> Hasher {
        Hasher {
            algo: self,
            inner: crate::digest::Hasher::new(self.algorithm()),
        }
    }

    /// The same algorithm in kiln's digest module.
    fn algorithm(self) -> crate::digest::Algorithm {
        use crate::digest::Algorithm;
        match self {
            HashAlgo::Md5 => Algorithm::Md5,
            HashAlgo::Sha1 => Algorithm::Sha1,
            HashAlgo::Sha256 => Algorithm::Sha256,
            HashAlgo::Sha512 => Algorithm::Sha512,
        }
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A digest value with its algorithm; displays as `sha256:<lowercase hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    algo: HashAlgo,
    hex: String,
}

impl Digest {
    /// Builds a digest from hex, checking length and digits.
    pub fn from_hex(algo: HashAlgo, hex: &str) -> Result<Digest, ChecksumSpecError> {
        if let Some(bad) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(ChecksumSpecError::NotHex {
                value: hex.to_owned(),
                bad,
            });
        }
        if hex.len() != algo.hex_len() {
            return Err(ChecksumSpecError::WrongLength {
                value: format!("{algo}:{hex}"),
                digits: hex.len(),
                algo,
            });
        }
        Ok(Digest {
            algo,
            hex: hex.to_ascii_lowercase(),
        })
    }

    fn from_bytes(algo: HashAlgo, bytes: &[u8]) -> Digest {
        Digest {
            algo,
            hex: crate::digest::hex(bytes),
        }
    }

    pub fn algo(&self) -> HashAlgo {
        self.algo
    }

    /// Lowercase hex digits.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algo, self.hex)
    }
}

/// An incremental hasher over one of the `iso_checksum` algorithms,
/// finishing in a [`Digest`].
#[derive(Clone)]
pub struct Hasher {
    algo: HashAlgo,
    inner: crate::digest::Hasher,
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    pub fn algo(&self) -> HashAlgo {
        self.algo
    }

    pub fn finalize(self) -> Digest {
        Digest::from_bytes(self.algo, &self.inner.finalize())
    }
}

/// What `iso_checksum` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChecksumSpec {
    /// A known digest (`sha256:…`, or bare hex whose length names the type).
    Digest(Digest),
    /// `file:LOCATION`: a checksum file (URL, `file://` URL or path) whose
    /// line for the ISO's file name holds the digest.
    File { location: String },
    /// `none`: no verification at all (allowed, with a loud warning).
    None,
}

/// Why an `iso_checksum` value is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumSpecError {
    #[error("iso_checksum is empty; give `sha256:<hex>`, `file:<url>` or `none`")]
    Empty,
    #[error(
        "iso_checksum: unknown checksum type `{algo}` in `{value}`; use md5, sha1, sha256, sha512, file or none"
    )]
    UnknownAlgorithm { algo: String, value: String },
    #[error("iso_checksum: `{value}` is not hexadecimal (found `{bad}`)")]
    NotHex { value: String, bad: char },
    #[error(
        "iso_checksum: `{value}` has {digits} hex digits, a {algo} digest has {}",
        algo.hex_len()
    )]
    WrongLength {
        value: String,
        digits: usize,
        algo: HashAlgo,
    },
    #[error(
        "iso_checksum: `{value}` has {digits} hex digits, which is no known digest length \
         (md5 32, sha1 40, sha256 64, sha512 128); prefix the type, e.g. `sha256:`"
    )]
    UnknownLength { value: String, digits: usize },
    #[error("iso_checksum: `file:` needs a URL or path after it")]
    EmptyFileLocation,
}

impl ChecksumSpec {
    /// Parses an `iso_checksum` value. Pure: no file or network access.
    pub fn parse(value: &str) -> Result<ChecksumSpec, ChecksumSpecError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(ChecksumSpecError::Empty);
        }
        if value.eq_ignore_ascii_case("none") {
            return Ok(ChecksumSpec::None);
        }
        let Some((kind, rest)) = value.split_once(':') else {
            return parse_bare_hex(value).map(ChecksumSpec::Digest);
        };
        if kind.eq_ignore_ascii_case("file") {
            let location = rest.trim();
            if location.is_empty() {
                return Err(ChecksumSpecError::EmptyFileLocation);
            }
            return Ok(ChecksumSpec::File {
                location: location.to_owned(),
            });
        }
        let algo =
            HashAlgo::from_name(kind).ok_or_else(|| ChecksumSpecError::UnknownAlgorithm {
                algo: kind.to_owned(),
                value: value.to_owned(),
            })?;
        Digest::from_hex(algo, rest.trim())
            .map_err(|e| match e {
                // Report the value as the user wrote it.
                ChecksumSpecError::WrongLength { digits, algo, .. } => {
                    ChecksumSpecError::WrongLength {
                        value: value.to_owned(),
                        digits,
                        algo,
                    }
                }
                other => other,
            })
            .map(ChecksumSpec::Digest)
    }
}

impl fmt::Display for ChecksumSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChecksumSpec::Digest(d) => d.fmt(f),
            ChecksumSpec::File { location } => write!(f, "file:{location}"),
            ChecksumSpec::None => f.write_str("none"),
        }
    }
}

impl std::str::FromStr for ChecksumSpec {
    type Err = ChecksumSpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChecksumSpec::parse(s)
    }
}

fn parse_bare_hex(value: &str) -> Result<Digest, ChecksumSpecError> {
    if let Some(bad) = value.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(ChecksumSpecError::NotHex {
            value: value.to_owned(),
            bad,
        });
    }
    let algo = HashAlgo::from_hex_len(value.len()).ok_or(ChecksumSpecError::UnknownLength {
        value: value.to_owned(),
        digits: value.len(),
    })?;
    Digest::from_hex(algo, value)
}

/// One usable line of a checksum file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumLine {
    /// The file name as written in the line (may include a directory).
    pub name: String,
    pub digest: Digest,
}

/// Parses one line in GNU coreutils form (`HEX  name`, `HEX *name`) or BSD
/// form (`SHA256 (name) = HEX`). Comments, blank and unreadable lines give
/// `None`: checksum files often carry signatures and headers.
pub fn parse_checksum_line(line: &str) -> Option<ChecksumLine> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    // BSD: `ALGO (name) = HEX`
    if let Some((head, hex)) = line.rsplit_once(") = ") {
        let (algo, name) = head.split_once(" (")?;
        let algo = HashAlgo::from_name(algo.trim().trim_end_matches('-'))
            .or_else(|| HashAlgo::from_name(&algo.trim().replace('-', "")))?;
        let digest = Digest::from_hex(algo, hex.trim()).ok()?;
        return Some(ChecksumLine {
            name: name.to_owned(),
            digest,
        });
    }
    // GNU: `HEX  name` (text mode) or `HEX *name` (binary mode).
    let (hex, rest) = line.split_once(char::is_whitespace)?;
    let name = rest.trim_start();
    let name = name.strip_prefix('*').unwrap_or(name);
    if name.is_empty() {
        return None;
    }
    let algo = HashAlgo::from_hex_len(hex.len())?;
    let digest = Digest::from_hex(algo, hex).ok()?;
    Some(ChecksumLine {
        name: name.to_owned(),
        digest,
    })
}

/// Finds the digest for `file_name` in a checksum file's text. A line
/// matches when its name, or the last segment of its name (`./x.iso`,
/// `dir/x.iso`), equals `file_name`.
pub fn find_in_checksum_file(text: &str, file_name: &str) -> Option<Digest> {
    text.lines().filter_map(parse_checksum_line).find_map(|l| {
        let base = l.name.rsplit('/').next().unwrap_or(&l.name);
        (l.name == file_name || base == file_name).then_some(l.digest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256_EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_prefixed_digests() {
        let s = ChecksumSpec::parse(&format!("sha256:{SHA256_EMPTY}")).expect("valid");
        assert_eq!(s.to_string(), format!("sha256:{SHA256_EMPTY}"));
        let s = ChecksumSpec::parse("MD5:D41D8CD98F00B204E9800998ECF8427E").expect("valid");
        assert_eq!(s.to_string(), "md5:d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn bare_hex_type_comes_from_length() {
        for (hex, algo) in [
            ("d41d8cd98f00b204e9800998ecf8427e", HashAlgo::Md5),
            ("da39a3ee5e6b4b0d3255bfef95601890afd80709", HashAlgo::Sha1),
            (SHA256_EMPTY, HashAlgo::Sha256),
        ] {
            match ChecksumSpec::parse(hex) {
                Ok(ChecksumSpec::Digest(d)) => assert_eq!(d.algo(), algo),
                other => panic!("{hex}: {other:?}"),
            }
        }
        let long = "a".repeat(128);
        assert!(
            matches!(ChecksumSpec::parse(&long), Ok(ChecksumSpec::Digest(d)) if d.algo() == HashAlgo::Sha512)
        );
    }

    #[test]
    fn errors_read_well() {
        let e = ChecksumSpec::parse("sha256:abc").expect_err("short");
        assert_eq!(
            e.to_string(),
            "iso_checksum: `sha256:abc` has 3 hex digits, a sha256 digest has 64"
        );
        let e = ChecksumSpec::parse("sha3:abc").expect_err("algo");
        assert!(
            e.to_string().contains("unknown checksum type `sha3`"),
            "{e}"
        );
        let e = ChecksumSpec::parse("xyz").expect_err("hex");
        assert!(e.to_string().contains("not hexadecimal"), "{e}");
        let e = ChecksumSpec::parse("abcd").expect_err("len");
        assert!(e.to_string().contains("4 hex digits"), "{e}");
        assert_eq!(ChecksumSpec::parse(""), Err(ChecksumSpecError::Empty));
        assert_eq!(
            ChecksumSpec::parse("file:"),
            Err(ChecksumSpecError::EmptyFileLocation)
        );
    }

    #[test]
    fn parses_none_and_file() {
        assert_eq!(ChecksumSpec::parse("none"), Ok(ChecksumSpec::None));
        assert_eq!(
            ChecksumSpec::parse("file:https://example.org/SHA256SUMS"),
            Ok(ChecksumSpec::File {
                location: "https://example.org/SHA256SUMS".into()
            })
        );
        assert_eq!(
            ChecksumSpec::parse("file:./SHA256SUMS"),
            Ok(ChecksumSpec::File {
                location: "./SHA256SUMS".into()
            })
        );
    }

    #[test]
    fn checksum_file_forms() {
        let text = format!(
            "# comment\n\
             {SHA256_EMPTY}  other.iso\n\
             {h1} *debian.iso\n\
             SHA256 (bsd.iso) = {h2}\n\
             {h3}  ./sub/nested.iso\n\
             MD5 (old.iso) = d41d8cd98f00b204e9800998ecf8427e\n",
            h1 = "1".repeat(64),
            h2 = "2".repeat(64),
            h3 = "3".repeat(64),
        );
        let get = |n: &str| find_in_checksum_file(&text, n).map(|d| d.to_string());
        assert_eq!(
            get("debian.iso"),
            Some(format!("sha256:{}", "1".repeat(64)))
        );
        assert_eq!(get("bsd.iso"), Some(format!("sha256:{}", "2".repeat(64))));
        assert_eq!(
            get("nested.iso"),
            Some(format!("sha256:{}", "3".repeat(64)))
        );
        assert_eq!(
            get("old.iso"),
            Some("md5:d41d8cd98f00b204e9800998ecf8427e".into())
        );
        assert_eq!(get("missing.iso"), None);
    }

    #[test]
    fn hashers_match_known_vectors() {
        let mut h = HashAlgo::Sha256.hasher();
        h.update(b"");
        assert_eq!(h.finalize().hex(), SHA256_EMPTY);
        let mut h = HashAlgo::Md5.hasher();
        h.update(b"abc");
        assert_eq!(h.finalize().hex(), "900150983cd24fb0d6963f7d28e17f72");
        let mut h = HashAlgo::Sha1.hasher();
        h.update(b"abc");
        assert_eq!(
            h.finalize().hex(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}
