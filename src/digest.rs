//! Digests, once for all of kiln: the hash algorithms templates and
//! manifests name, an incremental [`Hasher`] over any of them, and the one
//! lowercase-hex encoder. Pure (no I/O); the ISO cache, the checksum and
//! compress post-processors, OVF manifests and the AWS signer use it.

use sha2::Digest as _;

/// A hash algorithm kiln computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    /// Every algorithm, weakest first.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Md5,
        Algorithm::Sha1,
        Algorithm::Sha224,
        Algorithm::Sha256,
        Algorithm::Sha384,
        Algorithm::Sha512,
    ];

    /// The lowercase name (`sha256`), as templates and `sha256sum` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha224 => "sha224",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Parses a name, matched without case (`SHA256` in BSD lines and
    /// OVF manifests).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }
}

/// An incremental hasher over one of the algorithms.
#[derive(Clone)]
pub enum Hasher {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Md5 => Self::Md5(md5::Md5::new()),
            Algorithm::Sha1 => Self::Sha1(sha1::Sha1::new()),
            Algorithm::Sha224 => Self::Sha224(sha2::Sha224::new()),
            Algorithm::Sha256 => Self::Sha256(sha2::Sha256::new()),
            Algorithm::Sha384 => Self::Sha384(sha2::Sha384::new()),
            Algorithm::Sha512 => Self::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Md5(_) => Algorithm::Md5,
            Self::Sha1(_) => Algorithm::Sha1,
            Self::Sha224(_) => Algorithm::Sha224,
            Self::Sha256(_) => Algorithm::Sha256,
            Self::Sha384(_) => Algorithm::Sha384,
            Self::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Self::Md5(h) => h.update(data),
            Self::Sha1(h) => h.update(data),
            Self::Sha224(h) => h.update(data),
            Self::Sha256(h) => h.update(data),
            Self::Sha384(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    /// The digest's bytes.
    pub fn finalize(self) -> Vec<u8> {
        match self {
            Self::Md5(h) => h.finalize().to_vec(),
            Self::Sha1(h) => h.finalize().to_vec(),
            Self::Sha224(h) => h.finalize().to_vec(),
            Self::Sha256(h) => h.finalize().to_vec(),
            Self::Sha384(h) => h.finalize().to_vec(),
            Self::Sha512(h) => h.finalize().to_vec(),
        }
    }

    /// The digest in lowercase hex.
    pub fn finalize_hex(self) -> String {
        hex(&self.finalize())
    }
}

/// Lowercase hex, two digits a byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The digest of the file at `path` in lowercase hex, read in 1 MiB
/// blocks (the one file hasher for parts without a progress bar).
pub fn file_hex(algorithm: Algorithm, path: &std::path::Path) -> std::io::Result<String> {
    Ok(hex(&file_digest(algorithm, path)?.bytes))
}

/// A file's digest and the number of bytes it was taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    pub bytes: Vec<u8>,
    pub len: u64,
}

/// The digest of the file at `path` and its length as read, in 1 MiB
/// blocks (for keys that hash the length too).
pub fn file_digest(algorithm: Algorithm, path: &std::path::Path) -> std::io::Result<FileDigest> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Hasher::new(algorithm);
    let mut len = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                h.update(&buf[..n]);
                len += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(FileDigest {
        bytes: h.finalize(),
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_hashes_as_its_bytes_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("abc");
        // Larger than one read block, so the blocks are joined.
        let content: Vec<u8> = (0..(3 << 20) + 5).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).expect("write");
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(&content);
        assert_eq!(
            file_hex(Algorithm::Sha256, &path).expect("hash"),
            h.finalize_hex()
        );
        assert!(file_hex(Algorithm::Sha256, &dir.path().join("gone")).is_err());
        let digest = file_digest(Algorithm::Sha256, &path).expect("hash");
        assert_eq!(digest.len, content.len() as u64);
        assert_eq!(
            hex(&digest.bytes),
            file_hex(Algorithm::Sha256, &path).expect("hash")
        );
    }

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    /// Known answers for "abc" (RFC 1321, FIPS 180-4).
    #[test]
    fn each_algorithm_gives_its_known_answer() {
        let abc = |a| {
            let mut h = Hasher::new(a);
            h.update(b"a");
            h.update(b"bc");
            assert_eq!(h.algorithm(), a);
            h.finalize_hex()
        };
        assert_eq!(abc(Algorithm::Md5), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            abc(Algorithm::Sha1),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            abc(Algorithm::Sha224),
            "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"
        );
        assert_eq!(
            abc(Algorithm::Sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(abc(Algorithm::Sha384).starts_with("cb00753f45a35e8bb5a03d699ac65007"));
        assert!(abc(Algorithm::Sha512).starts_with("ddaf35a193617abacc417349ae204131"));
    }

    #[test]
    fn names_parse_without_case() {
        assert_eq!(Algorithm::from_name("SHA256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::from_name("sha384"), Some(Algorithm::Sha384));
        assert_eq!(Algorithm::from_name("crc32"), None);
    }
}
