//! RFC 3339 timestamps as Arvados writes them: `2026-11-22T02:13:00.123456789Z`
//! (fixed width, so they sort as strings).

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = (if z >= 0 { z } else { z - 146_096 }) / 146_097;
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i64 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = (if y >= 0 { y } else { y - 399 }) / 400;
    let yoe = (y - era * 400) as u64;
    let mp = (if m > 2 { m - 3 } else { m + 9 }) as u64;
    let doy = (153 * mp + 2) / 5 + d as u64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i64 - 719_468
}

/// Formats nanoseconds since the epoch.
pub fn format_ns(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

pub fn now() -> String {
    format_ns(now_ns())
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` (a space may stand for
/// `T`). Returns nanoseconds since the epoch.
pub fn parse(s: &str) -> Result<i64, String> {
    let bad = || {
        let mut shown = s.to_string();
        if shown.len() > 64 {
            let mut cut = 64;
            while !shown.is_char_boundary(cut) {
                cut -= 1;
            }
            shown.truncate(cut);
            shown.push_str("...");
        }
        format!("{shown:?} is not an RFC 3339 timestamp like 2026-11-22T10:00:00Z or a date like 2026-11-22")
    };
    // every valid form is short ASCII; anything else is refused before it is sliced
    if s.len() > 64 || !s.is_ascii() {
        return Err(bad());
    }
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = s.get(r).ok_or_else(bad)?;
        if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| bad())
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    // nanoseconds since the epoch fit an i64 from 1677 to 2262
    let range = || format!("{s:?} is outside the years 1678 to 2261");
    let to_ns = |secs: i64, nanos: i64| {
        secs.checked_mul(1_000_000_000)
            .and_then(|n| n.checked_add(nanos))
            .ok_or_else(range)
    };
    if b.len() == 10 {
        return to_ns(days * 86_400, 0);
    }
    if b.len() < 19
        || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        if frac.is_empty() {
            return Err(bad());
        }
        let mut f = frac.to_string();
        f.truncate(9);
        while f.len() < 9 {
            f.push('0');
        }
        nanos = f.parse().map_err(|_| bad())?;
    }
    let offset_secs: i64 = match &s[i..] {
        "Z" | "z" | "" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) && &tz[3..4] == ":" => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let v = oh * 3600 + om * 60;
            if tz.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return Err(bad()),
    };
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    to_ns(secs, nanos)
}

/// Normalizes a timestamp given by a client into our fixed-width form.
pub fn normalize(s: &str) -> Result<String, String> {
    parse(s).map(format_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(format_ns(0), "1970-01-01T00:00:00.000000000Z");
        let s = "2026-11-22T02:13:05.123456789Z";
        assert_eq!(format_ns(parse(s).unwrap()), s);
        assert_eq!(
            normalize("2026-11-22").unwrap(),
            "2026-11-22T00:00:00.000000000Z"
        );
        assert_eq!(
            normalize("2026-11-22T03:00:00+01:00").unwrap(),
            "2026-11-22T02:00:00.000000000Z"
        );
        assert_eq!(
            normalize("2000-02-29T23:59:59.5Z").unwrap(),
            "2000-02-29T23:59:59.500000000Z"
        );
        assert!(parse("yesterday").is_err());
        assert!(parse("2026-13-01").is_err());
        assert!(parse("2026-11-22T02:13").is_err());
        // issue 11 item 3: a multibyte time zone used to panic (and poison the write lock)
        assert!(parse("2030-01-01T00:00:00+€00").is_err());
        assert!(parse("2030-01-01T00:00:00€").is_err());
        assert!(parse("2030-01-01T00:00:00.€").is_err());
        // out of i64 nanoseconds: an error, not an overflow
        assert!(parse("9999-12-31").is_err());
        assert!(parse("9999-12-31T00:00:00Z").is_err());
        assert!(parse(&"2".repeat(100_000)).is_err());
        let n = now_ns();
        assert_eq!(parse(&format_ns(n)).unwrap(), n);
    }
}
