//! Cross-module tests: the size table through manifest → index → byte ranges, escapes,
//! PDH pins, malformed manifests, and property tests.

use proptest::prelude::*;

use crate::{EntryKind, Error, FileIndex, Hash, Locator, Manifest, Pdh, BLOCK_SIZE_MAX};

const B: u64 = BLOCK_SIZE_MAX;

/// A locator for a fake block of `size` bytes (the bytes are never needed here).
fn fake(n: u64, size: u64) -> Locator {
    Locator::new(Hash::of(&n.to_le_bytes()), size)
}

/// Cuts a file of `size` bytes into blocks of at most 64 MiB, as the uploader does.
fn cut(seed: u64, size: u64) -> Vec<(Locator, u64, u64)> {
    let mut runs = Vec::new();
    let mut left = size;
    let mut i = 0;
    while left > 0 {
        let take = left.min(B);
        runs.push((fake(seed * 1000 + i, take), 0, take));
        left -= take;
        i += 1;
    }
    runs
}

#[test]
fn size_table_through_manifest_index_and_ranges() {
    for size in [0, 1, B - 1, B, B + 1, 5 * B + 12345] {
        let mut m = Manifest::new();
        m.put_file("dir/file", cut(size, size)).unwrap();
        let text = m.to_text();
        let back = Manifest::parse(&text).unwrap();
        assert_eq!(back.to_text(), text, "size {size}");
        assert_eq!(back.total_size(), size);
        let idx = FileIndex::new(&back);
        assert_eq!(idx.stat("dir/file"), Some(EntryKind::File { size }));
        let f = idx.file("dir/file").unwrap();
        // whole file: slices add up and are in block order
        let total: u64 = f.slices(0..size).map(|s| s.len).sum();
        assert_eq!(total, size);
        // a range across every block boundary maps to the right blocks and offsets
        for k in 1..=size / B {
            let at = k * B;
            if at >= size {
                continue;
            }
            let s: Vec<_> = f.slices(at - 10..at + 10).collect();
            assert_eq!(s.len(), 2, "size {size} boundary {k}");
            assert_eq!((s[0].block_offset, s[0].len), (B - 10, 10));
            assert_eq!((s[1].block_offset, s[1].len), (0, 10.min(size - at)));
        }
        // past the end: nothing
        assert_eq!(f.slices(size..size + 5).count(), 0);
        if size > 0 {
            let last: Vec<_> = f.slices(size - 1..size).collect();
            assert_eq!(last.len(), 1);
            assert_eq!(last[0].len, 1);
        }
    }
}

#[test]
fn escapes_round_trip() {
    let names = [
        "with space",
        "tab\there",
        "new\nline",
        "co:lon",
        "back\\slash",
        "ünïcödé ✓",
        "\u{1}ctl",
        "a:b c\\d",
    ];
    let mut m = Manifest::new();
    for (i, n) in names.iter().enumerate() {
        m.put_file(&format!("d {i}:x/{n}"), [(fake(i as u64, 3), 0, 3)])
            .unwrap();
    }
    m.put_dir("empty dir").unwrap();
    let text = m.to_text();
    for line in text.lines() {
        assert!(!line.contains('\t'), "{line:?}");
        assert!(line.split(' ').all(|t| !t.is_empty()));
    }
    assert!(text.contains("./empty\\040dir "));
    assert!(text.contains(" 0:0:\\056\n"));
    let back = Manifest::parse(&text).unwrap();
    for (i, n) in names.iter().enumerate() {
        assert!(back.file(&format!("d {i}:x/{n}")).is_some(), "{n:?}");
    }
    assert!(back.explicit_dirs().contains("empty dir"));
    assert_eq!(back.to_text(), text);
}

#[test]
fn index_lists_directories_that_hold_only_directories() {
    let mut m = Manifest::new();
    m.put_dir("a/b/c").unwrap();
    m.put_file("x/y/z", [(fake(1, 3), 0, 3)]).unwrap();
    let idx = FileIndex::new(&Manifest::parse(&m.to_text()).unwrap());
    let names = |p: &str| -> Vec<String> {
        idx.list(p)
            .unwrap_or_else(|| panic!("{p:?} is not listed"))
            .iter()
            .map(|e| e.name.clone())
            .collect()
    };
    assert_eq!(names(""), ["a", "x"]);
    assert_eq!(names("a"), ["b"]);
    assert_eq!(names("a/b"), ["c"]);
    assert!(names("a/b/c").is_empty());
    assert_eq!(names("x"), ["y"]);
    assert_eq!(names("x/y"), ["z"]);
    assert_eq!(idx.stat("a/b"), Some(EntryKind::Dir));
}

#[test]
fn empty_manifest_and_pinned_pdh() {
    let m = Manifest::parse("").unwrap();
    assert_eq!(m.to_text(), "");
    assert_eq!(
        m.pdh().to_string(),
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262+0"
    );
    // a known manifest: one 3-byte block "foo" in a file, one empty file
    // (values checked independently with Python's blake3 package)
    assert_eq!(
        Hash::of(b"foo").to_string(),
        "04e0bb39f30b1a3feb89f536c93be15055482df748674b00d26e5a75777702e9"
    );
    let foo = Locator::new(Hash::of(b"foo"), 3);
    let text = format!(". {foo}+Kzzzzz 0:3:foo.txt 3:0:empty\n");
    let m = Manifest::parse(&text).unwrap();
    let stripped = m.to_stripped_text();
    assert_eq!(stripped, format!(". {foo} 0:0:empty 0:3:foo.txt\n"));
    assert_eq!(
        m.pdh().to_string(),
        "3afdb492e50ae76c7eff43ed7c83762efc86fc9d80ac0cb735d572ac35bacbcc+91"
    );
}

#[test]
fn pdh_ignores_signatures_and_stream_order() {
    let a = Locator::new(Hash::of(b"a"), 1);
    let b = Locator::new(Hash::of(b"b"), 1);
    let signed = a.with_signature([9; 32], 0x12345678);
    let t1 = format!(". {a} 0:1:x\n./d {b} 0:1:y\n");
    let t2 = format!("./d {b} 0:1:y\n. {signed} 0:1:x\n");
    let p1 = Manifest::parse(&t1).unwrap().pdh();
    let p2 = Manifest::parse(&t2).unwrap().pdh();
    assert_eq!(p1, p2);
    assert_eq!(p1, Pdh::of_text(&t1));
}

#[test]
fn normalizes_segments_and_streams() {
    let a = Locator::new(Hash::of(b"a"), 10);
    let b = Locator::new(Hash::of(b"b"), 10);
    // one file in 3 tokens over 2 blocks, a second stream for the same dir, a file with '/'
    let text = format!(". {a} {b} 0:5:f 5:10:f 15:5:f\n. {a} 0:2:g\n. {b} 0:1:sub/h\n");
    let m = Manifest::parse(&text).unwrap();
    assert_eq!(m.file("f").unwrap().size(), 20);
    assert_eq!(
        m.to_text(),
        format!(". {a} {b} 0:20:f 0:2:g\n./sub {b} 0:1:h\n")
    );
    let again = Manifest::parse(&m.to_text()).unwrap();
    assert_eq!(again.to_text(), m.to_text());
}

#[test]
fn malformed_manifests_name_line_and_token() {
    let a = Locator::new(Hash::of(b"a"), 3);
    let cases: Vec<(String, &str)> = vec![
        (format!(". {a} 0:3:x"), "newline"),
        (format!(". {a} 0:3:x\n\n"), "empty line"),
        (format!("x {a} 0:3:x\n"), "stream name"),
        (format!(". {a} 0:4:x\n"), "past the end"),
        (format!(". {a} 0:3:x {a}\n"), "locator after a file token"),
        (format!(". {a} 0:3:b\\9ad\n"), "octal"),
        (format!(". {a} 0:3:x\\\n"), "octal"),
        (". 0:3:x\n".to_string(), "before any locator"),
        (format!(". {a}\n"), "at least one"),
        (format!(". {a}  0:3:x\n"), "empty token"),
        (format!(". {a} 0:3\n"), "<pos>:<len>:<name>"),
        (format!(". {a} a:3:x\n"), "<pos>:<len>:<name>"),
        (format!(". {a} 0:3:x/../y\n"), "'.' and '..'"),
        (format!(". {a} 0:3:x\tb\n"), "control byte"),
        (format!(". {a} 0:1:\\056\n"), "marker"),
        (". zzz+3 0:3:x\n".to_string(), "invalid locator"),
        (
            format!("./a\\040 {a} 0:3:x\n./ {a} 0:3:y\n"),
            "the path is empty",
        ),
        (
            format!(". {a} 0:3:f\n./f {a} 0:3:g\n"),
            "both a file and a directory",
        ),
    ];
    for (text, want) in cases {
        let err = Manifest::parse(&text).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(want), "{text:?}: got {msg:?}, want {want:?}");
        if let Error::Manifest { line, .. } = err {
            assert!(line >= 1);
        }
    }
}

fn arb_name() -> impl Strategy<Value = String> {
    prop::string::string_regex("[a-c :\\\\\t\n\\.é✓_-]{1,6}")
        .unwrap()
        .prop_filter("not . or ..", |s| s != "." && s != "..")
}

fn arb_manifest() -> impl Strategy<Value = Manifest> {
    let file = (
        prop::collection::vec(arb_name(), 1..4),
        prop::collection::vec((0u64..6, 0u64..40, 0u64..40), 0..4),
    );
    (
        prop::collection::vec(file, 0..8),
        prop::collection::vec(prop::collection::vec(arb_name(), 1..3), 0..3),
    )
        .prop_map(|(files, dirs)| {
            let mut m = Manifest::new();
            for (path, runs) in files {
                let runs: Vec<_> = runs
                    .into_iter()
                    .map(|(blk, off, len)| {
                        let size = 50 + blk;
                        let off = off.min(size);
                        (fake(blk, size), off, len.min(size - off))
                    })
                    .collect();
                let _ = m.put_file(&path.join("/"), runs);
            }
            for d in dirs {
                let _ = m.put_dir(&d.join("/"));
            }
            m
        })
}

proptest! {
    #[test]
    fn text_round_trip_and_idempotent(m in arb_manifest()) {
        let text = m.to_text();
        let back = Manifest::parse(&text).unwrap();
        prop_assert_eq!(back.to_text(), text.clone());
        // same files with the same bytes: compare segments resolved to (hash, offset, len)
        type Resolved = Vec<(String, Vec<(Hash, u64, u64)>)>;
        let resolve = |mm: &Manifest| -> Resolved {
            mm.files().iter().map(|(k, v)| (k.clone(), v.segments.iter().map(|s| (mm.blocks()[s.block as usize].hash, s.offset, s.len)).collect())).collect()
        };
        prop_assert_eq!(resolve(&back), resolve(&m));
        for (path, f) in m.files() {
            prop_assert_eq!(back.file(path).map(|g| g.size()), Some(f.size()));
        }
        prop_assert_eq!(back.pdh(), m.pdh());
    }

    #[test]
    fn pdh_stable_under_hint_changes(m in arb_manifest(), sig in any::<[u8; 32]>(), exp in any::<u32>()) {
        let mut signed = m.clone();
        signed.map_locators(|l| l.with_signature(sig, exp));
        prop_assert_eq!(signed.pdh(), m.pdh());
        let reparsed = Manifest::parse(&signed.to_text()).unwrap();
        prop_assert_eq!(reparsed.pdh(), m.pdh());
    }

    #[test]
    fn index_slices_cover_exactly_the_range(m in arb_manifest(), a in 0u64..200, b in 0u64..200) {
        let idx = FileIndex::new(&m);
        for (path, f) in m.files() {
            let fr = idx.file(path).unwrap();
            let (start, end) = (a.min(b), a.max(b));
            let want = end.min(f.size()).saturating_sub(start.min(f.size()));
            let got: u64 = fr.slices(start..end).map(|s| s.len).sum();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn parser_never_panics(s in "[ -~\n]{0,200}") {
        let _ = Manifest::parse(&s);
        let _ = s.parse::<Locator>();
    }
}

#[test]
fn walk_is_depth_first_by_name_with_relative_paths() {
    let l = Locator::new(Hash::of(b"abc"), 3);
    let mut m = Manifest::new();
    for p in ["d/b.txt", "d/a/x.txt", "top.txt", "d/c/y.txt"] {
        m.put_file(p, [(l.clone(), 0, 3)]).unwrap();
    }
    m.put_dir("d/empty").unwrap();
    let idx = FileIndex::new(&m);
    let got: Vec<(String, String, bool)> = idx
        .walk("d")
        .map(|(rel, path, kind)| (rel, path, kind == EntryKind::Dir))
        .collect();
    let want = [
        ("a", "d/a", true),
        ("a/x.txt", "d/a/x.txt", false),
        ("b.txt", "d/b.txt", false),
        ("c", "d/c", true),
        ("c/y.txt", "d/c/y.txt", false),
        ("empty", "d/empty", true),
    ];
    let want: Vec<(String, String, bool)> = want
        .iter()
        .map(|(r, p, d)| (r.to_string(), p.to_string(), *d))
        .collect();
    assert_eq!(got, want);
    assert_eq!(idx.walk("").count(), want.len() + 2);
    assert_eq!(idx.walk("top.txt").count(), 0);
}
