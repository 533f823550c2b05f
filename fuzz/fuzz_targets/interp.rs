//! Fuzzes the template interpolation engine: any UTF-8 string must parse or
//! fail cleanly, and whatever parses must render or fail cleanly — no panic,
//! no runaway recursion or memory.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use kiln::template::interp::{Context, parse};
use libfuzzer_sys::fuzz_target;

fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(template) = parse(source) else {
        return;
    };
    let _ = template.functions();
    let _ = template.data_fields();
    let _ = template.is_literal();
    let vars = strings(&[("name", "kiln"), ("project_id", "p-1"), ("empty", "")]);
    let fields = strings(&[("HTTPIP", "10.0.2.2"), ("HTTPPort", "8080"), ("Name", "vm")]);
    let build = strings(&[("ID", "vm-1"), ("Host", "127.0.0.1")]);
    let env = |name: &str| (name == "HOME").then(|| "/root".to_string());
    let ctx = Context {
        user_vars: &vars,
        data: &fields,
        env: Some(&env),
        build_name: Some("qemu"),
        build_type: Some("qemu"),
        build_values: Some(&build),
        template_dir: Path::new("/tpl"),
        pwd: Path::new("/pwd"),
        ..Context::minimal()
    };
    let _ = template.render(&ctx);
    let _ = template.render(&Context::minimal());
});
