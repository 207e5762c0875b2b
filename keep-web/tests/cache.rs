//! keep-web reuses a token's view of a collection for about a second (so that a
//! 100,000-file manifest isn't fetched per request), yet a changed collection and a
//! revoked token show within that time.

use std::time::{Duration, Instant};

use crate::common::{start, Env};
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

/// Small ranges are served from 16 KiB groups kept in memory: every random range, cold
/// or warm, across group edges or not, is exactly the file's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_groups_give_exact_ranges() {
    let env = start().await;
    let tok = env.token_for(&env.alice_uuid, json!({})).await;
    let block = keep_testkit::bytes(200_000, 42);
    let loc = env.put_block(&tok, block.clone()).await;
    // the file starts 1,000 bytes into the block, so file and group edges differ
    let c = env
        .collection(
            &tok,
            "groups",
            None,
            &format!(". {loc} 1000:150000:f.bin\n"),
        )
        .await;
    let path = format!("/c={}/f.bin", Env::uuid(&c));
    let file = &block[1000..151_000];
    let mut x: u64 = 7;
    for round in 0..2 {
        for i in 0..200u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = [1u64, 100, 4096, 16384, 16385, 40_000][(i % 6) as usize];
            let start = (x >> 33) % (150_000 - len);
            let r = env
                .req("GET", "dl.example", &path)
                .bearer_auth(&tok)
                .header("Range", format!("bytes={start}-{}", start + len - 1))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 206, "round {round}");
            let got = r.bytes().await.unwrap();
            assert!(
                got[..] == file[start as usize..(start + len) as usize],
                "round {round}: bytes {start}+{len} differ"
            );
        }
    }
}
