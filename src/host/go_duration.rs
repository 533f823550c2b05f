//! Go's duration syntax (`300ms`, `1.5h`, `2h45m`, `-1m30s`), once for all
//! of kiln: the units and the exact arithmetic behind them (integer
//! nanoseconds, as Go computes them), and Go's `time.ParseDuration` over a
//! whole string, which settings and HCL's `timeadd` use. The boot
//! command's `<waitXX>` scans Packer's stricter grammar itself and takes
//! its units and arithmetic from here.

use std::time::Duration;

/// Go's `time.Duration` limit, in nanoseconds.
pub const MAX_NANOS: i128 = i64::MAX as i128;

/// The units, in nanoseconds, each before any unit it is a prefix of
/// (`ms` before `m`), so a scan can take the first that matches.
pub const UNITS: &[(&str, i128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Go also takes microseconds with a Greek mu (U+03BC); Packer's
/// boot-command grammar does not, so it is not in [`UNITS`].
const GREEK_MICROS: &str = "\u{3bc}s";

/// The unit at the start of `text` and its length, by [`UNITS`].
pub fn unit_at(text: &str) -> Option<(usize, i128)> {
    UNITS
        .iter()
        .find(|(name, _)| text.starts_with(name))
        .map(|(name, nanos)| (name.len(), *nanos))
}

/// `whole.fraction` units of `unit` nanoseconds, exactly (saturating at
/// what an i128 holds). Either part may be empty (`.5`, `1.`).
pub fn number_nanos(whole: &str, fraction: &str, unit: i128) -> i128 {
    // Digits beyond what an i128 holds can only mean an overflow.
    let whole = if whole.is_empty() {
        0
    } else {
        whole.parse::<i128>().unwrap_or(i128::MAX)
    };
    let mut nanos = whole.saturating_mul(unit);
    if !fraction.is_empty() {
        // Nanosecond precision is all a Duration keeps; 20 digits are plenty.
        let kept = &fraction[..fraction.len().min(20)];
        let scale = 10i128.pow(kept.len() as u32);
        let value = kept.parse::<i128>().unwrap_or(0);
        nanos = nanos.saturating_add(value.saturating_mul(unit) / scale);
    }
    nanos
}

/// Go's `time.ParseDuration` with its sign: `(negative, magnitude)`.
/// The error says what is wrong, for a message that quotes the value.
pub fn parse_signed(s: &str) -> Result<(bool, Duration), String> {
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok((negative, Duration::ZERO));
    }
    if rest.is_empty() {
        return Err("it is empty".into());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let number = &rest[..num_len];
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) {
            return Err(format!("`{number}` is not a number"));
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "" => {
                // As a number reads (`05` is 5), for the message.
                let shown: f64 = number.parse().unwrap_or_default();
                return Err(format!("`{shown}` has no unit (ns, us, ms, s, m, h)"));
            }
            GREEK_MICROS => 1_000,
            name => match UNITS.iter().find(|(n, _)| *n == name) {
                Some((_, nanos)) => *nanos,
                None => {
                    return Err(format!("unknown unit `{name}` (use ns, us, ms, s, m or h)"));
                }
            },
        };
        total = total.saturating_add(number_nanos(whole, fraction, unit));
        rest = &rest[unit_len..];
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| "it is too long")?;
    let nanos = u32::try_from(total % 1_000_000_000).unwrap_or(0);
    Ok((negative, Duration::new(secs, nanos)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_with_their_sign() {
        let secs = |n| Ok((false, Duration::from_secs(n)));
        assert_eq!(parse_signed("1m30s"), secs(90));
        assert_eq!(parse_signed("2h45m10s"), secs(9910));
        assert_eq!(parse_signed("+2s"), secs(2));
        assert_eq!(parse_signed("0"), Ok((false, Duration::ZERO)));
        assert_eq!(parse_signed("-1.5h"), Ok((true, Duration::from_secs(5400))));
        assert_eq!(parse_signed(".5s"), Ok((false, Duration::from_millis(500))));
        assert_eq!(parse_signed("1.s"), secs(1));
        // Integer nanoseconds, as Go computes them.
        assert_eq!(parse_signed("7ns"), Ok((false, Duration::from_nanos(7))));
        assert_eq!(
            parse_signed("1.1s"),
            Ok((false, Duration::from_millis(1100)))
        );
        assert_eq!(
            parse_signed("3\u{3bc}s5\u{b5}s"),
            Ok((false, Duration::from_micros(8)))
        );
    }

    #[test]
    fn what_is_wrong_with_a_bad_duration() {
        let problem = |s| parse_signed(s).expect_err(s);
        assert_eq!(problem(""), "it is empty");
        assert_eq!(problem("-"), "it is empty");
        assert_eq!(problem("soon"), "expected a number at `soon`");
        assert_eq!(problem("1.2.3s"), "`1.2.3` is not a number");
        assert_eq!(problem(".s"), "`.` is not a number");
        assert_eq!(problem("05"), "`5` has no unit (ns, us, ms, s, m, h)");
        assert_eq!(
            problem("5 minutes"),
            "unknown unit ` minutes` (use ns, us, ms, s, m or h)"
        );
        assert_eq!(problem("99999999999999999999999h"), "it is too long");
    }

    #[test]
    fn units_and_numbers_scan_exactly() {
        assert_eq!(unit_at("ms>"), Some((2, 1_000_000)));
        assert_eq!(unit_at("m>"), Some((1, 60_000_000_000)));
        assert_eq!(unit_at("\u{3bc}s>"), None);
        assert_eq!(number_nanos("1", "5", 3_600_000_000_000), 5_400_000_000_000);
        assert_eq!(number_nanos("", "25", 1_000_000_000), 250_000_000);
        assert_eq!(number_nanos("9".repeat(50).as_str(), "", 1), i128::MAX);
    }
}
