//! A JSON template's string, Go-template actions included, as an HCL2
//! quoted template, mapped as `packer hcl2_upgrade` maps them:
//! `{{user `x`}}` → `${var.x}`, `{{timestamp}}` → `${local.timestamp}`,
//! build-time fields (`{{ .HTTPIP }}`) kept as they are; an action it
//! cannot map is kept as text and reported, so a comment can say so.

/// What the translation of one string needed or could not do.
#[derive(Debug, Default)]
pub struct Notes {
    /// `{{timestamp}}` was used: the `local.timestamp` block is needed.
    pub timestamp: bool,
    /// Actions kept as Go-template text, with why.
    pub unmapped: Vec<String>,
    /// Variables whose value is computed in a local (their default used
    /// other values): `{{user `x`}}` of one is `local.x`.
    pub computed: std::collections::BTreeSet<String>,
}

impl Notes {
    /// Notes for one more string of the same template.
    pub fn sibling(&self) -> Self {
        Self {
            computed: self.computed.clone(),
            ..Self::default()
        }
    }
}

/// `s` as an HCL quoted string (quotes included).
pub fn quote(s: &str, notes: &mut Notes) -> String {
    let mut out = String::from("\"");
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        push_literal(&mut out, &rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            push_literal(&mut out, &rest[open..]);
            rest = "";
            break;
        };
        let action = &after[..close];
        let whole = &rest[open..open + 2 + close + 2];
        match map_action(action, notes) {
            Some(hcl) => out.push_str(&hcl),
            None => push_literal(&mut out, whole),
        }
        rest = &after[close + 2..];
    }
    push_literal(&mut out, rest);
    out.push('"');
    out
}

/// Literal text, escaped for an HCL quoted template.
fn push_literal(out: &mut String, text: &str) {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                // `${` and `%{` would start an interpolation: double the sigil.
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
}

/// One `{{ … }}` action as HCL, or None when it stays Go-template text
/// (build-time fields, which Packer keeps, and what cannot be mapped).
fn map_action(action: &str, notes: &mut Notes) -> Option<String> {
    let inner = action.trim_start_matches('-').trim_end_matches('-').trim();
    if inner.starts_with('.') {
        return None; // {{ .HTTPIP }}: filled in when the build runs
    }
    let Some(words) = split_words(inner) else {
        notes
            .unmapped
            .push(format!("{{{{{action}}}}}: not a simple function call"));
        return None;
    };
    let (name, args) = words.split_first()?;
    let name = &name.text;
    let arg = |i: usize| args.get(i).map(|w| w.text.as_str());
    // A quoted argument is a string; a bare one a zero-argument function
    // (`{{split build_name "-" 1}}`): never its name as a string.
    let mut zero_arg_timestamp = false;
    let mut unmapped_arg = None;
    let mut hcl_args = Vec::new();
    for w in args {
        let hcl = if w.quoted {
            let mut ignored = Notes::default();
            Some(quote(&w.text, &mut ignored))
        } else {
            match w.text.as_str() {
                "build_name" => Some("source.name".to_owned()),
                "build_type" => Some("source.type".to_owned()),
                "uuid" => Some("uuidv4()".to_owned()),
                "pwd" => Some("path.cwd".to_owned()),
                "template_dir" => Some("path.root".to_owned()),
                "packer_version" => Some("packer.version".to_owned()),
                "timestamp" => {
                    zero_arg_timestamp = true;
                    Some("local.timestamp".to_owned())
                }
                n if n.parse::<i64>().is_ok() => Some(n.to_owned()),
                _ => None,
            }
        };
        match hcl {
            Some(h) => hcl_args.push(h),
            None => unmapped_arg = Some(w.text.clone()),
        }
    }
    if let Some(bare) = unmapped_arg {
        notes.unmapped.push(format!(
            "{{{{{action}}}}}: argument `{bare}` has no HCL2 form here"
        ));
        return None;
    }
    if zero_arg_timestamp {
        notes.timestamp = true;
    }
    let hcl_arg = |i: usize| hcl_args.get(i).cloned();
    let hcl_string = |s: &str| {
        let mut ignored = Notes::default();
        quote(s, &mut ignored)
    };
    let mapped = match (name.as_str(), args.len()) {
        ("user", 1) if notes.computed.contains(arg(0)?) => format!("${{local.{}}}", arg(0)?),
        ("user", 1) => format!("${{var.{}}}", arg(0)?),
        ("env", 1) => format!("${{env({})}}", hcl_string(arg(0)?)),
        ("timestamp", 0) => {
            notes.timestamp = true;
            "${local.timestamp}".to_owned()
        }
        ("uuid", 0) => "${uuidv4()}".to_owned(),
        ("pwd", 0) => "${path.cwd}".to_owned(),
        ("template_dir", 0) => "${path.root}".to_owned(),
        ("packer_version", 0) => "${packer.version}".to_owned(),
        ("build_name", 0) => "${source.name}".to_owned(),
        ("build_type", 0) => "${source.type}".to_owned(),
        ("build", 1) => format!("${{build.{}}}", arg(0)?),
        ("isotime", 0) => "${legacy_isotime(\"2006-01-02T15:04:05Z07:00\")}".to_owned(),
        ("isotime", 1) => format!("${{legacy_isotime({})}}", hcl_arg(0)?),
        ("strftime", 1) => format!("${{legacy_strftime({})}}", hcl_arg(0)?),
        ("lower" | "upper", 1) => format!("${{{name}({})}}", hcl_arg(0)?),
        ("split", 3) => format!("${{split({}, {})[{}]}}", hcl_arg(1)?, hcl_arg(0)?, arg(2)?),
        ("replace_all", 3) => format!(
            "${{replace({}, {}, {})}}",
            hcl_arg(2)?,
            hcl_arg(0)?,
            hcl_arg(1)?
        ),
        ("vault" | "consul_key" | "aws_secretsmanager", _) => {
            let list: Vec<String> = args.iter().map(|a| hcl_string(&a.text)).collect();
            format!("${{{name}({})}}", list.join(", "))
        }
        _ => {
            notes.unmapped.push(format!(
                "{{{{{action}}}}}: function {name:?} has no HCL2 form here"
            ));
            return None;
        }
    };
    Some(mapped)
}

/// One word of an action, unquoted, and whether it was quoted.
struct Word {
    text: String,
    quoted: bool,
}

/// The words of an action: bare words, and `backquoted` or "quoted"
/// strings unquoted. None for pipes, parentheses and other syntax.
fn split_words(s: &str) -> Option<Vec<Word>> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        match c {
            '`' => {
                chars.next();
                let text: String = chars.by_ref().take_while(|&ch| ch != '`').collect();
                words.push(Word { text, quoted: true });
            }
            '"' => {
                chars.next();
                let mut w = String::new();
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => w.push(chars.next()?),
                        ch => w.push(ch),
                    }
                }
                words.push(Word {
                    text: w,
                    quoted: true,
                });
            }
            '|' | '(' | ')' | '$' => return None,
            _ => {
                let mut w = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() {
                        break;
                    }
                    w.push(ch);
                    chars.next();
                }
                words.push(Word {
                    text: w,
                    quoted: false,
                });
            }
        }
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> (String, Notes) {
        let mut n = Notes::default();
        (quote(s, &mut n), n)
    }

    #[test]
    fn user_variables_become_var_references() {
        assert_eq!(q("{{user `iso_url`}}").0, "\"${var.iso_url}\"");
        assert_eq!(q("a-{{ user \"x\" }}-b").0, "\"a-${var.x}-b\"");
    }

    #[test]
    fn build_time_fields_are_kept() {
        let (s, n) = q("url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/x<enter>");
        assert_eq!(s, "\"url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/x<enter>\"");
        assert!(n.unmapped.is_empty());
    }

    #[test]
    fn timestamp_needs_the_local() {
        let (s, n) = q("img-{{timestamp}}");
        assert_eq!(s, "\"img-${local.timestamp}\"");
        assert!(n.timestamp);
    }

    #[test]
    fn text_that_looks_like_hcl_is_escaped() {
        assert_eq!(q("a \"b\" ${c} %{d}\n\\").0, r#""a \"b\" $${c} %%{d}\n\\""#);
    }

    #[test]
    fn what_cannot_be_mapped_is_kept_and_noted() {
        let (s, n) = q("{{ sed `s/a/b/` `x` }} {{ user `a` | upper }}");
        assert_eq!(s, "\"{{ sed `s/a/b/` `x` }} {{ user `a` | upper }}\"");
        assert_eq!(n.unmapped.len(), 2, "{:?}", n.unmapped);
    }
}
