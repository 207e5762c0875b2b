//! keepstore + API + keep-web in-process on 127.0.0.1:0, real sockets.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use keep_format::{BlobSigner, Hash, SigningKey, Token};
use serde_json::{json, Value};

pub const KEY: &str = "test-signing-key";
pub const ROOT: &str = "rootsecret0123456789";
pub const MGMT: &str = "management-token";

fn signer() -> BlobSigner {
    BlobSigner::new(SigningKey::new(KEY), Duration::from_secs(3600))
}

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
    /// Alice's collection: big.bin (3 blocks), hello.txt, `<i>&.txt`, sub/a.txt, t=x/y.txt
    pub c1: Value,
    /// Bob's private collection.
    pub c_bob: Value,
    pub proj: String,
    pub c_in_proj: Value,
    pub big: Vec<u8>,
    handles: Vec<actix_web::dev::ServerHandle>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Drop for Env {
    fn drop(&mut self) {
        for h in &self.handles {
            drop(h.clone().stop(false));
        }
    }
}

pub fn data(len: usize, seed: u8) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ seed as u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
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
    let ks_dir = tempfile::tempdir().unwrap();
    let api_dir = tempfile::tempdir().unwrap();
    let ks = keepstore::Keepstore::open(keepstore::Config::new(
        vec![ks_dir.path().into()],
        signer(),
        "ksadmin".into(),
        MGMT.into(),
    ))
    .unwrap();
    let (ks_url, _, ks_h) = serve(move |c| ks.configure(c));
    let cfg = keep_api::Config {
        cluster_id: "zzzzz".into(),
        db_path: api_dir.path().join("db"),
        signer: signer(),
        system_root_token: ROOT.into(),
        management_token: MGMT.into(),
        keepstore_urls: vec![ks_url.clone()],
        web_url: "http://127.0.0.1:9002".into(),
    };
    let api = tokio::task::spawn_blocking(move || keep_api::Api::open(cfg))
        .await
        .unwrap()
        .unwrap();
    let a2 = api.clone();
    let admin = tokio::task::spawn_blocking(move || a2.bootstrap())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .expose();
    let (api_url, _, api_h) = serve(move |c| api.configure(c));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let mut env = Env {
        web: String::new(),
        web_addr: "127.0.0.1:1".parse().unwrap(),
        api: api_url,
        ks: ks_url,
        http,
        admin,
        alice: String::new(),
        alice_uuid: String::new(),
        bob: String::new(),
        anon: String::new(),
        c1: Value::Null,
        c_bob: Value::Null,
        proj: String::new(),
        c_in_proj: Value::Null,
        big: Vec::new(),
        handles: vec![ks_h, api_h],
        _dirs: vec![ks_dir, api_dir],
    };
    let (alice_uuid, alice) = env.user("alice").await;
    let (_, bob) = env.user("bob").await;
    env.anon = env
        .token_for("zzzzz-tpzed-anonymouspublic", json!({}))
        .await;
    env.alice = alice.clone();
    env.alice_uuid = alice_uuid;
    env.bob = bob.clone();

    let web = keep_web::KeepWeb::new(env.web_config()).unwrap();
    let (web_url, web_addr, web_h) = serve(move |c| web.configure(c));
    env.web = web_url;
    env.web_addr = web_addr;
    env.handles.push(web_h);

    // alice's collection: a 3-block file and small ones
    let b1 = data(1000, 1);
    let b2 = data(1000, 2);
    let b3 = data(500, 3);
    let hello = b"hello world\n".to_vec();
    let l1 = env.put_block(&alice, b1.clone()).await;
    let l2 = env.put_block(&alice, b2.clone()).await;
    let l3 = env.put_block(&alice, b3.clone()).await;
    let l4 = env.put_block(&alice, hello.clone()).await;
    env.big = [b1, b2, b3].concat();
    let m = format!(
        ". {l1} {l2} {l3} {l4} 0:2500:big.bin 2500:12:hello.txt 2500:12:<i>&.txt\n\
         ./sub {l4} 0:12:a.txt\n./t=x {l4} 0:12:y.txt\n"
    );
    env.c1 = env.collection(&alice, "c1", None, &m).await;
    let lb = env.put_block(&bob, b"bob's secret".to_vec()).await;
    let bob_tok = bob.clone();
    env.c_bob = env
        .collection(&bob_tok, "bobs", None, &format!(". {lb} 0:12:secret.txt\n"))
        .await;
    // a project holding a collection and a filter group matching the project itself
    let (st, p) = env
        .post(
            "/arvados/v1/groups",
            &alice,
            json!({"group": {"name": "proj", "group_class": "project"}}),
        )
        .await;
    assert_eq!(st, 200, "{p}");
    env.proj = p["uuid"].as_str().unwrap().to_string();
    let proj = env.proj.clone();
    env.c_in_proj = env
        .collection(
            &alice,
            "inproj",
            Some(&proj),
            &format!(". {l4} 0:12:hello.txt\n"),
        )
        .await;
    let (st, f) = env
        .post(
            "/arvados/v1/groups",
            &alice,
            json!({"group": {"name": "filt", "group_class": "filter", "owner_uuid": proj,
                "properties": {"filters": [["groups.uuid", "=", proj]]}}}),
        )
        .await;
    assert_eq!(st, 200, "{f}");
    env
}

impl Env {
    /// keep-web's settings in this environment (API, anonymous token, download host
    /// `dl.example`).
    pub fn web_config(&self) -> keep_web::Config {
        keep_web::Config {
            api_url: self.api.clone(),
            keepstore_urls: vec![],
            domain: "localhost".into(),
            download_host: Some("dl.example".into()),
            trust_all_content: false,
            anonymous_token: Some(self.anon.parse::<Token>().unwrap()),
            management_token: MGMT.into(),
            external_url: "http://127.0.0.1:9002".into(),
        }
    }

    /// Stops the keepstore server (the first one started).
    pub async fn stop_keepstore(&self) {
        self.handles[0].stop(false).await;
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.api))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        (st, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn user(&self, name: &str) -> (String, String) {
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

    pub async fn token_for(&self, user: &str, extra: Value) -> String {
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

    pub async fn put_block(&self, token: &str, body: Vec<u8>) -> String {
        let r = self
            .http
            .put(format!("{}/{}", self.ks, Hash::of(&body)))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap().trim().to_string()
    }

    pub async fn collection(&self, token: &str, name: &str, owner: Option<&str>, m: &str) -> Value {
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

    pub fn uuid(c: &Value) -> String {
        c["uuid"].as_str().unwrap().to_string()
    }

    pub fn pdh(c: &Value) -> String {
        c["portable_data_hash"].as_str().unwrap().to_string()
    }

    /// A request to keep-web with the given Host (port kept).
    pub fn req(&self, method: &str, host: &str, path: &str) -> reqwest::RequestBuilder {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.http
            .request(m, format!("{}{path}", self.web))
            .header("Host", format!("{host}:{}", self.web_addr.port()))
    }

    /// The collection vhost of `c` by UUID.
    pub fn vhost(c: &Value) -> String {
        format!("{}.localhost", Env::uuid(c))
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
