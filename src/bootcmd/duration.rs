//! The `XX` of `<waitXX>`: Go's duration syntax as Packer's grammar accepts
//! it (`1m30s`, `500ms`, `1.5h`), or a bare integer of seconds (`<wait10>`).
//! The grammar is scanned here; units and arithmetic are Go's, from
//! [`crate::host::go_duration`].

use std::time::Duration;

use crate::host::go_duration::{MAX_NANOS, number_nanos, unit_at};

/// What follows `wait` inside `<wait…>`, when it has the shape of a wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WaitLength {
    /// `<wait>`: one second.
    Default,
    /// A parsed length in nanoseconds; may be zero or negative, which the
    /// caller rejects as Packer does.
    Nanos(i128),
    /// The right shape, but Go could not represent it (overflow or a sign
    /// inside the duration).
    Invalid(&'static str),
}

/// Reads `[duration | integer]` followed by `>` at the start of `text`.
/// Returns the length and the bytes consumed including the `>`, or None
/// when this is not a wait by Packer's grammar (then it is typed as text).
pub(crate) fn wait_length(text: &str) -> Option<(WaitLength, usize)> {
    // The grammar's ordered choice: a duration first; only when none
    // matches, an integer; then the closing `>` must follow.
    if let Some((len, used)) = go_duration(text) {
        return closes(text, used).map(|n| (len, n));
    }
    if let Some((digits, used)) = integer(text) {
        let length = match digits.parse::<i128>() {
            Ok(secs) if secs <= MAX_NANOS / 1_000_000_000 => {
                WaitLength::Nanos(secs * 1_000_000_000)
            }
            _ => WaitLength::Invalid("is too long"),
        };
        return closes(text, used).map(|n| (length, n));
    }
    closes(text, 0).map(|n| (WaitLength::Default, n))
}

fn closes(text: &str, at: usize) -> Option<usize> {
    (text.as_bytes().get(at) == Some(&b'>')).then_some(at + 1)
}

/// `'0' / [1-9][0-9]*`: the digits and their length.
fn integer(text: &str) -> Option<(&str, usize)> {
    let bytes = text.as_bytes();
    match bytes.first()? {
        b'0' => Some((&text[..1], 1)),
        b'1'..=b'9' => {
            let n = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            Some((&text[..n], n))
        }
        _ => None,
    }
}

/// `(Number TimeUnit)+` where `Number = '-'? Integer ('.' Digit+)?`, then
/// the value as Go's `time.ParseDuration` computes it.
fn go_duration(text: &str) -> Option<(WaitLength, usize)> {
    let mut pos = 0;
    let mut total: i128 = 0;
    let mut negative = false;
    let mut invalid = None;
    let mut parts = 0;
    while let Some((part, used)) = component(&text[pos..]) {
        if part.negative {
            // Go accepts a sign only in front of the whole duration.
            if parts == 0 {
                negative = true;
            } else {
                invalid = Some("has a sign inside it");
            }
        }
        total = total.saturating_add(part.nanos);
        if total > MAX_NANOS {
            invalid = Some("is too long");
        }
        pos += used;
        parts += 1;
    }
    if parts == 0 {
        return None;
    }
    let length = match invalid {
        Some(why) => WaitLength::Invalid(why),
        None if negative => WaitLength::Nanos(-total),
        None => WaitLength::Nanos(total),
    };
    Some((length, pos))
}

struct Component {
    negative: bool,
    nanos: i128,
}

fn component(text: &str) -> Option<(Component, usize)> {
    let negative = text.starts_with('-');
    let mut pos = usize::from(negative);
    let (whole, n) = integer(&text[pos..])?;
    pos += n;
    let mut fraction = "";
    if text[pos..].starts_with('.') {
        let digits = text[pos + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        if digits > 0 {
            fraction = &text[pos + 1..pos + 1 + digits];
            pos += 1 + digits;
        }
    }
    let (unit_len, unit) = unit_at(&text[pos..])?;
    pos += unit_len;
    let nanos = number_nanos(whole, fraction, unit);
    Some((Component { negative, nanos }, pos))
}

/// Converts a positive length checked by the caller.
pub(crate) fn to_duration(nanos: i128) -> Duration {
    let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
    Duration::from_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(text: &str) -> Option<(WaitLength, usize)> {
        wait_length(text)
    }

    #[test]
    fn shapes_packer_accepts() {
        let s = 1_000_000_000;
        let cases: &[(&str, WaitLength)] = &[
            (">", WaitLength::Default),
            ("5>", WaitLength::Nanos(5 * s)),
            ("10>", WaitLength::Nanos(10 * s)),
            ("1m30s>", WaitLength::Nanos(90 * s)),
            ("500ms>", WaitLength::Nanos(s / 2)),
            ("1.5h>", WaitLength::Nanos(5400 * s)),
            ("0.5s>", WaitLength::Nanos(s / 2)),
            ("2h45m>", WaitLength::Nanos((2 * 3600 + 45 * 60) * s)),
            ("100us>", WaitLength::Nanos(100_000)),
            ("100\u{b5}s>", WaitLength::Nanos(100_000)),
            ("7ns>", WaitLength::Nanos(7)),
            ("0>", WaitLength::Nanos(0)),
            ("0s>", WaitLength::Nanos(0)),
            ("-1s>", WaitLength::Nanos(-s)),
            ("1m-30s>", WaitLength::Invalid("has a sign inside it")),
            ("9999999999h>", WaitLength::Invalid("is too long")),
            (
                "99999999999999999999999>",
                WaitLength::Invalid("is too long"),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(nanos(text), Some((want.clone(), text.len())), "{text}");
        }
    }

    #[test]
    fn shapes_packer_types_as_text() {
        for text in [
            "05>", "1.5>", "5sec>", "1m30>", "-1>", "5 >", "5", "", "x>", "5S>", "1.s>",
        ] {
            assert_eq!(nanos(text), None, "{text}");
        }
    }
}
