//! The HCL2 front end: `.pkr.hcl` files and directories of them, read with
//! hcl-edit (spans) and evaluated with hcl-rs, with Packer's semantics on
//! top (variables, locals, sources, builds, the function library). It
//! produces the same `Template` model as the JSON front end: every source,
//! provisioner and post-processor body becomes a spanned JSON value whose
//! spans point into the right HCL file.

mod body;
pub mod builds;
mod data;
mod data_http;
mod inspect;
mod json_syntax;
pub use inspect::render as render_inspect;
pub mod eval;
pub mod fmt;
pub mod functions;
mod locals;
mod packer_block;
pub mod types;
pub mod unknown;
pub mod upgrade;
mod variables;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hcl::edit::structure::Body;

use crate::template::diagnostic::{Diagnostics, Location, Severity};
use crate::template::json::Span;
use crate::template::model::{FileAt, LoadError, Template};
use crate::template::source::SourceFile;

/// The Packer release whose HCL2 templates kiln follows: `packer.version`,
/// and what `required_version` is checked against.
pub const PACKER_HCL2_VERSION: &str = "1.11.2";

/// True for what the HCL2 front end reads: a directory, `*.pkr.hcl`, or
/// `*.pkr.json` (Packer reads any `.hcl` given by name too).
pub fn is_hcl(path: &Path) -> bool {
    let name = path.to_string_lossy();
    path.is_dir()
        || name.ends_with(".pkr.hcl")
        || name.ends_with(".hcl")
        || name.ends_with(".pkr.json")
}

/// What loading needs from the command line and the environment.
pub struct Inputs<'a> {
    pub var_files: &'a [PathBuf],
    pub vars: &'a [String],
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Every `PKR_VAR_*` variable's name (without the prefix) and value.
    pub env_vars: Vec<(String, String)>,
    /// `inspect`: missing variables are not errors, and sections whose
    /// values cannot be evaluated are still listed.
    pub lenient: bool,
    /// Run the data sources' programs (`build`, `validate
    /// -evaluate-datasources`); otherwise their results are placeholders.
    pub evaluate_datasources: bool,
    /// Warn about values set in var files for undeclared variables
    /// (`validate -no-warn-undeclared-var` turns it off).
    pub warn_undeclared: bool,
}

/// A loaded HCL2 template.
#[derive(Debug)]
pub struct Loaded {
    pub template: Template,
    /// The values of sensitive variables and locals, to mask in output.
    pub secrets: Vec<String>,
    /// Things said once, not problems (a built-in plugin that needs no install).
    pub notes: Vec<String>,
    pub locals: Vec<(String, String)>,
    /// Each variable's value after var files, `-var` and `PKR_VAR_*`
    /// (absent: a required variable nobody set), for `inspect`.
    pub variable_values: hcl::Map<String, hcl::Value>,
    pub builds: Vec<builds::BuildOutline>,
    /// Every source block, as `TYPE.NAME`.
    pub sources: Vec<String>,
    /// Where a plugin's configuration holds a value computed from a data
    /// source that was not run (plain `validate`): Packer's stand-in is
    /// there, and what the checks say about it is not a problem.
    pub unknown_places: Vec<Location>,
}

/// Every file of the template, its spans offset so that one `Span` says
/// which file it is in.
#[derive(Debug, Default)]
pub(crate) struct Files {
    pub files: Vec<FileAt>,
    /// Where the next file's spans start: past the longer of a file's
    /// text and, for a JSON-syntax file, its translation.
    next_base: usize,
}

impl Files {
    pub fn location(&self, span: Span) -> Option<Location> {
        let f = self.files.iter().rev().find(|f| span.start >= f.base)?;
        Some(Location {
            file: f.file.clone(),
            span: Span::new(span.start - f.base, span.end.saturating_sub(f.base)),
        })
    }

    fn add(&mut self, path: &Path, text: String) -> (usize, Arc<SourceFile>) {
        self.add_reserving(path, text, 0)
    }

    /// Adds a file whose spans may run to `reserve` bytes past its base
    /// even if its text is shorter.
    fn add_reserving(
        &mut self,
        path: &Path,
        text: String,
        reserve: usize,
    ) -> (usize, Arc<SourceFile>) {
        let base = self.next_base;
        self.next_base = base + text.len().max(reserve) + 1;
        let file = Arc::new(SourceFile::new(path, text));
        self.files.push(FileAt {
            base,
            file: file.clone(),
        });
        (base, file)
    }
}

/// A global span from an hcl-edit item's range in a file at `base`.
/// In a JSON-syntax file, the range is in its translation and is mapped
/// back to the JSON text.
pub(crate) fn span_of(base: usize, range: Option<Range<usize>>) -> Span {
    range.map_or(Span::new(base, base), |r| {
        let start = json_syntax::map_offset(base, r.start);
        let end = json_syntax::map_offset(base, r.end).max(start);
        Span::new(base + start, base + end)
    })
}

/// One parsed file.
pub(crate) struct Parsed {
    pub base: usize,
    pub body: Body,
}

/// Reads one file with the same bounds as JSON templates (64 MiB, a FIFO
/// without a writer is an error).
fn read(path: &Path) -> Result<String, LoadError> {
    let bytes = crate::template::input::read_input(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8 {
        path: path.to_owned(),
    })
}

/// The template's files and the `*.auto.pkrvars.*` files beside them, in
/// Packer's order (lexical).
fn list_files(path: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), LoadError> {
    if !path.is_dir() {
        return Ok((vec![path.to_owned()], Vec::new()));
    }
    let entries = std::fs::read_dir(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source: crate::template::input::InputError::Io(source),
    })?;
    let mut templates = Vec::new();
    let mut auto_vars = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !e.path().is_file() {
            continue;
        }
        if name.ends_with(".auto.pkrvars.hcl") || name.ends_with(".auto.pkrvars.json") {
            auto_vars.push(e.path());
        } else if name.ends_with(".pkr.hcl") || name.ends_with(".pkr.json") {
            templates.push(e.path());
        }
    }
    templates.sort();
    auto_vars.sort();
    Ok((templates, auto_vars))
}

/// Loads an HCL2 template: a file or a directory.
pub fn load(
    path: &Path,
    inputs: &Inputs<'_>,
    diags: &mut Diagnostics,
) -> Result<Loaded, LoadError> {
    let (paths, auto_vars) = list_files(path)?;
    let mut sources = Vec::new();
    for p in paths {
        let text = read(&p)?;
        sources.push((p, text));
    }
    let dir = if path.is_dir() {
        path.to_owned()
    } else {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    };
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    if sources.is_empty() {
        let mut d = Diagnostics::new();
        d.error(
            "",
            format!("{} has no *.pkr.hcl or *.pkr.json files", path.display()),
            None,
        )
        .hint = Some(
            "kiln reads every *.pkr.hcl and *.pkr.json file in the directory, as Packer does"
                .into(),
        );
        return Err(LoadError::Invalid(d));
    }
    load_sources(sources, &auto_vars, dir, inputs, diags)
}

/// Loads a template from texts already in memory (one per file, in
/// Packer's order); `dir` is `path.root`.
pub fn load_sources(
    sources: Vec<(PathBuf, String)>,
    auto_vars: &[PathBuf],
    dir: PathBuf,
    inputs: &Inputs<'_>,
    diags: &mut Diagnostics,
) -> Result<Loaded, LoadError> {
    // Packer reads `file("x")` and its kin from the template's directory.
    let _base_dir = functions::BaseDir::set(&dir);
    let mut files = Files::default();
    let mut parsed = Vec::new();
    let mut syntax = Diagnostics::new();
    let maps = json_syntax::MapsInUse::new();
    for (p, text) in sources {
        if p.to_string_lossy().ends_with(".json") {
            read_json_syntax(&p, text, &mut files, &maps, &mut parsed, &mut syntax);
            continue;
        }
        let (base, file) = files.add(&p, text);
        match hcl::edit::parser::parse_body(file.text()) {
            Ok(body) => parsed.push(Parsed { base, body }),
            Err(e) => {
                let at = base + e.location().offset();
                syntax
                    .error(
                        "",
                        format!("invalid HCL: {}", e.message()),
                        files.location(Span::new(at, at + 1)),
                    )
                    .hint = Some(syntax_hint(e.message()));
            }
        }
    }
    if syntax.has_errors() {
        return Err(LoadError::Invalid(syntax));
    }

    let mut notes = Vec::new();
    packer_block::check(&parsed, &files, diags, &mut notes);
    check_top_level(&parsed, &files, diags);
    // Values are not needed to list or syntax-check a template
    // (`inspect`, `validate -syntax-only`): their errors are left out then.
    let mut value_diags = Diagnostics::new();
    let vars = variables::resolve(&parsed, auto_vars, inputs, &files, &mut value_diags);
    let mut scope = eval::Scope::default();
    scope.set("var", hcl::Value::Object(vars.values.clone()));
    let mut path_obj = hcl::Map::new();
    path_obj.insert(
        "root".to_owned(),
        hcl::Value::String(dir.to_string_lossy().into_owned()),
    );
    let cwd = std::env::current_dir().unwrap_or_default();
    path_obj.insert(
        "cwd".to_owned(),
        hcl::Value::String(cwd.to_string_lossy().into_owned()),
    );
    scope.set("path", hcl::Value::Object(path_obj));
    let mut packer = hcl::Map::new();
    packer.insert(
        "version".to_owned(),
        hcl::Value::String(PACKER_HCL2_VERSION.to_owned()),
    );
    // Packer's HCP Packer registry values; kiln publishes to no registry
    // (a build's `hcp_packer_registry` gets a warning saying so).
    for hcp in ["iterationID", "versionFingerprint"] {
        packer.insert(hcp.to_owned(), hcl::Value::String(String::new()));
    }
    scope.set("packer", hcl::Value::Object(packer));
    let mut locals_diags = Diagnostics::new();
    let evaluated = locals::evaluate(
        &parsed,
        &scope,
        &vars.missing,
        inputs.evaluate_datasources,
        &files,
        &mut locals_diags,
    );
    if inputs.lenient {
        // A listing (`inspect`) leaves out the values it cannot compute;
        // a local that fails on its own (not for a missing variable) is
        // still worth a word, or it would vanish from the listing silently.
        for mut d in locals_diags.iter().cloned() {
            d.severity = Severity::Warning;
            diags.push(d);
        }
    } else {
        value_diags.extend(locals_diags);
    }
    let locals = evaluated.locals;
    scope.set("data", evaluated.data);
    scope.failed = evaluated.failed;
    let variables_failed = !vars.missing.is_empty();
    scope.set("local", hcl::Value::Object(locals.values.clone()));

    let variable_values: hcl::Map<String, hcl::Value> = vars
        .values
        .iter()
        .filter(|(k, _)| !vars.missing.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut secrets = vars.secrets;
    secrets.extend(locals.secrets);
    let Some(first) = files.files.first().map(|f| f.file.clone()) else {
        return Err(LoadError::Invalid(Diagnostics::new()));
    };
    let more_files = files.files[1..].to_vec();
    let mut template = Template {
        file: first,
        more_files,
        dir,
        description: None,
        min_packer_version: None,
        variables: vars.decls,
        sensitive_variables: vars.sensitive,
        builders: Vec::new(),
        provisioners: Vec::new(),
        error_cleanup_provisioner: None,
        post_processors: Vec::new(),
    };
    // Builds cannot be evaluated without every variable; when one is
    // missing, its error is what the user needs to see, not the builds'
    // errors that follow from its null value.
    let mut build_diags = Diagnostics::new();
    let builds = builds::read(&parsed, &scope, &files, &mut template, &mut build_diags);
    // Plain `validate` runs no data source: what was computed from one is
    // unknown, and its checks are skipped, as in Packer.
    let mut filled = Vec::new();
    for section in template
        .builders
        .iter_mut()
        .chain(template.provisioners.iter_mut())
        .chain(template.error_cleanup_provisioner.iter_mut())
        .chain(template.post_processors.iter_mut().flatten())
    {
        unknown::replace_in_node(&mut section.body, &mut filled);
    }
    let unknown_places = filled
        .into_iter()
        .filter_map(|s| files.location(s))
        .collect();
    if !variables_failed {
        value_diags.extend(build_diags);
    }
    if !inputs.lenient {
        diags.extend(value_diags);
    }
    let locals_shown = locals.shown;
    let sources = parsed
        .iter()
        .flat_map(|p| p.body.blocks())
        .filter(|b| b.ident.as_str() == "source")
        .map(|b| {
            b.labels
                .iter()
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect();
    Ok(Loaded {
        template,
        secrets,
        notes,
        locals: locals_shown,
        variable_values,
        builds,
        sources,
        unknown_places,
    })
}

/// A `*.pkr.json` file: translated to native syntax, its spans mapped back
/// to the JSON text (see `json_syntax`).
fn read_json_syntax(
    path: &Path,
    text: String,
    files: &mut Files,
    maps: &json_syntax::MapsInUse,
    parsed: &mut Vec<Parsed>,
    syntax: &mut Diagnostics,
) {
    match json_syntax::translate(&text) {
        Ok(t) => {
            let (base, _) = files.add_reserving(path, text, t.hcl.len());
            maps.add(base, Arc::new(t.map));
            match hcl::edit::parser::parse_body(&t.hcl) {
                Ok(body) => parsed.push(Parsed { base, body }),
                Err(e) => {
                    let at = base + json_syntax::map_offset(base, e.location().offset());
                    syntax
                        .error(
                            "",
                            format!("invalid template: {}", e.message()),
                            files.location(Span::new(at, at + 1)),
                        )
                        .hint = Some(
                        "strings in *.pkr.json are HCL templates: check the ${…} in this one"
                            .into(),
                    );
                }
            }
        }
        Err(errors) => {
            let (base, _) = files.add(path, text);
            for e in errors {
                syntax
                    .error(
                        "",
                        e.message,
                        files.location(Span::new(base + e.span.start, base + e.span.end)),
                    )
                    .hint = Some(e.hint);
            }
        }
    }
}

/// Blocks and attributes Packer does not know at the top of a file.
fn check_top_level(parsed: &[Parsed], files: &Files, diags: &mut Diagnostics) {
    const BLOCKS: &[&str] = &[
        "packer",
        "variable",
        "variables",
        "locals",
        "local",
        "source",
        "build",
        "data",
    ];
    for p in parsed {
        for s in p.body.iter() {
            match s {
                hcl::edit::structure::Structure::Attribute(a) => {
                    use hcl::edit::Span as _;
                    diags
                        .error(
                            "",
                            format!("unexpected attribute `{}` at the top level", a.key.as_str()),
                            files.location(span_of(p.base, a.key.span())),
                        )
                        .hint = Some(
                        "attributes belong inside a block: source, build, locals, variable".into(),
                    );
                }
                hcl::edit::structure::Structure::Block(b) => {
                    use hcl::edit::Span as _;
                    let name = b.ident.as_str();
                    // `data` blocks are read by `data::evaluate`.
                    if name != "data" && !BLOCKS.contains(&name) {
                        let d = diags.error(
                            "",
                            format!("unknown block type `{name}`"),
                            files.location(span_of(p.base, b.ident.span())),
                        );
                        d.hint =
                            crate::template::diagnostic::did_you_mean(name, BLOCKS.iter().copied())
                                .map(|s| format!("did you mean `{s}`?"))
                                .or_else(|| Some(format!("the blocks are: {}", BLOCKS.join(", "))));
                    }
                }
            }
        }
    }
}

fn syntax_hint(message: &str) -> String {
    if message.contains("expected") && message.contains('}') {
        "check for an unclosed `{` or a missing `=` before a value".into()
    } else {
        "HCL attributes are `name = value`, blocks are `type \"label\" { … }`".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, PrepareInput, Selection};

    fn prepare(text: &str, selection: &Selection) -> (config::Prepared, Diagnostics) {
        let no_env = |_: &str| None;
        let inputs = Inputs {
            var_files: &[],
            vars: &[],
            env: &no_env,
            env_vars: Vec::new(),
            lenient: false,
            evaluate_datasources: true,
            warn_undeclared: true,
        };
        let mut diags = Diagnostics::new();
        let sources = vec![(PathBuf::from("t.pkr.hcl"), text.to_owned())];
        let loaded =
            load_sources(sources, &[], PathBuf::from("/tmp"), &inputs, &mut diags).expect("loads");
        let vars = crate::template::variables::ResolvedVariables::default();
        let prepared = config::prepare(
            &PrepareInput {
                template: &loaded.template,
                vars: &vars,
                selection,
                pwd: Path::new("/tmp"),
                init_time: std::time::SystemTime::UNIX_EPOCH,
            },
            &mut diags,
        );
        (prepared, diags)
    }

    const TWO_CHAINS: &str = r#"
source "qemu" "one" {
  iso_url          = "http://127.0.0.1/x.iso"
  iso_checksum     = "none"
  ssh_username     = "root"
  shutdown_command = "poweroff"
}
build {
  sources = ["source.qemu.one"]
  post-processors {
    post-processor "compress" {
      name   = "pack"
      output = "out.tar.gz"
    }
    post-processor "checksum" {}
  }
  post-processor "manifest" {}
}
"#;

    fn chains(p: &config::Prepared) -> Vec<Vec<String>> {
        p.builds[0]
            .post_processors
            .iter()
            .map(|c| c.iter().map(|pp| pp.type_name.clone()).collect())
            .collect()
    }

    /// Packer names a build `[BUILD.]TYPE.NAME` for -only/-except and the
    /// output, but gives the builder the source's own name as its build
    /// name: `output-tiny` and `packer-tiny` for `source "qemu" "tiny"`,
    /// even where a build uses it under another `name`.
    #[test]
    fn builds_are_named_type_dot_name_and_builders_get_the_source_name() {
        let text = r#"
source "qemu" "tiny" {
  iso_url          = "http://127.0.0.1/x.iso"
  iso_checksum     = "none"
  ssh_username     = "root"
  shutdown_command = "poweroff"
}
build {
  sources = ["source.qemu.tiny"]
}
build {
  name = "b"
  source "source.qemu.tiny" {
    name = "second"
  }
  post-processor "manifest" {}
}
"#;
        let (p, diags) = prepare(text, &Selection::default());
        assert!(!diags.has_errors(), "{}", diags.render());
        let named: Vec<(String, String, String)> = p
            .builds
            .iter()
            .map(|b| match &b.builder {
                config::BuilderConfig::Qemu(q) => (
                    b.name.clone(),
                    q.output_directory.display().to_string(),
                    q.vm_name.clone(),
                ),
                other => panic!("not qemu: {other:?}"),
            })
            .collect();
        let expected = |name: &str| {
            (
                name.to_owned(),
                "output-tiny".to_owned(),
                "packer-tiny".to_owned(),
            )
        };
        assert_eq!(named, [expected("qemu.tiny"), expected("b.qemu.second")]);
        // The manifest records the builder's build name, as Packer's does.
        match &p.builds[1].post_processors[0][0].kind {
            config::post_processor::PostProcessorKind::Manifest(m) => {
                assert_eq!(m.build_name.as_deref(), Some("tiny"));
            }
            other => panic!("not a manifest: {other:?}"),
        }

        let only = Selection {
            only: vec!["qemu.tiny".to_owned()],
            except: Vec::new(),
        };
        let (p, diags) = prepare(text, &only);
        assert!(!diags.has_errors(), "{}", diags.render());
        let names: Vec<&str> = p.builds.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["qemu.tiny"]);
    }

    #[test]
    fn except_names_post_processors_and_drops_the_rest_of_their_chain() {
        let (p, diags) = prepare(TWO_CHAINS, &Selection::default());
        assert!(!diags.has_errors(), "{}", diags.render());
        assert_eq!(chains(&p), [vec!["compress", "checksum"], vec!["manifest"]]);

        for pattern in ["pack", "compress"] {
            let selection = Selection {
                only: Vec::new(),
                except: vec![pattern.to_owned()],
            };
            let (p, diags) = prepare(TWO_CHAINS, &selection);
            assert!(!diags.has_errors(), "{}", diags.render());
            assert_eq!(chains(&p), [vec!["manifest"]], "-except={pattern}");
        }
    }

    /// A real-template form: one build per element of a map, each with
    /// the overrides its iteration gives, and provisioners filtered by
    /// the names the iterations made.
    #[test]
    fn a_dynamic_source_in_a_build_makes_one_build_per_element() {
        let text = r#"
locals {
  images = {
    small = { memory = 256 }
    large = { memory = 1024 }
  }
}
source "qemu" "base" {
  iso_url          = "http://127.0.0.1/tiny.iso"
  iso_checksum     = "none"
  ssh_username     = "root"
  ssh_password     = "pw"
  shutdown_command = "poweroff"
}
build {
  dynamic "source" {
    for_each = local.images
    iterator = image
    labels   = ["sources.qemu.base"]
    content {
      name   = image.key
      memory = image.value.memory
    }
  }
  provisioner "shell" {
    only   = ["qemu.large"]
    inline = ["echo large"]
  }
}
"#;
        let (p, diags) = prepare(text, &Selection::default());
        assert!(!diags.has_errors(), "{}", diags.render());
        let builds: Vec<(String, u64, usize)> = p
            .builds
            .iter()
            .map(|b| match &b.builder {
                config::BuilderConfig::Qemu(q) => {
                    (b.name.clone(), q.memory_mib, b.provisioners.len())
                }
                other => panic!("not qemu: {other:?}"),
            })
            .collect();
        assert_eq!(
            builds,
            [
                ("qemu.large".to_owned(), 1024, 1),
                ("qemu.small".to_owned(), 256, 0)
            ]
        );
    }

    /// As the qemu plugin: a firmware path turns EFI on by itself (real
    /// templates set `efi_firmware_code` and no `efi_boot`), even against
    /// an explicit `efi_boot = false`.
    #[test]
    fn an_efi_firmware_path_turns_efi_on() {
        for efi_boot in ["", "efi_boot = false"] {
            let text = format!(
                r#"
source "qemu" "uefi" {{
  iso_url           = "http://127.0.0.1/tiny.iso"
  iso_checksum      = "none"
  ssh_username      = "root"
  ssh_password      = "pw"
  efi_firmware_code = "/usr/share/OVMF/OVMF_CODE_4M.fd"
  {efi_boot}
}}
build {{
  sources = ["source.qemu.uefi"]
}}
"#
            );
            let (p, diags) = prepare(&text, &Selection::default());
            assert!(!diags.has_errors(), "{}", diags.render());
            let config::BuilderConfig::Qemu(q) = &p.builds[0].builder else {
                panic!("not qemu");
            };
            let efi = q.hardware.efi.as_ref().expect("EFI is on");
            assert_eq!(
                efi.code.as_deref(),
                Some(std::path::Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd"))
            );
            assert_eq!(
                diags.render().contains("efi_boot = false has no effect"),
                !efi_boot.is_empty(),
                "{}",
                diags.render()
            );
        }
    }

    /// `dynamic "provisioner"` and `dynamic "post-processor"` in a build:
    /// one block per element, in order, with the iterator in scope; inside
    /// `post-processors` they join the chain.
    #[test]
    fn dynamic_provisioners_and_post_processors_in_a_build() {
        let text = r#"
source "qemu" "base" {
  iso_url          = "http://127.0.0.1/tiny.iso"
  iso_checksum     = "none"
  ssh_username     = "root"
  ssh_password     = "pw"
  shutdown_command = "poweroff"
}
build {
  sources = ["source.qemu.base"]
  provisioner "shell" {
    inline = ["echo first"]
  }
  dynamic "provisioner" {
    for_each = ["a", "b"]
    iterator = step
    labels   = ["shell"]
    content {
      inline = ["echo ${step.value}"]
    }
  }
  post-processors {
    post-processor "compress" {}
    dynamic "post-processor" {
      for_each = ["sha256", "md5"]
      labels   = ["checksum"]
      content {
        checksum_types = [post-processor.value]
      }
    }
  }
}
"#;
        let (p, diags) = prepare(text, &Selection::default());
        assert!(!diags.has_errors(), "{}", diags.render());
        let inline: Vec<String> = p.builds[0]
            .provisioners
            .iter()
            .map(|pr| format!("{:?}", pr.kind))
            .collect();
        assert_eq!(inline.len(), 3, "{inline:?}");
        for (i, word) in ["first", "a", "b"].iter().enumerate() {
            assert!(inline[i].contains(&format!("echo {word}")), "{inline:?}");
        }
        assert_eq!(chains(&p), [vec!["compress", "checksum", "checksum"]]);
    }
}
