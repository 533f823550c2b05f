//! The key of a whole build, for the up-to-date check: every input that
//! shapes its artifacts, taken from the typed config (so the JSON and HCL2
//! front ends give it without knowing), plus the content of every local
//! file the build reads. Each input is named for the user: a stale build
//! says "provisioner 2 (shell) script scripts/greet.sh changed".

use std::path::{Path, PathBuf};

use crate::checkpoint::KeyBuilder;
use crate::checkpoint::record::{BuildKey, KEY_KIND};
use crate::checkpoint::record_secret::RecordSecret;
use crate::config::post_processor::{PostProcessor, PostProcessorKind};
use crate::config::provisioner::{
    Direction, FileConfig, FileSource, Provisioner, ProvisionerKind, ShellSource,
};
use crate::config::{Build, BuilderConfig, common::HttpConfig, common::MediaConfig};
use crate::run::RunOptions;

/// A build kiln cannot vouch for, and why (it always builds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untracked(pub String);

/// The build's output directory, when its builder has one (the record
/// lives there).
pub fn output_dir(build: &Build, pwd: &Path) -> Option<PathBuf> {
    let dir = match &build.builder {
        BuilderConfig::Qemu(q) => &q.output_directory,
        BuilderConfig::VirtualBoxIso(v) => &v.output_directory,
        BuilderConfig::GoogleCompute(_) | BuilderConfig::Null(_) => return None,
    };
    Some(pwd.join(dir))
}

/// The typed value as text, without the template positions it carries
/// (`span: Span { start, end }`): moving a key in the template file, or
/// writing the same build in HCL2, is not a change.
fn typed(value: &impl std::fmt::Debug) -> String {
    let text = format!("{value:?}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("span: Span {") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let end = after.find('}').map_or(after.len(), |e| e + 1);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// A path from the template: beside the working directory first, then
/// beside the template (where the steps that read it look).
fn resolve(options: &RunOptions, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let from_pwd = options.render.pwd().join(path);
    if from_pwd.exists() {
        return from_pwd;
    }
    options.render.template_dir().join(path)
}

/// A path as the user knows it: relative to where kiln runs when under it
/// (the config holds resolved paths).
fn shown(options: &RunOptions, path: &Path) -> String {
    path.strip_prefix(options.render.pwd())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The content at a local path (a file or every file of a directory).
fn content(
    key: &mut KeyBuilder,
    name: &str,
    options: &RunOptions,
    path: &Path,
) -> Result<(), Untracked> {
    let at = resolve(options, path);
    let done = if at.is_dir() {
        key.tree(name, &at).map(|_| ())
    } else {
        key.file(name, &at).map(|_| ())
    };
    done.map_err(|e| Untracked(format!("{name}: cannot read {} ({e})", at.display())))
}

fn media(
    key: &mut KeyBuilder,
    options: &RunOptions,
    http: &HttpConfig,
    media: &MediaConfig,
) -> Result<(), Untracked> {
    if let Some(dir) = &http.directory {
        content(key, "http_directory", options, dir)?;
    }
    for entry in &media.cd.files {
        content(key, &format!("cd_files {entry}"), options, Path::new(entry))
            .map_err(|_| Untracked(format!("cd_files {entry} is not a plain path")))?;
    }
    for entry in media.floppy.files.iter().chain(&media.floppy.dirs) {
        content(
            key,
            &format!("floppy_files {entry}"),
            options,
            Path::new(entry),
        )
        .map_err(|_| Untracked(format!("floppy_files {entry} is not a plain path")))?;
    }
    Ok(())
}

fn provisioner(
    key: &mut KeyBuilder,
    options: &RunOptions,
    name: &str,
    p: &Provisioner,
) -> Result<(), Untracked> {
    key.text(name, &typed(p));
    let scripts = |key: &mut KeyBuilder, source: &ShellSource| {
        if let ShellSource::Scripts(paths) = source {
            for s in paths {
                content(
                    key,
                    &format!("{name} script {}", shown(options, s)),
                    options,
                    s,
                )?;
            }
        }
        Ok(())
    };
    match &p.kind {
        ProvisionerKind::Shell(c) => scripts(key, &c.source),
        ProvisionerKind::ShellLocal(c) => scripts(key, &c.source),
        ProvisionerKind::File(FileConfig {
            source: FileSource::Paths(sources),
            direction: Direction::Upload,
            generated: false,
            ..
        }) => {
            let none = std::collections::BTreeMap::new();
            for s in sources {
                // A source that reads a build value is known only as it runs.
                let s = s
                    .template
                    .render(&options.render.context(&none))
                    .map_err(|_| Untracked(format!("{name}: source `{}`", s.source())))?;
                content(key, &format!("{name} source {s}"), options, Path::new(&s))?;
            }
            Ok(())
        }
        // Downloads read nothing local; generated sources are made by the
        // build itself; `content` is in the template, keyed above.
        ProvisionerKind::File(_) | ProvisionerKind::Breakpoint(_) => Ok(()),
        // Playbooks, roles, state trees and cookbooks pull in files kiln
        // does not follow yet: such a build is never called up to date.
        ProvisionerKind::Ansible(_)
        | ProvisionerKind::AnsibleLocal(_)
        | ProvisionerKind::ChefSolo(_)
        | ProvisionerKind::SaltMasterless(_) => Err(Untracked(format!(
            "{name}: the files a {} provisioner reads are not tracked",
            p.type_name
        ))),
    }
}

fn post_processor(
    key: &mut KeyBuilder,
    options: &RunOptions,
    name: &str,
    p: &PostProcessor,
) -> Result<(), Untracked> {
    key.text(name, &typed(p));
    match &p.kind {
        PostProcessorKind::ShellLocal(c) => {
            if let ShellSource::Scripts(paths) = &c.source {
                for s in paths {
                    content(
                        key,
                        &format!("{name} script {}", shown(options, s)),
                        options,
                        s,
                    )?;
                }
            }
        }
        PostProcessorKind::Vagrant(c) => {
            for settings in std::iter::once(&c.settings).chain(c.overrides.values()) {
                if let Some(t) = &settings.vagrantfile_template {
                    let label = format!("{name} vagrantfile_template {}", shown(options, t));
                    content(key, &label, options, t)?;
                }
                for i in &settings.include {
                    content(
                        key,
                        &format!("{name} include {}", shown(options, i)),
                        options,
                        i,
                    )?;
                }
            }
        }
        PostProcessorKind::AmazonImport(_) | PostProcessorKind::GoogleComputeImport(_) => {
            // Its artifact is an AMI in an account, not a file kiln can stat.
            return Err(Untracked(format!(
                "{name}: an imported image cannot be checked from here"
            )));
        }
        PostProcessorKind::GoogleComputeExport(_) => {
            return Err(Untracked(format!(
                "{name}: an exported object in Cloud Storage cannot be checked from here"
            )));
        }
        PostProcessorKind::Checksum(_)
        | PostProcessorKind::Manifest(_)
        | PostProcessorKind::Compress(_) => {}
    }
    Ok(())
}

/// The build's key, or why it has none.
pub fn build_key(build: &Build, options: &RunOptions) -> Result<BuildKey, Untracked> {
    let mut key = KeyBuilder::new(KEY_KIND);
    let (iso, http, media_config) = match &build.builder {
        BuilderConfig::Qemu(q) => (&q.iso, &q.http, &q.media),
        BuilderConfig::VirtualBoxIso(v) => (&v.iso, &v.http, &v.media),
        BuilderConfig::GoogleCompute(_) => {
            return Err(Untracked("its image lives in the cloud".into()));
        }
        BuilderConfig::Null(_) => {
            return Err(Untracked(
                "the null builder makes nothing to compare".into(),
            ));
        }
    };
    // The ISO (or source image) is pinned by its checksum, which is in
    // the typed config below; without one its content could change.
    if iso.checksum.eq_ignore_ascii_case("none") {
        return Err(Untracked(
            "iso_checksum is none, so the ISO is not pinned".into(),
        ));
    }
    key.text("builder", &typed(&build.builder));
    if let BuilderConfig::Qemu(q) = &build.builder
        && let Some(fw) = &q.firmware
    {
        content(&mut key, "firmware", options, fw)?;
    }
    media(&mut key, options, http, media_config)?;
    // Rendered into provisioners and post-processors when they run.
    let vars: Vec<String> = options
        .render
        .user_vars()
        .iter()
        .flat_map(|(k, v)| [k.clone(), v.clone()])
        .collect();
    key.list("variables", &vars);
    key.text("build", &format!("{} {}", build.name, build.type_name));
    for (i, p) in build.provisioners.iter().enumerate() {
        provisioner(
            &mut key,
            options,
            &format!("provisioner {} ({})", i + 1, p.type_name),
            p,
        )?;
    }
    if let Some(p) = &build.error_cleanup_provisioner {
        provisioner(&mut key, options, "error-cleanup-provisioner", p)?;
    }
    for (c, chain) in build.post_processors.iter().enumerate() {
        for (i, p) in chain.iter().enumerate() {
            let name = format!("post-processor {}.{} ({})", c + 1, i + 1, p.type_name);
            post_processor(&mut key, options, &name, p)?;
        }
    }
    let secret = crate::iso::IsoCache::locate()
        .map_err(|e| e.to_string())
        .and_then(|cache| {
            RecordSecret::load_or_create(cache.root())
                .map_err(|e| crate::error_chain::error_chain(&e, ": "))
        })
        .map_err(Untracked)?;
    Ok(BuildKey::sealed(&key, &secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_positions_are_left_out_of_typed_values() {
        #[derive(Debug)]
        struct Span {
            #[allow(dead_code)]
            start: usize,
            #[allow(dead_code)]
            end: usize,
        }
        #[derive(Debug)]
        struct D {
            #[allow(dead_code)]
            source: &'static str,
            #[allow(dead_code)]
            span: Span,
        }
        let a = D {
            source: "x",
            span: Span { start: 1, end: 2 },
        };
        let b = D {
            source: "x",
            span: Span { start: 10, end: 20 },
        };
        assert_eq!(typed(&a), typed(&b));
        assert!(typed(&a).contains("\"x\""));
    }
}
