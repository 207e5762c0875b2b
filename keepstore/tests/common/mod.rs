//! An in-process keepstore on 127.0.0.1:0, and the API it checks tokens with (from
//! keep-testkit, sharing the keepstore's signing key and root token).
#![allow(dead_code)]

pub mod garage;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use actix_web::{App, HttpServer};
use keep_format::{BlobSigner, Hash, Locator, SigningKey, Token};
use keep_testkit::{ApiServer, ApiSettings};
use keepstore::{Config, Keepstore};

pub use keep_testkit::bytes;

pub const ADMIN: &str = "admintoken123";
pub const MGMT: &str = "managementtoken456";

pub struct Server {
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub dirs: Vec<tempfile::TempDir>,
    pub ks: Keepstore,
    pub signer: BlobSigner,
    pub token: Token,
    pub client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Server {
    fn drop(&mut self) {
        let h = self.handle.clone();
        // stop without waiting: the runtime is going away with the test
        drop(h.stop(false));
    }
}

pub async fn start(volumes: usize) -> Server {
    start_with(
        volumes,
        Duration::from_secs(3600),
        Duration::from_secs(3600),
    )
    .await
}

pub async fn start_with(volumes: usize, ttl: Duration, trash_lifetime: Duration) -> Server {
    start_cfg(volumes, ttl, |c| c.trash_lifetime = trash_lifetime).await
}

pub const SIGNING_KEY: &str = "test-signing-key";

/// A keepstore on `volumes` fresh directories, with signatures living `ttl` and the
/// config changed by `f` before it opens.
pub async fn start_cfg(volumes: usize, ttl: Duration, f: impl FnOnce(&mut Config)) -> Server {
    let dirs: Vec<tempfile::TempDir> = (0..volumes).map(|_| tempfile::tempdir().unwrap()).collect();
    let signer = BlobSigner::new(SigningKey::new(SIGNING_KEY), ttl);
    let mut cfg = Config::new(
        dirs.iter().map(|d| d.path().into()).collect(),
        signer.clone(),
        ADMIN.into(),
        MGMT.into(),
    );
    f(&mut cfg);
    let ks = Keepstore::start(cfg).await.unwrap();
    serve(ks, dirs, signer)
}

/// A keepstore whose one volume is `prefix` in the shared Garage's bucket.
pub async fn start_s3(prefix: &str, ttl: Duration, f: impl FnOnce(&mut Config)) -> Server {
    let g = garage::shared();
    let signer = BlobSigner::new(SigningKey::new(SIGNING_KEY), ttl);
    let mut cfg = Config::new(
        vec![keepstore::VolumeConfig::S3(g.config(prefix))],
        signer.clone(),
        ADMIN.into(),
        MGMT.into(),
    );
    f(&mut cfg);
    let ks = Keepstore::start(cfg).await.unwrap();
    serve(ks, Vec::new(), signer)
}

/// Serves `ks` on 127.0.0.1:0.
pub fn serve(ks: Keepstore, dirs: Vec<tempfile::TempDir>, signer: BlobSigner) -> Server {
    let app_ks = ks.clone();
    let server = HttpServer::new(move || {
        let ks = app_ks.clone();
        App::new().configure(move |c| ks.configure(c))
    })
    .workers(2)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Server {
        base: format!("http://{addr}"),
        addr,
        dirs,
        ks,
        signer,
        token: Token::generate_bare(),
        client: reqwest::Client::new(),
        handle,
    }
}

impl Server {
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token.expose())
    }

    pub async fn put(&self, body: Vec<u8>) -> reqwest::Response {
        let h = Hash::of(&body);
        self.client
            .put(format!("{}/{h}", self.base))
            .header("Authorization", self.bearer())
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// PUTs and returns the signed locator.
    pub async fn put_ok(&self, body: Vec<u8>) -> Locator {
        let r = self.put(body).await;
        assert_eq!(r.status(), 200);
        r.text().await.unwrap().parse().unwrap()
    }

    pub fn sign(&self, hash: Hash, size: u64) -> Locator {
        self.signer
            .sign(&Locator::new(hash, size), &self.token, SystemTime::now())
    }

    pub async fn get(&self, loc: &Locator) -> reqwest::Response {
        self.client
            .get(format!("{}/{loc}", self.base))
            .header("Authorization", self.bearer())
            .send()
            .await
            .unwrap()
    }

    pub async fn get_range(&self, loc: &Locator, range: &str) -> reqwest::Response {
        self.client
            .get(format!("{}/{loc}", self.base))
            .header("Authorization", self.bearer())
            .header("Range", range)
            .send()
            .await
            .unwrap()
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {ADMIN}"))
    }

    pub async fn metrics(&self) -> String {
        let r = self
            .client
            .get(format!("{}/metrics", self.base))
            .header("Authorization", format!("Bearer {MGMT}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }

    /// The value of one metric line (`name{labels}` prefix match), 0 if absent.
    pub async fn metric(&self, prefix: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Every file under every volume except the volume id file.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self
            .dirs
            .iter()
            .flat_map(|d| {
                keep_testkit::files_under(d.path())
                    .into_iter()
                    .map(|rel| d.path().join(rel))
            })
            .collect();
        out.retain(|p| p.file_name().is_none_or(|n| n != ".keep-volume-id"));
        out.sort();
        out
    }

    /// The data file of a block (on whichever volume holds it).
    pub fn block_path(&self, hash: &Hash) -> PathBuf {
        for d in &self.dirs {
            let p = d.path().join(hash.hex_prefix(3)).join(hash.to_hex());
            if p.exists() {
                return p;
            }
        }
        panic!("block {hash} is on no volume");
    }

    /// Waits (up to 5 s) until no file is left but the id files.
    pub async fn assert_clean(&self) {
        for _ in 0..100 {
            if self.files().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("files left behind: {:?}", self.files());
    }

    /// Sends raw bytes over a fresh TCP connection, optionally half-closes, and returns
    /// whatever the server answers until it closes (or 10 s pass).
    pub fn raw(&self, request: &[u8], half_close: bool) -> String {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(request);
        if half_close {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Flips one bit of a file at `offset`.
pub fn flip(path: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x10;
    f.write_all_at(&b, offset).unwrap();
}

/// The root token the test API and keepstores share.
pub const ROOT: &str = ADMIN;

/// A real keep-api (RocksDB in a temp dir) on 127.0.0.1:0 whose signing key and
/// root token are the test keepstores'.
pub async fn start_api() -> ApiServer {
    ApiServer::start(ApiSettings {
        signing_key: SIGNING_KEY.into(),
        system_root_token: ROOT.into(),
        management_token: MGMT.into(),
        ..ApiSettings::default()
    })
    .await
}

/// `t` as RFC 3339 UTC (`2026-12-02T10:00:00Z`).
pub fn rfc3339(t: SystemTime) -> String {
    keep_format::time::Timestamp::from_system_time(t).to_rfc3339_seconds()
}
