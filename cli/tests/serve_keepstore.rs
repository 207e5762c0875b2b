//! keepstore through the real `keep serve` process: round trips, crash safety, shutdown.

use std::time::Duration;

use crate::support::{bytes, files_under, serve, Serve};
use keep_format::{Hash, Locator, Token};

const MIB: usize = 1 << 20;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// A token the API knows (keepstore checks a reader's token with the API, so a made-up
/// one may write but not read).
fn root_token(keep: &Serve) -> Token {
    keep.secrets()
        .system_root_token
        .parse()
        .expect("root token")
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
    let keep = serve();
    let c = client();
    let token = root_token(&keep);
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
    let keep = serve();
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
    let mut keep = serve();
    let c = client();
    let token = root_token(&keep);
    let ks = keep.keepstore.clone();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let (c, ks, token, done) = (c.clone(), ks.clone(), token.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let data = bytes(4 * MIB + i as usize * 4096, 1000 + i);
            let hash = Hash::of(&data);
            let res = c
                .put(format!("{ks}/{hash}"))
                .bearer_auth(token.expose())
                .body(data.clone())
                .send()
                .await;
            let out = match res {
                Ok(r) if r.status() == 200 => {
                    let loc: Option<Locator> =
                        r.text().await.ok().and_then(|t| t.trim().parse().ok());
                    loc.map(|l| (l, data))
                }
                _ => None,
            };
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            out
        }));
    }
    // kill once a few PUTs have been answered and the rest are still in flight
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while done.load(std::sync::atomic::Ordering::SeqCst) < 5 && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
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
    let mut keep = serve();
    let c = client();
    let token = root_token(&keep);
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
    // read slowly, so the transfer is still under way while the server shuts down
    use futures_util::StreamExt;
    let mut stream = res.bytes_stream();
    let mut got = 0usize;
    let started = std::time::Instant::now();
    while let Some(chunk) = stream.next().await {
        got += chunk.expect("the in-flight download was cut short").len();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(got, data.len(), "the in-flight download was cut short");
    eprintln!("download finished {:?} after SIGTERM", started.elapsed());
    let status = keep.terminate_wait();
    assert!(status.success(), "exit status {status:?}");
}

/// One log line a request, with a request id, and no credential anywhere in the log.
#[tokio::test]
async fn logs_have_request_ids_and_no_credentials() {
    let keep = serve();
    let c = client();
    let token = Token::generate_bare();
    let res = put(&c, &keep.keepstore, &token, b"secret data".to_vec()).await;
    let rid = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let loc: Locator = res.text().await.unwrap().trim().parse().unwrap();
    let (sig, _) = loc.signature().unwrap();
    let sig_hex = hex::encode(sig);
    // credentials in every place a client may put them
    let _ = c
        .get(format!(
            "{}/{loc}?api_token={}",
            keep.keepstore,
            token.secret()
        ))
        .bearer_auth(token.expose())
        .header("Cookie", format!("api_token={}", token.secret()))
        .send()
        .await
        .unwrap();
    let _ = c
        .get(format!("{}/index", keep.keepstore))
        .bearer_auth(&keep.secrets().system_root_token)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = keep.log();
    assert!(log.contains(&rid), "request id {rid} not logged:\n{log}");
    assert!(log.contains("status=200"), "{log}");
    for secret in [
        token.secret(),
        sig_hex.as_str(),
        keep.secrets().system_root_token.as_str(),
        keep.secrets().management_token.as_str(),
    ] {
        assert!(
            !log.contains(secret),
            "a credential reached the log:\n{log}"
        );
    }
}
