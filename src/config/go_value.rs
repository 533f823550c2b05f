//! Go's value syntax as Packer reads it, for settings decoded now and for
//! steps that read a rendered value at run time: booleans, unsigned
//! integers, durations (`1m30s`) and disk sizes (`10G`). Pure functions,
//! no template or diagnostic machinery (that is `decode`'s job).

use std::time::Duration;

/// Go's strconv.ParseBool.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// An unsigned integer as Go's ParseUint with base 0 reads it (0x, 0o, 0b, _).
pub fn parse_go_uint(s: &str) -> Option<u64> {
    let s = s.trim().strip_prefix('+').unwrap_or(s.trim());
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if let Some(b) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        (b, 2)
    } else if let Some(o) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
        (o, 8)
    } else {
        (s, 10)
    };
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(&digits, radix).ok()
}

/// Go's time.ParseDuration: "300ms", "1.5h", "2h45m", "1m30s". Negative
/// durations are refused (no Packer setting means anything by them).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    match parse_signed_go_duration(s)? {
        (false, d) => Ok(d),
        (true, _) => Err("it is negative".into()),
    }
}

/// Go's time.ParseDuration with its sign: `(negative, magnitude)`. The
/// one parser ([`crate::host::go_duration`]) behind settings and HCL's
/// `timeadd`, which takes "-10s".
pub use crate::host::go_duration::parse_signed as parse_signed_go_duration;

/// Sizes in MiB: "10240" (MiB), "10G", "512M", "1T", "1048576K", "10GiB", "10GB".
pub fn parse_size_mib(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let number: u64 = s[..split].parse().ok()?;
    let unit = s[split..].trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    match unit {
        "" | "m" => Some(number),
        "k" => Some(number.div_ceil(1024)),
        "g" => number.checked_mul(1024),
        "t" => number.checked_mul(1024 * 1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("2h45m10s"), Ok(Duration::from_secs(9910)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert!(parse_go_duration("10").is_err_and(|e| e.contains("no unit")));
        assert!(parse_go_duration("10x").is_err_and(|e| e.contains("unknown unit")));
        assert!(parse_go_duration("-1s").is_err());
        assert_eq!(
            parse_signed_go_duration("-1m30s"),
            Ok((true, Duration::from_secs(90)))
        );
        assert_eq!(
            parse_signed_go_duration("+2s"),
            Ok((false, Duration::from_secs(2)))
        );
        assert!(parse_go_duration("s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size_mib("10240"), Some(10240));
        assert_eq!(parse_size_mib("10G"), Some(10240));
        assert_eq!(parse_size_mib("10GB"), Some(10240));
        assert_eq!(parse_size_mib("10GiB"), Some(10240));
        assert_eq!(parse_size_mib("512M"), Some(512));
        assert_eq!(parse_size_mib("1T"), Some(1_048_576));
        assert_eq!(parse_size_mib("2048K"), Some(2));
        assert_eq!(parse_size_mib("ten"), None);
        assert_eq!(parse_size_mib("10Q"), None);
    }

    #[test]
    fn go_numbers_and_bools() {
        assert_eq!(parse_go_uint("0x10"), Some(16));
        assert_eq!(parse_go_uint("1_000"), Some(1000));
        assert_eq!(parse_go_uint("-1"), None);
        assert_eq!(parse_go_bool("T"), Some(true));
        assert_eq!(parse_go_bool("yes"), None);
    }
}
