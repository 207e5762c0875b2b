#![no_main]
//! Any text either fails to parse with an error, or parses into a manifest whose
//! normalized text parses again to the same text and the same PDH.

use keep_format::{FileIndex, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = Manifest::parse(text) else { return };
    let norm = m.to_text();
    assert_eq!(
        m.to_checked_text().as_ref(),
        Ok(&norm),
        "accepted manifest must round-trip"
    );
    let again = Manifest::parse(&norm).expect("normalized text must parse");
    assert_eq!(again.to_text(), norm, "normalization is not idempotent");
    assert_eq!(again.pdh(), m.pdh(), "PDH changed across a round trip");
    let idx = FileIndex::new(&again);
    for (path, f) in again.files() {
        let fr = idx.file(path).expect("indexed");
        let total: u64 = fr.slices(0..u64::MAX).map(|s| s.len).sum();
        assert_eq!(total, f.size());
    }
});
