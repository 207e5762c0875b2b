//! `keep balance [--once] [--dry-run]`: garbage collection and replication of blocks
//! (DESIGN §4a, issue 12 item 2). Also run every `[balance] interval` inside a
//! `keep serve` that runs the API and a keepstore.
//!
//! One run: (1) ask each keepstore for `/mounts` (its volumes, and its clock, from which
//! the cutoff `Date − blob_signature_ttl` is taken *before* collections are read);
//! (2) read every collection record — current, past versions, trashed ones until
//! `delete_at + blob_signature_ttl` has passed — into a sorted set of block hashes
//! ([`refs::RefSet`], 36 B per distinct block); (3) stream each keepstore's index
//! through the [`plan::Planner`]; (4) send pull lists, then (only if every pull list
//! was accepted) trash lists. Any error before (4) sends nothing. keepstore itself
//! refuses to trash a block younger than the TTL or whose mtime changed since the index
//! (a re-PUT touches it), and keeps trash recoverable for `[keepstore] trash_lifetime`.

mod http;
pub mod plan;
pub mod refs;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::error::CliError;
use http::Listing;
use plan::{Counts, Planner, KEEPSTORES_MAX};
use refs::RefSet;

pub const EXAMPLES: &str = "Examples:
  keep balance --once --dry-run        # report only, change nothing
  keep balance --once                  # one run: pull missing copies, trash garbage
  keep balance --data /srv/keep --config /etc/keep.toml   # run every [balance] interval";

/// Default time between runs.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);

#[derive(Debug, clap::Args)]
pub struct BalanceArgs {
    /// Run once and exit (else run every [balance] interval).
    #[arg(long)]
    pub once: bool,
    /// Decide and report, but send no pull or trash list.
    #[arg(long)]
    pub dry_run: bool,
    /// The data directory of `keep serve` (its secrets.toml holds the system root token).
    #[arg(long, default_value = "./keep-data", value_name = "DIR")]
    pub data: PathBuf,
    /// The cluster's TOML config file (the one `keep serve` reads).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The API server (default: from the config, `[api] external_url` or `listen`).
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// Balance over these keepstores instead of the list the API publishes (repeat the
    /// flag; the order clients use is by these URLs, so give exactly what clients see).
    #[arg(long = "keepstore", value_name = "URL")]
    pub keepstores: Vec<String>,
    /// Write the metrics of each run to this file (overrides [balance] metrics_file).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}

/// Everything one run needs.
#[derive(Clone)]
pub struct Settings {
    pub api: String,
    pub root_token: String,
    pub blob_signature_ttl: Duration,
    pub keepstores: Vec<String>,
    pub lock: PathBuf,
    pub metrics_file: Option<PathBuf>,
}

impl Settings {
    pub fn from_config(cfg: &Config, api: String) -> Settings {
        Settings {
            api: api.trim_end_matches('/').to_string(),
            root_token: cfg.system_root_token.clone(),
            blob_signature_ttl: cfg.blob_signature_ttl,
            keepstores: Vec::new(),
            lock: cfg.data_dir.join("balance.lock"),
            metrics_file: cfg.balance.metrics_file.clone(),
        }
    }
}

/// The configured replication must fit the keepstores: a clear error otherwise.
pub fn check_replication(replication: u64, keepstores: usize) -> Result<(), CliError> {
    if replication as usize > keepstores {
        return Err(CliError::config(
            "checking the cluster's replication",
            format!(
                "default replication is {replication} but the cluster lists {keepstores} keepstore(s): every block would stay under-replicated"
            ),
            "list more keepstores, or lower the default replication",
        ));
    }
    Ok(())
}

/// What one run found and did.
#[derive(Debug, Default)]
pub struct Report {
    pub dry_run: bool,
    pub keepstores: Vec<String>,
    pub counts: Counts,
    pub deleted_collections: u64,
    pub refset_bytes: usize,
    /// Lost blocks and (some of) the collections naming them.
    pub lost: Vec<(String, Vec<String>)>,
    pub sent: Vec<String>,
    pub notes: Vec<String>,
    pub seconds: f64,
    /// Seconds spent per phase (mounts, collections, indexes, send, lost).
    pub phases: Vec<(&'static str, f64)>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.counts;
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        writeln!(
            f,
            "keep balance{}: {} keepstore(s), {:.1}s",
            if self.dry_run {
                " (dry run: nothing sent)"
            } else {
                ""
            },
            self.keepstores.len(),
            self.seconds
        )?;
        writeln!(
            f,
            "  collections read        {} ({} deleted, not counted); {} block references",
            c.collections, self.deleted_collections, c.references
        )?;
        writeln!(
            f,
            "  referenced              {} blocks, {:.1} MiB (set in memory: {:.1} MiB)",
            c.referenced_blocks,
            mib(c.referenced_bytes),
            mib(self.refset_bytes as u64)
        )?;
        writeln!(f, "  stored copies           {}", c.copies)?;
        writeln!(
            f,
            "  garbage                 {} copies, {:.1} MiB (unreferenced, older than blob_signature_ttl)",
            c.garbage_copies,
            mib(c.garbage_bytes)
        )?;
        writeln!(
            f,
            "  unreferenced, new       {} copies (kept: younger than blob_signature_ttl)",
            c.unreferenced_new_copies
        )?;
        writeln!(f, "  balanced                {} blocks", c.balanced_blocks)?;
        writeln!(
            f,
            "  under-replicated        {} blocks",
            c.underreplicated_blocks
        )?;
        writeln!(
            f,
            "  over-replicated         {} blocks",
            c.overreplicated_blocks
        )?;
        if c.unplaceable_blocks > 0 {
            writeln!(
                f,
                "  unplaceable             {} blocks want more copies than there are keepstores",
                c.unplaceable_blocks
            )?;
        }
        writeln!(
            f,
            "  lost                    {} blocks, {:.1} MiB",
            c.lost_blocks,
            mib(c.lost_bytes)
        )?;
        for (b, cols) in &self.lost {
            writeln!(f, "    lost {b}  named by {}", cols.join(" "))?;
        }
        writeln!(
            f,
            "  pulls                   {} ({} deferred to a later run)",
            c.pulls, c.pulls_deferred
        )?;
        writeln!(
            f,
            "  trash                   {} garbage + {} surplus copies ({} deferred)",
            c.trash_garbage, c.trash_surplus, c.trash_deferred
        )?;
        for s in &self.sent {
            writeln!(f, "  sent: {s}")?;
        }
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
        let phases: Vec<String> = self
            .phases
            .iter()
            .map(|(p, s)| format!("{p} {s:.1}s"))
            .collect();
        writeln!(f, "  phases                  {}", phases.join(", "))?;
        Ok(())
    }
}

impl Report {
    /// Prometheus text format.
    pub fn metrics(&self) -> String {
        let c = &self.counts;
        let mut out = String::new();
        let mut g = |name: &str, help: &str, v: f64| {
            let _ = writeln!(out, "# HELP keep_balance_{name} {help}");
            let _ = writeln!(out, "# TYPE keep_balance_{name} gauge");
            let _ = writeln!(out, "keep_balance_{name} {v}");
        };
        g(
            "collections",
            "collection records read",
            c.collections as f64,
        );
        g(
            "referenced_blocks",
            "distinct blocks named by a collection",
            c.referenced_blocks as f64,
        );
        g(
            "referenced_bytes",
            "bytes of the referenced blocks",
            c.referenced_bytes as f64,
        );
        g(
            "stored_copies",
            "block copies listed by the keepstores",
            c.copies as f64,
        );
        g(
            "garbage_copies",
            "unreferenced copies older than blob_signature_ttl",
            c.garbage_copies as f64,
        );
        g(
            "garbage_bytes",
            "bytes of those copies",
            c.garbage_bytes as f64,
        );
        g(
            "unreferenced_new_copies",
            "unreferenced copies younger than blob_signature_ttl",
            c.unreferenced_new_copies as f64,
        );
        g(
            "balanced_blocks",
            "blocks with exactly their desired copies",
            c.balanced_blocks as f64,
        );
        g(
            "underreplicated_blocks",
            "blocks with fewer copies than desired",
            c.underreplicated_blocks as f64,
        );
        g(
            "overreplicated_blocks",
            "blocks with more copies than desired",
            c.overreplicated_blocks as f64,
        );
        g(
            "lost_blocks",
            "referenced blocks no keepstore holds",
            c.lost_blocks as f64,
        );
        g(
            "lost_bytes",
            "bytes of the lost blocks",
            c.lost_bytes as f64,
        );
        g("pulls", "pull entries decided", c.pulls as f64);
        g(
            "pulls_deferred",
            "pull entries left for a later run",
            c.pulls_deferred as f64,
        );
        g(
            "trash_garbage",
            "garbage trash entries decided",
            c.trash_garbage as f64,
        );
        g(
            "trash_surplus",
            "surplus-copy trash entries decided",
            c.trash_surplus as f64,
        );
        g(
            "trash_deferred",
            "trash entries left for a later run",
            c.trash_deferred as f64,
        );
        g(
            "refset_bytes",
            "memory of the referenced-block set",
            self.refset_bytes as f64,
        );
        g("run_seconds", "duration of the run", self.seconds);
        g(
            "last_run_timestamp_seconds",
            "when the run ended",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        let _ = writeln!(
            out,
            "# HELP keep_balance_phase_seconds duration of each phase of the run"
        );
        let _ = writeln!(out, "# TYPE keep_balance_phase_seconds gauge");
        for (p, s) in &self.phases {
            let _ = writeln!(out, "keep_balance_phase_seconds{{phase=\"{p}\"}} {s}");
        }
        out
    }
}

/// An exclusive lock on `DIR/balance.lock`, so that two balancers never run at once
/// on one data directory (`keep serve`'s own runs and a `keep balance`).
struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    fn take(path: &Path) -> Result<RunLock, CliError> {
        use std::os::fd::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| CliError::new(format!("opening {}", path.display()), e.to_string(), ""))?;
        // SAFETY: a valid open descriptor; flock only changes the lock state.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            return Err(CliError::new(
                "starting a balance run",
                format!("another balance run holds {}", path.display()),
                "wait for it to finish (keep serve runs balance every [balance] interval)",
            ));
        }
        Ok(RunLock { _file: f })
    }
}

fn is_deleted(c: &http::Collection, now_ns: i64, ttl: Duration) -> bool {
    if !c.is_trashed {
        return false;
    }
    let Some(d) = c.delete_at.as_deref() else {
        return false;
    };
    match keep_format::time::parse_nanos(d) {
        Ok(at) => at.saturating_add(ttl.as_nanos() as i64) < now_ns,
        Err(_) => false,
    }
}

fn ns_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(u128::from(u64::MAX)) as u64)
}

/// One balance run.
pub async fn run_once(s: &Settings, dry_run: bool) -> Result<Report, CliError> {
    let started = Instant::now();
    let _lock = RunLock::take(&s.lock)?;
    let http = http::Http::new(&s.root_token)?;
    let info = http.cluster(&s.api).await?;
    let keepstores: Vec<String> = if s.keepstores.is_empty() {
        info.keepstores
    } else {
        s.keepstores
            .iter()
            .map(|k| k.trim_end_matches('/').to_string())
            .collect()
    };
    if keepstores.is_empty() {
        return Err(CliError::config(
            "finding the keepstores",
            format!("the API at {} lists no keepstore", s.api),
            "list the keepstores in the cluster config",
        ));
    }
    if keepstores.len() > KEEPSTORES_MAX {
        return Err(CliError::config(
            "finding the keepstores",
            format!(
                "{} keepstores; balance handles at most {KEEPSTORES_MAX}",
                keepstores.len()
            ),
            "",
        ));
    }
    let default_replication = info.default_replication.unwrap_or(1).max(1);
    check_replication(default_replication, keepstores.len())?;
    let mut report = Report {
        dry_run,
        keepstores: keepstores.clone(),
        ..Report::default()
    };

    // (1) each keepstore's clock and volumes, before any collection is read
    let ttl_ns = s.blob_signature_ttl.as_nanos().min(u128::from(u64::MAX)) as u64;
    let mut cutoffs = Vec::new();
    let mut volumes: Vec<(String, usize)> = Vec::new();
    for (k, ks) in keepstores.iter().enumerate() {
        let (mounts, date) = http.mounts(ks).await?;
        // the Date header is whole seconds, rounded down: one more second of margin
        cutoffs.push(ns_since_epoch(date).saturating_sub(ttl_ns + 1_000_000_000));
        for m in mounts {
            volumes.push((m.uuid, k));
        }
    }
    volumes.sort();
    let shared = volumes
        .windows(2)
        .filter(|w| w[0].0 == w[1].0 && w[0].1 != w[1].1)
        .map(|w| w[0].0.clone())
        .collect::<Vec<_>>();
    if !shared.is_empty() {
        report.notes.push(format!(
            "volume(s) {} are reached through several keepstores: surplus copies are not trashed",
            shared.join(", ")
        ));
    }

    let mut mark = Instant::now();
    let mut phase = |report: &mut Report, name: &'static str| {
        report.phases.push((name, mark.elapsed().as_secs_f64()));
        mark = Instant::now();
    };
    phase(&mut report, "mounts");

    // (2) every collection. First the deleted ones (trashed, delete_at + TTL passed):
    // their past versions go with them.
    let now_ns = keep_format::time::unix_now_nanos();
    let ttl = s.blob_signature_ttl;
    let mut deleted_uuids: Vec<String> = Vec::new();
    http.each_collection(&s.api, Listing::TrashedCurrent, |c| {
        if c.uuid == c.current_version_uuid && is_deleted(c, now_ns, ttl) {
            deleted_uuids.push(c.uuid.clone());
        }
    })
    .await?;
    deleted_uuids.sort();
    // a past version goes only with its current collection, whatever its own flags say
    let gone = |c: &http::Collection| {
        if c.uuid == c.current_version_uuid {
            is_deleted(c, now_ns, ttl)
        } else {
            deleted_uuids.binary_search(&c.current_version_uuid).is_ok()
        }
    };
    let mut refs = RefSet::default();
    let mut bad = 0u64;
    let mut missing_text = 0u64;
    let mut deleted = 0u64;
    let mut collections = 0u64;
    let (max_m, seen) = http
        .each_collection(&s.api, Listing::Everything, |c| {
            collections += 1;
            if gone(c) {
                deleted += 1;
                return;
            }
            let repl = c
                .replication_desired
                .unwrap_or(default_replication)
                .clamp(1, u64::from(refs::REPLICATION_MAX)) as u8;
            match &c.unsigned_manifest_text {
                Some(t) => bad += refs::scan_manifest(t, |h, size| refs.push(h, size, repl)),
                None => missing_text += 1,
            }
        })
        .await?;
    if bad > 0 || missing_text > 0 {
        return Err(CliError::new(
            "reading collections",
            format!("{bad} malformed locators, {missing_text} records without a manifest"),
            "nothing was trashed: fix those collections (or the API) and run again",
        ));
    }
    if !max_m.is_empty() {
        let now = http.count_upto(&s.api, &max_m).await?;
        if now > seen {
            return Err(CliError::new(
                "reading collections",
                format!(
                    "the listing saw {seen} records up to {max_m} but the API now counts {now}: some were missed"
                ),
                "nothing was trashed; run again",
            ));
        }
    }
    if collections == 0 {
        return Err(CliError::new(
            "reading collections",
            format!("the API at {} lists no collection at all", s.api),
            "refusing to trash anything: a wrong API server or an empty database would make every block garbage",
        ));
    }
    refs.finish();
    phase(&mut report, "collections");
    report.deleted_collections = deleted;
    report.refset_bytes = refs.heap_bytes();

    // (3) every index
    let mut planner = Planner::new(&refs, keepstores.clone(), cutoffs, shared.is_empty());
    for (k, ks) in keepstores.iter().enumerate() {
        http.index(ks, |h, size, mtime| planner.observe(k, h, size, mtime))
            .await?;
    }
    let mut plan = planner.finish();
    phase(&mut report, "indexes");
    plan.counts.collections = collections;
    plan.counts.references = refs.references;

    // (4) pulls, then trash
    if !dry_run {
        let mut pulls_ok = true;
        for (k, ks) in keepstores.iter().enumerate() {
            // an empty list too: it clears a stale queue from an earlier run
            match http.pull(ks, &plan.pulls[k]).await {
                Ok(_) if plan.pulls[k].is_empty() => {}
                Ok(_) => report
                    .sent
                    .push(format!("{} pulls to {ks}", plan.pulls[k].len())),
                Err(e) => {
                    pulls_ok = false;
                    report.notes.push(e.to_string());
                }
            }
        }
        if pulls_ok {
            for (k, ks) in keepstores.iter().enumerate() {
                if plan.trash[k].is_empty() {
                    continue;
                }
                match http.trash(ks, &plan.trash[k]).await {
                    Ok(v) => report.sent.push(format!(
                        "{} trash entries to {ks}: {} trashed, {} skipped by keepstore (touched since, or too new)",
                        plan.trash[k].len(),
                        v["trashed"],
                        v["skipped"]
                    )),
                    Err(e) => report.notes.push(e.to_string()),
                }
            }
        } else {
            report
                .notes
                .push("a pull list was refused: no trash list sent this run".into());
        }
    }

    phase(&mut report, "send");

    // lost blocks: which collections name them
    if !plan.lost.is_empty() {
        let mut lost: Vec<(keep_format::Hash, Vec<String>)> =
            plan.lost.iter().map(|h| (*h, Vec::new())).collect();
        lost.sort_by_key(|(h, _)| *h);
        http.each_collection(&s.api, Listing::Everything, |c| {
            if gone(c) {
                return;
            }
            if let Some(t) = &c.unsigned_manifest_text {
                refs::scan_manifest(t, |h, _| {
                    if let Ok(i) = lost.binary_search_by_key(h, |(x, _)| *x) {
                        let names = &mut lost[i].1;
                        let name = format!("{} ({})", c.uuid, c.portable_data_hash);
                        if names.len() < 10 && !names.contains(&name) {
                            names.push(name);
                        }
                    }
                });
            }
        })
        .await?;
        report.lost = lost
            .into_iter()
            .map(|(h, names)| (h.to_string(), names))
            .collect();
        phase(&mut report, "lost");
    }
    report.counts = plan.counts;
    report.seconds = started.elapsed().as_secs_f64();
    if let Some(p) = &s.metrics_file {
        write_metrics(p, &report.metrics())?;
    }
    Ok(report)
}

fn write_metrics(path: &Path, text: &str) -> Result<(), CliError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| {
            CliError::new(
                format!("writing metrics to {}", path.display()),
                e.to_string(),
                "check the directory",
            )
        })
}

fn interval_of(cfg: &Config) -> Duration {
    cfg.balance.interval.map_or(DEFAULT_INTERVAL, |d| d.0)
}

/// Runs balance every `[balance] interval` inside `keep serve` (not at all when it is 0).
pub fn spawn_periodic(cfg: &Config, api_url: String) {
    let every = interval_of(cfg);
    if every.is_zero() {
        return;
    }
    let s = Settings::from_config(cfg, api_url);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            match run_once(&s, false).await {
                Ok(r) => tracing::info!(
                    referenced = r.counts.referenced_blocks,
                    garbage = r.counts.garbage_copies,
                    trashed = r.counts.trash_garbage + r.counts.trash_surplus,
                    pulls = r.counts.pulls,
                    underreplicated = r.counts.underreplicated_blocks,
                    lost = r.counts.lost_blocks,
                    seconds = r.seconds,
                    "balance run done"
                ),
                Err(e) => tracing::error!(error = %e, "balance run failed"),
            }
        }
    });
}

/// `keep balance`.
pub async fn run(args: BalanceArgs) -> Result<(), CliError> {
    if args.config.is_none() && !args.data.join("secrets.toml").exists() {
        return Err(CliError::usage(
            "keep balance",
            format!(
                "{} holds no secrets.toml and no --config was given",
                args.data.display()
            ),
            "run it with the --data and --config of `keep serve` (it needs the system root token)",
        ));
    }
    let cfg = Config::load(&args.data, args.config.as_deref())?;
    let api = args.api.clone().unwrap_or_else(|| {
        cfg.api_external_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", cfg.api_listen))
    });
    let mut s = Settings::from_config(&cfg, api);
    s.keepstores = args.keepstores.clone();
    if args.metrics_file.is_some() {
        s.metrics_file = args.metrics_file.clone();
    }
    if args.once {
        let r = run_once(&s, args.dry_run).await?;
        print!("{r}");
        return Ok(());
    }
    let every = interval_of(&cfg).max(Duration::from_secs(1));
    loop {
        match run_once(&s, args.dry_run).await {
            Ok(r) => print!("{r}"),
            Err(e) => eprintln!("{e}"),
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_only_after_delete_at_plus_ttl() {
        let ttl = Duration::from_secs(60);
        let at = |s: i64| Some(keep_format::time::format_nanos(s * 1_000_000_000));
        let now = 10_000 * 1_000_000_000;
        let mut c = http::Collection {
            is_trashed: true,
            delete_at: at(9_000),
            ..Default::default()
        };
        assert!(is_deleted(&c, now, ttl));
        c.delete_at = at(9_950); // within the TTL margin
        assert!(!is_deleted(&c, now, ttl));
        c.delete_at = at(9_000);
        c.is_trashed = false; // untrashed
        assert!(!is_deleted(&c, now, ttl));
        c.is_trashed = true;
        c.delete_at = Some("garbled".into());
        assert!(!is_deleted(&c, now, ttl));
    }

    #[test]
    fn replication_above_keepstores_is_refused() {
        assert!(check_replication(2, 3).is_ok());
        let e = check_replication(3, 2).unwrap_err().to_string();
        assert!(
            e.contains("replication is 3") && e.contains("2 keepstore"),
            "{e}"
        );
    }
}
