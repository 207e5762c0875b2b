#![no_main]
//! Locators, PDHs, UUIDs, tokens and durations: parse never panics, and whatever parses
//! prints back to text that parses to the same value.

use keep_format::{parse_duration, Locator, Pdh, Token, Uuid};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(l) = s.parse::<Locator>() {
        assert_eq!(l.to_string().parse::<Locator>().ok(), Some(l));
    }
    if let Ok(p) = Pdh::parse_loose(s) {
        assert_eq!(p.to_string().parse::<Pdh>().ok(), Some(p));
        assert_eq!(Pdh::from_dns_label(&p.to_dns_label()).ok(), Some(p));
    }
    if let Ok(u) = s.parse::<Uuid>() {
        assert_eq!(u.to_string().parse::<Uuid>().ok(), Some(u));
    }
    if let Ok(t) = s.parse::<Token>() {
        assert_eq!(t.expose().parse::<Token>().ok(), Some(t));
    }
    let _ = parse_duration(s);
});
