//! `kiln fmt`'s core: HCL2 text in, canonically formatted text out, as
//! `packer fmt` (HashiCorp's `hclwrite.Format`) writes it. Text that does
//! not parse is refused with its file, line and column, never rewritten.
//! Pure: the command reads and writes the files.

mod layout;
mod lex;

use std::path::Path;

use crate::template::diagnostic::{Diagnostics, Location};
use crate::template::json::Span;
use crate::template::source::SourceFile;

/// `src` formatted. Only spaces change: comments, blank lines, heredocs
/// and quoted text stay as they are.
pub fn format_text(src: &str) -> String {
    let mut tokens = lex::tokens(src);
    layout::format(&mut tokens);
    let mut out = String::with_capacity(src.len());
    for t in &tokens {
        out.extend(std::iter::repeat_n(' ', t.spaces_before));
        out.push_str(t.text);
    }
    out
}

/// `src` formatted, or a syntax error at its place in `path` (Packer
/// refuses to format what does not parse).
pub fn format_file(path: &Path, src: &str) -> Result<String, Diagnostics> {
    let refuse = |at: usize, message: String| {
        let file = std::sync::Arc::new(SourceFile::new(path, src.to_owned()));
        let mut diags = Diagnostics::new();
        diags
            .error(
                "",
                message,
                Some(Location {
                    file,
                    span: Span::new(at, at + 1),
                }),
            )
            .hint = Some("fix the syntax error first: kiln fmt leaves the file as it is".into());
        diags
    };
    // HCL ends lines with LF or CRLF; hcl-edit lets a lone CR through, and
    // formatting around one was not stable (found by the fuzzer).
    if let Some(at) = lone_carriage_return(src) {
        return Err(refuse(
            at,
            "invalid HCL: a carriage return that does not end a line (HCL ends lines with LF or CRLF)".into(),
        ));
    }
    if let Err(e) = hcl::edit::parser::parse_body(src) {
        return Err(refuse(
            e.location().offset(),
            format!("invalid HCL: {}", e.message()),
        ));
    }
    Ok(format_text(src))
}

/// The byte offset of the first `\r` not followed by `\n`.
fn lone_carriage_return(src: &str) -> Option<usize> {
    let bytes = src.as_bytes();
    bytes
        .iter()
        .enumerate()
        .find(|&(i, &b)| b == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod carriage_return_tests {
    use super::*;

    #[test]
    fn a_lone_carriage_return_is_refused_and_crlf_is_kept() {
        let path = Path::new("t.pkr.hcl");
        // The fuzzer's input: formatting it twice gave two different texts.
        assert!(format_file(path, "\r\t\r\t\n\n").is_err());
        assert_eq!(lone_carriage_return("a = 1\r\nb = 2\r\n"), None);
        assert_eq!(lone_carriage_return("a = 1\rb = 2\n"), Some(5));
        let crlf = format_file(path, "a = 1\r\nbb = 2\r\n").expect("CRLF is fine");
        assert_eq!(format_text(&crlf), crlf);
    }
}

/// The change from `old` to `new` as `diff -u` prints it, with Packer's
/// `old/PATH` and `new/PATH` labels.
pub fn unified_diff(old: &str, new: &str, path: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("old/{path}"), &format!("new/{path}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::format_text;

    #[track_caller]
    fn formats(input: &str, expected: &str) {
        let once = format_text(input);
        assert_eq!(once, expected);
        assert_eq!(format_text(&once), once, "formatting twice changes it");
    }

    #[test]
    fn equals_signs_line_up_in_a_run_of_attributes() {
        formats(
            "a=1\nlonger_name   =  \"x\"\n\nb = 2\n",
            "a           = 1\nlonger_name = \"x\"\n\nb = 2\n",
        );
    }

    #[test]
    fn blocks_indent_two_spaces_a_level() {
        formats(
            "source \"qemu\" \"a\" {\ncpus=2\n    nested {\n x = [1,2]\n}\n}\n",
            "source \"qemu\" \"a\" {\n  cpus = 2\n  nested {\n    x = [1, 2]\n  }\n}\n",
        );
    }

    #[test]
    fn operators_get_one_space_and_negation_none() {
        formats(
            "x = a+-1*(b  -c)\ny = ! a&&b-c\nz = f( - 1 , 2 )\n",
            "x = a + -1 * (b - c)\ny = !a && b-c\nz = f(-1, 2)\n",
        );
    }

    #[test]
    fn trailing_comments_line_up() {
        formats(
            "a = 1 # one\nbbb = 22 // two\n",
            "a   = 1  # one\nbbb = 22 // two\n",
        );
    }

    #[test]
    fn heredocs_and_quoted_text_are_left_alone() {
        formats(
            "x = <<-EOF\n   keep   this\n     EOF\ny = \"a  ${ var.b }  c\"\n",
            "x = <<-EOF\n   keep   this\n     EOF\ny = \"a  ${var.b}  c\"\n",
        );
    }

    /// Every HCL2 file the repository holds (fixtures, examples) formats
    /// to text that means the same (hcl-rs reads the same body) and is
    /// stable.
    #[test]
    fn formatting_keeps_the_meaning_of_every_shipped_file() {
        fn walk(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, found);
                } else if p.to_string_lossy().ends_with(".hcl") {
                    found.push(p);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        walk(&root.join("tests/fixtures"), &mut files);
        walk(&root.join("examples"), &mut files);
        assert!(files.len() > 20, "{files:?}");
        for f in files {
            let src = std::fs::read_to_string(&f).expect("read");
            let Ok(before) = hcl::parse(&src) else {
                continue; // the syntax-error fixtures
            };
            let once = format_text(&src);
            let after = hcl::parse(&once).unwrap_or_else(|e| {
                panic!(
                    "{}: formatted text does not parse: {e}\n{once}",
                    f.display()
                )
            });
            // hcl-rs keeps `${…}` templates as text, whose spaces the
            // formatter changes as hclwrite does: compare those without
            // spaces, everything else exactly.
            if src.contains("${") || src.contains("%{") {
                let squeeze = |b: &hcl::Body| {
                    format!("{b:?}")
                        .chars()
                        .filter(|c| !c.is_whitespace())
                        .collect::<String>()
                };
                assert_eq!(squeeze(&before), squeeze(&after), "{}", f.display());
            } else {
                assert_eq!(
                    before,
                    after,
                    "{}: formatting changed the meaning",
                    f.display()
                );
            }
            assert_eq!(format_text(&once), once, "{}: not idempotent", f.display());
        }
    }

    #[test]
    fn trailing_spaces_go() {
        formats("a = 1   \n  \n", "a = 1\n\n");
    }
}
