//! `keep serve` runs the API: bootstrap files, `/arvados/v1/config`, and the admin
//! commands (`keep user create`, `token create`, `project create`, `filter-group create`,
//! `grant`) driven as real processes against it.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use crate::support::{serve, Serve, KEEP};
use serde_json::Value;

/// Runs `keep <args>` as a client of `k`, with settings from the environment.
fn keep(k: &Serve, token: &str, args: &[&str]) -> Output {
    Command::new(KEEP)
        .args(args)
        .env("KEEP_API_HOST", k.api_url())
        .env("KEEP_API_TOKEN", token)
        .env("XDG_CONFIG_HOME", k.dir.path().join("no-such-config"))
        .output()
        .expect("run keep")
}

fn ok_line(o: &Output) -> String {
    assert!(
        o.status.success(),
        "keep failed: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let s = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(s.lines().count(), 1, "one line on stdout: {s:?}");
    s.trim().to_string()
}

async fn get(k: &Serve, token: &str, path: &str) -> (u16, Value) {
    k.client().get(&format!("/arvados/v1/{path}"), token).await
}

#[tokio::test]
async fn first_start_writes_admin_token_and_settings() {
    let mut k = serve();
    let api = k.api.clone().expect("keep serve prints the api URL");
    let meta = std::fs::metadata(k.path("admin-token")).expect("admin-token written");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let token = k.admin_token();
    assert!(token.starts_with("v2/"), "{token}");

    let settings = k.dir.path().join("xdg/keep/settings.conf");
    let text = std::fs::read_to_string(&settings).expect("settings.conf written");
    assert!(text.contains(&format!("KEEP_API_HOST={api}")), "{text}");
    assert!(text.contains(&format!("KEEP_API_TOKEN={token}")));
    assert_eq!(
        std::fs::metadata(&settings).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // clients find keepstore through the API, never by guessing ports
    let (s, cfg) = get(&k, "", "config").await;
    assert_eq!(s, 200);
    assert_eq!(cfg["keepstore_urls"][0], k.keepstore.as_str());

    let (s, me) = get(&k, &token, "users/current").await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["is_admin"], true);

    // a restart keeps the same admin and does not bootstrap again
    k.restart();
    assert_eq!(k.admin_token(), token);
    let (s, _) = get(&k, &token, "users/current").await;
    assert_eq!(s, 200);
    assert!(!k.log().contains(&token), "a token reached the log");
}

#[tokio::test]
async fn admin_commands_create_and_grant() {
    let k = serve();
    let admin = k.admin_token();

    let alice = ok_line(&keep(&k, &admin, &["user", "create", "alice"]));
    assert!(alice.contains("-tpzed-"), "{alice}");
    let alice_token = ok_line(&keep(&k, &admin, &["token", "create", "--user", &alice]));
    assert!(alice_token.starts_with("v2/"), "{alice_token}");
    let (s, me) = get(&k, &alice_token, "users/current").await;
    assert_eq!((s, me["uuid"].as_str()), (200, Some(alice.as_str())));

    // a project alice cannot see until she is granted can_read
    let project = ok_line(&keep(&k, &admin, &["project", "create", "Sequencing"]));
    assert!(project.contains("-j7d0g-"), "{project}");
    let sub = ok_line(&keep(
        &k,
        &admin,
        &["project", "create", "Runs", "--parent", &project],
    ));
    let (s, _) = get(&k, &alice_token, &format!("groups/{sub}")).await;
    assert_eq!(s, 404, "unreadable is 404");
    let link = ok_line(&keep(&k, &admin, &["grant", &alice, "can_read", &project]));
    assert!(link.contains("-o0j2j-"), "{link}");
    let (s, g) = get(&k, &alice_token, &format!("groups/{sub}")).await;
    assert_eq!(s, 200, "can_read reaches down the tree: {g}");
    assert_eq!(g["name"], "Runs");

    let fg = ok_line(&keep(
        &k,
        &admin,
        &[
            "filter-group",
            "create",
            "BAMs",
            "--parent",
            &project,
            "--filter",
            r#"["collections.name","like","%.bam"]"#,
        ],
    ));
    let (s, g) = get(&k, &admin, &format!("groups/{fg}")).await;
    assert_eq!(s, 200);
    assert_eq!(g["group_class"], "filter");

    // a non-admin can't create users: the server's reason and a hint, exit 1
    let o = keep(&k, &alice_token, &["user", "create", "mallory"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("keep: creating user"), "{err}");
    assert!(!err.contains(alice_token.rsplit('/').next().unwrap_or("x")));

    // a scoped, expiring token
    let t = ok_line(&keep(
        &k,
        &alice_token,
        &[
            "token",
            "create",
            "--scope",
            "GET /arvados/v1/users/current",
            "--expires",
            "1h",
        ],
    ));
    let (s, _) = get(&k, &t, "users/current").await;
    assert_eq!(s, 200);
    let (s, _) = get(&k, &t, &format!("groups/{project}")).await;
    assert_eq!(s, 403, "out of scope");
}

#[test]
fn usage_and_unreachable_errors() {
    // usage: exit 2
    let o = Command::new(KEEP)
        .args(["grant", "x", "can_fly", "y"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));

    // nothing listens on port 9 of localhost: exit 1, naming the host
    let o = Command::new(KEEP)
        .args(["project", "create", "P"])
        .env("KEEP_API_HOST", "http://127.0.0.1:9")
        .env("KEEP_API_TOKEN", "v2/zzzzz-gj3su-000000000000000/abc")
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("http://127.0.0.1:9"), "{err}");
    assert!(err.starts_with("keep: "), "{err}");

    // no settings at all: say how to get them
    let dir = tempfile::tempdir().expect("tempdir");
    let o = Command::new(KEEP)
        .args(["project", "create", "P"])
        .env_remove("KEEP_API_HOST")
        .env_remove("KEEP_API_TOKEN")
        .env("XDG_CONFIG_HOME", dir.path())
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("KEEP_API_HOST"), "{err}");
}
