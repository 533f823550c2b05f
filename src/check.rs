//! The check every command that reads a template shares: load it (JSON or
//! HCL2), resolve its variables, prepare its builds, every diagnostic
//! collected. Nothing is printed here: the CLI prints what comes back.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::{self, BuilderConfig, Prepared, Selection};
use crate::iso::{ChecksumSpecError, IsoSource};
use crate::template::diagnostic::{Diagnostics, Location};
use crate::template::model::{self, LoadError, Template};
use crate::template::render_env::RenderEnv;
use crate::template::variables::{self, Environment, ResolvedVariables, VariableInputs};

/// HCL2-only choices of `validate` (Packer's flags); `build` runs data
/// sources and warns about undeclared variables.
#[derive(Debug, Clone, Copy)]
pub struct HclOptions {
    pub evaluate_datasources: bool,
    pub warn_undeclared: bool,
}

impl HclOptions {
    pub const BUILD: Self = Self {
        evaluate_datasources: true,
        warn_undeclared: true,
    };

    /// `inspect` and syntax checks run no data source program.
    pub const LISTING: Self = Self {
        evaluate_datasources: false,
        warn_undeclared: true,
    };
}

/// The variables a command line gives: `-var`, `-var-file`, `-strict`.
#[derive(Debug, Clone, Copy)]
pub struct VariableSources<'a> {
    pub vars: &'a [String],
    pub var_files: &'a [PathBuf],
    pub strict: bool,
}

/// A template checked all the way: loaded, variables resolved, builds
/// prepared.
pub struct Checked {
    pub template: Template,
    pub vars: ResolvedVariables,
    pub prepared: Prepared,
    /// Builds left out of `prepared` only because a check failed on a
    /// value plain `validate` does not know (HCL2, data sources not run):
    /// checked as far as Packer checks them, but not runnable.
    pub builds_with_unknowns: usize,
    /// The run's render environment, from the same variables, directories
    /// and start time the builds were checked with: `{{timestamp}}` is
    /// one instant in the configuration and at run time, as in Packer.
    pub render: RenderEnv,
}

/// What a check found: the notes and diagnostics to print, and the
/// template when it loaded (its diagnostics may still hold errors).
pub struct CheckReport {
    pub notes: Vec<String>,
    pub diags: Diagnostics,
    pub checked: Result<Checked, LoadError>,
}

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `-strict` or `KILN_STRICT`: compatibility cases are errors.
pub fn diagnostics_for(strict: bool) -> Diagnostics {
    let from_env = std::env::var("KILN_STRICT").ok();
    if strict || crate::template::compat::strict_from_env(from_env.as_deref()) {
        Diagnostics::strict()
    } else {
        Diagnostics::new()
    }
}

/// Loads an HCL2 template with the given and the environment's
/// (`PKR_VAR_*`) variables; its notes are in the result.
pub fn load_hcl(
    path: &Path,
    variables: VariableSources<'_>,
    lenient: bool,
    hcl: HclOptions,
    diags: &mut Diagnostics,
) -> Result<crate::hcl::Loaded, LoadError> {
    let env_vars = std::env::vars()
        .filter_map(|(k, v)| Some((k.strip_prefix("PKR_VAR_")?.to_owned(), v)))
        .collect();
    let inputs = crate::hcl::Inputs {
        var_files: variables.var_files,
        vars: variables.vars,
        env: &env_lookup,
        env_vars,
        lenient,
        evaluate_datasources: hcl.evaluate_datasources,
        warn_undeclared: hcl.warn_undeclared,
    };
    crate::hcl::load(path, &inputs, diags)
}

/// Loads and checks the template at `path`. An HCL2 template is resolved
/// while it loads (its values need the variables); a JSON one after.
pub fn check(
    path: &Path,
    variables: VariableSources<'_>,
    selection: &Selection,
    hcl_options: HclOptions,
    pwd: &Path,
) -> CheckReport {
    let mut diags = diagnostics_for(variables.strict);
    let mut notes = Vec::new();
    let hcl = crate::hcl::is_hcl(path);
    // Where a build uses a value computed from a data source that plain
    // `validate` does not run, what the checks say there is left out.
    let loaded = if hcl {
        load_hcl(path, variables, false, hcl_options, &mut diags).map(|loaded| {
            notes = loaded.notes;
            let vars = ResolvedVariables {
                secrets: loaded.secrets,
                ..ResolvedVariables::default()
            };
            (loaded.template, Some(vars), loaded.unknown_places)
        })
    } else {
        model::load(path, &mut diags).map(|t| (t, None, Vec::new()))
    };
    let (template, hcl_vars, unknown_places) = match loaded {
        Ok(t) => t,
        Err(e) => {
            return CheckReport {
                notes,
                diags,
                checked: Err(e),
            };
        }
    };
    let init_time = SystemTime::now();
    let environment = Environment {
        env: &env_lookup,
        init_time,
        pwd,
    };
    let inputs = VariableInputs {
        var_files: variables.var_files.to_vec(),
        vars: variables.vars.to_vec(),
    };
    let errors_before = if hcl { 0 } else { diags.error_count() };
    let vars = match hcl_vars {
        Some(v) => v,
        None => variables::resolve(&template, &inputs, &environment, &mut diags),
    };
    // Without every variable's value, checking the sections would only
    // repeat the variables' errors.
    let mut builds_with_unknowns = 0;
    let prepared = if diags.error_count() > errors_before {
        Prepared::default()
    } else {
        let mut found = diagnostics_for(diags.is_strict());
        let prepared = config::prepare(
            &config::PrepareInput {
                template: &template,
                vars: &vars,
                selection,
                pwd,
                init_time,
            },
            &mut found,
        );
        let mut failed_on_unknown = std::collections::BTreeSet::new();
        let mut failed = std::collections::BTreeSet::new();
        for d in found.iter() {
            let is_error = d.severity == crate::template::diagnostic::Severity::Error;
            if at_unknown(d, &unknown_places) {
                if is_error {
                    failed_on_unknown.insert(d.path.as_str());
                }
            } else {
                if is_error {
                    failed.insert(d.path.as_str());
                }
                diags.push(d.clone());
            }
        }
        builds_with_unknowns = template
            .builders
            .iter()
            .filter(|b| {
                failed_on_unknown.contains(b.path.as_str())
                    && !failed.contains(b.path.as_str())
                    && !prepared.builds.iter().any(|p| p.name == b.name)
            })
            .count();
        prepared
    };
    let render = RenderEnv::new(
        vars.values.clone(),
        template.dir.clone(),
        pwd.to_owned(),
        init_time,
        uuid::Uuid::new_v4().to_string(),
    );
    CheckReport {
        notes,
        diags,
        checked: Ok(Checked {
            template,
            vars,
            prepared,
            builds_with_unknowns,
            render,
        }),
    }
}

/// The ISOs of the prepared builds, each once: builds that need the same
/// ISO at the same place fetch it once.
pub fn iso_sources(
    prepared: &Prepared,
    template_dir: &Path,
    pwd: &Path,
) -> Result<Vec<(String, IsoSource)>, ChecksumSpecError> {
    let mut out: Vec<(String, IsoSource)> = Vec::new();
    for b in &prepared.builds {
        let iso = match &b.builder {
            BuilderConfig::Qemu(q) => &q.iso,
            BuilderConfig::VirtualBoxIso(v) => &v.iso,
            BuilderConfig::GoogleCompute(_) | BuilderConfig::Null(_) => continue,
        };
        let source = iso.source(template_dir, pwd)?;
        if !out.iter().any(|(_, s)| s == &source) {
            out.push((b.name.clone(), source));
        }
    }
    Ok(out)
}

/// Whether a diagnostic is about a value that plain `validate` does not
/// know (it holds Packer's stand-in): Packer's checks pass there.
fn at_unknown(d: &crate::template::diagnostic::Diagnostic, places: &[Location]) -> bool {
    d.location.as_ref().is_some_and(|l| {
        places.iter().any(|p| {
            p.file.path() == l.file.path()
                && l.span.start >= p.span.start
                && l.span.end <= p.span.end
        })
    })
}
