//! Durations as users write them: `90s`, `90m`, `12h`, `7d`, `2w`, or several (`1h30m`).

use std::time::Duration;

use crate::Error;

/// Parses a duration like `90m`, `12h`, `7d` or `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, Error> {
    let err = |why: &'static str| Error::Duration {
        got: s.to_string(),
        why,
    };
    let s2 = s.trim();
    if s2.is_empty() {
        return Err(err("empty"));
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s2.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 7 * 86400,
            _ => return Err(err("units are s, m, h, d, w (e.g. 90m, 12h, 7d)")),
        };
        let n: u64 = num
            .parse()
            .map_err(|_| err("each unit needs a number before it"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or(err("too long"))?;
        num.clear();
    }
    if !num.is_empty() {
        return Err(err("a number needs a unit: s, m, h, d or w (e.g. 90m)"));
    }
    Ok(Duration::from_secs(total))
}

/// Writes a duration in the largest exact unit (`7d`, `90m`, `45s`).
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    for (unit, n) in [("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)] {
        if s > 0 && s % n == 0 {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("12h").unwrap(), Duration::from_secs(43200));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604800));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        for bad in ["", "5", "m", "5x", "-5m", "99999999999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(604800)), "1w");
        assert_eq!(format_duration(Duration::from_secs(5400)), "90m");
    }
}
