//! The module rules of ../shared/DESIGN.md, checked on the source tree:
//! no driver imports `config`, the runner or another driver; shared parts
//! never import a hypervisor, and those with specs of their own never
//! import `config`; the neutral helpers (`host`, `digest`)
//! import nothing of kiln; no import cycles between modules.
//!
//! Every `crate::…` path in a file counts (a `use` line or a path written
//! inline). Every rule holds today (`KNOWN_DEBT` is empty, issue #10): a
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

/// Rule breaks tolerated for now, as `file -> module` (or `cycle: a, b`):
/// none since issue #10. An entry that no longer holds fails the test, so
/// the list can only shrink.
const KNOWN_DEBT: &[&str] = &[];

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
    breaks
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
/// and a cycle.
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
