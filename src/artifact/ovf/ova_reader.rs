//! Reading an OVA as a consumer takes it (the vagrant post-processor's
//! virtualbox box): listed without reading its disks, checked (one `.ovf`
//! descriptor, at most one `.mf` manifest, plain member names), the
//! descriptor verified against the manifest here and the other members
//! given the manifest's digests, to be verified as they are streamed out
//! of the OVA. The writer is [`super::package`].

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use super::error::OvaReadError;
use super::manifest::{ExpectedDigest, ManifestLine};

/// Largest descriptor or manifest read into memory: both are a few KiB, so
/// a larger one is not what its name says.
const TEXT_MAX: u64 = 16 << 20;

/// What an OVA holds: the descriptor's text, and the other members (the
/// disks) under their own names.
pub struct OvaContents {
    pub descriptor: String,
    pub members: Vec<OvaMember>,
}

/// A member of an OVA other than its descriptor and manifest.
pub struct OvaMember {
    /// Its name in the OVA (a plain file name).
    pub name: String,
    /// The size its header states.
    pub size: u64,
    /// Its digest as the manifest lists it, to check while it is read.
    pub digest: Option<ExpectedDigest>,
}

/// Lists and checks the OVA at `path`, reading only its descriptor and
/// manifest.
pub fn read_ova(path: &Path) -> Result<OvaContents, OvaReadError> {
    let Listing {
        descriptors,
        manifests,
        mut members,
    } = list(path)?;
    let descriptor = match <[_; 1]>::try_from(descriptors) {
        Ok([only]) => only,
        Err(found) if found.is_empty() => {
            return Err(bad(path, "it holds no .ovf descriptor".into()));
        }
        Err(found) => {
            let problem = format!(
                "it holds {} .ovf descriptors ({}); a box holds one",
                found.len(),
                names(&found)
            );
            return Err(bad(path, problem));
        }
    };
    match manifests.as_slice() {
        [] => {}
        [manifest] => apply_manifest(path, manifest, &descriptor, &mut members)?,
        more => {
            let problem = format!(
                "it holds {} .mf manifests ({}); an OVA has at most one",
                more.len(),
                names(more)
            );
            return Err(bad(path, problem));
        }
    }
    let (name, text) = descriptor;
    let descriptor =
        String::from_utf8(text).map_err(|_| bad(path, format!("`{name}` is not UTF-8 text")))?;
    Ok(OvaContents {
        descriptor,
        members,
    })
}

fn bad(ova: &Path, problem: String) -> OvaReadError {
    OvaReadError::Bad {
        archive: ova.to_owned(),
        problem,
    }
}

/// A member read whole: its name and bytes.
type Text = (String, Vec<u8>);

fn names(texts: &[Text]) -> String {
    let names: Vec<&str> = texts.iter().map(|(name, _)| name.as_str()).collect();
    names.join(", ")
}

/// An OVA's members by kind, their names checked.
struct Listing {
    descriptors: Vec<Text>,
    manifests: Vec<Text>,
    members: Vec<OvaMember>,
}

/// Reads the OVA's headers, seeking over the disks.
fn list(path: &Path) -> Result<Listing, OvaReadError> {
    let file = std::fs::File::open(path).map_err(OvaReadError::io("cannot open", path))?;
    let len = file
        .metadata()
        .map_err(OvaReadError::io("cannot read", path))?
        .len();
    let mut archive = tar::Archive::new(file);
    let entries = archive
        .entries_with_seek()
        .map_err(OvaReadError::io("cannot read", path))?;
    let mut seen = BTreeSet::new();
    let mut listing = Listing {
        descriptors: Vec::new(),
        manifests: Vec::new(),
        members: Vec::new(),
    };
    for entry in entries {
        let mut entry = entry.map_err(OvaReadError::io("cannot read", path))?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let name = String::from_utf8(entry.path_bytes().into_owned()).map_err(|e| {
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            bad(path, format!("the member name `{lossy}` is not UTF-8"))
        })?;
        if let Some(reason) = name_problem(&name) {
            let problem = format!(
                "the member `{name}` {reason}; a box takes plain file names only, so that nothing lands outside it"
            );
            return Err(bad(path, problem));
        }
        if !kind.is_file() {
            let problem = format!("the member `{name}` is not a regular file");
            return Err(bad(path, problem));
        }
        if !seen.insert(name.clone()) {
            return Err(bad(path, format!("it holds `{name}` twice")));
        }
        let size = entry.size();
        if entry.raw_file_position().saturating_add(size) > len {
            let problem = format!("it ends inside `{name}`: the OVA is truncated");
            return Err(bad(path, problem));
        }
        let extension = Path::new(&name)
            .extension()
            .map(|e| e.to_ascii_lowercase())
            .unwrap_or_default();
        if extension == "ovf" {
            let text = read_small(&mut entry, &name, size, path)?;
            listing.descriptors.push((name, text));
        } else if extension == "mf" {
            let text = read_small(&mut entry, &name, size, path)?;
            listing.manifests.push((name, text));
        } else {
            listing.members.push(OvaMember {
                name,
                size,
                digest: None,
            });
        }
    }
    Ok(listing)
}

/// Verifies the descriptor against the manifest now, and gives each member
/// the manifest lists its digest, to be verified as it is copied.
fn apply_manifest(
    ova: &Path,
    (manifest_name, manifest): &Text,
    (descriptor_name, descriptor): &Text,
    members: &mut [OvaMember],
) -> Result<(), OvaReadError> {
    let text = std::str::from_utf8(manifest)
        .map_err(|_| bad(ova, format!("`{manifest_name}` is not UTF-8 text")))?;
    let mut listed = BTreeSet::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some(line) = ManifestLine::parse(line) else {
            let problem = format!(
                "line {} of `{manifest_name}` is not `ALGORITHM(file)= digest`",
                number + 1
            );
            return Err(bad(ova, problem));
        };
        let Some(digest) = ExpectedDigest::new(line.algorithm, line.digest, manifest_name) else {
            let problem = format!(
                "`{manifest_name}` uses {}, which kiln cannot check (it knows MD5, SHA1, SHA224, SHA256, SHA384 and SHA512)",
                line.algorithm
            );
            return Err(bad(ova, problem));
        };
        if !listed.insert(line.file) {
            let problem = format!("`{manifest_name}` lists `{}` twice", line.file);
            return Err(bad(ova, problem));
        }
        if line.file == descriptor_name {
            let mut hasher = digest.hasher();
            hasher.update(descriptor);
            digest
                .verify(hasher, ova, descriptor_name)
                .map_err(OvaReadError::Corrupt)?;
        } else if let Some(member) = members.iter_mut().find(|m| m.name == line.file) {
            member.digest = Some(digest);
        } else {
            let problem = format!(
                "`{manifest_name}` lists `{}`, which the OVA does not hold: it is incomplete",
                line.file
            );
            return Err(bad(ova, problem));
        }
    }
    Ok(())
}

/// The bytes of a descriptor or manifest.
fn read_small(
    entry: &mut impl Read,
    name: &str,
    size: u64,
    ova: &Path,
) -> Result<Vec<u8>, OvaReadError> {
    if size > TEXT_MAX {
        let problem = format!("`{name}` is {size} bytes, too large for a descriptor or manifest");
        return Err(bad(ova, problem));
    }
    let mut data = Vec::new();
    entry
        .read_to_end(&mut data)
        .map_err(OvaReadError::io("cannot read", ova))?;
    Ok(data)
}

/// Why `name` is not a plain file name, as every member going into a box
/// must be (Vagrant unpacks the box into a directory of its own).
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("has an empty name")
    } else if name.starts_with('/') {
        Some("has an absolute path")
    } else if name.contains(['/', '\\']) {
        Some("has a directory in its path")
    } else if name == "." || name == ".." {
        Some("is not a file name")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use sha2::Digest;

    use super::*;

    /// An OVA at `dir/vm.ova` holding `members` in order. Names are written
    /// into the header as they are: `set_path` refuses `..` and absolute
    /// names, which these tests need.
    fn ova(dir: &Path, members: &[(&str, &[u8])]) -> std::path::PathBuf {
        let path = dir.join("vm.ova");
        let file = std::fs::File::create(&path).expect("creates the OVA");
        let mut tar = tar::Builder::new(file);
        for (name, data) in members {
            let mut header = tar::Header::new_ustar();
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            tar.append(&header, *data).expect("appends");
        }
        tar.finish().expect("finishes the OVA");
        path
    }

    fn sha256(data: &[u8]) -> String {
        crate::digest::hex(&sha2::Sha256::digest(data))
    }

    fn problem(result: Result<OvaContents, OvaReadError>) -> String {
        match result {
            Ok(_) => panic!("the OVA was accepted"),
            Err(e) => e.to_string(),
        }
    }

    const OVF: &[u8] = br#"<Envelope><Adapter MACAddress="080027C0FFEE"/></Envelope>"#;

    #[test]
    fn member_names_must_be_plain_file_names() {
        for name in ["../x", "/abs", "dir/x", "dir\\x", ".", "..", ""] {
            assert!(name_problem(name).is_some(), "{name:?} accepted");
        }
        for name in ["vm-disk1.vmdk", "..vmdk", "vm.ovf"] {
            assert_eq!(name_problem(name), None, "{name:?} refused");
        }
    }

    #[test]
    fn members_get_the_manifests_digests() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mf = format!(
            "SHA256(vm.ovf)= {}\nSHA1 (vm-disk1.vmdk) = 0123\n",
            sha256(OVF)
        );
        let path = ova(
            dir.path(),
            &[
                ("vm.ovf", OVF),
                ("vm-disk1.vmdk", b"disk one"),
                ("vm-disk2.vmdk", b"disk two"),
                ("vm.mf", mf.as_bytes()),
            ],
        );
        let package = read_ova(&path).expect("reads the OVA");
        assert_eq!(package.descriptor.as_bytes(), OVF);
        let members: Vec<(&str, u64, bool)> = package
            .members
            .iter()
            .map(|m| (m.name.as_str(), m.size, m.digest.is_some()))
            .collect();
        assert_eq!(
            members,
            [("vm-disk1.vmdk", 8, true), ("vm-disk2.vmdk", 8, false)]
        );
    }

    #[test]
    fn a_descriptor_that_does_not_match_the_manifest_is_corrupt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mf = format!("SHA256(vm.ovf)= {}\n", sha256(b"another descriptor"));
        let path = ova(dir.path(), &[("vm.ovf", OVF), ("vm.mf", mf.as_bytes())]);
        let message = problem(read_ova(&path));
        assert!(
            message.contains("is corrupt: `vm.ovf` does not match its SHA256 digest in `vm.mf`"),
            "{message}"
        );
    }

    #[test]
    fn one_descriptor_is_needed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let none = ova(dir.path(), &[("vm-disk1.vmdk", b"disk")]);
        assert!(problem(read_ova(&none)).ends_with("it holds no .ovf descriptor"));
        let two = ova(dir.path(), &[("a.ovf", OVF), ("b.OVF", OVF)]);
        let message = problem(read_ova(&two));
        assert!(
            message.ends_with("it holds 2 .ovf descriptors (a.ovf, b.OVF); a box holds one"),
            "{message}"
        );
    }

    #[test]
    fn members_with_a_path_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["../x.vmdk", "/abs.vmdk", "dir/x.vmdk", "../vm.ovf"] {
            let path = ova(dir.path(), &[("vm.ovf", OVF), (name, b"disk")]);
            let message = problem(read_ova(&path));
            assert!(
                message.contains(&format!("the member `{name}` has")),
                "{name}: {message}"
            );
        }
    }

    #[test]
    fn a_manifest_naming_a_missing_member_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mf = "SHA256(vm-disk1.vmdk)= 00\n";
        let path = ova(dir.path(), &[("vm.ovf", OVF), ("vm.mf", mf.as_bytes())]);
        let message = problem(read_ova(&path));
        assert!(
            message.ends_with(
                "`vm.mf` lists `vm-disk1.vmdk`, which the OVA does not hold: it is incomplete"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_truncated_ova_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = vec![7u8; 4096];
        let path = ova(dir.path(), &[("vm.ovf", OVF), ("vm-disk1.vmdk", &disk)]);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("opens the OVA");
        file.set_len(2048).expect("truncates");
        let message = problem(read_ova(&path));
        assert!(
            message.ends_with("it ends inside `vm-disk1.vmdk`: the OVA is truncated"),
            "{message}"
        );
    }
}
