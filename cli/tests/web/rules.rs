//! keep-web's rules that only the whole `keep serve` shows: its defaults and config
//! (`[web]`), its access log, and files written by `keep put`. Every other rule of
//! DESIGN §5 is tested once, in keep-web/tests/web.rs.
//!
//! Defaults throughout: the download host is 127.0.0.1 (the host of keep-web's URL),
//! collection vhosts are `<id>.localhost`, and any other host (here `localhost`) is a
//! shared host.

use keep_testkit::{put_block, Api, User};

use crate::support::{b64, bytes, serve, Env, Serve};

/// The download host by default: the host of `[web] external_url`.
const DL: &str = "127.0.0.1";
/// A host that is neither a collection vhost nor the download host.
const SHARED: &str = "localhost";
const HELLO: &str = "hello world\n";

/// A `v2/…` token with its `/` escaped for a `t=` path element or a query value.
fn esc(t: &str) -> String {
    t.replace('/', "%2F")
}

struct W {
    k: Serve,
    api: Api,
    /// Follows no redirects.
    http: reqwest::Client,
    port: u16,
    alice: User,
    bob: User,
    /// alice's collection: hello.txt, index.html, sub/a.txt
    c1: String,
}

impl W {
    async fn start() -> W {
        let k = serve();
        let api = k.client();
        let alice = api.user("alice").await;
        let bob = api.user("bob").await;
        let l = put_block(&k.keepstore, &alice.token, HELLO.into()).await;
        let m = format!(". {l} 0:12:hello.txt 0:12:index.html\n./sub {l} 0:12:a.txt\n");
        let c1 = api.collection(&alice.token, "c1", None, &m).await.uuid;
        let port = port_of(k.web_url());
        W {
            http: api.http.clone(),
            api,
            k,
            port,
            alice,
            bob,
            c1,
        }
    }

    fn vhost(&self) -> String {
        format!("{}.localhost", self.c1)
    }

    /// A request to keep-web with the given Host (port kept, as a browser sends it).
    fn req(&self, method: &str, host: &str, path: &str) -> reqwest::RequestBuilder {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.http
            .request(m, format!("http://127.0.0.1:{}{path}", self.port))
            .header("Host", format!("{host}:{}", self.port))
    }
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// The access log (keep serve's middleware, one line a request) names no credential
/// whichever way a request carried it: Bearer, Basic, cookie, query, form, `t=` path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_holds_no_credential() {
    let w = W::start().await;
    let vh = w.vhost();
    let t = &w.alice.token;
    let dl_file = format!("/c={}/hello.txt", w.c1);
    let sent = [
        (200, w.req("GET", &vh, "/hello.txt").bearer_auth(t)),
        (
            200,
            w.req("GET", &vh, "/hello.txt").basic_auth("x", Some(t)),
        ),
        (
            200,
            w.req("GET", &vh, "/hello.txt")
                .header("Cookie", format!("api_token={}", b64(t))),
        ),
        (
            207,
            w.req("PROPFIND", &vh, &format!("/hello.txt?api_token={}", esc(t)))
                .header("Depth", "0"),
        ),
        (200, w.req("GET", &vh, &format!("/t={}/hello.txt", esc(t)))),
        (
            200,
            w.req("GET", DL, &format!("/c={}/t={}/_/hello.txt", w.c1, esc(t))),
        ),
        (
            303,
            w.req("GET", &vh, &format!("/hello.txt?a=1&api_token={}", esc(t))),
        ),
        (
            303,
            w.req("GET", DL, &format!("{dl_file}?api_token={}", esc(t))),
        ),
        (
            303,
            w.req("POST", &vh, "/hello.txt")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(format!("api_token={}", esc(t))),
        ),
        (
            400,
            w.req("GET", SHARED, &format!("{dl_file}?api_token={}", esc(t))),
        ),
        (
            404,
            w.req("GET", &vh, "/hello.txt").bearer_auth(&w.bob.token),
        ),
    ];
    for (i, (want, r)) in sent.into_iter().enumerate() {
        let r = r.send().await.unwrap();
        assert_eq!(r.status().as_u16(), want, "request {i}");
    }
    let log = w.k.log();
    assert!(
        log.contains("hello.txt"),
        "keep serve logs requests:\n{log}"
    );
    for t in [&w.api.admin, &w.alice.token, &w.bob.token] {
        let secret = t.rsplit('/').next().unwrap();
        assert!(!log.contains(secret), "a token reached the log:\n{log}");
        assert!(!log.contains(&b64(t)), "a cookie reached the log:\n{log}");
    }
}

/// With no `download_host` set, keep-web's own URL is the download host: credentials
/// are honoured there and files are attachments (even HTML); `localhost` is a shared
/// host (credentials ignored); `<uuid>.localhost` a collection vhost (files inline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_download_host_is_keep_webs_own_host_by_default() {
    let w = W::start().await;
    for file in ["hello.txt", "index.html"] {
        let r = w
            .http
            .get(format!("{}/c={}/{file}", w.k.web_url(), w.c1))
            .basic_auth("x", Some(&w.alice.token))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{file}");
        let cd = r.headers()["content-disposition"].to_str().unwrap();
        assert!(cd.starts_with("attachment") && cd.contains(file), "{cd}");
    }
    let r = w
        .req("GET", SHARED, &format!("/c={}/hello.txt", w.c1))
        .bearer_auth(&w.alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "credentials are ignored on a shared host");
    let r = w
        .req("GET", &w.vhost(), "/index.html")
        .bearer_auth(&w.alice.token)
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

/// A file written by `keep put` with full 64 MiB blocks: ranges at and across the block
/// boundary, and a small read deep inside a block, return exactly the bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_across_a_full_64_mib_block_boundary() {
    let w = W::start().await;
    let env = Env::with_token(&w.k, &w.alice.token);
    let dir = tempfile::tempdir().unwrap();
    const MI64: usize = 64 << 20;
    let data = bytes(MI64 + 100_000, 9);
    std::fs::write(dir.path().join("big.bin"), &data).unwrap();
    let uuid = env.ok(&[
        "put",
        "--no-progress",
        &format!("{}/", dir.path().to_str().unwrap()),
    ]);
    let host = format!("{uuid}.localhost");
    for (a, b) in [
        (MI64 - 1, MI64),
        (MI64 - 4096, MI64 + 4095),
        (MI64, MI64 + 99_999),
        (12_345_678, 12_345_678 + 4095),
    ] {
        let r = w
            .req("GET", &host, "/big.bin")
            .bearer_auth(&w.alice.token)
            .header("Range", format!("bytes={a}-{b}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206, "{a}-{b}");
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes {a}-{b}/{}", data.len())
        );
        assert!(r.bytes().await.unwrap() == data[a..=b], "{a}-{b}");
    }
    let r = w
        .req("GET", &host, "/big.bin")
        .bearer_auth(&w.alice.token)
        .header("Range", format!("bytes=-10,{}-{}", MI64 - 2, MI64 + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    let body = r.bytes().await.unwrap();
    let tail = &data[data.len() - 10..];
    let mid = &data[MI64 - 2..=MI64 + 1];
    let find = |needle: &[u8]| body.windows(needle.len()).any(|x| x == needle);
    assert!(find(tail) && find(mid));
}

/// `[web] trust_all_content = true`: credentials are honoured on every host, files are
/// inline, and a query token gets the 303 cookie flow instead of a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_all_content_honours_credentials_everywhere() {
    let mut w = W::start().await;
    // the kit writes the [web] table last: the setting lands in it
    let mut cfg = std::fs::read_to_string(&w.k.config).unwrap();
    assert!(
        cfg.trim_end().ends_with("listen = \"127.0.0.1:0\""),
        "{cfg}"
    );
    cfg.push_str("trust_all_content = true\n");
    std::fs::write(&w.k.config, cfg).unwrap();
    w.k.restart();
    w.port = port_of(w.k.web_url());
    let path = format!("/c={}/index.html", w.c1);
    for host in [SHARED, DL] {
        let r = w
            .req("GET", host, &path)
            .bearer_auth(&w.alice.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{host}");
        assert!(
            !r.headers().contains_key("content-disposition"),
            "trusted content is inline on {host}"
        );
    }
    let r = w
        .req(
            "GET",
            SHARED,
            &format!("{path}?api_token={}", esc(&w.alice.token)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = w
        .req("GET", SHARED, &path)
        .bearer_auth(&w.bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
