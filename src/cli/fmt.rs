//! `kiln fmt`: Packer's `packer fmt` over files, directories and stdin.
//! Prints the name of each file it changes (or would change), optionally
//! a diff; writes atomically; exit 0, 1 on an error, 3 under `-check`
//! when a file is not formatted (Packer's, after `terraform fmt`).

use super::CommandError;
use super::args::FmtArgs;
use super::output::ErrorOutput;
use crate::hcl::fmt::{format_file, unified_diff};
use crate::template::diagnostic::Diagnostics;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
enum FmtError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is a JSON template: kiln fmt formats HCL2 files (*.pkr.hcl, *.pkrvars.hcl), as packer fmt does",
        path.display()
    )]
    Json { path: PathBuf },
}

/// How one run went, over all its paths.
#[derive(Default)]
struct Outcome {
    changed: usize,
    /// The first failure; the run goes on to the other paths.
    failure: Option<CommandError>,
}

impl Outcome {
    fn fail(&mut self, e: CommandError) {
        self.failure.get_or_insert(e);
    }
}

pub fn run(args: &FmtArgs, out: &ErrorOutput) -> Result<(), CommandError> {
    // -check never writes (Packer's rule).
    let write = args.write && !args.check;
    let mut outcome = Outcome::default();
    for path in &args.paths {
        if path.as_os_str() == "-" {
            format_stdin(write, out, &mut outcome);
        } else if path.is_dir() {
            format_dir(path, args, write, out, &mut outcome);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.error(&FmtError::Json { path: path.clone() });
            outcome.fail(CommandError::Input);
        } else {
            format_path(path, args.diff, write, out, &mut outcome);
        }
    }
    if let Some(e) = outcome.failure {
        Err(e)
    } else if args.check && outcome.changed > 0 {
        Err(CommandError::NotFormatted)
    } else {
        Ok(())
    }
}

/// The HCL2 files of a directory in name order (as Go's `ReadDir`), then
/// its subdirectories' with `-recursive`.
fn format_dir(dir: &Path, args: &FmtArgs, write: bool, out: &ErrorOutput, outcome: &mut Outcome) {
    let entries = match std::fs::read_dir(dir).and_then(|d| d.collect::<Result<Vec<_>, _>>()) {
        Ok(e) => e,
        Err(source) => {
            out.error(&FmtError::Read {
                path: dir.to_owned(),
                source,
            });
            outcome.fail(CommandError::Host);
            return;
        }
    };
    let mut entries: Vec<_> = entries
        .into_iter()
        .map(|e| (e.path(), e.file_type().is_ok_and(|t| t.is_dir())))
        .collect();
    entries.sort();
    for (path, is_dir) in entries {
        if is_dir {
            if args.recursive {
                format_dir(&path, args, write, out, outcome);
            }
        } else if is_formatted_kind(&path) {
            format_path(&path, args.diff, write, out, outcome);
        }
    }
}

fn is_formatted_kind(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".pkr.hcl") || name.ends_with(".pkrvars.hcl")
}

fn format_path(path: &Path, diff: bool, write: bool, out: &ErrorOutput, outcome: &mut Outcome) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(source) => {
            out.error(&FmtError::Read {
                path: path.to_owned(),
                source,
            });
            outcome.fail(CommandError::Host);
            return;
        }
    };
    let formatted = match format_file(path, &text) {
        Ok(f) => f,
        Err(diags) => {
            report_syntax(&diags, out, outcome);
            return;
        }
    };
    if formatted == text {
        return;
    }
    outcome.changed += 1;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", path.display());
    if write && let Err(source) = write_atomically(path, &formatted) {
        out.error(&FmtError::Write {
            path: path.to_owned(),
            source,
        });
        outcome.fail(CommandError::Host);
    }
    if diff {
        let _ =
            stdout.write_all(unified_diff(&text, &formatted, &path.to_string_lossy()).as_bytes());
    }
}

/// `-`: the formatted text on stdout (unchanged text too), no diff.
fn format_stdin(write: bool, out: &ErrorOutput, outcome: &mut Outcome) {
    let mut text = String::new();
    if let Err(source) = std::io::stdin().read_to_string(&mut text) {
        out.error(&FmtError::Read {
            path: "<stdin>".into(),
            source,
        });
        outcome.fail(CommandError::Host);
        return;
    }
    let formatted = match format_file(Path::new("<stdin>"), &text) {
        Ok(f) => f,
        Err(diags) => {
            report_syntax(&diags, out, outcome);
            return;
        }
    };
    let changed = formatted != text;
    if changed {
        outcome.changed += 1;
    }
    if !changed || write {
        let _ = std::io::stdout().lock().write_all(formatted.as_bytes());
    }
}

fn report_syntax(diags: &Diagnostics, out: &ErrorOutput, outcome: &mut Outcome) {
    out.diagnostics(diags);
    outcome.fail(CommandError::Input);
}

/// Replaces `path` by renaming a sibling temporary file over it, so an
/// interrupted run leaves the old file or the new one, never half of one;
/// the file keeps its permissions, and a symlink keeps pointing at it.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let target = std::fs::canonicalize(path)?;
    let dir = target.parent().unwrap_or(Path::new("."));
    let permissions = std::fs::metadata(&target)?.permissions();
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.as_file().set_permissions(permissions)?;
    tmp.persist(&target).map_err(|e| e.error)?;
    Ok(())
}
