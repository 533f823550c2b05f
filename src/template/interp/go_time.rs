//! Formats a UTC instant with a Go reference-time layout ("2006-01-02T15:04:05Z07:00"),
//! as Go's `time.Time.Format` does, for `isotime`. Calendar maths included.

use std::time::{SystemTime, UNIX_EPOCH};

/// Go's `time.RFC3339`, `isotime`'s layout when given none.
pub(crate) const RFC3339: &str = "2006-01-02T15:04:05Z07:00";

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Seconds and nanoseconds since the Unix epoch, flooring before it as Go does.
pub(crate) fn unix_parts(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(before) => {
            let d = before.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (-secs, 0),
                n => (-secs - 1, 1_000_000_000 - n),
            }
        }
    }
}

/// A UTC instant broken into calendar parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    /// 1..=12
    month: u32,
    /// 1..=31
    day: u32,
    /// 1..=366
    year_day: u32,
    /// 0 = Sunday
    weekday: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
}

// The casts below are of values already reduced into small ranges.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn civil(secs: i64, nanos: u32) -> Civil {
    let days = secs.div_euclid(86_400);
    let in_day = secs.rem_euclid(86_400) as u32;
    // Days to (year, month, day) in the proleptic Gregorian calendar, with
    // years counted from March so the leap day comes last (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    const BEFORE_MONTH: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let year_day = BEFORE_MONTH[(month - 1) as usize] + day + u32::from(leap && month > 2);
    Civil {
        year,
        month,
        day,
        year_day,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7) as u32,
        hour: in_day / 3600,
        minute: in_day / 60 % 60,
        second: in_day % 60,
        nanos,
    }
}

/// One layout element of Go's reference time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    UpperPm,
    LowerPm,
    ZoneName,
    /// `Z07…` forms print `Z` for UTC; the `-07…` forms print the literal offset.
    Iso8601Zone,
    NumZone(&'static str),
    /// `.000` (`zero_pad`) or `.999`, with the digit count and separator.
    Fraction {
        digits: usize,
        zero_pad: bool,
        separator: char,
    },
}

/// Finds the first layout element: (text before it, element, length).
/// Mirrors the order of checks in Go's `nextStdChunk`.
fn next_std_chunk(layout: &str) -> Option<(usize, Std, usize)> {
    let b = layout.as_bytes();
    let starts = |i: usize, s: &str| b[i..].starts_with(s.as_bytes());
    let lower_at = |i: usize| b.get(i).is_some_and(u8::is_ascii_lowercase);
    for i in 0..b.len() {
        let found = match b[i] {
            b'J' if starts(i, "January") => Some((Std::LongMonth, 7)),
            b'J' if starts(i, "Jan") && !lower_at(i + 3) => Some((Std::Month, 3)),
            b'M' if starts(i, "Monday") => Some((Std::LongWeekDay, 6)),
            b'M' if starts(i, "Mon") && !lower_at(i + 3) => Some((Std::WeekDay, 3)),
            b'M' if starts(i, "MST") => Some((Std::ZoneName, 3)),
            b'0' => match b.get(i + 1) {
                Some(b'1') => Some((Std::ZeroMonth, 2)),
                Some(b'2') => Some((Std::ZeroDay, 2)),
                Some(b'3') => Some((Std::ZeroHour12, 2)),
                Some(b'4') => Some((Std::ZeroMinute, 2)),
                Some(b'5') => Some((Std::ZeroSecond, 2)),
                Some(b'6') => Some((Std::Year, 2)),
                _ if starts(i, "002") => Some((Std::ZeroYearDay, 3)),
                _ => None,
            },
            b'1' if starts(i, "15") => Some((Std::Hour, 2)),
            b'1' => Some((Std::NumMonth, 1)),
            b'2' if starts(i, "2006") => Some((Std::LongYear, 4)),
            b'2' => Some((Std::Day, 1)),
            // `_2006` is a literal `_` followed by the year.
            b'_' if starts(i, "_2006") => return Some((i + 1, Std::LongYear, 4)),
            b'_' if starts(i, "_2") => Some((Std::UnderDay, 2)),
            b'_' if starts(i, "__2") => Some((Std::UnderYearDay, 3)),
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if starts(i, "PM") => Some((Std::UpperPm, 2)),
            b'p' if starts(i, "pm") => Some((Std::LowerPm, 2)),
            b'-' => ["-070000", "-07:00:00", "-0700", "-07:00", "-07"]
                .into_iter()
                .find(|p| starts(i, p))
                .map(|p| (Std::NumZone(p), p.len())),
            b'Z' => ["Z070000", "Z07:00:00", "Z0700", "Z07:00", "Z07"]
                .into_iter()
                .find(|p| starts(i, p))
                .map(|p| (Std::Iso8601Zone, p.len())),
            sep @ (b'.' | b',') => fraction_at(b, i, char::from(sep)),
            _ => None,
        };
        if let Some((std, len)) = found {
            return Some((i, std, len));
        }
    }
    None
}

/// `.000`/`.999` (or with `,`): a run of one repeated digit not followed by another digit.
fn fraction_at(b: &[u8], i: usize, separator: char) -> Option<(Std, usize)> {
    let digit = *b.get(i + 1)?;
    if digit != b'0' && digit != b'9' {
        return None;
    }
    let run = b[i + 1..].iter().take_while(|&&c| c == digit).count();
    if b.get(i + 1 + run).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let std = Std::Fraction {
        digits: run,
        zero_pad: digit == b'0',
        separator,
    };
    Some((std, 1 + run))
}

/// Formats `t` (taken as UTC) with a Go layout.
pub(crate) fn format(t: SystemTime, layout: &str) -> String {
    let (secs, nanos) = unix_parts(t);
    format_civil(&civil(secs, nanos), layout)
}

fn format_civil(c: &Civil, layout: &str) -> String {
    let mut out = String::with_capacity(layout.len() + 10);
    let mut rest = layout;
    while let Some((prefix, std, len)) = next_std_chunk(rest) {
        out.push_str(&rest[..prefix]);
        append_std(&mut out, c, std);
        rest = &rest[prefix + len..];
    }
    out.push_str(rest);
    out
}

fn pad(out: &mut String, value: i64, width: usize) {
    use std::fmt::Write as _;
    if value < 0 {
        out.push('-');
    }
    let _ = write!(out, "{:0width$}", value.unsigned_abs());
}

fn append_std(out: &mut String, c: &Civil, std: Std) {
    let month_name = LONG_MONTHS[(c.month as usize + 11) % 12];
    let day_name = LONG_DAYS[c.weekday as usize % 7];
    let hour12 = match c.hour % 12 {
        0 => 12,
        h => h,
    };
    match std {
        Std::LongMonth => out.push_str(month_name),
        Std::Month => out.push_str(&month_name[..3]),
        Std::NumMonth => pad(out, c.month.into(), 0),
        Std::ZeroMonth => pad(out, c.month.into(), 2),
        Std::LongWeekDay => out.push_str(day_name),
        Std::WeekDay => out.push_str(&day_name[..3]),
        Std::Day => pad(out, c.day.into(), 0),
        Std::UnderDay => {
            if c.day < 10 {
                out.push(' ');
            }
            pad(out, c.day.into(), 0);
        }
        Std::ZeroDay => pad(out, c.day.into(), 2),
        Std::UnderYearDay => {
            if c.year_day < 100 {
                out.push(' ');
            }
            if c.year_day < 10 {
                out.push(' ');
            }
            pad(out, c.year_day.into(), 0);
        }
        Std::ZeroYearDay => pad(out, c.year_day.into(), 3),
        Std::Hour => pad(out, c.hour.into(), 2),
        Std::Hour12 => pad(out, hour12.into(), 0),
        Std::ZeroHour12 => pad(out, hour12.into(), 2),
        Std::Minute => pad(out, c.minute.into(), 0),
        Std::ZeroMinute => pad(out, c.minute.into(), 2),
        Std::Second => pad(out, c.second.into(), 0),
        Std::ZeroSecond => pad(out, c.second.into(), 2),
        Std::LongYear => pad(out, c.year, 4),
        Std::Year => pad(out, (c.year % 100).abs(), 2),
        Std::UpperPm => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
        Std::LowerPm => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
        Std::ZoneName => out.push_str("UTC"),
        Std::Iso8601Zone => out.push('Z'),
        // UTC's offset is zero: the pattern's digits become zeros and `-` a `+`.
        Std::NumZone(pattern) => {
            out.push('+');
            out.extend(
                pattern[1..]
                    .chars()
                    .map(|ch| if ch == ':' { ':' } else { '0' }),
            );
        }
        Std::Fraction {
            digits,
            zero_pad,
            separator,
        } => append_fraction(out, c.nanos, digits, zero_pad, separator),
    }
}

fn append_fraction(out: &mut String, nanos: u32, digits: usize, zero_pad: bool, separator: char) {
    if !zero_pad && nanos == 0 {
        return;
    }
    let all = format!("{nanos:09}");
    let mut shown = &all[..digits.min(9)];
    if !zero_pad {
        shown = shown.trim_end_matches('0');
        if shown.is_empty() {
            return;
        }
    }
    out.push(separator);
    out.push_str(shown);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic loudly
mod tests {
    use super::*;
    use std::time::Duration;

    /// Go's reference time, Mon Jan 2 15:04:05 UTC 2006.
    fn reference() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_136_214_245)
    }

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn reference_time_formats_as_itself_in_utc() {
        let t = reference();
        for (layout, want) in [
            (RFC3339, "2006-01-02T15:04:05Z"),
            ("Mon Jan _2 15:04:05 2006", "Mon Jan  2 15:04:05 2006"), // ANSIC
            (
                "Mon Jan _2 15:04:05 MST 2006",
                "Mon Jan  2 15:04:05 UTC 2006",
            ), // UnixDate
            ("02 Jan 06 15:04 -0700", "02 Jan 06 15:04 +0000"),       // RFC822Z
            (
                "Monday, 02-Jan-06 15:04:05 MST",
                "Monday, 02-Jan-06 15:04:05 UTC",
            ), // RFC850
            (
                "Mon, 02 Jan 2006 15:04:05 -0700",
                "Mon, 02 Jan 2006 15:04:05 +0000",
            ), // RFC1123Z
            ("3:04PM", "3:04PM"),                                     // Kitchen
            ("2006-01-02", "2006-01-02"),
            ("January 2, 2006", "January 2, 2006"),
            ("1/2/06 3:4:5 pm", "1/2/06 3:4:5 pm"),
            ("20060102150405", "20060102150405"),
            (
                "-07:00 -07 -070000 -07:00:00",
                "+00:00 +00 +000000 +00:00:00",
            ),
            ("Z07:00 Z0700 Z07 Z070000 Z07:00:00", "Z Z Z Z Z"),
            ("002 __2", "002   2"),
            ("_2006", "_2006"),
            ("Jant Mond", "Jant Mond"), // "Jan"/"Mon" followed by lowercase are literal
            ("MST", "UTC"),
            (".000 .999 ,000", ".000  ,000"),
            ("hello", "hello"),
            ("", ""),
            ("ÄJan→Mon", "ÄJan→Mon"),
        ] {
            assert_eq!(format(t, layout), want, "layout {layout:?}");
        }
    }

    #[test]
    fn fractional_seconds() {
        let t = at(1_136_214_245, 120_000_000);
        assert_eq!(format(t, "05.000"), "05.120");
        assert_eq!(format(t, "05.999"), "05.12");
        assert_eq!(format(t, "05,9"), "05,1");
        assert_eq!(format(t, "05.000000000000"), "05.120000000");
        assert_eq!(
            format(t, RFC3339),
            "2006-01-02T15:04:05Z",
            "RFC3339 has no fraction"
        );
        // A digit run followed by another digit is not a fraction.
        assert_eq!(format(t, ".0001"), ".0001");
    }

    #[test]
    fn other_dates() {
        // 2024-02-29 (leap day, a Thursday) 00:07:09 UTC
        let t = at(1_709_165_229, 0);
        assert_eq!(
            format(t, "Monday 2006-01-02 03:04:05 PM yday 002"),
            "Thursday 2024-02-29 12:07:09 AM yday 060"
        );
        // 1970-01-01 was a Thursday; 23:59:59 is PM.
        assert_eq!(
            format(at(86_399, 0), "Mon Jan 2 15 3 pm 2006 __2"),
            "Thu Jan 1 23 11 pm 1970   1"
        );
        // 2000-12-31, day 366 of a leap year.
        assert_eq!(
            format(at(978_220_800, 0), "2006-01-02 002"),
            "2000-12-31 366"
        );
        // Before the epoch: 1969-12-31T23:59:59.5Z
        let before = UNIX_EPOCH - Duration::from_millis(500);
        assert_eq!(
            format(before, "2006-01-02T15:04:05.000"),
            "1969-12-31T23:59:59.500"
        );
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        for secs in [u64::MAX / 2, u64::MAX / 4, 1 << 40] {
            if let Some(far) = UNIX_EPOCH.checked_add(Duration::from_secs(secs)) {
                let _ = format(far, RFC3339);
            }
            if let Some(early) = UNIX_EPOCH.checked_sub(Duration::new(secs, 1)) {
                let _ = format(early, RFC3339);
            }
        }
    }
}
