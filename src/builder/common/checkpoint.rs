//! What every ISO builder shares about install checkpoints: the plan a
//! build makes (save one, resume from one, or neither), the reasons a build
//! takes none, finding a verified checkpoint, and the install inputs that
//! are the same for every hypervisor (the ISO, what is typed, what is
//! served or attached). Each builder adds its own hardware to the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::checkpoint::{
    Checkpoint, CheckpointStore, InstallKey, KeyBuilder, Lookup, Writer, volatile_functions,
};
use crate::config::boot_steps::BootStep;
use crate::config::common::{BootConfig, HttpConfig};
use crate::config::decode::Deferred;
use crate::iso::IsoCache;
use crate::run::runner::{FailureClass, StepContext, StepError};

use super::{CommonState, render_deferred};

/// What the build does about install checkpoints, decided once the ISO's
/// digest is known.
#[derive(Debug, Default)]
pub enum CheckpointPlan {
    /// None read or written (switched off, or nothing is installed).
    #[default]
    Off,
    /// Install from the ISO, then save a checkpoint under this key
    /// (replacing one that is there with `replace`).
    Save { key: KeyBuilder, replace: bool },
    /// Start from this verified checkpoint's disk.
    Resume(Checkpoint),
}

impl CheckpointPlan {
    /// The checkpoint this build resumes from, if it does.
    pub fn resumed_from(&self) -> Option<&Checkpoint> {
        match self {
            Self::Resume(c) => Some(c),
            _ => None,
        }
    }
}

/// The checkpoints of the cache this build uses for its ISO.
pub fn checkpoint_store() -> Result<CheckpointStore, StepError> {
    let cache = IsoCache::locate()
        .map_err(|e| StepError::with_source(FailureClass::Host, "cannot open the cache", e))?;
    Ok(CheckpointStore::in_cache(cache.root()))
}

/// Why a build takes no checkpoint, for the reasons every builder shares:
/// switched off (`switch` is the template's `checkpoint`), no SSH, extra
/// disks, a temporary key, an unverified ISO.
pub fn why_no_checkpoint(
    common: &CommonState,
    switch: bool,
    extra_disks: bool,
) -> Option<&'static str> {
    if !common.options.checkpoints {
        return Some("install checkpoints are off (KILN_NO_CHECKPOINT is set)");
    }
    if !switch {
        return Some("install checkpoints are off (\"checkpoint\": false)");
    }
    if common.communicator.ssh().is_none() {
        // SSH answering is how kiln knows the install is over.
        return Some(
            "no install checkpoint: without an SSH communicator nothing tells when the install is done",
        );
    }
    if extra_disks {
        return Some(
            "no install checkpoint: builds with disk_additional_size are not checkpointed yet",
        );
    }
    if common.temporary_key.is_some() {
        return Some(
            "no install checkpoint: the temporary SSH key is new every run, so an installed guest would not let the next build in; give ssh_password or ssh_private_key_file to use checkpoints",
        );
    }
    if common.iso_digest.is_none() {
        return Some("no install checkpoint: the ISO is not verified (iso_checksum none)");
    }
    None
}

/// Looks for the checkpoint of `inputs` (warning about `volatile` inputs
/// first) and says what the build will do; `-force-install` skips the
/// lookup and replaces what is there.
pub async fn find_checkpoint(
    ctx: &StepContext,
    force_install: bool,
    inputs: KeyBuilder,
    volatile: &[String],
) -> Result<CheckpointPlan, StepError> {
    for what in volatile {
        ctx.reporter.warn(
            &ctx.build,
            &format!(
                "{what}, whose value changes every run: this install's checkpoint will never match a later build (see docs/checkpoints.md)"
            ),
        );
    }
    let key = inputs.finish();
    let store = checkpoint_store()?;
    let dir = store.dir(&key);
    if force_install {
        ctx.reporter.info(
            &ctx.build,
            &format!(
                "-force-install: installing from the ISO; the checkpoint {} will be replaced",
                dir.display()
            ),
        );
        return Ok(CheckpointPlan::Save {
            key: inputs,
            replace: true,
        });
    }
    let lookup_key = key.clone();
    let found = tokio::task::spawn_blocking(move || store.lookup(&lookup_key))
        .await
        .map_err(|e| StepError::with_source(FailureClass::Host, "the checkpoint lookup failed", e))?
        .map_err(|e| {
            StepError::with_source(FailureClass::Host, "cannot read the install checkpoint", e)
        })?;
    Ok(match found {
        Lookup::Found(checkpoint) => {
            ctx.reporter.info(
                &ctx.build,
                &format!(
                    "Resuming from the install checkpoint {} ({}, verified): no ISO boot, no boot command, no install",
                    dir.display(),
                    crate::ui::console::format_bytes(checkpoint.size)
                ),
            );
            CheckpointPlan::Resume(checkpoint)
        }
        Lookup::Missing => {
            ctx.reporter.info(
                &ctx.build,
                &format!(
                    "No install checkpoint yet (key {key}): installing, then saving one when SSH answers"
                ),
            );
            CheckpointPlan::Save {
                key: inputs,
                replace: false,
            }
        }
        Lookup::Corrupt { reason } => {
            ctx.reporter.warn(
                &ctx.build,
                &format!(
                    "the install checkpoint {} is damaged ({reason}): not used, installing again",
                    dir.display()
                ),
            );
            CheckpointPlan::Save {
                key: inputs,
                replace: true,
            }
        }
    })
}

/// Starts writing the checkpoint `key`: `None`, with the reason reported,
/// when another build has saved it (or is using it) or the store cannot
/// begin one; a build then goes on without saving.
pub async fn begin_checkpoint(
    ctx: &StepContext,
    store: &CheckpointStore,
    key: &InstallKey,
    replace: bool,
) -> Result<Option<Writer>, StepError> {
    let begin_store = store.clone();
    let begin_key = key.clone();
    let writer = tokio::task::spawn_blocking(move || begin_store.begin(&begin_key, replace))
        .await
        .map_err(|e| StepError::with_source(FailureClass::Host, "the checkpoint task failed", e))?;
    match writer {
        Ok(Some(w)) => Ok(Some(w)),
        Ok(None) => {
            ctx.reporter.info(
                &ctx.build,
                &format!(
                    "The install checkpoint {} is already there (saved by another build, or in use): not saved again",
                    store.dir(key).display()
                ),
            );
            Ok(None)
        }
        Err(e) => {
            ctx.reporter.warn(
                &ctx.build,
                &format!(
                    "no install checkpoint: {}",
                    crate::error_chain::error_chain(&e, ": ")
                ),
            );
            Ok(None)
        }
    }
}

/// A template value with its build-time fields left as written and
/// everything else (user variables, functions) rendered.
pub fn as_written(
    common: &CommonState,
    key: &str,
    d: &Deferred,
    fields: &[&str],
    known: &BTreeMap<String, String>,
) -> Result<String, String> {
    let mut data: BTreeMap<String, String> = fields
        .iter()
        .map(|f| ((*f).to_owned(), format!("{{{{ .{f} }}}}")))
        .collect();
    data.extend(known.iter().map(|(k, v)| (k.clone(), v.clone())));
    render_deferred(common, key, d, &data).map_err(|e| e.chain())
}

/// A path from the template: beside the working directory first, then
/// beside the template, as the steps that read it look for it.
pub fn resolve(common: &CommonState, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let from_pwd = common.options.render.pwd().join(p);
    if from_pwd.exists() {
        return from_pwd;
    }
    common.options.render.template_dir().join(p)
}

/// The content at a path from `cd_files`/`floppy_files`: a file, a tree, or
/// for a pattern the whole directory it matches in (any change there
/// changes the key: coarser than the match, never blind to it).
fn add_path(
    key: &mut KeyBuilder,
    name: &str,
    common: &CommonState,
    entry: &str,
) -> std::io::Result<()> {
    let path = resolve(common, entry.trim_end_matches('/'));
    if path.is_dir() {
        key.tree(name, &path)?;
    } else if path.is_file() {
        key.file(name, &path)?;
    } else {
        let parent = path
            .parent()
            .filter(|p| p.is_dir())
            .unwrap_or(Path::new("."));
        key.text(name, entry);
        key.tree(name, parent)?;
    }
    Ok(())
}

/// How the installer was started and fed, the same for every hypervisor.
pub struct InstallMedia<'a> {
    pub boot: &'a BootConfig,
    pub boot_steps: &'a [BootStep],
    pub http: &'a HttpConfig,
    /// `{{ .Name }}` in the boot command and served files.
    pub vm_name: &'a str,
}

/// Adds the inputs of [`InstallMedia`] to `key`: the ISO's digest, the
/// boot command (or `boot_steps`) as written, `boot_wait`, the served
/// files, the CD and floppy contents. Returns the volatile template
/// functions found ("boot_command uses {{ timestamp }}", …); `known` gets
/// the values that are rendered into the key (`Name`, the SSH key data).
pub fn add_install_media(
    key: &mut KeyBuilder,
    common: &CommonState,
    media: &InstallMedia<'_>,
) -> Result<(Vec<String>, BTreeMap<String, String>), String> {
    use crate::config::common::{BOOT_COMMAND_FIELDS, HTTP_CONTENT_FIELDS};
    let mut volatile = Vec::new();
    let mut note = |what: &str, source: &str| {
        for f in volatile_functions(source) {
            volatile.push(format!("{what} uses {{{{ {f} }}}}"));
        }
    };
    // Known when the key is made and part of what is installed.
    let mut known = BTreeMap::new();
    known.insert("Name".to_owned(), media.vm_name.to_owned());
    known.extend(common.ssh_key_data());

    key.optional("iso", common.iso_digest.as_deref());
    let mut boot = Vec::new();
    for d in &media.boot.command {
        note("boot_command", d.source());
        boot.push(as_written(
            common,
            "boot_command",
            d,
            BOOT_COMMAND_FIELDS,
            &known,
        )?);
    }
    key.list("boot_command", &boot);
    // Only when given, so the keys of builds without them stay as they were.
    if !media.boot_steps.is_empty() {
        let mut steps = Vec::new();
        for step in media.boot_steps {
            note("boot_steps", step.keys.source());
            steps.push(as_written(
                common,
                "boot_steps",
                &step.keys,
                BOOT_COMMAND_FIELDS,
                &known,
            )?);
        }
        key.list("boot_steps", &steps);
    }
    key.number("boot_wait_ms", media.boot.wait.as_millis() as u64);
    if let Some(dir) = &media.http.directory {
        let dir = resolve(common, &dir.display().to_string());
        key.tree("http_directory", &dir)
            .map_err(|e| format!("cannot read http_directory {}: {e}", dir.display()))?;
    }
    let mut served = Vec::new();
    for (path, d) in &media.http.content {
        note(&format!("http_content {path}"), d.source());
        served.push(path.clone());
        served.push(as_written(
            common,
            "http_content",
            d,
            HTTP_CONTENT_FIELDS,
            &known,
        )?);
    }
    key.list("http_content", &served);
    let cd = &common.cd;
    for entry in &cd.files {
        add_path(key, "cd_files", common, entry)
            .map_err(|e| format!("cannot read cd_files {entry}: {e}"))?;
    }
    let flat = |m: &BTreeMap<String, String>| {
        m.iter()
            .flat_map(|(k, v)| [k.clone(), v.clone()])
            .collect::<Vec<_>>()
    };
    key.list("cd_content", &flat(&cd.content));
    key.optional("cd_label", cd.label.as_deref());
    let floppy = &common.floppy;
    for entry in floppy.files.iter().chain(&floppy.dirs) {
        add_path(key, "floppy_files", common, entry)
            .map_err(|e| format!("cannot read floppy_files {entry}: {e}"))?;
    }
    key.list("floppy_dirs", &floppy.dirs);
    key.list("floppy_content", &flat(&floppy.content));
    key.text("floppy_label", floppy.label());
    Ok((volatile, known))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::RecordingReporter;
    use std::sync::Arc;

    fn ctx(reporter: &Arc<RecordingReporter>) -> StepContext {
        StepContext {
            build: "b".into(),
            reporter: reporter.clone(),
            cancel: tokio_util::sync::CancellationToken::new(),
            on_error: crate::run::runner::OnError::Cleanup,
            debug: false,
        }
    }

    #[tokio::test]
    async fn begin_writes_once_then_reports_a_saved_or_unwritable_store_and_goes_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = {
            let mut b = KeyBuilder::new("test");
            b.text("boot_command", "x<enter>");
            b.finish()
        };
        let reporter = Arc::new(RecordingReporter::new());
        let store = CheckpointStore::in_cache(dir.path());

        // The first build writes it.
        let writer = begin_checkpoint(&ctx(&reporter), &store, &key, false)
            .await
            .expect("no step error")
            .expect("a writer");
        std::fs::write(writer.disk_path(), b"disk").expect("write disk");
        writer.commit(&[]).expect("commit");

        // A second build finds it saved: said once, no writer, no error.
        let again = begin_checkpoint(&ctx(&reporter), &store, &key, false)
            .await
            .expect("no step error");
        assert!(again.is_none());
        let said = reporter.infos();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("is already there"), "{said:?}");
        assert!(said[0].contains(&store.dir(&key).display().to_string()));

        // A cache where the store cannot be made (a file in its place): a
        // warning naming the cause, and the build goes on without one.
        let blocked = tempfile::tempdir().expect("tempdir");
        std::fs::write(blocked.path().join("checkpoints"), b"not a directory").expect("write");
        let store = CheckpointStore::in_cache(blocked.path());
        let none = begin_checkpoint(&ctx(&reporter), &store, &key, false)
            .await
            .expect("no step error");
        assert!(none.is_none());
        let warned = reporter.warnings();
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(
            warned[0].starts_with("no install checkpoint: ")
                && warned[0].contains(&blocked.path().join("checkpoints").display().to_string()),
            "{warned:?}"
        );
    }
}
