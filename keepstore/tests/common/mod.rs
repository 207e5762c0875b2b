//! An in-process keepstore on 127.0.0.1:0 and helpers for the API tests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use actix_web::{App, HttpServer};
use keep_format::{BlobSigner, Hash, Locator, SigningKey, Token};
use keepstore::{Config, Keepstore};

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
    let dirs: Vec<tempfile::TempDir> = (0..volumes).map(|_| tempfile::tempdir().unwrap()).collect();
    let signer = BlobSigner::new(SigningKey::new("test-signing-key"), ttl);
    let ks = Keepstore::open(Config {
        volumes: dirs.iter().map(|d| d.path().to_path_buf()).collect(),
        signer: signer.clone(),
        admin_token: ADMIN.into(),
        management_token: MGMT.into(),
        trash_lifetime,
        trash_check_interval: Duration::from_secs(3600),
    })
    .unwrap();
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

/// Deterministic test bytes.
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
        let mut out = Vec::new();
        for d in &self.dirs {
            walk(d.path(), &mut out);
        }
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

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
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
