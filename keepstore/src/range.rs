//! The `Range` request header (RFC 9110 §14), single ranges only.

use std::ops::Range;

/// What a `Range` header asks of a block of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// No usable Range header (absent, not `bytes=`, malformed, or several ranges): the
    /// whole block, 200.
    Whole,
    /// One satisfiable range, 206.
    Part(Range<u64>),
    /// A single range that lies outside the block: 416.
    Unsatisfiable,
}

/// Interprets a `Range` header value for a block of `len` bytes.
pub(crate) fn parse(header: Option<&str>, len: u64) -> Wanted {
    let Some(h) = header else {
        return Wanted::Whole;
    };
    let h = h.trim();
    let Some(spec) = h
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("bytes="))
        .map(|_| &h[6..])
    else {
        return Wanted::Whole;
    };
    let spec = spec.trim();
    if spec.contains(',') {
        // several ranges: we serve the whole block (allowed by RFC 9110)
        return Wanted::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Wanted::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            // a number too large for u64 is still a valid number: saturate
            Some(s.parse().unwrap_or(u64::MAX))
        }
    };
    if a.is_empty() {
        // suffix: the last n bytes
        let Some(n) = num(b) else {
            return Wanted::Whole;
        };
        if n == 0 || len == 0 {
            return Wanted::Unsatisfiable;
        }
        return Wanted::Part(len.saturating_sub(n)..len);
    }
    let Some(start) = num(a) else {
        return Wanted::Whole;
    };
    let end = if b.is_empty() {
        u64::MAX
    } else {
        match num(b) {
            Some(e) if e >= start => e,
            _ => return Wanted::Whole,
        }
    };
    if start >= len {
        return Wanted::Unsatisfiable;
    }
    Wanted::Part(start..end.saturating_add(1).min(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse(None, 10), Wanted::Whole);
        assert_eq!(parse(Some("bytes=0-4"), 10), Wanted::Part(0..5));
        assert_eq!(parse(Some("bytes=5-"), 10), Wanted::Part(5..10));
        assert_eq!(parse(Some("bytes=-3"), 10), Wanted::Part(7..10));
        assert_eq!(parse(Some("bytes=-30"), 10), Wanted::Part(0..10));
        assert_eq!(
            parse(Some("bytes=2-99999999999999999999999"), 10),
            Wanted::Part(2..10)
        );
        assert_eq!(parse(Some("Bytes=9-9"), 10), Wanted::Part(9..10));
        assert_eq!(parse(Some("bytes=10-"), 10), Wanted::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 10), Wanted::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-0"), 0), Wanted::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-1,3-4"), 10), Wanted::Whole);
        assert_eq!(parse(Some("bytes=4-2"), 10), Wanted::Whole);
        assert_eq!(parse(Some("bytes=x-2"), 10), Wanted::Whole);
        assert_eq!(parse(Some("items=0-2"), 10), Wanted::Whole);
        assert_eq!(parse(Some("bytes=-"), 10), Wanted::Whole);
    }
}
