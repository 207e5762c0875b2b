//! Benchmarks (not tests): `cargo test -p keep-api --release --test bench -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::json;

async fn time_it<F, Fut>(n: usize, mut f: F) -> (Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut v = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        v.push(t.elapsed());
    }
    v.sort();
    (v[v.len() / 2], v[v.len() * 9 / 10])
}

#[tokio::test]
#[ignore]
async fn bench_get_and_contents() {
    let s = std::sync::Arc::new(start().await);
    let admin = s.admin.clone();
    // a collection of 100,000 one-byte files in one block
    let block = vec![b'x'; 100_000];
    let loc = signed(&admin, &block);
    let mut m = format!(". {loc}");
    for i in 0..100_000 {
        m.push_str(&format!(" {i}:1:f{i:06}"));
    }
    m.push('\n');
    let t = Instant::now();
    let (st, c) = s
        .post(
            "/arvados/v1/collections",
            &admin,
            json!({"collection": {"manifest_text": m}}),
        )
        .await;
    assert_eq!(st, 200);
    println!("create, 100,000-file manifest: {:?}", t.elapsed());
    let uuid = c["uuid"].as_str().unwrap().to_string();
    let (med, p90) = time_it(20, || {
        let s = s.clone();
        let admin = admin.clone();
        let uuid = uuid.clone();
        async move {
            let (st, v) = s
                .get(&format!("/arvados/v1/collections/{uuid}"), &admin)
                .await;
            assert_eq!(st, 200);
            assert_eq!(v["file_count"], 100_000);
        }
    })
    .await;
    println!("GET collection by UUID, 100,000 files (signed manifest ~{} KB): median {med:?}, p90 {p90:?}",
        c["manifest_text"].as_str().unwrap().len() / 1024);

    // a project of 10,000 collections
    let p = s.project(&admin, "big", None).await;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..10 {
        let s = s.clone();
        let admin = admin.clone();
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..1000 {
                let (st, _) = s
                    .post(
                        "/arvados/v1/collections",
                        &admin,
                        json!({"collection": {"name": format!("c{w}-{i}"), "owner_uuid": p}}),
                    )
                    .await;
                assert_eq!(st, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let el = t.elapsed();
    println!(
        "10,000 creates (10 concurrent clients): {el:?} ({:.0}/s)",
        10_000.0 / el.as_secs_f64()
    );
    for limit in [100, 1000] {
        let (med, p90) = time_it(20, || {
            let s = s.clone();
            let admin = admin.clone();
            let p = p.clone();
            async move {
                let (st, v) = s
                    .get(
                        &format!("/arvados/v1/groups/{p}/contents?limit={limit}"),
                        &admin,
                    )
                    .await;
                assert_eq!(st, 200);
                assert_eq!(v["items_available"], 10_000);
            }
        })
        .await;
        println!("groups/<uuid>/contents of 10,000 collections, limit {limit}: median {med:?}, p90 {p90:?}");
    }
}
