//! `keep balance` against real processes (`keep serve`, extra `keep serve --only
//! keepstore`), temp dirs: GC never takes a referenced block, trashed collections keep
//! their blocks until deleted, untrash brings blocks back, --dry-run changes nothing,
//! a killed run loses nothing, pulls make the desired copies and surplus copies go
//! only once those are confirmed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{bytes, Env, Serve as Keep, KEEP};
use serde_json::{json, Value};

/// Signatures (and so the protection of uncommitted blocks) last this long in these
/// tests, so that blocks become garbage within seconds.
const TTL_SECS: u64 = 3;

fn start(interval: &str) -> Keep {
    Keep::start_with(
        KEEP,
        &format!("blob_signature_ttl = \"{TTL_SECS}s\""),
        &format!("trash_lifetime = \"1h\"\n[balance]\ninterval = \"{interval}\""),
    )
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn root(k: &Keep) -> String {
    k.secrets().system_root_token
}

/// `keep balance --once ARGS` for the cluster of `k`.
fn balance(k: &Keep, args: &[&str]) -> Output {
    balance_cmd(k, args).output().expect("run keep balance")
}

fn balance_cmd(k: &Keep, args: &[&str]) -> Command {
    let mut c = Command::new(KEEP);
    c.args(["balance", "--once", "--data"])
        .arg(k.data())
        .arg("--config")
        .arg(&k.config)
        .args(["--api", k.api.as_deref().unwrap()])
        .args(args);
    c
}

fn balance_ok(k: &Keep, args: &[&str]) -> String {
    let o = balance(k, args);
    assert!(
        o.status.success(),
        "keep balance {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The number after `label` in a report line.
fn report_num(report: &str, label: &str) -> u64 {
    let line = report
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} in\n{report}"));
    line.trim_start()[label.len()..]
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no number in {line:?}"))
}

/// hash → (size, mtime) from a keepstore's index.
fn index(ks: &str, root: &str) -> BTreeMap<String, (u64, u64)> {
    let text = http()
        .get(format!("{ks}/index"))
        .bearer_auth(root)
        .send()
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .unwrap();
    assert!(text.ends_with('\n'), "{text:?}");
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (loc, mtime) = l.split_once(' ').unwrap();
            let (hash, size) = loc.split_once('+').unwrap();
            (
                hash.to_string(),
                (size.parse().unwrap(), mtime.parse().unwrap()),
            )
        })
        .collect()
}

/// PUT a block straight to a keepstore (a client that has not committed it yet).
fn raw_put(ks: &str, token: &str, data: &[u8]) -> String {
    let hash = blake3::hash(data).to_hex().to_string();
    let r = http()
        .put(format!("{ks}/{hash}"))
        .bearer_auth(token)
        .body(data.to_vec())
        .send()
        .unwrap();
    assert!(r.status().is_success(), "PUT: {}", r.status());
    r.text().unwrap().trim().to_string()
}

fn api(k: &Keep) -> String {
    k.api.clone().unwrap()
}

fn api_json(req: reqwest::blocking::RequestBuilder, token: &str) -> Value {
    let r = req.bearer_auth(token).send().unwrap();
    let status = r.status();
    let text = r.text().unwrap();
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn get_collection(k: &Keep, token: &str, uuid: &str) -> Value {
    api_json(
        http()
            .get(format!("{}/arvados/v1/collections/{uuid}", api(k)))
            .query(&[("include_trash", "true")]),
        token,
    )
}

fn update_collection(k: &Keep, token: &str, uuid: &str, patch: Value) -> Value {
    api_json(
        http()
            .put(format!("{}/arvados/v1/collections/{uuid}", api(k)))
            .json(&json!({ "collection": patch })),
        token,
    )
}

/// Block hashes in a manifest.
fn blocks_of(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .flat_map(|l| l.split(' ').skip(1))
        .take_while(|_| true)
        .filter(|t| t.len() > 65 && t.as_bytes()[64] == b'+')
        .map(|t| t[..64].to_string())
        .collect()
}

/// Every block named by any collection record (current, past versions, trashed).
fn all_referenced(k: &Keep, root: &str) -> (BTreeSet<String>, usize) {
    let mut out = BTreeSet::new();
    let mut offset = 0;
    loop {
        let v = api_json(
            http()
                .get(format!("{}/arvados/v1/collections", api(k)))
                .query(&[
                    ("include_trash", "true"),
                    ("include_old_versions", "true"),
                    ("select", r#"["uuid","unsigned_manifest_text"]"#),
                    ("order", r#"["uuid asc"]"#),
                    ("limit", "1000"),
                    ("offset", &offset.to_string()),
                ]),
            root,
        );
        let items = v["items"].as_array().unwrap();
        if items.is_empty() {
            return (out, offset);
        }
        for it in items {
            out.extend(blocks_of(it["unsigned_manifest_text"].as_str().unwrap()));
        }
        offset += items.len();
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    crate::support::files_under(dir)
}

/// A directory of `n` small files with content from `seed`.
fn make_dir(base: &Path, name: &str, n: usize, seed: u64) -> PathBuf {
    let d = base.join(name);
    std::fs::create_dir_all(&d).unwrap();
    for i in 0..n {
        std::fs::write(
            d.join(format!("f{i}")),
            bytes(1000 + i * 37, seed * 1000 + i as u64),
        )
        .unwrap();
    }
    d
}

fn wait_past_ttl() {
    // the cutoff is TTL + 1 s before the keepstore's Date (whole seconds)
    std::thread::sleep(Duration::from_secs(TTL_SECS + 3));
}

#[test]
fn dry_run_changes_nothing_then_gc_takes_only_garbage_and_untrash_restores() {
    let k = start("0s");
    let env = Env::new(&k);
    let root = root(&k);
    let ks = k.keepstore.clone();
    let src = tempfile::tempdir().unwrap();
    let kept = env.ok(&["put", make_dir(src.path(), "kept", 5, 1).to_str().unwrap()]);
    // uncommitted blocks: garbage once older than the TTL
    let garbage: Vec<String> = (0..4)
        .map(|i| raw_put(&ks, &env.token, &bytes(5000, 900 + i)))
        .collect();
    wait_past_ttl();
    let young = raw_put(&ks, &env.token, &bytes(5000, 999));

    let vol = k.data().join("keep");
    let before = files_in(&vol);
    let report = balance_ok(&k, &["--dry-run"]);
    assert!(report.contains("dry run"), "{report}");
    assert_eq!(report_num(&report, "garbage"), 4, "{report}");
    assert_eq!(report_num(&report, "unreferenced, new"), 1, "{report}");
    assert_eq!(report_num(&report, "lost"), 0, "{report}");
    assert_eq!(files_in(&vol), before, "--dry-run changed the volume");

    let report = balance_ok(&k, &[]);
    assert!(report.contains("4 trashed, 0 skipped"), "{report}");
    let idx = index(&ks, &root);
    for g in &garbage {
        assert!(!idx.contains_key(&g[..64]), "garbage {g} still indexed");
    }
    assert!(
        idx.contains_key(&young[..64]),
        "a block younger than the TTL was trashed"
    );
    // the committed collection reads back whole
    let out = tempfile::tempdir().unwrap();
    env.ok(&["get", &kept, out.path().join("k").to_str().unwrap(), "-r"]);
    assert_eq!(files_in(&out.path().join("k")).len(), 5);

    // a mistake is undone with untrash within the trash lifetime
    let r = http()
        .put(format!(
            "{ks}/untrash/{}",
            &garbage[0][..garbage[0].find("+A").unwrap()]
        ))
        .bearer_auth(&root)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "untrash: {}", r.status());
    assert!(index(&ks, &root).contains_key(&garbage[0][..64]));

    // untrash made it new again: the next run leaves it (and the young one) alone
    let report = balance_ok(&k, &[]);
    assert_eq!(report_num(&report, "garbage"), 0, "{report}");
    assert_eq!(report_num(&report, "unreferenced, new"), 2, "{report}");
    assert_eq!(report_num(&report, "lost"), 0, "{report}");
}

#[test]
fn re_put_refreshes_mtime_so_a_stale_trash_entry_is_skipped() {
    let k = start("0s");
    let env = Env::new(&k);
    let root = root(&k);
    let ks = k.keepstore.clone();
    let data = bytes(3000, 42);
    let loc = raw_put(&ks, &env.token, &data);
    let hash = loc[..64].to_string();
    let m1 = index(&ks, &root)[&hash].1;
    std::thread::sleep(Duration::from_millis(1100));
    raw_put(&ks, &env.token, &data);
    let m2 = index(&ks, &root)[&hash].1;
    assert!(m2 > m1, "a re-PUT must touch the block ({m1} -> {m2})");
    // a trash entry carrying the old mtime is skipped
    let r: Value = http()
        .put(format!("{ks}/trash"))
        .bearer_auth(&root)
        .json(&json!([{"locator": format!("{hash}+3000"), "block_mtime": m1}]))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(r["trashed"], 0, "{r}");
    assert!(index(&ks, &root).contains_key(&hash));
}

#[test]
fn trashed_collection_keeps_its_blocks_until_deleted() {
    let k = start("0s");
    let env = Env::new(&k);
    let root = root(&k);
    let ks = k.keepstore.clone();
    let src = tempfile::tempdir().unwrap();
    env.ok(&["put", make_dir(src.path(), "other", 2, 7).to_str().unwrap()]);
    let t = env.ok(&[
        "put",
        make_dir(src.path(), "trashme", 3, 8).to_str().unwrap(),
    ]);
    let blocks = blocks_of(
        get_collection(&k, &env.token, &t)["manifest_text"]
            .as_str()
            .unwrap(),
    );
    assert!(!blocks.is_empty());
    api_json(
        http().delete(format!("{}/arvados/v1/collections/{t}", api(&k))),
        &env.token,
    );
    wait_past_ttl();
    let report = balance_ok(&k, &[]);
    assert_eq!(report_num(&report, "garbage"), 0, "{report}");
    let idx = index(&ks, &root);
    assert!(blocks.iter().all(|b| idx.contains_key(b)), "{report}");
    // untrashed, it reads back whole
    api_json(
        http().post(format!("{}/arvados/v1/collections/{t}/untrash", api(&k))),
        &env.token,
    );
    let out = tempfile::tempdir().unwrap();
    env.ok(&["get", &t, out.path().join("t").to_str().unwrap(), "-r"]);
    assert_eq!(files_in(&out.path().join("t")).len(), 3);

    // trashed again, and its delete_at passed (by more than the TTL): deleted
    api_json(
        http().delete(format!("{}/arvados/v1/collections/{t}", api(&k))),
        &env.token,
    );
    let past = "2000-01-01T00:00:00Z";
    update_collection(&k, &env.token, &t, json!({ "delete_at": past }));
    let report = balance_ok(&k, &[]);
    assert!(!report.contains("(0 deleted"), "{report}");
    assert_eq!(
        report_num(&report, "garbage"),
        blocks.len() as u64,
        "{report}"
    );
    let idx = index(&ks, &root);
    assert!(blocks.iter().all(|b| !idx.contains_key(b)), "{report}");
    // ... and keepstore's untrash brings every block back within the trash lifetime
    for b in &blocks {
        let r = http()
            .put(format!("{ks}/untrash/{b}+1"))
            .bearer_auth(&root)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "untrash {b}: {}", r.status());
    }
    let idx = index(&ks, &root);
    assert!(blocks.iter().all(|b| idx.contains_key(b)));
}

/// The issue's safety test: balance runs (the periodic ones inside `keep serve` every
/// second, and `keep balance --once` in a loop) while clients upload collections and
/// update others with freshly PUT blocks; afterwards every block any collection record
/// names is still stored, and every current collection reads back.
#[test]
fn concurrent_uploads_and_updates_never_lose_a_referenced_block() {
    let uploads: usize = std::env::var("BALANCE_TEST_UPLOADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let updates = uploads;
    let k = start("1s");
    let env = Arc::new(Env::new(&k));
    let root = root(&k);
    let ks = k.keepstore.clone();
    let src = tempfile::tempdir().unwrap();
    let targets: Vec<String> = (0..4)
        .map(|i| {
            env.ok(&[
                "put",
                make_dir(src.path(), &format!("target{i}"), 1, 500 + i)
                    .to_str()
                    .unwrap(),
            ])
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let balance_runs = Arc::new(AtomicUsize::new(0));
    let mut put_uuids = Vec::new();
    std::thread::scope(|sc| {
        // balance, again and again
        let b = {
            let done = done.clone();
            let runs = balance_runs.clone();
            let k = &k;
            sc.spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    if balance(k, &[]).status.success() {
                        runs.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        };
        // updates: PUT a block, wait a while (a balance run may pass), commit it
        let u = {
            let env = env.clone();
            let k = &k;
            let ks = ks.clone();
            let targets = targets.clone();
            sc.spawn(move || {
                for i in 0..updates {
                    let t = &targets[i % targets.len()];
                    let data = bytes(2000 + i, 10_000 + i as u64);
                    let loc = raw_put(&ks, &env.token, &data);
                    std::thread::sleep(Duration::from_millis((i as u64 * 137) % 1200));
                    let cur = get_collection(k, &env.token, t);
                    let mut text = cur["manifest_text"].as_str().unwrap().to_string();
                    if i % 10 == 9 {
                        // drop the earlier files (their blocks stay in past versions)
                        text.clear();
                    }
                    text.push_str(&format!("./u{i} {loc} 0:{}:data\n", data.len()));
                    update_collection(k, &env.token, t, json!({ "manifest_text": text }));
                    // uncommitted garbage too
                    raw_put(&ks, &env.token, &bytes(1500, 50_000 + i as u64));
                }
            })
        };
        for i in 0..uploads {
            let d = make_dir(src.path(), &format!("up{i}"), 1 + i % 3, 100 + i as u64);
            put_uuids.push(env.ok(&["put", d.to_str().unwrap()]));
        }
        u.join().unwrap();
        done.store(true, Ordering::SeqCst);
        b.join().unwrap();
    });
    let runs = balance_runs.load(Ordering::SeqCst);
    assert!(
        runs >= 3,
        "only {runs} balance runs completed during the load"
    );
    // let the last uploads age past the TTL, then one more run trashes the garbage
    wait_past_ttl();
    let report = balance_ok(&k, &[]);
    assert_eq!(report_num(&report, "lost"), 0, "{report}");

    let (referenced, records) = all_referenced(&k, &root);
    let idx = index(&ks, &root);
    let missing: Vec<&String> = referenced
        .iter()
        .filter(|b| !idx.contains_key(*b))
        .collect();
    assert!(
        missing.is_empty(),
        "referenced blocks gone: {missing:?}\n{report}"
    );
    // GC did run: the uncommitted garbage is gone
    let garbage_left = (0..updates)
        .filter(|&i| {
            let h = blake3::hash(&bytes(1500, 50_000 + i as u64))
                .to_hex()
                .to_string();
            idx.contains_key(&h)
        })
        .count();
    assert_eq!(
        garbage_left, 0,
        "garbage left after the final run\n{report}"
    );
    // every current collection reads back, every byte verified by keep get
    let out = tempfile::tempdir().unwrap();
    for (i, u) in put_uuids.iter().chain(targets.iter()).enumerate() {
        env.ok(&[
            "get",
            u,
            out.path().join(format!("c{i}")).to_str().unwrap(),
            "-r",
        ]);
    }
    eprintln!(
        "{uploads} uploads + {updates} updates, {runs} concurrent balance runs, {records} collection records, {} referenced blocks checked",
        referenced.len()
    );
}

#[test]
fn a_killed_run_loses_nothing() {
    let k = start("0s");
    let env = Env::new(&k);
    let root = root(&k);
    let ks = k.keepstore.clone();
    let src = tempfile::tempdir().unwrap();
    let mut uuids = Vec::new();
    for i in 0..20 {
        let d = make_dir(src.path(), &format!("c{i}"), 3, 300 + i);
        uuids.push(env.ok(&["put", d.to_str().unwrap()]));
    }
    // plenty of garbage so that the trash phase takes a while
    for i in 0..1500u64 {
        raw_put(&ks, &env.token, &bytes(200, 70_000 + i));
    }
    wait_past_ttl();
    let (referenced, _) = all_referenced(&k, &root);
    let mut killed_mid_run = 0;
    for delay_ms in [5u64, 20, 40, 80, 120, 200, 300, 500, 800] {
        let mut child: Child = balance_cmd(&k, &[])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        let idx = index(&ks, &root);
        let missing = referenced.iter().filter(|b| !idx.contains_key(*b)).count();
        assert_eq!(
            missing, 0,
            "killed after {delay_ms} ms: {missing} referenced blocks gone"
        );
    }
    assert!(
        killed_mid_run >= 3,
        "only {killed_mid_run} kills landed mid-run"
    );
    // a full run afterwards still finds everything referenced, nothing lost
    let report = balance_ok(&k, &[]);
    assert_eq!(report_num(&report, "lost"), 0, "{report}");
    let out = tempfile::tempdir().unwrap();
    for (i, u) in uuids.iter().enumerate() {
        env.ok(&[
            "get",
            u,
            out.path().join(format!("c{i}")).to_str().unwrap(),
            "-r",
        ]);
    }
}

/// A `keep serve --only keepstore` sharing the cluster's secrets.
struct ExtraKeepstore {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for ExtraKeepstore {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn extra_keepstore(k: &Keep) -> ExtraKeepstore {
    let s = k.secrets();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("keep.toml");
    std::fs::write(
        &cfg,
        format!(
            "blob_signature_ttl = \"{TTL_SECS}s\"\nblob_signing_key = \"{}\"\nsystem_root_token = \"{}\"\nmanagement_token = \"{}\"\n[api]\nexternal_url = \"{}\"\n[keepstore]\nlisten = \"127.0.0.1:0\"\ntrash_lifetime = \"1h\"\n",
            s.blob_signing_key,
            s.system_root_token,
            s.management_token,
            api(k)
        ),
    )
    .unwrap();
    let mut child = Command::new(KEEP)
        .args(["serve", "--only", "keepstore", "--data"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&cfg)
        .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut url = String::new();
    let out = BufReader::new(child.stdout.take().unwrap());
    for line in out.lines().map_while(Result::ok) {
        let mut w = line.split_whitespace();
        if let (Some("keepstore"), Some(u)) = (w.next(), w.next()) {
            url = u.to_string();
        }
        if line.starts_with("keep serve: ready") {
            break;
        }
    }
    assert!(!url.is_empty(), "the extra keepstore did not start");
    ExtraKeepstore {
        child,
        url,
        _dir: dir,
    }
}

#[test]
fn pulls_make_desired_copies_and_surplus_goes_only_after_confirmation() {
    let k = start("0s");
    let env = Env::new(&k);
    let root = root(&k);
    let k2 = extra_keepstore(&k);
    let k3 = extra_keepstore(&k);
    let all = [k.keepstore.clone(), k2.url.clone(), k3.url.clone()];
    let flags: Vec<String> = all
        .iter()
        .flat_map(|u| ["--keepstore".to_string(), u.clone()])
        .collect();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let src = tempfile::tempdir().unwrap();
    let c = env.ok(&["put", make_dir(src.path(), "two", 6, 77).to_str().unwrap()]);
    update_collection(&k, &env.token, &c, json!({"replication_desired": 2}));
    let blocks = blocks_of(
        get_collection(&k, &env.token, &c)["manifest_text"]
            .as_str()
            .unwrap(),
    );
    // a collection asking more copies than there are keepstores is reported
    let greedy = env.ok(&["put", make_dir(src.path(), "five", 1, 78).to_str().unwrap()]);
    update_collection(&k, &env.token, &greedy, json!({"replication_desired": 5}));

    let report = balance_ok(&k, &flags);
    assert!(report.contains("unplaceable             1"), "{report}");
    assert!(
        report_num(&report, "under-replicated") >= blocks.len() as u64,
        "{report}"
    );
    // wait for the pulls
    let desired = |b: &str| -> Vec<usize> {
        let h: keep_format::Hash = b.parse().unwrap();
        keep_format::rendezvous_order(&h, &all)[..2].to_vec()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let idx: Vec<_> = all.iter().map(|u| index(u, &root)).collect();
        let ok = blocks
            .iter()
            .all(|b| desired(b).iter().all(|&d| idx[d].contains_key(b)));
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "pulls did not complete in 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    // the pulled copies are confirmed now; once old enough the surplus copies go
    wait_past_ttl();
    let report = balance_ok(&k, &flags);
    assert!(report.contains("surplus"), "{report}");
    let idx: Vec<_> = all.iter().map(|u| index(u, &root)).collect();
    for b in &blocks {
        let d = desired(b);
        for (i, ix) in idx.iter().enumerate() {
            assert_eq!(
                ix.contains_key(b),
                d.contains(&i),
                "block {b} on keepstore {i}: desired {d:?}\n{report}"
            );
        }
    }
    // (no `keep get` here: clients order keepstores by the API's list, which names only
    // the first keepstore until [cluster] keepstores exists)
    let report = balance_ok(&k, &flags);
    assert_eq!(report_num(&report, "lost"), 0, "{report}");
}

#[test]
fn balance_without_the_cluster_secrets_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(KEEP)
        .args(["balance", "--once", "--data"])
        .arg(dir.path().join("nothing"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("secrets.toml") && err.contains("--config"),
        "{err}"
    );
}

/// Scale measurement (run by hand, see doc/admin.md "Memory"):
/// `BALANCE_SCALE_COLLECTIONS=100000 BALANCE_SCALE_BLOCKS=10 cargo test -p keep-cli
/// --test balance balance_at_scale -- --ignored --nocapture`. The blocks are sparse
/// files written straight into the keepstore's volume (balance reads indexes, never
/// block bytes), 10% more as garbage; collections are created through the API with
/// locators signed for the admin token; then `keep balance --once --dry-run` runs
/// under `/usr/bin/time -v`.
#[test]
#[ignore]
fn balance_at_scale() {
    let n: usize = std::env::var("BALANCE_SCALE_COLLECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let per: usize = std::env::var("BALANCE_SCALE_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let vol = shm.path().join("vol");
    let k = Keep::start_with(
        KEEP,
        "blob_signature_ttl = \"1h\"",
        &format!(
            "volumes = [\"{}\"]\n[balance]\ninterval = \"0s\"",
            vol.display()
        ),
    );
    let env = Env::new(&k);
    let secrets = k.secrets();
    let signer = keep_format::BlobSigner::new(
        keep_format::SigningKey::new(secrets.blob_signing_key.as_bytes().to_vec()),
        Duration::from_secs(3600),
    );
    let token: keep_format::Token = env.token.parse().unwrap();
    let size_of = |i: usize| 1000 + (i % 50_000) as u64;
    let hash_of = |i: usize| keep_format::Hash::of(&(i as u64).to_le_bytes());
    let t0 = Instant::now();
    let day_ago = libc::timespec {
        tv_sec: (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 86_400) as libc::time_t,
        tv_nsec: 0,
    };
    let total = n * per + n * per / 10;
    for i in 0..total {
        let h = hash_of(i);
        let d = vol.join(h.hex_prefix(3));
        if i < 4096 {
            std::fs::create_dir_all(&d).unwrap();
        }
        let p = d.join(h.to_hex());
        let f = std::fs::File::create(&p).unwrap_or_else(|_| {
            std::fs::create_dir_all(&d).unwrap();
            std::fs::File::create(&p).unwrap()
        });
        f.set_len(size_of(i)).unwrap();
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        let times = [day_ago, day_ago];
        // SAFETY: a valid path and two timespecs.
        unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
    }
    eprintln!("{total} block files in {:.1}s", t0.elapsed().as_secs_f64());
    let t0 = Instant::now();
    let next = AtomicUsize::new(0);
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                let client = http();
                loop {
                    let c = next.fetch_add(1, Ordering::SeqCst);
                    if c >= n {
                        break;
                    }
                    let mut text = String::from(".");
                    let mut len = 0;
                    for j in 0..per {
                        let i = c * per + j;
                        let loc = signer.sign(
                            &keep_format::Locator::new(hash_of(i), size_of(i)),
                            &token,
                            std::time::SystemTime::now(),
                        );
                        text.push_str(&format!(" {loc}"));
                        len += size_of(i);
                    }
                    text.push_str(&format!(" 0:{len}:f{c}\n"));
                    api_json(
                        client
                            .post(format!("{}/arvados/v1/collections", api(&k)))
                            .json(&json!({"collection": {"manifest_text": text}})),
                        &env.token,
                    );
                }
            });
        }
    });
    eprintln!("{n} collections in {:.1}s", t0.elapsed().as_secs_f64());
    let o = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(KEEP)
        .args(["balance", "--once", "--dry-run", "--data"])
        .arg(k.data())
        .arg("--config")
        .arg(&k.config)
        .args(["--api", k.api.as_deref().unwrap()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let rss = err
        .lines()
        .find(|l| l.contains("Maximum resident set size"))
        .unwrap_or("?");
    let wall = err.lines().find(|l| l.contains("Elapsed")).unwrap_or("?");
    eprintln!("{out}\n{}\n{}", rss.trim(), wall.trim());
    assert_eq!(report_num(&out, "referenced"), (n * per) as u64, "{out}");
    assert_eq!(report_num(&out, "garbage"), (n * per / 10) as u64, "{out}");
    assert_eq!(report_num(&out, "lost"), 0, "{out}");
}
