//! Durations as users write them, in every flag and config key: ONE grammar.
//!
//! | written | means |
//! |---|---|
//! | `90s`, `90m`, `12h`, `7d`, `2w` | a number and a unit: seconds, minutes, hours, days (24 h), weeks (7 d) |
//! | `1h30m`, `1w 2d`, `2d12h` | several, largest unit first, each unit once |
//! | `90 minutes`, `2 hours, 30 mins`, `1.5h`, `01:30:00` | the long spellings, a fraction, `HH:MM:SS` |
//!
//! This is jiff's "friendly" duration format (parsed by `jiff::fmt::friendly`), with
//! Keep's rules on top:
//! - **a bare number is refused** (`30` → "add a unit, e.g. 30s or 30m"): `30` meant
//!   seconds to one command and minutes to a reader;
//! - no years or months (their length depends on the calendar: write `365d`, `4w`);
//! - not negative (`-5m`, `5m ago`), whole seconds only (`1.5s`, `500ms` are refused;
//!   `1.5m` is 90 s);
//! - at most [`MAX`] (100 years: `5214w2d`), and at most [`TEXT_MAX`] characters.
//!
//! [`format`] writes the compact form (`1h30m`, `2w`, `0s`), which [`parse`] reads back
//! to the same value: `parse(&format(d)) == Ok(d)` for every whole-second `d` ≤ [`MAX`].

use std::time::Duration;

use jiff::fmt::friendly::SpanParser;
use jiff::SpanRelativeTo;

use crate::Error;

/// The longest duration Keep accepts: 100 years of 365 days (36,500 days). Longer is
/// "never" in disguise; the callers (token and link expiry, signature TTL, trash
/// delays) add it to the current time, and 100 years from now still fits a
/// [`crate::time::Timestamp`].
pub const MAX: Duration = Duration::from_secs(36_500 * 86_400);

/// The longest text [`parse`] looks at.
pub const TEXT_MAX: usize = 64;

static PARSER: SpanParser = SpanParser::new();

/// Parses a duration (see the module docs for the grammar).
pub fn parse(s: &str) -> Result<Duration, Error> {
    let err = |why: String| Error::Duration {
        got: if s.len() > TEXT_MAX {
            format!("{}...", s.chars().take(TEXT_MAX).collect::<String>())
        } else {
            s.to_string()
        },
        why,
    };
    if s.len() > TEXT_MAX {
        return Err(err(format!("longer than {TEXT_MAX} characters")));
    }
    let t = s.trim();
    if t.is_empty() {
        return Err(err(
            "empty: write a number and a unit, e.g. 30s or 30m".into()
        ));
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            "a number alone has no unit: add one, e.g. 30s or 30m (units: s, m, h, d, w)".into(),
        ));
    }
    let span = PARSER.parse_span(t).map_err(|e| {
        err(format!(
            "expected a number and a unit like 90s, 90m, 12h, 7d, 2w or 1h30m ({e})"
        ))
    })?;
    if span.is_negative() {
        return Err(err("a duration may not be negative".into()));
    }
    if span.get_years() != 0 || span.get_months() != 0 {
        return Err(err(
            "years and months have no fixed length: write days or weeks (e.g. 365d, 4w)".into(),
        ));
    }
    let d = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|e| err(format!("too long ({e})")))?;
    let d = Duration::try_from(d).map_err(|_| err("a duration may not be negative".into()))?;
    if d > MAX {
        return Err(err(format!(
            "longer than the limit of {} (100 years)",
            format(MAX)
        )));
    }
    if d.subsec_nanos() != 0 {
        return Err(err("Keep durations are whole seconds".into()));
    }
    Ok(d)
}

/// The compact form: each unit from weeks to seconds that is not zero (`1h30m`, `2w`,
/// `1w2d3h4m5s`), `0s` for zero. Sub-seconds are dropped.
pub fn format(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, n) in [
        ("w", 7 * 86_400),
        ("d", 86_400),
        ("h", 3_600),
        ("m", 60),
        ("s", 1),
    ] {
        if s >= n {
            out.push_str(&(s / n).to_string());
            out.push_str(unit);
            s %= n;
        }
    }
    out
}

/// [`parse`], under the name the crate root has always exported.
pub fn parse_duration(s: &str) -> Result<Duration, Error> {
    parse(s)
}

/// [`format`], under the name the crate root has always exported.
pub fn format_duration(d: Duration) -> String {
    format(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(s: &str) -> u64 {
        parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}")).as_secs()
    }

    #[test]
    fn the_grammar() {
        assert_eq!(secs("90s"), 90);
        assert_eq!(secs("90m"), 5_400);
        assert_eq!(secs("12h"), 43_200);
        assert_eq!(secs("7d"), 604_800);
        assert_eq!(secs("2w"), 1_209_600);
        assert_eq!(secs("1h30m"), 5_400);
        assert_eq!(secs("1w2d"), 9 * 86_400);
        assert_eq!(secs("1h 30m"), 5_400);
        assert_eq!(secs("2 hours, 30 minutes"), 9_000);
        assert_eq!(secs("1.5m"), 90);
        assert_eq!(secs("01:30:00"), 5_400);
        assert_eq!(secs(" 14d "), 14 * 86_400);
        assert_eq!(secs("0s"), 0);
        assert_eq!(secs("36500d"), MAX.as_secs());
    }

    #[test]
    fn refusals_say_why() {
        for (bad, why) in [
            ("", "empty"),
            ("30", "add one, e.g. 30s or 30m"),
            ("m", "expected a number and a unit"),
            ("5x", "expected a number and a unit"),
            ("30m1h", "expected a number and a unit"),
            ("-5m", "negative"),
            ("5m ago", "negative"),
            ("1y", "years and months"),
            ("2mo", "years and months"),
            ("1.5s", "whole seconds"),
            ("500ms", "whole seconds"),
            ("36501d", "100 years"),
            ("99999999999999999999w", "expected a number"),
            ("9999999999w", ""),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid duration"), "{bad:?}: {e}");
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let e = parse(&"1".repeat(10_000)).unwrap_err().to_string();
        assert!(e.contains("longer than 64") && e.len() < 300, "{e}");
    }

    #[test]
    fn format_is_compact() {
        assert_eq!(format(Duration::from_secs(5_400)), "1h30m");
        assert_eq!(format(Duration::from_secs(604_800)), "1w");
        assert_eq!(format(Duration::from_secs(0)), "0s");
        assert_eq!(format(Duration::from_secs(694_861)), "1w1d1h1m1s");
        assert_eq!(format(MAX), "5214w2d");
    }

    proptest! {
        #[test]
        fn round_trip(s in 0u64..=MAX.as_secs()) {
            let d = Duration::from_secs(s);
            prop_assert_eq!(parse(&format(d)).ok(), Some(d));
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse(&s);
        }
    }
}
