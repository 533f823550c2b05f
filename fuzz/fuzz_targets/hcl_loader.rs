//! Fuzzes the HCL2 front end: any text as a `.pkr.hcl` file (or, when it
//! starts with `{`, a `.pkr.json` one) must either be
//! refused with diagnostics or go through loading (variables, locals,
//! sources, builds, functions) and configuration — never panic; and
//! `kiln fmt` of what parses is stable (formatting twice = once).
#![no_main]

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use kiln::config::{self, PrepareInput, Selection};
use kiln::hcl::{self, Inputs};
use kiln::template::diagnostic::Diagnostics;
use kiln::template::variables::ResolvedVariables;
use libfuzzer_sys::fuzz_target;

fn no_env(_: &str) -> Option<String> {
    None
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut diags = Diagnostics::new();
    let inputs = Inputs {
        var_files: &[],
        vars: &[],
        env: &no_env,
        env_vars: Vec::new(),
        lenient: false,
        // No program runs on fuzzed input.
        evaluate_datasources: false,
        warn_undeclared: true,
    };
    // Text that opens like a JSON object is read as HCL's JSON syntax.
    let name = if text.trim_start().starts_with('{') {
        "fuzz.pkr.json"
    } else {
        "fuzz.pkr.hcl"
    };
    // kiln fmt: what parses formats without a panic, and formatting is
    // idempotent (format twice = once).
    if name == "fuzz.pkr.hcl"
        && let Ok(once) = hcl::fmt::format_file(Path::new(name), text)
    {
        assert_eq!(hcl::fmt::format_text(&once), once, "kiln fmt is not idempotent");
    }
    let sources = vec![(PathBuf::from(name), text.to_owned())];
    let Ok(loaded) = hcl::load_sources(sources, &[], PathBuf::from("/nonexistent"), &inputs, &mut diags) else {
        let _ = diags.render();
        return;
    };
    let vars = ResolvedVariables {
        secrets: loaded.secrets,
        ..ResolvedVariables::default()
    };
    if !diags.has_errors() {
        let _ = config::prepare(
            &PrepareInput {
                template: &loaded.template,
                vars: &vars,
                selection: &Selection::default(),
                pwd: Path::new("/nonexistent"),
                init_time: SystemTime::UNIX_EPOCH,
            },
            &mut diags,
        );
    }
    let _ = diags.render();
});
