//! The HTTP targets' seed corpora, written as requests: `cargo test --lib -- --ignored
//! write_seeds` (in fuzz/) turns them into fuzz/seeds/<target>/*.req inputs.

use crate::req::build::{header, raw, req};
use crate::req::{Auth, Body, Json, Method, Part, Request};
use crate::words::{idx, API, API_BODIES, KEEPSTORE, KEEPSTORE_BODIES, WEB, WEB_BODIES};

fn w(table: &[&str], name: &str) -> Part {
    Part::Known(idx(table, name) as u8)
}

/// A seed name and its request.
pub type Seed = (&'static str, Request);

pub fn keepstore() -> Vec<Seed> {
    let k = |n: &str| w(KEEPSTORE, n);
    let body = |n: &str| Body::Known(idx(KEEPSTORE_BODIES, n) as u8);
    let with = |m: Method, path: Vec<Part>, auth: &str| {
        let mut r = req(m, path);
        r.auth = Auth::Bearer(k(auth));
        r
    };
    let mut s: Vec<Seed> = vec![
        ("get", with(Method::Get, vec![k("hello_signed_a")], "tok_a")),
        (
            "head",
            with(Method::Head, vec![k("hello_signed_a")], "tok_a"),
        ),
        (
            "get-other-token",
            with(Method::Get, vec![k("hello_signed_b")], "tok_a"),
        ),
        (
            "get-expired",
            with(Method::Get, vec![k("hello_expired_a")], "tok_a"),
        ),
        (
            "get-bad-sig",
            with(Method::Get, vec![k("hello_signed_a_bad")], "tok_a"),
        ),
        (
            "get-hint",
            with(Method::Get, vec![k("hello_signed_a_hint")], "tok_a"),
        ),
        (
            "get-empty",
            with(Method::Get, vec![k("empty_signed_a")], "tok_a"),
        ),
        (
            "get-absent",
            with(Method::Get, vec![k("absent_signed_a")], "tok_a"),
        ),
        (
            "get-unsigned",
            with(Method::Get, vec![k("hello_bare")], "tok_a"),
        ),
        ("index", with(Method::Get, vec![k("index")], "admin")),
        (
            "index-prefix",
            with(Method::Get, vec![k("index"), k("hello_prefix")], "admin"),
        ),
        ("mounts", with(Method::Get, vec![k("mounts")], "admin")),
        (
            "untrash",
            with(Method::Put, vec![k("untrash"), k("hello_bare")], "admin"),
        ),
        ("health", with(Method::Get, vec![k("_health/ping")], "mgmt")),
        ("metrics", with(Method::Get, vec![k("metrics")], "mgmt")),
        ("index-no-token", req(Method::Get, vec![k("index")])),
    ];
    let mut r = with(Method::Get, vec![k("x1000_signed_a")], "tok_a");
    r.headers = vec![header("range", k("bytes=0-0,2-3"))];
    s.push(("range-multi", r));
    for (n, range) in [
        ("range", "bytes=0-3"),
        ("range-suffix", "bytes=-3"),
        ("range-open", "bytes=5-"),
        ("range-past", "bytes=100-200"),
    ] {
        let mut r = with(Method::Get, vec![k("hello_signed_a")], "tok_a");
        r.headers = vec![header("range", k(range))];
        s.push((n, r));
    }
    let mut r = with(Method::Put, vec![k("hello_hash")], "tok_a");
    r.body = body("hello");
    s.push(("put", r.clone()));
    r.headers = vec![header("x-keep-desired-replicas", k("2"))];
    s.push(("put-replicas", r.clone()));
    r.body = body("x1000");
    s.push(("put-wrong-hash", r));
    for (n, path, b) in [
        ("trash", "trash", "trash_hello"),
        ("trash-bad", "trash", "trash_bad"),
        ("pull", "pull", "pull_hello"),
        ("pull-bad", "pull", "pull_bad"),
    ] {
        let mut r = with(Method::Put, vec![k(path)], "admin");
        r.body = body(b);
        r.headers = vec![header("content-type", k("application/json"))];
        s.push((n, r));
    }
    let mut r = req(Method::Get, vec![k("hello_signed_a")]);
    r.auth = Auth::OAuth2(k("tok_a"));
    s.push(("oauth2", r));
    let mut r = req(Method::Get, vec![k("hello_signed_a")]);
    r.auth = Auth::Basic(raw("x"), k("tok_a"));
    s.push(("basic", r));
    s
}

pub fn api() -> Vec<Seed> {
    let k = |n: &str| w(API, n);
    let body = |n: &str| Body::Known(idx(API_BODIES, n) as u8);
    let call = |m: Method, path: &[&str], auth: &str| {
        let mut p = vec![k("arvados/v1")];
        p.extend(
            path.iter()
                .map(|n| if API.contains(n) { k(n) } else { raw(n) }),
        );
        let mut r = req(m, p);
        r.auth = Auth::Bearer(k(auth));
        r.headers = vec![header("content-type", k("application/json"))];
        r
    };
    let coll = |field: &str, word: &str| {
        Body::Json(Json::Obj(vec![(
            k("collection"),
            Json::Obj(vec![(k(field), Json::Str(k(word)))]),
        )]))
    };
    let mut s: Vec<Seed> = vec![
        ("config", call(Method::Get, &["config"], "empty")),
        ("current", call(Method::Get, &["users", "current"], "alice")),
        (
            "current-scoped",
            call(Method::Get, &["users", "current"], "alice_scoped"),
        ),
        ("get-c1", call(Method::Get, &["collections", "c1"], "alice")),
        (
            "get-c1-bob",
            call(Method::Get, &["collections", "c1"], "bob"),
        ),
        (
            "get-c1-anon",
            call(Method::Get, &["collections", "c1"], "anon"),
        ),
        (
            "get-c1-scoped",
            call(Method::Get, &["collections", "c1"], "alice_scoped"),
        ),
        (
            "get-c1-pdh",
            call(Method::Get, &["collections", "c1_pdh"], "alice"),
        ),
        (
            "versions",
            call(Method::Get, &["collections", "c1", "versions"], "alice"),
        ),
        (
            "trash-c1",
            call(Method::Post, &["collections", "c1", "trash"], "alice"),
        ),
        (
            "untrash-c1",
            call(Method::Post, &["collections", "c1", "untrash"], "alice"),
        ),
        (
            "contents",
            call(Method::Get, &["groups", "proj", "contents"], "alice"),
        ),
        (
            "filter-group",
            call(
                Method::Get,
                &["groups", "filter_group", "contents"],
                "alice",
            ),
        ),
        ("users", call(Method::Get, &["users"], "admin")),
        (
            "tokens",
            call(Method::Get, &["api_client_authorizations"], "alice"),
        ),
        (
            "token-delete-bob",
            call(
                Method::Delete,
                &["api_client_authorizations", "alice_token_uuid"],
                "bob",
            ),
        ),
        ("links", call(Method::Get, &["links"], "alice")),
        ("get-link", call(Method::Get, &["links", "link"], "bob")),
        ("root", call(Method::Get, &["collections"], "root")),
        ("no-route", call(Method::Get, &["nope"], "alice")),
    ];
    for (n, field, v) in [
        ("f-name", "filters", "filters_name"),
        ("f-is-a", "filters", "filters_is_a"),
        ("f-props", "filters", "filters_props"),
        ("select", "select", "select_uuid"),
        ("order", "order", "order_desc"),
        ("limit", "limit", "1000"),
        ("old-versions", "include_old_versions", "true"),
    ] {
        let mut r = call(Method::Get, &["collections"], "alice");
        r.query = vec![(k(field), k(v))];
        s.push((n, r));
    }
    let mut r = call(Method::Get, &["users", "current"], "empty");
    r.auth = Auth::None;
    r.query = vec![(k("api_token"), k("alice"))];
    s.push(("query-token", r));
    for (n, b) in [("create", "create_collection"), ("bad-time", "bad_time")] {
        let mut r = call(Method::Post, &["collections"], "alice");
        r.body = body(b);
        s.push((n, r));
    }
    for (n, m) in [
        ("create-deep", "manifest_deep"),
        ("create-del", "manifest_del"),
        ("create-ctrl", "manifest_ctrl"),
        ("create-admin-sig", "manifest_admin"),
    ] {
        let mut r = call(Method::Post, &["collections"], "alice");
        r.body = coll("manifest_text", m);
        s.push((n, r));
    }
    for (n, b, who) in [
        ("update-c1", "update_c1", "alice"),
        ("owner-change", "owner_change", "bob"),
        ("bad-time-update", "bad_time", "alice"),
    ] {
        let mut r = call(Method::Patch, &["collections", "c1"], who);
        r.body = body(b);
        s.push((n, r));
    }
    let mut r = call(Method::Patch, &["collections", "c1"], "alice");
    r.body = coll("trash_at", "2030-01-01T00:00:00+€00");
    s.push(("bad-time-json", r));
    let mut r = call(Method::Patch, &["collections", "c1"], "alice");
    r.query = vec![(k("replace_files"), k("replace_c1"))];
    s.push(("replace-files", r));
    for (n, path, b) in [
        ("project", "groups", "create_project"),
        ("grant", "links", "grant_bob"),
        ("token", "api_client_authorizations", "create_token"),
    ] {
        let mut r = call(Method::Post, &[path], "alice");
        r.body = body(b);
        s.push((n, r));
    }
    let mut r = call(Method::Put, &["users", "alice_uuid"], "alice");
    r.body = Body::Json(Json::Obj(vec![(
        k("user"),
        Json::Obj(vec![(k("is_admin"), Json::Bool(true))]),
    )]));
    s.push(("self-admin", r));
    let mut r = call(Method::Post, &["collections"], "alice");
    r.headers = vec![header(
        "content-type",
        k("application/x-www-form-urlencoded"),
    )];
    r.body = Body::Form(vec![(k("collection"), raw("{\"name\":\"f\"}"))]);
    s.push(("form", r));
    let mut r = req(Method::Get, vec![k("_health/ping")]);
    r.auth = Auth::Bearer(k("mgmt"));
    s.push(("health", r.clone()));
    r.path = vec![k("metrics")];
    s.push(("metrics", r));
    s
}

pub fn web() -> Vec<Seed> {
    let k = |n: &str| w(WEB, n);
    let body = |n: &str| Body::Known(idx(WEB_BODIES, n) as u8);
    let on = |m: Method, host: &str, path: &[&str], auth: &str| {
        let p = path
            .iter()
            .map(|n| if WEB.contains(n) { k(n) } else { raw(n) })
            .collect();
        let mut r = req(m, p);
        r.host = Some(k(host));
        if !auth.is_empty() {
            r.auth = Auth::Bearer(k(auth));
        }
        r
    };
    let mut s: Vec<Seed> = vec![
        ("root", on(Method::Get, "c1_vhost", &[], "alice")),
        (
            "hello",
            on(Method::Get, "c1_vhost", &["hello.txt"], "alice"),
        ),
        (
            "hello-head",
            on(Method::Head, "c1_vhost", &["hello.txt"], "alice"),
        ),
        (
            "hello-anon",
            on(Method::Get, "c1_vhost", &["hello.txt"], ""),
        ),
        (
            "hello-bob",
            on(Method::Get, "c1_vhost", &["hello.txt"], "bob"),
        ),
        (
            "pdh-vhost",
            on(Method::Get, "c1_pdh_vhost", &["sub", "a.txt"], "alice"),
        ),
        (
            "dashes-vhost",
            on(Method::Get, "c1_dashes_vhost", &["big.bin"], "alice"),
        ),
        (
            "c-path",
            on(Method::Get, "web_host", &["c=c1", "hello.txt"], "alice"),
        ),
        (
            "c-pdh-path",
            on(
                Method::Get,
                "web_host",
                &["c=c1_pdh", "sub", "a.txt"],
                "alice",
            ),
        ),
        (
            "t-path",
            on(
                Method::Get,
                "web_host",
                &["c=c1", "t=alice", "_", "hello.txt"],
                "",
            ),
        ),
        (
            "by-id",
            on(Method::Get, "web_host", &["by_id", "c1", "sub"], "alice"),
        ),
        (
            "users",
            on(
                Method::Get,
                "web_host",
                &["users", "alice_name", "proj_name", "inproj"],
                "alice",
            ),
        ),
        (
            "download",
            on(
                Method::Get,
                "download_host",
                &["c=c1", "hello.txt"],
                "alice",
            ),
        ),
        ("mkcol", on(Method::Mkcol, "c1_vhost", &["dir"], "alice")),
        (
            "delete",
            on(Method::Delete, "c1_vhost", &["new.txt"], "alice"),
        ),
        (
            "bob-private",
            on(Method::Get, "web_host", &["c=c_bob", "secret.txt"], "alice"),
        ),
        (
            "deep",
            on(Method::Get, "c1_deep_vhost", &["deep", "f"], "alice"),
        ),
        (
            "project",
            on(Method::Get, "web_host", &["by_id", "proj"], "alice"),
        ),
        (
            "health",
            on(Method::Get, "web_host", &["_health", "ping"], "mgmt"),
        ),
    ];
    let mut r = on(Method::Get, "c1_vhost", &["big.bin"], "alice");
    r.headers = vec![header("range", k("bytes=1000-1200,0-1"))];
    s.push(("range-multi", r.clone()));
    r.headers = vec![
        header("range", k("bytes=-5")),
        header("if-range", raw("\"x\"")),
    ];
    s.push(("range-suffix", r));
    for (n, depth, b) in [
        ("propfind-1", "1", "propfind_all"),
        ("propfind-inf", "infinity", "propfind_prop"),
        ("propfind-names", "0", "propfind_names"),
        ("propfind-deep-xml", "1", "deep_xml"),
    ] {
        let mut r = on(Method::Propfind, "c1_vhost", &[], "alice");
        r.headers = vec![
            header("depth", k(depth)),
            header("content-type", k("application/xml")),
        ];
        r.body = body(b);
        s.push((n, r));
    }
    let mut r = on(Method::Propfind, "c1_deep_vhost", &[], "alice");
    r.headers = vec![header("depth", k("infinity"))];
    s.push(("propfind-deep-tree", r));
    let mut r = on(Method::Propfind, "web_host", &["users"], "alice");
    r.headers = vec![header("depth", k("1"))];
    s.push(("propfind-users", r));
    let mut r = on(Method::Put, "c1_vhost", &["new.txt"], "alice");
    r.body = body("hello");
    s.push(("put", r));
    for (n, m) in [("copy", Method::Copy), ("move", Method::Move)] {
        let mut r = on(m, "c1_vhost", &["hello.txt"], "alice");
        r.headers = vec![
            header("destination", k("dest_c1")),
            header("overwrite", k("F")),
        ];
        s.push((n, r));
    }
    let mut r = on(Method::Move, "web_host", &["c=c1", "sub"], "alice");
    r.headers = vec![header("destination", k("dest_other"))];
    s.push(("move-dir", r));
    let mut r = on(Method::Proppatch, "c1_vhost", &["hello.txt"], "alice");
    r.body = body("proppatch");
    s.push(("proppatch", r));
    let mut r = on(Method::Lock, "c1_vhost", &["hello.txt"], "alice");
    r.body = body("lock");
    r.headers = vec![header("timeout", k("Second-60"))];
    s.push(("lock", r));
    let mut r = on(Method::Unlock, "c1_vhost", &["hello.txt"], "alice");
    r.headers = vec![header("lock-token", k("lock_token"))];
    s.push(("unlock", r));
    let mut r = on(Method::Get, "c1_vhost", &[], "alice");
    r.query = vec![(k("accept"), k("zip"))];
    s.push(("zip", r));
    let mut r = on(Method::Get, "web_host", &["c=c1", "hello.txt"], "");
    r.query = vec![(k("api_token"), k("alice"))];
    s.push(("query-token", r));
    let mut r = on(Method::Get, "c1_vhost", &["hello.txt"], "");
    r.query = vec![
        (k("api_token"), k("alice")),
        (k("disposition"), k("attachment")),
    ];
    s.push(("query-token-vhost", r));
    let mut r = on(Method::Get, "c1_vhost", &["hello.txt"], "");
    r.headers = vec![header("cookie", k("keep_web_session"))];
    s.push(("cookie", r));
    let mut r = on(Method::Get, "c1_vhost", &["hello.txt"], "");
    r.auth = Auth::Basic(raw("x"), k("alice"));
    s.push(("basic", r));
    let mut r = on(Method::Post, "c1_vhost", &["hello.txt"], "");
    r.headers = vec![header(
        "content-type",
        raw("application/x-www-form-urlencoded"),
    )];
    r.body = body("api_token_form");
    s.push(("form-token", r));
    let mut r = on(Method::Options, "c1_vhost", &["hello.txt"], "");
    r.headers = vec![
        header("origin", k("http://localhost")),
        header("access-control-request-method", k("PROPFIND")),
    ];
    s.push(("preflight", r));
    let mut r = on(Method::Get, "c1_vhost", &["hello.txt"], "alice");
    r.trailing_slash = true;
    s.push(("trailing-slash", r));
    s.push((
        "ctrl-name-download",
        on(
            Method::Get,
            "download_host",
            &["c=odd", "ctrl_name"],
            "alice",
        ),
    ));
    s.push((
        "ctrl-name",
        on(Method::Get, "odd_vhost", &["ctrl_name"], "alice"),
    ));
    s.push((
        "del-name",
        on(Method::Get, "odd_vhost", &["del_name"], "alice"),
    ));
    s.push((
        "host-named-dir",
        on(Method::Get, "odd_vhost", &["evil.example"], "alice"),
    ));
    let mut r = on(Method::Get, "odd_vhost", &["", "evil.example"], "alice");
    r.path[0] = raw("");
    s.push(("open-redirect", r));
    let mut r = on(Method::Propfind, "odd_vhost", &[], "alice");
    r.headers = vec![header("depth", k("1"))];
    s.push(("propfind-odd", r));
    let mut r = on(Method::Get, "c1_vhost", &["hello.txt"], "");
    r.query = vec![(raw("api%5Ftoken"), k("alice"))];
    s.push(("encoded-query-key", r));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed decodes back to itself.
    #[test]
    fn seeds_round_trip() {
        for (name, r) in keepstore().into_iter().chain(api()).chain(web()) {
            assert_eq!(
                Request::from_input(&r.to_input()).as_ref(),
                Some(&r),
                "{name}"
            );
        }
    }

    #[test]
    #[ignore = "writes fuzz/seeds/<target>/: run by hand when the seeds change"]
    fn write_seeds() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
        for (target, seeds) in [
            ("keepstore_http", keepstore()),
            ("api_http", api()),
            ("web_http", web()),
        ] {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, r) in seeds {
                std::fs::write(dir.join(format!("{name}.req")), r.to_input()).unwrap();
            }
        }
    }
}
