//! Packer spells long flags with one dash (`-var-file=x`, `-only=a,b`);
//! kiln accepts that by rewriting them to clap's `--long` form first.

/// Flags whose value may come as the next argument (`-var 'k=v'`).
const TAKES_VALUE: &[&str] = &[
    "var",
    "var-file",
    "only",
    "except",
    "on-error",
    "parallel-builds",
    "checksum",
    "older-than",
    "output-file",
];

pub fn normalize(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut rest_verbatim = false;
    let mut next_is_value = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || rest_verbatim || next_is_value {
            next_is_value = false;
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            rest_verbatim = true;
            out.push(arg);
            continue;
        }
        let is_single_dash_long = text.len() > 2
            && text.starts_with('-')
            && !text.starts_with("--")
            && text[1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic());
        if is_single_dash_long {
            let name = text[1..].split('=').next().unwrap_or("");
            next_is_value = !text.contains('=') && TAKES_VALUE.contains(&name);
            out.push(format!("-{text}").into());
        } else {
            let name = text.trim_start_matches('-').split('=').next().unwrap_or("");
            next_is_value =
                text.starts_with("--") && !text.contains('=') && TAKES_VALUE.contains(&name);
            out.push(arg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize(args.iter().map(|a| std::ffi::OsString::from(*a)))
            .into_iter()
            .map(|a| a.into_string().unwrap_or_default())
            .collect()
    }

    #[test]
    fn rewrites_packer_spelling() {
        assert_eq!(
            norm(&[
                "kiln",
                "build",
                "-var-file=v.json",
                "-var",
                "-x=1",
                "-only=a,b",
                "-force",
                "t.json"
            ]),
            [
                "kiln",
                "build",
                "--var-file=v.json",
                "--var",
                "-x=1",
                "--only=a,b",
                "--force",
                "t.json"
            ]
        );
    }

    #[test]
    fn leaves_short_flags_double_dashes_and_after_separator() {
        assert_eq!(
            norm(&["kiln", "-h", "--var", "-a=b", "--", "-force"]),
            ["kiln", "-h", "--var", "-a=b", "--", "-force"]
        );
        assert_eq!(norm(&["kiln", "validate", "-"]), ["kiln", "validate", "-"]);
    }
}
