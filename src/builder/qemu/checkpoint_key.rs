//! What goes into a qemu build's install key, and when a build gets no
//! checkpoint at all. The key is made of the inputs that shape what the
//! installer writes to the disk, as they are written in the template:
//! build-time fields (`{{ .HTTPIP }}`, `{{ .HTTPPort }}`) stay unrendered,
//! since they change from run to run without changing the install.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::builder::common::{CommonState, render_deferred};
use crate::checkpoint::{KeyBuilder, volatile_functions};
use crate::config::decode::Deferred;

use super::QemuState;

/// Why a build takes no checkpoint (shown once, as information).
pub(super) fn why_not(state: &QemuState) -> Option<&'static str> {
    let c = &state.config;
    if c.disk_image {
        // Nothing is installed: the build starts from an image already.
        return Some("");
    }
    if !state.common.options.checkpoints {
        return Some("install checkpoints are off (KILN_NO_CHECKPOINT is set)");
    }
    if !c.checkpoint {
        return Some("install checkpoints are off (\"checkpoint\": false)");
    }
    if state.common.communicator.ssh().is_none() {
        // SSH answering is how kiln knows the install is over.
        return Some(
            "no install checkpoint: without an SSH communicator nothing tells when the install is done",
        );
    }
    if !c.disk_additional_size_mib.is_empty() {
        return Some(
            "no install checkpoint: builds with disk_additional_size are not checkpointed yet",
        );
    }
    if state.common.temporary_key.is_some() {
        return Some(
            "no install checkpoint: the temporary SSH key is new every run, so an installed guest would not let the next build in; give ssh_password or ssh_private_key_file to use checkpoints",
        );
    }
    if state.common.iso_digest.is_none() {
        return Some("no install checkpoint: the ISO is not verified (iso_checksum none)");
    }
    None
}

/// A template value with its build-time fields left as written and
/// everything else (user variables, functions) rendered.
fn as_written(
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
fn resolve(common: &CommonState, path: &str) -> PathBuf {
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

/// The key of this build's install, and the volatile template functions
/// found in its inputs (each makes every run's key new: warn about it).
pub(super) fn install_key(state: &QemuState) -> Result<(KeyBuilder, Vec<String>), String> {
    use crate::config::common::{BOOT_COMMAND_FIELDS, HTTP_CONTENT_FIELDS};
    use crate::config::qemu::QEMUARGS_FIELDS;
    let c = &state.config;
    let common = &state.common;
    let mut key = KeyBuilder::new("qemu");
    let mut volatile = Vec::new();
    let mut note = |what: &str, source: &str| {
        for f in volatile_functions(source) {
            volatile.push(format!("{what} uses {{{{ {f} }}}}"));
        }
    };
    // Known when the key is made and part of what is installed.
    let mut known = BTreeMap::new();
    known.insert("Name".to_owned(), c.vm_name.clone());
    known.extend(common.ssh_key_data());

    key.optional("iso", common.iso_digest.as_deref());
    let mut boot = Vec::new();
    for d in &c.boot.command {
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
    key.number("boot_wait_ms", c.boot.wait.as_millis() as u64);
    if let Some(dir) = &c.http.directory {
        let dir = resolve(common, &dir.display().to_string());
        key.tree("http_directory", &dir)
            .map_err(|e| format!("cannot read http_directory {}: {e}", dir.display()))?;
    }
    let mut served = Vec::new();
    for (path, d) in &c.http.content {
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
        add_path(&mut key, "cd_files", common, entry)
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
        add_path(&mut key, "floppy_files", common, entry)
            .map_err(|e| format!("cannot read floppy_files {entry}: {e}"))?;
    }
    key.list("floppy_dirs", &floppy.dirs);
    key.list("floppy_content", &flat(&floppy.content));
    key.text("floppy_label", floppy.label());

    key.number("disk_size_mib", c.disk_size_mib);
    key.text("disk_interface", &c.disk_interface);
    key.text("format", c.format.as_str());
    key.number("memory_mib", c.memory_mib);
    key.number("cpus", u64::from(c.cpus));
    key.text("machine_type", &c.machine_type);
    key.text("net_device", &c.net_device);
    key.optional("cdrom_interface", c.cdrom_interface.as_deref());
    match &c.firmware {
        Some(fw) => {
            let path = resolve(common, &fw.display().to_string());
            key.file("firmware", &path)
                .map_err(|e| format!("cannot read firmware {}: {e}", path.display()))?;
        }
        None => {
            key.optional("firmware", None);
        }
    }
    // The virtual hardware the installer saw (Bento's keys): CPU model and
    // topology, graphics, UEFI and its firmware files as configured.
    key.text("hardware", &format!("{:?}", c.hardware));
    let mut args = Vec::new();
    for row in &c.qemuargs {
        let mut rendered = Vec::new();
        for d in row {
            note("qemuargs", d.source());
            rendered.push(as_written(common, "qemuargs", d, QEMUARGS_FIELDS, &known)?);
        }
        args.push(rendered.join("\u{1f}"));
    }
    key.list("qemuargs", &args);
    key.list("qemu_img_args.create", &c.qemu_img_args.create);
    Ok((key, volatile))
}
