//! The `.mf` manifest: one `SHA256(name)= hex` line per file, the form
//! ovftool writes and VirtualBox, VMware and virt-v2v verify; the one
//! parser of its lines, for kiln's own packages and the OVAs it reads
//! ([`super::ova_reader`]), and the digests a manifest lists.

use std::path::{Path, PathBuf};

use crate::digest::{Algorithm, Hasher};

/// `SHA256(name)= hex\n` for a file of the package.
pub fn manifest_line(file_name: &str, sha256: &[u8]) -> String {
    format!("SHA256({file_name})= {}\n", crate::digest::hex(sha256))
}

/// The (file name, lowercase hex digest) pairs of a SHA256 manifest;
/// lines of another form are skipped.
pub fn parse_manifest(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(ManifestLine::parse)
        .filter(|line| line.algorithm == "SHA256")
        .map(|line| (line.file.to_owned(), line.digest.to_ascii_lowercase()))
        .collect()
}

/// One line of an OVF manifest: `SHA256(file)= digest` as ovftool writes
/// it, or `SHA1 (file) = digest` as VirtualBox does.
#[derive(Debug, PartialEq, Eq)]
pub struct ManifestLine<'a> {
    pub algorithm: &'a str,
    pub file: &'a str,
    pub digest: &'a str,
}

impl<'a> ManifestLine<'a> {
    pub fn parse(line: &'a str) -> Option<Self> {
        let (algorithm, rest) = line.split_once('(')?;
        // The last `=`: a file name may hold one, a digest cannot.
        let (file, digest) = rest.rsplit_once('=')?;
        let file = file.trim_end().strip_suffix(')')?;
        let (algorithm, digest) = (algorithm.trim(), digest.trim());
        let well_formed = !algorithm.is_empty()
            && !file.is_empty()
            && !digest.is_empty()
            && digest.chars().all(|c| c.is_ascii_hexdigit());
        well_formed.then_some(Self {
            algorithm,
            file,
            digest,
        })
    }
}

/// A digest some bytes must have, as a manifest lists it (an OVA's `.mf`).
pub struct ExpectedDigest {
    /// As the manifest spells it (`SHA256`), for messages.
    algorithm: String,
    /// A fresh hasher of that algorithm.
    hasher: Hasher,
    /// Lowercase hex.
    hex: String,
    /// The manifest's name, for messages.
    listed_in: String,
}

impl ExpectedDigest {
    /// `None` when kiln cannot compute `algorithm` (matched without case:
    /// `SHA1`, `sha256`, …).
    pub fn new(algorithm: &str, hex: &str, listed_in: &str) -> Option<Self> {
        Some(Self {
            hasher: Hasher::new(Algorithm::from_name(algorithm)?),
            algorithm: algorithm.to_owned(),
            hex: hex.to_ascii_lowercase(),
            listed_in: listed_in.to_owned(),
        })
    }

    /// A hasher to feed the bytes to, for [`Self::verify`].
    pub fn hasher(&self) -> Hasher {
        self.hasher.clone()
    }

    /// An error naming `member` of `archive` unless `hasher`, fed all of
    /// its bytes, gives this digest.
    pub fn verify(
        &self,
        hasher: Hasher,
        archive: &Path,
        member: &str,
    ) -> Result<(), Box<DigestMismatch>> {
        let actual = hasher.finalize_hex();
        if actual == self.hex {
            return Ok(());
        }
        Err(Box::new(DigestMismatch {
            archive: archive.to_owned(),
            member: member.to_owned(),
            algorithm: self.algorithm.clone(),
            listed_in: self.listed_in.clone(),
            expected: self.hex.clone(),
            actual,
        }))
    }
}

/// A member of an archive whose bytes are not what its manifest says.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} is corrupt: `{member}` does not match its {algorithm} digest in `{listed_in}` ({expected} expected, {actual} read)",
    archive.display()
)]
pub struct DigestMismatch {
    archive: PathBuf,
    member: String,
    algorithm: String,
    listed_in: String,
    expected: String,
    actual: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_round_trips() {
        let line = manifest_line("a.ovf", &[0xde, 0xad, 0x01]);
        assert_eq!(line, "SHA256(a.ovf)= dead01\n");
        assert_eq!(
            parse_manifest(&line),
            vec![("a.ovf".to_owned(), "dead01".to_owned())]
        );
    }

    #[test]
    fn manifest_lines_of_ovftool_and_virtualbox() {
        let line = |algorithm, file, digest| {
            Some(ManifestLine {
                algorithm,
                file,
                digest,
            })
        };
        assert_eq!(
            ManifestLine::parse("SHA256(vm-disk1.vmdk)= ab01"),
            line("SHA256", "vm-disk1.vmdk", "ab01")
        );
        assert_eq!(
            ManifestLine::parse("SHA1 (vm.ovf) = AB01"),
            line("SHA1", "vm.ovf", "AB01")
        );
        assert_eq!(
            ManifestLine::parse("SHA1(a(b)=c.vmdk)= 00"),
            line("SHA1", "a(b)=c.vmdk", "00")
        );
        assert_eq!(ManifestLine::parse("SHA1(vm.ovf)= not-hex"), None);
        assert_eq!(ManifestLine::parse("(vm.ovf)= 00"), None);
        assert_eq!(ManifestLine::parse("vm.ovf 00"), None);
    }
}
