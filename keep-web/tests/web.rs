//! keep-web against a real keepstore and API, over real sockets: each rule of DESIGN §5
//! tested once, here. (What only the whole `keep serve` shows — its defaults, config,
//! access log, real clients — is in cli/tests/web/.) One test binary: `cache` is a
//! module of it.

mod cache;
mod common;

use base64::Engine;
use common::{Env, HELLO, SIZES};
use serde_json::json;

/// Any host that is neither a collection vhost nor the download host.
const SHARED: &str = "127.0.0.1";
const DL: &str = "dl.example";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A `v2/…` token with its `/` escaped for a `t=` path element or a query value.
fn esc(t: &str) -> String {
    t.replace('/', "%2F")
}

/// alice's GET on the download host.
async fn get_dl(e: &Env, path: &str) -> (u16, String) {
    let r = e
        .req("GET", DL, path)
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn propfind(
    e: &Env,
    host: &str,
    path: &str,
    depth: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut r = e.req("PROPFIND", host, path).bearer_auth(&e.alice);
    if let Some(d) = depth {
        r = r.header("Depth", d);
    }
    let r = r.body(body.to_string()).send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.text().await.unwrap())
}

fn responses(xml: &str) -> usize {
    xml.matches("<D:response>").count()
}

/// Fails unless `x` is well-formed XML.
fn assert_xml(x: &str) {
    let mut r = quick_xml::Reader::from_str(x);
    loop {
        match r.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(err) => panic!("PROPFIND body is not XML: {err}\n{x}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhost_credential_sources() {
    let e = common::start().await;
    let vh = Env::vhost(&e.c1);
    let dash = format!("{}--localhost", e.c1.uuid);
    let ok = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), HELLO);
    };
    // Bearer and the api_token cookie (base64 of the token), on both vhost forms
    for h in [&vh, &dash] {
        ok(e.req("GET", h, "/hello.txt")
            .bearer_auth(&e.alice)
            .send()
            .await
            .unwrap())
        .await;
        ok(e.req("GET", h, "/hello.txt")
            .header("Cookie", format!("other=1; api_token={}", b64(&e.alice)))
            .send()
            .await
            .unwrap())
        .await;
    }
    // Basic: any non-empty user name, the token as password
    ok(e.req("GET", &vh, "/hello.txt")
        .basic_auth("anyone", Some(&e.alice))
        .send()
        .await
        .unwrap())
    .await;
    // a query token on a WebDAV method is an ordinary credential: no redirect
    let r = e
        .req(
            "PROPFIND",
            &vh,
            &format!("/hello.txt?api_token={}", esc(&e.alice)),
        )
        .header("Depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    // (a query token on GET is the 303 flow: its own test)
    // the t= path token on a vhost
    ok(
        e.req("GET", &vh, &format!("/t={}/hello.txt", esc(&e.alice)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    // the order: Bearer comes first; a source that can't see it falls through to the next
    let r = e
        .req("GET", &vh, "/hello.txt")
        .bearer_auth(&e.bob)
        .header("Cookie", format!("api_token={}", b64(&e.alice)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "bob's Bearer falls through to alice's cookie"
    );

    // nothing: 401 with the Basic challenge
    let r = e.req("GET", &vh, "/hello.txt").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Basic realm=\"collections\""
    );
    // Basic with an empty user name is not a credential
    let r = e
        .req("GET", &vh, "/hello.txt")
        .basic_auth("", Some(&e.alice))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // a token that does not exist (either form): 401; a valid one that can't see it: 404
    for bad in ["nosuchtoken", "v2/zzzzz-gj3su-000000000000000/nosuchsecret"] {
        let r = e
            .req("GET", &vh, "/hello.txt")
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{bad}");
    }
    let r = e
        .req("GET", &vh, "/hello.txt")
        .bearer_auth(&e.bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "existence never leaks");
    let r = e
        .req("GET", &Env::vhost(&e.c_bob), "/secret.txt")
        .bearer_auth(&e.bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_host_header_ignores_client_tokens() {
    let e = common::start().await;
    let c1 = &e.c1.uuid;
    // HTTP/1.0 allows no Host: alice's Bearer is not honoured, only the anonymous token
    let st = e.raw_status(&format!(
        "GET /c={c1}/hello.txt HTTP/1.0\r\nAuthorization: Bearer {}\r\n\r\n",
        e.alice
    ));
    assert!(st.contains(" 401 "), "{st}");
    // the same with the download host named: 200
    let st = e.raw_status(&format!(
        "GET /c={c1}/hello.txt HTTP/1.0\r\nHost: {DL}\r\nAuthorization: Bearer {}\r\n\r\n",
        e.alice
    ));
    assert!(st.contains(" 200 "), "{st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_token_redirects_to_cookie() {
    let e = common::start().await;
    let port = e.web_addr.port();
    let vh = Env::vhost(&e.c1);
    for host in [vh.clone(), DL.to_string()] {
        let base = if host == DL {
            format!("/c={}", e.c1.uuid)
        } else {
            String::new()
        };
        let r = e
            .req(
                "GET",
                &host,
                &format!("{base}/hello.txt?a=1&api_token={}&b=2", esc(&e.alice)),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{host}");
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(loc, format!("//{host}:{port}{base}/hello.txt?a=1&b=2"));
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        for attr in ["Path=/", "HttpOnly", "SameSite=Lax"] {
            assert!(cookie.contains(attr), "{cookie}");
        }
        assert!(!cookie.contains("Secure"), "{cookie}");
        let kv = cookie.split(';').next().unwrap().to_string();
        assert_eq!(kv, format!("api_token={}", b64(&e.alice)));
        // follow it as a browser does: scheme-relative Location, the cookie sent back
        let path = loc.strip_prefix(&format!("//{host}:{port}")).unwrap();
        let r = e
            .req("GET", &host, path)
            .header("Cookie", kv)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        if host == DL {
            assert!(r.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment"));
        }
        assert_eq!(r.text().await.unwrap(), HELLO);
    }
    // behind https (X-Forwarded-Proto): the cookie is Secure
    let r = e
        .req(
            "GET",
            &vh,
            &format!("/hello.txt?api_token={}", esc(&e.alice)),
        )
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Secure"));
    // HEAD redirects too
    let r = e
        .req(
            "HEAD",
            &vh,
            &format!("/hello.txt?api_token={}", esc(&e.alice)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // POST forms: urlencoded and multipart
    let r = e
        .req("POST", &vh, "/hello.txt?x=y")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("api_token={}", esc(&e.alice)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("//{vh}:{port}/hello.txt?x=y")
    );
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with(&format!("api_token={}", b64(&e.alice))));
    let r = e
        .req("POST", &vh, "/hello.txt")
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"api_token\"\r\n\r\n{}\r\n--XyZ--\r\n",
            e.alice
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with(&format!("api_token={}", b64(&e.alice))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_host_ignores_credentials_and_refuses_query_tokens() {
    let e = common::start().await;
    let path = format!("/c={}/hello.txt", e.c1.uuid);
    let r = e
        .req(
            "GET",
            SHARED,
            &format!("{path}?api_token={}", esc(&e.alice)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("refused on this host"));
    let r = e
        .req("POST", SHARED, &path)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("api_token={}", esc(&e.alice)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Bearer, Basic and cookie are ignored here: only the anonymous token applies
    for r in [
        e.req("GET", SHARED, &path).bearer_auth(&e.alice),
        e.req("GET", SHARED, &path).basic_auth("x", Some(&e.alice)),
        e.req("GET", SHARED, &path)
            .header("Cookie", format!("api_token={}", b64(&e.alice))),
    ] {
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    // public data (readable by the anonymous user) is served to anyone here
    let (st, l) = e
        .post(
            "/arvados/v1/links",
            &e.alice,
            json!({"link": {"link_class": "permission", "name": "can_read",
                "tail_uuid": "zzzzz-tpzed-anonymouspublic", "head_uuid": e.c_in_proj.uuid}}),
        )
        .await;
    assert_eq!(st, 200, "{l}");
    let r = e
        .req("GET", SHARED, &format!("/c={}/hello.txt", e.c_in_proj.uuid))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), HELLO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_host_forces_attachment() {
    let e = common::start().await;
    for file in ["hello.txt", "index.html"] {
        let r = e
            .req("GET", DL, &format!("/c={}/{file}", e.c1.uuid))
            .bearer_auth(&e.alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let cd = r.headers()["content-disposition"].to_str().unwrap();
        assert!(cd.starts_with("attachment") && cd.contains(file), "{cd}");
    }
    // on its own vhost a file is inline, HTML too
    let r = e
        .req("GET", &Env::vhost(&e.c1), "/index.html")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key("content-disposition"));
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_url() {
    let e = common::start().await;
    let c1 = e.c1.uuid.clone();
    let share = e
        .token_for(
            &e.alice_uuid,
            json!({"scopes": [format!("GET /arvados/v1/collections/{c1}"), format!("GET /arvados/v1/collections/{c1}/")]}),
        )
        .await;
    let secret = share.rsplit('/').next().unwrap();
    // bare secret and v2 form with %2F, on the shared host and the download host, with
    // no other credential or beside bob's (which it replaces)
    for t in [secret.to_string(), esc(&share)] {
        for host in [SHARED, DL] {
            let r = e
                .req("GET", host, &format!("/c={c1}/t={t}/_/hello.txt"))
                .bearer_auth(&e.bob)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{host} t={t}");
            assert_eq!(r.text().await.unwrap(), HELLO);
        }
        let r = e
            .req("GET", SHARED, &format!("/c={c1}/t={t}/_/sub/a.txt"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "t={t}");
    }
    let path = format!("/c={c1}/t={secret}/_/");
    // its listing links stay under the sharing URL
    let r = e.req("GET", SHARED, &path).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("href=\"./hello.txt\""), "{page}");
    assert!(page.contains("href=\"./sub/\""), "{page}");
    // PROPFIND with it (what rclone and cadaver do)
    let r = e
        .req("PROPFIND", SHARED, &path)
        .header("Depth", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    // refused on another collection of the same user: 404, in every form
    let c2 = e.c_in_proj.uuid.clone();
    for p in [
        format!("/c={c2}/t={secret}/hello.txt"),
        format!("/c={c2}/t={secret}/_/"),
    ] {
        let r = e.req("GET", SHARED, &p).send().await.unwrap();
        assert_eq!(r.status(), 404, "{p}");
    }
    let r = e
        .req(
            "GET",
            &Env::vhost(&e.c_in_proj),
            &format!("/t={secret}/hello.txt"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // a sharing token reads; it may not write
    let r = e
        .req("PUT", SHARED, &format!("{path}new.txt"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    for m in ["PUT", "DELETE", "MKCOL", "MOVE", "COPY", "PROPPATCH"] {
        let r = e
            .req(m, SHARED, &format!("{path}new.txt"))
            .header("Destination", format!("{path}moved.txt"))
            .body("x")
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        assert!(st == 403 || st == 405, "{m}: {st}");
    }
    let (st, c) = e
        .get(&format!("/arvados/v1/collections/{c1}"), &e.alice)
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        c["portable_data_hash"],
        e.c1.pdh.as_str(),
        "nothing changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_t_token_is_404() {
    let e = common::start().await;
    let c1 = &e.c1.uuid;
    let vh = Env::vhost(&e.c1);
    // 404, not 401, even beside a valid credential and where the anonymous token applies
    for (host, p) in [
        (SHARED, format!("/c={c1}/t=bogus123/hello.txt")),
        (DL, format!("/c={c1}/t=bogus123/_/hello.txt")),
        (vh.as_str(), "/t=bogus123/hello.txt".to_string()),
        (
            vh.as_str(),
            "/t=v2%2Fzzzzz-gj3su-000000000000000%2Fnope/".to_string(),
        ),
    ] {
        for alice in [false, true] {
            let mut r = e.req("GET", host, &p);
            if alice {
                r = r.bearer_auth(&e.alice);
            }
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), 404, "{host}{p}");
            assert!(!r.headers().contains_key("www-authenticate"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn underscore_escape() {
    let e = common::start().await;
    let vh = Env::vhost(&e.c1);
    // `_` after the token is dropped, so `t=x` is a directory name
    let r = e
        .req(
            "GET",
            SHARED,
            &format!("/c={}/t={}/_/t=x/y.txt", e.c1.uuid, esc(&e.alice)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), HELLO);
    let r = e
        .req("GET", &vh, "/_/t=x/y.txt")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), HELLO);
    // without the escape `t=x` is a (bogus) token; only one `_` is dropped
    for p in ["/t=x/y.txt", "/_/_/t=x/y.txt"] {
        let r = e
            .req("GET", &vh, p)
            .bearer_auth(&e.alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges() {
    let e = common::start().await;
    let big = e.big.clone();
    let len = big.len();
    let vh = Env::vhost(&e.c1);
    let get = |range: String, if_range: Option<String>| {
        let mut r = e
            .req("GET", &vh, "/big.bin")
            .bearer_auth(&e.alice)
            .header("Range", range);
        if let Some(i) = if_range {
            r = r.header("If-Range", i);
        }
        r.send()
    };
    let r = e
        .req("GET", &vh, "/big.bin")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.headers()["content-length"], len.to_string().as_str());
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let lm = r.headers()["last-modified"].to_str().unwrap().to_string();
    assert!(r.bytes().await.unwrap() == big, "whole file");
    let (b1, b2) = (SIZES[0], SIZES[0] + SIZES[1]);
    // single ranges: inside a block, across each boundary, over all three blocks,
    // the last byte of a block and the first of the next
    for (a, b) in [
        (0, 9),
        (b1 - 10, b1 + 9),
        (b1 - 1, b1),
        (b2 - 1, b2),
        (b1 - 1, b2),
        (5, len - 5),
        (b2 + 7, len - 1),
        (len - 1, len - 1),
        (10, len + 1000), // last-pos past the end: clipped
    ] {
        let r = get(format!("bytes={a}-{b}"), None).await.unwrap();
        assert_eq!(r.status(), 206, "{a}-{b}");
        let end = b.min(len - 1);
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes {a}-{end}/{len}")
        );
        assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
        assert!(r.bytes().await.unwrap() == big[a..=end], "{a}-{b}");
    }
    // suffix
    let r = get("bytes=-50000".into(), None).await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes {}-{}/{len}", len - 50000, len - 1)
    );
    assert!(r.bytes().await.unwrap() == big[len - 50000..]);
    let r = get(format!("bytes=-{}", len * 2), None).await.unwrap();
    assert_eq!(r.status(), 206);
    assert!(r.bytes().await.unwrap() == big);
    // open-ended, from inside the first block across both boundaries
    let r = get(format!("bytes={}-", b1 - 3), None).await.unwrap();
    assert_eq!(r.status(), 206);
    assert!(r.bytes().await.unwrap() == big[b1 - 3..]);
    // several ranges: multipart/byteranges, CRLF, one boundary not in the data
    let ranges = [
        (0usize, 1usize),
        (b1 - 2, b1 + 1),
        (b2 - 2, b2 + 1),
        (len - 3, len - 1),
    ];
    let spec = ranges
        .iter()
        .map(|(a, b)| format!("{a}-{b}"))
        .collect::<Vec<_>>()
        .join(",");
    let r = get(format!("bytes={spec}"), None).await.unwrap();
    assert_eq!(r.status(), 206);
    assert!(!r.headers().contains_key("content-range"));
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("{ct}"))
        .to_string();
    let body = r.bytes().await.unwrap();
    let mut want = Vec::new();
    for (a, b) in ranges {
        want.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\
                 Content-Range: bytes {a}-{b}/{len}\r\n\r\n"
            )
            .as_bytes(),
        );
        want.extend_from_slice(&big[a..=b]);
    }
    want.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    assert!(body == want, "multipart body");
    // unsatisfiable: 416 with bytes */len
    for spec in [
        format!("bytes={len}-"),
        format!("bytes={}-{}", len + 5, len + 9),
    ] {
        let r = get(spec.clone(), None).await.unwrap();
        assert_eq!(r.status(), 416, "{spec}");
        assert_eq!(r.headers()["content-range"], format!("bytes */{len}"));
    }
    // malformed or not bytes: ignored, the whole file
    for spec in ["bytes=x-y", "items=0-1"] {
        let r = get(spec.into(), None).await.unwrap();
        assert_eq!(r.status(), 200, "{spec}");
        assert_eq!(r.bytes().await.unwrap().len(), len);
    }
    // If-Range: the current ETag or Last-Modified honours the Range; another ETag
    // gets the whole file
    for v in [etag.clone(), lm.clone()] {
        let r = get(format!("bytes={b1}-{}", b1 + 3), Some(v.clone()))
            .await
            .unwrap();
        assert_eq!(r.status(), 206, "If-Range {v}");
        assert!(r.bytes().await.unwrap() == big[b1..b1 + 4]);
    }
    let r = get("bytes=0-9".into(), Some("\"other\"".into()))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap() == big);
    // HEAD with a Range
    let r = e
        .req("HEAD", &vh, "/big.bin")
        .bearer_auth(&e.alice)
        .header("Range", format!("bytes={}-{}", b1 - 1, b1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-length"], "2");
    assert!(r.bytes().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditionals_head_and_etag() {
    let e = common::start().await;
    let vh = Env::vhost(&e.c1);
    let head = |p: &'static str| e.req("HEAD", &vh, p).bearer_auth(&e.alice).send();
    let r = head("/big.bin").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        e.big.len().to_string().as_str()
    );
    let big_etag = r.headers()["etag"].clone();
    assert!(r.bytes().await.unwrap().is_empty());
    let r = head("/hello.txt").await.unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let lm = r.headers()["last-modified"].to_str().unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"),
        "{etag}"
    );
    for (h, v) in [
        ("If-None-Match", etag.clone()),
        ("If-None-Match", format!("\"x\", {etag}")),
        ("If-None-Match", "*".to_string()),
        ("If-Modified-Since", lm.clone()),
        (
            "If-Modified-Since",
            "Fri, 01 Jan 2100 00:00:00 GMT".to_string(),
        ),
    ] {
        for m in ["GET", "HEAD"] {
            let r = e
                .req(m, &vh, "/hello.txt")
                .bearer_auth(&e.alice)
                .header(h, &v)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 304, "{m} {h}: {v}");
            assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
            assert!(r.bytes().await.unwrap().is_empty());
        }
    }
    for (h, v) in [
        ("If-None-Match", "\"other\"".to_string()),
        (
            "If-Modified-Since",
            "Sat, 01 Jan 2000 00:00:00 GMT".to_string(),
        ),
    ] {
        let r = e
            .req("GET", &vh, "/hello.txt")
            .bearer_auth(&e.alice)
            .header(h, &v)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{h}: {v}");
    }
    // If-None-Match wins over If-Modified-Since
    let r = e
        .req("GET", &vh, "/hello.txt")
        .bearer_auth(&e.alice)
        .header("If-None-Match", "\"other\"")
        .header("If-Modified-Since", &lm)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // the ETag comes from the file's content: the same bytes under another name or in
    // another collection share it; the file keeps it when another file changes
    assert_ne!(big_etag.to_str().unwrap(), etag);
    let r = head("/sub/a.txt").await.unwrap();
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    let r = e
        .req("HEAD", &Env::vhost(&e.c_in_proj), "/hello.txt")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    let l = e.hello_loc.clone();
    let lb = e.put_block(&e.alice, b"new file".to_vec()).await;
    let path = format!("/arvados/v1/collections/{}", e.c1.uuid);
    let (st, c) = e.get(&path, &e.alice).await;
    assert_eq!(st, 200);
    let m = format!(
        "{}./new {lb} 0:8:n.txt\n./other {l} 0:12:a.txt\n",
        c["manifest_text"].as_str().unwrap()
    );
    let (st, v) = e
        .call(
            reqwest::Method::PUT,
            &path,
            &e.alice,
            Some(json!({"collection": {"manifest_text": m}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_ne!(v["portable_data_hash"], e.c1.pdh.as_str());
    // keep-web sees the new version (its cache follows the PDH) and the old files
    // keep their ETags
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = head("/new/n.txt").await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "new version not seen: {}",
            r.status()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        head("/hello.txt").await.unwrap().headers()["etag"]
            .to_str()
            .unwrap(),
        etag
    );
    assert_eq!(head("/big.bin").await.unwrap().headers()["etag"], big_etag);
    let r = e
        .req("GET", &vh, "/hello.txt")
        .bearer_auth(&e.alice)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdh_forms_are_immutable() {
    let e = common::start().await;
    let pdh = e.c1.pdh.clone();
    let (hash, size) = pdh.split_once('+').unwrap();
    let label = format!(
        "{}-{size}",
        hash.parse::<keep_format::Hash>().unwrap().to_base32()
    );
    for host in [format!("{label}.localhost"), format!("{label}--localhost")] {
        let r = e
            .req("GET", &host, "/sub/a.txt")
            .bearer_auth(&e.alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{host}");
        assert!(r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
        assert_eq!(r.text().await.unwrap(), HELLO);
        // a range under the PDH
        let r = e
            .req("GET", &host, "/big.bin")
            .bearer_auth(&e.alice)
            .header("Range", format!("bytes={}-{}", SIZES[0] - 1, SIZES[0]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        assert!(r.bytes().await.unwrap() == e.big[SIZES[0] - 1..=SIZES[0]]);
        // writes under a PDH: 405
        let r = e
            .req("PUT", &host, "/new.txt")
            .bearer_auth(&e.alice)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);
    }
    // in /c=, ` ` and `-` may stand for `+`
    for id in [
        pdh.clone(),
        format!("{hash}-{size}"),
        format!("{hash}%20{size}"),
        pdh.replace('+', "%2B"),
    ] {
        let (st, x) = get_dl(&e, &format!("/c={id}/hello.txt")).await;
        assert_eq!((st, x.as_str()), (200, HELLO), "{id}");
    }
    // by_id by PDH: immutable too; by UUID: not immutable
    let r = e
        .req("GET", DL, &format!("/by_id/{pdh}/big.bin"))
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert!(r.bytes().await.unwrap() == e.big);
    for (host, p) in [
        (DL.to_string(), format!("/by_id/{}/hello.txt", e.c1.uuid)),
        (Env::vhost(&e.c1), "/hello.txt".to_string()),
    ] {
        let r = e
            .req("GET", &host, &p)
            .bearer_auth(&e.alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(!r.headers().contains_key("cache-control"), "{host}{p}");
    }
    // bob can't read it by PDH either
    let r = e
        .req("GET", &format!("{label}.localhost"), "/hello.txt")
        .bearer_auth(&e.bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_redirect_and_html_listing() {
    let e = common::start().await;
    let c1 = &e.c1.uuid;
    let vh = Env::vhost(&e.c1);
    // no trailing slash: 303 to the slash form (query kept)
    for (p, want) in [
        (format!("/c={c1}"), format!("/c={c1}/")),
        (format!("/c={c1}/sub"), format!("/c={c1}/sub/")),
        ("/users".to_string(), "/users/".to_string()),
        (format!("/c={c1}/sub?x=1"), format!("/c={c1}/sub/?x=1")),
    ] {
        let r = e
            .req("GET", DL, &p)
            .bearer_auth(&e.alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{p}");
        assert_eq!(r.headers()["location"], want.as_str(), "{p}");
    }
    // the listing of one level, never index.html, names escaped
    let r = e
        .req("GET", DL, &format!("/c={c1}/"))
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(
        !r.headers().contains_key("content-disposition"),
        "a listing is not an attachment"
    );
    let page = r.text().await.unwrap();
    assert_ne!(page, HELLO, "index.html is listed, not served");
    for link in [
        "./big.bin",
        "./hello.txt",
        "./index.html",
        "./sub/",
        "./t=x/",
    ] {
        assert!(page.contains(&format!("href=\"{link}\"")), "{link}: {page}");
    }
    assert!(page.contains(&e.big.len().to_string()), "sizes: {page}");
    assert!(page.contains("&lt;i&gt;&amp;.txt"), "{page}");
    assert!(!page.contains("<i>"), "names are escaped");
    assert!(!page.contains("a.txt"), "one level only");
    // a link under the t= escape still reaches the directory literally named t=x
    let r = e
        .req("GET", &vh, "/_/t=x/")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("href=\"./y.txt\""));
    // the same page on the vhost, and a missing name
    let r = e
        .req("GET", &vh, "/sub/")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("href=\"./a.txt\""));
    let (st, _) = get_dl(&e, &format!("/c={c1}/nosuch")).await;
    assert_eq!(st, 404);
    let (st, _) = get_dl(&e, &format!("/c={c1}/hello.txt/")).await;
    assert!((400..500).contains(&st), "a file with a slash: {st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propfind_depths() {
    let e = common::start().await;
    let vh = Env::vhost(&e.c1);
    // Depth 0
    let (st, x) = propfind(&e, &vh, "/", Some("0"), "").await;
    assert_eq!(st, 207);
    assert_eq!(responses(&x), 1, "{x}");
    assert!(x.contains("<D:collection/>"), "{x}");
    // Depth 1: root + big.bin hello.txt <i>&.txt index.html sub t=x
    let (st, x) = propfind(&e, &vh, "/", Some("1"), "").await;
    assert_eq!(st, 207);
    assert_eq!(responses(&x), 7, "{x}");
    assert_xml(&x);
    assert!(x.contains(&format!(
        "<D:getcontentlength>{}</D:getcontentlength>",
        e.big.len()
    )));
    assert!(x.contains("<D:href>/sub/</D:href>"), "{x}");
    assert!(x.contains("&lt;i&gt;&amp;.txt"));
    for p in [
        "resourcetype",
        "displayname",
        "getlastmodified",
        "getcontenttype",
        "getetag",
        "creationdate",
        "supportedlock",
    ] {
        assert!(x.contains(&format!("<D:{p}")), "{p}: {x}");
    }
    // getetag: the ETag header exactly, literal quotes (not &quot;)
    let r = e
        .req("HEAD", &vh, "/hello.txt")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(x.contains(&format!("<D:getetag>{etag}</D:getetag>")), "{x}");
    assert!(!x.contains("&quot;"), "{x}");
    // Depth 1 of a file is that file
    let (st, x) = propfind(&e, &vh, "/sub/a.txt", Some("1"), "").await;
    assert_eq!((st, responses(&x)), (207, 1));
    // Depth infinity inside one collection: the whole tree
    let (st, x) = propfind(&e, &vh, "/", Some("infinity"), "").await;
    assert_eq!(st, 207);
    assert_eq!(responses(&x), 9, "{x}");
    assert!(x.contains("<D:href>/sub/a.txt</D:href>"));
    assert!(x.contains("<D:href>/t=x/y.txt</D:href>"));
    // no Depth means infinity
    let (st, x) = propfind(&e, DL, &format!("/c={}/", e.c1.uuid), None, "").await;
    assert_eq!((st, responses(&x)), (207, 9));
    // allprop and prop bodies
    for body in [
        "<?xml version=\"1.0\"?><D:propfind xmlns:D=\"DAV:\"><D:allprop/></D:propfind>",
        "<?xml version=\"1.0\"?><propfind xmlns=\"DAV:\"><prop><getetag/><getcontentlength/></prop></propfind>",
        "<D:propfind xmlns:D=\"DAV:\"><D:propname/></D:propfind>",
    ] {
        let (st, x) = propfind(&e, &vh, "/", Some("1"), body).await;
        assert_eq!(st, 207, "{body}");
        assert_xml(&x);
    }
    // above a collection: infinity refused with propfind-finite-depth
    for p in ["/", "/users/", "/users/alice/", "/by_id/"] {
        let (st, x) = propfind(&e, DL, p, Some("infinity"), "").await;
        assert_eq!(st, 403, "{p}");
        assert!(x.contains("propfind-finite-depth"), "{x}");
        let (st, _) = propfind(&e, DL, p, None, "").await;
        assert_eq!(st, 403, "{p} with no Depth");
        let (st, _) = propfind(&e, DL, p, Some("1"), "").await;
        assert_eq!(st, 207, "{p} Depth 1");
    }
    // bad Depth, bad XML
    for d in ["2", "-1", "one", ""] {
        let (st, _) = propfind(&e, &vh, "/", Some(d), "").await;
        assert_eq!(st, 400, "Depth {d:?}");
    }
    for body in [
        "<D:propfind xmlns:D=\"DAV:\"><D:allprop>",
        "not xml at all <",
        "<D:propfind xmlns:D=\"DAV:\"></D:prop>",
    ] {
        let (st, _) = propfind(&e, &vh, "/", Some("1"), body).await;
        assert_eq!(st, 400, "{body}");
    }
    // a missing path: 404
    let (st, _) = propfind(&e, &vh, "/nosuch", Some("0"), "").await;
    assert_eq!(st, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_lock_unlock() {
    let e = common::start().await;
    let vh = Env::vhost(&e.c1);
    for p in ["/", "/hello.txt"] {
        let r = e.req("OPTIONS", &vh, p).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["dav"], "1, 2");
        assert_eq!(r.headers()["ms-author-via"], "DAV");
        let allow = r.headers()["allow"].to_str().unwrap().to_string();
        for m in ["GET", "HEAD", "PROPFIND", "LOCK", "UNLOCK", "OPTIONS"] {
            assert!(allow.contains(m), "{allow}");
        }
    }
    let mut tokens = Vec::new();
    for body in [
        "<?xml version=\"1.0\"?><D:lockinfo xmlns:D=\"DAV:\"><D:lockscope><D:exclusive/>\
         </D:lockscope><D:locktype><D:write/></D:locktype><D:owner>me</D:owner></D:lockinfo>",
        "",
    ] {
        let r = e
            .req("LOCK", &vh, "/hello.txt")
            .bearer_auth(&e.alice)
            .header("Timeout", "Second-600")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let lt = r.headers()["lock-token"].to_str().unwrap().to_string();
        assert!(
            lt.starts_with("<opaquelocktoken:") && lt.ends_with('>'),
            "{lt}"
        );
        let body = r.text().await.unwrap();
        assert!(
            body.contains("lockdiscovery") && body.contains(&lt[1..lt.len() - 1]),
            "{body}"
        );
        tokens.push(lt);
    }
    assert_ne!(tokens[0], tokens[1], "a fresh token each time");
    let r = e
        .req("UNLOCK", &vh, "/hello.txt")
        .bearer_auth(&e.alice)
        .header("Lock-Token", &tokens[0])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // LOCK needs a token that can see the file, like any read
    let r = e.req("LOCK", &vh, "/hello.txt").send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_by_id_and_users() {
    let e = common::start().await;
    let c1 = &e.c1.uuid;
    let (st, x) = get_dl(&e, "/").await;
    assert_eq!(st, 200);
    assert!(x.contains("./by_id/") && x.contains("./users/"), "{x}");
    let (st, x) = get_dl(&e, "/by_id/").await;
    assert_eq!(st, 200);
    assert!(!x.contains(c1.as_str()), "/by_id/ is an empty listing");
    assert!(!x.contains("./by_id"), "{x}");
    let (st, x) = get_dl(&e, "/users/").await;
    assert_eq!(st, 200);
    assert!(x.contains("./alice/") && !x.contains("./bob/"), "{x}");
    let (st, x) = get_dl(&e, "/users/alice/").await;
    assert_eq!(st, 200);
    assert!(x.contains("./proj/") && x.contains("./c1/"), "{x}");
    let (st, x) = get_dl(&e, "/users/alice/c1/sub/a.txt").await;
    assert_eq!((st, x.as_str()), (200, HELLO));
    let (st, x) = get_dl(&e, "/users/alice/proj/inproj/hello.txt").await;
    assert_eq!((st, x.as_str()), (200, HELLO));
    // by_id: a collection by UUID, a project
    let (st, x) = get_dl(&e, &format!("/by_id/{c1}/hello.txt")).await;
    assert_eq!((st, x.as_str()), (200, HELLO));
    let (st, x) = get_dl(&e, &format!("/by_id/{}/", e.proj)).await;
    assert_eq!(st, 200);
    assert!(x.contains("./inproj/"), "{x}");
    // someone else's: 404, never 401; nothing at all: 401
    let (st, _) = get_dl(&e, &format!("/by_id/{}/secret.txt", e.c_bob.uuid)).await;
    assert_eq!(st, 404);
    let (st, _) = get_dl(&e, "/by_id/zzzzz-4zz18-000000000000000/").await;
    assert_eq!(st, 404);
    let r = e.req("GET", DL, "/users/alice/").send().await.unwrap();
    assert_eq!(r.status(), 401);
    // listings are not writable
    for p in ["/", "/by_id/", "/users/", "/users/alice/"] {
        let r = e
            .req("MKCOL", DL, &format!("{p}new/"))
            .bearer_auth(&e.alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_shows_as_an_empty_directory() {
    let e = common::start().await;
    let (st, x) = get_dl(&e, "/users/alice/proj/").await;
    assert_eq!(st, 200);
    assert!(x.contains("./inproj/") && x.contains("./filt/"), "{x}");
    // the filter group lists what it matches: proj itself
    let (st, x) = get_dl(&e, "/users/alice/proj/filt/").await;
    assert_eq!(st, 200);
    assert!(x.contains("./proj/"), "{x}");
    // proj's second occurrence on the path is empty, in HTML, PROPFIND and GET alike
    let (st, x) = get_dl(&e, "/users/alice/proj/filt/proj/").await;
    assert_eq!(st, 200);
    assert!(!x.contains("./filt/") && !x.contains("./inproj/"), "{x}");
    for d in ["0", "1"] {
        let (st, x) = propfind(&e, DL, "/users/alice/proj/filt/proj/", Some(d), "").await;
        assert_eq!(st, 207);
        assert_eq!(responses(&x), 1, "Depth {d}: {x}");
    }
    let (st, _) = get_dl(&e, "/users/alice/proj/filt/proj/inproj/hello.txt").await;
    assert_eq!(st, 404);
    let (st, _) = get_dl(&e, "/users/alice/proj/filt/proj/filt/").await;
    assert_eq!(st, 404);
    // and it is read-only
    let r = e
        .req("PUT", DL, "/users/alice/proj/filt/proj/x.txt")
        .bearer_auth(&e.alice)
        .body("x")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // the whole tree from the top, as a client walking Depth 1 would, is finite
    let mut seen = 0;
    let mut todo = vec!["/users/".to_string()];
    while let Some(p) = todo.pop() {
        seen += 1;
        assert!(seen < 100, "the tree does not end");
        let (st, x) = propfind(&e, DL, &p, Some("1"), "").await;
        assert_eq!(st, 207, "{p}");
        for h in x.split("<D:href>").skip(2) {
            let h = h.split("</D:href>").next().unwrap();
            if h.ends_with('/') {
                todo.push(h.to_string());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors() {
    let e = common::start().await;
    let vh = Env::vhost(&e.c1);
    for (st, r) in [
        (200, e.req("GET", &vh, "/hello.txt").bearer_auth(&e.alice)),
        (
            206,
            e.req("GET", &vh, "/big.bin")
                .bearer_auth(&e.alice)
                .header("Range", "bytes=0-1"),
        ),
        (401, e.req("GET", &vh, "/hello.txt")),
        (
            207,
            e.req("PROPFIND", &vh, "/")
                .bearer_auth(&e.alice)
                .header("Depth", "0"),
        ),
    ] {
        let r = r
            .header("Origin", "https://example.com")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), st);
        assert_eq!(r.headers()["access-control-allow-origin"], "*", "{st}");
        let exp = r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(exp.contains("Content-Range"), "{exp}");
    }
    // a preflight needs no credentials and names the methods
    let r = e
        .req("OPTIONS", &vh, "/hello.txt")
        .header("Origin", "https://example.com")
        .header("Access-Control-Request-Method", "PROPFIND")
        .header(
            "Access-Control-Request-Headers",
            "authorization, range, depth",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let methods = r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_string();
    for m in ["GET", "HEAD", "PROPFIND", "OPTIONS"] {
        assert!(methods.contains(m), "{methods}");
    }
    let hdrs = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in ["authorization", "range", "depth"] {
        assert!(hdrs.contains(h), "{hdrs}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_traversal_is_refused() {
    let e = common::start().await;
    let c1 = &e.c1.uuid;
    let bob = &e.c_bob.uuid;
    let vh = Env::vhost(&e.c1);
    let raw = |m: &str, host: &str, p: &str| {
        e.raw_status(&format!(
            "{m} {p} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
             Depth: 0\r\nConnection: close\r\n\r\n",
            e.alice
        ))
    };
    // these are 400 exactly: the path itself is refused
    for p in [
        format!("/c={c1}/sub/../hello.txt"),
        format!("/c={c1}/sub/%2e%2e/hello.txt"),
        format!("/c={c1}/sub%2f..%2fhello.txt"),
        format!("/c={c1}/hello.txt%00"),
        "/users/../by_id/".to_string(),
    ] {
        let st = raw("GET", DL, &p);
        assert!(st.contains(" 400 "), "{p}: {st}");
    }
    // and every other attempt is some 4xx, for GET and PROPFIND
    for (host, p) in [
        (DL, format!("/c={c1}/sub/%2E%2E/hello.txt")),
        (DL, format!("/c={c1}/sub/.%2e/hello.txt")),
        (DL, format!("/c={c1}/sub%2Fa.txt")),
        (DL, format!("/c={c1}/hello.txt%00.png")),
        (DL, format!("/c={c1}/./hello.txt")),
        (DL, format!("/c={c1}/../c={bob}/secret.txt")),
        (DL, format!("/by_id/{c1}/%2e%2e/{bob}/secret.txt")),
        (vh.as_str(), "/../hello.txt".to_string()),
        (vh.as_str(), "/sub/%2e%2e/%2e%2e/hello.txt".to_string()),
        (vh.as_str(), format!("/%2e%2e/c={bob}/secret.txt")),
        (vh.as_str(), "/sub%5c..%5chello.txt".to_string()),
    ] {
        for m in ["GET", "PROPFIND"] {
            let st = raw(m, host, &p);
            let code: u16 = st.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
            assert!((400..500).contains(&code), "{m} {host}{p}: {st}");
        }
    }
    // a raw NUL byte in the request line
    let st = e.raw_status(&format!(
        "GET /c={c1}/hello.txt\0x HTTP/1.1\r\nHost: {DL}\r\nConnection: close\r\n\r\n"
    ));
    assert!(st.contains(" 400 ") || st.is_empty(), "{st}");
    // the plain path still works
    let (st, _) = get_dl(&e, &format!("/c={c1}/sub/a.txt")).await;
    assert_eq!(st, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics() {
    let e = common::start().await;
    let r = e
        .req("GET", SHARED, "/_health/ping")
        .bearer_auth(common::MGMT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = e.req("GET", SHARED, "/_health/ping").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = e
        .req("GET", SHARED, "/metrics")
        .bearer_auth(common::MGMT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("keepweb_requests_total"));
    // on a collection host it is a path in the collection
    let r = e
        .req("GET", &Env::vhost(&e.c1), "/metrics")
        .bearer_auth(common::MGMT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// keep-web on its own (keepstore over HTTP, as `keep serve --only web` runs it):
/// every write method on a collection vhost commits and reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_keepstore_over_http() {
    let e = common::start().await;
    let vh = Env::vhost(&e.c1);
    let st = |r: reqwest::Response| r.status().as_u16();
    let send = |m: &str, p: &str| e.req(m, &vh, p).bearer_auth(&e.alice);
    assert_eq!(st(send("MKCOL", "/new").send().await.unwrap()), 201);
    assert_eq!(
        st(send("PUT", "/new/x.txt")
            .body("written")
            .send()
            .await
            .unwrap()),
        201
    );
    let r = send("GET", "/new/x.txt").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "written");
    let r = send("COPY", "/new/x.txt")
        .header("Destination", "/new/y.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(st(r), 201);
    let r = send("MOVE", "/new/y.txt")
        .header("Destination", "/z.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(st(r), 201);
    let r = send("PROPPATCH", "/z.txt")
        .body(
            r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:colour>blue</Z:colour></D:prop></D:set></D:propertyupdate>"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(st(r), 207);
    let r = send("PROPFIND", "/z.txt")
        .header("Depth", "0")
        .body(r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><Z:colour xmlns:Z="urn:z"/><D:getetag/></D:prop></D:propfind>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 207);
    let body = r.text().await.unwrap();
    assert!(
        body.contains(">blue</") && body.contains("getetag"),
        "{body}"
    );
    assert_eq!(st(send("DELETE", "/new").send().await.unwrap()), 204);
    let r = send("GET", "/z.txt").send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "written");
    assert_eq!(st(send("GET", "/new/x.txt").send().await.unwrap()), 404);
}

/// Names a manifest may hold but XML 1.0 can't carry raw (control characters, CR)
/// still give a well-formed multistatus, and their hrefs name them exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propfind_with_control_characters_in_names_is_well_formed() {
    let e = common::start().await;
    let l = e.put_block(&e.alice, b"hello world\n".to_vec()).await;
    let m = format!(". {l} 0:12:a\\001b 0:12:cr\\015x 0:12:tab\\011y 0:12:q\"'\n");
    let c = e.collection(&e.alice, "odd", None, &m).await;
    let (st, x) = propfind(&e, &Env::vhost(&c), "/", Some("1"), "").await;
    assert_eq!(st, 207, "{x}");
    assert_eq!(responses(&x), 5, "{x}");
    // XML 1.0 has no way to carry these (quick-xml would not notice, strict parsers do)
    let bad: Vec<char> = x
        .chars()
        .filter(|c| (*c < ' ' && *c != '\t' && *c != '\n') || *c == '\u{fffe}')
        .collect();
    assert!(bad.is_empty(), "{bad:?} in {x:?}");
    let mut r = quick_xml::Reader::from_str(&x);
    let mut hrefs = Vec::new();
    let mut in_href = false;
    loop {
        match r.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(s)) => in_href = s.name().as_ref() == b"D:href",
            Ok(quick_xml::events::Event::Text(t)) if in_href => {
                hrefs.push(String::from_utf8(t.to_vec()).unwrap())
            }
            Ok(_) => in_href = false,
            Err(err) => panic!("PROPFIND body is not XML: {err}\n{x:?}"),
        }
    }
    for h in ["/a%01b", "/cr%0Dx", "/tab%09y"] {
        assert!(hrefs.iter().any(|x| x == h), "{h}: {hrefs:?}");
    }
    // and the file is reachable by that href
    let r = e
        .req("GET", &Env::vhost(&c), "/a%01b")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
