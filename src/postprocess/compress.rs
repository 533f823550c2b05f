//! `compress`: the artifact's files into one file, the format chosen by the
//! output's extension as in Packer (`format` overrides it): `.tar`,
//! `.tar.gz`/`.tgz`, `.tar.zst`, `.tar.xz`, or a single file as `.gz`,
//! `.zst`, `.xz`. Several files need an archive (`.tar…`), as in Packer.
//! gzip is parallel ([`super::pgzip`]); `.zip`, `.lz4` and `.bgzf` are not
//! supported yet. Output appears only complete: it is written under a
//! temporary name beside the final one and renamed.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use super::checksum::Hasher;
use super::pgzip::ParallelGzWriter;
use super::{PostProcessContext, PostProcessError, StepOutput, WatchedReader, blocking};
use crate::artifact::Artifact;
use crate::artifact::ovf::ExpectedDigest;
use crate::config::post_processor::CompressConfig;

pub const BUILDER_ID: &str = crate::artifact::ids::COMPRESS;

/// Packer's default level for gzip and friends.
pub const DEFAULT_LEVEL: u32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Zstd,
    Xz,
}

/// An output format: a codec, over a tar archive or a single file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub tar: bool,
    pub codec: Codec,
}

impl Format {
    /// The format for an output name or a `format` value (`tar.gz`, `zst`, …).
    pub fn detect(name: &str) -> Result<Self, PostProcessError> {
        let lower = name.to_ascii_lowercase();
        let lower = lower.trim_start_matches('.');
        let ends = |ext: &str| lower == ext || lower.ends_with(&format!(".{ext}"));
        let (tar, codec) = if ends("tar.gz") || ends("tgz") || ends("box") {
            (true, Codec::Gzip)
        } else if ends("tar.zst") || ends("tzst") {
            (true, Codec::Zstd)
        } else if ends("tar.xz") || ends("txz") {
            (true, Codec::Xz)
        } else if ends("tar") {
            (true, Codec::None)
        } else if ends("gz") {
            (false, Codec::Gzip)
        } else if ends("zst") {
            (false, Codec::Zstd)
        } else if ends("xz") {
            (false, Codec::Xz)
        } else if ends("zip") || ends("lz4") || ends("bgzf") {
            return Err(PostProcessError::Unsupported(format!(
                "output {name}: zip, lz4 and bgzf are not supported by kiln yet; use .tar.gz, .tar.zst or .tar.xz"
            )));
        } else {
            return Err(PostProcessError::Unsupported(format!(
                "output {name}: cannot tell the format from the extension; use .tar, .tar.gz, .tgz, .tar.zst, .tar.xz, .gz, .zst or .xz"
            )));
        };
        Ok(Self { tar, codec })
    }
}

/// What goes into an archive: a file on disk, bytes made here, or members
/// of a tar archive (an OVA) streamed out of it without unpacking it.
pub enum Entry {
    File {
        name: String,
        path: PathBuf,
    },
    Bytes {
        name: String,
        data: Vec<u8>,
    },
    /// Written in the order they come in `archive`.
    Members {
        archive: PathBuf,
        members: Vec<Member>,
    },
}

/// A member of a source archive to copy, as a listing of the archive found
/// it; it must still be so when it is copied.
pub struct Member {
    /// Its name in the source archive.
    pub source: String,
    /// Its name in the output.
    pub name: String,
    /// The size its header states.
    pub size: u64,
    pub digest: Option<ExpectedDigest>,
}

impl Entry {
    fn size(&self) -> u64 {
        match self {
            Self::File { path, .. } => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            Self::Bytes { data, .. } => data.len() as u64,
            Self::Members { members, .. } => members.iter().map(|m| m.size).sum(),
        }
    }

    /// How many files it puts in the output.
    fn count(&self) -> usize {
        match self {
            Self::File { .. } | Self::Bytes { .. } => 1,
            Self::Members { members, .. } => members.len(),
        }
    }
}

enum Encoder {
    Plain(BufWriter<std::fs::File>),
    Gzip(ParallelGzWriter<BufWriter<std::fs::File>>),
    Zstd(zstd::Encoder<'static, BufWriter<std::fs::File>>),
    Xz(liblzma::write::XzEncoder<BufWriter<std::fs::File>>),
}

impl Encoder {
    fn new(
        codec: Codec,
        file: std::fs::File,
        level: u32,
        cancel: &CancellationToken,
    ) -> io::Result<Self> {
        let out = BufWriter::with_capacity(1 << 20, file);
        Ok(match codec {
            Codec::None => Self::Plain(out),
            Codec::Gzip => {
                Self::Gzip(ParallelGzWriter::new(out, level, 0).with_cancel(cancel.clone()))
            }
            Codec::Zstd => Self::Zstd(zstd::Encoder::new(out, level.clamp(1, 19) as i32)?),
            Codec::Xz => Self::Xz(liblzma::write::XzEncoder::new(out, level.min(9))),
        })
    }

    fn finish(self) -> io::Result<std::fs::File> {
        let out = match self {
            Self::Plain(w) => w,
            Self::Gzip(w) => w.finish()?,
            Self::Zstd(w) => w.finish()?,
            Self::Xz(w) => w.finish()?,
        };
        out.into_inner().map_err(io::IntoInnerError::into_error)
    }
}

impl Write for Encoder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(w) => w.write(buf),
            Self::Gzip(w) => w.write(buf),
            Self::Zstd(w) => w.write(buf),
            Self::Xz(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(w) => w.flush(),
            Self::Gzip(w) => w.flush(),
            Self::Zstd(w) => w.flush(),
            Self::Xz(w) => w.flush(),
        }
    }
}

/// Writes `entries` to `output` in `format`, under a temporary name in the
/// same directory renamed when complete. On any failure or cancellation
/// the temporary file is removed and nothing is left at `output`.
#[allow(clippy::too_many_arguments)]
pub fn pack(
    entries: &[Entry],
    output: &Path,
    format: Format,
    level: u32,
    mtime: SystemTime,
    cancel: &CancellationToken,
    progress: &Arc<dyn crate::ui::Progress>,
) -> Result<(), PostProcessError> {
    let files: usize = entries.iter().map(Entry::count).sum();
    if !format.tar && files != 1 {
        return Err(PostProcessError::Unsupported(format!(
            "output {}: can only compress 1 file without an archive format (.tar…), found {files}",
            output.display(),
        )));
    }
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(PostProcessError::io("cannot create", &dir))?;
    let base = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{base}."))
        .suffix(".part")
        .tempfile_in(&dir)
        .map_err(PostProcessError::io(
            "cannot create a temporary file in",
            &dir,
        ))?;
    let file = tmp
        .as_file()
        .try_clone()
        .map_err(PostProcessError::io("cannot write", tmp.path()))?;
    let fail = super::io_or_cancel(cancel, "cannot write", output);
    let written = write_entries(entries, file, format, level, mtime, cancel, progress);
    match written {
        Ok(file) => file.sync_all().map_err(fail)?,
        // `tmp` is dropped here, which removes the partial file.
        Err(WriteError::Io(e)) => return Err(fail(e)),
        Err(WriteError::Member(e)) => return Err(e),
    }
    if cancel.is_cancelled() {
        return Err(PostProcessError::Cancelled);
    }
    // Temporary files are created 0600; the result is an ordinary file.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644)).map_err(
            PostProcessError::io("cannot set permissions on", tmp.path()),
        )?;
    }
    tmp.persist(output).map_err(|e| PostProcessError::Io {
        what: "cannot rename the finished file to",
        path: output.to_owned(),
        source: e.error,
    })?;
    Ok(())
}

/// Why writing stopped: the output or an input failed, or a member of a
/// source archive is not what its listing said (corrupt, truncated, gone).
enum WriteError {
    Io(io::Error),
    Member(PostProcessError),
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

#[allow(clippy::too_many_arguments)]
fn write_entries(
    entries: &[Entry],
    file: std::fs::File,
    format: Format,
    level: u32,
    mtime: SystemTime,
    cancel: &CancellationToken,
    progress: &Arc<dyn crate::ui::Progress>,
) -> Result<std::fs::File, WriteError> {
    let mut encoder = Encoder::new(format.codec, file, level, cancel)?;
    let mut done = 0u64;
    if format.tar {
        let mut tar = tar::Builder::new(encoder);
        tar.mode(tar::HeaderMode::Deterministic);
        let regular = |size: u64, mtime: u64| {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(size);
            header.set_mtime(mtime);
            header
        };
        for entry in entries {
            match entry {
                Entry::File { name, path } => {
                    let f = open_input(path)?;
                    let meta = f.metadata()?;
                    let modified = unix_seconds(meta.modified().unwrap_or(mtime));
                    let mut reader = watched(f, done, cancel, progress);
                    tar.append_data(&mut regular(meta.len(), modified), name, &mut reader)?;
                    done += reader.position;
                }
                Entry::Bytes { name, data } => {
                    let mut header = regular(data.len() as u64, unix_seconds(mtime));
                    tar.append_data(&mut header, name, &data[..])?;
                }
                Entry::Members { archive, members } => {
                    copy_members(archive, members, &mut done, cancel, progress, |m, t, r| {
                        tar.append_data(&mut regular(m.size, t), &m.name, r)
                    })?;
                }
            }
        }
        encoder = tar.into_inner()?;
    } else if let Some(entry) = entries.first() {
        match entry {
            Entry::File { path, .. } => {
                let mut reader = watched(open_input(path)?, done, cancel, progress);
                io::copy(&mut reader, &mut encoder)?;
            }
            Entry::Bytes { data, .. } => encoder.write_all(data)?,
            Entry::Members { archive, members } => {
                copy_members(archive, members, &mut done, cancel, progress, |_, _, r| {
                    io::copy(r, &mut encoder).map(drop)
                })?;
            }
        }
    }
    Ok(encoder.finish()?)
}

/// An input file, opened: an error names it (a vagrant `include` the build
/// did not make), not the output being written.
fn open_input(path: &Path) -> Result<std::fs::File, WriteError> {
    std::fs::File::open(path)
        .map_err(|e| WriteError::Member(PostProcessError::io("cannot read", path)(e)))
}

/// `reader`, reporting progress after the `done` bytes before it and
/// failing once the build is cancelled.
fn watched<R>(
    reader: R,
    done: u64,
    cancel: &CancellationToken,
    progress: &Arc<dyn crate::ui::Progress>,
) -> WatchedReader<R> {
    WatchedReader {
        inner: reader,
        cancel: cancel.clone(),
        progress: Arc::new(super::checksum::Offset {
            base: done,
            inner: progress.clone(),
        }),
        position: 0,
    }
}

/// Streams `members` out of the tar archive at `archive`, in its order,
/// each through `write` (given the member, its mtime and its bytes), and
/// checks that each had the size and digest its listing promised. Other
/// members are skipped.
fn copy_members(
    archive: &Path,
    members: &[Member],
    done: &mut u64,
    cancel: &CancellationToken,
    progress: &Arc<dyn crate::ui::Progress>,
    mut write: impl FnMut(&Member, u64, &mut dyn io::Read) -> io::Result<()>,
) -> Result<(), WriteError> {
    let changed = |problem: String| {
        WriteError::Member(PostProcessError::BadArchive {
            archive: archive.to_owned(),
            problem,
        })
    };
    let source = std::fs::File::open(archive)?;
    let mut source = tar::Archive::new(io::BufReader::with_capacity(1 << 20, source));
    let mut copied = 0;
    for entry in source.entries()? {
        let entry = entry?;
        let path = entry.path_bytes();
        let Some(member) = members.iter().find(|m| m.source.as_bytes() == &*path) else {
            continue;
        };
        let mtime = entry.header().mtime().unwrap_or(0);
        let hasher = member.digest.as_ref().map(ExpectedDigest::hasher);
        let mut reader = watched(
            Hashing {
                inner: entry,
                hasher,
            },
            *done,
            cancel,
            progress,
        );
        write(member, mtime, &mut reader)?;
        *done += reader.position;
        if reader.position != member.size {
            return Err(changed(format!(
                "`{}` holds {} bytes, not the {} its header stated: the archive changed while it was read",
                member.source, reader.position, member.size
            )));
        }
        if let (Some(digest), Some(hasher)) = (&member.digest, reader.inner.hasher) {
            digest
                .verify(hasher, archive, &member.source)
                .map_err(|mismatch| WriteError::Member(PostProcessError::Corrupt(mismatch)))?;
        }
        copied += 1;
    }
    if copied != members.len() {
        return Err(changed(format!(
            "{} of its members are gone: the archive changed while it was read",
            members.len() - copied
        )));
    }
    Ok(())
}

/// Feeds what passes through to a hasher, when there is one.
struct Hashing<R> {
    inner: R,
    hasher: Option<Hasher>,
}

impl<R: io::Read> io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Total bytes of the entries, for the progress display.
pub fn total_size(entries: &[Entry]) -> u64 {
    entries.iter().map(Entry::size).sum()
}

pub(super) async fn run(
    c: &CompressConfig,
    input: &Artifact,
    ctx: &PostProcessContext,
) -> Result<StepOutput, PostProcessError> {
    let data = ctx.build_data();
    let output = ctx.render_path("output", &c.output, &data)?;
    let format = match &c.format {
        Some(f) => Format::detect(f)?,
        None => Format::detect(&output.to_string_lossy())?,
    };
    let entries: Vec<Entry> = input
        .files
        .iter()
        .map(|path| Entry::File {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.clone(),
        })
        .collect();
    let level = c.compression_level.unwrap_or(DEFAULT_LEVEL);
    ctx.reporter.info(
        &ctx.build,
        &format!(
            "Compressing {} file(s) into {}",
            entries.len(),
            output.display()
        ),
    );
    let progress: Arc<dyn crate::ui::Progress> = Arc::from(ctx.reporter.progress(
        &ctx.build,
        "compress",
        Some(total_size(&entries)),
    ));
    let cancel = ctx.cancel.clone();
    let out = output.clone();
    let bar = progress.clone();
    let mtime = ctx.render.init_time();
    blocking(move || pack(&entries, &out, format, level, mtime, &cancel, &bar)).await?;
    progress.finish("compressed");
    Ok(StepOutput {
        artifact: Artifact::files_only(
            BUILDER_ID,
            &input.build_name,
            &input.build_type,
            output.display().to_string(),
            vec![output.clone()],
        ),
        keep_default: false,
        force_keep: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension() {
        let f = |n: &str| Format::detect(n).ok();
        let fmt = |tar, codec| Some(Format { tar, codec });
        assert_eq!(f("a.tar.gz"), fmt(true, Codec::Gzip));
        assert_eq!(f("a.tgz"), fmt(true, Codec::Gzip));
        assert_eq!(f("a.gz"), fmt(false, Codec::Gzip));
        assert_eq!(f("a.tar"), fmt(true, Codec::None));
        assert_eq!(f("a.tar.zst"), fmt(true, Codec::Zstd));
        assert_eq!(f("a.xz"), fmt(false, Codec::Xz));
        assert_eq!(f("tar.xz"), fmt(true, Codec::Xz));
        assert_eq!(f("a.zip"), None);
        assert_eq!(f("a.img"), None);
    }
}
