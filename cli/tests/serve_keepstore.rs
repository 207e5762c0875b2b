//! keepstore through the real `keep serve` process: round trips, crash safety, shutdown.

mod common;

use std::time::Duration;

use common::{bytes, files_under, Keep};
use keep_format::{Hash, Locator, Token};

const MIB: usize = 1 << 20;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

async fn put(c: &reqwest::Client, ks: &str, token: &Token, data: Vec<u8>) -> reqwest::Response {
    let hash = Hash::of(&data);
    c.put(format!("{ks}/{hash}"))
        .bearer_auth(token.expose())
        .body(data)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn size_table_round_trip() {
    let keep = Keep::start("");
    let c = client();
    let token = Token::generate_bare();
    for (i, len) in [0, 1, 64 * MIB - 1, 64 * MIB].into_iter().enumerate() {
        let data = bytes(len, i as u64);
        let res = put(&c, &keep.keepstore, &token, data.clone()).await;
        assert_eq!(res.status(), 200, "PUT {len}");
        let loc: Locator = res.text().await.unwrap().trim().parse().unwrap();
        assert_eq!(loc.size, len as u64);
        assert_eq!(loc.hash, Hash::of(&data));
        assert!(loc.signature().is_some());
        let res = c
            .get(format!("{}/{loc}", keep.keepstore))
            .bearer_auth(token.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "GET {len}");
        let got = res.bytes().await.unwrap();
        assert!(got[..] == data[..], "GET {len} bytes differ");
        let res = c
            .head(format!("{}/{loc}", keep.keepstore))
            .bearer_auth(token.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-length"], len.to_string().as_str());
        // without the token it is refused
        let res = c
            .get(format!("{}/{loc}", keep.keepstore))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    // 64 MiB + 1 is refused and leaves nothing behind
    let res = put(&c, &keep.keepstore, &token, bytes(64 * MIB + 1, 9)).await;
    assert_eq!(res.status(), 413);
    let leftovers: Vec<_> = files_under(&keep.path("keep"))
        .into_iter()
        .filter(|f| f.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn health_and_metrics_need_the_management_token() {
    let keep = Keep::start("");
    let c = client();
    let s = keep.secrets();
    for path in ["/_health/ping", "/metrics"] {
        let url = format!("{}{path}", keep.keepstore);
        assert_eq!(c.get(&url).send().await.unwrap().status(), 401, "{path}");
        assert_eq!(
            c.get(&url)
                .bearer_auth("wrong")
                .send()
                .await
                .unwrap()
                .status(),
            403,
            "{path}"
        );
        let ok = c
            .get(&url)
            .bearer_auth(&s.management_token)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "{path}");
    }
}

/// kill -9 in the middle of 50 concurrent PUTs, restart: every block answered 200 is
/// intact and readable, and no temp file survives the restart.
#[tokio::test]
async fn kill9_during_concurrent_puts_keeps_every_acknowledged_block() {
    let mut keep = Keep::start("");
    let c = client();
    let token = Token::generate_bare();
    let ks = keep.keepstore.clone();
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let (c, ks, token) = (c.clone(), ks.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let data = bytes(MIB + i as usize * 4096, 1000 + i);
            let hash = Hash::of(&data);
            let res = c
                .put(format!("{ks}/{hash}"))
                .bearer_auth(token.expose())
                .body(data.clone())
                .send()
                .await;
            match res {
                Ok(r) if r.status() == 200 => {
                    let loc: Locator = r.text().await.ok()?.trim().parse().ok()?;
                    Some((loc, data))
                }
                _ => None,
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    keep.kill9();
    let mut acked = Vec::new();
    for t in tasks {
        if let Ok(Some(x)) = t.await {
            acked.push(x);
        }
    }
    keep.restart();
    let tmp: Vec<_> = files_under(&keep.path("keep"))
        .into_iter()
        .filter(|f| f.starts_with("tmp/"))
        .collect();
    assert!(tmp.is_empty(), "temp files survived a restart: {tmp:?}");
    for (loc, data) in &acked {
        let res = c
            .get(format!("{}/{loc}", keep.keepstore))
            .bearer_auth(token.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "acknowledged block {loc:?} lost");
        assert!(res.bytes().await.unwrap()[..] == data[..]);
    }
    eprintln!(
        "{} of 50 PUTs were acknowledged before kill -9; all readable after restart",
        acked.len()
    );
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero() {
    let mut keep = Keep::start("");
    let c = client();
    let token = Token::generate_bare();
    let data = bytes(32 * MIB, 5);
    let res = put(&c, &keep.keepstore, &token, data.clone()).await;
    let loc: Locator = res.text().await.unwrap().trim().parse().unwrap();
    // start a download, then ask the server to stop while it is in flight
    let url = format!("{}/{loc}", keep.keepstore);
    let req = c.get(&url).bearer_auth(token.expose()).send();
    let res = req.await.unwrap();
    assert_eq!(res.status(), 200);
    let pid = keep.pid();
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
    let body = res.bytes().await.unwrap();
    assert_eq!(
        body.len(),
        data.len(),
        "the in-flight download was cut short"
    );
    let status = keep.terminate_wait();
    assert!(status.success(), "exit status {status:?}");
}
