//! The build record: a small JSON file inside a build's output directory
//! (`.kiln-build.json`) saying which inputs made the artifacts its last
//! successful run left, and what those files were (a stamp each). A later
//! `kiln build` with the same key and intact files has nothing to do.
//!
//! It lives in the output directory so it moves with the output and dies
//! with it: `rm -rf output-*` (or `-force`) forgets it, and no cache entry
//! can claim an output that is not there. Artifacts outside the directory
//! (a post-processor's box elsewhere) are named in it and checked too.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::key::KeyBuilder;
use super::stamp::{FileStamp, StampCheck};

/// The file's name inside the output directory.
pub const RECORD_FILE: &str = ".kiln-build.json";
/// Raised when what the record holds or how the key is made changes: a
/// record of another version is never trusted.
/// 2: every input digest is an HMAC under the cache's record key.
pub const RECORD_VERSION: u32 = 2;
/// The key's kind (see [`KeyBuilder::new`]).
pub const KEY_KIND: &str = "build";

/// Every input of a build, each as (name, sha256 of its value), and the
/// key over them.
#[derive(Debug, Clone)]
pub struct BuildKey {
    pub key: String,
    pub inputs: Vec<(String, String)>,
}

impl BuildKey {
    pub fn from_builder(b: &KeyBuilder) -> Self {
        Self {
            key: b.finish().as_str().to_owned(),
            inputs: b.inputs(),
        }
    }

    /// The key a record keeps: each input's digest sealed under the cache's
    /// secret, so the record cannot be used to test guesses of a secret
    /// input.
    pub fn sealed(b: &KeyBuilder, secret: &super::record_secret::RecordSecret) -> Self {
        Self::from_builder(&b.sealed(|name, digest| secret.seal(name, digest)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFile {
    /// As the artifact names it (relative paths are from where kiln ran).
    pub path: PathBuf,
    pub stamp: FileStamp,
}

/// An artifact of the last run, with what `-machine-readable` prints of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedArtifact {
    pub builder_id: String,
    pub id: String,
    pub description: String,
    pub files: Vec<RecordedFile>,
}

/// An artifact as the build made it, before its files are stamped.
#[derive(Debug, Clone)]
pub struct MadeArtifact {
    pub builder_id: String,
    pub id: String,
    pub description: String,
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildRecord {
    pub version: u32,
    pub build: String,
    pub key: String,
    pub inputs: Vec<(String, String)>,
    pub artifacts: Vec<RecordedArtifact>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the record says about a build about to run.
#[derive(Debug)]
pub enum Freshness {
    /// Same key, every recorded file intact: nothing to do.
    UpToDate(BuildRecord),
    /// Something differs; the reason names it ("provisioner 2 (shell)
    /// script scripts/greet.sh changed", "output/x.box is gone").
    Stale(String),
    /// No record (never built here, or the output directory is gone).
    NoRecord,
}

/// Reads and checks the record in `output_dir` against `key`; relative
/// artifact paths are resolved from `pwd`. Only stats the files unless
/// their stat fields moved (then it hashes them).
pub fn check(output_dir: &Path, pwd: &Path, key: &BuildKey) -> Freshness {
    let path = output_dir.join(RECORD_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Freshness::NoRecord,
        Err(e) => return Freshness::Stale(format!("its build record cannot be read ({e})")),
    };
    let mut record = match parse(&text) {
        Ok(r) => r,
        Err(why) => return Freshness::Stale(format!("its build record {why}")),
    };
    if record.key != key.key {
        return Freshness::Stale(changed_inputs(&record.inputs, &key.inputs));
    }
    let mut restamped = false;
    for artifact in &mut record.artifacts {
        for file in &mut artifact.files {
            let at = pwd.join(&file.path);
            match file.stamp.check(&at) {
                StampCheck::Unchanged => {}
                StampCheck::SameContent(fresh) => {
                    file.stamp = fresh;
                    restamped = true;
                }
                StampCheck::Changed(how) => {
                    let shown = file.path.strip_prefix(pwd).unwrap_or(&file.path);
                    return Freshness::Stale(format!("{}: {how}", shown.display()));
                }
            }
        }
    }
    if restamped {
        // The next check can trust the new stamps: a stat, not a hash.
        let _ = save(output_dir, &record);
    }
    Freshness::UpToDate(record)
}

/// A record read back, or why it cannot be trusted.
fn parse(text: &str) -> Result<BuildRecord, String> {
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let version: Version = serde_json::from_str(text).map_err(|e| format!("is not valid ({e})"))?;
    if version.version != RECORD_VERSION {
        return Err(format!(
            "is version {}, this kiln writes version {RECORD_VERSION}",
            version.version
        ));
    }
    let record: BuildRecord =
        serde_json::from_str(text).map_err(|e| format!("is not valid ({e})"))?;
    // The key is a digest of the inputs listed: an edited list (or key)
    // no longer matches it.
    let recomputed = KeyBuilder::from_inputs(KEY_KIND, &record.inputs).finish();
    if recomputed.as_str() != record.key {
        return Err("was edited (its key does not match its inputs)".into());
    }
    Ok(record)
}

/// What differs between two input lists, for the user: at most three names.
pub fn changed_inputs(old: &[(String, String)], new: &[(String, String)]) -> String {
    let find = |list: &[(String, String)], name: &str| {
        list.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, d)| d.clone())
            .collect::<Vec<_>>()
    };
    let mut what = Vec::new();
    for (name, _) in new {
        let (before, now) = (find(old, name), find(new, name));
        let line = if before.is_empty() {
            format!("{name} is new")
        } else if before != now {
            format!("{name} changed")
        } else {
            continue;
        };
        if !what.contains(&line) {
            what.push(line);
        }
    }
    for (name, _) in old {
        let line = format!("{name} was removed");
        if find(new, name).is_empty() && !what.contains(&line) {
            what.push(line);
        }
    }
    match what.len() {
        0 => "its inputs changed".into(),
        n if n > 3 => format!("{} (and {} more)", what[..3].join(", "), n - 3),
        _ => what.join(", "),
    }
}

/// Stamps the artifacts' files (hashing each once) and writes the record
/// atomically (temporary name, fsync, rename) into `output_dir`.
pub fn write(
    output_dir: &Path,
    pwd: &Path,
    build: &str,
    key: &BuildKey,
    artifacts: Vec<MadeArtifact>,
) -> Result<(), RecordError> {
    let mut recorded = Vec::new();
    for made in artifacts {
        let mut stamped = Vec::new();
        for path in made.files {
            let at = pwd.join(&path);
            let stamp = FileStamp::take(&at).map_err(|source| RecordError::Io {
                action: "hash the artifact",
                path: at.clone(),
                source,
            })?;
            stamped.push(RecordedFile { path, stamp });
        }
        recorded.push(RecordedArtifact {
            builder_id: made.builder_id,
            id: made.id,
            description: made.description,
            files: stamped,
        });
    }
    let record = BuildRecord {
        version: RECORD_VERSION,
        build: build.to_owned(),
        key: key.key.clone(),
        inputs: key.inputs.clone(),
        artifacts: recorded,
    };
    save(output_dir, &record)
}

/// Writes `record` atomically (temporary name, fsync, rename).
fn save(output_dir: &Path, record: &BuildRecord) -> Result<(), RecordError> {
    let text = serde_json::to_string_pretty(record).unwrap_or_default();
    let final_path = output_dir.join(RECORD_FILE);
    let tmp = output_dir.join(format!("{RECORD_FILE}.{}.tmp", std::process::id()));
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| RecordError::Io {
            action,
            path,
            source,
        }
    };
    let result = (|| {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(text.as_bytes()).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("sync", &tmp))?;
        std::fs::rename(&tmp, &final_path).map_err(io("rename into place", &final_path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes a record (a build that failed or was forced must not leave one
/// vouching for files it may have replaced).
pub fn forget(output_dir: &Path) {
    let _ = std::fs::remove_file(output_dir.join(RECORD_FILE));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(inputs: &[(&str, &str)]) -> BuildKey {
        let mut b = KeyBuilder::new(KEY_KIND);
        for (n, v) in inputs {
            b.text(n, v);
        }
        BuildKey::from_builder(&b)
    }

    /// A record made with the cache's secret holds no plain digest of an
    /// input, so a weak secret cannot be found by hashing guesses; the same
    /// secret gives the same key, another secret another one.
    #[test]
    fn a_sealed_key_holds_no_plain_digest_of_a_secret() {
        use super::super::record_secret::RecordSecret;
        let mut b = KeyBuilder::new(KEY_KIND);
        b.list("variables", &["password", "hunter2"]);
        let plain = BuildKey::from_builder(&b);
        let cache = tempfile::tempdir().expect("tempdir");
        let secret = RecordSecret::load_or_create(cache.path()).expect("secret");
        let sealed = BuildKey::sealed(&b, &secret);
        assert_eq!(sealed.inputs.len(), 1);
        assert_ne!(sealed.inputs[0].1, plain.inputs[0].1);
        assert_ne!(sealed.key, plain.key);
        assert_eq!(BuildKey::sealed(&b, &secret).key, sealed.key);
        let other = tempfile::tempdir().expect("tempdir");
        let other = RecordSecret::load_or_create(other.path()).expect("secret");
        assert_ne!(BuildKey::sealed(&b, &other).key, sealed.key);
    }

    /// An output directory with one artifact file, recorded under `k`.
    fn recorded(k: &BuildKey) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("out")).expect("mkdir");
        std::fs::write(dir.path().join("out/disk.qcow2"), b"disk").expect("write");
        write(
            &dir.path().join("out"),
            dir.path(),
            "b",
            k,
            vec![MadeArtifact {
                builder_id: "kiln.qemu".into(),
                id: "disk.qcow2".into(),
                description: "a disk".into(),
                files: vec![PathBuf::from("out/disk.qcow2")],
            }],
        )
        .expect("write record");
        dir
    }

    fn freshness(dir: &Path, k: &BuildKey) -> Freshness {
        check(&dir.join("out"), dir, k)
    }

    #[test]
    fn the_same_key_with_intact_files_is_up_to_date() {
        let k = key(&[("builder", "x"), ("provisioner 1 (shell)", "y")]);
        let dir = recorded(&k);
        match freshness(dir.path(), &k) {
            Freshness::UpToDate(r) => {
                assert_eq!(r.artifacts[0].files[0].path, Path::new("out/disk.qcow2"));
            }
            other => panic!("{other:?}"),
        }
        // No record at all: not "stale", there is nothing to compare.
        assert!(matches!(
            check(&dir.path().join("elsewhere"), dir.path(), &k),
            Freshness::NoRecord
        ));
    }

    #[test]
    fn a_changed_input_is_named() {
        let k = key(&[("builder", "x"), ("provisioner 2 (shell) script a.sh", "y")]);
        let dir = recorded(&k);
        let edited = key(&[("builder", "x"), ("provisioner 2 (shell) script a.sh", "z")]);
        match freshness(dir.path(), &edited) {
            Freshness::Stale(why) => {
                assert_eq!(why, "provisioner 2 (shell) script a.sh changed");
            }
            other => panic!("{other:?}"),
        }
        let added = key(&[
            ("builder", "x"),
            ("provisioner 2 (shell) script a.sh", "y"),
            ("post-processor 1.1 (vagrant)", "v"),
        ]);
        match freshness(dir.path(), &added) {
            Freshness::Stale(why) => assert_eq!(why, "post-processor 1.1 (vagrant) is new"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_or_modified_artifact_is_stale() {
        let k = key(&[("builder", "x")]);
        let dir = recorded(&k);
        let disk = dir.path().join("out/disk.qcow2");
        std::fs::write(&disk, b"DISK").expect("modify");
        assert!(
            matches!(freshness(dir.path(), &k), Freshness::Stale(w) if w == "out/disk.qcow2: its content changed (sha256 differs)")
        );
        std::fs::remove_file(&disk).expect("rm");
        assert!(
            matches!(freshness(dir.path(), &k), Freshness::Stale(w) if w == "out/disk.qcow2: it is gone")
        );
    }

    #[test]
    fn a_tampered_or_foreign_record_is_not_trusted() {
        let k = key(&[("builder", "x")]);
        let dir = recorded(&k);
        let path = dir.path().join("out").join(RECORD_FILE);
        let original = std::fs::read_to_string(&path).expect("read");
        let mut json: serde_json::Value = serde_json::from_str(&original).expect("json");

        // The inputs edited to match a new build, the key left: refused.
        json["inputs"][0][1] = "0".repeat(64).into();
        std::fs::write(&path, json.to_string()).expect("tamper");
        assert!(
            matches!(freshness(dir.path(), &k), Freshness::Stale(w) if w.contains("was edited")),
        );

        let mut json: serde_json::Value = serde_json::from_str(&original).expect("json");
        json["version"] = (RECORD_VERSION + 1).into();
        std::fs::write(&path, json.to_string()).expect("version");
        assert!(
            matches!(freshness(dir.path(), &k), Freshness::Stale(w) if w.contains(&format!("is version {}", RECORD_VERSION + 1))),
        );

        std::fs::write(&path, &original[..original.len() / 2]).expect("truncate");
        assert!(
            matches!(freshness(dir.path(), &k), Freshness::Stale(w) if w.contains("is not valid")),
        );

        std::fs::write(&path, &original).expect("restore");
        assert!(matches!(freshness(dir.path(), &k), Freshness::UpToDate(_)));
        forget(&dir.path().join("out"));
        assert!(matches!(freshness(dir.path(), &k), Freshness::NoRecord));
    }
}
