//! kill -9 in the middle of a burst of creates, then restart: every create that was
//! answered 200 is there, and the indexes agree with the records.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{json, Value};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(dir: &Path) -> (Proc, String) {
    let _ = std::fs::remove_file(dir.join("port"));
    // the server process: a binary of this crate (src/bin/crash_child.rs)
    let child = Proc(
        Command::new(env!("CARGO_BIN_EXE_keep-api-crash-child"))
            .arg(dir)
            .args([KEY, ROOT, MGMT])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    loop {
        if let Ok(p) = std::fs::read_to_string(dir.join("port")) {
            return (child, format!("http://127.0.0.1:{}", p.trim()));
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "child server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn kill_9_during_creates() {
    let dir = tempfile::tempdir().unwrap();
    let (mut proc1, url) = spawn(dir.path());
    let admin = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    let http = reqwest::Client::new();
    let answered: Arc<Mutex<HashMap<String, (String, String)>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let http = http.clone();
        let url = url.clone();
        let admin = admin.clone();
        let answered = answered.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let name = format!("c-{w}-{i}");
                let m = manifest(&admin, &[("data", name.as_bytes())]);
                let r = http
                    .post(format!("{url}/arvados/v1/collections"))
                    .bearer_auth(&admin)
                    .json(&json!({"collection": {"name": name, "manifest_text": m}}))
                    .send()
                    .await;
                let Ok(r) = r else { return };
                if r.status().as_u16() != 200 {
                    continue;
                }
                let Ok(v) = r.json::<Value>().await else {
                    return;
                };
                answered.lock().unwrap().insert(
                    v["uuid"].as_str().unwrap().to_string(),
                    (name, v["portable_data_hash"].as_str().unwrap().to_string()),
                );
            }
        }));
    }
    // kill -9 once a good part of the burst is answered
    let start = Instant::now();
    while answered.lock().unwrap().len() < 60 && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    proc1.0.kill().unwrap(); // SIGKILL
    proc1.0.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(
        answered.len() >= 60 && answered.len() < 200,
        "killed after {} creates",
        answered.len()
    );

    let (_proc2, url) = spawn(dir.path());
    let get = |path: String| {
        let http = http.clone();
        let admin = admin.clone();
        let url = url.clone();
        async move {
            let r = http
                .get(format!("{url}{path}"))
                .bearer_auth(admin)
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap())
        }
    };
    for (uuid, (name, pdh)) in &answered {
        let (st, c) = get(format!("/arvados/v1/collections/{uuid}")).await;
        assert_eq!(st, 200, "{uuid} lost: {c}");
        assert_eq!(c["name"], json!(name));
        assert_eq!(c["portable_data_hash"], json!(pdh));
        // indexes: by name (list filter), by PDH
        let (_, l) = get(format!(
            "/arvados/v1/collections?filters={}",
            q(&json!([["name", "=", name]]))
        ))
        .await;
        assert_eq!(l["items_available"], 1, "{name}");
        let (_, l) = get(format!(
            "/arvados/v1/collections?filters={}",
            q(&json!([["portable_data_hash", "=", pdh]]))
        ))
        .await;
        assert_eq!(l["items_available"], 1, "{pdh}");
    }
    // the owner index and the table agree
    let (_, me) = get("/arvados/v1/users/current".into()).await;
    let owner = me["uuid"].as_str().unwrap();
    let (_, all) = get("/arvados/v1/collections?limit=1000".into()).await;
    let (_, owned) = get(format!("/arvados/v1/groups/{owner}/contents?limit=1000")).await;
    assert_eq!(all["items_available"], owned["items_available"]);
    assert!(all["items_available"].as_u64().unwrap() >= answered.len() as u64);
    // names stay unique: a create with a surviving name is refused
    let (name, _) = answered.values().next().unwrap();
    let r = http
        .post(format!("{url}/arvados/v1/collections"))
        .bearer_auth(&admin)
        .json(&json!({"collection": {"name": name}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
}
