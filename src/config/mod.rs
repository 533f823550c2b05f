//! Typed configuration for every builder, provisioner and post-processor
//! kiln implements, with Packer's defaults and validation. `prepare` turns
//! a loaded template plus resolved variables into the builds to run,
//! collecting every error; it has no side effects.

pub mod ansible;
pub mod boot_steps;
pub mod breakpoint;
pub mod build_values;
pub mod chef_solo;
pub mod common;
pub mod decode;
mod env_vars;
pub mod go_value;
pub mod googlecompute;
mod local_path;
pub mod null;
pub mod post_processor;
pub mod provisioner;
pub mod qemu;
pub mod salt_masterless;
pub mod virtualbox;
pub mod virtualbox_hw;

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::host::glob::glob_match;
use crate::template::diagnostic::{Diagnostics, did_you_mean};
use crate::template::json::{Member, Node, Span, Value};
use crate::template::model::{Section, Template};
use crate::template::render_env::{BuildNames, RenderEnv};
use crate::template::variables::ResolvedVariables;
use decode::{DecodeContext, Fields};
use post_processor::{POST_PROCESSOR_TYPES, PostProcessor, PostProcessorKind};
use provisioner::{PROVISIONER_TYPES, Provisioner, ProvisionerKind};

pub const BUILDER_TYPES: &[&str] = &["qemu", "virtualbox-iso", "googlecompute", "null"];

#[derive(Debug, Clone)]
pub enum BuilderConfig {
    Qemu(Box<qemu::QemuConfig>),
    VirtualBoxIso(Box<virtualbox::VirtualBoxIsoConfig>),
    GoogleCompute(Box<googlecompute::GoogleComputeConfig>),
    /// Packer's `null`: provisioners over a machine that exists, or none.
    Null(Box<null::NullConfig>),
}

/// One build: a builder and what runs after it.
#[derive(Debug, Clone)]
pub struct Build {
    /// The full name: `-only`/`-except`, output lines, records.
    pub name: String,
    /// Packer's `packer_build_name`: what `PACKER_BUILD_NAME`,
    /// `{{build_name}}` and `{{.BuildName}}` give (see [`BuildNames`]).
    pub packer_build_name: String,
    pub type_name: String,
    pub builder: BuilderConfig,
    pub provisioners: Vec<Provisioner>,
    pub error_cleanup_provisioner: Option<Provisioner>,
    pub post_processors: Vec<Vec<PostProcessor>>,
}

impl Build {
    /// The names a render environment of this build carries.
    pub fn names(&self) -> BuildNames {
        BuildNames {
            full: self.name.clone(),
            packer_build_name: self.packer_build_name.clone(),
            build_type: self.type_name.clone(),
        }
    }
}

/// `-only` / `-except` patterns (`*` matches any run of characters).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub only: Vec<String>,
    pub except: Vec<String>,
}

impl Selection {
    /// `-only` and `-except` may be given together, as current Packer
    /// allows: a build is kept if `-only` matches it (or is empty) and
    /// `-except` does not.
    pub fn includes(&self, name: &str) -> bool {
        let only = self.only.is_empty() || self.only.iter().any(|p| glob_match(p, name));
        only && !self.except.iter().any(|p| glob_match(p, name))
    }
}

/// A build left out, said once so nothing is silently ignored.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub name: String,
    pub type_name: String,
    pub supported: bool,
}

#[derive(Debug, Default)]
pub struct Prepared {
    pub builds: Vec<Build>,
    pub skipped: Vec<Skipped>,
}

pub struct PrepareInput<'a> {
    pub template: &'a Template,
    pub vars: &'a ResolvedVariables,
    pub selection: &'a Selection,
    pub pwd: &'a Path,
    pub init_time: SystemTime,
}

pub fn prepare(input: &PrepareInput<'_>, diags: &mut Diagnostics) -> Prepared {
    let t = input.template;
    let mut out = Prepared::default();
    let run_env = RenderEnv::new(
        input.vars.values.clone(),
        t.dir.clone(),
        input.pwd.to_owned(),
        input.init_time,
        String::new(),
    );
    // Packer renders builder names with the user variables before anything
    // else; -only/-except and {{build_name}} see the rendered name.
    let rendered: Vec<String> = t
        .builders
        .iter()
        .map(|b| render_build_name(input, &run_env, b, diags))
        .collect();
    let names: Vec<&str> = rendered.iter().map(String::as_str).collect();
    let raw_names: Vec<&str> = t.build_names().collect();
    for (i, name) in names.iter().enumerate() {
        let raw_differs = raw_names[i] != *name;
        if raw_differs && let Some(first) = names[..i].iter().position(|n| n == name) {
            let b = &t.builders[i];
            let span = b.body.get("name").map_or(b.type_span, |n| n.span);
            diags
                .error(
                    b.path.clone(),
                    format!(
                        "the build name renders as `{name}`, which {} also has",
                        t.builders[first].path
                    ),
                    t.location(span),
                )
                .hint = Some("give each builder a distinct \"name\"".into());
        }
    }

    for (flag, patterns) in [
        ("-only", &input.selection.only),
        ("-except", &input.selection.except),
    ] {
        for p in patterns.iter() {
            // -except also names post-processors, by type or name.
            let names_post_processor = flag == "-except"
                && t.post_processors
                    .iter()
                    .flatten()
                    .any(|pp| excepts_post_processor(p, pp));
            if !names.iter().any(|n| glob_match(p, n)) && !names_post_processor {
                diags
                    .error(flag, format!("`{p}` matches no build"), None)
                    .hint = Some(format!("the builds are: {}", names.join(", ")));
            }
        }
    }
    check_min_version(t, diags);

    for (section, name) in t.builders.iter().zip(&rendered) {
        if !input.selection.includes(name) {
            out.skipped.push(Skipped {
                name: name.clone(),
                type_name: section.type_name.clone(),
                supported: BUILDER_TYPES.contains(&section.type_name.as_str()),
            });
            continue;
        }
        let names = BuildNames {
            full: name.clone(),
            packer_build_name: section
                .packer_build_name
                .clone()
                .unwrap_or_else(|| name.clone()),
            build_type: section.type_name.clone(),
        };
        let build_env = run_env.for_build(names);
        let ctx = DecodeContext {
            template: t,
            vars: input.vars,
            render: &build_env,
            raw_build_name: Some(&section.name),
        };
        let errors_before = diags.error_count();
        let builder = decode_builder(&ctx, section, diags);
        if builder.is_none() && diags.error_count() == errors_before {
            // Every path that gives up says why; this keeps a missed one
            // from turning into "no builds to run".
            diags.error(
                section.path.clone(),
                "the builder could not be configured",
                t.location(section.type_span),
            );
        }
        let provisioners = t
            .provisioners
            .iter()
            .filter_map(|p| provisioner_for_build(&ctx, p, &raw_names, diags))
            .collect();
        let error_cleanup_provisioner = t
            .error_cleanup_provisioner
            .as_ref()
            .and_then(|p| provisioner_for_build(&ctx, p, &raw_names, diags));
        let post_processors = t
            .post_processors
            .iter()
            .map(|chain| {
                // A post-processor left out by -except ends its chain there:
                // the steps after it would have taken its artifact.
                chain
                    .iter()
                    .take_while(|pp| {
                        !input
                            .selection
                            .except
                            .iter()
                            .any(|p| excepts_post_processor(p, pp))
                    })
                    .filter_map(|pp| post_processor_for_build(&ctx, pp, &raw_names, diags))
                    .collect::<Vec<_>>()
            })
            .filter(|chain| !chain.is_empty())
            .collect();
        if let Some(builder) = builder {
            out.builds.push(Build {
                name: name.clone(),
                packer_build_name: build_env.packer_build_name().to_owned(),
                type_name: section.type_name.clone(),
                builder,
                provisioners,
                error_cleanup_provisioner,
                post_processors,
            });
        }
    }
    // One flag to copy for all of them (Bento's templates name five
    // hypervisors); each error gives its own.
    let unsupported: Vec<&str> = t
        .builders
        .iter()
        .zip(&rendered)
        .filter(|(section, name)| {
            let ty = section.type_name.as_str();
            // Not a misspelt type: that one wants fixing, not leaving out.
            input.selection.includes(name)
                && !BUILDER_TYPES.contains(&ty)
                && (PACKER_TYPES_NOT_IN_KILN.contains(&ty)
                    || did_you_mean(ty, BUILDER_TYPES.iter().copied()).is_none())
        })
        .map(|(section, _)| section.name.as_str())
        .collect();
    if unsupported.len() > 1 {
        diags
            .warning(
                "",
                format!(
                    "kiln does not implement the builder types of {} of the builds",
                    unsupported.len()
                ),
                None,
            )
            .hint = Some(format!(
            "`-except={}` leaves them all out and runs the rest",
            unsupported.join(",")
        ));
    }
    if out.builds.is_empty() && !diags.has_errors() {
        diags.error(
            "",
            "no builds to run: -only/-except left out every build",
            None,
        );
    }
    out
}

/// A builder's `name` rendered with the user variables (Packer's core does
/// this first: `"name": "{{user `os`}}-vbox"` is common). Functions that
/// need a build (`build_name`) are not available here, as in Packer.
fn render_build_name(
    input: &PrepareInput<'_>,
    run_env: &RenderEnv,
    section: &Section,
    diags: &mut Diagnostics,
) -> String {
    let raw = &section.name;
    if !raw.contains("{{") {
        return raw.clone();
    }
    let data = std::collections::BTreeMap::new();
    let ctx = run_env.context(&data);
    match crate::template::interp::parse(raw).and_then(|p| p.render(&ctx)) {
        Ok(name) if !name.is_empty() => name,
        Ok(_) => {
            let span = section
                .body
                .get("name")
                .map_or(section.type_span, |n| n.span);
            diags.error(
                section.path.clone(),
                "name: renders as an empty string",
                input.template.location(span),
            );
            raw.clone()
        }
        Err(e) => {
            let span = section
                .body
                .get("name")
                .map_or(section.type_span, |n| n.span);
            diags.error(
                section.path.clone(),
                format!("name: {e}"),
                input.template.location(span),
            );
            raw.clone()
        }
    }
}

/// Whether an -except pattern names a post-processor (by type, or by the
/// name an HCL2 block or a JSON `name` gives it).
fn excepts_post_processor(pattern: &str, pp: &Section) -> bool {
    glob_match(pattern, &pp.type_name) || glob_match(pattern, &pp.name)
}

/// Reports a plugin type kiln does not implement; true when it is supported.
fn is_supported(
    kind: &str,
    supported: &[&str],
    ctx: &DecodeContext<'_>,
    section: &Section,
    diags: &mut Diagnostics,
) -> bool {
    if supported.contains(&section.type_name.as_str()) {
        return true;
    }
    let (msg, hint) = unsupported_type(kind, &section.type_name, &section.name, supported);
    let location = ctx.template.location(section.type_span);
    diags.error(section.path.clone(), msg, location).hint = Some(hint);
    false
}

/// Builder, provisioner and post-processor types of Packer and its
/// HashiCorp plugins that kiln does not implement, near enough to one it
/// does for a did-you-mean to mislead.
const PACKER_TYPES_NOT_IN_KILN: &[&str] = &[
    "virtualbox-ovf",
    "virtualbox-vm",
    "vmware-iso",
    "vmware-vmx",
    "hyperv-iso",
    "hyperv-vmcx",
    "parallels-iso",
    "parallels-pvm",
    "amazon-ebs",
    "amazon-ebssurrogate",
    "amazon-ebsvolume",
    "amazon-instance",
    "amazon-chroot",
    "googlecompute-chroot",
    "vagrant",
    "file",
    "docker",
    "docker-import",
    "docker-push",
    "docker-tag",
    "docker-save",
    "vagrant-cloud",
    "vagrant-registry",
    "windows-shell",
    "windows-restart",
    "powershell",
    "chef-client",
    "puppet-masterless",
    "puppet-server",
    "ansible-navigator",
    "inspec",
    "converge",
    "artifice",
];

fn unsupported_type(
    kind: &str,
    name: &str,
    section_name: &str,
    supported: &[&str],
) -> (String, String) {
    // The flag to copy, for a template made for several hypervisors.
    let leave_out = match kind {
        "provisioner" => {
            "kiln cannot run it: remove it, or limit it with `only` to builds kiln leaves out"
                .to_owned()
        }
        _ => {
            let flag_name = if section_name.is_empty() {
                name
            } else {
                section_name
            };
            format!("`-except={flag_name}` leaves it out and runs the rest")
        }
    };
    // A real type of Packer's is not a misspelling of a neighbour
    // (`virtualbox-ovf` is not `virtualbox-iso`).
    let suggestion = if PACKER_TYPES_NOT_IN_KILN.contains(&name) {
        None
    } else {
        did_you_mean(name, supported.iter().copied())
    };
    let hint = match suggestion {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "kiln supports the {kind} types {}; {leave_out}",
            supported.join(", ")
        ),
    };
    (
        format!("{kind} type `{name}` is not supported by kiln"),
        hint,
    )
}

fn decode_builder(
    ctx: &DecodeContext<'_>,
    section: &Section,
    diags: &mut Diagnostics,
) -> Option<BuilderConfig> {
    if !is_supported("builder", BUILDER_TYPES, ctx, section, diags) {
        return None;
    }
    let mut f = Fields::new(ctx, section.path.clone(), &section.body, diags);
    f.skip(&["type", "name"]);
    let config = match section.type_name.as_str() {
        "qemu" => qemu::QemuConfig::decode(&mut f).map(|c| BuilderConfig::Qemu(Box::new(c))),
        "virtualbox-iso" => virtualbox::VirtualBoxIsoConfig::decode(&mut f)
            .map(|c| BuilderConfig::VirtualBoxIso(Box::new(c))),
        "googlecompute" => googlecompute::GoogleComputeConfig::decode(&mut f)
            .map(|c| BuilderConfig::GoogleCompute(Box::new(c))),
        _ => null::NullConfig::decode(&mut f).map(|c| BuilderConfig::Null(Box::new(c))),
    };
    f.finish();
    config
}

/// Reads `only`/`except` of a provisioner or post-processor, checking the names.
fn applies_to(
    ctx: &DecodeContext<'_>,
    section: &Section,
    names: &[&str],
    diags: &mut Diagnostics,
) -> bool {
    let build = ctx.raw_build_name.unwrap_or("");
    let mut list = |key: &str| -> Option<Vec<String>> {
        let node = section.body.get(key)?;
        let items: Vec<String> = match &node.value {
            Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            Value::String(s) => s.split(',').map(str::to_owned).collect(),
            _ => {
                diags.error(
                    section.path.clone(),
                    format!(
                        "{key}: expected a list of build names, found {}",
                        node.kind()
                    ),
                    ctx.template.location(node.span),
                );
                return None;
            }
        };
        for name in &items {
            if !names.contains(&name.as_str()) {
                let d = diags.error(
                    section.path.clone(),
                    format!("{key}: `{name}` is not the name of a build"),
                    ctx.template.location(node.span),
                );
                d.hint = Some(match did_you_mean(name, names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("the builds are: {}", names.join(", ")),
                });
            }
        }
        Some(items)
    };
    let only = list("only");
    let except = list("except");
    if only.is_some() && except.is_some() {
        diags.error(
            section.path.clone(),
            "only and except cannot both be set",
            ctx.template.location(section.type_span),
        );
    }
    match (only, except) {
        (Some(only), _) => only.iter().any(|n| n == build),
        (None, Some(except)) => !except.iter().any(|n| n == build),
        (None, None) => true,
    }
}

/// The provisioner's object with the build's `override` merged over it.
fn with_override(
    ctx: &DecodeContext<'_>,
    section: &Section,
    names: &[&str],
    diags: &mut Diagnostics,
) -> Node {
    let Some(over) = section.body.get("override") else {
        return section.body.clone();
    };
    let Some(builds) = over.as_object() else {
        diags.error(
            section.path.clone(),
            format!(
                "override: expected an object of build name: settings, found {}",
                over.kind()
            ),
            ctx.template.location(over.span),
        );
        return section.body.clone();
    };
    let mut merged: Vec<Member> = section
        .body
        .as_object()
        .map(<[Member]>::to_vec)
        .unwrap_or_default();
    for b in builds {
        if !names.contains(&b.key.as_str()) {
            diags
                .error(
                    section.path.clone(),
                    format!("override: `{}` is not the name of a build", b.key),
                    ctx.template.location(b.key_span),
                )
                .hint =
                did_you_mean(&b.key, names.iter().copied()).map(|s| format!("did you mean `{s}`?"));
            continue;
        }
        if Some(b.key.as_str()) != ctx.raw_build_name {
            continue;
        }
        let Some(settings) = b.value.as_object() else {
            diags.error(
                section.path.clone(),
                format!(
                    "override.{}: expected an object, found {}",
                    b.key,
                    b.value.kind()
                ),
                ctx.template.location(b.value.span),
            );
            continue;
        };
        for m in settings {
            merged.retain(|x| x.key != m.key);
            merged.push(m.clone());
        }
    }
    Node {
        value: Value::Object(merged),
        span: section.body.span,
    }
}

fn duration_key(f: &mut Fields<'_>, key: &'static str) -> Option<Duration> {
    f.duration(key)
}

fn provisioner_for_build(
    ctx: &DecodeContext<'_>,
    section: &Section,
    names: &[&str],
    diags: &mut Diagnostics,
) -> Option<Provisioner> {
    let applies = applies_to(ctx, section, names, diags);
    // Prepared only for the builds it runs in, with that build's override,
    // as in Packer: a step for other builds may get a required key from
    // their override alone (and one kiln cannot run, a VMware-only tools
    // step say, is fine where it is kept out).
    if !applies {
        return None;
    }
    if !is_supported("provisioner", PROVISIONER_TYPES, ctx, section, diags) {
        return None;
    }
    let body = with_override(ctx, section, names, diags);
    let mut f = Fields::new(ctx, section.path.clone(), &body, diags);
    let pause_before = duration_key(&mut f, "pause_before").unwrap_or_default();
    let timeout = duration_key(&mut f, "timeout").filter(|d| !d.is_zero());
    let max_retries = f.u64("max_retries").unwrap_or(0) as u32;
    let kind = ProvisionerKind::decode(&section.type_name, &mut f);
    f.finish();
    Some(Provisioner {
        path: section.path.clone(),
        type_name: section.type_name.clone(),
        pause_before,
        timeout,
        max_retries,
        kind: kind?,
    })
}

fn post_processor_for_build(
    ctx: &DecodeContext<'_>,
    section: &Section,
    names: &[&str],
    diags: &mut Diagnostics,
) -> Option<PostProcessor> {
    let applies = applies_to(ctx, section, names, diags);
    // One kiln cannot run is fine where its `only`/`except` keeps it out
    // of this build (a template's VMware-only tools step, say).
    if !applies && !POST_PROCESSOR_TYPES.contains(&section.type_name.as_str()) {
        return None;
    }
    if !is_supported("post-processor", POST_PROCESSOR_TYPES, ctx, section, diags) {
        return None;
    }
    // Packer decodes this key strictly: it must be a JSON boolean.
    let keep_input_artifact = match section.body.get("keep_input_artifact") {
        None => None,
        Some(Node {
            value: Value::Bool(b),
            ..
        }) => Some(*b),
        Some(other) => {
            diags.error(
                section.path.clone(),
                format!(
                    "keep_input_artifact: expected true or false, found {}",
                    other.kind()
                ),
                ctx.template.location(other.span),
            );
            None
        }
    };
    let mut f = Fields::new(ctx, section.path.clone(), &section.body, diags);
    let kind = PostProcessorKind::decode(&section.type_name, &mut f);
    f.finish();
    if !applies {
        return None;
    }
    Some(PostProcessor {
        path: section.path.clone(),
        type_name: section.type_name.clone(),
        keep_input_artifact,
        kind: kind?,
    })
}

/// `min_packer_version` is checked against the Packer release kiln follows.
fn check_min_version(t: &Template, diags: &mut Diagnostics) {
    let Some((wanted, span)) = &t.min_packer_version else {
        return;
    };
    let parse = |s: &str| -> Option<Vec<u64>> {
        s.trim()
            .trim_start_matches('v')
            .split('-')
            .next()?
            .split('.')
            .map(|p| p.parse().ok())
            .collect()
    };
    let Some(w) = parse(wanted) else {
        diags.error(
            "min_packer_version",
            format!("`{wanted}` is not a version number"),
            t.location(*span),
        );
        return;
    };
    let ours = parse(crate::PACKER_COMPAT_VERSION).unwrap_or_default();
    if w > ours {
        diags.compat(
            crate::template::compat::Compat::NewerMinPackerVersion,
            "min_packer_version",
            format!(
                "the template asks for Packer {wanted} or newer; kiln follows Packer {} templates, so features added later may be missing",
                crate::PACKER_COMPAT_VERSION
            ),
            t.location(Span::new(span.start, span.end)),
        );
    }
}

/// Loads, resolves (defaults only, no environment) and prepares a template
/// given as text: for tests and tools that check a template in memory.
pub fn prepare_text(text: &str, selection: &Selection) -> (Prepared, Diagnostics) {
    let mut diags = Diagnostics::new();
    let file = crate::template::source::SourceFile::new("template.json", text.to_owned());
    let dir = std::path::PathBuf::from("/tmp");
    let Ok(template) = crate::template::model::parse(file, dir, &mut diags) else {
        return (Prepared::default(), diags);
    };
    let env = |_: &str| None;
    let environment = crate::template::variables::Environment {
        env: &env,
        init_time: SystemTime::UNIX_EPOCH,
        pwd: Path::new("/tmp"),
    };
    let inputs = crate::template::variables::VariableInputs::default();
    let vars = crate::template::variables::resolve(&template, &inputs, &environment, &mut diags);
    let input = PrepareInput {
        template: &template,
        vars: &vars,
        selection,
        pwd: Path::new("/tmp"),
        init_time: SystemTime::UNIX_EPOCH,
    };
    let prepared = prepare(&input, &mut diags);
    (prepared, diags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const TWO_BUILDS: &str = r#"{
        "variables": {"mem": "1024"},
        "builders": [
            {"type": "qemu", "iso_url": "a.iso", "iso_checksum": "none", "ssh_username": "root", "memory": "{{user `mem`}}"},
            {"type": "qemu", "name": "b", "iso_url": "a.iso", "iso_checksum": "none", "ssh_username": "root", "cd_files": "x,y"}
        ],
        "provisioners": [
            {"type": "shell", "inline": ["echo {{build_name}}"], "override": {"b": {"inline": ["echo overridden"]}}},
            {"type": "shell-local", "inline": ["true"], "only": ["b"]}
        ]
    }"#;

    fn qemu(build: &Build) -> &qemu::QemuConfig {
        match &build.builder {
            BuilderConfig::Qemu(q) => q,
            other => panic!("not qemu: {other:?}"),
        }
    }

    /// Packer's SDK: a non-zero `ssh_wait_timeout` wins over `ssh_timeout`
    /// when a template sets both; zero leaves `ssh_timeout`.
    #[test]
    fn ssh_wait_timeout_wins_over_ssh_timeout_as_in_packer() {
        for (old, want) in [("30m", 1800), ("0s", 1200)] {
            let text = format!(
                r#"{{"builders": [{{"type": "qemu", "iso_url": "a.iso", "iso_checksum": "none",
                    "ssh_username": "root", "ssh_timeout": "20m", "ssh_wait_timeout": "{old}"}}]}}"#
            );
            let (p, diags) = prepare_text(&text, &Selection::default());
            assert!(!diags.has_errors(), "{}", diags.render());
            assert_eq!(
                qemu(&p.builds[0]).communicator.ssh().map(|s| s.timeout),
                Some(Duration::from_secs(want)),
                "ssh_wait_timeout {old}"
            );
        }
    }

    #[test]
    fn qemu_defaults_follow_packer_and_kiln() {
        let (p, diags) = prepare_text(TWO_BUILDS, &Selection::default());
        assert!(!diags.has_errors(), "{}", diags.render());
        let q = qemu(&p.builds[0]);
        assert_eq!(q.memory_mib, 1024);
        assert_eq!(q.cpus, 1);
        assert_eq!(q.disk_size_mib, 40960);
        assert_eq!(q.boot.wait, Duration::from_secs(10));
        assert_eq!(q.shutdown.timeout, Duration::from_secs(300));
        assert_eq!(q.http.bind_address, "127.0.0.1");
        assert_eq!((q.http.port_min, q.http.port_max), (8000, 9000));
        assert_eq!((q.host_port_min, q.host_port_max), (2222, 4444));
        assert_eq!(q.output_directory, PathBuf::from("output-qemu"));
        assert_eq!(q.vm_name, "packer-qemu");
        assert_eq!(q.accelerator, None);
        assert_eq!(
            q.communicator.ssh().map(|s| s.timeout),
            Some(Duration::from_secs(300))
        );
        // A string for a list is split on commas, as Packer's decoder does.
        assert_eq!(qemu(&p.builds[1]).media.cd.files, ["x", "y"]);
    }

    /// Issue #11: old keys are rendered like new ones (a templated
    /// `iso_checksum_url` was taken as a file named `{{user …}}`).
    #[test]
    fn deprecated_keys_are_rendered_like_any_other() {
        let (p, diags) = prepare_text(
            r#"{
            "variables": {"mirror": "https://mirror.example/debian", "type": "sha256", "no_agent": "true", "wait": "20m", "port": "3022",
                          "sum": "0000000000000000000000000000000000000000000000000000000000000000"},
            "builders": [
                {"type": "qemu", "iso_url": "a.iso", "iso_checksum_url": "{{user `mirror`}}/SHA256SUMS",
                 "iso_checksum_type": "{{user `type`}}", "ssh_username": "root",
                 "ssh_disable_agent": "{{user `no_agent`}}", "ssh_wait_timeout": "{{user `wait`}}",
                 "ssh_host_port_min": "{{user `port`}}", "ssh_host_port_max": "{{user `port`}}"},
                {"type": "qemu", "name": "b", "iso_url": "a.iso", "iso_checksum": "{{user `sum`}}",
                 "iso_checksum_type": "{{user `type`}}", "ssh_username": "root"}
            ]
        }"#,
            &Selection::default(),
        );
        assert!(!diags.has_errors(), "{}", diags.render());
        let q = qemu(&p.builds[0]);
        assert_eq!(
            q.iso.checksum,
            "file:https://mirror.example/debian/SHA256SUMS"
        );
        let ssh = q.communicator.ssh().expect("ssh");
        assert!(ssh.disable_agent_forwarding);
        assert_eq!(ssh.timeout, Duration::from_secs(1200));
        assert_eq!((q.host_port_min, q.host_port_max), (3022, 3022));
        assert_eq!(
            qemu(&p.builds[1]).iso.checksum,
            format!("sha256:{}", "0".repeat(64))
        );
    }

    /// Packer renders builder names with the user variables; `only`,
    /// `except` and `override` still refer to the name as written.
    #[test]
    fn builder_names_are_rendered_with_user_variables() {
        let text = r#"{
            "variables": {"os": "debian-12"},
            "builders": [{"type": "qemu", "name": "{{user `os`}}-qemu", "vm_name": "{{build_name}}.qcow2",
                          "iso_url": "a.iso", "iso_checksum": "none", "ssh_username": "root"}],
            "provisioners": [{"type": "shell", "inline": ["a"], "only": ["{{user `os`}}-qemu"],
                              "override": {"{{user `os`}}-qemu": {"inline": ["b"]}}}]
        }"#;
        let selection = Selection {
            only: vec!["debian-12-qemu".into()],
            except: Vec::new(),
        };
        let (p, diags) = prepare_text(text, &selection);
        assert!(!diags.has_errors(), "{}", diags.render());
        assert_eq!(p.builds[0].name, "debian-12-qemu");
        assert_eq!(qemu(&p.builds[0]).vm_name, "debian-12-qemu.qcow2");
        assert_eq!(rendered_inline(&p.builds[0]), ["b"]);
    }

    /// A shell provisioner's `inline`, rendered as it runs in `build`.
    fn rendered_inline(build: &Build) -> Vec<String> {
        let env =
            RenderEnv::single_build("unused", "unused", Path::new(".")).for_build(build.names());
        let none = std::collections::BTreeMap::new();
        match &build.provisioners[0].kind {
            provisioner::ProvisionerKind::Shell(s) => match &s.source {
                provisioner::ShellSource::Inline(lines) => lines
                    .iter()
                    .map(|d| d.template.render(&env.context(&none)).expect("renders"))
                    .collect(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn overrides_and_only_apply_per_build() {
        let (p, _) = prepare_text(TWO_BUILDS, &Selection::default());
        assert_eq!(rendered_inline(&p.builds[0]), ["echo qemu"]);
        assert_eq!(rendered_inline(&p.builds[1]), ["echo overridden"]);
        assert_eq!(p.builds[0].provisioners.len(), 1);
        assert_eq!(p.builds[1].provisioners.len(), 2);
    }

    #[test]
    fn selection_leaves_builds_out() {
        let (p, diags) = prepare_text(
            TWO_BUILDS,
            &Selection {
                only: vec![],
                except: vec!["q*".into()],
            },
        );
        assert!(!diags.has_errors());
        assert_eq!(
            p.builds.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(p.skipped.len(), 1);
    }
}
