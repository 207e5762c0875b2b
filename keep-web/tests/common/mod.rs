//! keepstore + API + keep-web in-process on 127.0.0.1:0, real sockets. The API and the
//! records (users, tokens, collections) come from keep-testkit; `Env` derefs to its
//! API client (`user`, `token_for`, `post`, `call`, `collection`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use keep_format::Token;
use keep_testkit::{bytes, Api, ApiServer, ApiSettings, Collection};
use serde_json::json;

pub const KEY: &str = "test-signing-key";
pub const ROOT: &str = "rootsecret0123456789";
pub const MGMT: &str = "management-token";
pub const HELLO: &str = "hello world\n";
/// Block sizes of big.bin: odd sizes, so that boundaries fall inside keepstore's
/// verification chunks and keep-web's cache groups.
pub const SIZES: [usize; 3] = [100_003, 65_537, 40_000];

pub struct Env {
    pub web: String,
    pub web_addr: std::net::SocketAddr,
    pub api: String,
    pub ks: String,
    pub http: reqwest::Client,
    pub admin: String,
    pub alice: String,
    pub alice_uuid: String,
    pub bob: String,
    pub anon: String,
    /// Alice's collection: big.bin (3 blocks, [`SIZES`]), hello.txt, `<i>&.txt`,
    /// index.html, sub/a.txt, t=x/y.txt
    pub c1: Collection,
    /// Bob's private collection: secret.txt
    pub c_bob: Collection,
    /// Alice's project `proj` holding collection `inproj` (hello.txt) and filter group
    /// `filt` that matches `proj` itself.
    pub proj: String,
    pub c_in_proj: Collection,
    pub big: Vec<u8>,
    /// The signed locator of hello.txt's block (alice's).
    pub hello_loc: String,
    pub kit: ApiServer,
    handles: Vec<actix_web::dev::ServerHandle>,
    _dirs: Vec<tempfile::TempDir>,
}

impl std::ops::Deref for Env {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.kit
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for h in &self.handles {
            drop(h.clone().stop(false));
        }
    }
}

/// A server built as `keep serve` builds every service's (its settings, access log,
/// body idle timeout and connection watchdog), on 127.0.0.1:0.
pub fn serve_with<F>(
    settings: &keep_cli::serve::ServerSettings,
    f: F,
) -> (String, std::net::SocketAddr, actix_web::dev::ServerHandle)
where
    F: Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let srv = keep_cli::serve::http_server("test", listener, settings, f).unwrap();
    let h = srv.handle();
    tokio::spawn(srv);
    (format!("http://{addr}"), addr, h)
}

fn serve<F>(f: F) -> (String, std::net::SocketAddr, actix_web::dev::ServerHandle)
where
    F: Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static,
{
    serve_with(&keep_cli::serve::ServerSettings::default(), f)
}

pub async fn start() -> Env {
    let mut settings = ApiSettings {
        signing_key: KEY.into(),
        system_root_token: ROOT.into(),
        management_token: MGMT.into(),
        ..ApiSettings::default()
    };
    let ks_dir = keep_testkit::temp_dir();
    let ks = keepstore::Keepstore::open(keepstore::Config::new(
        vec![ks_dir.path().into()],
        settings.signer(),
        "ksadmin".into(),
        MGMT.into(),
    ))
    .unwrap();
    let (ks_url, _, ks_h) = serve(move |c| ks.configure(c));
    settings.keepstore_urls = vec![ks_url.clone()];
    let kit = ApiServer::start(settings).await;
    let alice = kit.user("alice").await;
    let bob = kit.user("bob").await;
    let anon = kit
        .token_for("zzzzz-tpzed-anonymouspublic", json!({}))
        .await;

    let web = keep_web::KeepWeb::new(web_config(&kit.url, &anon)).unwrap();
    let (web_url, web_addr, web_h) = serve(move |c| web.configure(c));

    // alice's collection: a 3-block file and small ones
    let parts: Vec<Vec<u8>> = SIZES
        .iter()
        .zip(1..)
        .map(|(n, seed)| bytes(*n, seed))
        .collect();
    let mut locs = Vec::new();
    for p in &parts {
        locs.push(keep_testkit::put_block(&ks_url, &alice.token, p.clone()).await);
    }
    let big = parts.concat();
    let l4 = keep_testkit::put_block(&ks_url, &alice.token, HELLO.into()).await;
    let n = big.len();
    let m = format!(
        ". {} {} {} {l4} 0:{n}:big.bin {n}:12:hello.txt {n}:12:<i>&.txt {n}:12:index.html\n\
         ./sub {l4} 0:12:a.txt\n./t=x {l4} 0:12:y.txt\n",
        locs[0], locs[1], locs[2]
    );
    let c1 = kit.collection(&alice.token, "c1", None, &m).await;
    let lb = keep_testkit::put_block(&ks_url, &bob.token, b"bob's secret".to_vec()).await;
    let c_bob = kit
        .collection(
            &bob.token,
            "bobs",
            None,
            &format!(". {lb} 0:12:secret.txt\n"),
        )
        .await;
    // a project holding a collection and a filter group matching the project itself
    let proj = kit.project(&alice.token, "proj", None).await;
    let c_in_proj = kit
        .collection(
            &alice.token,
            "inproj",
            Some(&proj),
            &format!(". {l4} 0:12:hello.txt\n"),
        )
        .await;
    let (st, f) = kit
        .post(
            "/arvados/v1/groups",
            &alice.token,
            json!({"group": {"name": "filt", "group_class": "filter", "owner_uuid": proj,
                "properties": {"filters": [["groups.uuid", "=", proj]]}}}),
        )
        .await;
    assert_eq!(st, 200, "{f}");
    Env {
        web: web_url,
        web_addr,
        api: kit.url.clone(),
        ks: ks_url,
        http: kit.http.clone(),
        admin: kit.admin.clone(),
        alice: alice.token,
        alice_uuid: alice.uuid,
        bob: bob.token,
        anon,
        c1,
        c_bob,
        proj,
        c_in_proj,
        big,
        hello_loc: l4,
        kit,
        handles: vec![ks_h, web_h],
        _dirs: vec![ks_dir],
    }
}

/// keep-web's settings in this environment (API, anonymous token, download host
/// `dl.example`).
fn web_config(api_url: &str, anon: &str) -> keep_web::Config {
    keep_web::Config {
        api_url: api_url.to_string(),
        keepstore_urls: vec![],
        domain: "localhost".into(),
        download_host: Some("dl.example".into()),
        trust_all_content: false,
        anonymous_token: Some(anon.parse::<Token>().unwrap()),
        management_token: MGMT.into(),
        external_url: "http://127.0.0.1:9002".into(),
    }
}

impl Env {
    /// keep-web's settings in this environment (API, anonymous token, download host
    /// `dl.example`).
    pub fn web_config(&self) -> keep_web::Config {
        web_config(&self.api, &self.anon)
    }

    /// Stops the keepstore server (the first one started).
    pub async fn stop_keepstore(&self) {
        self.handles[0].stop(false).await;
    }

    pub async fn put_block(&self, token: &str, body: Vec<u8>) -> String {
        keep_testkit::put_block(&self.ks, token, body).await
    }

    pub fn uuid(c: &Collection) -> String {
        c.uuid.clone()
    }

    pub fn pdh(c: &Collection) -> String {
        c.pdh.clone()
    }

    /// A request to keep-web with the given Host (port kept).
    pub fn req(&self, method: &str, host: &str, path: &str) -> reqwest::RequestBuilder {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.http
            .request(m, format!("{}{path}", self.web))
            .header("Host", format!("{host}:{}", self.web_addr.port()))
    }

    /// The collection vhost of `c` by UUID.
    pub fn vhost(c: &Collection) -> String {
        format!("{}.localhost", c.uuid)
    }

    /// Raw bytes over TCP; returns the status line.
    pub fn raw_status(&self, request: &str) -> String {
        let mut s = TcpStream::connect(self.web_addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
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
}
