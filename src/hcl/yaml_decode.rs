//! `yamldecode`: one YAML document to an HCL value, with the mapping
//! Packer's function (go-cty-yaml) uses: mappings become objects,
//! sequences tuples, plain scalars are typed by their text (YAML 1.1's
//! booleans `yes`/`no`/`on`/`off` included) and quoted ones stay strings;
//! anchors and `<<` merge keys are followed. The parse is yaml-rust2's
//! event stream, so the typing rules are ours and match Packer's.

use hcl::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::{R, count, string};

const CORE: &str = "tag:yaml.org,2002:";

pub(super) fn yamldecode(a: &[Value]) -> R {
    count(a, 1, 1)?;
    decode(&string(a, 0)?)
}

/// A YAML error as Packer words it: `on line L, column C: what`.
fn at(mark: Marker, what: impl std::fmt::Display) -> String {
    format!("on line {}, column {}: {what}", mark.line(), mark.col() + 1)
}

pub(super) fn decode(text: &str) -> R {
    let mut d = Decoder {
        parser: Parser::new_from_str(text),
        anchors: Vec::new(),
    };
    let (first, mark) = d.next()?;
    if !matches!(first, Event::StreamStart) {
        return Err(at(mark, "missing stream start"));
    }
    let (doc, mark) = d.next()?;
    match doc {
        Event::DocumentStart => {}
        Event::StreamEnd => return Err(at(mark, "expecting a value but found end of stream")),
        _ => return Err(at(mark, "missing start of document")),
    }
    let value = d.node()?;
    let (end, mark) = d.next()?;
    match end {
        Event::DocumentEnd => {}
        _ => return Err(at(mark, "unexpected extra content after value")),
    }
    match d.next()? {
        (Event::StreamEnd, _) => Ok(value),
        (Event::DocumentStart, mark) => Err(at(
            mark,
            "only a single document is allowed (this text has a second after `---`)",
        )),
        (_, mark) => Err(at(mark, "unexpected extra content after value")),
    }
}

/// An anchor's value; `None` while its own node is still being read.
type Anchor = (usize, Option<Value>);

struct Decoder<'a> {
    parser: Parser<std::str::Chars<'a>>,
    anchors: Vec<Anchor>,
}

impl Decoder<'_> {
    fn next(&mut self) -> Result<(Event, Marker), String> {
        self.parser
            .next_token()
            .map_err(|e| at(*e.marker(), e.info()))
    }

    fn node(&mut self) -> R {
        let (event, mark) = self.next()?;
        self.node_from(event, mark)
    }

    fn node_from(&mut self, event: Event, mark: Marker) -> R {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.begin(anchor);
                let v = scalar(&text, style, tag.as_ref()).map_err(|e| at(mark, e))?;
                // `<<` is a merge only as a mapping key.
                let v = v.unwrap_or_else(|| Value::String(text));
                Ok(self.complete(anchor, v))
            }
            Event::Alias(id) => match self.anchors.iter().rev().find(|(a, _)| *a == id) {
                Some((_, Some(v))) => Ok(v.clone()),
                Some((_, None)) => Err(at(
                    mark,
                    "an alias refers to the anchor it is inside of (HCL values cannot be recursive)",
                )),
                None => Err(at(mark, "an alias refers to an undefined anchor")),
            },
            Event::SequenceStart(anchor, tag) => {
                if let Some(t) = tag.filter(|t| !is_core(t, "seq")) {
                    return Err(at(mark, format!("cannot read a sequence as {}", show(&t))));
                }
                self.begin(anchor);
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        (Event::SequenceEnd, _) => break,
                        (e, m) => items.push(self.node_from(e, m)?),
                    }
                }
                Ok(self.complete(anchor, Value::Array(items)))
            }
            Event::MappingStart(anchor, tag) => {
                if let Some(t) = tag.filter(|t| !is_core(t, "map")) {
                    return Err(at(mark, format!("cannot read a mapping as {}", show(&t))));
                }
                self.begin(anchor);
                let m = self.mapping()?;
                Ok(self.complete(anchor, Value::Object(m)))
            }
            Event::DocumentStart => Err(at(mark, "only a single document is allowed")),
            Event::StreamEnd => Err(at(mark, "expecting a value but found end of stream")),
            other => Err(at(mark, format!("unexpected {other:?}"))),
        }
    }

    fn mapping(&mut self) -> Result<Map<String, Value>, String> {
        let mut out = Map::new();
        loop {
            let (event, mark) = self.next()?;
            let (text, style, anchor, tag) = match event {
                Event::MappingEnd => return Ok(out),
                Event::Scalar(text, style, anchor, tag) => (text, style, anchor, tag),
                _ => return Err(at(mark, "only strings are allowed as mapping keys")),
            };
            let key = scalar(&text, style, tag.as_ref()).map_err(|e| at(mark, e))?;
            let Some(key) = key else {
                // `<<: *base` or `<<: [*a, *b]`: the mapping(s) merged in,
                // keys already present winning as in go-cty-yaml.
                let (event, vmark) = self.next()?;
                let merged = self.node_from(event, vmark)?;
                let Value::Object(m) = merged else {
                    return Err(at(
                        mark,
                        format!("cannot merge {} into a mapping", kind(&merged)),
                    ));
                };
                for (k, v) in m {
                    out.insert(k, v);
                }
                continue;
            };
            self.begin(anchor);
            let key = self.complete(anchor, key);
            let key = match key {
                Value::String(s) => s,
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::Null => return Err(at(mark, "a mapping key cannot be null")),
                _ => return Err(at(mark, "only strings are allowed as mapping keys")),
            };
            let value = self.node()?;
            out.insert(key, value);
        }
    }

    fn begin(&mut self, anchor: usize) {
        if anchor != 0 {
            self.anchors.push((anchor, None));
        }
    }

    fn complete(&mut self, anchor: usize, v: Value) -> Value {
        if anchor != 0
            && let Some(slot) = self.anchors.iter_mut().rev().find(|(a, _)| *a == anchor)
        {
            slot.1 = Some(v.clone());
        }
        v
    }
}

fn is_core(tag: &Tag, suffix: &str) -> bool {
    tag.handle == CORE && tag.suffix == suffix
}

fn show(tag: &Tag) -> String {
    if tag.handle == CORE {
        format!("!!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

/// A scalar's value; `None` for the merge key `<<`.
fn scalar(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Result<Option<Value>, String> {
    let tag = match tag {
        None => None,
        Some(t) if t.handle == CORE => Some(t.suffix.as_str()),
        Some(t) => return Err(format!("unsupported tag {}", show(t))),
    };
    // Quoted and block scalars are strings unless tagged otherwise.
    if tag.is_none() && style != TScalarStyle::Plain {
        return Ok(Some(Value::String(text.to_owned())));
    }
    let v = match tag {
        None => {
            if text == "<<" {
                return Ok(None);
            }
            implied(text)?
        }
        Some("str") => Value::String(text.to_owned()),
        Some("binary") => {
            use base64::Engine as _;
            let compact: String = text.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|_| format!("cannot read {text:?} as !!binary: not valid base64"))?;
            Value::String(text.to_owned())
        }
        Some("bool") => match keyword(text) {
            Some(v @ Value::Bool(_)) => v,
            _ => return Err(format!("cannot read {text:?} as !!bool")),
        },
        Some("int" | "float") => tagged_number(text)
            .ok_or_else(|| format!("cannot read {text:?} as !!{}", tag.unwrap_or_default()))?,
        Some("null") => Value::Null,
        Some("timestamp") => Value::String(
            timestamp(text).ok_or_else(|| format!("cannot read {text:?} as !!timestamp"))?,
        ),
        Some(other) => return Err(format!("unsupported tag !!{other}")),
    };
    Ok(Some(v))
}

/// The values YAML 1.1 spells with words (go-cty-yaml's table).
fn keyword(text: &str) -> Option<Value> {
    Some(match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Value::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Value::Bool(false)
        }
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        _ => return None,
    })
}

/// An untagged plain scalar: a keyword, a decimal number, a timestamp
/// (as RFC 3339 text), or else a string. Hex and octal stay strings
/// unless tagged `!!int`, as in Packer.
fn implied(text: &str) -> R {
    if let Some(v) = keyword(text) {
        return Ok(v);
    }
    let bare = text.trim_start_matches(['+', '-']);
    if matches!(bare, ".inf" | ".Inf" | ".INF") && text.len() - bare.len() <= 1 {
        return Err("infinity cannot be an HCL number".into());
    }
    if matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Err("floating point NaN is not supported".into());
    }
    let first = text.as_bytes().first().copied().unwrap_or(b' ');
    if first.is_ascii_digit() || first == b'+' || first == b'-' {
        if let Some(t) = timestamp(text) {
            return Ok(Value::String(t));
        }
        if let Some(n) = decimal(&text.replace('_', "")) {
            return Ok(n);
        }
        if let Some(n) = binary(&text.replace('_', "")) {
            return Ok(n);
        }
    } else if first == b'.'
        && let Some(n) = decimal(text)
    {
        return Ok(n);
    }
    Ok(Value::String(text.to_owned()))
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn decimal(text: &str) -> Option<Value> {
    let b = text.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let int = digits(&mut i);
    let mut frac = 0;
    let mut dot = false;
    if b.get(i) == Some(&b'.') {
        dot = true;
        i += 1;
        frac = digits(&mut i);
    }
    if int == 0 && frac == 0 {
        return None;
    }
    let mut exp = false;
    if matches!(b.get(i), Some(b'e' | b'E')) {
        exp = true;
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    if !dot
        && !exp
        && let Ok(n) = text.parse::<i64>()
    {
        return Some(Value::Number(Number::from(n)));
    }
    text.parse::<f64>().ok().map(super::num)
}

fn binary(text: &str) -> Option<Value> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest.strip_prefix("0b")?),
        None => (false, text.strip_prefix("0b")?),
    };
    let n = i64::from_str_radix(digits, 2).ok()?;
    Some(Value::Number(Number::from(if neg { -n } else { n })))
}

/// A `!!int`/`!!float` scalar: decimal, or an integer in Go's base-prefixed
/// forms (`0x1F`, `0o17`, `017`, `0b101`).
fn tagged_number(text: &str) -> Option<Value> {
    let plain = text.replace('_', "");
    if let Some(v) = decimal(&plain) {
        return Some(v);
    }
    let (neg, rest) = match plain.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, plain.strip_prefix('+').unwrap_or(&plain)),
    };
    let (radix, digits) = if let Some(d) = rest.strip_prefix("0x").or(rest.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = rest.strip_prefix("0o").or(rest.strip_prefix("0O")) {
        (8, d)
    } else if let Some(d) = rest.strip_prefix("0b").or(rest.strip_prefix("0B")) {
        (2, d)
    } else if rest.len() > 1 && rest.starts_with('0') {
        (8, &rest[1..])
    } else {
        return None;
    };
    let n = i64::from_str_radix(digits, radix).ok()?;
    Some(Value::Number(Number::from(if neg { -n } else { n })))
}

/// The YAML timestamps go-cty-yaml reads (`2001-12-14`,
/// `2001-12-14t21:59:43.10-05:00`, `2001-12-14 21:59:43.10`), given back
/// as RFC 3339 text without the fraction, as Go's `time.RFC3339` prints.
fn timestamp(text: &str) -> Option<String> {
    let b = text.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let year: u32 = text[..4].parse().ok()?;
    let mut rest = &text[5..];
    let field = |rest: &mut &str, max_digits: usize| -> Option<u32> {
        let n = rest
            .bytes()
            .take(max_digits)
            .take_while(u8::is_ascii_digit)
            .count();
        if n == 0 {
            return None;
        }
        let v = rest[..n].parse().ok()?;
        *rest = &rest[n..];
        Some(v)
    };
    let month = field(&mut rest, 2)?;
    rest = rest.strip_prefix('-')?;
    let day = field(&mut rest, 2)?;
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month) || day == 0 || day > days[month as usize - 1] {
        return None;
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    if rest.is_empty() {
        return Some(format!("{date}T00:00:00Z"));
    }
    let spaced = rest.starts_with(' ');
    rest = rest
        .strip_prefix('T')
        .or_else(|| rest.strip_prefix('t'))
        .or_else(|| rest.strip_prefix(' '))?;
    let hour = field(&mut rest, 2)?;
    rest = rest.strip_prefix(':')?;
    let minute = field(&mut rest, 2)?;
    rest = rest.strip_prefix(':')?;
    let second = field(&mut rest, 2)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        rest = &r[n..];
    }
    let time = format!("{date}T{hour:02}:{minute:02}:{second:02}");
    // A space-separated timestamp has no zone (UTC); a `T` one must have one.
    let zone = match rest {
        "" if spaced => "Z".to_owned(),
        "Z" if !spaced => "Z".to_owned(),
        z if !spaced && z.len() == 6 && (z.starts_with('+') || z.starts_with('-')) => {
            let (h, m) = (z.get(1..3)?, z.get(4..6)?);
            if z.as_bytes()[3] != b':' || !(h.bytes().chain(m.bytes())).all(|c| c.is_ascii_digit())
            {
                return None;
            }
            if h == "00" && m == "00" {
                "Z".to_owned()
            } else {
                z.to_owned()
            }
        }
        _ => return None,
    };
    Some(format!("{time}{zone}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        decode(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn packer_docs_examples() {
        // From Packer's yamldecode page.
        assert_eq!(yaml("hello: world"), obj(&[("hello", "world".into())]));
        assert_eq!(yaml("true"), Value::Bool(true));
        assert_eq!(
            yaml("{a: &foo [1, 2, 3], b: *foo}"),
            obj(&[
                ("a", Value::Array(vec![1.into(), 2.into(), 3.into()])),
                ("b", Value::Array(vec![1.into(), 2.into(), 3.into()])),
            ])
        );
        let e = decode("{a: &foo [1, *foo, 3]}").expect_err("recursive");
        assert!(e.contains("inside of"), "{e}");
        let e = decode("{a: !not-supported foo}").expect_err("tag");
        assert!(e.contains("unsupported tag !not-supported"), "{e}");
    }

    #[test]
    fn plain_scalars_are_typed_and_quoted_ones_are_strings() {
        assert_eq!(yaml("yes"), Value::Bool(true));
        assert_eq!(yaml("Off"), Value::Bool(false));
        assert_eq!(yaml("'yes'"), Value::from("yes"));
        assert_eq!(yaml("\"12\""), Value::from("12"));
        assert_eq!(yaml("~"), Value::Null);
        assert_eq!(yaml("12"), Value::from(12));
        assert_eq!(yaml("1_000"), Value::from(1000));
        assert_eq!(yaml("-1.5e3"), Value::from(-1500));
        assert_eq!(yaml(".5"), super::super::num(0.5));
        assert_eq!(yaml("0b101"), Value::from(5));
        // Untagged hex stays a string; tagged, it is a number.
        assert_eq!(yaml("0x1F"), Value::from("0x1F"));
        assert_eq!(yaml("!!int 0x1F"), Value::from(31));
        assert_eq!(yaml("!!str 12"), Value::from("12"));
        assert_eq!(yaml("1.2.3"), Value::from("1.2.3"));
        assert_eq!(yaml("|\n  two\n  lines\n"), Value::from("two\nlines\n"));
        let e = decode("!!bool maybe").expect_err("bad bool");
        assert!(e.contains("cannot read \"maybe\" as !!bool"), "{e}");
        assert!(decode(".nan").expect_err("nan").contains("NaN"));
        assert!(decode("-.inf").expect_err("inf").contains("infinity"));
    }

    #[test]
    fn timestamps_become_rfc3339_text() {
        assert_eq!(yaml("2001-12-14"), Value::from("2001-12-14T00:00:00Z"));
        assert_eq!(
            yaml("2001-12-14t21:59:43.10-05:00"),
            Value::from("2001-12-14T21:59:43-05:00")
        );
        assert_eq!(
            yaml("2001-12-14 21:59:43.10"),
            Value::from("2001-12-14T21:59:43Z")
        );
        assert_eq!(yaml("2001-02-30"), Value::from("2001-02-30"));
    }

    #[test]
    fn mappings_merge_keys_and_sequences() {
        let text = "base: &base {cpus: 1, memory: 256}\nvm:\n  <<: *base\n  memory: 512\nlist:\n- a\n- 1\n";
        let v = yaml(text);
        let Value::Object(m) = &v else {
            panic!("{v:?}")
        };
        assert_eq!(m["vm"], obj(&[("cpus", 1.into()), ("memory", 512.into())]));
        assert_eq!(m["list"], Value::Array(vec!["a".into(), 1.into()]));
        assert_eq!(
            yaml("1: one\ntrue: t"),
            obj(&[("1", "one".into()), ("true", "t".into())])
        );
        let e = decode("~: x").expect_err("null key");
        assert!(e.contains("cannot be null"), "{e}");
        let e = decode("[a]: x").expect_err("sequence key");
        assert!(e.contains("only strings"), "{e}");
        let e = decode("<<: 1").expect_err("merge a number");
        assert!(e.contains("cannot merge a number"), "{e}");
        let e = decode("!!map [1]").expect_err("seq as map");
        assert!(e.contains("cannot read a sequence as !!map"), "{e}");
    }

    #[test]
    fn one_document_only_with_its_place() {
        let e = decode("a: 1\n---\nb: 2\n").expect_err("two documents");
        assert_eq!(
            e,
            "on line 2, column 1: only a single document is allowed (this text has a second after `---`)"
        );
        let e = decode("a: [1\n").expect_err("syntax");
        assert!(e.starts_with("on line "), "{e}");
        let e = decode("").expect_err("empty");
        assert!(e.contains("end of stream"), "{e}");
        assert_eq!(yaml("---\na: 1\n...\n"), obj(&[("a", 1.into())]));
    }
}
