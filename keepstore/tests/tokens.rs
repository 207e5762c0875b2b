//! Revocation and expiry reach blocks: keepstore asks the API whether a GET/HEAD's
//! token is still valid (issue 11 item 5), with a short cache; the API unreachable →
//! 503 with Retry-After, never a read.

use std::time::{Duration, SystemTime};

use keep_format::{Locator, Token};
use reqwest::Method;

use crate::common::{bytes, rfc3339, start_api, start_cfg, ROOT};

fn quick_check(api: &str) -> keepstore::TokenCheckConfig {
    keepstore::TokenCheckConfig {
        valid_for: Duration::from_millis(500),
        invalid_for: Duration::from_millis(500),
        ..keepstore::TokenCheckConfig::new(api)
    }
}

async fn put_as(s: &crate::common::Server, token: &str, body: Vec<u8>) -> Locator {
    let h = keep_format::Hash::of(&body);
    let r = s
        .client
        .put(format!("{}/{h}", s.base))
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap().parse().unwrap()
}

async fn get_as(s: &crate::common::Server, token: &str, loc: &Locator, m: Method) -> u16 {
    s.client
        .request(m, format!("{}/{loc}", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stops_reading_blocks() {
    let api = start_api().await;
    let s = start_cfg(1, Duration::from_secs(3600), |c| {
        c.token_check = Some(quick_check(&api.url))
    })
    .await;
    let tok = api.user("alice").await.token;
    let uuid = tok.split('/').nth(1).unwrap();
    let loc = put_as(&s, &tok, bytes(40_000, 1)).await;
    assert_eq!(get_as(&s, &tok, &loc, Method::GET).await, 200);
    assert_eq!(get_as(&s, &tok, &loc, Method::HEAD).await, 200);

    let (st, body) = api
        .call(
            Method::DELETE,
            &format!("/arvados/v1/api_client_authorizations/{uuid}"),
            ROOT,
            None,
        )
        .await;
    assert_eq!(st, 200, "{body}");
    // the signature is still good for an hour, but the cache forgets within 0.5 s
    tokio::time::sleep(Duration::from_millis(700)).await;
    let r = s
        .client
        .get(format!("{}/{loc}", s.base))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let msg = r.text().await.unwrap();
    assert!(msg.contains("revoked"), "{msg}");
    assert!(!msg.contains(&tok), "{msg}");
    assert_eq!(get_as(&s, &tok, &loc, Method::HEAD).await, 401);
    // the in-process path (keep-web inside keep serve) checks too
    let t: Token = tok.parse().unwrap();
    assert!(matches!(
        s.ks.read_slice(&loc, &t, 0, 10).await.err(),
        Some(keepstore::Error::TokenNotValid)
    ));
    // the root token needs no API call and still reads
    let root_loc = s
        .signer
        .sign(&loc.bare(), &ROOT.parse().unwrap(), SystemTime::now());
    assert_eq!(get_as(&s, ROOT, &root_loc, Method::GET).await, 200);
    assert!(
        s.metric("keepstore_token_checks_total{result=\"invalid\"}")
            .await
            >= 2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_stops_reading_blocks() {
    let api = start_api().await;
    let s = start_cfg(1, Duration::from_secs(3600), |c| {
        c.token_check = Some(quick_check(&api.url))
    })
    .await;
    let expires = SystemTime::now() + Duration::from_secs(3);
    let bob = api.user("bob").await;
    let tok = api
        .token_for(
            &bob.uuid,
            serde_json::json!({"expires_at": rfc3339(expires)}),
        )
        .await;
    let loc = put_as(&s, &tok, bytes(1000, 2)).await;
    assert_eq!(get_as(&s, &tok, &loc, Method::GET).await, 200);
    // the API's clock has seconds: wait past the expiry and the cache
    tokio::time::sleep(Duration::from_millis(4200)).await;
    assert_eq!(get_as(&s, &tok, &loc, Method::GET).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_answers_are_cached() {
    let api = start_api().await;
    let s = start_cfg(1, Duration::from_secs(3600), |c| {
        c.token_check = Some(keepstore::TokenCheckConfig::new(&api.url))
    })
    .await;
    let tok = api.user("carol").await.token;
    let loc = put_as(&s, &tok, bytes(1000, 3)).await;
    for _ in 0..5 {
        assert_eq!(get_as(&s, &tok, &loc, Method::GET).await, 200);
    }
    assert_eq!(
        s.metric("keepstore_token_checks_total{result=\"asked\"}")
            .await,
        1.0
    );
    assert_eq!(
        s.metric("keepstore_token_checks_total{result=\"cached\"}")
            .await,
        4.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_fails_closed_with_503() {
    // a port nothing listens on
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let s = start_cfg(1, Duration::from_secs(3600), |c| {
        c.token_check = Some(keepstore::TokenCheckConfig {
            timeout: Duration::from_secs(2),
            ..keepstore::TokenCheckConfig::new(&url)
        })
    })
    .await;
    let loc = s.put_ok(bytes(1000, 4)).await;
    let started = std::time::Instant::now();
    let r = s.get(&loc).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    assert!(started.elapsed() < Duration::from_secs(5));
    let msg = r.text().await.unwrap();
    assert!(!msg.contains(s.token.secret()), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_api_times_out_with_503() {
    // accepts connections (the kernel's backlog) but never answers
    let stalled = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", stalled.local_addr().unwrap());
    let s = start_cfg(1, Duration::from_secs(3600), |c| {
        c.token_check = Some(keepstore::TokenCheckConfig {
            timeout: Duration::from_millis(800),
            ..keepstore::TokenCheckConfig::new(&url)
        })
    })
    .await;
    let loc = s.put_ok(bytes(1000, 5)).await;
    let started = std::time::Instant::now();
    let r = s.get(&loc).await;
    assert_eq!(r.status(), 503);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(4),
        "{took:?}"
    );
    drop(stalled);
}
