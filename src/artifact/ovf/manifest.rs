//! The `.mf` manifest: one `SHA256(name)= hex` line per file, the form
//! ovftool writes and VirtualBox, VMware and virt-v2v verify.

/// `SHA256(name)= hex\n` for a file of the package.
pub fn manifest_line(file_name: &str, sha256: &[u8]) -> String {
    format!("SHA256({file_name})= {}\n", crate::digest::hex(sha256))
}

/// The (file name, lowercase hex digest) pairs of a SHA256 manifest;
/// lines of another form are skipped.
pub fn parse_manifest(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("SHA256(")?;
            let (name, hex) = rest.split_once(")=")?;
            Some((name.to_owned(), hex.trim().to_ascii_lowercase()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_round_trips() {
        let line = manifest_line("a.ovf", &[0xde, 0xad, 0x01]);
        assert_eq!(line, "SHA256(a.ovf)= dead01\n");
        assert_eq!(
            parse_manifest(&line),
            vec![("a.ovf".to_owned(), "dead01".to_owned())]
        );
    }
}
