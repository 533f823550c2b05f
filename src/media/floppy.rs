//! `floppy_files` / `floppy_dirs` / `floppy_content` / `floppy_label`: a
//! 1.44 MB FAT12 floppy image, where old kickstart installs and Windows
//! unattended installs look for their answer file.
//!
//! Laid out as Packer lays it out: a `floppy_files` entry (a file, a
//! directory or a `*` pattern) puts every file it stands for at the root,
//! a directory's files included (flattened); a `floppy_dirs` entry keeps a
//! directory's tree under its name; `floppy_content` writes text at a path
//! and wins over a file at the same path. FAT names ignore case, so two
//! names that differ only in case are one name twice.
//!
//! The image is made in process with the `fatfs` crate (no mtools at run
//! time), every entry dated at FAT's epoch, so the same inputs make the
//! same bytes.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::path::{Component, Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::sources::{self, ExpandError};

/// The volume label when `floppy_label` is not set (Packer's).
pub const DEFAULT_LABEL: &str = "packer";

/// A 3½-inch high-density floppy: 80 tracks, 2 heads, 18 sectors of 512 bytes.
pub const IMAGE_BYTES: u64 = 2880 * 512;

const SECTOR: u64 = 512;
/// One sector per cluster, as on a formatted 1.44 MB floppy.
const CLUSTER: u64 = 512;
const ROOT_ENTRIES: u16 = 224;
/// What is left for files and subdirectories: all sectors but the boot
/// sector, two 9-sector FATs and the 14-sector root directory.
pub const DATA_BYTES: u64 = (2880 - 1 - 2 * 9 - 14) * SECTOR;

/// Characters FAT long names cannot hold (besides control characters).
const BAD_NAME_CHARS: &[char] = &['"', '*', '/', ':', '<', '>', '?', '\\', '|'];
/// Characters a FAT volume label cannot hold.
const BAD_LABEL_CHARS: &[char] = &[
    '"', '*', '+', ',', '.', '/', ':', ';', '<', '=', '>', '?', '[', '\\', ']', '|',
];

#[derive(Debug, thiserror::Error)]
pub enum FloppyError {
    #[error("{key}: {entry:?} matches nothing (relative paths are read from {base})")]
    NoMatch {
        key: &'static str,
        entry: String,
        base: String,
    },
    #[error("{key}: {0:?} names no file or directory of its own (`..`, `/`)", key = .1)]
    NoName(String, &'static str),
    #[error("floppy_content: {0:?} must be a relative path inside the floppy, without `..`")]
    BadContentPath(String),
    #[error(
        "{what}: {name:?} cannot be a FAT file name (it holds one of \" * / : < > ? \\ | or a control character)"
    )]
    BadName { what: String, name: String },
    #[error(
        "floppy: {file:?} is a file (from {from}) and also a directory for {other} (from {other_from})"
    )]
    FileAndDir {
        file: String,
        from: String,
        other: String,
        other_from: String,
    },
    #[error("floppy: {0} is listed twice (as {1:?})")]
    ListedTwice(String, String),
    #[error("floppy: {name:?} is given twice (from {first} and {second}); FAT names ignore case")]
    Duplicate {
        name: String,
        first: String,
        second: String,
    },
    #[error(
        "floppy: the files take {needed} bytes but a 1.44 MB floppy holds {DATA_BYTES}; \
         put the large files on a CD (cd_files) or serve them with http_directory"
    )]
    TooBig { needed: u64 },
    #[error(
        "floppy: {0} entries at the root, but a floppy's root directory holds {ROOT_ENTRIES}; put some in floppy_dirs directories"
    )]
    RootFull(usize),
    #[error("{} is reached again through a symlink (a loop)", .0.display())]
    Loop(PathBuf),
    #[error("cannot {what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {name} on the floppy")]
    Write {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("interrupted")]
    Cancelled,
}

impl FloppyError {
    /// The template key the error is about, when it is about one.
    pub fn key(&self) -> Option<&'static str> {
        match self {
            Self::NoMatch { key, .. } | Self::NoName(_, key) => Some(key),
            Self::BadContentPath(_) => Some("floppy_content"),
            Self::BadName { what, .. } if what == "floppy_content" => Some("floppy_content"),
            _ => None,
        }
    }
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FloppyError + 'a {
    move |source| FloppyError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// What goes on the floppy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FloppySpec {
    pub files: Vec<String>,
    pub dirs: Vec<String>,
    pub content: BTreeMap<String, String>,
    pub label: Option<String>,
}

impl FloppySpec {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dirs.is_empty() && self.content.is_empty()
    }

    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(DEFAULT_LABEL)
    }
}

/// Where a file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    File(PathBuf),
    Text(String),
}

/// One file on the floppy: its `/`-separated path and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    path: String,
    source: Source,
    /// Where it was listed, for messages.
    from: String,
}

/// Why a `floppy_label` cannot be a FAT label, if it cannot.
pub fn label_problem(label: &str) -> Option<String> {
    if label.len() > 11 {
        return Some(format!(
            "{label:?} is {} bytes long; a FAT label holds at most 11",
            label.len()
        ));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !c.is_ascii() || c.is_ascii_control() || BAD_LABEL_CHARS.contains(c))
    {
        return Some(format!(
            "{label:?} holds {c:?}; a FAT label is ASCII letters, digits, spaces and - _ ! # $ % & ' ( ) @ ^ ` {{ }} ~"
        ));
    }
    None
}

/// Whether `path` is a clean relative path (`a/b.txt`), as
/// `floppy_content` keys must be.
pub fn is_clean_content_path(path: &str) -> bool {
    !path.split('/').any(str::is_empty)
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

fn check_name(what: &str, name: &str) -> Result<(), FloppyError> {
    if name
        .chars()
        .any(|c| c.is_control() || BAD_NAME_CHARS.contains(&c))
    {
        return Err(FloppyError::BadName {
            what: what.to_owned(),
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// The entries `spec` stands for, reading relative paths from `base`.
pub fn plan(
    spec: &FloppySpec,
    base: &Path,
    cancel: &CancellationToken,
) -> Result<Vec<Entry>, FloppyError> {
    let mut entries: Vec<Entry> = Vec::new();
    for listed in &spec.files {
        for source in expand("floppy_files", listed, base)? {
            let mut files = Vec::new();
            walk(&source, "", &mut files, &mut Vec::new(), cancel)?;
            for (relative, path) in files {
                // Flattened: only the file's own name is kept.
                let name = relative.rsplit('/').next().unwrap_or(&relative).to_owned();
                add(
                    &mut entries,
                    Entry {
                        path: name,
                        from: path.display().to_string(),
                        source: Source::File(path),
                    },
                )?;
            }
        }
    }
    for listed in &spec.dirs {
        for source in expand("floppy_dirs", listed, base)? {
            let name = sources::file_name(&source)
                .ok_or_else(|| FloppyError::NoName(listed.clone(), "floppy_dirs"))?;
            let mut files = Vec::new();
            walk(&source, &name, &mut files, &mut Vec::new(), cancel)?;
            for (relative, path) in files {
                add(
                    &mut entries,
                    Entry {
                        path: relative,
                        from: path.display().to_string(),
                        source: Source::File(path),
                    },
                )?;
            }
        }
    }
    for (path, text) in &spec.content {
        if !is_clean_content_path(path) {
            return Err(FloppyError::BadContentPath(path.clone()));
        }
        for part in path.split('/') {
            check_name("floppy_content", part)?;
        }
        // Packer: floppy_content wins over a listed file at the same path.
        let key = path.to_lowercase();
        entries.retain(|e| e.path.to_lowercase() != key);
        add(
            &mut entries,
            Entry {
                path: path.clone(),
                source: Source::Text(text.clone()),
                from: "floppy_content".into(),
            },
        )?;
    }
    Ok(entries)
}

/// Adds `entry`, unless its name (case ignored, as FAT does) is taken.
fn add(entries: &mut Vec<Entry>, entry: Entry) -> Result<(), FloppyError> {
    let key = entry.path.to_lowercase();
    if let Some(first) = entries.iter().find(|e| e.path.to_lowercase() == key) {
        if first.from == entry.from {
            return Err(FloppyError::ListedTwice(entry.from, entry.path));
        }
        return Err(FloppyError::Duplicate {
            name: entry.path,
            first: first.from.clone(),
            second: entry.from,
        });
    }
    let inside = |dir: &str, path: &str| path.starts_with(&format!("{dir}/"));
    if let Some(clash) = entries.iter().find(|e| {
        let other = e.path.to_lowercase();
        inside(&other, &key) || inside(&key, &other)
    }) {
        let (file, other) = if inside(&clash.path.to_lowercase(), &key) {
            (clash, &entry)
        } else {
            (&entry, clash)
        };
        return Err(FloppyError::FileAndDir {
            file: file.path.clone(),
            from: file.from.clone(),
            other: other.path.clone(),
            other_from: other.from.clone(),
        });
    }
    entries.push(entry);
    Ok(())
}

fn expand(key: &'static str, listed: &str, base: &Path) -> Result<Vec<PathBuf>, FloppyError> {
    sources::expand(listed, base).map_err(|e| match e {
        ExpandError::NoMatch => FloppyError::NoMatch {
            key,
            entry: listed.to_owned(),
            base: base.display().to_string(),
        },
        ExpandError::NoName => FloppyError::NoName(listed.to_owned(), key),
        ExpandError::Io(path, source) => FloppyError::Io {
            what: "read",
            path,
            source,
        },
    })
}

/// Every file under `path` (or `path` itself) as (path on the floppy
/// under `prefix`, path on the host). Symlinks are followed; `ancestors`
/// holds the directories being walked, so a link back is an error.
fn walk(
    path: &Path,
    prefix: &str,
    out: &mut Vec<(String, PathBuf)>,
    ancestors: &mut Vec<PathBuf>,
    cancel: &CancellationToken,
) -> Result<(), FloppyError> {
    if cancel.is_cancelled() {
        return Err(FloppyError::Cancelled);
    }
    let join = |name: &str| {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        }
    };
    if !path.is_dir() {
        let name = sources::file_name(path).unwrap_or_default();
        check_name(&path.display().to_string(), &name)?;
        let relative = if prefix.is_empty() {
            name
        } else {
            prefix.to_owned()
        };
        out.push((relative, path.to_owned()));
        return Ok(());
    }
    let real = std::fs::canonicalize(path).map_err(io("read", path))?;
    if ancestors.contains(&real) {
        return Err(FloppyError::Loop(path.to_owned()));
    }
    ancestors.push(real);
    for child in sources::read_dir_sorted(path).map_err(io("read", path))? {
        let name = sources::file_name(&child).unwrap_or_default();
        check_name(&child.display().to_string(), &name)?;
        if child.is_dir() {
            walk(&child, &join(&name), out, ancestors, cancel)?;
        } else {
            out.push((join(&name), child));
        }
    }
    ancestors.pop();
    Ok(())
}

/// The bytes the entries take on the floppy: whole clusters for each file
/// and each directory (a directory of up to 16 entries fits one cluster).
pub fn space_needed(entries: &[Entry]) -> Result<u64, FloppyError> {
    let mut dirs: BTreeMap<String, u64> = BTreeMap::new();
    let mut bytes = 0;
    for e in entries {
        let size = match &e.source {
            Source::Text(t) => t.len() as u64,
            Source::File(p) => std::fs::metadata(p).map_err(io("read", p))?.len(),
        };
        bytes += size.div_ceil(CLUSTER) * CLUSTER;
        // Each directory on the way holds one more entry (a name of up to
        // 13 characters takes 2 of its 32-byte slots; count 3 to be safe).
        let mut parent = String::new();
        for part in e
            .path
            .split('/')
            .rev()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            parent = if parent.is_empty() {
                part.to_owned()
            } else {
                format!("{parent}/{part}")
            };
            *dirs.entry(parent.clone()).or_default() += 3;
        }
    }
    for slots in dirs.values() {
        // `.` and `..` too.
        bytes += ((slots + 2) * 32).div_ceil(CLUSTER) * CLUSTER;
    }
    Ok(bytes)
}

/// Makes the floppy image at `output` (a new file) holding `entries`,
/// labelled `label`; stops when `cancel` fires.
pub fn make_image(
    entries: &[Entry],
    label: &str,
    output: &Path,
    cancel: &CancellationToken,
) -> Result<(), FloppyError> {
    let needed = space_needed(entries)?;
    if needed > DATA_BYTES {
        return Err(FloppyError::TooBig { needed });
    }
    let mut root_names: Vec<String> = entries
        .iter()
        .map(|e| e.path.split('/').next().unwrap_or_default().to_lowercase())
        .collect();
    root_names.sort();
    root_names.dedup();
    // A long name takes up to 3 slots of the root's 224 (2 of its name, 1 short).
    // One more for the volume label.
    if root_names.len() * 3 + 1 > usize::from(ROOT_ENTRIES) {
        return Err(FloppyError::RootFull(root_names.len()));
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(output)
        .map_err(io("create", output))?;
    file.set_len(IMAGE_BYTES).map_err(io("size", output))?;
    format(&mut file, label).map_err(io("format", output))?;
    file.rewind().map_err(io("read", output))?;
    let fs = fatfs::FileSystem::new(&mut file, fatfs::FsOptions::new())
        .map_err(io("open the FAT file system of", output))?;
    {
        let root = fs.root_dir();
        for e in entries {
            if cancel.is_cancelled() {
                return Err(FloppyError::Cancelled);
            }
            write_entry(&root, e).map_err(|source| FloppyError::Write {
                name: e.path.clone(),
                source,
            })?;
        }
    }
    fs.unmount().map_err(io("finish", output))?;
    write_root_label(&mut file, label).map_err(io("label", output))?;
    file.sync_all().map_err(io("write", output))?;
    Ok(())
}

/// Byte offset of the root directory: after the boot sector and two FATs.
const ROOT_DIR_OFFSET: u64 = (1 + 2 * 9) * SECTOR;

/// The label again as a volume-label entry in the root directory, as
/// mkfs.fat writes it: blkid and Windows read the label from there first,
/// the boot sector only when there is none. `fatfs` writes only the boot
/// sector's copy.
fn write_root_label(file: &mut std::fs::File, label: &str) -> std::io::Result<()> {
    let mut root = vec![0u8; usize::from(ROOT_ENTRIES) * 32];
    file.seek(std::io::SeekFrom::Start(ROOT_DIR_OFFSET))?;
    file.read_exact(&mut root)?;
    // The first never-used slot (0x00 also ends the listing; the next slot
    // is never-used too, so the listing still ends after the label).
    let Some(slot) = root.chunks(32).position(|entry| entry[0] == 0) else {
        return Err(std::io::Error::other("the root directory is full"));
    };
    let mut entry = [0u8; 32];
    entry[..11].fill(b' ');
    for (byte, c) in entry.iter_mut().zip(label.bytes()) {
        *byte = c;
    }
    entry[11] = 0x08; // ATTR_VOLUME_ID
    file.seek(std::io::SeekFrom::Start(ROOT_DIR_OFFSET + slot as u64 * 32))?;
    file.write_all(&entry)
}

/// A standard 1.44 MB layout, so every floppy driver and BIOS reads it.
fn format(file: &mut std::fs::File, label: &str) -> std::io::Result<()> {
    let mut padded = [b' '; 11];
    for (slot, byte) in padded.iter_mut().zip(label.bytes()) {
        *slot = byte;
    }
    let options = fatfs::FormatVolumeOptions::new()
        .fat_type(fatfs::FatType::Fat12)
        .bytes_per_sector(SECTOR as u16)
        .total_sectors(2880)
        .bytes_per_cluster(CLUSTER as u32)
        .max_root_dir_entries(ROOT_ENTRIES)
        .fats(2)
        .media(0xF0)
        .sectors_per_track(18)
        .heads(2)
        .drive_num(0)
        // A fixed serial number: the same inputs make the same image.
        .volume_id(crc32fast::hash(label.as_bytes()))
        .volume_label(padded);
    fatfs::format_volume(file, options)
}

fn write_entry<T: Read + Write + Seek>(root: &fatfs::Dir<'_, T>, e: &Entry) -> std::io::Result<()> {
    let (dir, name) = match e.path.rsplit_once('/') {
        Some((parent, name)) => {
            let mut dir = root.clone();
            for part in parent.split('/') {
                dir = dir.create_dir(part)?;
            }
            (dir, name)
        }
        None => (root.clone(), e.path.as_str()),
    };
    let mut out = dir.create_file(name)?;
    out.truncate()?;
    match &e.source {
        Source::Text(text) => out.write_all(text.as_bytes())?,
        Source::File(path) => {
            let mut input = std::fs::File::open(path)?;
            std::io::copy(&mut input, &mut out)?;
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> tempfile::TempDir {
        let src = tempfile::tempdir().expect("tempdir");
        let p = src.path();
        std::fs::create_dir_all(p.join("drivers/net")).expect("dirs");
        std::fs::write(p.join("Autounattend.xml"), "<unattend/>\n").expect("write");
        std::fs::write(p.join("ks.cfg"), "text\n").expect("write");
        std::fs::write(p.join("drivers/setup.inf"), "[x]\n").expect("write");
        std::fs::write(p.join("drivers/net/e1000.sys"), "MZ").expect("write");
        src
    }

    fn paths(spec: &FloppySpec, base: &Path) -> Result<Vec<String>, FloppyError> {
        let mut p: Vec<String> = plan(spec, base, &CancellationToken::new())?
            .into_iter()
            .map(|e| e.path)
            .collect();
        p.sort();
        Ok(p)
    }

    #[test]
    fn files_are_flattened_dirs_keep_their_tree_and_content_wins() {
        let src = sources();
        let spec = FloppySpec {
            files: vec!["*.xml".into(), "drivers".into()],
            ..FloppySpec::default()
        };
        assert_eq!(
            paths(&spec, src.path()).expect("plan"),
            ["Autounattend.xml", "e1000.sys", "setup.inf"]
        );
        let spec = FloppySpec {
            files: vec!["ks.cfg".into()],
            dirs: vec!["drivers".into()],
            content: BTreeMap::from([
                ("KS.CFG".into(), "from content".into()),
                ("a/b/c.txt".into(), "x".into()),
            ]),
            label: None,
        };
        let planned = plan(&spec, src.path(), &CancellationToken::new()).expect("plan");
        let mut names: Vec<&str> = planned.iter().map(|e| e.path.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "KS.CFG",
                "a/b/c.txt",
                "drivers/net/e1000.sys",
                "drivers/setup.inf"
            ]
        );
        assert!(
            planned
                .iter()
                .any(|e| e.source == Source::Text("from content".into())),
            "floppy_content replaces ks.cfg"
        );
    }

    #[test]
    fn mistakes_are_named() {
        let src = sources();
        let err = |spec: FloppySpec| {
            plan(&spec, src.path(), &CancellationToken::new())
                .expect_err("refused")
                .to_string()
        };
        let e = err(FloppySpec {
            files: vec!["missing.xml".into()],
            ..FloppySpec::default()
        });
        assert!(
            e.contains("floppy_files: \"missing.xml\" matches nothing"),
            "{e}"
        );
        let e = err(FloppySpec {
            dirs: vec!["nope*".into()],
            ..FloppySpec::default()
        });
        assert!(e.contains("floppy_dirs: \"nope*\" matches nothing"), "{e}");
        // setup.inf twice: from the flattened directory and on its own.
        let e = err(FloppySpec {
            files: vec!["drivers".into(), "drivers/setup.inf".into()],
            ..FloppySpec::default()
        });
        assert!(
            e.contains("drivers/setup.inf is listed twice (as \"setup.inf\")"),
            "{e}"
        );
        let e = err(FloppySpec {
            files: vec!["ks.cfg".into()],
            content: BTreeMap::from([("KS.CFG/x".to_owned(), "x".to_owned())]),
            ..FloppySpec::default()
        });
        assert!(
            e.contains("\"ks.cfg\" is a file (from") && e.contains("a directory for KS.CFG/x"),
            "{e}"
        );
        for bad in [
            "../x",
            "/etc/passwd",
            "",
            "a/../../b",
            "a//b",
            "dir/",
            "./x",
        ] {
            let e = err(FloppySpec {
                content: BTreeMap::from([(bad.to_owned(), "x".to_owned())]),
                ..FloppySpec::default()
            });
            assert!(e.contains("relative path inside the floppy"), "{bad}: {e}");
        }
        let e = err(FloppySpec {
            content: BTreeMap::from([("a:b".to_owned(), "x".to_owned())]),
            ..FloppySpec::default()
        });
        assert!(e.contains("cannot be a FAT file name"), "{e}");
        std::os::unix::fs::symlink("..", src.path().join("drivers/net/up")).expect("symlink");
        let e = err(FloppySpec {
            dirs: vec!["drivers".into()],
            ..FloppySpec::default()
        });
        assert!(e.contains("a loop"), "{e}");
    }

    #[test]
    fn labels_are_checked() {
        assert_eq!(label_problem("cidata"), None);
        assert_eq!(label_problem("OEMDRV"), None);
        assert!(label_problem("twelve-chars").is_some_and(|p| p.contains("at most 11")));
        assert!(label_problem("a.b").is_some_and(|p| p.contains("'.'")));
    }

    /// Reads the image back with the same crate: label, names, bytes.
    fn read_back(image: &Path) -> (String, BTreeMap<String, String>) {
        let file = std::fs::File::open(image).expect("image");
        let fs = fatfs::FileSystem::new(file, fatfs::FsOptions::new()).expect("a FAT image");
        assert_eq!(fs.fat_type(), fatfs::FatType::Fat12);
        let mut files = BTreeMap::new();
        fn walk<T: Read + Write + Seek>(
            dir: &fatfs::Dir<'_, T>,
            prefix: &str,
            files: &mut BTreeMap<String, String>,
        ) {
            for e in dir.iter() {
                let e = e.expect("entry");
                let name = e.file_name();
                if name == "." || name == ".." {
                    continue;
                }
                let path = format!("{prefix}{name}");
                if e.is_dir() {
                    walk(&e.to_dir(), &format!("{path}/"), files);
                } else {
                    let mut text = String::new();
                    e.to_file().read_to_string(&mut text).expect("read");
                    files.insert(path, text);
                }
            }
        }
        walk(&fs.root_dir(), "", &mut files);
        let root_label = fs
            .read_volume_label_from_root_dir()
            .expect("root directory")
            .expect("a volume-label entry");
        assert_eq!(root_label, fs.volume_label(), "both copies of the label");
        (fs.volume_label(), files)
    }

    #[test]
    fn the_image_is_a_144_mb_fat12_floppy_with_the_files_and_label() {
        let src = sources();
        let work = tempfile::tempdir().expect("tempdir");
        let spec = FloppySpec {
            files: vec!["Autounattend.xml".into()],
            dirs: vec!["drivers".into()],
            content: BTreeMap::from([("scripts/first-logon.cmd".into(), "echo hi\r\n".into())]),
            label: Some("cidata".into()),
        };
        let cancel = CancellationToken::new();
        let entries = plan(&spec, src.path(), &cancel).expect("plan");
        let image = work.path().join("floppy.img");
        make_image(&entries, spec.label(), &image, &cancel).expect("image");
        assert_eq!(std::fs::metadata(&image).expect("image").len(), 1_474_560);
        let (label, files) = read_back(&image);
        assert_eq!(label, "cidata");
        assert_eq!(
            files,
            BTreeMap::from([
                ("Autounattend.xml".to_owned(), "<unattend/>\n".to_owned()),
                ("drivers/net/e1000.sys".to_owned(), "MZ".to_owned()),
                ("drivers/setup.inf".to_owned(), "[x]\n".to_owned()),
                (
                    "scripts/first-logon.cmd".to_owned(),
                    "echo hi\r\n".to_owned()
                ),
            ])
        );
        // The same inputs make the same bytes.
        let again = work.path().join("again.img");
        make_image(&entries, spec.label(), &again, &cancel).expect("image");
        assert_eq!(
            std::fs::read(&image).expect("read"),
            std::fs::read(&again).expect("read")
        );
        // Packer's default label.
        let plain = work.path().join("plain.img");
        make_image(&entries, FloppySpec::default().label(), &plain, &cancel).expect("image");
        assert_eq!(read_back(&plain).0, "packer");
    }

    #[test]
    fn content_that_does_not_fit_is_refused_with_its_size() {
        let work = tempfile::tempdir().expect("tempdir");
        let spec = FloppySpec {
            content: BTreeMap::from([
                ("a.bin".into(), "x".repeat(1_000_000)),
                ("b.bin".into(), "y".repeat(500_000)),
            ]),
            ..FloppySpec::default()
        };
        let cancel = CancellationToken::new();
        let entries = plan(&spec, work.path(), &cancel).expect("plan");
        let image = work.path().join("floppy.img");
        let e = make_image(&entries, spec.label(), &image, &cancel)
            .expect_err("too big")
            .to_string();
        assert!(
            e.contains("take 1500672 bytes") && e.contains("holds 1457664"),
            "{e}"
        );
        assert!(!image.exists(), "nothing is left behind");
        // Exactly full still fits.
        let spec = FloppySpec {
            content: BTreeMap::from([("full.bin".into(), "z".repeat(DATA_BYTES as usize))]),
            ..FloppySpec::default()
        };
        let entries = plan(&spec, work.path(), &cancel).expect("plan");
        make_image(&entries, spec.label(), &image, &cancel).expect("a full floppy");
        assert_eq!(read_back(&image).1["full.bin"].len(), DATA_BYTES as usize);
    }

    #[test]
    fn making_stops_when_cancelled() {
        let src = sources();
        let cancel = CancellationToken::new();
        cancel.cancel();
        let spec = FloppySpec {
            dirs: vec!["drivers".into()],
            ..FloppySpec::default()
        };
        let e = plan(&spec, src.path(), &cancel).expect_err("cancelled");
        assert!(matches!(e, FloppyError::Cancelled), "{e}");
    }
}
