//! `PUT /pull`: a keepstore fetches blocks from another one, verified, with the root
//! token; each PUT replaces the queue; bad lists are refused.

use std::time::Duration;

use keep_format::Hash;
use reqwest::Method;

use crate::common::{bytes, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_copies_a_block_from_another_keepstore() {
    let a = start(1).await;
    let b = start(1).await;
    let body = bytes(300_000, 7);
    let loc = a.put_ok(body.clone()).await;
    let missing = Hash::of(b"nowhere");
    let list = serde_json::json!([
        {"locator": format!("{}+7", missing), "servers": [a.base]},
        {"locator": format!("{}+300000", loc.hash), "servers": ["http://127.0.0.1:9", a.base]},
    ]);
    let r = b
        .admin(Method::PUT, "/pull")
        .await
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["queued"], 2);
    let fresh = b.sign(loc.hash, 300_000);
    let mut ok = false;
    for _ in 0..100 {
        let r = b.get(&fresh).await;
        if r.status() == 200 {
            assert!(r.bytes().await.unwrap().as_ref() == body.as_slice());
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the block never arrived");
    assert_eq!(b.get(&b.sign(missing, 7)).await.status(), 404);
    // a new list replaces what was left; a pull of a block already here only touches it
    let list =
        serde_json::json!([{"locator": format!("{}+300000", loc.hash), "servers": [a.base]}]);
    let r = b
        .admin(Method::PUT, "/pull")
        .await
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_lists_are_checked() {
    let s = start(1).await;
    let r = s
        .client
        .put(format!("{}/pull", s.base))
        .json(&serde_json::json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let h = Hash::of(b"x");
    for bad in [
        serde_json::json!([{"locator": "nothex", "servers": []}]),
        serde_json::json!([{"locator": format!("{h}+1"), "servers": ["ftp://x"]}]),
        serde_json::json!([{"locator": format!("{h}+1"), "servers": vec!["http://x"; 17]}]),
        serde_json::json!({"not": "a list"}),
    ] {
        let r = s
            .admin(Method::PUT, "/pull")
            .await
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    assert_eq!(s.ks.pulls_queued(), 0);
}
