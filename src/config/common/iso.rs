//! The installer ISO (or the disk image to start from): `iso_url(s)`,
//! `iso_checksum`, `iso_target_path`, `iso_target_extension`.

use std::path::{Path, PathBuf};

use crate::config::decode::Fields;

#[derive(Debug, Clone)]
pub struct IsoConfig {
    /// Mirrors in the order they are tried.
    pub urls: Vec<String>,
    /// As written (`sha256:…`, `file:…`, `none`, bare hex).
    pub checksum: String,
    pub target_path: Option<PathBuf>,
    pub target_extension: String,
}

impl IsoConfig {
    pub fn decode(f: &mut Fields<'_>) -> Option<Self> {
        let url_text = f.string("iso_url");
        let url = url_text.clone().filter(|s| !s.is_empty());
        let urls = f.string_list("iso_urls").unwrap_or_default();
        let checksum_text = f.string("iso_checksum");
        let mut checksum = checksum_text.clone().unwrap_or_default();
        // Packer < 1.6 split the checksum over three keys.
        // Old keys are rendered like new ones: `{{user `checksum_type`}}` is common.
        let old_type = f.string("iso_checksum_type");
        if let Some(span) = f.span_of("iso_checksum_type") {
            f.compat_at(
                crate::template::compat::Compat::DeprecatedKey,
                span,
                "`iso_checksum_type` is deprecated: put the type in iso_checksum (\"sha256:…\"); `kiln fix` rewrites a JSON template",
            );
        }
        // As `packer fix` (and `kiln fix`) merge it: a non-empty URL wins,
        // even over an `iso_checksum` (templates made for several distros
        // set one or the other through variables).
        let old_url = match f.raw("iso_checksum_url") {
            Some(node) => {
                let span = f
                    .span_of("iso_checksum_url")
                    .unwrap_or(node.span);
                f.compat_at(
                    crate::template::compat::Compat::DeprecatedKey,
                    span,
                    "`iso_checksum_url` is deprecated: write iso_checksum = \"file:URL\" (`kiln fix` rewrites a JSON template)",
                );
                f.string_from("iso_checksum_url", node)
            }
            None => None,
        }
        .filter(|url| !url.is_empty());
        // Where a bad type came from, for the caret.
        let mut type_from_old_key = false;
        if let Some(url) = old_url {
            checksum = format!("file:{url}");
        } else if checksum.is_empty() {
            if old_type.as_deref() == Some("none") {
                checksum = "none".into();
            }
        } else if let Some(t) = old_type
            .as_deref()
            .filter(|t| !t.is_empty() && *t != "none" && !checksum.contains(':'))
        {
            checksum = format!("{t}:{checksum}");
            type_from_old_key = true;
        }
        if let Some(md5) = f.renamed_string("iso_md5", "iso_checksum")
            && checksum.is_empty()
        {
            checksum = format!("md5:{md5}");
        }
        let target_path = f
            .string("iso_target_path")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let target_extension = f
            .string("iso_target_extension")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "iso".into());
        f.obsolete(
            "iso_skip_cache",
            "kiln uses local files in place and verifies cached downloads",
        );

        let urls = match (url, urls.is_empty()) {
            (Some(u), true) => vec![u],
            (None, false) => urls,
            (Some(_), false) => {
                let span = f.span_of("iso_urls").unwrap_or_default();
                f.error_at(span, "set either iso_url or iso_urls, not both");
                return None;
            }
            // Given, but empty once rendered (an unset `{{user `x`}}`).
            (None, true) if url_text.is_some() => {
                let span = f.span_of("iso_url").unwrap_or_default();
                f.error_at(span, "iso_url is empty").hint = Some(
                    "it must name the installer ISO; if it comes from a variable, set that variable".into(),
                );
                return None;
            }
            // Present but wrong: that error is already reported.
            (None, true) if f.has("iso_url") || f.has("iso_urls") => return None,
            (None, true) => {
                f.error("iso_url (or iso_urls) is required").hint =
                    Some("\"iso_url\": \"https://…/installer.iso\"".into());
                return None;
            }
        };
        // Present but wrong: that error is already reported.
        if checksum.is_empty() && checksum_text.is_none() && f.has("iso_checksum") {
            return None;
        }
        // Given, but empty once rendered (an unset `{{user `x`}}`).
        if checksum.is_empty() && f.has("iso_checksum") {
            let span = f.span_of("iso_checksum").unwrap_or_default();
            f.error_at(span, "iso_checksum is empty").hint = Some(
                "give the ISO's digest (\"sha256:…\"), a checksum file (\"file:https://…/SHA256SUMS\"), or \"none\"; if it comes from a variable, set that variable".into(),
            );
            return None;
        }
        if checksum.is_empty() {
            f.error("iso_checksum is required").hint = Some(
                "give the ISO's digest (\"sha256:…\"), a checksum file (\"file:https://…/SHA256SUMS\"), or \"none\" to skip verification".into(),
            );
            return None;
        }
        match crate::iso::ChecksumSpec::parse(&checksum) {
            Ok(crate::iso::ChecksumSpec::None) => {
                let span = f.span_of("iso_checksum").unwrap_or_default();
                f.warn_at(span, "iso_checksum is \"none\": the ISO will not be verified, and a changed or corrupt download would be used as it is");
            }
            Ok(_) => {}
            Err(e) => {
                let key = if type_from_old_key {
                    "iso_checksum_type"
                } else {
                    "iso_checksum"
                };
                let span = f.span_of(key).unwrap_or_default();
                f.error_at(span, e.to_string());
                return None;
            }
        }
        Some(Self {
            urls,
            checksum,
            target_path,
            target_extension,
        })
    }

    /// What the ISO cache needs. Relative local paths (and `file:` checksum
    /// lists) are taken from the working directory, as in Packer, or from
    /// beside the template when only there.
    pub fn source(
        &self,
        template_dir: &Path,
        pwd: &Path,
    ) -> Result<crate::iso::IsoSource, crate::iso::ChecksumSpecError> {
        let local = |s: &str| -> String {
            if s.contains("://") || Path::new(s).is_absolute() {
                return s.to_owned();
            }
            let from_cwd = pwd.join(s);
            if from_cwd.exists() {
                return from_cwd.display().to_string();
            }
            let beside = template_dir.join(s);
            if beside.exists() {
                beside.display().to_string()
            } else {
                from_cwd.display().to_string()
            }
        };
        let checksum = match self.checksum.strip_prefix("file:") {
            Some(rest) => format!("file:{}", local(rest)),
            None => self.checksum.clone(),
        };
        let mut source = crate::iso::IsoSource::new(
            self.urls.iter().map(|u| local(u)).collect(),
            crate::iso::ChecksumSpec::parse(&checksum)?,
        );
        source.target_path = self.target_path.clone();
        source.target_extension = self.target_extension.clone();
        Ok(source)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::qemu_template;

    fn iso(fields: &str) -> (Option<super::IsoConfig>, String) {
        let text =
            format!(r#"{{"builders": [{{"type": "qemu", "ssh_username": "root", {fields}}}]}}"#);
        let (q, diags) = qemu_template(&text);
        (q.map(|q| q.iso), diags)
    }

    #[test]
    fn packers_old_checksum_keys_become_one_checksum() {
        let md5 = "0123456789abcdef0123456789abcdef";
        let (iso, diags) = iso(&format!(
            r#""iso_url": "a.iso", "iso_checksum_type": "md5", "iso_checksum": "{md5}""#
        ));
        let iso = iso.unwrap_or_else(|| panic!("decodes: {diags}"));
        assert_eq!(iso.checksum, format!("md5:{md5}"), "{diags}");
        assert!(diags.contains("deprecated"), "{diags}");
        assert_eq!(iso.urls, ["a.iso"]);
    }

    #[test]
    fn a_build_without_an_iso_is_an_error() {
        let (_, diags) = iso(r#""iso_checksum": "none""#);

        assert!(diags.contains("iso_url"), "{diags}");
    }
}
