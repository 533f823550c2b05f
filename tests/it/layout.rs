//! The module rules of ../shared/DESIGN.md, checked on the source tree:
//! no driver imports `config`, the runner or another driver; shared parts
//! never import a hypervisor, and those with specs of their own never
//! import `config`; the neutral helpers (`host`, `digest`)
//! import nothing of kiln; no import cycles between modules, nor between
//! the files of one module.
//!
//! Every `crate::…` path in a file counts (a `use` line or a path written
//! inline). Every rule holds today but for `KNOWN_DEBT` (issue #10): a
//! new break fails this test at once. Fix the import; do not list it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Parts that must not know any hypervisor.
const SHARED: &[&str] = &[
    "iso",
    "http",
    "bootcmd",
    "media",
    "communicator",
    "provision",
    "artifact",
    "postprocess",
    "checkpoint",
];

/// Shared parts that take only their own specs: they never read the
/// configuration (`config`), the runner or a builder; the builder maps
/// its config to their types (`checkpoint`: the builder makes the install
/// key from its config). (`provision` and `postprocess` still take
/// their `config` sections.)
const OWN_SPECS: &[&str] = &[
    "iso",
    "http",
    "bootcmd",
    "media",
    "communicator",
    "artifact",
    "checkpoint",
];

/// Small neutral helpers and shared vocabulary (`vm`: accelerator, image
/// format) every part may use: they import nothing of kiln.
const NEUTRAL: &[&str] = &["host", "digest", "vm"];

/// Rule breaks tolerated for now, as `file -> module` (or `cycle: a, b`,
/// `file cycle: a.rs, b.rs`). An entry that no longer holds fails the
/// test, so the list can only shrink.
const KNOWN_DEBT: &[&str] = &[
    // HCL's evaluator is mutually recursive across its files: an
    // expression with unknown values is evaluated by `unknown`, which
    // evaluates its known parts by `eval` again; a type's `optional()`
    // default is an expression `types` evaluates. Breaking it needs the
    // evaluator passed in as a parameter (found when file cycles were
    // first checked, issue #10).
    "file cycle: hcl/eval.rs, hcl/types.rs, hcl/unknown.rs",
];

/// The unit a rule talks about: `hypervisor::qemu`, `builder::virtualbox`,
/// `cloud::gce`, otherwise the top-level module.
fn unit(path: &str) -> String {
    let mut parts = path.split("::");
    let first = parts.next().unwrap_or_default();
    match (first, parts.next()) {
        ("hypervisor" | "builder" | "cloud", Some(second)) => format!("{first}::{second}"),
        _ => first.to_owned(),
    }
}

fn is_driver(unit: &str) -> bool {
    unit.starts_with("hypervisor::") || unit.starts_with("cloud::")
}

/// The module path of a source file: `src/hypervisor/qemu/img.rs` is
/// `hypervisor::qemu::img`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .filter(|p| p != "mod")
        .collect();
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules a file names through `crate::`, outside comments and
/// outside its unit tests.
fn referenced_modules(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut found = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let path: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            // `crate::{a, b}`: each name in the braces.
            if path.is_empty() && rest.starts_with('{') {
                let group = rest[1..].split('}').next().unwrap_or_default();
                for name in group.split(',') {
                    let name = name.trim();
                    if !name.is_empty() {
                        found.insert(name.to_owned());
                    }
                }
            } else if !path.is_empty() {
                found.insert(path.trim_end_matches(':').to_owned());
            }
        }
    }
    found
}

/// Every rule break in `src`, as `file -> module` lines and cycles.
fn rule_breaks(src: &Path) -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut breaks = BTreeSet::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(src, file);
        // The crate root, and unit tests kept in a file of their own.
        if module == "lib" || module == "main" || module.ends_with("::tests") {
            continue;
        }
        let from = unit(&module);
        let text = std::fs::read_to_string(file).expect("read a source file");
        let name = file.strip_prefix(src).unwrap_or(file).display().to_string();
        for target in referenced_modules(&text) {
            let to = unit(&target);
            if to == from || to.is_empty() {
                continue;
            }
            edges.entry(from.clone()).or_default().insert(to.clone());
            let broken = (is_driver(&from)
                && (to == "config"
                    || to == "build"
                    || to == "run"
                    || to.starts_with("builder")
                    || is_driver(&to)))
                || (SHARED.contains(&from.as_str()) && to.starts_with("hypervisor"))
                || (OWN_SPECS.contains(&from.as_str())
                    && (to == "config" || to == "run" || to.starts_with("builder")))
                || NEUTRAL.contains(&from.as_str());
            if broken {
                breaks.insert(format!("{name} -> {to}"));
            }
        }
    }
    for cycle in cycles(&edges) {
        breaks.insert(format!("cycle: {}", cycle.join(", ")));
    }
    for cycle in file_cycles(src, &files) {
        breaks.insert(format!("file cycle: {}", cycle.join(", ")));
    }
    breaks
}

/// The groups of files inside one module that import each other, each as
/// sorted paths under `src`. A file's imports of its own parent modules
/// (`super::State` from a step to its `mod.rs`) do not count: a module's
/// `mod.rs` names its children, and children use what it declares.
fn file_cycles(src: &Path, files: &[PathBuf]) -> Vec<Vec<String>> {
    let modules: BTreeMap<String, String> = files
        .iter()
        .map(|f| {
            let name = f.strip_prefix(src).unwrap_or(f).display().to_string();
            (module_of(src, f), name)
        })
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, name) in &modules {
        if module == "lib" || module == "main" || module.ends_with("::tests") {
            continue;
        }
        let text = std::fs::read_to_string(src.join(name)).expect("read a source file");
        for path in referenced_paths(&text, module) {
            let Some(target) = file_module_of(&path, &modules) else {
                continue;
            };
            let is_ancestor = module.starts_with(&format!("{target}::"));
            if target == *module || is_ancestor || unit(&target) != unit(module) {
                continue;
            }
            edges
                .entry(name.clone())
                .or_default()
                .insert(modules[&target].clone());
        }
    }
    cycles(&edges)
}

/// The longest prefix of `path` that is a file's module.
fn file_module_of(path: &str, modules: &BTreeMap<String, String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|prefix| modules.contains_key(prefix))
}

/// Every path a file names through `crate::`, `super::` or `self::`
/// (braced groups of a `use` included, over several lines), resolved to
/// an absolute module path; outside comments and its unit tests.
fn referenced_paths(text: &str, module: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    // `super` of `a::b::c` (the file `a/b/c.rs`) is `a::b`.
    let own: Vec<&str> = module.split("::").collect();
    let mut found = BTreeSet::new();
    for start in ["crate::", "super::", "self::"] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(start) {
            let preceded = code.len() - rest.len() + at;
            rest = &rest[at..];
            // Not the tail of another path (`crate::a::super::` does not occur,
            // but `my_crate::` would).
            let before = code[..preceded].chars().next_back();
            let path: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let after = &rest[path.len()..];
            rest = &rest[start.len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut heads = vec![path.trim_end_matches(':').to_owned()];
            if path.ends_with("::")
                && let Some(group) = after.strip_prefix('{')
            {
                heads = braced_items(group)
                    .into_iter()
                    .map(|item| format!("{path}{item}"))
                    .collect();
            }
            for head in heads {
                if let Some(resolved) = resolve(&head, &own) {
                    found.insert(resolved);
                }
            }
        }
    }
    found
}

/// The leading path of each item of a `{…}` group (its text after `{`).
fn braced_items(group: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut item = String::new();
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        if depth == 0 {
            item.push(c);
        }
    }
    items.push(item);
    items
        .iter()
        .map(|i| {
            i.trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect::<String>()
                .trim_end_matches(':')
                .to_owned()
        })
        .filter(|i| !i.is_empty() && i != "self")
        .collect()
}

/// `crate::a::b`, `super::x` or `self::x` from the module `own` as an
/// absolute path (`a::b`).
fn resolve(path: &str, own: &[&str]) -> Option<String> {
    let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    let mut base: Vec<&str> = match *parts.first()? {
        "crate" => {
            parts.remove(0);
            Vec::new()
        }
        "self" => {
            parts.remove(0);
            own.to_vec()
        }
        _ => own.to_vec(),
    };
    while parts.first() == Some(&"super") {
        parts.remove(0);
        base.pop()?;
    }
    base.extend(parts);
    (!base.is_empty()).then(|| base.join("::"))
}

/// The strongly connected groups of more than one module (Tarjan's
/// algorithm), each sorted: every group holds at least one import cycle.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        groups: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(next) = s.edges.get(v) {
            for w in next {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let lw = s.low[w];
                    let lv = s.low[v];
                    s.low.insert(v, lv.min(lw));
                } else if s.on_stack.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low[v];
                    s.low.insert(v, lv.min(iw));
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                group.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                s.groups.push(group);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        groups: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.groups.sort();
    s.groups
}

#[test]
fn module_rules_hold_apart_from_the_listed_debt() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = rule_breaks(&src);
    let known: BTreeSet<String> = KNOWN_DEBT.iter().map(|s| (*s).to_owned()).collect();
    let new: Vec<&String> = found.difference(&known).collect();
    let gone: Vec<&String> = known.difference(&found).collect();
    assert!(
        new.is_empty(),
        "new breaks of DESIGN.md's module rules (fix the import, do not list it):\n  {}",
        new.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
    assert!(
        gone.is_empty(),
        "these listed breaks are fixed: delete them from KNOWN_DEBT:\n  {}",
        gone.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

/// The checker itself must be able to fail: a tree with a driver that
/// imports config, a shared part that imports a hypervisor or config,
/// a cycle between modules and one between the files of a module.
#[test]
fn the_checker_sees_each_kind_of_break() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path();
    let write = |rel: &str, text: &str| {
        let path = src.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write(
        "hypervisor/qemu/command.rs",
        "use crate::config::qemu::QemuConfig;\nuse crate::host::ports;\n",
    );
    write(
        "hypervisor/virtualbox/driver.rs",
        "fn f() { crate::hypervisor::qemu::x(); }\n",
    );
    write("communicator/ssh.rs", "use crate::{hypervisor, ui};\n");
    write(
        "communicator/ssh/transfer.rs",
        "use crate::config::common::FileTransfer;\n",
    );
    write("config/mod.rs", "use crate::media::cd;\n");
    write(
        "media/cd.rs",
        "// use crate::hypervisor::qemu; (a comment)\nuse crate::config::common;\n",
    );
    write(
        "host/mod.rs",
        "#[cfg(test)]\nmod tests { use crate::config::x; }\n",
    );
    write("digest.rs", "use crate::ui::Reporter;\n");
    // Two files of one module that import each other (the shape
    // config/decode.rs and config/provisioner.rs had), over a braced,
    // multi-line `use`; a step and its mod.rs using each other is fine.
    write(
        "config/decode.rs",
        "fn f() { super::provisioner::BUILD_VALUES.len(); }\n",
    );
    write(
        "config/provisioner.rs",
        "use super::{\n    common::X,\n    decode::{Deferred, Fields},\n};\n",
    );
    write(
        "builder/qemu/mod.rs",
        "mod step_boot;\npub struct QemuState;\nuse self::step_boot::StepBoot;\n",
    );
    write(
        "builder/qemu/step_boot.rs",
        "use super::QemuState;\nuse crate::builder::qemu::step_disk::x;\n",
    );
    write(
        "builder/qemu/step_disk.rs",
        "use crate::builder::qemu::QemuState;\n",
    );
    write(
        "checkpoint/store.rs",
        "use crate::config::qemu::QemuConfig;\nuse crate::digest::hex;\nfn f() -> crate::run::runner::StepError { todo!() }\n",
    );
    let found = rule_breaks(src);
    let expected: BTreeSet<String> = [
        "hypervisor/qemu/command.rs -> config",
        "hypervisor/virtualbox/driver.rs -> hypervisor::qemu",
        "communicator/ssh.rs -> hypervisor",
        "communicator/ssh/transfer.rs -> config",
        "media/cd.rs -> config",
        "digest.rs -> ui",
        "checkpoint/store.rs -> config",
        "checkpoint/store.rs -> run",
        "cycle: config, media",
        "file cycle: config/decode.rs, config/provisioner.rs",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(found, expected);
}

/// Every integration test that boots a VM (it takes the VM lock) or runs
/// the real `vagrant` is named `vm_…`, so `cargo test -- --skip ::vm_`
/// runs the fast ones alone (README, "Tests").
#[test]
fn vm_and_vagrant_tests_carry_the_vm_prefix() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let mut unnamed = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read tests/it").flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("layout.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read a test file");
        for (name, body) in test_functions(&text) {
            let boots = body.contains("vm_lock()") || body.contains("Command::new(\"vagrant\")");
            if boots && !name.starts_with("vm_") {
                let file = path.file_name().unwrap_or_default().to_string_lossy();
                unnamed.push(format!("{file}: {name}"));
            }
        }
    }
    unnamed.sort();
    assert!(
        unnamed.is_empty(),
        "these tests boot a VM or run vagrant: name them vm_…\n  {}",
        unnamed.join("\n  ")
    );
}

/// The name and body of each `#[test]` / `#[tokio::test]` function: the
/// text from its `fn` to the next top-level item.
fn test_functions(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = ["#[test]", "#[tokio::test"]
        .iter()
        .filter_map(|a| rest.find(a))
        .min()
    {
        rest = &rest[at + 2..];
        let Some(fn_at) = rest.find("fn ") else { break };
        let after = &rest[fn_at + 3..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // The body ends where the next item starts at column 0.
        let end = after.find("\n}\n").map_or(after.len(), |e| e + 3);
        found.push((name, after[..end].to_owned()));
        rest = &after[end..];
    }
    found
}
