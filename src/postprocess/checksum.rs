//! `checksum`: one file of digests per checksum type, in the format
//! `sha256sum -c` reads (`HEX  NAME`). Names are relative to the checksum
//! file's directory, so `cd "$(dirname sums)" && sha256sum -c sums` works
//! wherever the checksum file is written (Packer writes base names, which
//! only works when both sit in one directory; the results are the same
//! there). Each file is read once for all types. Like Packer, lines are
//! appended to an existing checksum file.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::{PostProcessContext, PostProcessError, StepOutput, WatchedReader, blocking};
use crate::artifact::Artifact;
use crate::config::post_processor::ChecksumConfig;
use crate::digest::Algorithm;
pub(super) use crate::digest::Hasher;

pub const BUILDER_ID: &str = crate::artifact::ids::CHECKSUM;

/// One line as `sha256sum` writes it: `HEX  NAME`, or, for a name with a
/// backslash or newline, `\HEX  ESCAPED` (GNU coreutils' escaping).
pub fn checksum_line(hex: &str, name: &str) -> String {
    if name.contains(['\\', '\n', '\r']) {
        let escaped = name
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r");
        format!("\\{hex}  {escaped}\n")
    } else {
        format!("{hex}  {name}\n")
    }
}

/// `file` relative to `dir` (both absolute), with `..` where needed.
fn relative_to(file: &Path, dir: &Path) -> PathBuf {
    let file: Vec<Component> = file.components().collect();
    let dir: Vec<Component> = dir.components().collect();
    let common = file.iter().zip(&dir).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..dir.len() {
        out.push("..");
    }
    for c in &file[common..] {
        out.push(c);
    }
    out
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

pub(super) async fn run(
    c: &ChecksumConfig,
    input: &Artifact,
    ctx: &PostProcessContext,
) -> Result<StepOutput, PostProcessError> {
    // Render every output first: a bad template fails before any hashing.
    let mut outputs: Vec<(String, PathBuf)> = Vec::new();
    for kind in &c.checksum_types {
        let mut data = ctx.build_data();
        data.insert("ChecksumType".to_owned(), kind.clone());
        outputs.push((kind.clone(), ctx.render_path("output", &c.output, &data)?));
    }
    if input.files.is_empty() {
        // Packer writes no checksum file then either (the null builder's
        // artifact, a cloud image).
        ctx.reporter.info(
            &ctx.build,
            &format!(
                "Nothing to checksum: the input artifact ({}) has no files",
                input.builder_id
            ),
        );
        return Ok(StepOutput {
            artifact: Artifact::files_only(
                BUILDER_ID,
                &input.build_name,
                &input.build_type,
                "",
                Vec::new(),
            ),
            keep_default: true,
            force_keep: true,
        });
    }
    let files = input.files.clone();
    let kinds = c.checksum_types.clone();
    let cancel = ctx.cancel.clone();
    let total: u64 = input.size();
    let progress: Arc<dyn crate::ui::Progress> =
        Arc::from(ctx.reporter.progress(&ctx.build, "checksum", Some(total)));
    let bar = progress.clone();
    // digests[file][type]
    let digests: Vec<Vec<String>> = blocking(move || {
        let mut reader_base = 0u64;
        let mut all = Vec::new();
        for file in &files {
            let mut hashers: Vec<Hasher> = kinds
                .iter()
                .filter_map(|k| Algorithm::from_name(k).map(Hasher::new))
                .collect();
            if hashers.len() != kinds.len() {
                return Err(PostProcessError::Unsupported(format!(
                    "checksum_types: one of {kinds:?} is not supported"
                )));
            }
            let f = std::fs::File::open(file).map_err(PostProcessError::io("cannot open", file))?;
            let mut reader = WatchedReader {
                inner: f,
                cancel: cancel.clone(),
                progress: Arc::new(Offset {
                    base: reader_base,
                    inner: bar.clone(),
                }),
                position: 0,
            };
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = reader.read(&mut buf).map_err(super::io_or_cancel(
                    &cancel,
                    "cannot read",
                    file,
                ))?;
                if n == 0 {
                    break;
                }
                for h in &mut hashers {
                    h.update(&buf[..n]);
                }
            }
            reader_base += reader.position;
            all.push(hashers.into_iter().map(Hasher::finalize_hex).collect());
        }
        Ok(all)
    })
    .await?;
    progress.finish("hashed");

    let mut written = Vec::new();
    for (t, (kind, out)) in outputs.iter().enumerate() {
        let dir = out.parent().map(Path::to_owned).unwrap_or_default();
        std::fs::create_dir_all(&dir).map_err(PostProcessError::io("cannot create", &dir))?;
        let dir_abs = absolute(&dir);
        let mut text = String::new();
        for (file, digests) in input.files.iter().zip(&digests) {
            let name = relative_to(&absolute(file), &dir_abs);
            text.push_str(&checksum_line(&digests[t], &name.to_string_lossy()));
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .map_err(PostProcessError::io("cannot open", out))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(PostProcessError::io("cannot write", out))?;
        ctx.reporter.info(
            &ctx.build,
            &format!("{kind} checksums written to {}", out.display()),
        );
        if !written.contains(out) {
            written.push(out.clone());
        }
    }
    Ok(StepOutput {
        artifact: Artifact::files_only(
            BUILDER_ID,
            &input.build_name,
            &input.build_type,
            written
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            written,
        ),
        keep_default: true,
        force_keep: true,
    })
}

/// Progress of one file within the whole artifact.
pub(super) struct Offset {
    pub(super) base: u64,
    pub(super) inner: Arc<dyn crate::ui::Progress>,
}

impl crate::ui::Progress for Offset {
    fn set_position(&self, position: u64) {
        self.inner.set_position(self.base + position);
    }
    fn set_total(&self, total: u64) {
        self.inner.set_total(total);
    }
    fn finish(&self, _message: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_what_sha256sum_reads() {
        assert_eq!(checksum_line("ab", "disk.qcow2"), "ab  disk.qcow2\n");
        assert_eq!(checksum_line("ab", "a\\b"), "\\ab  a\\\\b\n");
    }

    #[test]
    fn names_are_relative_to_the_checksum_file() {
        assert_eq!(
            relative_to(Path::new("/o/vm/disk"), Path::new("/o/vm")),
            PathBuf::from("disk")
        );
        assert_eq!(
            relative_to(Path::new("/o/vm/disk"), Path::new("/o/sums")),
            PathBuf::from("../vm/disk")
        );
    }
}
