//! The real `keep serve` process: every service on port 0 in a temp dir of the test's
//! own; the URLs it reports, its secrets and its log.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::api::Api;

/// A running `keep serve`, killed when dropped.
pub struct Serve {
    child: Option<Child>,
    /// The `keep` binary (`env!("CARGO_BIN_EXE_keep")` in the cli's tests).
    pub bin: PathBuf,
    /// Holds `keep.toml`, `data/`, `serve.log`.
    pub dir: tempfile::TempDir,
    /// The config file it runs with (tests may edit it and [`Serve::restart`]).
    pub config: PathBuf,
    pub keepstore: String,
    pub api: Option<String>,
    pub web: Option<String>,
}

/// `data/secrets.toml`, written on the first start.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Secrets {
    pub blob_signing_key: String,
    pub management_token: String,
    pub system_root_token: String,
}

impl Serve {
    /// Starts `bin serve` with every service on 127.0.0.1:0 and waits until it says
    /// it is ready (60 s at most).
    pub fn start(bin: impl AsRef<Path>) -> Serve {
        Serve::start_with(bin, "", "")
    }

    /// As [`Serve::start`], with `top` lines at the top of the config (top-level keys,
    /// or whole tables) and `keepstore` lines added to its `[keepstore]` table. The
    /// `[web]` table comes last, so lines appended to the file land in it.
    pub fn start_with(bin: impl AsRef<Path>, top: &str, keepstore: &str) -> Serve {
        let dir = crate::temp_dir();
        let config = dir.path().join("keep.toml");
        let text = format!(
            "{top}\n[api]\nlisten = \"127.0.0.1:0\"\n[keepstore]\nlisten = \"127.0.0.1:0\"\n{keepstore}\n[web]\nlisten = \"127.0.0.1:0\"\n"
        );
        std::fs::write(&config, text).expect("write keep.toml");
        let mut s = Serve {
            child: None,
            bin: bin.as_ref().to_path_buf(),
            dir,
            config,
            keepstore: String::new(),
            api: None,
            web: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("serve.log"))
            .expect("open serve.log");
        let mut child = Command::new(&self.bin)
            .args(["serve", "--data"])
            .arg(self.data())
            .arg("--config")
            .arg(&self.config)
            .env("KEEP_LOG", "info")
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} serve: {e}", self.bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                panic!(
                    "keep serve did not report ready within 60 s; its log:\n{}",
                    self.log()
                );
            };
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
    }

    /// The data directory (`--data`).
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A path inside the data directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.data().join(rel)
    }

    /// The API's URL (panics when `--only` left it out).
    pub fn api_url(&self) -> &str {
        self.api.as_deref().expect("keep serve runs the API")
    }

    /// keep-web's URL (panics when `--only` left it out).
    pub fn web_url(&self) -> &str {
        self.web.as_deref().expect("keep serve runs keep-web")
    }

    /// The admin token the first start wrote to `data/admin-token`.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.path("admin-token"))
            .expect("data/admin-token")
            .trim()
            .to_string()
    }

    /// A client of its API as the admin.
    pub fn client(&self) -> Api {
        Api::new(self.api_url(), &self.admin_token())
    }

    pub fn secrets(&self) -> Secrets {
        let text = std::fs::read_to_string(self.path("secrets.toml")).expect("secrets.toml");
        toml::from_str(&text).expect("parse secrets.toml")
    }

    /// Everything the server wrote to stderr (its logs) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// The process id, 0 once stopped.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let st = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM {}", self.pid());
        self.terminate_wait()
    }

    /// Waits for an exit already asked for (a signal sent elsewhere).
    pub fn terminate_wait(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("keep serve is running");
        c.wait().expect("wait for keep serve")
    }

    /// Starts again on the same data directory and config (new ports).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill9();
    }
}
