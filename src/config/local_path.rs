//! Local files and directories named by provisioner keys (`cookbook_paths`,
//! `local_state_tree`, …): resolved like script paths and checked to exist
//! with the right kind at validation, as Packer's `Prepare` does.

use std::path::{Path, PathBuf};

use super::decode::Fields;

/// Script paths are relative to the working directory, as in Packer; a
/// path found only beside the template is taken from there.
pub fn resolve_local_path(f: &Fields<'_>, path: &str) -> PathBuf {
    let p = Path::new(path);
    let ctx = f.context();
    if p.is_absolute() {
        return p.to_owned();
    }
    let from_cwd = ctx.pwd().join(p);
    if from_cwd.exists() {
        return from_cwd;
    }
    let beside_template = ctx.template.dir.join(p);
    if beside_template.exists() {
        beside_template
    } else {
        from_cwd
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
}

/// Resolves `value` (given under `key`) and reports an error at the key
/// when it is missing or of the wrong kind. The path is returned either
/// way, so one bad path does not hide the other errors.
pub(crate) fn checked(f: &mut Fields<'_>, key: &'static str, value: &str, kind: Kind) -> PathBuf {
    let path = resolve_local_path(f, value);
    let problem = match (std::fs::metadata(&path), kind) {
        (Err(_), _) => Some(format!(
            "{key}: `{value}` does not exist (looked in {})",
            path.display()
        )),
        (Ok(m), Kind::Dir) if !m.is_dir() => Some(format!(
            "{key}: `{value}` must be a directory ({} is not)",
            path.display()
        )),
        (Ok(m), Kind::File) if m.is_dir() => Some(format!(
            "{key}: `{value}` must be a file ({} is a directory)",
            path.display()
        )),
        _ => None,
    };
    if let Some(message) = problem {
        let span = f.span_of(key).unwrap_or_default();
        f.error_at(span, message).hint = Some(
            "a relative path is looked up in the directory kiln runs in, then beside the template"
                .into(),
        );
    }
    path
}

/// An optional path key: absent or empty is None.
pub(crate) fn optional(f: &mut Fields<'_>, key: &'static str, kind: Kind) -> Option<PathBuf> {
    let value = f.string(key).filter(|s| !s.is_empty())?;
    Some(checked(f, key, &value, kind))
}

/// `guest_os_type`: `unix` (the default); `windows` is refused like the
/// other Windows parts kiln does not support yet.
pub(crate) fn unix_guest_only(f: &mut Fields<'_>) {
    let Some(os) = f.string("guest_os_type").filter(|s| !s.is_empty()) else {
        return;
    };
    let span = f.span_of("guest_os_type").unwrap_or_default();
    match os.to_ascii_lowercase().as_str() {
        "unix" => {}
        "windows" => {
            f.error_at(span, "guest_os_type: `windows` is not supported yet")
                .hint = Some("kiln provisions Unix guests only; remove guest_os_type".into());
        }
        _ => {
            f.error_at(
                span,
                format!("guest_os_type: `{os}` is not one of unix, windows"),
            );
        }
    }
}
