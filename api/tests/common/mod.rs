//! Test harness: the API server in-process on 127.0.0.1:0 with a temp dir, real HTTP.
#![allow(dead_code)]

use std::time::Duration;

use actix_web::{App, HttpServer};
use keep_api::{Api, Config};
use keep_format::{BlobSigner, Hash, Locator, SigningKey, Token};
use serde_json::{json, Value};

pub const KEY: &str = "test-signing-key";
pub const ROOT: &str = "rootsecret0123456789";
pub const MGMT: &str = "management-token";

pub fn signer() -> BlobSigner {
    BlobSigner::new(SigningKey::new(KEY), Duration::from_secs(3600))
}

pub fn config(dir: &std::path::Path) -> Config {
    Config {
        cluster_id: "zzzzz".into(),
        db_path: dir.join("db"),
        signer: signer(),
        system_root_token: ROOT.into(),
        management_token: MGMT.into(),
        keepstore_urls: vec!["http://127.0.0.1:25107".into()],
        web_url: "http://127.0.0.1:9002".into(),
        default_replication: 1,
    }
}

pub struct Server {
    pub url: String,
    pub admin: String,
    pub api: Api,
    pub http: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let h = self.handle.clone();
        drop(h.stop(false));
    }
}

pub async fn start() -> Server {
    start_in(tempfile::tempdir().unwrap(), None).await
}

/// The server on the data directory `dir` (its database at `dir/db`). `admin`: the
/// admin token of a database that already has its admin; None for a fresh one.
pub async fn start_in(dir: tempfile::TempDir, admin: Option<String>) -> Server {
    let cfg = config(dir.path());
    let api = tokio::task::spawn_blocking(move || Api::open(cfg))
        .await
        .unwrap()
        .unwrap();
    let a2 = api.clone();
    let first = tokio::task::spawn_blocking(move || a2.bootstrap())
        .await
        .unwrap()
        .unwrap();
    let admin = match (first, admin) {
        (Some(t), None) => t.expose(),
        (None, Some(t)) => t,
        (first, admin) => panic!(
            "bootstrap made an admin token: {}, one was given: {}",
            first.is_some(),
            admin.is_some()
        ),
    };
    let a3 = api.clone();
    let server = HttpServer::new(move || {
        let a = a3.clone();
        App::new().configure(move |c| a.configure(c))
    })
    .workers(2)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    let srv = server.run();
    let handle = srv.handle();
    tokio::spawn(srv);
    Server {
        url: format!("http://{addr}"),
        admin,
        api,
        http: reqwest::Client::new(),
        handle,
        dir,
    }
}

impl Server {
    /// Any request; returns (status, JSON body or Null).
    pub async fn req(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.url)
        };
        let mut r = self.http.request(m, url);
        if let Some(t) = token {
            r = r.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.req("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.req("POST", path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.req("PATCH", path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        self.req("DELETE", path, Some(token), None).await
    }

    /// Creates a user (as admin) and a token for it: (user uuid, token text).
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

    /// A token for `user` with extra attributes (scopes, expires_at), made by the admin.
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

    pub async fn project(&self, token: &str, name: &str, parent: Option<&str>) -> String {
        let mut g = json!({"name": name, "group_class": "project"});
        if let Some(p) = parent {
            g["owner_uuid"] = json!(p);
        }
        let (st, v) = self
            .post("/arvados/v1/groups", token, json!({"group": g}))
            .await;
        assert_eq!(st, 200, "{v}");
        v["uuid"].as_str().unwrap().to_string()
    }

    /// Creates a collection with a one-file manifest signed for `token`.
    pub async fn collection(
        &self,
        token: &str,
        name: &str,
        owner: Option<&str>,
        data: &[u8],
    ) -> Value {
        let mut c = json!({"name": name, "manifest_text": manifest(token, &[("f.txt", data)])});
        if let Some(o) = owner {
            c["owner_uuid"] = json!(o);
        }
        let (st, v) = self
            .post("/arvados/v1/collections", token, json!({"collection": c}))
            .await;
        assert_eq!(st, 200, "{v}");
        v
    }
}

pub fn token(text: &str) -> Token {
    text.parse().unwrap()
}

/// A locator for `data`, signed for `token`.
pub fn signed(token_text: &str, data: &[u8]) -> String {
    let l = Locator::new(Hash::of(data), data.len() as u64);
    signer()
        .sign(&l, &token(token_text), std::time::SystemTime::now())
        .to_string()
}

/// A one-stream manifest of whole-block files, signed for `token`.
pub fn manifest(token_text: &str, files: &[(&str, &[u8])]) -> String {
    let mut locs = String::new();
    let mut toks = String::new();
    let mut pos = 0;
    for (name, data) in files {
        locs.push(' ');
        locs.push_str(&signed(token_text, data));
        toks.push_str(&format!(
            " {pos}:{}:{}",
            data.len(),
            keep_format::escape_name(name)
        ));
        pos += data.len();
    }
    if files.is_empty() {
        return String::new();
    }
    format!(".{locs}{toks}\n")
}

pub fn q(v: &Value) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
