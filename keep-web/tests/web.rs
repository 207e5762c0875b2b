//! keep-web against a real keepstore and API, over real sockets.

mod common;

use base64::Engine;
use common::Env;
use serde_json::json;

const SHARED: &str = "127.0.0.1";
const DL: &str = "dl.example";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(s)
}

fn esc(t: &str) -> String {
    t.replace('/', "%2F")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhost_credential_sources() {
    let e = common::start().await;
    let vh = Env::vhost(&e.c1);
    let dash = format!("{}--localhost", Env::uuid(&e.c1));
    // Bearer
    let r = e
        .req("GET", &vh, "/hello.txt")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello world\n");
    // Basic: password is the token
    let r = e
        .req("GET", &vh, "/hello.txt")
        .basic_auth("x", Some(&e.alice))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // cookie on the -- form
    let r = e
        .req("GET", &dash, "/hello.txt")
        .header("Cookie", format!("api_token={}", b64(&e.alice)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // WebDAV method with a query token: an ordinary credential, no redirect
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
    // none: 401 with the Basic challenge; bob: 404
    let r = e.req("GET", &vh, "/hello.txt").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Basic realm=\"collections\""
    );
    let r = e
        .req("GET", &vh, "/hello.txt")
        .bearer_auth(&e.bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // invalid token: 401
    let r = e
        .req("GET", &vh, "/hello.txt")
        .bearer_auth("nosuchtoken")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_token_redirects_to_cookie() {
    let e = common::start().await;
    let vh = Env::vhost(&e.c1);
    let r = e
        .req(
            "GET",
            &vh,
            &format!("/hello.txt?a=1&api_token={}&b=2", esc(&e.alice)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let port = e.web_addr.port();
    assert_eq!(
        r.headers()["location"],
        format!("//{vh}:{port}/hello.txt?a=1&b=2")
    );
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/")
    );
    assert!(!cookie.contains("Secure"));
    let kv = cookie.split(';').next().unwrap().to_string();
    let r = e
        .req("GET", &vh, "/hello.txt?a=1&b=2")
        .header("Cookie", kv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello world\n");
    // behind https: Secure
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
    // POST form token
    let r = e
        .req("POST", &vh, "/hello.txt")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("api_token={}", esc(&e.alice)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers().contains_key("set-cookie"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_host_ignores_credentials_and_refuses_query_tokens() {
    let e = common::start().await;
    let path = format!("/c={}/hello.txt", Env::uuid(&e.c1));
    let r = e
        .req("GET", SHARED, &path)
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_host_forces_attachment() {
    let e = common::start().await;
    let path = format!("/c={}/hello.txt", Env::uuid(&e.c1));
    let r = e
        .req("GET", DL, &path)
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cd = r.headers()["content-disposition"].to_str().unwrap();
    assert!(cd.starts_with("attachment"), "{cd}");
    // not on a collection vhost
    let r = e
        .req("GET", &Env::vhost(&e.c1), "/hello.txt")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("content-disposition"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_url() {
    let e = common::start().await;
    let c1 = Env::uuid(&e.c1);
    let share = e
        .token_for(
            &e.alice_uuid,
            json!({"scopes": [format!("GET /arvados/v1/collections/{c1}"), format!("GET /arvados/v1/collections/{c1}/")]}),
        )
        .await;
    let secret = share.rsplit('/').next().unwrap();
    // bare secret and v2 form with %2F, on the shared host, beside other credentials
    for t in [secret.to_string(), esc(&share)] {
        let r = e
            .req("GET", SHARED, &format!("/c={c1}/t={t}/_/hello.txt"))
            .bearer_auth(&e.bob)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "t={t}");
        assert_eq!(r.text().await.unwrap(), "hello world\n");
    }
    // the listing under the sharing URL links relatively
    let r = e
        .req("GET", SHARED, &format!("/c={c1}/t={secret}/_/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("href=\"./hello.txt\""));
    // refused on another collection, and for writes
    let c2 = Env::uuid(&e.c_in_proj);
    let r = e
        .req("GET", SHARED, &format!("/c={c2}/t={secret}/hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = e
        .req("PUT", SHARED, &format!("/c={c1}/t={secret}/_/new.txt"))
        .body("x")
        .send()
        .await
        .unwrap();
    // a sharing token reads; it may not write
    assert_eq!(r.status(), 403);
    // a bogus t= token: 404 even where the anonymous token or others would be tried
    let r = e
        .req("GET", SHARED, &format!("/c={c1}/t=bogus123/hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn underscore_escape() {
    let e = common::start().await;
    let c1 = Env::uuid(&e.c1);
    let r = e
        .req("GET", &Env::vhost(&e.c1), "/_/t=x/y.txt")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = e
        .req(
            "GET",
            SHARED,
            &format!("/c={c1}/t={}/_/t=x/y.txt", esc(&e.alice)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello world\n");
}

async fn get_range(e: &Env, range: &str) -> reqwest::Response {
    e.req("GET", &Env::vhost(&e.c1), "/big.bin")
        .bearer_auth(&e.alice)
        .header("Range", range)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges() {
    let e = common::start().await;
    let big = e.big.clone();
    // whole file
    let r = e
        .req("GET", &Env::vhost(&e.c1), "/big.bin")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &big[..]);
    // single, across the first block boundary and across all three blocks
    for (a, b) in [(0u64, 9u64), (990, 1009), (999, 2001), (1990, 2499)] {
        let r = get_range(&e, &format!("bytes={a}-{b}")).await;
        assert_eq!(r.status(), 206);
        assert_eq!(r.headers()["content-range"], format!("bytes {a}-{b}/2500"));
        assert_eq!(
            r.bytes().await.unwrap().as_ref(),
            &big[a as usize..=b as usize]
        );
    }
    // suffix and open-ended
    let r = get_range(&e, "bytes=-100").await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 2400-2499/2500");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &big[2400..]);
    let r = get_range(&e, "bytes=1500-").await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), &big[1500..]);
    // several: multipart/byteranges with CRLF and a boundary
    let r = get_range(&e, "bytes=0-1,998-1001").await;
    assert_eq!(r.status(), 206);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap()
        .to_string();
    let body = r.bytes().await.unwrap();
    let mut want = Vec::new();
    for (a, b) in [(0usize, 1usize), (998, 1001)] {
        want.extend_from_slice(
            format!("\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {a}-{b}/2500\r\n\r\n").as_bytes(),
        );
        want.extend_from_slice(&big[a..=b]);
    }
    want.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    assert_eq!(body.as_ref(), &want[..]);
    // unsatisfiable
    let r = get_range(&e, "bytes=5000-").await;
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */2500");
    // malformed: ignored
    let r = get_range(&e, "bytes=x-y").await;
    assert_eq!(r.status(), 200);
    // If-Range: matching ETag honours the Range, another one gets the whole file
    let r = e
        .req("GET", &Env::vhost(&e.c1), "/big.bin")
        .bearer_auth(&e.alice)
        .header("Range", "bytes=0-9")
        .header("If-Range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    let r = e
        .req("GET", &Env::vhost(&e.c1), "/big.bin")
        .bearer_auth(&e.alice)
        .header("Range", "bytes=0-9")
        .header("If-Range", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 2500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditionals_head_and_etag() {
    let e = common::start().await;
    let vh = Env::vhost(&e.c1);
    let r = e
        .req("HEAD", &vh, "/big.bin")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "2500");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let lm = r.headers()["last-modified"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    assert!(r.bytes().await.unwrap().is_empty());
    let r = e
        .req("GET", &vh, "/big.bin")
        .bearer_auth(&e.alice)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = e
        .req("GET", &vh, "/big.bin")
        .bearer_auth(&e.alice)
        .header("If-Modified-Since", &lm)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    // same content elsewhere (a different collection): same ETag
    let c3 = e.c_in_proj.clone();
    let r1 = e
        .req("HEAD", &vh, "/hello.txt")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    let r2 = e
        .req("HEAD", &Env::vhost(&c3), "/hello.txt")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r1.headers()["etag"], r2.headers()["etag"]);
    assert_ne!(r1.headers()["etag"].to_str().unwrap(), etag);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdh_forms_are_immutable() {
    let e = common::start().await;
    let pdh = Env::pdh(&e.c1);
    let (hash, size) = pdh.split_once('+').unwrap();
    let label = format!(
        "{}-{size}",
        hash.parse::<keep_format::Hash>().unwrap().to_base32()
    );
    let r = e
        .req("GET", &format!("{label}.localhost"), "/hello.txt")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let r = e
        .req("GET", DL, &format!("/by_id/{pdh}/hello.txt"))
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    // `-` for `+` in /c=
    let r = e
        .req("GET", DL, &format!("/c={hash}-{size}/hello.txt"))
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // by UUID: not immutable
    let r = e
        .req("GET", &Env::vhost(&e.c1), "/hello.txt")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("cache-control"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_redirect_and_html_listing() {
    let e = common::start().await;
    let c1 = Env::uuid(&e.c1);
    let r = e
        .req("GET", DL, &format!("/c={c1}"))
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/c={c1}/"));
    let r = e
        .req("GET", DL, &format!("/c={c1}/"))
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(page.contains("href=\"./big.bin\""));
    assert!(page.contains("href=\"./sub/\""));
    assert!(page.contains("&lt;i&gt;&amp;.txt"), "{page}");
    assert!(!page.contains("<i>"));
    let r = e
        .req("GET", DL, &format!("/c={c1}/sub"))
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = e
        .req("GET", DL, &format!("/c={c1}/nosuch"))
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propfind_depths() {
    let e = common::start().await;
    let vh = Env::vhost(&e.c1);
    let (st, x) = propfind(&e, &vh, "/", Some("0"), "").await;
    assert_eq!(st, 207);
    assert_eq!(responses(&x), 1);
    // root: big.bin hello.txt <i>&.txt sub t=x
    let (st, x) = propfind(&e, &vh, "/", Some("1"), "").await;
    assert_eq!(st, 207);
    assert_eq!(responses(&x), 6, "{x}");
    assert!(x.contains("<D:getcontentlength>2500</D:getcontentlength>"));
    assert!(x.contains("<D:href>/sub/</D:href>"));
    assert!(x.contains("&lt;i&gt;&amp;.txt"));
    // the strong ETag exactly as the GET header gives it, quotes and all
    assert!(x.contains("<D:getetag>\""), "{x}");
    // and the whole body is well-formed XML
    let mut r = quick_xml::Reader::from_str(&x);
    loop {
        match r.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(err) => panic!("PROPFIND body is not XML: {err}\n{x}"),
        }
    }
    let (st, x) = propfind(&e, &vh, "/", Some("infinity"), "").await;
    assert_eq!(st, 207);
    assert_eq!(responses(&x), 8);
    assert!(x.contains("<D:href>/sub/a.txt</D:href>"));
    let body = "<?xml version=\"1.0\"?><D:propfind xmlns:D=\"DAV:\"><D:allprop/></D:propfind>";
    let (st, _) = propfind(&e, &vh, "/", Some("1"), body).await;
    assert_eq!(st, 207);
    let (st, _) = propfind(&e, &vh, "/", Some("2"), "").await;
    assert_eq!(st, 400);
    let (st, _) = propfind(
        &e,
        &vh,
        "/",
        Some("1"),
        "<D:propfind xmlns:D=\"DAV:\"><D:allprop>",
    )
    .await;
    assert_eq!(st, 400);
    let (st, _) = propfind(&e, &vh, "/", Some("1"), "not xml at all <").await;
    assert_eq!(st, 400);
    // above a collection: refused
    let (st, x) = propfind(&e, DL, "/users/", Some("infinity"), "").await;
    assert_eq!(st, 403);
    assert!(x.contains("propfind-finite-depth"));
    let (st, _) = propfind(&e, DL, "/users/", None, "").await;
    assert_eq!(st, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_lock_unlock() {
    let e = common::start().await;
    let vh = Env::vhost(&e.c1);
    let r = e.req("OPTIONS", &vh, "/").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["dav"], "1, 2");
    assert!(r.headers()["allow"].to_str().unwrap().contains("PROPFIND"));
    let r = e
        .req("LOCK", &vh, "/hello.txt")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let lt = r.headers()["lock-token"].to_str().unwrap().to_string();
    assert!(lt.starts_with("<opaquelocktoken:"));
    assert!(r.text().await.unwrap().contains("lockdiscovery"));
    let r = e
        .req("UNLOCK", &vh, "/hello.txt")
        .bearer_auth(&e.alice)
        .header("Lock-Token", lt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_users_projects_cycles() {
    let e = common::start().await;
    let get = |p: String| {
        let e = &e;
        async move {
            let r = e
                .req("GET", DL, &p)
                .bearer_auth(&e.alice)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (st, x) = get("/".into()).await;
    assert_eq!(st, 200);
    assert!(x.contains("./by_id/") && x.contains("./users/"));
    let (st, x) = get("/by_id/".into()).await;
    assert_eq!(st, 200);
    assert!(!x.contains("./by_id"));
    let (st, x) = get("/users/".into()).await;
    assert_eq!(st, 200);
    assert!(x.contains("./alice/"), "{x}");
    let (st, x) = get("/users/alice/".into()).await;
    assert_eq!(st, 200);
    assert!(x.contains("./proj/") && x.contains("./c1/"), "{x}");
    let (st, x) = get("/users/alice/proj/inproj/hello.txt".into()).await;
    assert_eq!((st, x.as_str()), (200, "hello world\n"));
    let (st, x) = get("/users/alice/proj/filt/".into()).await;
    assert_eq!(st, 200);
    assert!(x.contains("./proj/"), "{x}");
    // the cycle: proj again under its own filter group is empty
    let (st, x) = get("/users/alice/proj/filt/proj/".into()).await;
    assert_eq!(st, 200);
    assert!(!x.contains("./filt/") && !x.contains("./inproj/"), "{x}");
    let (st, x) = propfind(&e, DL, "/users/alice/proj/filt/proj/", Some("1"), "").await;
    assert_eq!(st, 207);
    assert_eq!(responses(&x), 1);
    let (st, _) = get("/users/alice/proj/filt/proj/inproj/hello.txt".into()).await;
    assert_eq!(st, 404);
    // by_id: project and collection
    let (st, x) = get(format!("/by_id/{}/", e.proj)).await;
    assert_eq!(st, 200);
    assert!(x.contains("./inproj/"));
    let (st, _) = get(format!("/by_id/{}/hello.txt", Env::uuid(&e.c1))).await;
    assert_eq!(st, 200);
    // bob's collection is not alice's: 404, never 401
    let (st, _) = get(format!("/by_id/{}/secret.txt", Env::uuid(&e.c_bob))).await;
    assert_eq!(st, 404);
    // no credentials on a private tree: 401
    let r = e.req("GET", DL, "/users/alice/").send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors() {
    let e = common::start().await;
    let vh = Env::vhost(&e.c1);
    let r = e
        .req("GET", &vh, "/hello.txt")
        .bearer_auth(&e.alice)
        .header("Origin", "https://example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("Content-Range"));
    let r = e
        .req("OPTIONS", &vh, "/hello.txt")
        .header("Origin", "https://example.com")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("GET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_traversal_is_refused() {
    let e = common::start().await;
    let c1 = Env::uuid(&e.c1);
    for p in [
        format!("/c={c1}/sub/../hello.txt"),
        format!("/c={c1}/sub/%2e%2e/hello.txt"),
        format!("/c={c1}/sub%2f..%2fhello.txt"),
        format!("/c={c1}/hello.txt%00"),
        "/users/../by_id/".to_string(),
    ] {
        let st = e.raw_status(&format!(
            "GET {p} HTTP/1.1\r\nHost: {DL}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            e.alice
        ));
        assert!(st.contains(" 400 "), "{p}: {st}");
    }
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

// Real clients (rclone, cadaver, samtools) run against the real `keep serve` in
// cli/tests/web_clients.rs; every rule again end to end in cli/tests/web_rules.rs.

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
