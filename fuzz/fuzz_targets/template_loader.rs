//! Fuzzes the whole template front end: any text must either be refused
//! with diagnostics or go through loading, variable resolution and
//! configuration — never panic, never recurse without bound.
#![no_main]

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use kiln::config::{self, PrepareInput, Selection};
use kiln::template::diagnostic::Diagnostics;
use kiln::template::model;
use kiln::template::source::SourceFile;
use kiln::template::variables::{self, Environment, VariableInputs};
use libfuzzer_sys::fuzz_target;

fn no_env(_: &str) -> Option<String> {
    None
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut diags = Diagnostics::new();
    let file = SourceFile::new("fuzz.json", text.to_owned());
    let Ok(template) = model::parse(file, PathBuf::from("/nonexistent"), &mut diags) else {
        let _ = diags.render();
        return;
    };
    let env = Environment {
        env: &no_env,
        init_time: SystemTime::UNIX_EPOCH,
        pwd: Path::new("/nonexistent"),
    };
    let vars = variables::resolve(&template, &VariableInputs::default(), &env, &mut diags);
    let _ = config::prepare(
        &PrepareInput {
            template: &template,
            vars: &vars,
            selection: &Selection::default(),
            pwd: Path::new("/nonexistent"),
            init_time: SystemTime::UNIX_EPOCH,
        },
        &mut diags,
    );
    let _ = diags.render();
});
