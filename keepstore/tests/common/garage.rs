//! A real Garage for the S3 tests, started once per test binary by `scripts/garage`
//! (and stopped, its directory removed, when the test process exits). Each test uses a
//! prefix of its own in the one bucket.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use keepstore::s3::S3Config;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

pub struct Garage {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub key_id: String,
    pub secret: String,
    pub pid: u32,
}

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/garage")
}

/// Starts a Garage in a fresh temp dir; panics (saying to run `scripts/garage install`
/// when that is the reason) if it cannot. A start that fails (a port taken between
/// the script's check and Garage's bind) is tried again, twice.
pub fn start() -> Garage {
    let mut why = String::new();
    for _ in 0..3 {
        match try_start() {
            Ok(g) => return g,
            Err(e) => {
                eprintln!("starting Garage failed, trying again: {e}");
                why = e;
            }
        }
    }
    panic!(
        "could not start Garage for the S3 tests: {why}\n(the S3 tests need a real Garage: run `scripts/garage install` once)"
    );
}

fn try_start() -> Result<Garage, String> {
    let dir = tempfile::Builder::new()
        .prefix("keep-garage-")
        .tempdir()
        .unwrap()
        .keep();
    let out = Command::new(script())
        .arg("start")
        .arg(&dir)
        .arg("--watch")
        .arg(std::process::id().to_string())
        .arg("--rm")
        .output()
        .expect("running scripts/garage");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("scripts/garage printed no {k}: {text}"))
            .to_string()
    };
    Ok(Garage {
        endpoint: get("GARAGE_ENDPOINT"),
        region: get("GARAGE_REGION"),
        bucket: get("GARAGE_BUCKET"),
        key_id: get("GARAGE_KEY_ID"),
        secret: get("GARAGE_SECRET"),
        pid: get("GARAGE_PID").parse().unwrap(),
    })
}

/// The Garage shared by every test of this binary.
pub fn shared() -> &'static Garage {
    static G: OnceLock<Garage> = OnceLock::new();
    G.get_or_init(start)
}

/// A prefix no other test uses.
pub fn unique_prefix(name: &str) -> String {
    let n: u64 = rand::random();
    format!("t/{name}-{n:016x}")
}

impl Garage {
    /// A volume config for `prefix` with short timeouts.
    pub fn config(&self, prefix: &str) -> S3Config {
        S3Config {
            region: self.region.clone(),
            prefix: prefix.to_string(),
            access_key_id: Some(self.key_id.clone()),
            secret_access_key: Some(self.secret.clone()),
            read_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(2),
            ..S3Config::new(&self.endpoint, &self.bucket)
        }
    }

    fn bucket(&self) -> (Bucket, Credentials) {
        (
            Bucket::new(
                self.endpoint.parse().unwrap(),
                UrlStyle::Path,
                self.bucket.clone(),
                self.region.clone(),
            )
            .unwrap(),
            Credentials::new(self.key_id.clone(), self.secret.clone()),
        )
    }

    /// Writes an object directly (to damage a block, say).
    pub async fn put(&self, key: &str, body: Vec<u8>) {
        let (b, c) = self.bucket();
        let url = b.put_object(Some(&c), key).sign(Duration::from_secs(60));
        let r = reqwest::Client::new()
            .put(url)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }

    /// Reads an object directly; `None` if it does not exist.
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        let (b, c) = self.bucket();
        let url = b.get_object(Some(&c), key).sign(Duration::from_secs(60));
        let r = reqwest::Client::new().get(url).send().await.unwrap();
        if r.status() == 404 {
            return None;
        }
        assert!(r.status().is_success(), "{}", r.status());
        Some(r.bytes().await.unwrap())
    }

    /// Every key under `prefix`.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let (b, c) = self.bucket();
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut a = b.list_objects_v2(Some(&c));
            a.with_prefix(prefix.to_string());
            if let Some(t) = &token {
                a.with_continuation_token(t.clone());
            }
            let url = a.sign(Duration::from_secs(60));
            let text = reqwest::get(url).await.unwrap().text().await.unwrap();
            let page = rusty_s3::actions::ListObjectsV2::parse_response(&text).unwrap();
            out.extend(page.contents.into_iter().map(|c| c.key));
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => return out,
            }
        }
    }
}
