//! One 64 MiB block, keepstore vs nginx, same client (reqwest, keep-alive), alternating
//! servers each round: PUT, whole GET, and 4 KiB Range GETs at random offsets. Then,
//! when it may drop the page cache (root), cold 4 KiB Range GETs: the cache is dropped
//! before each server's turn, and each read goes to a random offset of a random block.
//! Run by `bench/block.sh`, which starts both servers.
//!
//! usage: bench_block KEEPSTORE_URL NGINX_URL [ROUNDS]

use std::time::{Duration, Instant};

use keep_format::{Hash, Locator, Token};
use rand::Rng;

const BLOCK: usize = 64 << 20;

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let med = v[v.len() / 2];
    let p99 = v[((v.len() * 99) / 100).min(v.len() - 1)];
    (med, p99)
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: bench_block KEEPSTORE_URL NGINX_URL [ROUNDS]");
        std::process::exit(2);
    }
    let (ks, ng) = (&args[1], &args[2]);
    let rounds: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()?;
    let token = Token::generate_bare();
    let mut rng = rand::rng();

    let mut put_ks = Vec::new();
    let mut put_ng = Vec::new();
    let mut get_ks = Vec::new();
    let mut get_ng = Vec::new();
    let mut rng_ks = Vec::new();
    let mut rng_ng = Vec::new();
    let mut loc: Option<Locator> = None;
    let mut locs: Vec<Locator> = Vec::new();
    for round in 0..rounds {
        let mut data = vec![0u8; BLOCK];
        rng.fill(&mut data[..]);
        let hash = Hash::of(&data);
        // PUT (fresh data each round, so keepstore really stores it)
        let t = Instant::now();
        let r = c
            .put(format!("{ks}/{hash}"))
            .bearer_auth(token.expose())
            .body(data.clone())
            .send()
            .await?;
        let text = r.error_for_status()?.text().await?;
        put_ks.push(mbps(BLOCK, t.elapsed()));
        loc = Some(text.trim().parse()?);
        let t = Instant::now();
        c.put(format!("{ng}/block{round}"))
            .body(data.clone())
            .send()
            .await?
            .error_for_status()?;
        put_ng.push(mbps(BLOCK, t.elapsed()));
        let l = loc.clone().ok_or("no locator")?;
        locs.push(l.clone());
        // whole GET
        for (url, out, auth) in [
            (format!("{ks}/{l}"), &mut get_ks, true),
            (format!("{ng}/block{round}"), &mut get_ng, false),
        ] {
            let t = Instant::now();
            let mut req = c.get(&url);
            if auth {
                req = req.bearer_auth(token.expose());
            }
            let body = req.send().await?.error_for_status()?.bytes().await?;
            assert_eq!(body.len(), BLOCK);
            out.push(mbps(BLOCK, t.elapsed()));
        }
        // 4 KiB ranges at random offsets, alternating servers request by request
        for _ in 0..200 {
            let off = rng.random_range(0..(BLOCK - 4096)) as u64;
            let range = format!("bytes={off}-{}", off + 4095);
            let t = Instant::now();
            let b = c
                .get(format!("{ks}/{l}"))
                .bearer_auth(token.expose())
                .header("Range", &range)
                .send()
                .await?
                .bytes()
                .await?;
            rng_ks.push(t.elapsed());
            assert_eq!(b.len(), 4096);
            let t = Instant::now();
            let b = c
                .get(format!("{ng}/block{round}"))
                .header("Range", &range)
                .send()
                .await?
                .bytes()
                .await?;
            rng_ng.push(t.elapsed());
            assert_eq!(b.len(), 4096);
        }
    }
    let (kmed, kp99) = stats(rng_ks);
    let (nmed, np99) = stats(rng_ng);
    let (pk, pn, gk, gn) = (
        median(put_ks),
        median(put_ng),
        median(get_ks),
        median(get_ng),
    );
    println!("| 64 MiB block, {rounds} rounds | keepstore | nginx | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| PUT MB/s (median) | {pk:.0} | {pn:.0} | {:.2}x |",
        pk / pn
    );
    println!(
        "| whole GET MB/s (median) | {gk:.0} | {gn:.0} | {:.2}x |",
        gk / gn
    );
    println!(
        "| 4 KiB Range GET median | {:.0} µs | {:.0} µs | {:.2}x |",
        kmed.as_secs_f64() * 1e6,
        nmed.as_secs_f64() * 1e6,
        kmed.as_secs_f64() / nmed.as_secs_f64()
    );
    println!(
        "| 4 KiB Range GET p99 | {:.0} µs | {:.0} µs | {:.2}x |",
        kp99.as_secs_f64() * 1e6,
        np99.as_secs_f64() * 1e6,
        kp99.as_secs_f64() / np99.as_secs_f64()
    );
    if drop_caches() {
        let mut cold_ks = Vec::new();
        let mut cold_ng = Vec::new();
        for _ in 0..3 {
            for keep in [true, false] {
                if !drop_caches() {
                    return Err("dropping the page cache failed".into());
                }
                for _ in 0..100 {
                    let b = rng.random_range(0..locs.len());
                    let off = rng.random_range(0..(BLOCK - 4096)) as u64;
                    let range = format!("bytes={off}-{}", off + 4095);
                    let req = if keep {
                        c.get(format!("{ks}/{}", locs[b]))
                            .bearer_auth(token.expose())
                    } else {
                        c.get(format!("{ng}/block{b}"))
                    };
                    let t = Instant::now();
                    let body = req.header("Range", &range).send().await?.bytes().await?;
                    let d = t.elapsed();
                    assert_eq!(body.len(), 4096);
                    if keep {
                        cold_ks.push(d)
                    } else {
                        cold_ng.push(d)
                    }
                }
            }
        }
        let (kmed, kp99) = stats(cold_ks);
        let (nmed, np99) = stats(cold_ng);
        for (what, k, n) in [("median", kmed, nmed), ("p99", kp99, np99)] {
            println!(
                "| cold 4 KiB Range GET {what} (page cache dropped) | {:.0} µs | {:.0} µs | {:.2}x |",
                k.as_secs_f64() * 1e6,
                n.as_secs_f64() * 1e6,
                k.as_secs_f64() / n.as_secs_f64()
            );
        }
    } else {
        println!("(cold reads not measured: the page cache can only be dropped as root)");
    }
    if let (Ok(path), Some(l)) = (std::env::var("BENCH_LOC_FILE"), loc) {
        // for the script's curl cross-check: the last block's signed URL and its token
        std::fs::write(path, format!("{ks}/{l} {}\n", token.expose()))?;
    }
    Ok(())
}

/// `sync; echo 3 > /proc/sys/vm/drop_caches`: false when not allowed.
fn drop_caches() -> bool {
    let _ = std::process::Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}
