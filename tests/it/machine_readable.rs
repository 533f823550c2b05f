//! `-machine-readable` read the way CI scripts read Packer's output. The
//! successful case is a real build in `temporary_key.rs`; here a build that
//! fails before any VM starts must still say so in records.

use crate::support::{run_with_env, unbootable_qemu_template};

/// One record of Packer's machine-readable output, as a CI script sees it.
#[derive(Debug)]
pub(crate) struct Record {
    pub target: String,
    pub kind: String,
    pub data: Vec<String>,
}

/// `timestamp,target,type,data...` per line; `%!(PACKER_COMMA)` and the
/// two-character `\n` / `\r` restored in every field.
pub(crate) fn parse_records(stdout: &str) -> Vec<Record> {
    stdout
        .lines()
        .map(|line| {
            let fields: Vec<String> = line
                .split(',')
                .map(|f| {
                    f.replace("%!(PACKER_COMMA)", ",")
                        .replace("\\n", "\n")
                        .replace("\\r", "\r")
                })
                .collect();
            assert!(fields.len() >= 3, "not a record: {line}");
            assert!(
                fields[0].parse::<u64>().is_ok(),
                "no Unix timestamp first: {line}"
            );
            Record {
                target: fields[1].clone(),
                kind: fields[2].clone(),
                data: fields[3..].to_vec(),
            }
        })
        .collect()
}

#[test]
fn a_failed_build_reports_its_error_in_records_and_stdout_holds_only_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    unbootable_qemu_template(dir.path(), "broken", serde_json::json!({}));
    let cache = dir.path().join("cache");
    let out = run_with_env(
        dir.path(),
        &["build", "-machine-readable", "t.json"],
        &[("KILN_CACHE_DIR", cache.as_path())],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let records = parse_records(&stdout);
    let error_count: Vec<&Record> = records.iter().filter(|r| r.kind == "error-count").collect();
    assert_eq!(error_count.len(), 1, "{stdout}");
    assert_eq!(error_count[0].data, ["1"]);
    let error: Vec<&Record> = records
        .iter()
        .filter(|r| r.kind == "error" && r.target == "broken")
        .collect();
    assert_eq!(error.len(), 1, "{stdout}");
    assert!(
        error[0].data[0].contains("/nonexistent/qemu-system-x86_64"),
        "the error names the QEMU that could not start: {stdout}"
    );
    assert!(
        records.iter().all(|r| r.kind != "artifact-count"),
        "no artifacts from a failed build: {stdout}"
    );
    assert!(
        records.iter().any(|r| r.kind == "ui"
            && r.data[0] == "error"
            && r.data[1].starts_with("==> broken: Starting the VM: FAILED")),
        "the failed step is a ui error record: {stdout}"
    );
}
