//! What the cli's tests share beyond keep-testkit: the `keep` binary under test, a
//! client environment to run its commands in, and real WebDAV clients.

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine;
pub use keep_testkit::{bytes, files_under, Serve};

/// The `keep` binary cargo built for these tests.
pub const KEEP: &str = env!("CARGO_BIN_EXE_keep");

/// `keep serve` with every service, on port 0 in a temp dir of the test's own.
pub fn serve() -> Serve {
    Serve::start(KEEP)
}

/// A client environment: its own HOME, config and cache dirs, the API's URL and a
/// token in the environment variables `keep` reads.
pub struct Env {
    pub home: tempfile::TempDir,
    pub api: String,
    pub token: String,
}

impl Env {
    /// The admin's environment for `k`.
    pub fn new(k: &Serve) -> Env {
        Env::with_token(k, &k.admin_token())
    }

    /// `token`'s environment for `k`.
    pub fn with_token(k: &Serve, token: &str) -> Env {
        Env {
            home: keep_testkit::temp_dir(),
            api: k.api_url().to_string(),
            token: token.to_string(),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(KEEP);
        c.args(args)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_CACHE_HOME", self.home.path().join("cache"))
            .env("KEEP_API_HOST", &self.api)
            .env("KEEP_API_TOKEN", &self.token);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
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

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn with_slash(p: &Path) -> String {
    format!("{}/", s(p))
}

/// Standard base64, as Basic credentials and the `api_token` cookie carry a token.
pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
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

/// The tests marked `#[ignore = "needs root: …"]` call this first: run with
/// `--ignored` as another user they fail saying why, never pass without testing.
pub fn assert_root() {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    assert!(root, "this test needs root (run by scripts/test when root)");
}
