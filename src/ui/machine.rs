//! Packer's `-machine-readable` records: `timestamp,target,type,data...`,
//! one per line on stdout, with the escapes CI scripts undo after
//! splitting on commas (`,` → `%!(PACKER_COMMA)`, `\r` → `\r`, `\n` → `\n`
//! as two characters).

use std::time::SystemTime;

/// UI records (`ui,say|message|error,TEXT`), as Packer's three UI calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiKind {
    /// A headline: `==> build: text`.
    Say,
    /// A detail line: `    build: text`.
    Message,
    /// An error: `==> build: text`.
    Error,
}

impl UiKind {
    fn name(self) -> &'static str {
        match self {
            Self::Say => "say",
            Self::Message => "message",
            Self::Error => "error",
        }
    }
}

/// Escapes one field as Packer does, so splitting the line on `,` is safe.
pub fn escape(field: &str) -> String {
    field
        .replace(',', "%!(PACKER_COMMA)")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

/// One record: `timestamp,target,kind,fields...` (no newline).
pub fn record(target: &str, kind: &str, fields: &[&str]) -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut line = format!("{secs},{},{kind}", escape(target));
    for field in fields {
        line.push(',');
        line.push_str(&escape(field));
    }
    line
}

/// A UI line. Packer writes these with an empty target and the build's
/// name inside the text, as its human output shows it.
pub fn ui_record(build: &str, kind: UiKind, text: &str) -> String {
    let text = match (kind, build.is_empty()) {
        (_, true) => text.to_owned(),
        (UiKind::Message, false) => format!("    {build}: {text}"),
        (UiKind::Say | UiKind::Error, false) => format!("==> {build}: {text}"),
    };
    record("", "ui", &[kind.name(), &text])
}

/// What the records after a build say about one artifact.
#[derive(Debug, Clone)]
pub struct ArtifactRecord<'a> {
    pub builder_id: &'a str,
    pub id: &'a str,
    pub description: &'a str,
    pub files: Vec<String>,
}

/// Packer's records for one build's artifacts: `artifact-count`, then for
/// each `builder-id`, `id`, `string`, `files-count`, every `file`, `end`.
pub fn artifact_records(build: &str, artifacts: &[ArtifactRecord<'_>]) -> Vec<String> {
    let mut out = vec![record(
        build,
        "artifact-count",
        &[&artifacts.len().to_string()],
    )];
    for (i, a) in artifacts.iter().enumerate() {
        let i = i.to_string();
        let i = i.as_str();
        out.push(record(build, "artifact", &[i, "builder-id", a.builder_id]));
        out.push(record(build, "artifact", &[i, "id", a.id]));
        out.push(record(build, "artifact", &[i, "string", a.description]));
        out.push(record(
            build,
            "artifact",
            &[i, "files-count", &a.files.len().to_string()],
        ));
        for (fi, file) in a.files.iter().enumerate() {
            out.push(record(
                build,
                "artifact",
                &[i, "file", &fi.to_string(), file],
            ));
        }
        out.push(record(build, "artifact", &[i, "end"]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a CI script does with a line: split on commas, undo escapes.
    fn fields(line: &str) -> Vec<String> {
        line.split(',')
            .map(|f| {
                f.replace("%!(PACKER_COMMA)", ",")
                    .replace("\\n", "\n")
                    .replace("\\r", "\r")
            })
            .collect()
    }

    #[test]
    fn commas_and_newlines_survive_a_split() {
        let line = ui_record("b", UiKind::Message, "a,b\r\nc");
        assert!(!line.contains('\n'));
        let f = fields(&line);
        assert_eq!(f[1..], ["", "ui", "message", "    b: a,b\r\nc"]);
        assert!(f[0].parse::<u64>().is_ok(), "a Unix timestamp: {}", f[0]);
    }

    #[test]
    fn artifacts_are_listed_as_packer_lists_them() {
        let records = artifact_records(
            "tiny",
            &[ArtifactRecord {
                builder_id: "transcend.qemu",
                id: "tiny.qcow2",
                description: "VM files in directory: out",
                files: vec!["out/a,b.qcow2".into()],
            }],
        );
        let tails: Vec<Vec<String>> = records.iter().map(|r| fields(r)[1..].to_vec()).collect();
        assert_eq!(
            tails,
            [
                vec!["tiny", "artifact-count", "1"],
                vec!["tiny", "artifact", "0", "builder-id", "transcend.qemu"],
                vec!["tiny", "artifact", "0", "id", "tiny.qcow2"],
                vec![
                    "tiny",
                    "artifact",
                    "0",
                    "string",
                    "VM files in directory: out"
                ],
                vec!["tiny", "artifact", "0", "files-count", "1"],
                vec!["tiny", "artifact", "0", "file", "0", "out/a,b.qcow2"],
                vec!["tiny", "artifact", "0", "end"],
            ]
        );
    }
}
