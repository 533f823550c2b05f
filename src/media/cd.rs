//! `cd_files` / `cd_content` / `cd_label`: an ISO 9660 image (Rock Ridge
//! and Joliet names) made with `xorriso` for installers and cloud-init that
//! read their answers from a CD (label `cidata`, `OEMDRV`, …).
//!
//! The files are staged in a directory first, laid out as Packer lays them:
//! a file goes to the root under its own name; a directory is copied with
//! its name, or its contents alone when the path ends in `/`; a pattern
//! with `*`, `?` or `[` stands for the matching entries of its directory;
//! `cd_content` writes each value at its path, creating directories.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::sources::{self, ExpandError};

/// The volume label when `cd_label` is not set (Packer's).
pub const DEFAULT_LABEL: &str = "packer";

#[derive(Debug, thiserror::Error)]
pub enum CdError {
    #[error("cd_files: {pattern:?} matches nothing (relative paths are read from {base})")]
    NoMatch { pattern: String, base: String },
    #[error("cd_content: {0:?} must be a relative path inside the CD, without `..`")]
    BadContentPath(String),
    #[error("cd_files: {name:?} is given twice (from {first} and {second})")]
    Duplicate {
        name: String,
        first: String,
        second: String,
    },
    #[error("cannot {what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "xorriso was not found: it makes the cd_files image; install it (Debian/Ubuntu: \
         `apt-get install xorriso`, Fedora: `dnf install xorriso`)"
    )]
    NoXorriso,
    #[error("xorriso failed ({status}): {stderr}")]
    Xorriso { status: String, stderr: String },
    #[error(
        "cd_files: {0:?} names no file or directory of its own (`..`, `/`); list what goes on the CD"
    )]
    NoName(String),
    #[error("cd_files: {} is reached again through a symlink (a loop)", .0.display())]
    Loop(PathBuf),
    #[error("interrupted")]
    Cancelled,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CdError + 'a {
    move |source| CdError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// What goes on the CD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CdSpec {
    pub files: Vec<String>,
    pub content: BTreeMap<String, String>,
    pub label: Option<String>,
}

impl CdSpec {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.content.is_empty()
    }
}

/// Copies what `spec` lists into the empty directory `stage`, reading
/// relative `cd_files` paths from `base`; stops when `cancel` fires.
pub fn stage(
    spec: &CdSpec,
    base: &Path,
    stage: &Path,
    cancel: &CancellationToken,
) -> Result<(), CdError> {
    let mut placed: BTreeMap<String, String> = BTreeMap::new();
    let mut place = |name: String, from: String| -> Result<(), CdError> {
        if let Some(first) = placed.insert(name.clone(), from.clone()) {
            return Err(CdError::Duplicate {
                name,
                first,
                second: from,
            });
        }
        Ok(())
    };
    for pattern in &spec.files {
        for source in expand(pattern, base)? {
            let contents_only = pattern.ends_with('/');
            if source.is_dir() && contents_only {
                for entry in read_dir_sorted(&source)? {
                    let name = file_name(&entry)?;
                    place(name.clone(), entry.display().to_string())?;
                    copy_tree(&entry, &stage.join(name), &mut Vec::new(), cancel)?;
                }
            } else {
                let name = file_name(&source).map_err(|_| CdError::NoName(pattern.clone()))?;
                place(name.clone(), source.display().to_string())?;
                copy_tree(&source, &stage.join(name), &mut Vec::new(), cancel)?;
            }
        }
    }
    for (path, text) in &spec.content {
        let relative = Path::new(path);
        let clean = !path.is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !clean {
            return Err(CdError::BadContentPath(path.clone()));
        }
        let top = relative
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        if relative.components().count() == 1 {
            place(top, "cd_content".into())?;
        }
        let target = stage.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        std::fs::write(&target, text).map_err(io("write", &target))?;
    }
    Ok(())
}

/// The last component of `path`; `..` and `/` have none, and are refused
/// (joined to the staging folder, an absolute path would replace it).
fn file_name(path: &Path) -> Result<String, CdError> {
    sources::file_name(path).ok_or_else(|| CdError::NoName(path.display().to_string()))
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, CdError> {
    sources::read_dir_sorted(dir).map_err(io("read", dir))
}

/// The paths a `cd_files` entry stands for.
fn expand(pattern: &str, base: &Path) -> Result<Vec<PathBuf>, CdError> {
    sources::expand(pattern, base).map_err(|e| match e {
        ExpandError::NoMatch => CdError::NoMatch {
            pattern: pattern.to_owned(),
            base: base.display().to_string(),
        },
        ExpandError::NoName => CdError::NoName(pattern.to_owned()),
        ExpandError::Io(path, source) => CdError::Io {
            what: "read",
            path,
            source,
        },
    })
}

/// Copies a file, or a directory recursively. Symlinks are followed (the
/// CD holds what they point at); `ancestors` holds the directories being
/// copied, so a link back into one of them is an error, not a loop.
fn copy_tree(
    from: &Path,
    to: &Path,
    ancestors: &mut Vec<PathBuf>,
    cancel: &CancellationToken,
) -> Result<(), CdError> {
    if cancel.is_cancelled() {
        return Err(CdError::Cancelled);
    }
    if from.is_dir() {
        let real = std::fs::canonicalize(from).map_err(io("read", from))?;
        if ancestors.contains(&real) {
            return Err(CdError::Loop(from.to_owned()));
        }
        ancestors.push(real);
        std::fs::create_dir_all(to).map_err(io("create", to))?;
        for entry in read_dir_sorted(from)? {
            let name = file_name(&entry)?;
            copy_tree(&entry, &to.join(name), ancestors, cancel)?;
        }
        ancestors.pop();
        Ok(())
    } else {
        std::fs::copy(from, to).map_err(io("copy", from))?;
        Ok(())
    }
}

/// Makes `output` from the staged directory with `xorriso`, labelled
/// `label` (or [`DEFAULT_LABEL`]); killed if `cancel` fires.
pub fn make_iso(
    stage: &Path,
    label: Option<&str>,
    output: &Path,
    cancel: &CancellationToken,
) -> Result<(), CdError> {
    let mut cmd = Command::new("xorriso");
    cmd.args(["-as", "mkisofs", "-quiet", "-rock", "-joliet", "-volid"])
        .arg(label.unwrap_or(DEFAULT_LABEL))
        .arg("-output")
        .arg(output)
        .arg(stage)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CdError::NoXorriso,
        _ => CdError::Io {
            what: "run xorriso for",
            path: output.to_owned(),
            source: e,
        },
    })?;
    let status = loop {
        if cancel.is_cancelled() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CdError::Cancelled);
        }
        match child
            .try_wait()
            .map_err(io("wait for xorriso making", output))?
        {
            Some(status) => break status,
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    if !status.success() {
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
        }
        return Err(CdError::Xorriso {
            status: status.to_string(),
            stderr: stderr.trim().to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in read_dir_sorted(dir).expect("read") {
                let rel = e.strip_prefix(root).expect("inside").display().to_string();
                if e.is_dir() {
                    out.push(format!("{rel}/"));
                    walk(root, &e, out);
                } else {
                    out.push(rel);
                }
            }
        }
        walk(dir, dir, &mut out);
        out
    }

    /// What `spec` stages from `src`, as a sorted listing.
    fn staged(spec: &CdSpec, src: &Path) -> Vec<String> {
        let stage_dir = tempfile::tempdir().expect("tempdir");
        stage(spec, src, stage_dir.path(), &CancellationToken::new()).expect("stages");
        listing(stage_dir.path())
    }

    fn sources() -> tempfile::TempDir {
        let src = tempfile::tempdir().expect("tempdir");
        let p = src.path();
        std::fs::create_dir_all(p.join("http/sub")).expect("dirs");
        std::fs::write(p.join("meta-data"), "instance-id: kiln\n").expect("write");
        std::fs::write(p.join("user-data"), "#cloud-config\n").expect("write");
        std::fs::write(p.join("http/preseed.cfg"), "d-i x\n").expect("write");
        std::fs::write(p.join("http/sub/late.sh"), "true\n").expect("write");
        src
    }

    #[test]
    fn files_directories_globs_and_content_are_laid_out_like_packer() {
        let src = sources();
        let spec = CdSpec {
            files: vec!["*-data".into(), "http".into()],
            content: BTreeMap::from([("nested/dir/x.txt".into(), "x".into())]),
            label: None,
        };
        assert_eq!(
            staged(&spec, src.path()),
            [
                "http/",
                "http/preseed.cfg",
                "http/sub/",
                "http/sub/late.sh",
                "meta-data",
                "nested/",
                "nested/dir/",
                "nested/dir/x.txt",
                "user-data"
            ]
        );
        // A trailing slash copies the directory's contents.
        let spec = CdSpec {
            files: vec!["http/".into()],
            ..CdSpec::default()
        };
        assert_eq!(
            staged(&spec, src.path()),
            ["preseed.cfg", "sub/", "sub/late.sh"]
        );
    }

    #[test]
    fn mistakes_are_named() {
        let src = sources();
        let run = |spec: CdSpec| {
            let stage_dir = tempfile::tempdir().expect("tempdir");
            stage(
                &spec,
                src.path(),
                stage_dir.path(),
                &CancellationToken::new(),
            )
            .expect_err("refused")
            .to_string()
        };
        let err = run(CdSpec {
            files: vec!["*.iso".into()],
            ..CdSpec::default()
        });
        assert!(err.contains("\"*.iso\" matches nothing"), "{err}");
        let err = run(CdSpec {
            files: vec!["missing.cfg".into()],
            ..CdSpec::default()
        });
        assert!(err.contains("matches nothing"), "{err}");
        for bad in ["../escape", "/etc/passwd", "a/../../b", ""] {
            let err = run(CdSpec {
                content: BTreeMap::from([(bad.to_owned(), "x".to_owned())]),
                ..CdSpec::default()
            });
            assert!(err.contains("relative path inside the CD"), "{bad}: {err}");
        }
        let err = run(CdSpec {
            files: vec!["meta-data".into()],
            content: BTreeMap::from([("meta-data".to_owned(), "x".to_owned())]),
            ..CdSpec::default()
        });
        assert!(err.contains("given twice"), "{err}");
        // Nothing above or at the root: joined to the staging folder, such a
        // path would replace it and copy files onto themselves.
        for bad in ["..", "/", "http/..", "../.."] {
            let err = run(CdSpec {
                files: vec![bad.into()],
                ..CdSpec::default()
            });
            assert!(err.contains("names no file or directory"), "{bad}: {err}");
        }
        assert!(
            std::fs::read_to_string(src.path().join("user-data"))
                .is_ok_and(|t| t == "#cloud-config\n"),
            "the sources are untouched"
        );
        std::os::unix::fs::symlink("..", src.path().join("http/sub/up")).expect("symlink");
        let err = run(CdSpec {
            files: vec!["http".into()],
            ..CdSpec::default()
        });
        assert!(err.contains("a loop"), "{err}");
    }

    #[test]
    fn staging_stops_when_cancelled() {
        let src = sources();
        let stage_dir = tempfile::tempdir().expect("tempdir");
        let cancel = CancellationToken::new();
        cancel.cancel();
        let spec = CdSpec {
            files: vec!["http".into()],
            ..CdSpec::default()
        };
        let err = stage(&spec, src.path(), stage_dir.path(), &cancel).expect_err("cancelled");
        assert!(matches!(err, CdError::Cancelled), "{err}");
    }

    #[test]
    fn xorriso_makes_an_image_with_the_label_and_files() {
        let src = sources();
        let work = tempfile::tempdir().expect("tempdir");
        let stage_dir = work.path().join("stage");
        std::fs::create_dir(&stage_dir).expect("stage");
        let spec = CdSpec {
            files: vec!["meta-data".into(), "user-data".into()],
            content: BTreeMap::new(),
            label: Some("cidata".into()),
        };
        let cancel = CancellationToken::new();
        stage(&spec, src.path(), &stage_dir, &cancel).expect("stages");
        let iso = work.path().join("cd.iso");
        make_iso(&stage_dir, spec.label.as_deref(), &iso, &cancel).expect("xorriso");
        // Read it back with xorriso itself: the volume id and a file's bytes.
        let info = Command::new("xorriso")
            .args(["-indev"])
            .arg(&iso)
            .args(["-pvd_info"])
            .output()
            .expect("xorriso runs");
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(info.contains("Volume Id    : cidata"), "{info}");
        let out = work.path().join("out");
        let extract = Command::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(&iso)
            .args(["-extract", "/user-data"])
            .arg(&out)
            .output()
            .expect("xorriso runs");
        assert!(extract.status.success(), "{extract:?}");
        assert_eq!(
            std::fs::read_to_string(&out).expect("extracted"),
            "#cloud-config\n"
        );
        // Without cd_label, Packer's label.
        let unlabelled = work.path().join("unlabelled.iso");
        make_iso(&stage_dir, None, &unlabelled, &cancel).expect("xorriso");
        let info = Command::new("xorriso")
            .args(["-indev"])
            .arg(&unlabelled)
            .args(["-pvd_info"])
            .output()
            .expect("xorriso runs");
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(info.contains("Volume Id    : packer"), "{info}");
    }
}
