//! Each keep-web rule of DESIGN §5, one test per rule, against the real `keep serve`
//! (keep-web reading its own keepstore in-process, the API on RocksDB), over real
//! sockets with the Host header each form needs. Defaults throughout: the download
//! host is 127.0.0.1 (the host of keep-web's URL), collection vhosts are
//! `<id>.localhost`, and any other host (here `localhost`) is a shared host.

mod common;

use std::io::{Read, Write};

use common::{b64, bytes, Keep};
use serde_json::{json, Value};

/// The configured download host (default: the host of `[web] external_url`).
const DL: &str = "127.0.0.1";
/// A host that is neither a collection vhost nor the download host.
const SHARED: &str = "localhost";

/// A `v2/…` token with its `/` escaped for a `t=` path element or a query value.
fn esc(t: &str) -> String {
    t.replace('/', "%2F")
}

fn secret(t: &str) -> &str {
    t.rsplit('/').next().unwrap()
}

/// Block sizes of big.bin: odd sizes so that boundaries fall inside keepstore's
/// verification chunks and keep-web's cache groups.
const SIZES: [usize; 3] = [100_003, 65_537, 40_000];
const HELLO: &str = "hello world\n";

struct W {
    k: Keep,
    http: reqwest::Client,
    port: u16,
    api: String,
    admin: String,
    alice: String,
    alice_uuid: String,
    bob: String,
    /// alice's collection: big.bin (3 blocks), hello.txt, `<i>&.txt`, index.html,
    /// sub/a.txt, t=x/y.txt
    c1: String,
    c1_pdh: String,
    /// bob's private collection: secret.txt
    c_bob: String,
    /// alice's project `proj` holding collection `inproj` (hello.txt) and filter group
    /// `filt` that matches `proj` itself
    proj: String,
    c_in_proj: String,
    big: Vec<u8>,
    hello_loc: String,
}

impl W {
    async fn start() -> W {
        let k = Keep::start("");
        let web = k.web.clone().expect("keep serve reports the keep-web URL");
        let port = web.rsplit(':').next().unwrap().parse().unwrap();
        let api = k.api.clone().expect("api url");
        let admin = std::fs::read_to_string(k.path("admin-token"))
            .unwrap()
            .trim()
            .to_string();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut w = W {
            k,
            http,
            port,
            api,
            admin,
            alice: String::new(),
            alice_uuid: String::new(),
            bob: String::new(),
            c1: String::new(),
            c1_pdh: String::new(),
            c_bob: String::new(),
            proj: String::new(),
            c_in_proj: String::new(),
            big: Vec::new(),
            hello_loc: String::new(),
        };
        let (alice_uuid, alice) = w.user("alice").await;
        let (_, bob) = w.user("bob").await;
        w.alice = alice.clone();
        w.alice_uuid = alice_uuid;
        w.bob = bob.clone();

        let parts: Vec<Vec<u8>> = SIZES
            .iter()
            .enumerate()
            .map(|(i, n)| bytes(*n, i as u64 + 1))
            .collect();
        let mut locs = Vec::new();
        for p in &parts {
            locs.push(w.put_block(&alice, p.clone()).await);
        }
        w.big = parts.concat();
        let l4 = w.put_block(&alice, HELLO.as_bytes().to_vec()).await;
        w.hello_loc = l4.clone();
        let n = w.big.len();
        let m = format!(
            ". {} {} {} {l4} 0:{n}:big.bin {n}:12:hello.txt {n}:12:<i>&.txt {n}:12:index.html\n\
             ./sub {l4} 0:12:a.txt\n./t=x {l4} 0:12:y.txt\n",
            locs[0], locs[1], locs[2]
        );
        let c1 = w.collection(&alice, "c1", None, &m).await;
        w.c1 = c1["uuid"].as_str().unwrap().to_string();
        w.c1_pdh = c1["portable_data_hash"].as_str().unwrap().to_string();
        let lb = w.put_block(&bob, b"bob's secret".to_vec()).await;
        let cb = w
            .collection(&bob, "bobs", None, &format!(". {lb} 0:12:secret.txt\n"))
            .await;
        w.c_bob = cb["uuid"].as_str().unwrap().to_string();

        let (st, p) = w
            .post(
                "/arvados/v1/groups",
                &alice,
                json!({"group": {"name": "proj", "group_class": "project"}}),
            )
            .await;
        assert_eq!(st, 200, "{p}");
        w.proj = p["uuid"].as_str().unwrap().to_string();
        let proj = w.proj.clone();
        let cp = w
            .collection(
                &alice,
                "inproj",
                Some(&proj),
                &format!(". {l4} 0:12:hello.txt\n"),
            )
            .await;
        w.c_in_proj = cp["uuid"].as_str().unwrap().to_string();
        let (st, f) = w
            .post(
                "/arvados/v1/groups",
                &alice,
                json!({"group": {"name": "filt", "group_class": "filter", "owner_uuid": proj,
                    "properties": {"filters": [["groups.uuid", "=", proj]]}}}),
            )
            .await;
        assert_eq!(st, 200, "{f}");
        w
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.api_call(reqwest::Method::POST, path, token, body)
            .await
    }

    async fn api_call(
        &self,
        m: reqwest::Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(m, format!("{}{path}", self.api))
            .bearer_auth(token);
        if !body.is_null() {
            r = r.json(&body);
        }
        let r = r.send().await.unwrap();
        let st = r.status().as_u16();
        (st, r.json().await.unwrap_or(Value::Null))
    }

    async fn user(&self, name: &str) -> (String, String) {
        let (st, u) = self
            .post(
                "/arvados/v1/users",
                &self.admin,
                json!({"user": {"username": name}}),
            )
            .await;
        assert_eq!(st, 200, "{u}");
        let uuid = u["uuid"].as_str().unwrap().to_string();
        let tok = self.token_for(&uuid, json!({})).await;
        (uuid, tok)
    }

    async fn token_for(&self, user: &str, extra: Value) -> String {
        let mut body = json!({"owner_uuid": user});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                body[k] = v;
            }
        }
        let (st, t) = self
            .post(
                "/arvados/v1/api_client_authorizations",
                &self.admin,
                json!({"api_client_authorization": body}),
            )
            .await;
        assert_eq!(st, 200, "{t}");
        format!(
            "v2/{}/{}",
            t["uuid"].as_str().unwrap(),
            t["api_token"].as_str().unwrap()
        )
    }

    async fn put_block(&self, token: &str, body: Vec<u8>) -> String {
        let r = self
            .http
            .put(format!(
                "{}/{}",
                self.k.keepstore,
                keep_format::Hash::of(&body)
            ))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap().trim().to_string()
    }

    async fn collection(&self, token: &str, name: &str, owner: Option<&str>, m: &str) -> Value {
        let mut c = json!({"name": name, "manifest_text": m});
        if let Some(o) = owner {
            c["owner_uuid"] = json!(o);
        }
        let (st, v) = self
            .post("/arvados/v1/collections", token, json!({"collection": c}))
            .await;
        assert_eq!(st, 200, "{v}");
        v
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

    /// alice's GET on the download host.
    async fn get_dl(&self, path: &str) -> (u16, String) {
        let r = self
            .req("GET", DL, path)
            .bearer_auth(&self.alice)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn propfind(
        &self,
        host: &str,
        path: &str,
        depth: Option<&str>,
        body: &str,
    ) -> (u16, String) {
        let mut r = self.req("PROPFIND", host, path).bearer_auth(&self.alice);
        if let Some(d) = depth {
            r = r.header("Depth", d);
        }
        let r = r.body(body.to_string()).send().await.unwrap();
        let st = r.status().as_u16();
        (st, r.text().await.unwrap())
    }

    /// Sends raw bytes (no client normalising the path) and returns the status line.
    fn raw_status(&self, request: &[u8]) -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        s.write_all(request).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            if out.windows(2).any(|w| w == b"\r\n") {
                break;
            }
        }
        String::from_utf8_lossy(&out)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// No token's secret ever reaches the log.
    fn assert_log_clean(&self) {
        let log = self.k.log();
        assert!(!log.is_empty(), "keep serve logs a line per request");
        for t in [&self.admin, &self.alice, &self.bob] {
            assert!(!log.contains(secret(t)), "a token reached the log");
            assert!(!log.contains(&b64(t)), "a cookie reached the log");
        }
    }
}

fn responses(xml: &str) -> usize {
    xml.matches("<D:response>").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_credential_source_on_a_vhost() {
    let w = W::start().await;
    let vh = w.vhost();
    let dash = format!("{}--localhost", w.c1);
    let ok = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), HELLO);
    };
    // Bearer, on both vhost forms
    for h in [&vh, &dash] {
        ok(w.req("GET", h, "/hello.txt")
            .bearer_auth(&w.alice)
            .send()
            .await
            .unwrap())
        .await;
    }
    // Basic: any non-empty user name, the token as password
    ok(w.req("GET", &vh, "/hello.txt")
        .basic_auth("anyone", Some(&w.alice))
        .send()
        .await
        .unwrap())
    .await;
    // the api_token cookie holds base64 of the token
    ok(w.req("GET", &vh, "/hello.txt")
        .header("Cookie", format!("other=1; api_token={}", b64(&w.alice)))
        .send()
        .await
        .unwrap())
    .await;
    // a query token on a WebDAV method is an ordinary credential: no redirect
    let r = w
        .req(
            "PROPFIND",
            &vh,
            &format!("/hello.txt?api_token={}", esc(&w.alice)),
        )
        .header("Depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    // (a query token on GET is the 303 flow: its own test)
    // the t= path token on a vhost
    ok(
        w.req("GET", &vh, &format!("/t={}/hello.txt", esc(&w.alice)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    // the order: Bearer comes first, so bob's Bearer wins over alice's cookie
    let r = w
        .req("GET", &vh, "/hello.txt")
        .bearer_auth(&w.bob)
        .header("Cookie", format!("api_token={}", b64(&w.alice)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "an earlier source that can't see it falls through to the next"
    );

    // nothing: 401 with the Basic challenge
    let r = w.req("GET", &vh, "/hello.txt").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Basic realm=\"collections\""
    );
    // Basic with an empty user name is not a credential
    let r = w
        .req("GET", &vh, "/hello.txt")
        .basic_auth("", Some(&w.alice))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // a token that does not exist: 401; a valid one that can't see it: 404
    let r = w
        .req("GET", &vh, "/hello.txt")
        .bearer_auth("v2/zzzzz-gj3su-000000000000000/nosuchsecret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = w
        .req("GET", &vh, "/hello.txt")
        .bearer_auth(&w.bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "existence never leaks");
    let r = w
        .req("GET", &format!("{}.localhost", w.c_bob), "/secret.txt")
        .bearer_auth(&w.bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    w.assert_log_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_host_header_ignores_client_tokens() {
    let w = W::start().await;
    // HTTP/1.0 allows no Host: alice's Bearer is not honoured, only the anonymous token
    let st = w.raw_status(
        format!(
            "GET /c={}/hello.txt HTTP/1.0\r\nAuthorization: Bearer {}\r\n\r\n",
            w.c1, w.alice
        )
        .as_bytes(),
    );
    assert!(st.contains(" 401 "), "{st}");
    // the same with the download host named: 200
    let st = w.raw_status(
        format!(
            "GET /c={}/hello.txt HTTP/1.0\r\nHost: {DL}\r\nAuthorization: Bearer {}\r\n\r\n",
            w.c1, w.alice
        )
        .as_bytes(),
    );
    assert!(st.contains(" 200 "), "{st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_token_303_flow_followed_with_the_cookie() {
    let w = W::start().await;
    for host in [w.vhost(), DL.to_string()] {
        let base = if host == DL {
            format!("/c={}", w.c1)
        } else {
            String::new()
        };
        let r = w
            .req(
                "GET",
                &host,
                &format!("{base}/hello.txt?a=1&api_token={}&b=2", esc(&w.alice)),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{host}");
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(loc, format!("//{host}:{}{base}/hello.txt?a=1&b=2", w.port));
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        for attr in ["Path=/", "HttpOnly", "SameSite=Lax"] {
            assert!(cookie.contains(attr), "{cookie}");
        }
        assert!(!cookie.contains("Secure"), "{cookie}");
        let kv = cookie.split(';').next().unwrap().to_string();
        assert_eq!(kv, format!("api_token={}", b64(&w.alice)));
        // follow it as a browser does: scheme-relative Location, the cookie sent back
        let url = format!("http:{loc}");
        let r = w
            .http
            .get(url.replace(&format!("//{host}:"), "//127.0.0.1:"))
            .header("Host", format!("{host}:{}", w.port))
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
    let vh = w.vhost();
    // behind https (X-Forwarded-Proto): the cookie is Secure
    let r = w
        .req(
            "GET",
            &vh,
            &format!("/hello.txt?api_token={}", esc(&w.alice)),
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
    let r = w
        .req(
            "HEAD",
            &vh,
            &format!("/hello.txt?api_token={}", esc(&w.alice)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // POST forms: urlencoded and multipart
    let r = w
        .req("POST", &vh, "/hello.txt?x=y")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("api_token={}", esc(&w.alice)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("//{vh}:{}/hello.txt?x=y", w.port)
    );
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with(&format!("api_token={}", b64(&w.alice))));
    let r = w
        .req("POST", &vh, "/hello.txt")
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"api_token\"\r\n\r\n{}\r\n--XyZ--\r\n",
            w.alice
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with(&format!("api_token={}", b64(&w.alice))));
    w.assert_log_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_host_400_for_query_tokens_and_ignores_credentials() {
    let w = W::start().await;
    let path = format!("/c={}/hello.txt", w.c1);
    let r = w
        .req(
            "GET",
            SHARED,
            &format!("{path}?api_token={}", esc(&w.alice)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("refused on this host"));
    let r = w
        .req("POST", SHARED, &path)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("api_token={}", esc(&w.alice)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Bearer, Basic and cookie are ignored here: only the anonymous token applies
    for r in [
        w.req("GET", SHARED, &path).bearer_auth(&w.alice),
        w.req("GET", SHARED, &path).basic_auth("x", Some(&w.alice)),
        w.req("GET", SHARED, &path)
            .header("Cookie", format!("api_token={}", b64(&w.alice))),
    ] {
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    // public data (readable by the anonymous user) is served to anyone here
    let (st, l) = w
        .post(
            "/arvados/v1/links",
            &w.alice,
            json!({"link": {"link_class": "permission", "name": "can_read",
                "tail_uuid": "zzzzz-tpzed-anonymouspublic", "head_uuid": w.c_in_proj}}),
        )
        .await;
    assert_eq!(st, 200, "{l}");
    let r = w
        .req("GET", SHARED, &format!("/c={}/hello.txt", w.c_in_proj))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), HELLO);
    w.assert_log_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_host_serves_attachments() {
    let w = W::start().await;
    // the plain keep-web URL is the download host
    let r = w
        .http
        .get(format!(
            "{}/c={}/hello.txt",
            w.k.web.as_deref().unwrap(),
            w.c1
        ))
        .basic_auth("x", Some(&w.alice))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cd = r.headers()["content-disposition"].to_str().unwrap();
    assert!(cd.starts_with("attachment"), "{cd}");
    assert!(cd.contains("hello.txt"), "{cd}");
    // the HTML file is an attachment here, never rendered
    let (st, _) = w.get_dl(&format!("/c={}/index.html", w.c1)).await;
    assert_eq!(st, 200);
    let r = w
        .req("GET", DL, &format!("/c={}/index.html", w.c1))
        .bearer_auth(&w.alice)
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    // on its own vhost the file is inline
    let r = w
        .req("GET", &w.vhost(), "/index.html")
        .bearer_auth(&w.alice)
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
async fn sharing_url_works_and_is_refused_elsewhere_and_for_writes() {
    let w = W::start().await;
    let env = common::Env {
        home: tempfile::tempdir().unwrap(),
        api: w.api.clone(),
        token: w.alice.clone(),
    };
    let url = env.ok(&["share", &w.c1]);
    let prefix = format!("{}/c={}/t=", w.k.web.as_deref().unwrap(), w.c1);
    assert!(url.starts_with(&prefix) && url.ends_with("/_/"), "{url}");
    // with no other credential, on the download host (the URL as printed)
    let r = w.http.get(format!("{url}hello.txt")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), HELLO);
    // on a shared host too, and it replaces bob's credentials there
    let path = url
        .strip_prefix(w.k.web.as_deref().unwrap())
        .unwrap()
        .to_string();
    let r = w
        .req("GET", SHARED, &format!("{path}sub/a.txt"))
        .bearer_auth(&w.bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // its listing links stay under the sharing URL
    let r = w.req("GET", SHARED, &path).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("href=\"./hello.txt\""), "{page}");
    assert!(page.contains("href=\"./sub/\""), "{page}");
    // PROPFIND with it (what rclone and cadaver do)
    let r = w
        .req("PROPFIND", SHARED, &path)
        .header("Depth", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    // refused on another collection of the same user: 404
    let other = path.replace(&w.c1, &w.c_in_proj);
    for p in [format!("{other}hello.txt"), other.clone()] {
        let r = w.req("GET", SHARED, &p).send().await.unwrap();
        assert_eq!(r.status(), 404, "{p}");
    }
    let r = w
        .req(
            "GET",
            &format!("{}.localhost", w.c_in_proj),
            &format!(
                "/t={}/hello.txt",
                &path[path.find("/t=").unwrap() + 3..].trim_end_matches("/_/")
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // and for every write
    for m in ["PUT", "DELETE", "MKCOL", "MOVE", "COPY", "PROPPATCH"] {
        let r = w
            .req(m, SHARED, &format!("{path}new.txt"))
            .header("Destination", format!("{path}moved.txt"))
            .body("x")
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        assert!(st == 403 || st == 405, "{m}: {st}");
    }
    let (st, c) = w
        .api_call(
            reqwest::Method::GET,
            &format!("/arvados/v1/collections/{}", w.c1),
            &w.alice,
            Value::Null,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        c["portable_data_hash"],
        w.c1_pdh.as_str(),
        "nothing changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_t_token_is_404() {
    let w = W::start().await;
    // 404, not 401, even beside a valid credential and where the anonymous token applies
    for (host, p) in [
        (
            SHARED.to_string(),
            format!("/c={}/t=bogus123/hello.txt", w.c1),
        ),
        (
            DL.to_string(),
            format!("/c={}/t=bogus123/_/hello.txt", w.c1),
        ),
        (w.vhost(), "/t=bogus123/hello.txt".to_string()),
        (
            w.vhost(),
            "/t=v2%2Fzzzzz-gj3su-000000000000000%2Fnope/".to_string(),
        ),
    ] {
        let r = w
            .req("GET", &host, &p)
            .bearer_auth(&w.alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{host}{p}");
        assert!(!r.headers().contains_key("www-authenticate"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn underscore_escape_reaches_a_directory_named_t_eq() {
    let w = W::start().await;
    // `_` after the token is dropped, so `t=x` is a directory name
    let r = w
        .req(
            "GET",
            SHARED,
            &format!("/c={}/t={}/_/t=x/y.txt", w.c1, esc(&w.alice)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), HELLO);
    let r = w
        .req("GET", &w.vhost(), "/_/t=x/y.txt")
        .bearer_auth(&w.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), HELLO);
    // without the escape `t=x` is a (bogus) token
    let r = w
        .req("GET", &w.vhost(), "/t=x/y.txt")
        .bearer_auth(&w.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // only one `_` is dropped
    let r = w
        .req("GET", &w.vhost(), "/_/_/t=x/y.txt")
        .bearer_auth(&w.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_range_form_across_the_blocks_of_a_3_block_file() {
    let w = W::start().await;
    let big = w.big.clone();
    let len = big.len();
    let vh = w.vhost();
    let get = |range: String, if_range: Option<String>| {
        let mut r = w
            .req("GET", &vh, "/big.bin")
            .bearer_auth(&w.alice)
            .header("Range", range);
        if let Some(i) = if_range {
            r = r.header("If-Range", i);
        }
        r.send()
    };
    let r = w
        .req("GET", &vh, "/big.bin")
        .bearer_auth(&w.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
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
        let e = b.min(len - 1);
        assert_eq!(r.headers()["content-range"], format!("bytes {a}-{e}/{len}"));
        assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
        assert!(r.bytes().await.unwrap() == big[a..=e], "{a}-{b}");
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
    let r = w
        .req("HEAD", &vh, "/big.bin")
        .bearer_auth(&w.alice)
        .header("Range", format!("bytes={}-{}", b1 - 1, b1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-length"], "2");
    assert!(r.bytes().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_requests_get_304_and_etags_follow_content() {
    let w = W::start().await;
    let vh = w.vhost();
    let head = |p: &'static str| w.req("HEAD", &vh, p).bearer_auth(&w.alice).send();
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
            let r = w
                .req(m, &vh, "/hello.txt")
                .bearer_auth(&w.alice)
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
        let r = w
            .req("GET", &vh, "/hello.txt")
            .bearer_auth(&w.alice)
            .header(h, &v)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{h}: {v}");
    }
    // If-None-Match wins over If-Modified-Since
    let r = w
        .req("GET", &vh, "/hello.txt")
        .bearer_auth(&w.alice)
        .header("If-None-Match", "\"other\"")
        .header("If-Modified-Since", &lm)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // the ETag comes from the file's content: the same bytes under another name or in
    // another collection share it; the file keeps it when another file changes
    let big_etag = head("/big.bin").await.unwrap().headers()["etag"].clone();
    assert_ne!(big_etag.to_str().unwrap(), etag);
    let r = w
        .req("HEAD", &vh, "/sub/a.txt")
        .bearer_auth(&w.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    let l = w.hello_loc.clone();
    let lb = w.put_block(&w.alice, b"new file".to_vec()).await;
    let (st, c) = w
        .api_call(
            reqwest::Method::GET,
            &format!("/arvados/v1/collections/{}", w.c1),
            &w.alice,
            Value::Null,
        )
        .await;
    assert_eq!(st, 200);
    let m = format!(
        "{}./new {lb} 0:8:n.txt\n./other {l} 0:12:a.txt\n",
        c["manifest_text"].as_str().unwrap()
    );
    let (st, v) = w
        .api_call(
            reqwest::Method::PUT,
            &format!("/arvados/v1/collections/{}", w.c1),
            &w.alice,
            json!({"collection": {"manifest_text": m}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_ne!(v["portable_data_hash"], w.c1_pdh.as_str());
    // keep-web sees the new version (its cache follows the PDH) and the old files
    // keep their ETags
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = w
            .req("HEAD", &vh, "/new/n.txt")
            .bearer_auth(&w.alice)
            .send()
            .await
            .unwrap();
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
    let r = w
        .req("GET", &vh, "/hello.txt")
        .bearer_auth(&w.alice)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directories_redirect_then_list_in_html() {
    let w = W::start().await;
    let c1 = &w.c1;
    // no trailing slash: 303 to the slash form (query kept)
    for (p, want) in [
        (format!("/c={c1}"), format!("/c={c1}/")),
        (format!("/c={c1}/sub"), format!("/c={c1}/sub/")),
        ("/users".to_string(), "/users/".to_string()),
        (format!("/c={c1}/sub?x=1"), format!("/c={c1}/sub/?x=1")),
    ] {
        let r = w
            .req("GET", DL, &p)
            .bearer_auth(&w.alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{p}");
        assert_eq!(r.headers()["location"], want.as_str(), "{p}");
    }
    // the listing of one level, never index.html, names escaped
    let r = w
        .req("GET", DL, &format!("/c={c1}/"))
        .bearer_auth(&w.alice)
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
    assert!(page.contains(&w.big.len().to_string()), "sizes: {page}");
    assert!(page.contains("&lt;i&gt;&amp;.txt"), "{page}");
    assert!(!page.contains("<i>"), "names are escaped");
    assert!(!page.contains("a.txt"), "one level only");
    // a link under the t= escape still reaches the directory literally named t=x
    let r = w
        .req("GET", &w.vhost(), "/_/t=x/")
        .bearer_auth(&w.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("href=\"./y.txt\""));
    // the same page on the vhost, and a missing name
    let r = w
        .req("GET", &w.vhost(), "/sub/")
        .bearer_auth(&w.alice)
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("href=\"./a.txt\""));
    let (st, _) = w.get_dl(&format!("/c={c1}/nosuch")).await;
    assert_eq!(st, 404);
    let (st, _) = w.get_dl(&format!("/c={c1}/hello.txt/")).await;
    assert!((400..500).contains(&st), "a file with a slash: {st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propfind_depths_refusals_and_bad_requests() {
    let w = W::start().await;
    let vh = w.vhost();
    // Depth 0
    let (st, x) = w.propfind(&vh, "/", Some("0"), "").await;
    assert_eq!(st, 207);
    assert_eq!(responses(&x), 1, "{x}");
    assert!(x.contains("<D:collection/>"), "{x}");
    // Depth 1: root + big.bin hello.txt <i>&.txt index.html sub t=x
    let (st, x) = w.propfind(&vh, "/", Some("1"), "").await;
    assert_eq!(st, 207);
    assert_eq!(responses(&x), 7, "{x}");
    assert!(x.contains(&format!(
        "<D:getcontentlength>{}</D:getcontentlength>",
        w.big.len()
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
    let r = w
        .req("HEAD", &vh, "/hello.txt")
        .bearer_auth(&w.alice)
        .send()
        .await
        .unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(x.contains(&format!("<D:getetag>{etag}</D:getetag>")), "{x}");
    assert!(!x.contains("&quot;"), "{x}");
    // Depth 1 of a file is that file
    let (st, x) = w.propfind(&vh, "/sub/a.txt", Some("1"), "").await;
    assert_eq!((st, responses(&x)), (207, 1));
    // Depth infinity inside one collection: the whole tree
    let (st, x) = w.propfind(&vh, "/", Some("infinity"), "").await;
    assert_eq!(st, 207);
    assert_eq!(responses(&x), 9, "{x}");
    assert!(x.contains("<D:href>/sub/a.txt</D:href>"));
    assert!(x.contains("<D:href>/t=x/y.txt</D:href>"));
    // no Depth means infinity
    let (st, x) = w.propfind(DL, &format!("/c={}/", w.c1), None, "").await;
    assert_eq!((st, responses(&x)), (207, 9));
    // allprop and prop bodies
    for body in [
        "<?xml version=\"1.0\"?><D:propfind xmlns:D=\"DAV:\"><D:allprop/></D:propfind>",
        "<?xml version=\"1.0\"?><propfind xmlns=\"DAV:\"><prop><getetag/><getcontentlength/></prop></propfind>",
        "<D:propfind xmlns:D=\"DAV:\"><D:propname/></D:propfind>",
    ] {
        let (st, _) = w.propfind(&vh, "/", Some("1"), body).await;
        assert_eq!(st, 207, "{body}");
    }
    // above a collection: infinity refused with propfind-finite-depth
    for p in ["/", "/users/", "/users/alice/", "/by_id/"] {
        let (st, x) = w.propfind(DL, p, Some("infinity"), "").await;
        assert_eq!(st, 403, "{p}");
        assert!(x.contains("propfind-finite-depth"), "{x}");
        let (st, _) = w.propfind(DL, p, None, "").await;
        assert_eq!(st, 403, "{p} with no Depth");
        let (st, _) = w.propfind(DL, p, Some("1"), "").await;
        assert_eq!(st, 207, "{p} Depth 1");
    }
    // bad Depth, bad XML
    for d in ["2", "-1", "one", ""] {
        let (st, _) = w.propfind(&vh, "/", Some(d), "").await;
        assert_eq!(st, 400, "Depth {d:?}");
    }
    for body in [
        "<D:propfind xmlns:D=\"DAV:\"><D:allprop>",
        "not xml at all <",
        "<D:propfind xmlns:D=\"DAV:\"></D:prop>",
    ] {
        let (st, _) = w.propfind(&vh, "/", Some("1"), body).await;
        assert_eq!(st, 400, "{body}");
    }
    // a missing path: 404
    let (st, _) = w.propfind(&vh, "/nosuch", Some("0"), "").await;
    assert_eq!(st, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_lock_and_unlock() {
    let w = W::start().await;
    let vh = w.vhost();
    let r = w.req("OPTIONS", &vh, "/hello.txt").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["dav"], "1, 2");
    assert_eq!(r.headers()["ms-author-via"], "DAV");
    let allow = r.headers()["allow"].to_str().unwrap().to_string();
    for m in ["GET", "HEAD", "PROPFIND", "LOCK", "UNLOCK", "OPTIONS"] {
        assert!(allow.contains(m), "{allow}");
    }
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let r = w
            .req("LOCK", &vh, "/hello.txt")
            .bearer_auth(&w.alice)
            .header("Timeout", "Second-600")
            .body(
                "<?xml version=\"1.0\"?><D:lockinfo xmlns:D=\"DAV:\"><D:lockscope><D:exclusive/>\
                 </D:lockscope><D:locktype><D:write/></D:locktype><D:owner>me</D:owner></D:lockinfo>",
            )
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
    let r = w
        .req("UNLOCK", &vh, "/hello.txt")
        .bearer_auth(&w.alice)
        .header("Lock-Token", &tokens[0])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // LOCK needs a token that can see the file, like any read
    let r = w.req("LOCK", &vh, "/hello.txt").send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_shows_as_an_empty_directory() {
    let w = W::start().await;
    let (st, x) = w.get_dl("/users/alice/proj/").await;
    assert_eq!(st, 200);
    assert!(x.contains("./inproj/") && x.contains("./filt/"), "{x}");
    // the filter group lists what it matches: proj itself
    let (st, x) = w.get_dl("/users/alice/proj/filt/").await;
    assert_eq!(st, 200);
    assert!(x.contains("./proj/"), "{x}");
    // proj's second occurrence on the path is empty, in HTML, PROPFIND and GET alike
    let (st, x) = w.get_dl("/users/alice/proj/filt/proj/").await;
    assert_eq!(st, 200);
    assert!(!x.contains("./filt/") && !x.contains("./inproj/"), "{x}");
    for d in ["0", "1"] {
        let (st, x) = w
            .propfind(DL, "/users/alice/proj/filt/proj/", Some(d), "")
            .await;
        assert_eq!(st, 207);
        assert_eq!(responses(&x), 1, "Depth {d}: {x}");
    }
    let (st, _) = w
        .get_dl("/users/alice/proj/filt/proj/inproj/hello.txt")
        .await;
    assert_eq!(st, 404);
    let (st, _) = w.get_dl("/users/alice/proj/filt/proj/filt/").await;
    assert_eq!(st, 404);
    // and it is read-only
    let r = w
        .req("PUT", DL, "/users/alice/proj/filt/proj/x.txt")
        .bearer_auth(&w.alice)
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
        let (st, x) = w.propfind(DL, &p, Some("1"), "").await;
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
async fn root_by_id_and_users() {
    let w = W::start().await;
    let (st, x) = w.get_dl("/").await;
    assert_eq!(st, 200);
    assert!(x.contains("./by_id/") && x.contains("./users/"), "{x}");
    let (st, x) = w.get_dl("/by_id/").await;
    assert_eq!(st, 200);
    assert!(!x.contains(&w.c1), "/by_id/ is an empty listing");
    let (st, x) = w.get_dl("/users/").await;
    assert_eq!(st, 200);
    assert!(x.contains("./alice/") && !x.contains("./bob/"), "{x}");
    let (st, x) = w.get_dl("/users/alice/").await;
    assert_eq!(st, 200);
    assert!(x.contains("./proj/") && x.contains("./c1/"), "{x}");
    let (st, x) = w.get_dl("/users/alice/c1/sub/a.txt").await;
    assert_eq!((st, x.as_str()), (200, HELLO));
    // by_id: a collection by UUID and by PDH, a project
    let (st, x) = w.get_dl(&format!("/by_id/{}/hello.txt", w.c1)).await;
    assert_eq!((st, x.as_str()), (200, HELLO));
    let r = w
        .req("GET", DL, &format!("/by_id/{}/big.bin", w.c1_pdh))
        .bearer_auth(&w.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert!(r.bytes().await.unwrap() == w.big);
    let (st, x) = w.get_dl(&format!("/by_id/{}/", w.proj)).await;
    assert_eq!(st, 200);
    assert!(x.contains("./inproj/"), "{x}");
    // by UUID: not immutable
    let r = w
        .req("GET", DL, &format!("/by_id/{}/hello.txt", w.c1))
        .bearer_auth(&w.alice)
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("cache-control"));
    // someone else's: 404, never 401; nothing at all: 401
    let (st, _) = w.get_dl(&format!("/by_id/{}/secret.txt", w.c_bob)).await;
    assert_eq!(st, 404);
    let (st, _) = w.get_dl("/by_id/zzzzz-4zz18-000000000000000/").await;
    assert_eq!(st, 404);
    let r = w.req("GET", DL, "/users/alice/").send().await.unwrap();
    assert_eq!(r.status(), 401);
    // listings are not writable
    for p in ["/", "/by_id/", "/users/", "/users/alice/"] {
        let r = w
            .req("MKCOL", DL, &format!("{p}new/"))
            .bearer_auth(&w.alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdh_vhost_and_pdh_paths() {
    let w = W::start().await;
    let (hash, size) = w.c1_pdh.split_once('+').unwrap();
    let label = format!(
        "{}-{size}",
        hash.parse::<keep_format::Hash>().unwrap().to_base32()
    );
    for host in [format!("{label}.localhost"), format!("{label}--localhost")] {
        let r = w
            .req("GET", &host, "/sub/a.txt")
            .bearer_auth(&w.alice)
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
        let r = w
            .req("GET", &host, "/big.bin")
            .bearer_auth(&w.alice)
            .header("Range", format!("bytes={}-{}", SIZES[0] - 1, SIZES[0]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        assert!(r.bytes().await.unwrap() == w.big[SIZES[0] - 1..=SIZES[0]]);
        // writes under a PDH: 405
        let r = w
            .req("PUT", &host, "/new.txt")
            .bearer_auth(&w.alice)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);
    }
    // in /c=, ` ` and `-` may stand for `+`
    for id in [
        w.c1_pdh.clone(),
        format!("{hash}-{size}"),
        format!("{hash}%20{size}"),
        w.c1_pdh.replace('+', "%2B"),
    ] {
        let (st, x) = w.get_dl(&format!("/c={id}/hello.txt")).await;
        assert_eq!((st, x.as_str()), (200, HELLO), "{id}");
    }
    // bob can't read it by PDH either
    let r = w
        .req("GET", &format!("{label}.localhost"), "/hello.txt")
        .bearer_auth(&w.bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_on_every_response_and_preflight() {
    let w = W::start().await;
    let vh = w.vhost();
    for (st, r) in [
        (200, w.req("GET", &vh, "/hello.txt").bearer_auth(&w.alice)),
        (
            206,
            w.req("GET", &vh, "/big.bin")
                .bearer_auth(&w.alice)
                .header("Range", "bytes=0-1"),
        ),
        (401, w.req("GET", &vh, "/hello.txt")),
        (
            207,
            w.req("PROPFIND", &vh, "/")
                .bearer_auth(&w.alice)
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
    let r = w
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
async fn path_traversal_attempts_are_4xx() {
    let w = W::start().await;
    let c1 = &w.c1;
    let mut tried = 0;
    for (host, p) in [
        (DL.to_string(), format!("/c={c1}/sub/../hello.txt")),
        (DL.to_string(), format!("/c={c1}/sub/%2e%2e/hello.txt")),
        (DL.to_string(), format!("/c={c1}/sub/%2E%2E/hello.txt")),
        (DL.to_string(), format!("/c={c1}/sub/.%2e/hello.txt")),
        (DL.to_string(), format!("/c={c1}/sub%2f..%2fhello.txt")),
        (DL.to_string(), format!("/c={c1}/sub%2Fa.txt")),
        (DL.to_string(), format!("/c={c1}/hello.txt%00")),
        (DL.to_string(), format!("/c={c1}/hello.txt%00.png")),
        (DL.to_string(), format!("/c={c1}/./hello.txt")),
        (
            DL.to_string(),
            format!("/c={c1}/../c={}/secret.txt", w.c_bob),
        ),
        (DL.to_string(), "/users/../by_id/".to_string()),
        (
            DL.to_string(),
            format!("/by_id/{c1}/%2e%2e/{}/secret.txt", w.c_bob),
        ),
        (w.vhost(), "/../hello.txt".to_string()),
        (w.vhost(), "/sub/%2e%2e/%2e%2e/hello.txt".to_string()),
        (w.vhost(), format!("/%2e%2e/c={}/secret.txt", w.c_bob)),
        (w.vhost(), "/sub%5c..%5chello.txt".to_string()),
    ] {
        for m in ["GET", "PROPFIND"] {
            let st = w.raw_status(
                format!(
                    "{m} {p} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
                     Depth: 0\r\nConnection: close\r\n\r\n",
                    w.alice
                )
                .as_bytes(),
            );
            let code: u16 = st.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
            assert!((400..500).contains(&code), "{m} {host}{p}: {st}");
            tried += 1;
        }
    }
    // a raw NUL byte in the request line
    let st = w.raw_status(
        format!("GET /c={c1}/hello.txt\0x HTTP/1.1\r\nHost: {DL}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert!(st.contains(" 400 ") || st.is_empty(), "{st}");
    assert!(tried > 0);
    // the plain path still works
    let (st, _) = w.get_dl(&format!("/c={c1}/sub/a.txt")).await;
    assert_eq!(st, 200);
}

/// A file written by `keep put` with full 64 MiB blocks: ranges at and across the block
/// boundary, and a small read deep inside a block, return exactly the bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_across_a_full_64_mib_block_boundary() {
    let w = W::start().await;
    let env = common::Env {
        home: tempfile::tempdir().unwrap(),
        api: w.api.clone(),
        token: w.alice.clone(),
    };
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
            .bearer_auth(&w.alice)
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
        .bearer_auth(&w.alice)
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
    // the harness writes the [web] table last: the setting lands in it
    let mut cfg = std::fs::read_to_string(&w.k.config).unwrap();
    assert!(
        cfg.trim_end().ends_with("listen = \"127.0.0.1:0\""),
        "{cfg}"
    );
    cfg.push_str("trust_all_content = true\n");
    std::fs::write(&w.k.config, cfg).unwrap();
    w.k.restart();
    w.port =
        w.k.web
            .as_deref()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
    let path = format!("/c={}/index.html", w.c1);
    let r = w
        .req("GET", SHARED, &path)
        .bearer_auth(&w.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key("content-disposition"));
    let r = w
        .req("GET", DL, &path)
        .bearer_auth(&w.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        !r.headers().contains_key("content-disposition"),
        "trusted content is inline on the download host too"
    );
    let r = w
        .req(
            "GET",
            SHARED,
            &format!("{path}?api_token={}", esc(&w.alice)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = w
        .req("GET", SHARED, &path)
        .bearer_auth(&w.bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
