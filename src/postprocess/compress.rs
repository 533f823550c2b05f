//! `compress`: the artifact's files into one file, the format chosen by the
//! output's extension as in Packer (`format` overrides it): `.tar`,
//! `.tar.gz`/`.tgz`, `.tar.zst`, `.tar.xz`, or a single file as `.gz`,
//! `.zst`, `.xz`. Several files need an archive (`.tar…`), as in Packer.
//! gzip is parallel ([`super::pgzip`]); `.zip`, `.lz4` and `.bgzf` are not
//! supported yet. Output appears only complete: it is written under a
//! temporary name beside the final one and renamed.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use super::pgzip::ParallelGzWriter;
use super::{PostProcessContext, PostProcessError, StepOutput, WatchedReader, blocking};
use crate::build::artifact::Artifact;
use crate::config::post_processor::CompressConfig;

pub const BUILDER_ID: &str = "packer.post-processor.compress";

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

/// What goes into an archive: a file on disk, or bytes made here.
pub enum Entry {
    File { name: String, path: PathBuf },
    Bytes { name: String, data: Vec<u8> },
}

impl Entry {
    fn size(&self) -> u64 {
        match self {
            Self::File { path, .. } => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            Self::Bytes { data, .. } => data.len() as u64,
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
    if !format.tar && entries.len() != 1 {
        return Err(PostProcessError::Unsupported(format!(
            "output {}: can only compress 1 file without an archive format (.tar…), found {}",
            output.display(),
            entries.len()
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
        Err(e) => return Err(fail(e)),
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

#[allow(clippy::too_many_arguments)]
fn write_entries(
    entries: &[Entry],
    file: std::fs::File,
    format: Format,
    level: u32,
    mtime: SystemTime,
    cancel: &CancellationToken,
    progress: &Arc<dyn crate::ui::Progress>,
) -> io::Result<std::fs::File> {
    let mut encoder = Encoder::new(format.codec, file, level, cancel)?;
    let mut done = 0u64;
    let watch = |reader: std::fs::File, done: u64| WatchedReader {
        inner: reader,
        cancel: cancel.clone(),
        progress: Arc::new(super::checksum::Offset {
            base: done,
            inner: progress.clone(),
        }),
        position: 0,
    };
    if format.tar {
        let mut tar = tar::Builder::new(encoder);
        tar.mode(tar::HeaderMode::Deterministic);
        for entry in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            match entry {
                Entry::File { name, path } => {
                    let f = std::fs::File::open(path)?;
                    let meta = f.metadata()?;
                    header.set_size(meta.len());
                    header.set_mtime(unix_seconds(meta.modified().unwrap_or(mtime)));
                    let mut reader = watch(f, done);
                    tar.append_data(&mut header, name, &mut reader)?;
                    done += reader.position;
                }
                Entry::Bytes { name, data } => {
                    header.set_size(data.len() as u64);
                    header.set_mtime(unix_seconds(mtime));
                    tar.append_data(&mut header, name, &data[..])?;
                }
            }
        }
        encoder = tar.into_inner()?;
    } else if let Some(entry) = entries.first() {
        match entry {
            Entry::File { path, .. } => {
                let mut reader = watch(std::fs::File::open(path)?, done);
                io::copy(&mut reader, &mut encoder)?;
            }
            Entry::Bytes { data, .. } => encoder.write_all(data)?,
        }
    }
    encoder.finish()
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
    let mut data = BTreeMap::new();
    data.insert("BuildName".to_owned(), ctx.build_name.clone());
    data.insert("BuilderType".to_owned(), ctx.build_type.clone());
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
        &ctx.build_name,
        &format!(
            "Compressing {} file(s) into {}",
            entries.len(),
            output.display()
        ),
    );
    let progress: Arc<dyn crate::ui::Progress> = Arc::from(ctx.reporter.progress(
        &ctx.build_name,
        "compress",
        Some(total_size(&entries)),
    ));
    let cancel = ctx.cancel.clone();
    let out = output.clone();
    let bar = progress.clone();
    let mtime = ctx.init_time;
    blocking(move || pack(&entries, &out, format, level, mtime, &cancel, &bar)).await?;
    progress.finish("compressed");
    Ok(StepOutput {
        artifact: Artifact {
            builder_id: BUILDER_ID,
            build_name: input.build_name.clone(),
            build_type: input.build_type.clone(),
            files: vec![output.clone()],
            id: output.display().to_string(),
            metadata: BTreeMap::new(),
        },
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
