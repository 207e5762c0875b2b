//! The client half of `bench/run`: the same requests against keep-web and its peers,
//! alternating servers request by request (or round by round for big transfers), on
//! one keep-alive client. Prints one TSV line per measurement:
//! `<measure>\t<server>\t<value>\t<unit>`.
//!
//! usage: bench_web SERVERS_FILE
//!   SERVERS_FILE: one server a line, `name base_url [authorization header value]`;
//!   every base URL serves the same tree (big1g.bin, big10g.bin, f1m.bin, dir10k/, many/).
//! Environment: BENCH_ROUNDS (default 3), BENCH_RANGES (default 300).

use std::time::{Duration, Instant};

use rand::Rng;

struct Server {
    name: String,
    base: String,
    auth: Option<String>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn p99(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() * 99) / 100).min(v.len() - 1)]
}

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

impl Server {
    fn req(&self, c: &reqwest::Client, method: &str, path: &str) -> reqwest::RequestBuilder {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut r = c.request(m, format!("{}/{path}", self.base.trim_end_matches('/')));
        if let Some(a) = &self.auth {
            r = r.header("Authorization", a);
        }
        r
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Streams a whole file, counting bytes; MB/s.
async fn get_mbps(c: &reqwest::Client, s: &Server, path: &str) -> Res<f64> {
    let t = Instant::now();
    let mut r = s.req(c, "GET", path).send().await?.error_for_status()?;
    let mut n = 0usize;
    while let Some(chunk) = r.chunk().await? {
        n += chunk.len();
    }
    Ok(n as f64 / t.elapsed().as_secs_f64() / 1e6)
}

async fn size_of(c: &reqwest::Client, s: &Server, path: &str) -> Res<u64> {
    let r = s.req(c, "HEAD", path).send().await?.error_for_status()?;
    let len = r
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{}: no Content-Length for {path}", s.name))?;
    Ok(len)
}

/// (total, first byte) of a PROPFIND Depth 1, body drained.
async fn propfind(c: &reqwest::Client, s: &Server, path: &str) -> Res<(Duration, Duration)> {
    let body = r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#;
    let t = Instant::now();
    let mut r = s
        .req(c, "PROPFIND", path)
        .header("Depth", "1")
        .header("Content-Type", "application/xml")
        .body(body)
        .send()
        .await?;
    if r.status().as_u16() != 207 {
        return Err(format!("{}: PROPFIND {path}: {}", s.name, r.status()).into());
    }
    let mut first = None;
    let mut n = 0;
    while let Some(chunk) = r.chunk().await? {
        if first.is_none() {
            first = Some(t.elapsed());
        }
        n += chunk.len();
    }
    let total = t.elapsed();
    if n == 0 {
        return Err(format!("{}: PROPFIND {path}: empty body", s.name).into());
    }
    Ok((total, first.unwrap_or(total)))
}

/// `n` rounds of one 4 KiB Range GET of `file` per server, each at a random offset of
/// its own, `before` run ahead of each; the latencies in µs, per server.
async fn range_latencies(
    c: &reqwest::Client,
    servers: &[Server],
    file: &str,
    n: usize,
    rng: &mut impl Rng,
    before: impl Fn(),
) -> Res<Vec<Vec<f64>>> {
    let size = size_of(c, &servers[0], file).await?;
    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
    for _ in 0..n {
        for (i, s) in servers.iter().enumerate() {
            before();
            let off = rng.random_range(0..size - 4096);
            let range = format!("bytes={off}-{}", off + 4095);
            let t = Instant::now();
            let r = s.req(c, "GET", file).header("Range", &range).send().await?;
            if r.status().as_u16() != 206 {
                return Err(format!("{}: Range on {file}: {}", s.name, r.status()).into());
            }
            let b = r.bytes().await?;
            lat[i].push(t.elapsed().as_secs_f64() * 1e6);
            if b.len() != 4096 {
                return Err(format!("{}: Range on {file}: {} bytes", s.name, b.len()).into());
            }
        }
    }
    Ok(lat)
}

/// Drops `files` from the page cache (`posix_fadvise(DONTNEED)`; clean pages only,
/// which is all a read-only benchmark leaves).
fn evict(files: &[String]) {
    use std::os::fd::AsRawFd;
    for f in files {
        if let Ok(h) = std::fs::File::open(f) {
            // SAFETY: a valid descriptor for the call's duration; no memory is passed.
            unsafe {
                libc::posix_fadvise(h.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
            }
        }
    }
}

#[tokio::main]
async fn main() -> Res<()> {
    let file = std::env::args()
        .nth(1)
        .ok_or("usage: bench_web SERVERS_FILE")?;
    let mut servers = Vec::new();
    for line in std::fs::read_to_string(&file)?.lines() {
        let mut w = line.splitn(3, ' ');
        if let (Some(name), Some(base)) = (w.next(), w.next()) {
            servers.push(Server {
                name: name.into(),
                base: base.into(),
                auth: w.next().map(str::to_string),
            });
        }
    }
    let rounds = env_usize("BENCH_ROUNDS", 3);
    let ranges = env_usize("BENCH_RANGES", 300);
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .timeout(Duration::from_secs(600))
        .build()?;
    let mut rng = rand::rng();
    let out = |m: &str, s: &str, v: f64, unit: &str| println!("{m}\t{s}\t{v:.3}\t{unit}");

    // large GET, round by round
    let mut mb: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
    for _ in 0..rounds {
        for (i, s) in servers.iter().enumerate() {
            mb[i].push(get_mbps(&c, s, "big1g.bin").await?);
        }
    }
    for (i, s) in servers.iter().enumerate() {
        out("get_1g_mbps", &s.name, median(mb[i].clone()), "MB/s");
    }

    // 4 KiB ranges at random offsets, servers alternating request by request. Each
    // server gets offsets of its own: the peers serve the same file, so with a shared
    // offset only the first of them would pay for reading it from disk (and the 10 GiB
    // file doesn't fit in the page cache beside keep's copy of it).
    for file in ["f1m.bin", "big10g.bin"] {
        let lat = range_latencies(&c, &servers, file, ranges, &mut rng, || {}).await?;
        let tag = file.trim_end_matches(".bin");
        for (i, s) in servers.iter().enumerate() {
            out(
                &format!("range_{tag}_median"),
                &s.name,
                median(lat[i].clone()),
                "µs",
            );
            out(
                &format!("range_{tag}_p99"),
                &s.name,
                p99(lat[i].clone()),
                "µs",
            );
        }
    }

    // The same reads cold: before each request the files behind both sizes (the peers'
    // and keep's blocks, listed by bench/run in BENCH_EVICT) leave the page cache, so
    // each server pays its own disk reads whatever the cache kept. Not a bar of its own:
    // it shows whether a server's cost depends on the file's size once the cache is out
    // of the picture.
    if let Ok(list) = std::env::var("BENCH_EVICT") {
        let files: Vec<String> = std::fs::read_to_string(list)?
            .lines()
            .map(str::to_string)
            .collect();
        let n = env_usize("BENCH_COLD_RANGES", 60);
        for file in ["f1m.bin", "big10g.bin"] {
            let lat = range_latencies(&c, &servers, file, n, &mut rng, || evict(&files)).await?;
            let tag = file.trim_end_matches(".bin");
            for (i, s) in servers.iter().enumerate() {
                out(
                    &format!("range_cold_{tag}_median"),
                    &s.name,
                    median(lat[i].clone()),
                    "µs",
                );
            }
        }
    }

    // PROPFIND Depth 1
    for dir in ["dir10k/", "many/"] {
        let mut tot: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
        let mut first: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
        for _ in 0..rounds {
            for (i, s) in servers.iter().enumerate() {
                match propfind(&c, s, dir).await {
                    Ok((t, f)) => {
                        tot[i].push(t.as_secs_f64() * 1e3);
                        first[i].push(f.as_secs_f64() * 1e3);
                    }
                    Err(e) => eprintln!("bench_web: {e}"),
                }
            }
        }
        let tag = dir.trim_end_matches('/');
        for (i, s) in servers.iter().enumerate() {
            if tot[i].is_empty() {
                continue;
            }
            out(
                &format!("propfind_{tag}_ms"),
                &s.name,
                median(tot[i].clone()),
                "ms",
            );
            out(
                &format!("propfind_{tag}_first_ms"),
                &s.name,
                median(first[i].clone()),
                "ms",
            );
        }
    }
    Ok(())
}
