#![no_main]
//! What keep-web does with a manifest it was given: parse it, build the FileIndex, list
//! every directory, resolve every path and cut a few ranges of every file into block
//! slices. Checks, for whatever parses:
//! - the normalized text parses back to the same collection (`to_checked_text`), and
//!   normalizing is idempotent;
//! - every directory the walk meets lists, every listed entry resolves (`stat`) to what
//!   the listing says, file sizes in listings match the files';
//! - the files listed add up to the manifest's files, their sizes to its total size;
//! - the slices of a range cover exactly its clamped length, each within its block.

use keep_format::{EntryKind, FileIndex, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = Manifest::parse(text) else { return };
    let norm = m
        .to_checked_text()
        .unwrap_or_else(|e| panic!("accepted manifest does not round-trip: {e}"));
    let again = Manifest::parse(&norm).expect("normalized text must parse");
    assert_eq!(again.to_text(), norm, "normalization is not idempotent");
    assert_eq!(again.pdh(), m.pdh(), "PDH changed across a round trip");

    let idx = FileIndex::new(&m);
    assert_eq!(idx.stat(""), Some(EntryKind::Dir));
    let (mut files, mut bytes, mut dirs) = (0usize, 0u64, 1usize);
    // resolving a path walks its components, so checking every entry of a deep tree
    // is quadratic in its depth: check the first entries in full, count the rest
    for (n, (rel, path, kind)) in idx.walk("").enumerate() {
        assert_eq!(rel, path, "a walk from the root has relative = full paths");
        if n >= 256 {
            match kind {
                EntryKind::Dir => dirs += 1,
                EntryKind::File { size } => {
                    files += 1;
                    bytes += size;
                }
            }
            continue;
        }
        assert_eq!(idx.stat(&path), Some(kind), "{path:?} lists as {kind:?}");
        match kind {
            EntryKind::Dir => {
                dirs += 1;
                let list = idx.list(&path).expect("a listed directory lists");
                for e in list {
                    let child = format!("{path}/{}", e.name);
                    assert_eq!(idx.stat(&child), Some(e.kind), "{child:?}");
                }
                assert!(
                    list.windows(2).all(|w| w[0].name < w[1].name),
                    "sorted, unique"
                );
            }
            EntryKind::File { size } => {
                files += 1;
                bytes += size;
                let mf = m.file(&path).expect("an indexed file is in the manifest");
                assert_eq!(mf.size(), size);
                let f = idx.file(&path).expect("resolves");
                for (a, b) in [
                    (0, u64::MAX),
                    (0, 1),
                    (size / 2, size),
                    (size.saturating_sub(3), size + 10),
                    (size, size + 1),
                    (7, 3),
                ] {
                    let want = b.min(size).saturating_sub(a.min(b.min(size)));
                    let mut got = 0u64;
                    for s in f.slices(a..b) {
                        assert!(s.len > 0);
                        assert!(
                            s.block_offset + s.len <= s.locator.size,
                            "slice within its block"
                        );
                        got += s.len;
                    }
                    assert_eq!(got, want, "{path:?} {a}..{b}");
                }
            }
        }
    }
    assert_eq!(files, m.files().len(), "every file is listed once");
    assert_eq!(files, idx.file_count());
    assert_eq!(dirs, idx.dir_count());
    assert_eq!(bytes, m.total_size());
    for d in m.explicit_dirs().iter().take(64) {
        assert_eq!(idx.stat(d), Some(EntryKind::Dir), "{d:?}");
    }
});
