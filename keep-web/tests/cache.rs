//! keep-web reuses a token's view of a collection for about a second (so that a
//! 100,000-file manifest isn't fetched per request), yet a changed collection and a
//! revoked token show within that time.

mod common;

use std::time::{Duration, Instant};

use common::{start, Env};
use serde_json::json;

/// Polls until `f` answers `want` (or fails after 5 s, well past keep-web's 1 s TTL).
async fn eventually<F, Fut>(what: &str, want: (u16, String), mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (u16, String)>,
{
    let t = Instant::now();
    loop {
        let got = f().await;
        if got == want {
            assert!(
                t.elapsed() < Duration::from_secs(3),
                "{what}: took {:?}",
                t.elapsed()
            );
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{what}: still {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn read(env: &Env, token: &str, path: &str) -> (u16, String) {
    let r = env
        .req("GET", "dl.example", path)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_collection_and_revoked_token_show_within_a_second() {
    let env = start().await;
    let uuid = Env::uuid(&env.c1);
    let path = format!("/c={uuid}/hello.txt");
    let tok = env.token_for(&env.alice_uuid, json!({})).await;
    assert_eq!(read(&env, &tok, &path).await, (200, "hello world\n".into()));

    // the collection changes: hello.txt now holds other bytes
    let loc = env.put_block(&tok, b"changed!\n".to_vec()).await;
    let r = env
        .http
        .put(format!("{}/arvados/v1/collections/{uuid}", env.api))
        .bearer_auth(&tok)
        .json(&json!({"collection": {"manifest_text": format!(". {loc} 0:9:hello.txt\n")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    eventually("the new content", (200, "changed!\n".into()), || {
        read(&env, &tok, &path)
    })
    .await;

    // the token is revoked
    let tok_uuid = tok.split('/').nth(1).unwrap().to_string();
    let r = env
        .http
        .delete(format!(
            "{}/arvados/v1/api_client_authorizations/{tok_uuid}",
            env.api
        ))
        .bearer_auth(&env.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t = Instant::now();
    loop {
        let (st, _) = read(&env, &tok, &path).await;
        if st == 401 || st == 404 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "a revoked token still reads after {:?}",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
