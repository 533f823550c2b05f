//! The commands: each loads what it needs through the core and prints the
//! outcome. Returns false when the command failed (exit status 1).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::CommandError;
use super::args::{
    BuildArgs, CacheArgs, FetchArgs, FixArgs, InitArgs, InspectArgs, SelectionArgs, ValidateArgs,
    VariableArgs,
};
use super::output::ErrorOutput;
use crate::check::{Checked, HclOptions, VariableSources};
use crate::config::Selection;
use crate::template::diagnostic::Diagnostics;
use crate::template::model::{self, LoadError, Template};
use crate::template::variables::{self, Environment, ResolvedVariables, VariableInputs};
use crate::ui::console::ConsoleOptions;

const BUILD_HCL: HclOptions = HclOptions::BUILD;
const LISTING_HCL: HclOptions = HclOptions::LISTING;

fn current_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

fn sources(variables: &VariableArgs) -> VariableSources<'_> {
    VariableSources {
        vars: &variables.vars,
        var_files: &variables.var_files,
        strict: variables.strict,
    }
}

/// `-strict` or `KILN_STRICT`: compatibility cases are errors.
fn diagnostics_for(variables: &VariableArgs) -> Diagnostics {
    crate::check::diagnostics_for(variables.strict)
}

/// An HCL2 template is resolved while it loads (its values need the
/// variables); a JSON one is resolved after.
fn load_hcl(
    path: &Path,
    variables: &VariableArgs,
    lenient: bool,
    hcl: HclOptions,
    diags: &mut Diagnostics,
) -> Result<(Template, ResolvedVariables), LoadError> {
    let loaded = hcl_inputs_load(path, variables, lenient, hcl, diags)?;
    let vars = ResolvedVariables {
        secrets: loaded.secrets,
        ..ResolvedVariables::default()
    };
    Ok((loaded.template, vars))
}

/// Loads an HCL2 template with the command line's and the environment's
/// variables, and prints its notes.
fn hcl_inputs_load(
    path: &Path,
    variables: &VariableArgs,
    lenient: bool,
    hcl: HclOptions,
    diags: &mut Diagnostics,
) -> Result<crate::hcl::Loaded, LoadError> {
    let loaded = crate::check::load_hcl(path, sources(variables), lenient, hcl, diags)?;
    for note in &loaded.notes {
        eprintln!("note: {note}");
    }
    Ok(loaded)
}

/// The values `-var` and `-var-file` give a JSON template's variables, for
/// `inspect`: their errors (a malformed `-var`, an unreadable file, an
/// undeclared name) are reported as `validate` reports them; a required
/// variable left unset is not an error here.
fn inspect_values_given(
    t: &Template,
    variables: &VariableArgs,
    diags: &mut Diagnostics,
) -> std::collections::BTreeMap<String, String> {
    if variables.vars.is_empty() && variables.var_files.is_empty() {
        return std::collections::BTreeMap::new();
    }
    let pwd = current_dir();
    let env_lookup = |name: &str| std::env::var(name).ok();
    let environment = Environment {
        env: &env_lookup,
        init_time: SystemTime::now(),
        pwd: &pwd,
    };
    let inputs = VariableInputs {
        var_files: variables.var_files.clone(),
        vars: variables.vars.clone(),
    };
    let mut own = diagnostics_for(variables);
    let resolved = variables::resolve(t, &inputs, &environment, &mut own);
    for d in own.iter() {
        if !d.message.starts_with("required variable") {
            diags.push(d.clone());
        }
    }
    resolved
        .values
        .into_iter()
        .filter(|(k, _)| {
            resolved
                .origins
                .get(k)
                .is_some_and(|o| *o != crate::template::variables::Origin::Default)
        })
        .collect()
}

/// Checks a template (the core's pipeline) and prints every diagnostic.
/// None on errors.
fn check(
    path: &Path,
    variables: &VariableArgs,
    selection: &SelectionArgs,
    hcl_options: HclOptions,
    out: &ErrorOutput,
) -> Option<Checked> {
    let selection = Selection {
        only: selection.only.clone(),
        except: selection.except.clone(),
    };
    let report = crate::check::check(
        path,
        sources(variables),
        &selection,
        hcl_options,
        &current_dir(),
    );
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    let diags = report.diags;
    let checked = match report.checked {
        Ok(c) => c,
        Err(e) => {
            print_load_error(&e, &diags, path, out);
            return None;
        }
    };
    // Secrets are known before anything is printed, so all of it is masked.
    out.add_secrets(&checked.vars.secrets);
    print_diagnostics(&diags, path, out);
    for s in checked.prepared.skipped.iter().filter(|s| !s.supported) {
        out.write(&format!(
            "note: build `{}` ({}) is left out by -only/-except; kiln does not implement that builder type\n",
            s.name, s.type_name
        ));
    }
    if diags.has_errors() {
        return None;
    }
    Some(checked)
}

fn print_diagnostics(diags: &Diagnostics, path: &Path, out: &ErrorOutput) {
    if diags.is_empty() {
        return;
    }
    out.diagnostics(diags);
    let n = diags.error_count();
    if n > 0 {
        let plural = if n == 1 { "error" } else { "errors" };
        out.write(&format!("\n{n} {plural} in {}\n", path.display()));
    }
}

fn print_load_error(e: &LoadError, warnings: &Diagnostics, path: &Path, out: &ErrorOutput) {
    if !warnings.is_empty() {
        out.diagnostics(warnings);
    }
    match e {
        LoadError::Invalid(d) => print_diagnostics(d, path, out),
        LoadError::Read { path, source } => {
            out.write(&format!(
                "error: cannot read template {}: {source}\n",
                path.display()
            ));
            if source.is_not_found() {
                out.write(
                    "  = hint: check the path; kiln takes the template file as its last argument\n",
                );
            } else if let Some(hint) = source.hint() {
                out.write(&format!("  = hint: {hint}\n"));
            }
        }
        LoadError::NotUtf8 { .. } => {
            out.write(&format!(
                "error: {e}\n  = hint: save the template as UTF-8\n"
            ));
        }
    }
}

pub fn validate(
    args: &ValidateArgs,
    _options: &ConsoleOptions,
    out: &ErrorOutput,
) -> Result<(), CommandError> {
    if args.syntax_only {
        let mut diags = diagnostics_for(&args.variables);
        let loaded = if crate::hcl::is_hcl(&args.template) {
            load_hcl(
                &args.template,
                &args.variables,
                true,
                LISTING_HCL,
                &mut diags,
            )
            .map(|(t, _)| t)
        } else {
            model::load(&args.template, &mut diags)
        };
        return match loaded {
            Ok(_) if diags.has_errors() => {
                print_diagnostics(&diags, &args.template, out);
                Err(CommandError::Input)
            }
            Ok(_) => {
                print_diagnostics(&diags, &args.template, out);
                println!("Syntax-only check passed. Everything looks okay.");
                Ok(())
            }
            Err(e) => {
                print_load_error(&e, &diags, &args.template, out);
                Err(CommandError::Input)
            }
        };
    }
    let hcl_options = HclOptions {
        evaluate_datasources: args.evaluate_datasources,
        warn_undeclared: !args.no_warn_undeclared_var,
    };
    match check(
        &args.template,
        &args.variables,
        &args.selection,
        hcl_options,
        out,
    ) {
        Some(c) => {
            let n = c.prepared.builds.len() + c.builds_with_unknowns;
            println!(
                "Template validated successfully ({n} build{}).",
                if n == 1 { "" } else { "s" }
            );
            Ok(())
        }
        None => Err(CommandError::Input),
    }
}

pub fn inspect(
    args: &InspectArgs,
    options: &ConsoleOptions,
    err: &ErrorOutput,
) -> Result<(), CommandError> {
    let mut diags = diagnostics_for(&args.variables);
    let loaded = if crate::hcl::is_hcl(&args.template) {
        match hcl_inputs_load(
            &args.template,
            &args.variables,
            true,
            LISTING_HCL,
            &mut diags,
        ) {
            Ok(l) if options.mode != crate::ui::console::OutputMode::MachineReadable => {
                print!("{}", crate::hcl::render_inspect(&l));
                if !diags.is_empty() {
                    eprint!("{}", diags.render());
                }
                return if diags.has_errors() {
                    Err(CommandError::Input)
                } else {
                    Ok(())
                };
            }
            Ok(l) => Ok(l.template),
            Err(e) => Err(e),
        }
    } else {
        model::load(&args.template, &mut diags)
    };
    let t = match loaded {
        Ok(t) => t,
        Err(e) => {
            print_load_error(&e, &diags, &args.template, err);
            return Err(CommandError::Input);
        }
    };
    // Defaults of sensitive variables are secrets too.
    let defaults: Vec<String> = t
        .variables
        .iter()
        .filter(|v| t.sensitive_variables.iter().any(|(n, _)| n == &v.name))
        .filter_map(|v| v.default.clone())
        .collect();
    err.add_secrets(&defaults);
    let given = if diags.has_errors() {
        std::collections::BTreeMap::new()
    } else {
        inspect_values_given(&t, &args.variables, &mut diags)
    };
    if diags.has_errors() {
        print_diagnostics(&diags, &args.template, err);
        return Err(CommandError::Input);
    }
    let sensitive = |name: &str| t.sensitive_variables.iter().any(|(n, _)| n == name);
    // A value from -var or -var-file replaces the default shown; the
    // others are shown as written.
    let shown = |v: &crate::template::model::VariableDecl| {
        given.get(&v.name).cloned().or_else(|| v.default.clone())
    };
    let mut out = String::new();
    if options.mode == crate::ui::console::OutputMode::MachineReadable {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        for v in &t.variables {
            let value = match &shown(v) {
                _ if sensitive(&v.name) => "<sensitive>".to_owned(),
                Some(d) => d.clone(),
                None => String::new(),
            };
            out.push_str(&format!(
                "{now},,template-variable,{},{},{}\n",
                v.name,
                value.replace(',', "%!(PACKER_COMMA)"),
                u8::from(v.is_required())
            ));
        }
        for b in &t.builders {
            out.push_str(&format!(
                "{now},,template-builder,{},{}\n",
                b.name, b.type_name
            ));
        }
        for p in &t.provisioners {
            out.push_str(&format!("{now},,template-provisioner,{}\n", p.type_name));
        }
        for chain in &t.post_processors {
            let names: Vec<&str> = chain.iter().map(|s| s.type_name.as_str()).collect();
            out.push_str(&format!(
                "{now},,template-post-processor,{}\n",
                names.join("%!(PACKER_COMMA)")
            ));
        }
        print!("{out}");
        return Ok(());
    }
    if let Some(d) = &t.description {
        out.push_str(&format!("Description:\n\n  {d}\n\n"));
    }
    let optional: Vec<_> = t.variables.iter().filter(|v| !v.is_required()).collect();
    let required: Vec<_> = t.variables.iter().filter(|v| v.is_required()).collect();
    let shown_values: Vec<Option<String>> = optional.iter().map(|v| shown(v)).collect();
    out.push_str("Optional variables and their defaults:\n\n");
    if optional.is_empty() {
        out.push_str("  <none>\n");
    }
    let width = optional.iter().map(|v| v.name.len()).max().unwrap_or(0);
    for (v, value) in optional.iter().zip(&shown_values) {
        let value = if sensitive(&v.name) {
            "<sensitive>"
        } else {
            value.as_deref().unwrap_or("")
        };
        out.push_str(&format!("  {:width$} = {value}\n", v.name));
    }
    out.push_str("\nRequired variables:\n\n");
    if required.is_empty() {
        out.push_str("  <none>\n");
    }
    for v in &required {
        out.push_str(&format!("  {}\n", v.name));
    }
    out.push_str("\nBuilders:\n\n");
    for b in &t.builders {
        if b.name == b.type_name {
            out.push_str(&format!("  {}\n", b.name));
        } else {
            out.push_str(&format!("  {:20} ({})\n", b.name, b.type_name));
        }
    }
    out.push_str("\nProvisioners:\n\n");
    if t.provisioners.is_empty() {
        out.push_str("  <none>\n");
    }
    for p in &t.provisioners {
        out.push_str(&format!("  {}\n", p.type_name));
    }
    out.push_str("\nPost-processors:\n\n");
    if t.post_processors.is_empty() {
        out.push_str("  <none>\n");
    }
    for chain in &t.post_processors {
        let names: Vec<&str> = chain.iter().map(|s| s.type_name.as_str()).collect();
        out.push_str(&format!("  {}\n", names.join(" -> ")));
    }
    out.push_str(
        "\nNote: build names and values that use variables or functions such as\n`timestamp` are shown as written; they are evaluated when a build starts.\n",
    );
    print!("{out}");
    if !diags.is_empty() {
        err.diagnostics(&diags);
    }
    Ok(())
}

/// Packer's `init` installs the plugins a template requires; kiln has its
/// plugins built in, so it only says whether the template's requirements
/// are met.
pub fn init(args: &InitArgs, out: &ErrorOutput) -> Result<(), CommandError> {
    if !crate::hcl::is_hcl(&args.template) {
        eprintln!(
            "error: kiln init reads HCL2 templates (*.pkr.hcl or a directory); {} is a JSON template, which has no plugin requirements",
            args.template.display()
        );
        return Err(CommandError::Input);
    }
    let mut diags = Diagnostics::new();
    if let Err(e) = load_hcl(
        &args.template,
        &VariableArgs::default(),
        true,
        LISTING_HCL,
        &mut diags,
    ) {
        print_load_error(&e, &diags, &args.template, out);
        return Err(CommandError::Input);
    }
    // Only the `packer` block matters here; a missing variable does not.
    let mut plugin_diags = Diagnostics::new();
    for d in diags.iter().filter(|d| d.path.starts_with("packer")) {
        plugin_diags.push(d.clone());
    }
    print_diagnostics(&plugin_diags, &args.template, out);
    if plugin_diags.has_errors() {
        return Err(CommandError::Input);
    }
    println!("Nothing to install: kiln has the plugins it supports built in.");
    Ok(())
}

pub fn fix(args: &FixArgs, out: &ErrorOutput) -> Result<(), CommandError> {
    // As Packer's `fix`: JSON only.
    if crate::hcl::is_hcl(&args.template) {
        out.write(&format!(
            "error: kiln fix rewrites JSON templates; {} is HCL2\n  = hint: rename the deprecated keys the warnings name by hand (Packer's fix is JSON-only too)\n",
            args.template.display()
        ));
        return Err(CommandError::Input);
    }
    let text = match crate::template::input::read_input(&args.template)
        .map_err(|source| LoadError::Read {
            path: args.template.clone(),
            source,
        })
        .and_then(|bytes| {
            String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8 {
                path: args.template.clone(),
            })
        }) {
        Ok(t) => t,
        Err(e) => {
            print_load_error(&e, &Diagnostics::new(), &args.template, out);
            return Err(CommandError::Input);
        }
    };
    let mut diags = Diagnostics::new();
    let dir = args
        .template
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let source = crate::template::source::SourceFile::new(&args.template, text);
    let root = match crate::template::json::parse(source.text()) {
        Ok(r) => r,
        Err(_) => {
            // Let the loader explain the syntax error with line and column.
            if let Err(e) = model::parse(source, dir, &mut diags) {
                print_load_error(&e, &diags, &args.template, out);
            }
            return Err(CommandError::Input);
        }
    };
    let mut value = root.to_serde();
    let changes = crate::template::fix::fix(&mut value);
    match serde_json::to_string_pretty(&value) {
        Ok(s) => println!("{s}"),
        Err(e) => {
            out.write(&format!("error: cannot print the fixed template: {e}\n"));
            return Err(CommandError::Host);
        }
    }
    for c in &changes {
        out.write(&format!("fixed: {c}\n"));
    }
    if changes.is_empty() {
        out.write("nothing to fix\n");
    }
    Ok(())
}

fn runtime(out: &ErrorOutput) -> Result<tokio::runtime::Runtime, CommandError> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Ok(rt),
        Err(e) => {
            out.write(&format!("error: cannot start kiln's runtime: {e}\n"));
            Err(CommandError::Host)
        }
    }
}

/// A reporter masking every secret `out` knows of.
fn reporter(
    options: &ConsoleOptions,
    out: &ErrorOutput,
) -> std::sync::Arc<dyn crate::ui::Reporter> {
    std::sync::Arc::new(crate::ui::console::ConsoleReporter::new(
        options.clone(),
        out.mask(),
    ))
}

pub fn cache(
    args: CacheArgs,
    options: &ConsoleOptions,
    out: &ErrorOutput,
) -> Result<(), CommandError> {
    let rt = runtime(out)?;
    let finished = match args {
        CacheArgs::Store(cmd) => {
            let reporter = reporter(options, out);
            rt.block_on(super::cache::run(cmd, reporter.as_ref()))
                .map_err(|e| {
                    out.error(&e);
                    CommandError::Host
                })
        }
        CacheArgs::Fetch(a) => fetch(&a, options, &rt, out),
    };
    leave(rt);
    finished
}

/// Ends the runtime without waiting for blocking threads: once `block_on`
/// returned, the work is done or was cancelled, and a thread still waiting
/// (for another kiln's lock, or hashing) would otherwise hold kiln open
/// after its summary, deaf to a second Ctrl-C.
fn leave(rt: tokio::runtime::Runtime) {
    rt.shutdown_background();
}

/// Fetches every ISO; an error (after printing why) when one cannot be had.
fn fetch_isos(
    c: &Checked,
    offline: bool,
    reporter: &dyn crate::ui::Reporter,
    rt: &tokio::runtime::Runtime,
    out: &ErrorOutput,
) -> Result<(), CommandError> {
    let cache = match crate::iso::IsoCache::locate() {
        Ok(cache) => cache,
        Err(e) => {
            out.error(&e);
            return Err(CommandError::Host);
        }
    };
    let sources = match crate::check::iso_sources(&c.prepared, &c.template.dir, &current_dir()) {
        Ok(s) => s,
        Err(e) => {
            out.error(&e);
            return Err(CommandError::Input);
        }
    };
    let mut finished = Ok(());
    for (build, source) in sources {
        let options = crate::iso::FetchOptions {
            offline,
            build_name: build.clone(),
            ..crate::iso::FetchOptions::default()
        };
        match rt.block_on(cache.get_or_fetch(&source, &options, reporter)) {
            Ok(fetched) => {
                reporter.info(&build, &format!("ISO ready: {}", fetched.path.display()));
            }
            Err(e) => {
                out.error(&e);
                finished = Err(CommandError::Host);
            }
        }
    }
    finished
}

fn fetch(
    args: &FetchArgs,
    options: &ConsoleOptions,
    rt: &tokio::runtime::Runtime,
    out: &ErrorOutput,
) -> Result<(), CommandError> {
    let Some(checked) = check(
        &args.template,
        &args.variables,
        &args.selection,
        BUILD_HCL,
        out,
    ) else {
        return Err(CommandError::Input);
    };
    let reporter = reporter(options, out);
    fetch_isos(&checked, args.offline, reporter.as_ref(), rt, out)
}

/// Runs the builds; the class of the first failed one, if any.
pub fn build(
    args: &BuildArgs,
    options: &ConsoleOptions,
    out: &ErrorOutput,
) -> Result<(), CommandError> {
    let Some(checked) = check(
        &args.template,
        &args.variables,
        &args.selection,
        BUILD_HCL,
        out,
    ) else {
        return Err(CommandError::Input);
    };
    let rt = runtime(out)?;
    let reporter = reporter(options, out);
    let swept = crate::host::scratch::sweep_stale(None);
    if !swept.is_empty() {
        reporter.info(
            "",
            &format!(
                "removed {} temporary director{} left by kiln processes that are gone",
                swept.len(),
                if swept.len() == 1 { "y" } else { "ies" }
            ),
        );
    }
    let run_options = crate::run::RunOptions {
        force: args.force,
        on_error: args.on_error,
        debug: args.debug,
        offline: args.offline,
        force_install: args.force_install,
        checkpoints: !crate::checkpoint::disabled_by_env(),
        render: std::sync::Arc::new(checked.render.clone()),
        stale_because: None,
    };
    let started = std::time::Instant::now();
    let results = rt.block_on(crate::run::run_all(
        &checked.prepared.builds,
        &run_options,
        args.parallel_builds,
        reporter.clone(),
        |build, options, reporter, cancel| async move {
            crate::builder::run(&build, &options, reporter, cancel).await
        },
    ));
    let elapsed = started.elapsed();
    leave(rt);
    // Machine-readable: the records on stdout for scripts, the summary
    // still on stderr for whoever reads the CI log; both masked.
    if options.mode == crate::ui::console::OutputMode::MachineReadable {
        let mask = out.mask();
        for line in crate::run::machine_summary(&results) {
            println!("{}", mask.mask(&line));
        }
    }
    out.write(&crate::run::summary(&results, elapsed));
    match results.iter().find_map(crate::run::BuildResult::failure) {
        Some(class) => Err(CommandError::Build(class)),
        None => Ok(()),
    }
}
