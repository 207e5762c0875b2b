//! Writing through keep-web (PUT, DELETE, MKCOL, COPY, MOVE, PROPPATCH) against the real
//! `keep serve`, with real clients: litmus, rclone, curl-like raw sockets. Every write
//! must be one new collection version or nothing.
//!
//! Credentials are honoured on the download host (`127.0.0.1`, the host of keep-web's
//! URL by default), so plain `http://127.0.0.1:<port>/c=<uuid>/` URLs take Basic auth.

use std::io::{Read, Write};
use std::process::Command;

use crate::support::{assert_root, b64, bytes, rclone, s, serve, Env, Serve, KEEP};
use serde_json::{json, Value};

const BLOCK: usize = 64 << 20;

struct W {
    k: Serve,
    http: reqwest::blocking::Client,
    web: String,
    api: String,
    admin: String,
}

impl W {
    fn start() -> W {
        W::on(serve())
    }

    fn on(k: Serve) -> W {
        let web = k.web.clone().expect("keep-web URL");
        let api = k.api.clone().expect("api URL");
        let admin = k.admin_token();
        let http = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(300))
            .build()
            .unwrap();
        W {
            k,
            http,
            web,
            api,
            admin,
        }
    }

    fn api(&self, m: reqwest::Method, path: &str, token: &str, body: Value) -> (u16, Value) {
        let mut r = self
            .http
            .request(m, format!("{}{path}", self.api))
            .bearer_auth(token);
        if !body.is_null() {
            r = r.json(&body);
        }
        let r = r.send().unwrap();
        let st = r.status().as_u16();
        (st, r.json().unwrap_or(Value::Null))
    }

    /// A new empty collection of the admin's; its UUID.
    fn collection(&self, name: &str) -> String {
        let (st, c) = self.api(
            reqwest::Method::POST,
            "/arvados/v1/collections",
            &self.admin,
            json!({"collection": {"name": name, "manifest_text": ""}}),
        );
        assert_eq!(st, 200, "{c}");
        c["uuid"].as_str().unwrap().to_string()
    }

    fn record(&self, uuid: &str) -> Value {
        let (st, c) = self.api(
            reqwest::Method::GET,
            &format!("/arvados/v1/collections/{uuid}"),
            &self.admin,
            Value::Null,
        );
        assert_eq!(st, 200, "{c}");
        c
    }

    /// The collection's files as `keep ls -s` would see them: path → size.
    fn files(&self, uuid: &str) -> Vec<(String, u64)> {
        let c = self.record(uuid);
        let m = c["unsigned_manifest_text"].as_str().unwrap_or_default();
        let mut out = Vec::new();
        for line in m.lines() {
            let mut words = line.split(' ');
            let stream = words.next().unwrap().to_string();
            for w in words {
                let parts: Vec<&str> = w.split(':').collect();
                if parts.len() == 3 && !w.contains('+') {
                    let name = format!("{stream}/{}", parts[2]).replace("\\040", " ");
                    let name = name.trim_start_matches("./").to_string();
                    if !name.ends_with("/\\056") {
                        out.push((name, parts[1].parse().unwrap()));
                    }
                }
            }
        }
        out.sort();
        out
    }

    fn url(&self, uuid: &str, path: &str) -> String {
        format!("{}/c={uuid}/{path}", self.web)
    }

    fn req(&self, method: &str, url: &str) -> reqwest::blocking::RequestBuilder {
        self.http
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
            .basic_auth("u", Some(&self.admin))
    }

    fn status(&self, method: &str, url: &str) -> u16 {
        self.req(method, url).send().unwrap().status().as_u16()
    }

    fn put(&self, uuid: &str, path: &str, data: Vec<u8>) -> reqwest::blocking::Response {
        self.req("PUT", &self.url(uuid, path))
            .body(data)
            .send()
            .unwrap()
    }

    fn get(&self, uuid: &str, path: &str) -> (u16, Vec<u8>) {
        let r = self.req("GET", &self.url(uuid, path)).send().unwrap();
        let st = r.status().as_u16();
        (st, r.bytes().unwrap().to_vec())
    }
}

fn summary_counts(out: &str, suite: &str) -> Option<(u32, u32)> {
    // "<- summary for `basic': of 16 tests run: 16 passed, 0 failed. 100.0%"
    let line = out
        .lines()
        .find(|l| l.contains(&format!("summary for `{suite}'")))?;
    let run: u32 = line.split("of ").nth(1)?.split(' ').next()?.parse().ok()?;
    let passed: u32 = line
        .split("run: ")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    Some((run, passed))
}

/// litmus (Debian's) in a fresh writable collection with Basic credentials: every test
/// of basic, copymove, props and http passes; in locks, only tests that need a lock to
/// be enforced may fail (LOCK is a no-op by design).
#[test]
fn litmus_passes() {
    let w = W::start();
    let uuid = w.collection("litmus");
    let work = tempfile::tempdir().unwrap();
    let url = w.url(&uuid, "");
    let litmus = |tests: &str| {
        let o = Command::new("litmus")
            .args([&url, "u", &w.admin])
            .env("TESTS", tests)
            .current_dir(work.path())
            .output()
            .expect("litmus is installed by scripts/setup");
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        for l in out.lines().filter(|l| l.contains("summary for")) {
            println!("litmus: {}", l.trim());
        }
        out
    };
    let out = litmus("basic copymove props http");
    for suite in ["basic", "copymove", "props", "http"] {
        let (run, passed) = summary_counts(&out, suite)
            .unwrap_or_else(|| panic!("no summary for {suite} in:\n{out}"));
        assert_eq!(
            run,
            passed,
            "litmus {suite}:\n{out}\n{}",
            std::fs::read_to_string(work.path().join("debug.log")).unwrap_or_default()
        );
    }
    let out = litmus("locks");
    let (run, passed) = summary_counts(&out, "locks").expect(&out);
    println!("litmus locks: {passed} of {run}");
    // the tests that demand enforcement: a write or UNLOCK without the lock's token
    // refused, a conditional PUT with a bogus token refused (and `copy`, whose source
    // `notowner_modify` was allowed to delete)
    let enforcing = [
        "notowner_modify",
        "notowner_lock",
        "copy",
        "cond_put_corrupt_token",
        "fail_complex_cond_put",
        "fail_cond_put_unlocked",
    ];
    for l in out.lines() {
        let l = l.trim();
        if l.contains("FAIL") {
            let name = l
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .trim_end_matches('.');
            assert!(
                enforcing.contains(&name),
                "litmus locks: {l} is not a test that needs lock enforcement\n{out}"
            );
        }
    }
}

/// Files of every size that matters for cutting into 64 MiB blocks go in by PUT and come
/// back byte for byte, each in one new version; the ETag a PUT answers is the one GET
/// and PROPFIND give.
#[test]
fn put_cuts_blocks_and_reads_back() {
    let w = W::start();
    let uuid = w.collection("sizes");
    let sizes = [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 3];
    let v0 = w.record(&uuid)["version"].as_u64().unwrap();
    for (i, n) in sizes.iter().enumerate() {
        let data = bytes(*n, i as u64 + 7);
        let r = w.put(&uuid, &format!("f{i}.bin"), data.clone());
        assert_eq!(r.status().as_u16(), 201, "PUT of {n} bytes");
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        let g = w
            .req("GET", &w.url(&uuid, &format!("f{i}.bin")))
            .send()
            .unwrap();
        assert_eq!(g.status().as_u16(), 200);
        assert_eq!(g.headers()["etag"].to_str().unwrap(), etag, "size {n}");
        let back = g.bytes().unwrap();
        assert_eq!(back.len(), *n);
        assert!(back[..] == data[..], "content of the {n}-byte file");
    }
    let c = w.record(&uuid);
    assert_eq!(c["version"].as_u64().unwrap(), v0 + sizes.len() as u64);
    let m = c["unsigned_manifest_text"].as_str().unwrap();
    // the 2 blocks + 3 bytes file is three blocks, none over 64 MiB
    for loc in m.split_whitespace().filter(|w| w.contains('+')) {
        let size: usize = loc.split('+').nth(1).unwrap().parse().unwrap();
        assert!(size <= BLOCK, "{loc}");
    }
    assert_eq!(c["file_count"].as_u64().unwrap(), sizes.len() as u64);
}

/// 24 clients PUT 24 different files into one collection at once: all 24 are there.
#[test]
fn concurrent_puts_all_land() {
    let w = W::start();
    let uuid = w.collection("many");
    std::thread::scope(|sc| {
        for i in 0..24 {
            let w = &w;
            let uuid = &uuid;
            sc.spawn(move || {
                let r = w.put(uuid, &format!("file{i:02}.txt"), bytes(1000 + i, i as u64));
                assert_eq!(r.status().as_u16(), 201);
            });
        }
    });
    let files = w.files(&uuid);
    assert_eq!(files.len(), 24, "{files:?}");
    for i in 0..24 {
        let (st, b) = w.get(&uuid, &format!("file{i:02}.txt"));
        assert_eq!(st, 200);
        assert_eq!(b, bytes(1000 + i, i as u64));
    }
}

/// PROPPATCHes of different properties on one collection, all at once, alongside PUTs
/// that change its manifest: every property and every file is there afterwards (a
/// properties change is conditional on the version it read, and retried).
#[test]
fn concurrent_proppatches_lose_nothing() {
    let w = W::start();
    let uuid = w.collection("props");
    std::thread::scope(|sc| {
        for i in 0..12 {
            let w = &w;
            let uuid = &uuid;
            sc.spawn(move || {
                let body = format!(
                    r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:p{i}>v{i}</Z:p{i}></D:prop></D:set></D:propertyupdate>"#
                );
                let r = w.req("PROPPATCH", &w.url(uuid, "")).body(body).send().unwrap();
                assert_eq!(r.status().as_u16(), 207);
                let text = r.text().unwrap();
                assert!(text.contains("200 OK"), "{text}");
            });
            sc.spawn(move || {
                let r = w.put(uuid, &format!("f{i}.txt"), bytes(100, i as u64));
                assert_eq!(r.status().as_u16(), 201);
            });
        }
    });
    assert_eq!(w.files(&uuid).len(), 12);
    let r = w
        .req("PROPFIND", &w.url(&uuid, ""))
        .header("Depth", "0")
        .body(r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 207);
    let text = r.text().unwrap();
    for i in 0..12 {
        assert!(text.contains(&format!(">v{i}<")), "p{i} lost: {text}");
    }
}

/// A PUT whose client goes away mid-body, one whose body is shorter than its
/// Content-Length, and ones whose Content-MD5 / Content-Digest disagree with the bytes
/// commit nothing: the collection keeps its version and PDH.
#[test]
fn failed_puts_commit_nothing() {
    let w = W::start();
    let uuid = w.collection("fail");
    assert_eq!(
        w.put(&uuid, "keep.txt", b"kept\n".to_vec())
            .status()
            .as_u16(),
        201
    );
    let before = w.record(&uuid);
    let host = w.web.trim_start_matches("http://").to_string();
    let auth = b64(&format!("u:{}", w.admin));

    // the client disconnects after 1 MiB of a declared 100 MiB
    {
        let mut sock = std::net::TcpStream::connect(&host).unwrap();
        write!(
            sock,
            "PUT /c={uuid}/gone.bin HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\nContent-Length: {}\r\n\r\n",
            100 << 20
        )
        .unwrap();
        sock.write_all(&bytes(1 << 20, 3)).unwrap();
        sock.shutdown(std::net::Shutdown::Both).unwrap();
    }
    // a body shorter than its Content-Length, then the write side closes
    {
        let mut sock = std::net::TcpStream::connect(&host).unwrap();
        write!(
            sock,
            "PUT /c={uuid}/short.bin HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\nContent-Length: 10\r\n\r\nabc"
        )
        .unwrap();
        sock.shutdown(std::net::Shutdown::Write).unwrap();
        let mut resp = String::new();
        let _ = sock.read_to_string(&mut resp);
        assert!(!resp.starts_with("HTTP/1.1 201"), "{resp}");
    }
    // digests that disagree: 400 naming both
    let r = w
        .req("PUT", &w.url(&uuid, "md5.txt"))
        .header("Content-MD5", "AAAAAAAAAAAAAAAAAAAAAA==")
        .body("hello")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let text = r.text().unwrap();
    assert!(
        text.contains("XUFAKrxLKna5cZ2REBfFkg==") && text.contains("AAAAAAAAAAAAAAAAAAAAAA=="),
        "{text}"
    );
    let r = w
        .req("PUT", &w.url(&uuid, "sha.txt"))
        .header(
            "Content-Digest",
            "sha-256=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:",
        )
        .body("hello")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r
        .text()
        .unwrap()
        .contains("LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="));
    // and the right digests are accepted
    let r = w
        .req("PUT", &w.url(&uuid, "ok.txt"))
        .header("Content-MD5", "XUFAKrxLKna5cZ2REBfFkg==")
        .header(
            "Content-Digest",
            "sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:",
        )
        .body("hello")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // the server is still fine and nothing else landed
    let after = w.record(&uuid);
    assert_eq!(
        after["version"].as_u64().unwrap(),
        before["version"].as_u64().unwrap() + 1
    );
    assert_eq!(
        w.files(&uuid),
        vec![("keep.txt".to_string(), 5), ("ok.txt".to_string(), 5)]
    );
}

/// The status rules of writing: missing parent 409, MKCOL on an existing name 405, any
/// write under a PDH or above a collection 405, a read-only token 403, no token 401;
/// directories MOVE, COPY (deep and Depth 0) and DELETE whole; Overwrite: F gives 412;
/// every old PDH still serves its old content.
#[test]
fn write_rules_and_directory_moves() {
    let w = W::start();
    let uuid = w.collection("tree");
    let u = |p: &str| w.url(&uuid, p);
    assert_eq!(w.status("MKCOL", &u("d")), 201);
    assert_eq!(w.status("MKCOL", &u("d")), 405);
    assert_eq!(w.status("MKCOL", &u("x/y")), 409);
    assert_eq!(
        w.put(&uuid, "d/a.txt", b"A".to_vec()).status().as_u16(),
        201
    );
    assert_eq!(
        w.put(&uuid, "d/sub/b.txt", b"B".to_vec()).status().as_u16(),
        409
    );
    assert_eq!(w.status("MKCOL", &u("d/sub")), 201);
    assert_eq!(
        w.put(&uuid, "d/sub/b.txt", b"B".to_vec()).status().as_u16(),
        201
    );
    assert_eq!(w.put(&uuid, "d", b"no".to_vec()).status().as_u16(), 405);
    assert_eq!(
        w.put(&uuid, "d/a.txt/x", b"no".to_vec()).status().as_u16(),
        409
    );
    let pdh1 = w.record(&uuid)["portable_data_hash"]
        .as_str()
        .unwrap()
        .to_string();

    // COPY of a directory, deep, then Depth 0 (an empty directory)
    let r = w
        .req("COPY", &u("d"))
        .header("Destination", u("e"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let r = w
        .req("COPY", &u("d"))
        .header("Destination", u("z"))
        .header("Depth", "0")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // Overwrite: F onto an existing name
    let r = w
        .req("COPY", &u("d/a.txt"))
        .header("Destination", u("e/a.txt"))
        .header("Overwrite", "F")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 412);
    // MOVE of a directory (an absolute path Destination works too)
    let dest_path = format!("/c={uuid}/f");
    let r = w
        .req("MOVE", &u("e"))
        .header("Destination", dest_path)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // into itself: refused
    let r = w
        .req("MOVE", &u("f"))
        .header("Destination", u("f/inner"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        w.files(&uuid),
        vec![
            ("d/a.txt".to_string(), 1),
            ("d/sub/b.txt".to_string(), 1),
            ("f/a.txt".to_string(), 1),
            ("f/sub/b.txt".to_string(), 1),
        ]
    );
    assert_eq!(w.get(&uuid, "f/sub/b.txt"), (200, b"B".to_vec()));
    assert_eq!(w.status("PROPFIND", &u("z/")), 207);
    assert_eq!(w.status("PROPFIND", &u("e/")), 404);
    // DELETE of a directory takes everything in it
    assert_eq!(w.status("DELETE", &u("d")), 204);
    assert_eq!(w.status("DELETE", &u("d")), 404);
    assert_eq!(
        w.files(&uuid),
        vec![("f/a.txt".to_string(), 1), ("f/sub/b.txt".to_string(), 1)]
    );

    // the old version is still there by its PDH, and read-only
    let old = format!("{}/c={pdh1}/d/sub/b.txt", w.web);
    let r = w.req("GET", &old).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().unwrap().as_ref(), b"B");
    assert_eq!(w.status("PUT", &old), 405);
    assert_eq!(w.status("DELETE", &old), 405);
    // listing levels above a collection
    for p in ["/", "/by_id/", "/users/", "/users/admin/new.txt"] {
        let st = w.status("PUT", &format!("{}{p}", w.web));
        assert_eq!(st, 405, "PUT {p}");
    }
    assert_eq!(
        w.status("MKCOL", &format!("{}/users/admin/newdir", w.web)),
        405
    );

    // no token: 401 with the Basic challenge; a token that may only read: 403
    let r = w.http.put(u("anon.txt")).body("x").send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let env = Env::new(&w.k);
    let reader_uuid = env.ok(&["user", "create", "reader"]);
    let reader = env.ok(&["token", "create", "--user", &reader_uuid]);
    env.ok(&["grant", &reader_uuid, "can_read", &uuid]);
    let r = w
        .http
        .put(u("ro.txt"))
        .basic_auth("r", Some(&reader))
        .body("x")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = w
        .http
        .get(u("f/a.txt"))
        .basic_auth("r", Some(&reader))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // LOCK on a missing path answers 201 and creates nothing
    assert_eq!(w.status("LOCK", &u("nothing.txt")), 201);
    assert_eq!(w.status("HEAD", &u("nothing.txt")), 404);
}

/// Writes through `/users/<name>/<collection>/…` and MOVE between two collections.
#[test]
fn writes_through_the_project_tree() {
    let w = W::start();
    let a = w.collection("alpha");
    let b = w.collection("beta");
    let base = format!("{}/users/admin", w.web);
    let r = w
        .req("PUT", &format!("{base}/alpha/x.txt"))
        .body("x!")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(w.get(&a, "x.txt"), (200, b"x!".to_vec()));
    let r = w
        .req("MOVE", &format!("{base}/alpha/x.txt"))
        .header("Destination", format!("{base}/beta/y.txt"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert!(w.files(&a).is_empty());
    assert_eq!(w.files(&b), vec![("y.txt".to_string(), 2)]);

    // /by_id/<uuid>/ and the collection's vhost (<uuid>.localhost) write too
    let r = w
        .req("PUT", &format!("{}/by_id/{a}/by_id.txt", w.web))
        .body("1")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let port = w.web.rsplit(':').next().unwrap();
    let r = w
        .req("PUT", &format!("{}/vhost.txt", w.web))
        .header("Host", format!("{a}.localhost:{port}"))
        .body("22")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // Finder's and Windows' side files are files like any other
    for f in ["._photo.jpg", ".DS_Store", "desktop.ini"] {
        assert_eq!(w.put(&a, f, b"meta".to_vec()).status().as_u16(), 201, "{f}");
    }
    assert_eq!(w.status("DELETE", &w.url(&a, "._photo.jpg")), 204);
    assert_eq!(
        w.files(&a),
        vec![
            (".DS_Store".to_string(), 4),
            ("by_id.txt".to_string(), 1),
            ("desktop.ini".to_string(), 4),
            ("vhost.txt".to_string(), 2),
        ]
    );
    // OPTIONS at / answers (without credentials) with every method, as Windows wants
    let r = w
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/", w.web))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["dav"], "1, 2");
    let allow = r.headers()["allow"].to_str().unwrap();
    for m in ["PUT", "MKCOL", "MOVE", "PROPPATCH", "LOCK"] {
        assert!(allow.contains(m), "{allow}");
    }
}

/// `rclone copy` of a local tree into a collection, then `rclone check` against it.
#[test]
fn rclone_copies_into_a_collection() {
    let w = W::start();
    let uuid = w.collection("rclone");
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(src.join("sub dir/deeper")).unwrap();
    std::fs::write(src.join("a.txt"), b"hello\n").unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    std::fs::write(src.join("sub dir/b.bin"), bytes(300_000, 5)).unwrap();
    std::fs::write(src.join("sub dir/deeper/c ü.txt"), bytes(77, 6)).unwrap();
    let url = w.url(&uuid, "");
    let admin = Some(("u", w.admin.as_str()));
    rclone(&url, admin, &["copy", s(&src), ":webdav:"]);
    rclone(&url, admin, &["check", s(&src), ":webdav:"]);
    assert_eq!(
        w.files(&uuid),
        vec![
            ("a.txt".to_string(), 6),
            ("empty".to_string(), 0),
            ("sub dir/b.bin".to_string(), 300_000),
            ("sub dir/deeper/c ü.txt".to_string(), 77),
        ]
    );
}

/// A davfs2 mount (as root, a secrets file, locks on) of a collection: `cp -r` a tree in,
/// read it back with `cmp`, rename and delete files, unmount; the collection then holds
/// exactly the expected files with the expected bytes.
///
/// Debian bookworm's davfs2 1.6.1 can't list directories on this machine's kernel (6.18:
/// `readdir` fails with EINVAL against any server, rclone's too), so the test names files
/// instead of listing them through the mount.
#[test]
#[ignore = "needs root: mounts davfs2 (FUSE, /dev/fuse)"]
fn davfs2_mount_writes_a_tree() {
    assert_root();
    let w = W::start();
    let uuid = w.collection("mounted");
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("a.txt", b"hello davfs2\n".to_vec()),
        ("b.bin", bytes(2_000_000, 11)),
        ("sub/c.txt", bytes(5000, 12)),
        ("sub/deeper/d.bin", bytes(123_457, 13)),
        ("sub/gone.txt", b"to be deleted".to_vec()),
    ];
    for (p, d) in &files {
        std::fs::write(src.join(p), d).unwrap();
    }
    let mnt = work.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let url = w.url(&uuid, "");
    let secrets = work.path().join("secrets");
    std::fs::write(&secrets, format!("{url} u {}\n", w.admin)).unwrap();
    std::fs::set_permissions(
        &secrets,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let conf = work.path().join("davfs2.conf");
    std::fs::write(
        &conf,
        // the cache stays where davfs2 keeps it (/var/cache/davfs2: its own user must be
        // able to write there)
        format!(
            "secrets {}\nuse_locks 1\ndelay_upload 0\n",
            secrets.display()
        ),
    )
    .unwrap();
    let o = Command::new("mount.davfs")
        .arg(&url)
        .arg(&mnt)
        .arg("-o")
        .arg(format!("conf={}", conf.display()))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("mount.davfs is installed by scripts/setup");
    let err = String::from_utf8_lossy(&o.stderr);
    // scripts/test runs this only as root with /dev/fuse: a machine that still can't
    // mount (a container without the capability) fails here, visibly
    assert!(o.status.success(), "mount.davfs failed: {err}");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let guard = Unmount(mnt.clone());

    let st = Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(mnt.join("tree"))
        .status()
        .unwrap();
    assert!(st.success(), "cp -r into the mount");
    for (p, _) in &files {
        let st = Command::new("cmp")
            .arg(src.join(p))
            .arg(mnt.join("tree").join(p))
            .status()
            .unwrap();
        assert!(st.success(), "cmp {p}");
    }
    std::fs::rename(mnt.join("tree/a.txt"), mnt.join("tree/renamed.txt")).unwrap();
    std::fs::remove_file(mnt.join("tree/sub/gone.txt")).unwrap();
    let st = Command::new("umount").arg(&mnt).status().unwrap();
    assert!(st.success(), "umount");
    std::mem::forget(guard);

    assert_eq!(
        w.files(&uuid),
        vec![
            ("tree/b.bin".to_string(), 2_000_000),
            ("tree/renamed.txt".to_string(), 13),
            ("tree/sub/c.txt".to_string(), 5000),
            ("tree/sub/deeper/d.bin".to_string(), 123_457),
        ]
    );
    assert_eq!(w.get(&uuid, "tree/sub/deeper/d.bin").1, bytes(123_457, 13));
    assert_eq!(
        w.get(&uuid, "tree/renamed.txt").1,
        b"hello davfs2\n".to_vec()
    );
}

/// `GET dir/?accept=application/zip` streams the directory as a ZIP (Python's zipfile
/// unpacks it to the same bytes, empty directories included) with a BLAKE3SUMS that
/// matches; `Accept: application/zip` on the collection root does the same.
#[test]
fn zip_download_of_a_directory() {
    let w = W::start();
    let uuid = w.collection("zipped");
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("top.txt", b"top\n".to_vec()),
        ("d/a.txt", b"alpha\n".to_vec()),
        ("d/big.bin", bytes(3_000_001, 21)),
        ("d/sub/b.bin", bytes(70_000, 22)),
        ("d/sub/empty", Vec::new()),
    ];
    assert_eq!(w.status("MKCOL", &w.url(&uuid, "d")), 201);
    assert_eq!(w.status("MKCOL", &w.url(&uuid, "d/sub")), 201);
    assert_eq!(w.status("MKCOL", &w.url(&uuid, "d/nothing")), 201);
    for (p, d) in &files {
        assert_eq!(w.put(&uuid, p, d.clone()).status().as_u16(), 201, "{p}");
    }
    let work = tempfile::tempdir().unwrap();
    let unzip = |resp: reqwest::blocking::Response, name: &str| -> std::path::PathBuf {
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.headers()["content-type"], "application/zip");
        let cd = resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(cd.starts_with("attachment;"), "{cd}");
        let zip = work.path().join(format!("{name}.zip"));
        std::fs::write(&zip, resp.bytes().unwrap()).unwrap();
        let out = work.path().join(name);
        let st = Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&zip)
            .arg(&out)
            .status()
            .expect("python3");
        assert!(st.success(), "python3 -m zipfile -e");
        out
    };
    let out = unzip(
        w.req("GET", &w.url(&uuid, "d/?accept=application/zip"))
            .send()
            .unwrap(),
        "d",
    );
    for (p, d) in files.iter().filter(|(p, _)| p.starts_with("d/")) {
        let got = std::fs::read(out.join(&p[2..])).unwrap();
        assert!(got == *d, "{p}");
    }
    assert!(out.join("nothing").is_dir());
    let sums = std::fs::read_to_string(out.join("BLAKE3SUMS")).unwrap();
    for (p, d) in files.iter().filter(|(p, _)| p.starts_with("d/")) {
        let line = format!("{}  {}", blake3::hash(d).to_hex(), &p[2..]);
        assert!(sums.lines().any(|l| l == line), "{line} in\n{sums}");
    }
    // the whole collection, asked for with an Accept header
    let out = unzip(
        w.req("GET", &w.url(&uuid, ""))
            .header("Accept", "application/zip")
            .send()
            .unwrap(),
        "all",
    );
    for (p, d) in &files {
        assert!(std::fs::read(out.join(p)).unwrap() == *d, "{p}");
    }
}

/// A keepstore with no room left: a PUT through keep-web answers 507 Insufficient
/// Storage (what WebDAV clients report as a full disk), commits nothing and leaves no
/// temp file; a PUT that fits still works. The volume is a 12 MiB tmpfs (needs root).
#[test]
#[ignore = "needs root: mounts a 12 MiB tmpfs as the keepstore volume"]
fn a_full_keepstore_is_507_and_commits_nothing() {
    assert_root();
    struct Mount(tempfile::TempDir);
    impl Drop for Mount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0.path()).status();
        }
    }
    let vol = Mount(tempfile::tempdir().unwrap());
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=12m", "tmpfs"])
        .arg(vol.0.path())
        .status()
        .unwrap();
    assert!(st.success(), "mount -t tmpfs failed (this test needs root)");
    let w = W::on(Serve::start_with(
        KEEP,
        "",
        &format!("volumes = [{:?}]", vol.0.path()),
    ));
    let uuid = w.collection("full");
    assert_eq!(
        w.put(&uuid, "small.txt", b"fits\n".to_vec())
            .status()
            .as_u16(),
        201
    );
    let before = w.record(&uuid);
    let r = w.put(&uuid, "big.bin", bytes(20 << 20, 9));
    assert_eq!(r.status().as_u16(), 507);
    let text = r.text().unwrap();
    assert!(text.contains("bytes free"), "{text}");
    let after = w.record(&uuid);
    assert_eq!(after["portable_data_hash"], before["portable_data_hash"]);
    assert_eq!(after["version"], before["version"]);
    let tmp: Vec<_> = std::fs::read_dir(vol.0.path().join("tmp"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(tmp.is_empty(), "temp files left: {tmp:?}");
    assert_eq!(
        w.put(&uuid, "small2.txt", b"fits too\n".to_vec())
            .status()
            .as_u16(),
        201
    );
}

/// A directory of 70,000 files is more than a plain ZIP can index (65,535 entries): the
/// archive must carry the ZIP64 end records, and a standard reader must list it whole.
#[test]
fn zip_of_more_entries_than_plain_zip_allows() {
    let w = W::start();
    let uuid = w.collection("wide");
    let seed = bytes(70_000, 5);
    assert_eq!(
        w.put(&uuid, "seed.bin", seed.clone()).status().as_u16(),
        201
    );
    let m = w.record(&uuid)["manifest_text"]
        .as_str()
        .unwrap()
        .to_string();
    let loc = m.split(' ').nth(1).unwrap().to_string();
    let mut text = format!(". {loc}");
    for i in 0..70_000u32 {
        text.push_str(&format!(" {i}:1:f{i:05}"));
    }
    text.push('\n');
    let (st, c) = w.api(
        reqwest::Method::PUT,
        &format!("/arvados/v1/collections/{uuid}"),
        &w.admin,
        json!({"collection": {"manifest_text": text}}),
    );
    assert_eq!(st, 200, "{c}");
    let r = w
        .req("GET", &w.url(&uuid, "?accept=application/zip"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let work = tempfile::tempdir().unwrap();
    let zip = work.path().join("wide.zip");
    std::fs::write(&zip, r.bytes().unwrap()).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             names = z.namelist()\n\
             t = z.getinfo('f00000').date_time\n\
             print(len(names), z.read('f00000').hex(), z.read('f69999').hex(), \
             '%04d-%02d-%02dT%02d:%02d' % t[:5])",
        )
        .arg(&zip)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = String::from_utf8_lossy(&out.stdout);
    // entries carry the collection's modification time (UTC, to the minute here)
    let modified = c["modified_at"].as_str().unwrap();
    let want = format!(
        "{} {:02x} {:02x} {}",
        70_000 + 1, // and BLAKE3SUMS
        seed[0],
        seed[69_999],
        &modified[..16]
    );
    assert_eq!(got.trim(), want);
}

/// 40 small PUTs, one block each, are repacked in the background into shared blocks:
/// the collection ends with far fewer blocks, every file reads back the same, and a PDH
/// from before the repack still serves its old content.
#[test]
fn small_writes_are_repacked() {
    let w = W::start();
    let uuid = w.collection("small");
    assert_eq!(w.status("MKCOL", &w.url(&uuid, "s")), 201);
    let mut old_pdh = String::new();
    for i in 0..40u64 {
        let r = w.put(&uuid, &format!("s/{i:02}.txt"), bytes(1000 + i as usize, i));
        assert_eq!(r.status().as_u16(), 201);
        if i == 9 {
            old_pdh = w.record(&uuid)["portable_data_hash"]
                .as_str()
                .unwrap()
                .to_string();
        }
    }
    let blocks = |w: &W| -> usize {
        let c = w.record(&uuid);
        let m = c["unsigned_manifest_text"].as_str().unwrap().to_string();
        let set: std::collections::HashSet<String> = m
            .split_whitespace()
            .filter(|t| t.contains('+'))
            .map(|t| t.to_string())
            .collect();
        set.len()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while blocks(&w) > 12 {
        assert!(
            std::time::Instant::now() < deadline,
            "still {} blocks after 30 s",
            blocks(&w)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(w.files(&uuid).len(), 40);
    for i in 0..40u64 {
        assert_eq!(
            w.get(&uuid, &format!("s/{i:02}.txt")),
            (200, bytes(1000 + i as usize, i)),
            "file {i}"
        );
    }
    let r = w
        .req("GET", &format!("{}/c={old_pdh}/s/05.txt", w.web))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().unwrap().to_vec(), bytes(1005, 5));
}
