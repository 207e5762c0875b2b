//! Points in time, as Keep writes and reads them (built on `jiff` and `httpdate`).
//!
//! **Wire form** (what the API stores and shows, fixed width so that it sorts as a
//! string): `2026-11-22T02:13:05.123456789Z` — UTC, always nine fraction digits.
//!
//! **Accepted** by [`Timestamp::parse`] (any input: it never panics):
//! - an RFC 3339 date-time with an offset: `2026-11-22T03:13:05+01:00`,
//!   `2026-11-22T02:13:05Z`, `2026-11-22t02:13:05.5z`, a space for `T`
//!   (jiff's Temporal parser, which also takes ISO 8601's other spellings of the same);
//! - for compatibility with what the API has always taken in filters and fields: a date
//!   alone (`2026-11-22`, midnight UTC) and a date-time without an offset (read as UTC);
//! - at most [`TEXT_MAX`] bytes, between [`Timestamp::MIN`] and [`Timestamp::MAX`]
//!   (the instants that fit an `i64` of nanoseconds: 1677-09-21 to 2262-04-11).
//!
//! Refusals name the value and the expected form, e.g.
//! `invalid timestamp "2030-01-01T00:00:00+€00": expected RFC 3339, like 2026-11-22T10:00:00Z …`.
//!
//! **HTTP dates** (`Last-Modified`, `If-Modified-Since`): [`http_date`] writes the
//! RFC 9110 IMF-fixdate (`Sun, 22 Nov 2026 06:24:40 GMT`), [`parse_http_date`] reads
//! it and the two obsolete forms RFC 9110 requires recipients to accept.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::fmt::temporal::DateTimeParser;
use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// The longest text [`Timestamp::parse`] looks at (the longest RFC 3339 form with
/// nanoseconds and an offset is 35 bytes; room is left for ISO 8601's annotations).
pub const TEXT_MAX: usize = 64;

/// What every refusal says is expected.
const EXPECTED: &str = "expected RFC 3339, like 2026-11-22T10:00:00Z or 2026-11-22T10:00:00.5+01:00 (or a date alone, 2026-11-22)";

static PARSER: DateTimeParser = DateTimeParser::new();

/// An instant, to the nanosecond, in Keep's range (see the module docs).
///
/// `Display` writes the wire form; `FromStr`/[`Timestamp::parse`] accept the forms the
/// module docs list. Serde uses the wire form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(jiff::Timestamp);

impl Timestamp {
    /// 1677-09-21T00:12:43.145224192Z, `i64::MIN` nanoseconds.
    pub const MIN: Timestamp = Timestamp::from_unix_nanos(i64::MIN);
    /// 2262-04-11T23:47:16.854775807Z, `i64::MAX` nanoseconds.
    pub const MAX: Timestamp = Timestamp::from_unix_nanos(i64::MAX);
    /// 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Timestamp = Timestamp(jiff::Timestamp::UNIX_EPOCH);

    /// The current time (clamped to Keep's range).
    pub fn now() -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    /// Every `i64` of nanoseconds since the epoch is a timestamp.
    pub const fn from_unix_nanos(ns: i64) -> Timestamp {
        let secs = ns.div_euclid(1_000_000_000);
        let nanos = ns.rem_euclid(1_000_000_000) as i32;
        // jiff's range (years -9999..=9999) holds every i64 of nanoseconds, so
        // `constant` (which panics out of range) cannot panic here
        Timestamp(jiff::Timestamp::constant(secs, nanos))
    }

    /// Nanoseconds since the epoch (the API's stored form).
    pub fn as_unix_nanos(self) -> i64 {
        // in range by construction
        i64::try_from(self.0.as_nanosecond()).unwrap_or(if self.0 < jiff::Timestamp::UNIX_EPOCH {
            i64::MIN
        } else {
            i64::MAX
        })
    }

    /// Whole seconds since the epoch (rounded down).
    pub fn as_unix_seconds(self) -> i64 {
        self.as_unix_nanos().div_euclid(1_000_000_000)
    }

    /// `secs` since the epoch, or `None` outside Keep's range.
    pub fn from_unix_seconds(secs: i64) -> Option<Timestamp> {
        secs.checked_mul(1_000_000_000)
            .map(Timestamp::from_unix_nanos)
    }

    /// A `SystemTime`, clamped to Keep's range.
    pub fn from_system_time(t: SystemTime) -> Timestamp {
        let ns = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_nanos())
                .map(|n| -n)
                .unwrap_or(i64::MIN),
        };
        Timestamp::from_unix_nanos(ns)
    }

    pub fn to_system_time(self) -> SystemTime {
        let ns = self.as_unix_nanos();
        let d = Duration::from_nanos(ns.unsigned_abs());
        if ns >= 0 {
            UNIX_EPOCH + d
        } else {
            UNIX_EPOCH - d
        }
    }

    /// This instant plus `d`, or `None` past [`Timestamp::MAX`].
    pub fn checked_add(self, d: Duration) -> Option<Timestamp> {
        let ns = i64::try_from(d.as_nanos()).ok()?;
        self.as_unix_nanos()
            .checked_add(ns)
            .map(Timestamp::from_unix_nanos)
    }

    /// This instant minus `d`, or `None` before [`Timestamp::MIN`].
    pub fn checked_sub(self, d: Duration) -> Option<Timestamp> {
        let ns = i64::try_from(d.as_nanos()).ok()?;
        self.as_unix_nanos()
            .checked_sub(ns)
            .map(Timestamp::from_unix_nanos)
    }

    /// Parses any text (see the module docs for the forms). Never panics.
    pub fn parse(s: &str) -> Result<Timestamp, Error> {
        let err = |why: String| Error::Time {
            got: shorten(s),
            why,
        };
        if s.len() > TEXT_MAX {
            return Err(err(format!("longer than {TEXT_MAX} bytes; {EXPECTED}")));
        }
        let t = match PARSER.parse_timestamp(s) {
            Ok(t) => t,
            Err(first) if !has_offset(s) => PARSER
                .parse_datetime(s)
                .and_then(|dt| dt.to_zoned_datetime(TimeZone::UTC))
                .map(|z| z.timestamp())
                .map_err(|_| err(format!("{EXPECTED} ({first})")))?,
            Err(e) => return Err(err(format!("{EXPECTED} ({e})"))),
        };
        let ns = i64::try_from(t.as_nanosecond()).map_err(|_| {
            err(format!(
                "outside the range Keep stores ({} to {})",
                Timestamp::MIN,
                Timestamp::MAX
            ))
        })?;
        Ok(Timestamp::from_unix_nanos(ns))
    }

    /// `2026-11-22T06:24:40Z`: whole seconds, for WebDAV's `creationdate`.
    pub fn to_rfc3339_seconds(self) -> String {
        format!("{:.0}", self.0)
    }

    /// The RFC 9110 HTTP date of this instant (sub-seconds dropped).
    pub fn to_http_date(self) -> String {
        http_date(self.to_system_time())
    }
}

/// Whether the text ends with something that looks like an offset (`Z`, `+hh…`,
/// `-hh…` after the time): then the civil fallback would drop it.
fn has_offset(s: &str) -> bool {
    let time = match s.find(['T', 't', ' ']) {
        Some(i) => &s[i..],
        None => return false,
    };
    time.contains(['Z', 'z', '+', '-', '['])
}

/// A value as an error message quotes it: at most 80 bytes.
fn shorten(s: &str) -> String {
    if s.len() <= 80 {
        return s.to_string();
    }
    let mut cut = 77;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &s[..cut])
}

impl fmt::Display for Timestamp {
    /// The wire form: `2026-11-22T02:13:05.123456789Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.9}", self.0)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl FromStr for Timestamp {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Timestamp::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        Timestamp::from_system_time(t)
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> Self {
        t.to_system_time()
    }
}

/// Whole seconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Nanoseconds since the Unix epoch, now (clamped to `i64`).
pub fn unix_now_nanos() -> i64 {
    Timestamp::now().as_unix_nanos()
}

/// The wire form of `ns` nanoseconds since the epoch.
pub fn format_nanos(ns: i64) -> String {
    Timestamp::from_unix_nanos(ns).to_string()
}

/// Parses a timestamp into nanoseconds since the epoch (see [`Timestamp::parse`]).
pub fn parse_nanos(s: &str) -> Result<i64, Error> {
    Timestamp::parse(s).map(Timestamp::as_unix_nanos)
}

/// `Sun, 22 Nov 2026 06:24:40 GMT` (RFC 9110 IMF-fixdate; sub-seconds dropped).
pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// Parses an HTTP date (IMF-fixdate, RFC 850 or asctime form, as RFC 9110 asks).
pub fn parse_http_date(s: &str) -> Result<SystemTime, Error> {
    httpdate::parse_http_date(s).map_err(|e| Error::Time {
        got: shorten(s),
        why: format!("expected an HTTP date like Sun, 22 Nov 2026 06:24:40 GMT ({e})"),
    })
}

/// `t` without its sub-second part (HTTP dates have none: compare after this).
pub fn trunc_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        Timestamp::parse(s)
            .map(|t| t.to_string())
            .unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn wire_form_is_the_apis() {
        // the API's format: fixed width, nine fraction digits, Z
        assert_eq!(format_nanos(0), "1970-01-01T00:00:00.000000000Z");
        let s = "2026-11-22T02:13:05.123456789Z";
        assert_eq!(p(s), s);
        assert_eq!(p("2026-11-22"), "2026-11-22T00:00:00.000000000Z");
        assert_eq!(
            p("2026-11-22T03:00:00+01:00"),
            "2026-11-22T02:00:00.000000000Z"
        );
        assert_eq!(
            p("2000-02-29T23:59:59.5Z"),
            "2000-02-29T23:59:59.500000000Z"
        );
        assert_eq!(p("2026-11-22 02:13:05z"), "2026-11-22T02:13:05.000000000Z");
        assert_eq!(p("2026-11-22t02:13:05Z"), "2026-11-22T02:13:05.000000000Z");
        // ISO 8601 lets seconds go (jiff's parser takes it)
        assert_eq!(p("2026-11-22T02:13Z"), "2026-11-22T02:13:00.000000000Z");
        // no offset: UTC, as the API always read it
        assert_eq!(p("2026-11-22T02:13:05"), "2026-11-22T02:13:05.000000000Z");
        assert_eq!(
            p("1969-12-31T23:59:59.999999999Z"),
            "1969-12-31T23:59:59.999999999Z"
        );
        let n = unix_now_nanos();
        assert_eq!(parse_nanos(&format_nanos(n)).unwrap(), n);
        // serde: the wire form both ways
        let t = Timestamp::parse(s).unwrap();
        let j = serde_json::to_string(&t).unwrap();
        assert_eq!(j, format!("\"{s}\""));
        assert_eq!(serde_json::from_str::<Timestamp>(&j).unwrap(), t);
    }

    #[test]
    fn extremes() {
        assert_eq!(Timestamp::MIN.to_string(), "1677-09-21T00:12:43.145224192Z");
        assert_eq!(Timestamp::MAX.to_string(), "2262-04-11T23:47:16.854775807Z");
        assert_eq!(
            Timestamp::parse(&Timestamp::MAX.to_string()).unwrap(),
            Timestamp::MAX
        );
        assert_eq!(
            Timestamp::parse(&Timestamp::MIN.to_string()).unwrap(),
            Timestamp::MIN
        );
        for far in ["9999-12-31T23:59:59Z", "2262-04-12T00:00:00Z", "1000-01-01"] {
            let e = Timestamp::parse(far).unwrap_err().to_string();
            assert!(e.contains("range"), "{far}: {e}");
        }
        assert_eq!(Timestamp::MAX.checked_add(Duration::from_secs(1)), None);
        assert_eq!(Timestamp::MIN.checked_sub(Duration::from_secs(1)), None);
        assert_eq!(
            Timestamp::UNIX_EPOCH
                .checked_add(Duration::from_secs(90))
                .map(|t| t.as_unix_seconds()),
            Some(90)
        );
    }

    /// Regression (issue 11 item 3): the API's old parser sliced the text at byte
    /// offsets and panicked on a multibyte timezone.
    #[test]
    fn refuses_anything_else_without_panicking() {
        let cases = [
            "2030-01-01T00:00:00+€00",
            "2030-01-01T00:00:00€",
            "€030-01-01",
            "2030-01-01T00:00:00+01:0€",
            "",
            "yesterday",
            "2026-13-01",
            "2026-11-31",
            "2026-11-22T24:00:00Z",
            "2026-11-22T02:13:05+26:00",
            "2026-11-22T02:13:05.Z",
            "2026-11-22T02:13:05.1234567891Z",
            "-2026-11-22",
            "2026-11-22T02:13:05ZZ",
            "\u{0}",
        ];
        for s in cases {
            let e = Timestamp::parse(s).unwrap_err().to_string();
            assert!(e.starts_with("invalid timestamp"), "{s:?}: {e}");
            assert!(e.contains("RFC 3339") || e.contains("range"), "{s:?}: {e}");
        }
        let e = Timestamp::parse("2030-01-01T00:00:00+€00")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("2030-01-01T00:00:00+€00") && e.contains("2026-11-22T10:00:00Z"),
            "{e}"
        );
        let long = "2".repeat(100_000);
        let e = Timestamp::parse(&long).unwrap_err().to_string();
        assert!(e.len() < 400 && e.contains("longer than 64 bytes"), "{e}");
    }

    #[test]
    fn every_byte_string_is_safe() {
        // a cheap sweep over short inputs built from the characters that matter
        let alphabet = ["2", "0", "-", ":", "T", "Z", "+", ".", "€", " ", "1", "9"];
        let mut s = String::new();
        for i in 0..20_000u32 {
            s.clear();
            s.push_str("2026-11-22T0");
            let mut k = i;
            for _ in 0..6 {
                s.push_str(alphabet[(k % alphabet.len() as u32) as usize]);
                k /= alphabet.len() as u32;
            }
            let _ = Timestamp::parse(&s);
        }
    }

    #[test]
    fn http_dates() {
        let t = Timestamp::parse("2026-11-22T06:24:40.123Z").unwrap();
        assert_eq!(t.to_http_date(), "Sun, 22 Nov 2026 06:24:40 GMT");
        assert_eq!(t.to_rfc3339_seconds(), "2026-11-22T06:24:40Z");
        let back = parse_http_date("Sun, 22 Nov 2026 06:24:40 GMT").unwrap();
        assert_eq!(back, trunc_seconds(t.to_system_time()));
        // the obsolete forms RFC 9110 asks recipients to read
        assert_eq!(
            parse_http_date("Sunday, 22-Nov-26 06:24:40 GMT").unwrap(),
            back
        );
        assert_eq!(parse_http_date("Sun Nov 22 06:24:40 2026").unwrap(), back);
        let e = parse_http_date("22 Nov 2026").unwrap_err().to_string();
        assert!(e.contains("HTTP date"), "{e}");
    }

    #[test]
    fn system_time_round_trip() {
        let now = SystemTime::now();
        assert_eq!(Timestamp::from(now).to_system_time(), now);
        let before = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(Timestamp::from(before).as_unix_seconds(), -10);
        assert!(unix_now() > 1_700_000_000);
    }
}
