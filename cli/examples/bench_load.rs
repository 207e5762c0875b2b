//! The client half of `bench/load` and `bench/faults`: drives a running Keep over HTTP
//! only (keep-web, the API, keepstore), so it keeps working whatever changes inside.
//!
//! usage: bench_load <command> [options]   (`bench_load <command> --help` for each)
//!   mkcoll   create empty collections, print their UUIDs
//!   mixed    mixed load at N connections; per-kind latencies, the server's memory and
//!            open files over time; prints a Markdown report, exit 1 on any error or a
//!            growing trend
//!   write    fault writers: WebDAV PUTs of 0 B / 1 B / 1 MiB / 70 MiB files and
//!            `keep put` runs until a stop file appears; every acknowledged write (201,
//!            or a UUID printed by `keep put`) is appended to an acks file
//!   verify   every acknowledged write reads back with its BLAKE3; every block of every
//!            collection reads back from keepstore with the hash its locator names
//!   watch    readers through keep-web while the script kills and restarts the API;
//!            prints what keep-web answered before, during and after, exit 1 when the
//!            contract (503 + Retry-After, recovery by itself) is not met
//!   splice   put a part's Markdown into doc/benchmarks.md's "Load and faults" section
//!
//! Tokens come from the environment (BENCH_TOKEN, BENCH_ADMIN_TOKEN), never the command
//! line, so they don't show in `ps`.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use clap::{Parser, Subcommand};
use futures_util::StreamExt as _;
use rand::{Rng as _, RngCore as _, SeedableRng as _};
use reqwest::{Method, StatusCode};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Parser)]
#[command(about = "load and fault client for bench/load and bench/faults")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Mkcoll(MkcollArgs),
    Mixed(MixedArgs),
    Write(WriteArgs),
    Verify(VerifyArgs),
    Watch(WatchArgs),
    Splice(SpliceArgs),
}

/// Create empty collections owned by BENCH_TOKEN's user; prints one UUID a line.
#[derive(clap::Args)]
struct MkcollArgs {
    #[arg(long)]
    api: String,
    #[arg(long)]
    prefix: String,
    #[arg(long, default_value_t = 1)]
    count: usize,
    #[arg(long, env = "BENCH_TOKEN", hide_env_values = true)]
    token: String,
}

/// Mixed load through keep-web and the API.
#[derive(clap::Args)]
struct MixedArgs {
    /// keep-web's base URL.
    #[arg(long)]
    web: String,
    /// The API's base URL.
    #[arg(long)]
    api: String,
    /// Collection with `big.bin` and `dir10k/f000000.bin` … (4 KiB each).
    #[arg(long)]
    read: String,
    /// Writable collections for the PUTs (comma-separated UUIDs).
    #[arg(long, value_delimiter = ',', required = true)]
    write: Vec<String>,
    #[arg(long, default_value_t = 10_000)]
    small_count: usize,
    /// The server process to watch (resident memory, open files).
    #[arg(long)]
    pid: Option<u32>,
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Weights of the request kinds.
    #[arg(long, default_value = "get=40,range=30,propfind=2,put=8,list=20")]
    mix: String,
    /// Seconds between samples of the server (0: 5 for runs of 5 minutes or more, else 2).
    #[arg(long, default_value_t = 0)]
    sample_secs: u64,
    #[arg(long, env = "BENCH_TOKEN", hide_env_values = true)]
    token: String,
}

/// Fault writers, until the stop file exists.
#[derive(clap::Args)]
struct WriteArgs {
    #[arg(long)]
    web: String,
    #[arg(long)]
    api: String,
    /// Collections the WebDAV writers write into (writer i uses collection i mod n).
    #[arg(long, value_delimiter = ',', required = true)]
    collections: Vec<String>,
    /// Concurrent WebDAV writers.
    #[arg(long, default_value_t = 46)]
    writers: usize,
    /// Concurrent `keep put` loops.
    #[arg(long, default_value_t = 4)]
    puts: usize,
    /// The `keep` binary.
    #[arg(long)]
    keep: PathBuf,
    /// Where the `keep put` inputs are made.
    #[arg(long)]
    work: PathBuf,
    /// Acknowledged writes are appended here.
    #[arg(long)]
    acks: PathBuf,
    /// Writers stop once this file exists.
    #[arg(long)]
    stop: PathBuf,
    /// Distinguishes this round's file names.
    #[arg(long, default_value = "r")]
    tag: String,
    #[arg(long, env = "BENCH_TOKEN", hide_env_values = true)]
    token: String,
}

/// Checks every acknowledged write and every block of every collection.
#[derive(clap::Args)]
struct VerifyArgs {
    #[arg(long)]
    web: String,
    #[arg(long)]
    api: String,
    #[arg(long)]
    acks: PathBuf,
    /// Reads the acknowledged files.
    #[arg(long, env = "BENCH_TOKEN", hide_env_values = true)]
    token: String,
    /// Lists every collection and reads every block.
    #[arg(long, env = "BENCH_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
}

/// Readers through keep-web until the stop file exists, then the outage report.
#[derive(clap::Args)]
struct WatchArgs {
    #[arg(long)]
    web: String,
    /// Collection with `big.bin` and `small/f000000.bin` … (4 KiB each).
    #[arg(long)]
    collection: String,
    #[arg(long, default_value_t = 100)]
    small_count: usize,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// One request's limit (a request still waiting then counts as "timeout").
    #[arg(long, default_value_t = 10)]
    timeout_secs: u64,
    /// Lines `kill|restart|ready <unix ms>`, written by the script.
    #[arg(long)]
    events: PathBuf,
    #[arg(long)]
    stop: PathBuf,
    /// Requests started this long after the API is ready must all succeed.
    #[arg(long, default_value_t = 10)]
    grace_secs: u64,
    #[arg(long, env = "BENCH_TOKEN", hide_env_values = true)]
    token: String,
}

/// Replaces (or adds) `<!-- bench/<part> … -->` in the doc's "Load and faults" section.
#[derive(clap::Args)]
struct SpliceArgs {
    #[arg(long)]
    doc: PathBuf,
    /// `load` or `faults`.
    #[arg(long)]
    part: String,
    /// The Markdown to put there.
    #[arg(long)]
    text: PathBuf,
}

fn main() -> Res<()> {
    let cli = Cli::parse();
    if let Cmd::Splice(a) = &cli.cmd {
        return splice(a);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let ok = rt.block_on(async move {
        match cli.cmd {
            Cmd::Mkcoll(a) => mkcoll(a).await.map(|()| true),
            Cmd::Mixed(a) => mixed(a).await,
            Cmd::Write(a) => write(a).await.map(|()| true),
            Cmd::Verify(a) => verify(a).await,
            Cmd::Watch(a) => watch(a).await,
            Cmd::Splice(_) => Ok(true),
        }
    })?;
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

/// One client per connection. Idle connections are dropped after 2 s, below the
/// servers' keep-alive (actix: 5 s), as a well-behaved client does: reusing one the
/// server is closing at that moment fails the request with "connection closed before
/// message completed", a race of HTTP/1.1 keep-alive rather than a server fault (Go and
/// urllib3 retry such a request; reqwest doesn't).
fn client(timeout: Duration) -> Res<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .pool_idle_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn base(url: &str) -> &str {
    url.trim_end_matches('/')
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// 2xx and 3xx are answers; anything else is an error.
fn good(s: StatusCode) -> bool {
    s.is_success() || s.is_redirection()
}

/// The first line of a body, for error reports.
fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(200)]);
    s.lines().next().unwrap_or("").to_string()
}

// ---------------------------------------------------------------- mkcoll

async fn create_collection(c: &reqwest::Client, api: &str, token: &str, name: &str) -> Res<String> {
    let body = serde_json::json!({"collection": {"name": name, "manifest_text": ""}});
    let r = c
        .post(format!("{}/arvados/v1/collections", base(api)))
        .header("Authorization", bearer(token))
        .json(&body)
        .send()
        .await?;
    let status = r.status();
    let b = r.bytes().await?;
    if !status.is_success() {
        return Err(format!("creating collection {name}: {status}: {}", snippet(&b)).into());
    }
    let v: serde_json::Value = serde_json::from_slice(&b)?;
    v["uuid"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("creating collection {name}: no uuid in the answer").into())
}

async fn mkcoll(a: MkcollArgs) -> Res<()> {
    let c = client(Duration::from_secs(60))?;
    for i in 0..a.count {
        let uuid = create_collection(&c, &a.api, &a.token, &format!("{}{i:03}", a.prefix)).await?;
        println!("{uuid}");
    }
    Ok(())
}

// ---------------------------------------------------------------- mixed

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Get,
    Range,
    Propfind,
    Put,
    List,
}

const KINDS: [Kind; 5] = [
    Kind::Get,
    Kind::Range,
    Kind::Propfind,
    Kind::Put,
    Kind::List,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Get => "get",
            Kind::Range => "range",
            Kind::Propfind => "propfind",
            Kind::Put => "put",
            Kind::List => "list",
        }
    }
    fn what(self) -> &'static str {
        match self {
            Kind::Get => "GET of a 4 KiB file (one of 10,000)",
            Kind::Range => "4 KiB Range GET at a random offset of the 1 GiB file",
            Kind::Propfind => "PROPFIND Depth 1 of the 10,000-file directory",
            Kind::Put => "WebDAV PUT of a 4 KiB file (overwrites one of 8 names per connection)",
            Kind::List => "API `GET /arvados/v1/collections?limit=50`",
        }
    }
}

fn parse_mix(s: &str) -> Res<Vec<(Kind, u32)>> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (k, w) = part
            .split_once('=')
            .ok_or_else(|| format!("--mix: {part:?} is not kind=weight"))?;
        let kind = KINDS
            .iter()
            .copied()
            .find(|x| x.name() == k)
            .ok_or_else(|| {
                format!("--mix: unknown kind {k:?} (get, range, propfind, put, list)")
            })?;
        out.push((kind, w.parse()?));
    }
    if out.iter().map(|x| x.1).sum::<u32>() == 0 {
        return Err("--mix: the weights add up to 0".into());
    }
    Ok(out)
}

#[derive(Default)]
struct KindStats {
    lat_us: Vec<u32>,
    errors: u64,
    /// (what, count) of the first distinct errors
    examples: BTreeMap<String, u64>,
}

/// An error message with the parts that differ between requests (UUIDs, URLs) taken
/// out, so that one cause counts as one line of the report.
fn error_class(what: &str) -> String {
    let cut = what.find(" (http").map_or(what, |i| &what[..i]);
    let b = cut.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let is_uuid = |w: &[u8]| {
        w.len() == 27
            && w[5] == b'-'
            && w[11] == b'-'
            && w.iter()
                .enumerate()
                .all(|(i, &c)| i == 5 || i == 11 || alnum(c))
    };
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if i + 27 <= b.len() && is_uuid(&b[i..i + 27]) {
            out.push_str("<uuid>");
            i += 27;
        } else {
            let ch = cut[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

impl KindStats {
    fn error(&mut self, what: String) {
        let what = error_class(&what);
        self.errors += 1;
        if self.examples.len() < 8 || self.examples.contains_key(&what) {
            *self.examples.entry(what).or_default() += 1;
        }
    }
}

struct Mixed {
    web: String,
    api: String,
    read: String,
    write: Vec<String>,
    small_count: usize,
    big_size: u64,
    auth: String,
    bodies: Vec<Bytes>,
    mix: Vec<(Kind, u32)>,
    done: AtomicU64,
    failed: AtomicU64,
}

const PROPFIND_BODY: &str =
    r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#;

impl Mixed {
    fn pick(&self, rng: &mut impl rand::Rng) -> Kind {
        let total: u32 = self.mix.iter().map(|x| x.1).sum();
        let mut n = rng.random_range(0..total);
        for &(k, w) in &self.mix {
            if n < w {
                return k;
            }
            n -= w;
        }
        self.mix[0].0
    }

    /// One request of `kind`; Err(what went wrong) for anything but a good answer.
    async fn one(
        &self,
        c: &reqwest::Client,
        kind: Kind,
        worker: usize,
        seq: u64,
        rng: &mut (impl rand::Rng + Send),
    ) -> Result<(), String> {
        let web = base(&self.web);
        let rb = match kind {
            Kind::Get => {
                let i = rng.random_range(0..self.small_count);
                c.get(format!("{web}/c={}/dir10k/f{i:06}.bin", self.read))
            }
            Kind::Range => {
                let off = rng.random_range(0..self.big_size - 4096);
                c.get(format!("{web}/c={}/big.bin", self.read))
                    .header("Range", format!("bytes={off}-{}", off + 4095))
            }
            Kind::Propfind => c
                .request(
                    Method::from_bytes(b"PROPFIND").map_err(|e| e.to_string())?,
                    format!("{web}/c={}/dir10k/", self.read),
                )
                .header("Depth", "1")
                .header("Content-Type", "application/xml")
                .body(PROPFIND_BODY),
            Kind::Put => {
                let coll = &self.write[worker % self.write.len()];
                let body = self.bodies[rng.random_range(0..self.bodies.len())].clone();
                c.put(format!("{web}/c={coll}/w{worker:03}-{}.bin", seq % 8))
                    .body(body)
            }
            Kind::List => c.get(format!(
                "{}/arvados/v1/collections?limit=50",
                base(&self.api)
            )),
        };
        let r = rb
            .header("Authorization", &self.auth)
            .send()
            .await
            .map_err(|e| format!("transport: {}", short_err(&e)))?;
        let status = r.status();
        if !good(status) {
            let b = r.bytes().await.unwrap_or_default();
            return Err(format!("{status}: {}", snippet(&b)));
        }
        let mut r = r;
        let mut n = 0usize;
        while let Some(chunk) = r
            .chunk()
            .await
            .map_err(|e| format!("transport (body): {}", short_err(&e)))?
        {
            n += chunk.len();
        }
        let want = match kind {
            Kind::Get | Kind::Range => Some(4096),
            _ => None,
        };
        match (kind, status.as_u16(), want) {
            (Kind::Range, s, _) if s != 206 => Err(format!("{status} instead of 206")),
            (Kind::Propfind, s, _) if s != 207 => Err(format!("{status} instead of 207")),
            (_, _, Some(w)) if n != w => Err(format!("{n} bytes instead of {w}")),
            _ => Ok(()),
        }
    }
}

/// An error's chain in one line (reqwest's top line alone says little).
fn short_err(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[derive(Clone, Copy)]
struct Sample {
    t: f64,
    rss_kib: u64,
    fds: u64,
    load1: f64,
    done: u64,
}

fn proc_sample(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((rss, fds))
}

fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0.0)
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn pct(sorted: &[u32], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    f64::from(sorted[((sorted.len() * p) / 100).min(sorted.len() - 1)]) / 1000.0
}

async fn size_of(c: &reqwest::Client, url: &str, auth: &str) -> Res<u64> {
    let r = c.head(url).header("Authorization", auth).send().await?;
    if !r.status().is_success() {
        return Err(format!("HEAD {url}: {}", r.status()).into());
    }
    r.headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("HEAD {url}: no Content-Length").into())
}

async fn mixed(a: MixedArgs) -> Res<bool> {
    let auth = bearer(&a.token);
    let c0 = client(Duration::from_secs(60))?;
    let big_size = size_of(
        &c0,
        &format!("{}/c={}/big.bin", base(&a.web), a.read),
        &auth,
    )
    .await?;
    let mut rng = rand::rng();
    let bodies = (0..64)
        .map(|_| {
            let mut b = vec![0u8; 4096];
            rng.fill_bytes(&mut b);
            Bytes::from(b)
        })
        .collect();
    let m = Arc::new(Mixed {
        web: a.web.clone(),
        api: a.api.clone(),
        read: a.read.clone(),
        write: a.write.clone(),
        small_count: a.small_count,
        big_size,
        auth,
        bodies,
        mix: parse_mix(&a.mix)?,
        done: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let dur = Duration::from_secs(a.seconds);
    let start = Instant::now();
    let deadline = start + dur;
    let sample_every = match a.sample_secs {
        0 if a.seconds >= 300 => 5,
        0 => 2,
        s => s,
    };

    // the sampler: the server's resident memory and open files, the machine's load
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let server_gone = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (samples, gone, m) = (samples.clone(), server_gone.clone(), m.clone());
        let pid = a.pid;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(sample_every));
            let mut last_note = Instant::now();
            loop {
                tick.tick().await;
                let t = start.elapsed().as_secs_f64();
                let (rss_kib, fds) = match pid {
                    Some(p) => match proc_sample(p) {
                        Some(x) => x,
                        None => {
                            gone.store(true, Ordering::Relaxed);
                            eprintln!("bench_load: the server (pid {p}) is gone");
                            return;
                        }
                    },
                    None => (0, 0),
                };
                let done = m.done.load(Ordering::Relaxed);
                if let Ok(mut s) = samples.lock() {
                    s.push(Sample {
                        t,
                        rss_kib,
                        fds,
                        load1: load1(),
                        done,
                    });
                }
                if last_note.elapsed() >= Duration::from_secs(30) {
                    last_note = Instant::now();
                    eprintln!(
                        "bench_load: {:.0} s: {done} requests ({:.0}/s), {} errors, RSS {} MiB, {fds} open files",
                        t,
                        done as f64 / t.max(1e-3),
                        m.failed.load(Ordering::Relaxed),
                        rss_kib / 1024
                    );
                }
                if Instant::now() >= deadline {
                    return;
                }
            }
        })
    };

    let mut tasks = Vec::new();
    for w in 0..a.connections {
        let m = m.clone();
        let gone = server_gone.clone();
        tasks.push(tokio::spawn(async move {
            let mut stats: BTreeMap<Kind, KindStats> = BTreeMap::new();
            let c = match client(Duration::from_secs(60)) {
                Ok(c) => c,
                Err(e) => {
                    stats
                        .entry(Kind::Get)
                        .or_default()
                        .error(format!("client: {e}"));
                    return stats;
                }
            };
            let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
            let mut seq = 0u64;
            while Instant::now() < deadline && !gone.load(Ordering::Relaxed) {
                let kind = m.pick(&mut rng);
                let t = Instant::now();
                let r = m.one(&c, kind, w, seq, &mut rng).await;
                let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                seq += 1;
                let s = stats.entry(kind).or_default();
                s.lat_us.push(us);
                if let Err(e) = r {
                    s.error(e);
                    m.failed.fetch_add(1, Ordering::Relaxed);
                }
                m.done.fetch_add(1, Ordering::Relaxed);
            }
            stats
        }));
    }
    let mut all: BTreeMap<Kind, KindStats> = BTreeMap::new();
    for t in tasks {
        let s = t.await?;
        for (k, v) in s {
            let e = all.entry(k).or_default();
            e.lat_us.extend(v.lat_us);
            e.errors += v.errors;
            for (what, n) in v.examples {
                if e.examples.len() < 8 || e.examples.contains_key(&what) {
                    *e.examples.entry(what).or_default() += n;
                }
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    sampler.abort();
    let samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    let gone = server_gone.load(Ordering::Relaxed);

    // ---- the report
    let total_w: u32 = m.mix.iter().map(|x| x.1).sum();
    let mut errors = 0u64;
    let mut requests = 0usize;
    println!(
        "{} connections for {:.0} s ({:.1} min); every connection sends one request after another, \
         its kind drawn at random by weight. An error is any status other than 2xx/3xx, a transport \
         error, a wrong body length or a request over 60 s. Latency is from sending to the last \
         body byte.\n",
        a.connections,
        elapsed,
        elapsed / 60.0
    );
    println!("| kind | weight | requests | req/s | errors | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|---|");
    for &(k, w) in &m.mix {
        let Some(s) = all.get_mut(&k) else { continue };
        s.lat_us.sort_unstable();
        errors += s.errors;
        requests += s.lat_us.len();
        println!(
            "| {} | {:.0}% | {} | {:.0} | {} | {:.2} | {:.1} | {:.0} |",
            k.name(),
            f64::from(w) * 100.0 / f64::from(total_w),
            s.lat_us.len(),
            s.lat_us.len() as f64 / elapsed,
            s.errors,
            pct(&s.lat_us, 50),
            pct(&s.lat_us, 99),
            s.lat_us.last().map_or(0.0, |x| f64::from(*x) / 1000.0)
        );
    }
    println!(
        "| **all** | | {requests} | {:.0} | {errors} | | | |\n",
        requests as f64 / elapsed
    );
    for &(k, _) in &m.mix {
        println!("- `{}`: {}", k.name(), k.what());
    }
    println!();
    for (k, s) in &all {
        for (what, n) in &s.examples {
            println!("- error, {}: {n}× {what}", k.name());
        }
    }

    // the trend: the second window (after warm-up) against the last one
    let win = (elapsed / 5.0).min(60.0);
    let in_win = |lo: f64, hi: f64| -> Vec<Sample> {
        samples
            .iter()
            .copied()
            .filter(|s| s.t >= lo && s.t < hi)
            .collect()
    };
    let early = in_win(win, 2.0 * win);
    let late = in_win(elapsed - win, elapsed + 1.0);
    let mut flat = true;
    if a.pid.is_some() && !samples.is_empty() {
        println!(
            "\nServer process (`keep serve`, pid sampled every {sample_every} s from `/proc/<pid>/status` \
             VmRSS and `/proc/<pid>/fd`). **Flat** means the mean of the last {win:.0} s is at most \
             10% above the mean of the second {win:.0} s (the first is warm-up).\n"
        );
        println!("| resource | first | mean, 2nd window | mean, last window | max | last | flat |");
        println!("|---|---|---|---|---|---|---|");
        let row = |name: &str, f: &dyn Fn(&Sample) -> f64| -> bool {
            let e = mean(&early.iter().map(f).collect::<Vec<_>>());
            let l = mean(&late.iter().map(f).collect::<Vec<_>>());
            let max = samples.iter().map(f).fold(0.0, f64::max);
            let ok = !early.is_empty() && !late.is_empty() && l <= e * 1.10;
            println!(
                "| {name} | {:.0} | {e:.0} | {l:.0} | {max:.0} | {:.0} | {} |",
                f(&samples[0]),
                f(&samples[samples.len() - 1]),
                if ok { "yes" } else { "**no**" }
            );
            ok
        };
        flat &= row("resident memory, MiB", &|s| s.rss_kib as f64 / 1024.0);
        flat &= row("open file descriptors", &|s| s.fds as f64);
        // per-minute means, to see the shape
        let mut per_min: BTreeMap<u64, Vec<Sample>> = BTreeMap::new();
        for s in &samples {
            per_min.entry((s.t / 60.0) as u64).or_default().push(*s);
        }
        if per_min.len() > 1 {
            let fmt = |f: &dyn Fn(&Sample) -> f64| {
                per_min
                    .values()
                    .map(|v| format!("{:.0}", mean(&v.iter().map(f).collect::<Vec<_>>())))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!(
                "\nMinute by minute (means): RSS MiB {}; open files {}.",
                fmt(&|s| s.rss_kib as f64 / 1024.0),
                fmt(&|s| s.fds as f64)
            );
        }
    }
    // requests per window: does the server keep its pace?
    let rate = |v: &[Sample]| -> f64 {
        match (v.first(), v.last()) {
            (Some(a), Some(b)) if b.t > a.t => (b.done - a.done) as f64 / (b.t - a.t),
            _ => 0.0,
        }
    };
    let loads: Vec<f64> = samples.iter().map(|s| s.load1).collect();
    println!(
        "\nThroughput: {:.0} req/s in the 2nd window, {:.0} req/s in the last. Machine load average \
         (1 min) during the run: mean {:.1}, max {:.1} ({} cores; the load generator runs on the same machine).",
        rate(&early),
        rate(&late),
        mean(&loads),
        loads.iter().copied().fold(0.0, f64::max),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let pass = errors == 0 && flat && !gone;
    println!(
        "\nVerdict: **{}** ({} errors{}{}).",
        if pass { "pass" } else { "FAIL" },
        errors,
        if flat {
            ", flat"
        } else {
            ", memory or open files grew"
        },
        if gone { ", the server died" } else { "" }
    );
    Ok(pass)
}

// ---------------------------------------------------------------- write (faults)

const MIB: u64 = 1 << 20;
/// Each writer's sizes in turn (starting at its own index): 70 MiB (two blocks) once in
/// eight, so that most writes are small and a round doesn't fill the disk.
const SIZES: [u64; 8] = [0, 1, MIB, 70 * MIB, 0, 1, MIB, MIB];

/// Chunk `k` (1 MiB, shorter at the end) of file `id`: the shared random pool with its
/// first 32 bytes replaced by BLAKE3(id, k), so every file and every block differs.
fn chunk(pool: &Bytes, id: &str, k: u64, len: usize) -> Bytes {
    let stamp = blake3::hash(format!("{id}/{k}").as_bytes());
    let mut b = BytesMut::from(&pool[..len]);
    let n = len.min(32);
    b[..n].copy_from_slice(&stamp.as_bytes()[..n]);
    b.freeze()
}

/// A streamed body of `size` bytes and the slot its BLAKE3 lands in once the last
/// chunk has been produced.
fn body_stream(
    pool: Bytes,
    id: String,
    size: u64,
) -> (reqwest::Body, Arc<Mutex<Option<blake3::Hash>>>) {
    let slot = Arc::new(Mutex::new(None));
    if size == 0 {
        if let Ok(mut s) = slot.lock() {
            *s = Some(blake3::hash(b""));
        }
        return (reqwest::Body::from(Bytes::new()), slot);
    }
    let out = slot.clone();
    let st = futures_util::stream::unfold((0u64, blake3::Hasher::new()), move |(off, mut h)| {
        let (pool, id, out) = (pool.clone(), id.clone(), out.clone());
        async move {
            if off >= size {
                return None;
            }
            let len = (size - off).min(MIB) as usize;
            let b = chunk(&pool, &id, off / MIB, len);
            h.update(&b);
            if off + len as u64 == size {
                if let Ok(mut s) = out.lock() {
                    *s = Some(h.finalize());
                }
            }
            Some((Ok::<Bytes, std::io::Error>(b), (off + len as u64, h)))
        }
    });
    (reqwest::Body::wrap_stream(st), slot)
}

struct Acks(Mutex<std::fs::File>);

impl Acks {
    fn open(p: &Path) -> Res<Acks> {
        Ok(Acks(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        )))
    }
    fn add(&self, source: &str, coll: &str, path: &str, size: u64, hash: &blake3::Hash) {
        if let Ok(mut f) = self.0.lock() {
            let _ = writeln!(f, "{source}\t{coll}\t{path}\t{size}\t{}", hash.to_hex());
            let _ = f.flush();
        }
    }
}

#[derive(Default)]
struct WriteStats {
    acked: BTreeMap<String, u64>,
    acked_bytes: u64,
    transport: u64,
    /// HTTP answers other than 201 (each is a finding), or `keep put` oddities
    anomalies: BTreeMap<String, u64>,
    put_runs: u64,
    put_failed: u64,
}

fn size_name(s: u64) -> String {
    match s {
        0 => "0 B".into(),
        s if s < MIB => format!("{s} B"),
        s => format!("{} MiB", s / MIB),
    }
}

async fn dav_writer(a: Arc<WriteArgs>, acks: Arc<Acks>, pool: Bytes, w: usize) -> WriteStats {
    let mut st = WriteStats::default();
    let Ok(c) = client(Duration::from_secs(300)) else {
        st.anomalies.insert("client".into(), 1);
        return st;
    };
    let coll = &a.collections[w % a.collections.len()];
    let mut j = 0usize;
    while !a.stop.exists() {
        let size = SIZES[(w + j) % SIZES.len()];
        let name = format!("{}-w{w:02}-{j:05}.bin", a.tag);
        j += 1;
        let (body, slot) = body_stream(pool.clone(), format!("{coll}/{name}"), size);
        let r = c
            .put(format!("{}/c={coll}/{name}", base(&a.web)))
            .header("Authorization", bearer(&a.token))
            .header("Content-Length", size)
            .body(body)
            .send()
            .await;
        match r {
            Ok(r) if r.status() == StatusCode::CREATED => {
                let h = slot.lock().ok().and_then(|s| *s);
                match h {
                    Some(h) => {
                        acks.add("dav", coll, &format!("/{name}"), size, &h);
                        *st.acked
                            .entry(format!("dav {}", size_name(size)))
                            .or_default() += 1;
                        st.acked_bytes += size;
                    }
                    None => {
                        *st.anomalies
                            .entry("201 before the whole body was sent".into())
                            .or_default() += 1;
                    }
                }
            }
            Ok(r) => {
                let s = r.status();
                let b = r.bytes().await.unwrap_or_default();
                *st.anomalies
                    .entry(format!("PUT {}: {s}: {}", size_name(size), snippet(&b)))
                    .or_default() += 1;
            }
            Err(_) => {
                st.transport += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    st
}

/// Writes `size` bytes of fresh random data to `p`; their BLAKE3.
fn random_file(p: &Path, size: u64) -> std::io::Result<blake3::Hash> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(p)?);
    let mut h = blake3::Hasher::new();
    let mut rng = rand::rng();
    let mut buf = vec![0u8; MIB as usize];
    let mut left = size;
    while left > 0 {
        let n = left.min(MIB) as usize;
        rng.fill_bytes(&mut buf[..n]);
        h.update(&buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(h.finalize())
}

async fn put_loop(a: Arc<WriteArgs>, acks: Arc<Acks>, l: usize) -> WriteStats {
    let mut st = WriteStats::default();
    let mut i = 0usize;
    while !a.stop.exists() {
        let dir = a.work.join(format!("{}-p{l}-{i}", a.tag));
        let mut files = vec![("empty", 0u64), ("one", 1), ("m1.bin", MIB)];
        if i % 2 == 0 {
            files.push(("m70.bin", 70 * MIB));
        }
        i += 1;
        let d2 = dir.clone();
        let made = tokio::task::spawn_blocking(
            move || -> std::io::Result<Vec<(String, u64, blake3::Hash)>> {
                std::fs::create_dir_all(&d2)?;
                files
                    .iter()
                    .map(|(n, s)| Ok((n.to_string(), *s, random_file(&d2.join(n), *s)?)))
                    .collect()
            },
        )
        .await;
        let files = match made {
            Ok(Ok(f)) => f,
            _ => {
                *st.anomalies
                    .entry("making keep put's input".into())
                    .or_default() += 1;
                break;
            }
        };
        let mut cmd = tokio::process::Command::new(&a.keep);
        cmd.arg("put")
            .arg("--no-progress")
            .arg("--no-cache")
            .arg(format!("{}/", dir.display()))
            .env("KEEP_API_HOST", &a.api)
            .env("KEEP_API_TOKEN", &a.token)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        st.put_runs += 1;
        let out = match cmd.spawn() {
            Ok(child) => {
                // a run still going 60 s after the stop is given up (and killed)
                let wait = child.wait_with_output();
                tokio::pin!(wait);
                let stopped = async {
                    while !a.stop.exists() {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    tokio::time::sleep(Duration::from_secs(60)).await;
                };
                tokio::select! {
                    o = &mut wait => o.ok(),
                    () = stopped => None,
                }
            }
            Err(e) => {
                *st.anomalies
                    .entry(format!("spawning keep put: {e}"))
                    .or_default() += 1;
                None
            }
        };
        let uuid = out
            .as_ref()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        if uuid.len() == 27 && uuid.as_bytes()[5] == b'-' {
            for (n, s, h) in &files {
                acks.add("put", &uuid, &format!("/{n}"), *s, h);
                *st.acked
                    .entry(format!("put {}", size_name(*s)))
                    .or_default() += 1;
                st.acked_bytes += s;
            }
        } else {
            st.put_failed += 1;
            if let Some(o) = &out {
                // before the kill, a failed put is a finding; after it, expected
                if o.status.success() {
                    *st.anomalies
                        .entry(format!("keep put exited 0 without a UUID: {uuid:?}"))
                        .or_default() += 1;
                }
            }
        }
        let _ = tokio::fs::remove_dir_all(&dir).await;
    }
    st
}

async fn write(a: WriteArgs) -> Res<()> {
    std::fs::create_dir_all(&a.work)?;
    let acks = Arc::new(Acks::open(&a.acks)?);
    let mut pool = vec![0u8; MIB as usize];
    rand::rng().fill_bytes(&mut pool);
    let pool = Bytes::from(pool);
    let a = Arc::new(a);
    let mut tasks = Vec::new();
    for w in 0..a.writers {
        tasks.push(tokio::spawn(dav_writer(
            a.clone(),
            acks.clone(),
            pool.clone(),
            w,
        )));
    }
    for l in 0..a.puts {
        tasks.push(tokio::spawn(put_loop(a.clone(), acks.clone(), l)));
    }
    let mut all = WriteStats::default();
    for t in tasks {
        let s = t.await?;
        for (k, v) in s.acked {
            *all.acked.entry(k).or_default() += v;
        }
        for (k, v) in s.anomalies {
            *all.anomalies.entry(k).or_default() += v;
        }
        all.acked_bytes += s.acked_bytes;
        all.transport += s.transport;
        all.put_runs += s.put_runs;
        all.put_failed += s.put_failed;
    }
    let dav: u64 = all
        .acked
        .iter()
        .filter(|(k, _)| k.starts_with("dav"))
        .map(|x| x.1)
        .sum();
    let put: u64 = all
        .acked
        .iter()
        .filter(|(k, _)| k.starts_with("put"))
        .map(|x| x.1)
        .sum();
    let big = all.acked.get("dav 70 MiB").copied().unwrap_or(0)
        + all.acked.get("put 70 MiB").copied().unwrap_or(0);
    // one line for the script: key=value
    println!(
        "acked_dav={dav} acked_put_files={put} acked_70m={big} acked_mib={} put_runs={} put_unacked={} transport_errors={} anomalies={}",
        all.acked_bytes / MIB,
        all.put_runs,
        all.put_failed,
        all.transport,
        all.anomalies.values().sum::<u64>()
    );
    for (k, v) in &all.acked {
        eprintln!("bench_load write: acknowledged {v}× {k}");
    }
    for (k, v) in &all.anomalies {
        eprintln!("bench_load write: ANOMALY {v}× {k}");
    }
    Ok(())
}

// ---------------------------------------------------------------- verify

/// GETs `url`, hashing the body as it streams: (status, length, BLAKE3).
async fn fetch_hash(
    c: &reqwest::Client,
    url: &str,
    auth: &str,
) -> Res<(StatusCode, u64, blake3::Hash)> {
    let mut r = c.get(url).header("Authorization", auth).send().await?;
    let status = r.status();
    let mut h = blake3::Hasher::new();
    let mut n = 0u64;
    while let Some(b) = r.chunk().await? {
        h.update(&b);
        n += b.len() as u64;
    }
    Ok((status, n, h.finalize()))
}

/// Percent-encodes a path for a URL (keeps `/` and unreserved characters).
fn enc_path(p: &str) -> String {
    let mut s = String::new();
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// Every block locator (signed for the caller) named by a manifest, once each.
fn manifest_locators(m: &str, seen: &mut HashSet<String>, out: &mut Vec<(String, u64)>) {
    for line in m.lines() {
        for tok in line.split(' ').skip(1) {
            let b = tok.as_bytes();
            if b.len() < 66 || b[64] != b'+' || !b[..64].iter().all(|c| c.is_ascii_hexdigit()) {
                continue;
            }
            let size: Option<u64> = tok[65..].split('+').next().and_then(|x| x.parse().ok());
            if let Some(size) = size {
                if seen.insert(tok[..64].to_string()) {
                    out.push((tok.to_string(), size));
                }
            }
        }
    }
}

async fn api_json(c: &reqwest::Client, url: &str, auth: &str) -> Res<serde_json::Value> {
    let r = c.get(url).header("Authorization", auth).send().await?;
    let status = r.status();
    let b = r.bytes().await?;
    if !status.is_success() {
        return Err(format!("GET {url}: {status}: {}", snippet(&b)).into());
    }
    Ok(serde_json::from_slice(&b)?)
}

async fn verify(a: VerifyArgs) -> Res<bool> {
    let c = client(Duration::from_secs(600))?;
    let user = bearer(&a.token);
    let admin = bearer(&a.admin_token);
    let web = base(&a.web).to_string();
    let api = base(&a.api).to_string();
    let text = std::fs::read_to_string(&a.acks).unwrap_or_default();
    let acks: Vec<(String, String, u64, String)> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 5).then(|| {
                (
                    f[1].to_string(),
                    f[2].to_string(),
                    f[3].parse().unwrap_or(u64::MAX),
                    f[4].to_string(),
                )
            })
        })
        .collect();

    // 1. every acknowledged write, with its bytes
    let bad_files = Arc::new(Mutex::new(Vec::<String>::new()));
    let checks =
        futures_util::stream::iter(acks.iter().cloned().map(|(coll, path, size, hash)| {
            let (c, user, web, bad) = (c.clone(), user.clone(), web.clone(), bad_files.clone());
            async move {
                let url = format!("{web}/c={coll}{}", enc_path(&path));
                let verdict = match fetch_hash(&c, &url, &user).await {
                    Ok((s, n, h))
                        if s == StatusCode::OK && n == size && h.to_hex().as_str() == hash =>
                    {
                        None
                    }
                    Ok((s, n, h)) => Some(format!(
                        "{coll}{path}: {s}, {n} bytes (want {size}), BLAKE3 {} (want {hash})",
                        &h.to_hex()[..16]
                    )),
                    Err(e) => Some(format!("{coll}{path}: {}", short_err(e.as_ref()))),
                };
                if let Some(v) = verdict {
                    if let Ok(mut b) = bad.lock() {
                        b.push(v);
                    }
                }
            }
        }))
        .buffer_unordered(8)
        .collect::<Vec<()>>();
    checks.await;
    let bad_files = bad_files.lock().map(|b| b.clone()).unwrap_or_default();

    // 2. every block of every collection (current versions), from keepstore, hashed here
    let config = api_json(&c, &format!("{api}/arvados/v1/config"), &admin).await?;
    let keepstores: Vec<String> = config["keepstore_urls"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|x| x.as_str().map(|s| base(s).to_string()))
                .collect()
        })
        .unwrap_or_default();
    if keepstores.is_empty() {
        return Err("the API's config names no keepstore".into());
    }
    let mut uuids = Vec::new();
    let mut offset = 0usize;
    loop {
        let v = api_json(
            &c,
            &format!(
                "{api}/arvados/v1/collections?limit=1000&offset={offset}&select=%5B%22uuid%22%5D"
            ),
            &admin,
        )
        .await?;
        let items = v["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        offset += items.len();
        uuids.extend(
            items
                .iter()
                .filter_map(|i| i["uuid"].as_str().map(str::to_string)),
        );
        if offset as u64 >= v["items_available"].as_u64().unwrap_or(0) {
            break;
        }
    }
    let mut seen = HashSet::new();
    let mut locs = Vec::new();
    for u in &uuids {
        let v = api_json(&c, &format!("{api}/arvados/v1/collections/{u}"), &admin).await?;
        manifest_locators(
            v["manifest_text"].as_str().unwrap_or(""),
            &mut seen,
            &mut locs,
        );
    }
    let bad_blocks = Arc::new(Mutex::new(Vec::<String>::new()));
    let block_bytes: u64 = locs.iter().map(|x| x.1).sum();
    futures_util::stream::iter(locs.iter().cloned().map(|(loc, size)| {
        let (c, admin, ks, bad) = (
            c.clone(),
            admin.clone(),
            keepstores.clone(),
            bad_blocks.clone(),
        );
        async move {
            let mut last = String::new();
            for k in &ks {
                match fetch_hash(&c, &format!("{k}/{loc}"), &admin).await {
                    Ok((s, n, h))
                        if s == StatusCode::OK
                            && n == size
                            && h.to_hex().as_str() == &loc[..64] =>
                    {
                        return
                    }
                    Ok((s, n, _)) => last = format!("{}+{size}: {s}, {n} bytes", &loc[..64]),
                    Err(e) => last = format!("{}+{size}: {}", &loc[..64], short_err(e.as_ref())),
                }
            }
            if let Ok(mut b) = bad.lock() {
                b.push(last);
            }
        }
    }))
    .buffer_unordered(4)
    .collect::<Vec<()>>()
    .await;
    let bad_blocks = bad_blocks.lock().map(|b| b.clone()).unwrap_or_default();
    for b in bad_files.iter().take(20) {
        eprintln!("bench_load verify: BAD FILE {b}");
    }
    for b in bad_blocks.iter().take(20) {
        eprintln!("bench_load verify: BAD BLOCK {b}");
    }
    println!(
        "files={} files_bad={} collections={} blocks={} block_mib={} blocks_bad={}",
        acks.len(),
        bad_files.len(),
        uuids.len(),
        locs.len(),
        block_bytes / MIB,
        bad_blocks.len()
    );
    Ok(bad_files.is_empty() && bad_blocks.is_empty())
}

// ---------------------------------------------------------------- watch (API outage)

#[derive(Clone)]
struct Obs {
    start_ms: u64,
    end_ms: u64,
    kind: &'static str,
    /// status code, or "transport" / "timeout"
    outcome: String,
    ok: bool,
    retry_after: bool,
}

async fn watch(a: WatchArgs) -> Res<bool> {
    let auth = bearer(&a.token);
    let web = base(&a.web).to_string();
    let c0 = client(Duration::from_secs(30))?;
    let big_size = size_of(&c0, &format!("{web}/c={}/big.bin", a.collection), &auth).await?;
    let log = Arc::new(Mutex::new(Vec::<Obs>::new()));
    let a = Arc::new(a);
    let mut tasks = Vec::new();
    for w in 0..a.connections {
        let (a, log, auth, web) = (a.clone(), log.clone(), auth.clone(), web.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(c) = client(Duration::from_secs(a.timeout_secs)) else {
                return;
            };
            let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
            let mut j = 0usize;
            let coll = &a.collection;
            while !a.stop.exists() {
                // connection 0 writes; the others read, each kind in turn
                let kind = if w == 0 {
                    "put"
                } else {
                    ["get", "range", "propfind"][(w + j) % 3]
                };
                j += 1;
                let rb = match kind {
                    "get" => {
                        let i = rng.random_range(0..a.small_count);
                        c.get(format!("{web}/c={coll}/small/f{i:06}.bin"))
                    }
                    "range" => {
                        let off = rng.random_range(0..big_size - 4096);
                        c.get(format!("{web}/c={coll}/big.bin"))
                            .header("Range", format!("bytes={off}-{}", off + 4095))
                    }
                    "propfind" => match Method::from_bytes(b"PROPFIND") {
                        Ok(m) => c
                            .request(m, format!("{web}/c={coll}/small/"))
                            .header("Depth", "1")
                            .body(PROPFIND_BODY),
                        Err(_) => return,
                    },
                    _ => c
                        .put(format!("{web}/c={coll}/w/{}.bin", j % 8))
                        .body(vec![b'x'; 4096]),
                };
                let start_ms = unix_ms();
                let r = rb.header("Authorization", &auth).send().await;
                let (outcome, ok, retry_after) = match r {
                    Ok(r) => {
                        let s = r.status();
                        let ra = r.headers().contains_key("retry-after");
                        let body = r.bytes().await;
                        match body {
                            Ok(_) => (s.as_u16().to_string(), good(s), ra),
                            Err(e) if e.is_timeout() => ("timeout".to_string(), false, false),
                            Err(_) => ("transport".to_string(), false, false),
                        }
                    }
                    Err(e) if e.is_timeout() => ("timeout".to_string(), false, false),
                    Err(_) => ("transport".to_string(), false, false),
                };
                let end_ms = unix_ms();
                if let Ok(mut l) = log.lock() {
                    l.push(Obs {
                        start_ms,
                        end_ms,
                        kind,
                        outcome: outcome.clone(),
                        ok,
                        retry_after,
                    });
                }
                if !ok {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let log = log.lock().map(|l| l.clone()).unwrap_or_default();
    let events = std::fs::read_to_string(&a.events)?;
    let ev = |name: &str| -> Option<u64> {
        events.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then(|| v.trim().parse().ok()).flatten()
        })
    };
    let (Some(kill), Some(restart), Some(ready)) = (ev("kill"), ev("restart"), ev("ready")) else {
        return Err(format!(
            "{}: needs kill, restart and ready lines",
            a.events.display()
        )
        .into());
    };
    let phase = |o: &Obs| {
        if o.start_ms < kill {
            0
        } else if o.start_ms < ready {
            1
        } else {
            2
        }
    };
    let names = [
        "before the kill",
        "API down (kill → ready)",
        "after the API is ready",
    ];
    println!(
        "keep-web, keepstore and the API as three processes (`keep serve --only …`, one config file); \
         {} connections through keep-web (one writing 4 KiB PUTs, the others reading in turn: a 4 KiB \
         file, a 4 KiB Range of an 8 MiB file, PROPFIND Depth 1 of a 100-file directory), each request \
         limited to {} s. The API was killed (`kill -9`) {:.1} s into the run, restarted {:.1} s later, \
         and ready {:.1} s after that.\n",
        a.connections,
        a.timeout_secs,
        (kill - log.iter().map(|o| o.start_ms).min().unwrap_or(kill)) as f64 / 1000.0,
        (restart - kill) as f64 / 1000.0,
        (ready - restart) as f64 / 1000.0
    );
    println!("| phase | kind | requests | 2xx | other answers | with Retry-After | max ms |");
    println!("|---|---|---|---|---|---|---|");
    for (p, pname) in names.iter().enumerate() {
        for kind in ["get", "range", "propfind", "put"] {
            let v: Vec<&Obs> = log
                .iter()
                .filter(|o| phase(o) == p && o.kind == kind)
                .collect();
            if v.is_empty() {
                continue;
            }
            let mut other: BTreeMap<&str, u64> = BTreeMap::new();
            for o in v.iter().filter(|o| !o.ok) {
                *other.entry(o.outcome.as_str()).or_default() += 1;
            }
            let other = other
                .iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect::<Vec<_>>()
                .join(", ");
            println!(
                "| {pname} | {kind} | {} | {} | {} | {} | {} |",
                v.len(),
                v.iter().filter(|o| o.ok).count(),
                if other.is_empty() {
                    "—".into()
                } else {
                    other
                },
                v.iter().filter(|o| o.retry_after).count(),
                v.iter().map(|o| o.end_ms - o.start_ms).max().unwrap_or(0)
            );
        }
    }
    // recovery: from the API being ready to the end of the last failed request
    let last_fail_after = log
        .iter()
        .filter(|o| phase(o) == 2 && !o.ok)
        .map(|o| o.end_ms)
        .max();
    let first_ok_after_kill = log
        .iter()
        .filter(|o| o.start_ms >= restart && o.ok)
        .map(|o| o.start_ms)
        .min();
    let recovery_ms = last_fail_after.map_or(0, |t| t.saturating_sub(ready));
    let before_ok = log.iter().filter(|o| phase(o) == 0).all(|o| o.ok);
    let down_bad: Vec<&Obs> = log
        .iter()
        .filter(|o| phase(o) == 1 && !o.ok && !(o.outcome == "503" && o.retry_after))
        .collect();
    let late_fail = log
        .iter()
        .filter(|o| o.start_ms >= ready + a.grace_secs * 1000 && !o.ok)
        .count();
    let late_ok = log
        .iter()
        .filter(|o| o.start_ms >= ready + a.grace_secs * 1000 && o.ok)
        .count();
    println!(
        "\nRecovery: the last failed request ended {:.1} s after the API was ready; the first success \
         after the restart started {}.\n",
        recovery_ms as f64 / 1000.0,
        first_ok_after_kill.map_or("never".into(), |t| format!("{:.1} s after the API was restarted", (t as f64 - restart as f64) / 1000.0))
    );
    let checks = [
        ("every request before the kill succeeded", before_ok),
        (
            "while the API was down, every failure was 503 with Retry-After",
            down_bad.is_empty(),
        ),
        (
            "keep-web recovered by itself: every request started after ready + grace succeeded",
            late_fail == 0 && late_ok > 0,
        ),
    ];
    let mut pass = true;
    println!("| check | result |\n|---|---|");
    for (what, ok) in checks {
        pass &= ok;
        println!("| {what} | {} |", if ok { "pass" } else { "**FAIL**" });
    }
    if !down_bad.is_empty() {
        let mut by: BTreeMap<String, u64> = BTreeMap::new();
        for o in &down_bad {
            *by.entry(format!(
                "{} {}{}",
                o.kind,
                o.outcome,
                if o.retry_after {
                    " (with Retry-After)"
                } else {
                    ""
                }
            ))
            .or_default() += 1;
        }
        let s = by
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!("\nWhile the API was down, not 503 + Retry-After: {s}.");
    }
    println!("\n(grace: {} s)", a.grace_secs);
    Ok(pass)
}

// ---------------------------------------------------------------- splice

const SECTION: &str = "## Load and faults";

fn splice(a: &SpliceArgs) -> Res<()> {
    let doc = std::fs::read_to_string(&a.doc).unwrap_or_default();
    let text = std::fs::read_to_string(&a.text)?;
    let (open, close) = (
        format!("<!-- bench/{}: begin -->", a.part),
        format!("<!-- bench/{}: end -->", a.part),
    );
    let block = format!("{open}\n{}\n{close}\n", text.trim_end());
    let out = if let (Some(s), Some(e)) = (doc.find(&open), doc.find(&close)) {
        // replace this part where it is
        let e = e + close.len();
        let e = if doc[e..].starts_with('\n') { e + 1 } else { e };
        format!("{}{block}{}", &doc[..s], &doc[e..])
    } else if let Some(s) = doc.find(SECTION) {
        // add this part at the end of the section (before the next `## `, if any)
        let after = s + SECTION.len();
        let end = doc[after..]
            .find("\n## ")
            .map_or(doc.len(), |i| after + i + 1);
        let head = doc[..end].trim_end_matches('\n');
        format!("{head}\n\n{block}\n{}", &doc[end..])
            .trim_end()
            .to_string()
            + "\n"
    } else {
        format!(
            "{}\n\n{SECTION}\n\nProduced by `bench/load` and `bench/faults` (doc/security.md says how to run \
             them); each part is replaced by its own script's next run. The load generator \
             (`cli/examples/bench_load.rs`), the servers and the data share the machine.\n\n{block}",
            doc.trim_end()
        )
    };
    std::fs::write(&a.doc, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_class_drops_uuids_and_urls() {
        let a = "502 Bad Gateway: upstream: API request /arvados/v1/collections/zzzzz-4zz18-wbykagmg583ejri: error sending request for url (http://127.0.0.1:1/x)";
        assert_eq!(
            error_class(a),
            "502 Bad Gateway: upstream: API request /arvados/v1/collections/<uuid>: error sending request for url"
        );
        assert_eq!(
            error_class("206 instead of 200 — é"),
            "206 instead of 200 — é"
        );
    }

    #[test]
    fn locators_once_each_with_sizes() {
        let h = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
        let m = format!(". {h}+3+Aabc@6a000000 {h}+3 0:6:a\\040b\n./d {h}+3 0:3:c\n");
        let (mut seen, mut out) = (HashSet::new(), Vec::new());
        manifest_locators(&m, &mut seen, &mut out);
        assert_eq!(out, vec![(format!("{h}+3+Aabc@6a000000"), 3)]);
    }

    #[test]
    fn splice_adds_then_replaces_each_part() {
        let dir = tempfile::tempdir().unwrap();
        let (doc, text) = (dir.path().join("b.md"), dir.path().join("t.md"));
        std::fs::write(&doc, "# B\n\n## Where\n\ny\n").unwrap();
        let run = |part: &str, body: &str| {
            std::fs::write(&text, body).unwrap();
            splice(&SpliceArgs {
                doc: doc.clone(),
                part: part.into(),
                text: text.clone(),
            })
            .unwrap();
            std::fs::read_to_string(&doc).unwrap()
        };
        run("load", "L1");
        run("faults", "F1");
        let out = run("load", "L2");
        assert!(
            out.starts_with("# B\n\n## Where\n\ny\n\n## Load and faults\n"),
            "{out}"
        );
        assert!(!out.contains("L1"), "{out}");
        let (l, f) = (out.find("L2").unwrap(), out.find("F1").unwrap());
        assert!(l < f, "{out}");
        assert_eq!(out.matches(SECTION).count(), 1, "{out}");
    }
}
