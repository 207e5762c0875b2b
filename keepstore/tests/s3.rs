//! keepstore over HTTP with an S3 volume on a real Garage: reads verified (whole and
//! Range), corrupt objects quarantined and never served, faults of the S3 server
//! answered with 5xx in bounded time.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use keep_format::{Hash, BLOCK_SIZE_MAX};
use reqwest::Method;

use crate::common::garage::{self, unique_prefix};
use crate::common::{bytes, start_s3, Server};

const MIB: usize = 1 << 20;

/// The prefix (with its `/`) of the one volume of `s`.
async fn prefix_of(s: &Server) -> String {
    let v = &s.ks.volumes()[0];
    let path = v.path();
    // s3://bucket/<prefix> at endpoint
    let p = path
        .split_once("s3://")
        .and_then(|(_, r)| r.split_once('/'))
        .map(|(_, r)| r.split(' ').next().unwrap_or("").to_string())
        .unwrap();
    format!("{p}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_round_trip_and_ranges() {
    let s = start_s3(&unique_prefix("http-rt"), Duration::from_secs(3600), |_| {}).await;
    for (i, len) in [0usize, 1, 16_385, 5 * MIB + 7, BLOCK_SIZE_MAX as usize]
        .into_iter()
        .enumerate()
    {
        let body = bytes(len, i as u64);
        let loc = s.put_ok(body.clone()).await;
        let r = s.get(&loc).await;
        assert_eq!(r.status(), 200, "len {len}");
        assert_eq!(r.headers()["content-length"], len.to_string().as_str());
        let got = r.bytes().await.unwrap();
        assert!(got.as_ref() == body.as_slice(), "GET len {len}");
        if len > 20_000 {
            let (a, b) = (len / 2 - 3000, len / 2 + 1000);
            let before = s.ks.volumes()[0].read_bytes();
            let r = s.get_range(&loc, &format!("bytes={a}-{b}")).await;
            assert_eq!(r.status(), 206);
            let got = r.bytes().await.unwrap();
            assert!(got.as_ref() == &body[a..=b]);
            // only the groups the range touches were read, not the block
            let read = s.ks.volumes()[0].read_bytes() - before;
            assert!(read <= 3 * 16_384, "read {read} bytes for a 4 KiB range");
        }
    }
    // a second PUT of the same block only touches it
    let body = bytes(1000, 42);
    let loc = s.put_ok(body.clone()).await;
    let prefix = prefix_of(&s).await;
    let key = format!("{prefix}recent/{}", loc.hash);
    let first = garage::shared().get(&key).await.unwrap();
    s.put_ok(body).await;
    let second = garage::shared().get(&key).await.unwrap();
    assert_ne!(first, second, "the re-PUT rewrote the recent/ marker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_failed_put_stores_nothing() {
    let s = start_s3(
        &unique_prefix("http-fail"),
        Duration::from_secs(3600),
        |_| {},
    )
    .await;
    let body = bytes(100_000, 1);
    let wrong = Hash::of(b"something else");
    let r = s
        .client
        .put(format!("{}/{wrong}", s.base))
        .header("Authorization", s.bearer())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let prefix = prefix_of(&s).await;
    let keys = garage::shared().keys(&prefix).await;
    assert_eq!(keys, vec![format!("{prefix}.keep-volume-id")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_corrupt_block_is_502_and_quarantined() {
    let s = start_s3(
        &unique_prefix("http-corrupt"),
        Duration::from_secs(3600),
        |_| {},
    )
    .await;
    let prefix = prefix_of(&s).await;
    let g = garage::shared();
    for (i, len) in [100usize, 200_000].into_iter().enumerate() {
        let mut body = bytes(len, i as u64);
        let loc = s.put_ok(body.clone()).await;
        body[len / 2] ^= 0x10;
        g.put(&format!("{prefix}{}", loc.hash), body).await;
        let r = s.get(&loc).await;
        assert_eq!(r.status(), 502, "len {len}");
        assert!(r.text().await.unwrap().contains("quarantined"));
        assert_eq!(s.get(&loc).await.status(), 404);
        let q = g.keys(&format!("{prefix}quarantine/{}", loc.hash)).await;
        assert!(!q.is_empty(), "len {len}: nothing in quarantine/");
    }
    // damage late in a big block: the response starts, then is cut before its end
    let len = 8 * MIB;
    let mut body = bytes(len, 9);
    let loc = s.put_ok(body.clone()).await;
    body[len - 3 * MIB] ^= 1;
    g.put(&format!("{prefix}{}", loc.hash), body).await;
    let r = s.get(&loc).await;
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let mut got = 0usize;
    let mut failed = false;
    while let Some(c) = stream.next().await {
        match c {
            Ok(c) => got += c.len(),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(
        failed && got <= len - 3 * MIB,
        "got {got} of {len}, failed {failed}"
    );
    assert!(s.metric("keepstore_corrupt_blocks_total").await >= 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_index_trash_untrash_over_http() {
    let s = start_s3(&unique_prefix("http-trash"), Duration::from_secs(1), |c| {
        c.trash_lifetime = Duration::from_secs(0)
    })
    .await;
    let a = s.put_ok(bytes(5000, 1)).await;
    let text = s
        .admin(Method::GET, "/index")
        .await
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.ends_with("\n\n"), "{text:?}");
    let line = text.lines().next().unwrap();
    let (loc, mtime) = line.split_once(' ').unwrap();
    assert_eq!(loc, format!("{}+5000", a.hash));
    let mtime: u64 = mtime.parse().unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = s
        .admin(Method::PUT, "/trash")
        .await
        .json(&serde_json::json!([{"locator": loc, "block_mtime": mtime}]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"trashed": 1, "skipped": 0})
    );
    let fresh = s.sign(a.hash, 5000);
    assert_eq!(s.get(&fresh).await.status(), 404);
    let r = s
        .admin(Method::PUT, &format!("/untrash/{loc}"))
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(s.get(&fresh).await.status(), 200);
    let r = s.admin(Method::GET, "/mounts").await.send().await.unwrap();
    let m: serde_json::Value = r.json().await.unwrap();
    assert_eq!(m[0]["kind"], "s3");
    assert!(m[0]["uuid"].as_str().unwrap().starts_with("vol-"));
}

/// A keepstore on a Garage of its own (so that the test can stop it), with 1 s timeouts.
async fn own_garage() -> (garage::Garage, Server) {
    let g = garage::start();
    let mut cfg = g.config("faults");
    cfg.read_timeout = Duration::from_secs(1);
    cfg.connect_timeout = Duration::from_secs(1);
    cfg.request_timeout = Duration::from_secs(3);
    let signer = keep_format::BlobSigner::new(
        keep_format::SigningKey::new(crate::common::SIGNING_KEY),
        Duration::from_secs(3600),
    );
    let ks = keepstore::Keepstore::start(keepstore::Config::new(
        vec![keepstore::VolumeConfig::S3(cfg)],
        signer.clone(),
        crate::common::ADMIN.into(),
        crate::common::MGMT.into(),
    ))
    .await
    .unwrap();
    let s = crate::common::serve(ks, Vec::new(), signer);
    (g, s)
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_stalled_or_dead_server_is_5xx_in_bounded_time() {
    let (g, s) = own_garage().await;
    let loc = s.put_ok(bytes(300_000, 1)).await;
    assert_eq!(s.get(&loc).await.status(), 200);

    // stalled: the kernel still accepts connections, nobody answers
    signal(g.pid, "STOP");
    let t = Instant::now();
    let r = s.get(&loc).await;
    assert_eq!(r.status(), 504, "{}", r.text().await.unwrap_or_default());
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let t = Instant::now();
    let r = s.put(bytes(1000, 2)).await;
    assert!(r.status().is_server_error(), "{}", r.status());
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    let r = s.admin(Method::GET, "/index").await.send().await.unwrap();
    assert!(r.status().is_server_error());

    // back: served again
    signal(g.pid, "CONT");
    assert_eq!(s.get(&loc).await.status(), 200);

    // dead: connection refused
    signal(g.pid, "KILL");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    let r = s.get(&loc).await;
    assert_eq!(r.status(), 503);
    let msg = r.text().await.unwrap();
    assert!(
        msg.contains("S3 volume") && !msg.contains("X-Amz-Signature"),
        "{msg}"
    );
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_bad_credentials_fail_at_start_with_a_clear_error() {
    let g = garage::shared();
    let mut cfg = g.config(&unique_prefix("badcreds"));
    cfg.secret_access_key = Some("0".repeat(64));
    let err = tokio::task::spawn_blocking(move || keepstore::s3::S3Volume::open(&cfg).err())
        .await
        .unwrap()
        .expect("opening with a wrong secret must fail")
        .to_string();
    assert!(
        err.contains("403") && !err.contains(&"0".repeat(64)),
        "{err}"
    );
    let mut cfg = g.config(&unique_prefix("nobucket"));
    cfg.bucket = "no-such-bucket".into();
    let err = tokio::task::spawn_blocking(move || keepstore::s3::S3Volume::open(&cfg).err())
        .await
        .unwrap()
        .expect("a missing bucket must fail")
        .to_string();
    assert!(err.contains("no-such-bucket"), "{err}");
}
