//! One volume test suite, run against both kinds: a local directory and an S3 bucket on
//! a real Garage (`scripts/garage`). Each `both!` line makes a `local_…` and an `s3_…`
//! test from one function.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keep_format::outboard;
use keep_format::Hash;
use keepstore::s3::{S3Volume, UNLIMITED};
use keepstore::{BlockMeta, LocalVolume, Volume};

use crate::common::bytes;
use crate::common::garage::{self, unique_prefix};

/// A fresh volume of one kind, and how to reach behind its back.
struct Fixture {
    v: Arc<dyn Volume>,
    kind: Kind,
    _dir: Option<tempfile::TempDir>,
}

#[derive(Clone)]
enum Kind {
    Local(std::path::PathBuf),
    S3(String),
}

async fn fixture(s3: bool, name: &str) -> Fixture {
    if s3 {
        let prefix = unique_prefix(name);
        let cfg = garage::shared().config(&prefix);
        let v = tokio::task::spawn_blocking(move || S3Volume::open(&cfg).unwrap())
            .await
            .unwrap();
        Fixture {
            v: Arc::new(v),
            kind: Kind::S3(format!("{prefix}/")),
            _dir: None,
        }
    } else {
        let d = tempfile::tempdir().unwrap();
        let v = LocalVolume::open(d.path()).unwrap();
        Fixture {
            v: Arc::new(v),
            kind: Kind::Local(d.path().to_path_buf()),
            _dir: Some(d),
        }
    }
}

/// Runs a blocking volume call off the runtime's worker threads.
async fn b<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

fn write(v: &dyn Volume, bytes: &[u8]) -> Hash {
    let (h, ob) = outboard::outboard(bytes);
    let mut w = v.writer().unwrap();
    for piece in bytes.chunks(100_000) {
        w.write(piece).unwrap();
    }
    w.commit(&h, &ob).unwrap();
    h
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

macro_rules! both {
    ($suite:ident, $local:ident, $s3:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $local() {
            $suite(fixture(false, stringify!($suite)).await).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $s3() {
            $suite(fixture(true, stringify!($suite)).await).await
        }
    };
}

both!(put_get_range, local_put_get_range, s3_put_get_range);
async fn put_get_range(f: Fixture) {
    let v = f.v.clone();
    b(move || {
        for (i, len) in [0usize, 1, 16_384, 16_385, 200_000, 3 << 20]
            .into_iter()
            .enumerate()
        {
            let body = bytes(len, i as u64);
            let h = write(&*v, &body);
            let (_, ob) = outboard::outboard(&body);
            let m = v.stat(&h).unwrap().expect("stat after write");
            assert_eq!(m.size, len as u64);
            let r = v.open(&h).unwrap().expect("open after write");
            assert_eq!(r.len(), len as u64);
            assert_eq!(r.outboard_len(), Some(ob.len() as u64), "len {len}");
            if len == 0 {
                continue;
            }
            // whole, then pieces in order (a streamed read), then one range
            let mut all = vec![0u8; len];
            r.read_exact_at(&mut all, 0).unwrap();
            assert!(all == body, "len {len}");
            let r = v.open(&h).unwrap().unwrap();
            r.will_read(0..len as u64);
            let mut at = 0;
            while at < len {
                let n = (len - at).min(1 << 20);
                let mut piece = vec![0u8; n];
                r.read_exact_at(&mut piece, at as u64).unwrap();
                assert!(piece == body[at..at + n], "len {len} at {at}");
                at += n;
            }
            let a = len / 3;
            let n = (len - a).min(5000);
            let r = v.open(&h).unwrap().unwrap();
            let first_node = 0..64.min(ob.len() as u64);
            r.prefetch(a as u64..(a + n) as u64, std::slice::from_ref(&first_node));
            let mut part = vec![0u8; n];
            r.read_exact_at(&mut part, a as u64).unwrap();
            assert!(part == body[a..a + n]);
            if !ob.is_empty() {
                let mut node = vec![0u8; 64];
                r.read_outboard_at(&mut node, 0).unwrap();
                assert_eq!(node, ob[..64]);
            }
            // reading past the end is an error, not garbage
            let mut over = vec![0u8; 10];
            assert!(r.read_exact_at(&mut over, len as u64 - 1).is_err());
        }
        assert!(v.read_bytes() > 0);
        // absent blocks
        let none = Hash::of(b"never written");
        assert!(v.stat(&none).unwrap().is_none());
        assert!(v.open(&none).unwrap().is_none());
        assert!(!v.touch(&none).unwrap());
        assert!(!v.trash(&none, 1, None).unwrap());
        assert!(!v.untrash(&none).unwrap());
    })
    .await;
}

both!(
    abandoned_writes_leave_nothing,
    local_abandoned_writes_leave_nothing,
    s3_abandoned_writes_leave_nothing
);
async fn abandoned_writes_leave_nothing(f: Fixture) {
    let v = f.v.clone();
    let body = bytes(300_000, 7);
    let h = Hash::of(&body);
    b(move || {
        let mut w = v.writer().unwrap();
        w.write(&body[..100_000]).unwrap();
        drop(w);
        assert!(v.stat(&h).unwrap().is_none());
        let mut n = 0;
        v.index("", &mut |_, _| n += 1).unwrap();
        assert_eq!(n, 0);
    })
    .await;
    match &f.kind {
        Kind::Local(root) => {
            assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0)
        }
        Kind::S3(prefix) => {
            let keys = garage::shared().keys(prefix).await;
            assert_eq!(keys, vec![format!("{prefix}.keep-volume-id")]);
        }
    }
}

both!(
    index_with_prefix,
    local_index_with_prefix,
    s3_index_with_prefix
);
async fn index_with_prefix(f: Fixture) {
    let v = f.v.clone();
    b(move || {
        let before = now_ns() - 2_000_000_000;
        let mut hashes: Vec<(Hash, u64)> = (0..12u8)
            .map(|i| {
                let body = bytes(1000 + usize::from(i), i.into());
                (write(&*v, &body), 1000 + u64::from(i))
            })
            .collect();
        hashes.sort();
        let after = now_ns() + 2_000_000_000;
        let mut seen: Vec<(Hash, BlockMeta)> = Vec::new();
        v.index("", &mut |h, m| seen.push((h, m))).unwrap();
        assert_eq!(
            seen.iter().map(|(h, m)| (*h, m.size)).collect::<Vec<_>>(),
            hashes,
            "every block once, in hash order"
        );
        for (_, m) in &seen {
            assert!(m.mtime_ns > before && m.mtime_ns < after, "{m:?}");
        }
        // the mtime the index shows is the one stat shows (trash compares them)
        for (h, m) in &seen {
            assert_eq!(v.stat(h).unwrap().unwrap().mtime_ns, m.mtime_ns);
        }
        let one = hashes[5].0;
        for p in [one.hex_prefix(1), one.hex_prefix(3), one.to_hex()] {
            let mut got = Vec::new();
            v.index(&p, &mut |h, _| got.push(h)).unwrap();
            assert!(got.contains(&one), "prefix {p}");
            assert!(got.iter().all(|h| h.to_hex().starts_with(&p)), "prefix {p}");
        }
        let mut got = 0;
        let absent = if one.hex_prefix(2) == "ff" {
            "00"
        } else {
            "ff"
        };
        v.index(&format!("{absent}fff"), &mut |_, _| got += 1)
            .unwrap();
        assert_eq!(got, 0);
    })
    .await;
}

both!(
    trash_untrash_empty,
    local_trash_untrash_empty,
    s3_trash_untrash_empty
);
async fn trash_untrash_empty(f: Fixture) {
    let v = f.v.clone();
    b(move || {
        let body = bytes(50_000, 3);
        let h = write(&*v, &body);
        let m = v.stat(&h).unwrap().unwrap();
        // a stale mtime: not trashed
        assert!(!v.trash(&h, 1000, Some(m.mtime_ns + 1)).unwrap());
        assert!(v.stat(&h).unwrap().is_some());
        let now = keep_format::time::unix_now();
        assert!(v.trash(&h, now + 100, Some(m.mtime_ns)).unwrap());
        assert!(v.stat(&h).unwrap().is_none());
        assert!(v.open(&h).unwrap().is_none());
        let mut n = 0;
        v.index("", &mut |_, _| n += 1).unwrap();
        assert_eq!(n, 0, "a trashed block is not indexed");
        // before the deadline nothing is emptied; untrash restores data and outboard
        assert_eq!(v.empty_trash(now).unwrap(), 0);
        assert!(v.untrash(&h).unwrap());
        let r = v.open(&h).unwrap().unwrap();
        assert_eq!(r.outboard_len(), Some(outboard::outboard_size(50_000)));
        let mut all = vec![0u8; 50_000];
        r.read_exact_at(&mut all, 0).unwrap();
        assert!(all == body);
        assert!(!v.untrash(&h).unwrap(), "nothing left in the trash");
        // trashed again, then the deadline passes: gone for good
        assert!(v.trash(&h, now.saturating_sub(1), None).unwrap());
        assert_eq!(v.empty_trash(now).unwrap(), 1);
        assert!(!v.untrash(&h).unwrap());
        assert!(v.stat(&h).unwrap().is_none());
        // and it can be written again
        let h2 = write(&*v, &body);
        assert_eq!(h2, h);
        assert!(v.stat(&h).unwrap().is_some());
    })
    .await;
    if let Kind::S3(prefix) = &f.kind {
        let keys = garage::shared().keys(&format!("{prefix}trash/")).await;
        assert!(keys.is_empty(), "{keys:?}");
    }
}

both!(
    touch_renews_mtime,
    local_touch_renews_mtime,
    s3_touch_renews_mtime
);
async fn touch_renews_mtime(f: Fixture) {
    let v = f.v.clone();
    let (h, m0) = b(move || {
        let h = write(&*v, &bytes(2000, 9));
        (h, v.stat(&h).unwrap().unwrap().mtime_ns)
    })
    .await;
    // S3's Last-Modified has whole seconds
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let v = f.v.clone();
    b(move || {
        assert!(v.touch(&h).unwrap());
        let m1 = v.stat(&h).unwrap().unwrap().mtime_ns;
        assert!(m1 > m0, "{m1} > {m0}");
        let mut listed = 0;
        v.index("", &mut |_, m| listed = m.mtime_ns).unwrap();
        assert_eq!(listed, m1, "the index shows the touch");
        // a trash list made before the touch no longer applies
        assert!(!v.trash(&h, 1, Some(m0)).unwrap());
        assert!(v.stat(&h).unwrap().is_some());
    })
    .await;
}

both!(
    quarantine_moves_aside,
    local_quarantine_moves_aside,
    s3_quarantine_moves_aside
);
async fn quarantine_moves_aside(f: Fixture) {
    let v = f.v.clone();
    let h = b(move || {
        let h = write(&*v, &bytes(40_000, 4));
        v.quarantine(&h).unwrap();
        assert!(v.stat(&h).unwrap().is_none());
        assert!(v.open(&h).unwrap().is_none());
        h
    })
    .await;
    let n = match &f.kind {
        Kind::Local(root) => std::fs::read_dir(root.join("quarantine"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&h.to_hex())
            })
            .count(),
        Kind::S3(prefix) => garage::shared()
            .keys(&format!("{prefix}quarantine/{h}"))
            .await
            .len(),
    };
    assert_eq!(n, 2, "data and outboard kept for inspection");
}

both!(
    space_and_outboard,
    local_space_and_outboard,
    s3_space_and_outboard
);
async fn space_and_outboard(f: Fixture) {
    let v = f.v.clone();
    let s3 = matches!(f.kind, Kind::S3(_));
    b(move || {
        let sp = v.space().unwrap();
        assert!(sp.total > 0 && sp.free <= sp.total);
        if s3 {
            assert_eq!(sp.free, UNLIMITED);
            assert_eq!(v.kind(), "s3");
        } else {
            assert_eq!(v.kind(), "directory");
        }
        // a replaced outboard is what later reads see
        let body = bytes(70_000, 5);
        let h = write(&*v, &body);
        let (_, ob) = outboard::outboard(&body);
        let mut bad = ob.clone();
        bad[0] ^= 1;
        v.write_outboard(&h, &bad).unwrap();
        let mut first = vec![0u8; 64];
        v.open(&h)
            .unwrap()
            .unwrap()
            .read_outboard_at(&mut first, 0)
            .unwrap();
        assert_eq!(first, bad[..64]);
        v.write_outboard(&h, &ob).unwrap();
    })
    .await;
}
