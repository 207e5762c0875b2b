//! Test harness: runs the real `keep` binary (`keep serve` on port 0 in a temp dir) and
//! reads back where each service listens.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const KEEP: &str = env!("CARGO_BIN_EXE_keep");

/// A running `keep serve`.
pub struct Keep {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub keepstore: String,
    pub api: Option<String>,
    pub web: Option<String>,
    extra: String,
    keepstore_extra: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Secrets {
    pub blob_signing_key: String,
    pub management_token: String,
    pub system_root_token: String,
}

impl Keep {
    /// Starts `keep serve` with every service on port 0 plus `extra` config lines.
    pub fn start(extra: &str) -> Keep {
        Keep::start_with(extra, "")
    }

    /// As [`Keep::start`], with `keepstore` lines added to the `[keepstore]` table.
    pub fn start_with(extra: &str, keepstore: &str) -> Keep {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("keep.toml");
        let mut k = Keep {
            child: None,
            dir,
            config,
            keepstore: String::new(),
            api: None,
            web: None,
            extra: extra.to_string(),
            keepstore_extra: keepstore.to_string(),
        };
        k.write_config();
        k.spawn();
        k
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn write_config(&self) {
        // top-level keys of `extra` must come before any table
        let text = format!(
            "{}\n[api]\nlisten = \"127.0.0.1:0\"\n[keepstore]\nlisten = \"127.0.0.1:0\"\n{}\n[web]\nlisten = \"127.0.0.1:0\"\n",
            self.extra, self.keepstore_extra
        );
        std::fs::write(&self.config, text).expect("write config");
    }

    fn spawn(&mut self) {
        let mut child = Command::new(KEEP)
            .args(["serve", "--data"])
            .arg(self.data())
            .arg("--config")
            .arg(&self.config)
            .env("KEEP_LOG", "info")
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("serve.log"))
                    .expect("open serve.log"),
            ))
            .spawn()
            .expect("spawn keep serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("keep serve did not report ready within 60 s"));
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("keepstore"), Some(url)) => self.keepstore = url.to_string(),
                (Some("api"), Some(url)) => self.api = Some(url.to_string()),
                (Some("keep-web"), Some(url)) => self.web = Some(url.to_string()),
                _ => {}
            }
            if line.starts_with("keep serve: ready") {
                break;
            }
        }
        self.child = Some(child);
    }

    /// Everything the server wrote to stderr (its logs) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    pub fn secrets(&self) -> Secrets {
        let text = std::fs::read_to_string(self.data().join("secrets.toml")).expect("secrets.toml");
        toml::from_str(&text).expect("parse secrets")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        c.wait().expect("wait")
    }

    /// Waits for an exit already requested (e.g. by a signal sent elsewhere).
    pub fn terminate_wait(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        c.wait().expect("wait")
    }

    /// Starts again on the same data directory (new ports).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.data().join(rel)
    }
}

impl Drop for Keep {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Every regular file below `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap_or(&p).display().to_string());
                }
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Deterministic pseudo-random bytes.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A client environment: its own HOME, config and cache dirs.
pub struct Env {
    pub home: tempfile::TempDir,
    pub api: String,
    pub token: String,
}

impl Env {
    pub fn new(k: &Keep) -> Env {
        let api = k.api.clone().expect("keep serve reports the api URL");
        let token = std::fs::read_to_string(k.path("admin-token"))
            .expect("admin-token")
            .trim()
            .to_string();
        Env {
            home: tempfile::tempdir().unwrap(),
            api,
            token,
        }
    }

    pub fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(KEEP);
        c.args(args)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_CACHE_HOME", self.home.path().join("cache"))
            .env("KEEP_API_HOST", &self.api)
            .env("KEEP_API_TOKEN", &self.token);
        c
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd(args).output().expect("run keep")
    }

    /// Runs and expects success; returns trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "keep {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    }
}

pub fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

pub fn with_slash(p: &std::path::Path) -> String {
    format!("{}/", s(p))
}

/// Standard base64 (Basic credentials, cookies) without a dependency for it.
pub fn b64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for ch in b.chunks(3) {
        let n = (ch[0] as u32) << 16
            | (*ch.get(1).unwrap_or(&0) as u32) << 8
            | *ch.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= ch.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `rclone ARGS` against the WebDAV remote `:webdav:` at `url`, with no config file and,
/// when given, Basic credentials (the password obscured, as rclone takes it); its stdout.
pub fn rclone(url: &str, basic: Option<(&str, &str)>, args: &[&str]) -> String {
    let mut c = Command::new("rclone");
    c.args(args)
        .args(["--webdav-url", url, "--config", "/dev/null"]);
    if let Some((user, pass)) = basic {
        let o = Command::new("rclone")
            .args(["obscure", pass])
            .output()
            .expect("rclone is installed by scripts/setup");
        let obscured = String::from_utf8(o.stdout).unwrap().trim().to_string();
        c.args(["--webdav-user", user, "--webdav-pass", &obscured]);
    }
    let o = c.output().expect("rclone is installed by scripts/setup");
    assert!(
        o.status.success(),
        "rclone {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// `rclone lsl` output as (size, path), sorted.
pub fn lsl(out: &str) -> Vec<(u64, String)> {
    let mut got: Vec<(u64, String)> = out
        .lines()
        .map(|l| {
            // "<size> <date> <time> <path>", the size right-aligned, the path may hold spaces
            let (size, rest) = l.trim_start().split_once(' ').unwrap();
            let name = rest.trim_start().splitn(3, ' ').nth(2).unwrap().to_string();
            (size.parse().unwrap(), name)
        })
        .collect();
    got.sort();
    got
}
