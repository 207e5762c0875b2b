//! Issue 11 through keep-web: hostile input, slow clients, upstream faults. Real
//! servers on 127.0.0.1:0, built by `keep serve`'s own server builder.

mod common;

use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::Env;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DL: &str = "dl.example";

fn esc(t: &str) -> String {
    t.replace('/', "%2F")
}

/// Everything any thread of this test binary logs (the access log included).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Capture(b.clone()))
            .try_init();
        buf
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged() -> String {
    let l = logs().lock().unwrap_or_else(|p| p.into_inner());
    String::from_utf8_lossy(&l).into_owned()
}

/// This process's resident memory (the servers run in it), in KiB.
fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Raises this test process's open-file limit to its hard limit.
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

fn empty() -> String {
    keep_format::Locator::empty().to_string()
}

/// Item 1: an unauthenticated PROPFIND whose body nests 20,000 elements is refused
/// with a 4xx naming the limit, and costs no memory to speak of.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_xml_body_is_refused_without_memory() {
    let e = common::start().await;
    let body = format!(
        "<?xml version=\"1.0\"?>{}{}",
        "<D:a xmlns:D=\"DAV:\">".repeat(20_000),
        "</D:a>".repeat(20_000)
    );
    let before = rss_kib();
    for _ in 0..5 {
        let r = e
            .req("PROPFIND", "127.0.0.1", "/")
            .header("Depth", "1")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!((400..500).contains(&st), "{st} {text}");
        assert!(text.contains("limit") && text.contains("64"), "{text}");
    }
    // many flat elements: the element limit
    let flat = format!(
        "<D:propfind xmlns:D=\"DAV:\">{}</D:propfind>",
        "<D:x/>".repeat(50_000)
    );
    let r = e
        .req("PROPFIND", "127.0.0.1", "/")
        .body(flat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("elements"));
    let grew = rss_kib().saturating_sub(before);
    println!("resident memory grew {grew} KiB over five 20,000-deep PROPFINDs");
    assert!(grew < 64 << 10, "{grew} KiB");
}

/// Item 2: the API refuses a 60,000-level path; a path as deep as the API allows is
/// listed (Depth: infinity), shown and read by keep-web, without recursion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_manifest_paths() {
    let e = common::start().await;
    let deep = format!(".{} {} 0:0:f\n", "/a".repeat(60_000), empty());
    let (st, v) = e
        .post(
            "/arvados/v1/collections",
            &e.alice,
            serde_json::json!({"collection": {"manifest_text": deep}}),
        )
        .await;
    assert!((400..500).contains(&st), "{st} {v}");
    println!("API on a 60,000-level path: {st} {v}");

    let levels = keep_format::manifest::PATH_DEPTH_MAX - 1;
    let m = format!(".{} {} 0:0:f\n", "/a".repeat(levels), empty());
    let c = e.collection(&e.alice, "deep", None, &m).await;
    let vh = Env::vhost(&c);
    let r = e
        .req("PROPFIND", &vh, "/")
        .header("Depth", "infinity")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let x = r.text().await.unwrap();
    // the root, `levels` directories and f
    assert_eq!(x.matches("<D:response>").count(), levels + 2);
    let file = format!("{}/f", "/a".repeat(levels));
    let r = e
        .req("GET", &vh, &file)
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let dir = format!("{}/", "/a".repeat(levels));
    let r = e
        .req("GET", &vh, &dir)
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // and the gateway still serves everyone else
    let r = e
        .req("GET", &Env::vhost(&e.c1), "/hello.txt")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Item 7: a percent-encoded credential key is the same credential: stripped from
/// the 303's Location (so the redirect ends), kept out of every log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_credential_keys() {
    logs();
    let e = common::start().await;
    let vh = Env::vhost(&e.c1);
    let secret = e.alice.rsplit('/').next().unwrap().to_string();
    for key in ["api%5Ftoken", "api%5ftoken", "%61pi_token", "api_token"] {
        let path = format!("/hello.txt?a=1&{key}={}&b=2", esc(&e.alice));
        let r = e.req("GET", &vh, &path).send().await.unwrap();
        assert_eq!(r.status(), 303, "{key}");
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        assert!(loc.ends_with("/hello.txt?a=1&b=2"), "{key}: {loc}");
        assert!(!loc.contains(&secret) && !loc.contains("token"), "{loc}");
        let kv = r.headers()["set-cookie"].to_str().unwrap();
        let kv = kv.split(';').next().unwrap().to_string();
        // following it: served, no second redirect
        let r = e
            .req("GET", &vh, "/hello.txt?a=1&b=2")
            .header("Cookie", kv)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{key}");
    }
    // WebDAV methods take it as an ordinary credential, and say nothing of it
    let r = e
        .req("PROPFIND", &vh, &format!("/?api%5Ftoken={}", esc(&e.alice)))
        .header("Depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    // a t= path token in any spelling
    let r = e
        .req("GET", &vh, &format!("/t%3D{}/hello.txt", esc(&e.alice)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let log = logged();
    assert!(log.contains("hello.txt"), "the access log is captured");
    assert!(!log.contains(&secret), "a token in the log:\n{log}");
}

/// Item 8: no Location keep-web writes can be read as another host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_open_redirect() {
    let e = common::start().await;
    let l = e.put_block(&e.alice, b"x".to_vec()).await;
    let m = format!("./evil.example {l} 0:1:x\n./evil.example/b {l} 0:1:y\n");
    let c = e.collection(&e.alice, "redir", None, &m).await;
    let vh = Env::vhost(&c);
    for path in [
        "//evil.example",
        "/\\evil.example",
        "///evil.example",
        "//evil.example/b",
    ] {
        let r = e
            .req("GET", &vh, path)
            .bearer_auth(&e.alice)
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        if st == 303 {
            let loc = r.headers()["location"].to_str().unwrap();
            assert!(
                loc.starts_with('/') && !loc.starts_with("//"),
                "{path}: {loc}"
            );
            assert!(!loc.starts_with("/\\"), "{path}: {loc}");
        } else {
            assert!(st == 200 || st == 404 || st == 400, "{path}: {st}");
        }
    }
    // the cookie redirect names this host, and a path that stays on it
    let port = e.web_addr.port();
    let r = e
        .req(
            "GET",
            &vh,
            &format!("//evil.example?api_token={}", esc(&e.alice)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let loc = r.headers()["location"].to_str().unwrap();
    assert_eq!(loc, format!("//{vh}:{port}/evil.example"));
}

/// Item 9: names with control characters are served on the download host with a
/// valid Content-Disposition (RFC 6266 `filename*`), and listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_on_the_download_host() {
    let e = common::start().await;
    let l = e.put_block(&e.alice, b"hello world\n".to_vec()).await;
    let m =
        format!(". {l} 0:12:a\\001b.txt 0:12:cr\\015\\012lf 0:12:q\".txt\n./d\\001ir {l} 0:12:x\n");
    let c = e.collection(&e.alice, "ctl\u{1}name", None, &m).await;
    let id = Env::uuid(&c);
    for (path, want) in [
        ("/a%01b.txt", "filename*=UTF-8''a%01b.txt"),
        ("/cr%0D%0Alf", "filename*=UTF-8''cr%0D%0Alf"),
        ("/q%22.txt", "filename*=UTF-8''q%22.txt"),
    ] {
        let r = e
            .req("GET", DL, &format!("/c={id}{path}"))
            .bearer_auth(&e.alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let cd = r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(cd.starts_with("attachment; filename=\""), "{cd}");
        assert!(cd.ends_with(want), "{path}: {cd}");
        assert_eq!(r.text().await.unwrap(), "hello world\n");
    }
    for path in ["/", "/d%01ir/"] {
        let r = e
            .req("GET", DL, &format!("/c={id}{path}"))
            .bearer_auth(&e.alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
}

/// Item 12a and item 6 for keepstores: with keepstore gone, a read answers 503 with
/// Retry-After, and neither the body nor any log line names a signed locator or the
/// keepstore's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_leak_nothing() {
    logs();
    let e = common::start().await;
    let ks_addr = e.ks.trim_start_matches("http://").to_string();
    e.stop_keepstore().await;
    let r = e
        .req("GET", &Env::vhost(&e.c1), "/big.bin")
        .bearer_auth(&e.alice)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    let retry = r.headers().get("retry-after").cloned();
    let body = r.text().await.unwrap();
    println!("keepstore down: {st} {body}");
    assert_eq!(st, 503, "{body}");
    assert_eq!(retry.unwrap(), "5");
    assert!(!body.contains("+A") && !body.contains(&ks_addr), "{body}");
    let sig = e.c1.record["manifest_text"].as_str().unwrap();
    let sig = sig
        .split("+A")
        .nth(1)
        .unwrap()
        .split([' ', '@'])
        .next()
        .unwrap();
    let log = logged();
    assert!(!log.contains(sig), "a block signature in the log");
}

/// Item 6: the API stopped (`keep serve --only api`), keep-web answers 503 with
/// Retry-After (not 502 with an internal URL); started again, keep-web serves again by
/// itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_outage_is_503_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("keep.toml");
    let write_cfg = |port: u16| {
        std::fs::write(
            &cfg,
            format!("management_token = \"m\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n"),
        )
        .unwrap()
    };
    write_cfg(0);
    let args = || keep_cli::serve::ServeArgs {
        data: dir.path().join("data"),
        config: Some(cfg.clone()),
        only: Some(keep_cli::serve::Only::Api),
    };
    let api = keep_cli::serve::start(&args()).await.unwrap();
    let api_url = api.api_url.clone().unwrap();
    let port: u16 = api_url.rsplit(':').next().unwrap().parse().unwrap();
    let admin = std::fs::read_to_string(dir.path().join("data/admin-token")).unwrap();
    let admin = admin.trim().to_string();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{api_url}/arvados/v1/collections"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"collection": {"name": "c",
            "manifest_text": format!(". {} 0:0:empty.txt\n", empty())}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let c: serde_json::Value = r.json().await.unwrap();
    let kw = keep_web::KeepWeb::new(keep_web::Config {
        api_url: api_url.clone(),
        ..keep_web::Config::default()
    })
    .unwrap();
    let (web, web_addr, _h) =
        common::serve_with(&keep_cli::serve::ServerSettings::default(), move |s| {
            kw.configure(s)
        });
    let get = || {
        http.get(format!("{web}/empty.txt"))
            .header(
                "Host",
                format!(
                    "{}.localhost:{}",
                    c["uuid"].as_str().unwrap_or_default(),
                    web_addr.port()
                ),
            )
            .bearer_auth(&admin)
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 200);

    api.stop().await;
    // past keep-web's view cache
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for _ in 0..3 {
        let r = get().await.unwrap();
        let st = r.status().as_u16();
        let retry = r.headers().get("retry-after").cloned();
        let body = r.text().await.unwrap();
        println!("API down: {st} {body}");
        assert_eq!(st, 503, "{body}");
        assert_eq!(retry.unwrap(), "5");
        assert!(!body.contains(&format!(":{port}")), "{body}");
    }

    write_cfg(port);
    let started = Instant::now();
    let api = loop {
        // the database lock goes with the last reference to the stopped API
        match keep_cli::serve::start(&args()).await {
            Ok(a) => break a,
            Err(err) if started.elapsed() < Duration::from_secs(10) => {
                println!("restarting the API: {err}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => panic!("{err}"),
        }
    };
    let r = get().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    api.stop().await;
}

/// A TCP proxy in front of `target` that answers one request per connection: when a
/// second request arrives on a connection, it closes it without a byte of answer (as a
/// server does whose keep-alive ran out just as the client reused the connection).
async fn one_request_per_connection_proxy(target: std::net::SocketAddr) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let Some(head) = read_head(&mut client).await else {
                    return;
                };
                let mut up = tokio::net::TcpStream::connect(target).await.unwrap();
                up.write_all(&head).await.unwrap();
                let Some(resp) = read_response(&mut up).await else {
                    return;
                };
                let _ = client.write_all(&resp).await;
                // the next request: dropped unanswered
                let mut b = [0u8; 1];
                let _ = client.read(&mut b).await;
            });
        }
    });
    format!("http://{addr}")
}

/// A request head (GET: no body), bytes as sent.
async fn read_head(s: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut b).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&b[..n]);
    }
    Some(buf)
}

/// One response with a Content-Length, bytes as sent.
async fn read_response(s: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = read_head(s).await?;
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))?
        .trim()
        .parse()
        .ok()?;
    let mut b = [0u8; 4096];
    while buf.len() < end + len {
        let n = s.read(&mut b).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&b[..n]);
    }
    Some(buf)
}

/// Item 7 (the load finding): a pooled connection the server closes just as keep-web
/// reuses it costs a retry, not a 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_pooled_connections_are_retried() {
    let e = common::start().await;
    let api_addr: std::net::SocketAddr = e.api.trim_start_matches("http://").parse().unwrap();
    let proxy = one_request_per_connection_proxy(api_addr).await;
    let kw = keep_web::KeepWeb::new(keep_web::Config {
        api_url: proxy,
        ..e.web_config()
    })
    .unwrap();
    let (web, web_addr, _h) =
        common::serve_with(&keep_cli::serve::ServerSettings::default(), move |s| {
            kw.configure(s)
        });
    for i in 0..4 {
        let r = e
            .http
            .get(format!("{web}/hello.txt"))
            .header("Host", format!("{}:{}", Env::vhost(&e.c1), web_addr.port()))
            .bearer_auth(&e.alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "request {i}: {}", r.text().await.unwrap());
        // past the view cache: every request asks the API again
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
}

/// Item 5 (slowloris): with 2,000 idle or trickling connections open, a normal client
/// is served at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_do_not_starve_others() {
    let limit = raise_fd_limit();
    println!("open-file limit {limit}");
    assert!(
        limit > 4500,
        "this test needs 4,500 open files (2,000 connections, both ends)"
    );
    let e = common::start().await;
    let addr = e.web_addr;
    let mut conns = Vec::new();
    for i in 0..2000 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        if i % 2 == 1 {
            s.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        conns.push(s);
    }
    // the trickling half sends a header byte every 200 ms
    let trickle = tokio::spawn(async move {
        for _ in 0..20 {
            for s in conns.iter_mut().skip(1).step_by(2) {
                let _ = s.write_all(b"X").await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        conns
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = reqwest::Client::new();
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let t = Instant::now();
        let r = client
            .get(format!("{}/hello.txt", e.web))
            .header("Host", format!("{}:{}", Env::vhost(&e.c1), addr.port()))
            .bearer_auth(&e.alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        worst = worst.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "with 2,000 idle or trickling connections: slowest of 10 GETs {:.1} ms",
        worst.as_secs_f64() * 1000.0
    );
    assert!(worst < Duration::from_secs(2), "{worst:?}");
    drop(trickle.await.unwrap());
}

/// Item 5: a connection that completes a request and then trickles the next head
/// forever (actix times only a connection's first head) is closed by the watchdog; a
/// body that stops is answered 408.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_and_bodies_are_cut_off() {
    let e = common::start().await;
    let settings = keep_cli::serve::ServerSettings {
        header_timeout: Duration::from_secs(1),
        keep_alive: Duration::from_secs(1),
        body_idle_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let kw = keep_web::KeepWeb::new(e.web_config()).unwrap();
    let (_, addr, _h) = common::serve_with(&settings, move |s| kw.configure(s));

    // one request, then a head that never ends: closed within keep_alive + header_timeout
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /_health/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut b = vec![0u8; 4096];
    let n = s.read(&mut b).await.unwrap();
    assert!(String::from_utf8_lossy(&b[..n]).starts_with("HTTP/1.1 "));
    let t = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            // a trickle that keeps the connection "active" at the TCP level
            if s.write_all(b"o").await.is_err() {
                return;
            }
            let mut b = [0u8; 64];
            match tokio::time::timeout(Duration::from_millis(300), s.read(&mut b)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                _ => {}
            }
        }
    })
    .await;
    println!("trickled second head closed after {:?}", t.elapsed());
    assert!(closed.is_ok(), "the connection was still open after 10 s");

    // a body that stops after 10 of 100 bytes: 408
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"PROPFIND / HTTP/1.1\r\nHost: 127.0.0.1\r\nDepth: 0\r\nContent-Length: 100\r\n\r\n<?xml ver",
    )
    .await
    .unwrap();
    let t = Instant::now();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut b = [0u8; 4096];
        while !out.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut b).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&b[..n]),
            }
        }
    })
    .await;
    let head = String::from_utf8_lossy(&out).to_string();
    println!("stalled body answered after {:?}: {head}", t.elapsed());
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    let _ = std::io::stdout().flush();
}
