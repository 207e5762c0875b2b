//! Admin and management endpoints: index, trash, untrash, mounts, health, metrics.

use std::time::Duration;

use crate::common::{bytes, start, start_with, ADMIN, MGMT};
use keep_format::Hash;
use reqwest::Method;

fn parse_index(text: &str) -> Vec<(String, u64, u64)> {
    assert!(
        text.ends_with("\n\n") || text == "\n",
        "index must end with an empty line: {text:?}"
    );
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (loc, mtime) = l.split_once(' ').unwrap();
            let (hash, size) = loc.split_once('+').unwrap();
            (
                hash.to_string(),
                size.parse().unwrap(),
                mtime.parse().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_trash_untrash_round_trip() {
    // signatures live 1 s: blocks older than that may be trashed
    let s = start_with(2, Duration::from_secs(1), Duration::from_secs(3600)).await;
    let a = s.put_ok(bytes(5000, 1)).await;
    let b = s.put_ok(bytes(70_000, 2)).await;

    // index needs the admin token
    let r = s
        .client
        .get(format!("{}/index", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .client
        .get(format!("{}/index", s.base))
        .header("Authorization", "Bearer wrongtoken")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let text = s
        .admin(Method::GET, "/index")
        .await
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let idx = parse_index(&text);
    assert_eq!(idx.len(), 2);
    let entry = |h: &Hash| idx.iter().find(|e| e.0 == h.to_hex()).unwrap().clone();
    assert_eq!(entry(&a.hash).1, 5000);
    assert_eq!(entry(&b.hash).1, 70_000);

    // prefix
    let p = a.hash.hex_prefix(4);
    let text = s
        .admin(Method::GET, &format!("/index/{p}"))
        .await
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let only = parse_index(&text);
    assert!(only.iter().any(|e| e.0 == a.hash.to_hex()));
    assert!(only.iter().all(|e| e.0.starts_with(&p)));
    let r = s
        .admin(Method::GET, "/index/XYZ")
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // too new to trash (a signature may still be valid), and a wrong mtime is skipped
    let body = serde_json::json!([
        {"locator": format!("{}+5000", a.hash), "block_mtime": entry(&a.hash).2},
    ]);
    let r = s
        .admin(Method::PUT, "/trash")
        .await
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"trashed": 0, "skipped": 1})
    );

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let body = serde_json::json!([
        {"locator": format!("{}+5000", a.hash), "block_mtime": entry(&a.hash).2},
        {"locator": format!("{}+70000", b.hash), "block_mtime": entry(&b.hash).2 + 1},
        {"locator": format!("{}+1", Hash::of(b"none")), "block_mtime": 1},
    ]);
    let r = s
        .admin(Method::PUT, "/trash")
        .await
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"trashed": 1, "skipped": 2})
    );

    // trashed: not served, not indexed (a fresh signature: the old one expired)
    let fresh_a = s.sign(a.hash, 5000);
    assert_eq!(s.get(&fresh_a).await.status(), 404);
    let idx = parse_index(
        &s.admin(Method::GET, "/index")
            .await
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(idx.len(), 1);

    // untrash brings it back
    let r = s
        .admin(Method::PUT, &format!("/untrash/{}+5000", a.hash))
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s.get(&fresh_a).await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().as_ref() == bytes(5000, 1).as_slice());
    let r = s
        .admin(Method::PUT, &format!("/untrash/{}+5000", a.hash))
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // a malformed trash body is a 400
    let r = s
        .admin(Method::PUT, "/trash")
        .await
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // untrash needs the admin token
    let r = s
        .client
        .put(format!("{}/untrash/{}+5000", s.base, a.hash))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeper_deletes_expired_trash() {
    let s = start_with(1, Duration::from_secs(0), Duration::from_secs(0)).await;
    let a = s.put_ok(bytes(3000, 3)).await;
    let text = s
        .admin(Method::GET, "/index")
        .await
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mtime = parse_index(&text)[0].2;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let body = serde_json::json!([{"locator": format!("{}+3000", a.hash), "block_mtime": mtime}]);
    let r = s
        .admin(Method::PUT, "/trash")
        .await
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["trashed"], 1);
    assert_eq!(s.ks.sweep_trash().await.unwrap(), 1);
    s.assert_clean().await;
    let r = s
        .admin(Method::PUT, &format!("/untrash/{}+3000", a.hash))
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_json() {
    let s = start(2).await;
    s.put_ok(bytes(100, 1)).await;
    let r = s.admin(Method::GET, "/mounts").await.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    let mut blocks = 0;
    for (m, d) in arr.iter().zip(&s.dirs) {
        assert!(m["uuid"].as_str().unwrap().starts_with("vol-"));
        assert_eq!(m["path"], d.path().display().to_string());
        assert_eq!(m["read_only"], false);
        assert!(m["total_bytes"].as_u64().unwrap() > 0);
        assert!(m["free_bytes"].as_u64().unwrap() <= m["total_bytes"].as_u64().unwrap());
        blocks += m["block_count"].as_u64().unwrap();
    }
    assert_eq!(blocks, 1);
    let r = s
        .client
        .get(format!("{}/mounts", s.base))
        .header("Authorization", format!("Bearer {MGMT}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_need_the_management_token() {
    let s = start(1).await;
    for path in ["/_health/ping", "/metrics"] {
        let url = format!("{}{path}", s.base);
        assert_eq!(
            s.client.get(&url).send().await.unwrap().status(),
            401,
            "{path}"
        );
        let r = s
            .client
            .get(&url)
            .header("Authorization", format!("Bearer {ADMIN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
        let r = s
            .client
            .get(&url)
            .header("Authorization", format!("Bearer {MGMT}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = s
        .client
        .get(format!("{}/_health/ping", s.base))
        .header("Authorization", format!("Bearer {MGMT}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"health": "OK"})
    );

    let loc = s.put_ok(bytes(2000, 1)).await;
    assert_eq!(s.get(&loc).await.bytes().await.unwrap().len(), 2000);
    let m = s.metrics().await;
    for want in [
        "keepstore_requests_total{",
        "keepstore_bytes_in_total 2000",
        "keepstore_bytes_out_total 2000",
        "keepstore_corrupt_blocks_total 0",
        "keepstore_volume_free_bytes{volume=\"vol-",
        "keepstore_volume_read_bytes_total{volume=\"vol-",
    ] {
        assert!(m.contains(want), "metrics lack {want:?}:\n{m}");
    }
    assert!(
        s.metric("keepstore_requests_total{method=\"PUT\",code=\"200\"}")
            .await
            >= 1.0,
        "{m}"
    );
    assert!(
        s.metric("keepstore_requests_total{method=\"GET\",code=\"401\"}")
            .await
            >= 1.0,
        "{m}"
    );
}
