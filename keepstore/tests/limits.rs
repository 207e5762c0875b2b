//! Every input has a limit, checked before work is done for it (issue 11 items 6 and 10,
//! and the bounds of DESIGN §7).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::Method;

use crate::common::{bytes, start, ADMIN, MGMT};

/// Sends `head` (no body follows) and returns the status line the server answers with
/// within 5 s, or "" if it answers nothing.
fn status_without_body(addr: std::net::SocketAddr, head: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_authenticates_before_reading_the_body() {
    let s = start(1).await;
    let addr = s.addr;
    // 50 MB announced, none sent: the 401 must come without waiting for the body
    let started = Instant::now();
    let line = tokio::task::spawn_blocking(move || {
        status_without_body(
            addr,
            "PUT /trash HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n",
        )
    })
    .await
    .unwrap();
    assert!(line.starts_with("HTTP/1.1 401"), "{line:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
    // a wrong token: 403, also without the body
    let line = tokio::task::spawn_blocking(move || {
        status_without_body(
            addr,
            "PUT /trash HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Length: 50000000\r\n\r\n",
        )
    })
    .await
    .unwrap();
    assert!(line.starts_with("HTTP/1.1 403"), "{line:?}");
    // the admin token with a body announced over the limit: 413 at once
    let line = tokio::task::spawn_blocking(move || {
        status_without_body(
            addr,
            &format!("PUT /trash HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nContent-Length: 50000000\r\n\r\n"),
        )
    })
    .await
    .unwrap();
    assert!(line.starts_with("HTTP/1.1 413"), "{line:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_bodies_have_named_limits() {
    let s = start(1).await;
    // chunked (no Content-Length) and over 16 MiB: refused while reading
    let big = vec![b' '; (16 << 20) + 1];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(
        big.chunks(1 << 20)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    ));
    let r = s
        .admin(Method::PUT, "/trash")
        .await
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let msg = r.text().await.unwrap();
    assert!(
        msg.contains("16777216") && msg.contains("trash list"),
        "{msg}"
    );

    // too many entries
    let item = format!(
        r#"{{"locator":"{}+1","block_mtime":1}}"#,
        keep_format::Hash::of(b"x")
    );
    let list = format!("[{}]", vec![item; 100_001].join(","));
    let r = s
        .admin(Method::PUT, "/trash")
        .await
        .body(list)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let msg = r.text().await.unwrap();
    assert!(msg.contains("100000"), "{msg}");

    // a locator over the length limit, in a list or a URL
    let long = format!("{}+1+K{}", keep_format::Hash::of(b"x"), "a".repeat(2000));
    let r = s
        .admin(Method::PUT, "/trash")
        .await
        .json(&serde_json::json!([{"locator": long, "block_mtime": 1}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("1024"));
    let r = s
        .client
        .get(format!("{}/{long}", s.base))
        .header("Authorization", s.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("1024"));

    // an index prefix over 64 characters
    let r = s
        .admin(Method::GET, &format!("/index/{}", "a".repeat(65)))
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("64"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_share_one_metrics_series() {
    let s = start(1).await;
    let loc = s.put_ok(bytes(10, 1)).await;
    for i in 0..40 {
        let m = Method::from_bytes(format!("FOO{i}").as_bytes()).unwrap();
        let r = s
            .client
            .request(m, format!("{}/{loc}", s.base))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    let text = s
        .client
        .get(format!("{}/metrics", s.base))
        .bearer_auth(MGMT)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("FOO"), "{text}");
    assert!(
        s.metric("keepstore_requests_total{method=\"OTHER\"").await >= 40.0,
        "{text}"
    );
}
