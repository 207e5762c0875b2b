//! Verify-on-read: corrupt blocks are never served, Range reads touch only their groups.

use crate::common::{bytes, flip, start};
use futures_util::StreamExt;
use keep_format::{Hash, BLOCK_SIZE_MAX};

const MIB: u64 = 1 << 20;

fn quarantined(s: &crate::common::Server, hash: &Hash) -> usize {
    s.dirs
        .iter()
        .map(|d| {
            std::fs::read_dir(d.path().join("quarantine"))
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&hash.to_hex()))
                .count()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_first_piece_is_502_and_quarantined() {
    let s = start(1).await;
    for (i, len) in [100usize, 200_000].into_iter().enumerate() {
        let body = bytes(len, i as u64);
        let loc = s.put_ok(body).await;
        flip(&s.block_path(&loc.hash), len as u64 / 2);
        let r = s.get(&loc).await;
        assert_eq!(r.status(), 502, "len {len}");
        let msg = r.text().await.unwrap();
        assert!(msg.contains("quarantined"), "{msg}");
        assert!(quarantined(&s, &loc.hash) >= 1);
        // gone from its place: now 404
        assert_eq!(s.get(&loc).await.status(), 404);
        assert_eq!(
            s.metric("keepstore_corrupt_blocks_total").await,
            (i + 1) as f64
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_late_in_big_block_aborts_the_response() {
    let s = start(1).await;
    let len = BLOCK_SIZE_MAX;
    let body = bytes(len as usize, 9);
    let loc = s.put_ok(body.clone()).await;
    let bad_at = len - 3 * MIB;
    flip(&s.block_path(&loc.hash), bad_at);

    let r = s.get(&loc).await;
    assert_eq!(
        r.status(),
        200,
        "the first piece is good, so the response starts"
    );
    let mut stream = r.bytes_stream();
    let mut got: Vec<u8> = Vec::new();
    let mut failed = false;
    while let Some(piece) = stream.next().await {
        match piece {
            Ok(b) => got.extend_from_slice(&b),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the client must see the response fail");
    let group_start = bad_at / 16384 * 16384;
    assert!(
        (got.len() as u64) <= group_start,
        "received {} bytes: the bad group was sent",
        got.len()
    );
    assert!(
        got.as_slice() == &body[..got.len()],
        "only good bytes were sent"
    );
    assert_eq!(
        quarantined(&s, &loc.hash),
        2,
        "data and outboard in quarantine"
    );
    assert_eq!(s.metric("keepstore_corrupt_blocks_total").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_reads_only_its_groups() {
    let s = start(1).await;
    let len = BLOCK_SIZE_MAX;
    let body = bytes(len as usize, 11);
    let loc = s.put_ok(body.clone()).await;
    let vol = format!(
        "keepstore_volume_read_bytes_total{{volume=\"{}\"}}",
        s.ks.volumes()[0].id()
    );

    let start_at = 32 * MIB + 5000;
    let end = start_at + 4096 - 1;
    let before = s.metric(&vol).await;
    let r = s.get_range(&loc, &format!("bytes={start_at}-{end}")).await;
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes {start_at}-{end}/{len}").as_str()
    );
    assert_eq!(r.headers()["content-length"], "4096");
    let got = r.bytes().await.unwrap();
    assert!(got.as_ref() == &body[start_at as usize..=end as usize]);
    let read = s.metric(&vol).await - before;
    assert!(
        read > 0.0 && read <= 3.0 * 16384.0,
        "read {read} bytes for a 4 KiB range"
    );

    // across a group boundary, suffix and open-ended forms
    for (range, want) in [
        (
            format!("bytes={}-{}", 16384 * 7 - 10, 16384 * 7 + 9),
            (16384 * 7 - 10)..(16384 * 7 + 10),
        ),
        ("bytes=-100".to_string(), (len - 100)..len),
        (format!("bytes={}-", len - 5), (len - 5)..len),
    ] {
        let r = s.get_range(&loc, &range).await;
        assert_eq!(r.status(), 206, "{range}");
        let got = r.bytes().await.unwrap();
        assert!(
            got.as_ref() == &body[want.start as usize..want.end as usize],
            "{range}"
        );
    }

    // a flipped byte outside the range does not matter
    flip(&s.block_path(&loc.hash), 10 * MIB);
    let r = s.get_range(&loc, &format!("bytes={start_at}-{end}")).await;
    assert_eq!(r.status(), 206);
    assert!(r.bytes().await.unwrap().as_ref() == &body[start_at as usize..=end as usize]);
    // one inside does
    flip(&s.block_path(&loc.hash), start_at + 100);
    let r = s.get_range(&loc, &format!("bytes={start_at}-{end}")).await;
    assert_eq!(r.status(), 502);
    assert_eq!(quarantined(&s, &loc.hash), 2);
    assert_eq!(s.metric("keepstore_corrupt_blocks_total").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsatisfiable_and_multiple_ranges() {
    let s = start(1).await;
    let body = bytes(50_000, 12);
    let loc = s.put_ok(body.clone()).await;
    for bad in ["bytes=50000-", "bytes=60000-70000", "bytes=-0"] {
        let r = s.get_range(&loc, bad).await;
        assert_eq!(r.status(), 416, "{bad}");
        assert_eq!(r.headers()["content-range"], "bytes */50000");
    }
    let r = s.get_range(&loc, "bytes=0-1,5-9").await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().as_ref() == body.as_slice());
    // a malformed Range is ignored
    let r = s.get_range(&loc, "bytes=z-").await;
    assert_eq!(r.status(), 200);
    // the empty block has no satisfiable range
    let empty = s.put_ok(Vec::new()).await;
    assert_eq!(s.get_range(&empty, "bytes=0-").await.status(), 416);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_damaged_outboard() {
    let s = start(1).await;
    let body = bytes(300_000, 13);
    let loc = s.put_ok(body.clone()).await;
    let data_path = s.block_path(&loc.hash);
    let ob = data_path.with_extension("ob");
    assert_eq!(
        std::fs::metadata(&ob).unwrap().len(),
        keep_format::outboard::outboard_size(300_000)
    );

    // missing: rebuilt from the data, which is good
    std::fs::remove_file(&ob).unwrap();
    let r = s.get_range(&loc, "bytes=100000-100099").await;
    assert_eq!(r.status(), 206);
    assert!(r.bytes().await.unwrap().as_ref() == &body[100_000..100_100]);
    assert_eq!(
        std::fs::metadata(&ob).unwrap().len(),
        keep_format::outboard::outboard_size(300_000)
    );

    // short: rebuilt too
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ob)
        .unwrap()
        .set_len(64)
        .unwrap();
    let r = s.get(&loc).await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().as_ref() == body.as_slice());

    // a flipped bit in the root node: the outboard no longer leads to the hash
    flip(&ob, 3);
    let r = s.get_range(&loc, "bytes=0-9").await;
    assert_eq!(r.status(), 502);
    assert_eq!(quarantined(&s, &loc.hash), 2);
}

/// The in-process read keep-web uses inside `keep serve`: same signature check, same
/// verification, never the bad bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_slice_checks_signature_and_verifies() {
    let s = start(1).await;
    let len = 8 * MIB;
    let body = bytes(len as usize, 5);
    let loc = s.put_ok(body.clone()).await;
    let collect = |st: futures_util::stream::BoxStream<
        'static,
        Result<bytes::Bytes, keepstore::Error>,
    >| async move {
        let mut out = Vec::new();
        let mut st = st;
        while let Some(piece) = st.next().await {
            match piece {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    };
    // a slice across piece boundaries, and the whole block
    for (off, n) in [(MIB - 10, 2 * MIB + 20), (0, len), (len - 1, 1)] {
        let st = s.ks.read_slice(&loc, &s.token, off, n).await.unwrap();
        let (got, err) = collect(st).await;
        assert!(err.is_none(), "{err:?}");
        assert!(got[..] == body[off as usize..(off + n) as usize]);
    }
    // another token's view of the signature, an unsigned locator, a slice past the end
    let other = keep_format::Token::generate_bare();
    assert!(s.ks.read_slice(&loc, &other, 0, 10).await.is_err());
    let bare = keep_format::Locator::new(loc.hash, loc.size);
    assert!(s.ks.read_slice(&bare, &s.token, 0, 10).await.is_err());
    assert!(s.ks.read_slice(&loc, &s.token, len - 5, 10).await.is_err());
    // a flipped byte late in the block: the good slice before it still reads, the
    // stream over it ends in an error before the bad piece
    flip(&s.block_path(&loc.hash), len - MIB / 2);
    let st = s.ks.read_slice(&loc, &s.token, 0, MIB).await.unwrap();
    let (got, err) = collect(st).await;
    assert!(err.is_none() && got[..] == body[..MIB as usize]);
    let st = s.ks.read_slice(&loc, &s.token, 0, len).await.unwrap();
    let (got, err) = collect(st).await;
    assert!(
        err.is_some(),
        "a corrupt block must end the stream in an error"
    );
    // pieces are 1 MiB: everything before the bad one, and not a byte of it
    assert!(got.len() <= (len - MIB) as usize, "the bad piece was sent");
    assert!(got[..] == body[..got.len()]);
}
