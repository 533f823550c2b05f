//! The extra media an installer reads its answers from: a CD and a
//! floppy, checked now so a missing file is reported at its key.

use crate::config::decode::Fields;

/// The extra media some installers read their answers from: a CD
/// (`cd_files`, `cd_content`, `cd_label`) and a floppy (`floppy_files`,
/// `floppy_dirs`, `floppy_content`, `floppy_label`).
#[derive(Debug, Clone, Default)]
pub struct MediaConfig {
    pub cd: crate::media::cd::CdSpec,
    pub floppy: crate::media::floppy::FloppySpec,
}

impl MediaConfig {
    pub fn decode(f: &mut Fields<'_>) -> Self {
        let cd = crate::media::cd::CdSpec {
            files: f.string_list("cd_files").unwrap_or_default(),
            content: f.string_map("cd_content").unwrap_or_default(),
            label: f.string("cd_label").filter(|s| !s.is_empty()),
        };
        let floppy = crate::media::floppy::FloppySpec {
            files: f.string_list("floppy_files").unwrap_or_default(),
            dirs: f.string_list("floppy_dirs").unwrap_or_default(),
            content: f.string_map("floppy_content").unwrap_or_default(),
            label: f.string("floppy_label").filter(|s| !s.is_empty()),
        };
        validate_floppy(f, &floppy);
        Self { cd, floppy }
    }
}

/// Checks what the floppy would hold now, without making it, so a
/// missing answer file or a floppy too small is reported with its place
/// in the template instead of failing (or hanging) the build later.
fn validate_floppy(f: &mut Fields<'_>, spec: &crate::media::floppy::FloppySpec) {
    use crate::media::floppy::{self, FloppyError};
    if let Some(problem) = spec.label.as_deref().and_then(floppy::label_problem) {
        let span = f.span_of("floppy_label").unwrap_or_default();
        f.error_at(span, format!("floppy_label: {problem}"));
    }
    if spec.is_empty() {
        return;
    }
    let cancel = tokio_util::sync::CancellationToken::new();
    let ctx = f.context();
    // As the build does: the working directory, then beside the template.
    let planned = floppy::plan(spec, ctx.pwd(), &cancel).or_else(|first| match first {
        FloppyError::NoMatch { .. } if ctx.template.dir != ctx.pwd() => {
            floppy::plan(spec, &ctx.template.dir, &cancel).map_err(|_| first)
        }
        other => Err(other),
    });
    let present = ["floppy_files", "floppy_dirs", "floppy_content"]
        .into_iter()
        .find(|k| f.has(k))
        .unwrap_or("floppy_files");
    let error = match planned.map(|entries| floppy::space_needed(&entries)) {
        Ok(Ok(needed)) if needed > floppy::DATA_BYTES => FloppyError::TooBig { needed },
        Ok(Ok(_)) => return,
        Ok(Err(e)) | Err(e) => e,
    };
    let key = error.key().unwrap_or(present);
    let message = match error {
        // The build's message names the folder it read; here both were.
        FloppyError::NoMatch { key, entry, .. } => format!(
            "{key}: {entry:?} matches nothing in the working directory or beside the template"
        ),
        other => other.to_string(),
    };
    let span = f.span_of(key).unwrap_or_default();
    f.error_at(span, message);
}

#[cfg(test)]
mod tests {
    use super::super::test_support::qemu_with;

    #[test]
    fn cd_files_and_label_are_kept() {
        let (q, diags) = qemu_with(r#""cd_label": "cidata", "cd_content": {"meta-data": ""}"#);
        let media = q.expect("decodes").media;
        assert_eq!(media.cd.label.as_deref(), Some("cidata"), "{diags}");
        assert!(media.cd.content.contains_key("meta-data"));
    }

    #[test]
    fn a_missing_floppy_file_is_reported_at_its_key() {
        let (_, diags) = qemu_with(r#""floppy_files": ["/nonexistent/h6/preseed.cfg"]"#);
        assert!(diags.contains("floppy_files"), "{diags}");
    }
}
