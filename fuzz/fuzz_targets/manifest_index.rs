#![no_main]
//! What keep-web does with a manifest it was given: parse it, build the FileIndex, list
//! every directory, resolve every path and cut a few ranges of every file into block
//! slices. Checks, for whatever parses:
//! - the normalized text parses back to the same collection (`to_checked_text`), and
//!   normalizing is idempotent;
//! - every directory the walk meets lists, every listed entry resolves (`stat`) to what
//!   the listing says, file sizes in listings match the files';
//! - the files listed add up to the manifest's files, their sizes to its total size;
//! - the slices of a range cover exactly its clamped length, each within its block;
//! - reading a range through the index, against an in-memory block map (every block of
//!   the manifest, its bytes a function of its position in the map), gives the bytes
//!   the manifest's own segments say the file holds there (the first KiB of each
//!   range are compared byte for byte).

use std::collections::HashMap;

use keep_format::{EntryKind, FileIndex, Locator, Manifest, ManifestFile};
use libfuzzer_sys::fuzz_target;

/// At most this many bytes of a range are read and compared.
const READ_MAX: u64 = 1024;

/// The blocks of a manifest, by bare locator (a signature doesn't change a block's
/// content). A block's bytes are computed, not stored: its declared size may be large.
struct Blocks(HashMap<Locator, u64>);

impl Blocks {
    fn new(m: &Manifest) -> Blocks {
        let mut map = HashMap::new();
        for (i, l) in m.blocks().iter().enumerate() {
            map.entry(l.bare()).or_insert(i as u64);
        }
        Blocks(map)
    }

    fn byte(&self, l: &Locator, off: u64) -> u8 {
        assert!(off < l.size, "a read past the end of block {l:?}");
        let seed = *self
            .0
            .get(&l.bare())
            .unwrap_or_else(|| panic!("a slice names {l:?}, which is not in the manifest"));
        ((seed.wrapping_add(1) ^ off.rotate_left(17)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56)
            as u8
    }
}

/// The first `READ_MAX` bytes of `a..b` of `f`, read the way keep-web does: the index's
/// block slices, then the blocks.
fn read_index(blocks: &Blocks, f: &keep_format::FileRef<'_>, a: u64, b: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for s in f.slices(a..b) {
        let n = s.len.min(READ_MAX - out.len() as u64);
        out.extend((0..n).map(|j| blocks.byte(s.locator, s.block_offset + j)));
        if out.len() as u64 >= READ_MAX {
            break;
        }
    }
    out
}

/// The same bytes from the manifest's own segment list.
fn read_manifest(blocks: &Blocks, m: &Manifest, mf: &ManifestFile, a: u64, b: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let end = b.min(mf.size());
    let mut pos = 0u64;
    for seg in &mf.segments {
        if pos >= end || out.len() as u64 >= READ_MAX {
            break;
        }
        let (lo, hi) = (pos.max(a), pos.saturating_add(seg.len).min(end));
        let l = &m.blocks()[seg.block as usize];
        let mut x = lo;
        while x < hi && (out.len() as u64) < READ_MAX {
            out.push(blocks.byte(l, seg.offset + (x - pos)));
            x += 1;
        }
        pos = pos.saturating_add(seg.len);
    }
    out
}

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
    let blocks = Blocks::new(&m);
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
                    assert_eq!(
                        read_index(&blocks, &f, a, b),
                        read_manifest(&blocks, &m, mf, a, b),
                        "{path:?} {a}..{b}: the index reads other bytes than the manifest holds"
                    );
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
