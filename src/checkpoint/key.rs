//! The install key: sha256 over a canonical, versioned encoding of named
//! inputs. Each input is reduced to its own sha256 first, so the list of
//! (name, digest) pairs can be written beside a checkpoint and compared by
//! a person wondering why a build did not resume.

use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::digest::{self, Algorithm, hex};

/// kiln's checkpoint format version: part of every key, raised whenever
/// what a checkpoint holds or how the key is encoded changes, so an old
/// checkpoint is never booted by a kiln that would have made it differently.
pub const FORMAT_VERSION: u32 = 1;

/// A finished key: 64 hex digits, the name of the checkpoint's directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstallKey(String);

impl InstallKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Accepts only what [`KeyBuilder::finish`] makes (a directory name read
    /// back from the cache must not be a path).
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 64
            && text
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
        .then(|| Self(text.to_owned()))
    }
}

impl std::fmt::Display for InstallKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Collects named inputs; the order of calls does not matter (inputs are
/// sorted by name), a name given twice keeps both values in call order.
#[derive(Debug, Clone)]
pub struct KeyBuilder {
    kind: String,
    inputs: Vec<(String, String)>,
}

/// Length-prefixed, so ("ab","c") and ("a","bc") differ.
fn put(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

impl KeyBuilder {
    /// `kind` names what installs (the builder type): two builders with
    /// the same settings never share a checkpoint.
    pub fn new(kind: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            inputs: Vec::new(),
        }
    }

    /// A builder over inputs read back (a build record's): its key can be
    /// compared with the one recorded beside them.
    pub fn from_inputs(kind: &str, inputs: &[(String, String)]) -> Self {
        Self {
            kind: kind.to_owned(),
            inputs: inputs.to_vec(),
        }
    }

    fn add_digest(&mut self, name: &str, digest: String) {
        self.inputs.push((name.to_owned(), digest));
    }

    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        let mut h = Sha256::new();
        put(&mut h, value.as_bytes());
        self.add_digest(name, hex(&h.finalize()));
        self
    }

    pub fn number(&mut self, name: &str, value: u64) -> &mut Self {
        self.text(name, &value.to_string())
    }

    pub fn flag(&mut self, name: &str, value: bool) -> &mut Self {
        self.text(name, if value { "true" } else { "false" })
    }

    pub fn optional(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        let mut h = Sha256::new();
        match value {
            None => h.update([0u8]),
            Some(v) => {
                h.update([1u8]);
                put(&mut h, v.as_bytes());
            }
        }
        self.add_digest(name, hex(&h.finalize()));
        self
    }

    pub fn list<S: AsRef<str>>(&mut self, name: &str, items: &[S]) -> &mut Self {
        let mut h = Sha256::new();
        h.update((items.len() as u64).to_le_bytes());
        for i in items {
            put(&mut h, i.as_ref().as_bytes());
        }
        self.add_digest(name, hex(&h.finalize()));
        self
    }

    /// The content of a file (not its name, time or permissions).
    pub fn file(&mut self, name: &str, path: &Path) -> std::io::Result<&mut Self> {
        let mut h = Sha256::new();
        hash_file_into(&mut h, path)?;
        self.add_digest(name, hex(&h.finalize()));
        Ok(self)
    }

    /// Every file under `dir`: relative paths and contents, in sorted
    /// order, symbolic links followed (what a server serving it would read).
    pub fn tree(&mut self, name: &str, dir: &Path) -> std::io::Result<&mut Self> {
        let mut files = Vec::new();
        collect_files(dir, Path::new(""), &mut files, 0)?;
        files.sort();
        let mut h = Sha256::new();
        h.update((files.len() as u64).to_le_bytes());
        for rel in &files {
            put(&mut h, rel.to_string_lossy().as_bytes());
            let mut fh = Sha256::new();
            hash_file_into(&mut fh, &dir.join(rel))?;
            h.update(fh.finalize());
        }
        self.add_digest(name, hex(&h.finalize()));
        Ok(self)
    }

    /// The inputs as (name, sha256 of the value), sorted: what
    /// `inputs.txt` beside a checkpoint lists.
    pub fn inputs(&self) -> Vec<(String, String)> {
        let mut v = self.inputs.clone();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The same inputs with each digest passed through `seal(name,
    /// digest)` (a keyed hash: see [`super::record_secret`]).
    pub fn sealed(&self, seal: impl Fn(&str, &str) -> String) -> Self {
        Self {
            kind: self.kind.clone(),
            inputs: self
                .inputs
                .iter()
                .map(|(n, d)| (n.clone(), seal(n, d)))
                .collect(),
        }
    }

    pub fn finish(&self) -> InstallKey {
        let mut h = Sha256::new();
        put(&mut h, b"kiln install checkpoint");
        h.update(FORMAT_VERSION.to_le_bytes());
        put(&mut h, self.kind.as_bytes());
        let inputs = self.inputs();
        h.update((inputs.len() as u64).to_le_bytes());
        for (name, digest) in &inputs {
            put(&mut h, name.as_bytes());
            put(&mut h, digest.as_bytes());
        }
        InstallKey(hex(&h.finalize()))
    }
}

/// The file's length, then its SHA-256: the bytes a key has always taken
/// for a file.
fn hash_file_into(h: &mut Sha256, path: &Path) -> std::io::Result<()> {
    let content = digest::file_digest(Algorithm::Sha256, path)?;
    h.update(content.len.to_le_bytes());
    h.update(&content.bytes);
    Ok(())
}

/// Deep enough for any answer-file tree; a symlink loop stops here.
const MAX_DEPTH: usize = 32;

fn collect_files(
    root: &Path,
    rel: &Path,
    out: &mut Vec<std::path::PathBuf>,
    depth: usize,
) -> std::io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(std::io::Error::other(format!(
            "{} is nested more than {MAX_DEPTH} directories deep (a symbolic link loop?)",
            root.join(rel).display()
        )));
    }
    let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let child = rel.join(e.file_name());
        // metadata() follows links, as serving the file would.
        let meta = std::fs::metadata(root.join(&child))?;
        if meta.is_dir() {
            collect_files(root, &child, out, depth + 1)?;
        } else {
            out.push(child);
        }
    }
    Ok(())
}

/// The template functions in `source` whose value changes from run to run
/// (`{{timestamp}}`, `{{uuid}}`, `{{isotime}}`…): a boot command or served
/// file using one gets a new key every time, so it never resumes.
pub fn volatile_functions(source: &str) -> Vec<&'static str> {
    const VOLATILE: &[&str] = &[
        "timestamp",
        "uuid",
        "isotime",
        "strftime",
        "timestamp_nanos",
    ];
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            break;
        };
        let action = &after[..close];
        for word in action.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if let Some(v) = VOLATILE.iter().find(|v| **v == word)
                && !found.contains(v)
            {
                found.push(*v);
            }
        }
        rest = &after[close + 2..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(f: impl FnOnce(&mut KeyBuilder)) -> InstallKey {
        let mut b = KeyBuilder::new("qemu");
        f(&mut b);
        b.finish()
    }

    #[test]
    fn the_same_inputs_in_any_order_give_the_same_key() {
        let a = key(|b| {
            b.text("boot_command", "x<enter>").number("memory", 256);
        });
        let c = key(|b| {
            b.number("memory", 256).text("boot_command", "x<enter>");
        });
        assert_eq!(a, c);
        assert_eq!(a.as_str().len(), 64);
        assert_eq!(InstallKey::parse(a.as_str()), Some(a));
    }

    #[test]
    fn every_input_and_the_kind_change_the_key() {
        let base = key(|b| {
            b.text("boot_command", "x").number("memory", 256);
        });
        assert_ne!(
            base,
            key(|b| {
                b.text("boot_command", "y").number("memory", 256);
            })
        );
        assert_ne!(
            base,
            key(|b| {
                b.text("boot_command", "x").number("memory", 512);
            })
        );
        assert_ne!(
            base,
            key(|b| {
                b.text("boot_command", "x");
            })
        );
        let mut other = KeyBuilder::new("virtualbox-iso");
        other.text("boot_command", "x").number("memory", 256);
        assert_ne!(base, other.finish());
    }

    #[test]
    fn lists_and_optionals_are_unambiguous() {
        let l = |items: &[&str]| {
            key(|b| {
                b.list("qemuargs", items);
            })
        };
        assert_ne!(l(&["ab", "c"]), l(&["a", "bc"]));
        assert_ne!(l(&[]), l(&[""]));
        let o = |v: Option<&str>| {
            key(|b| {
                b.optional("firmware", v);
            })
        };
        assert_ne!(o(None), o(Some("")));
    }

    /// A key names a checkpoint kept in the cache: the same inputs must
    /// give the same key from one kiln to the next (a change raises
    /// FORMAT_VERSION instead).
    #[test]
    fn keys_of_files_and_trees_stay_what_they_were() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/preseed.cfg"), "d-i x\n").expect("write");
        std::fs::write(dir.path().join("ks.cfg"), "").expect("write");
        let pinned = key(|b| {
            b.file("preseed", &dir.path().join("sub/preseed.cfg"))
                .expect("file")
                .tree("http_directory", dir.path())
                .expect("tree")
                .text("boot_command", "x<enter>");
        });
        assert_eq!(
            pinned.as_str(),
            "1ecb8fea3eaf8e541fab6bb289f2a83708d89831e1844a6416ac465c23b0a600"
        );
    }

    #[test]
    fn trees_hash_names_and_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/preseed.cfg"), "a").expect("write");
        let t = || {
            key(|b| {
                b.tree("http_directory", dir.path()).expect("tree");
            })
        };
        let first = t();
        assert_eq!(first, t());
        std::fs::write(dir.path().join("sub/preseed.cfg"), "b").expect("write");
        let changed = t();
        assert_ne!(first, changed);
        std::fs::rename(
            dir.path().join("sub/preseed.cfg"),
            dir.path().join("sub/other.cfg"),
        )
        .expect("rename");
        assert_ne!(changed, t());
    }

    #[test]
    fn finds_functions_that_change_every_run() {
        assert_eq!(
            volatile_functions("x {{ timestamp }} {{.HTTPIP}} {{ uuid }}<enter>"),
            vec!["timestamp", "uuid"]
        );
        assert_eq!(volatile_functions("{{isotime \"2006\"}}"), vec!["isotime"]);
        assert!(
            volatile_functions("install url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/x timestamp")
                .is_empty()
        );
    }
}
