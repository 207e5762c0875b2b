//! keep-web driven in process against a real API (temp RocksDB) and keepstore (temp
//! directory, checking readers' tokens with that API), both served once per process on
//! loopback sockets by a background thread's actix system. The fuzz thread sets the
//! world up by calling the same `Api` and `Keepstore` in process.

use std::net::TcpListener;
use std::time::SystemTime;

use actix_web::{App, HttpServer};
use keep_api::Api;
use keep_format::{Hash, Locator, Pdh, Token};
use keepstore::{Keepstore, TokenCheckConfig};
use serde_json::{json, Value};

use super::api_world::{self, must, signer, simple, uuid, MGMT, ROOT};
use super::{block_on, check_allowing, check_health, send, test_request, Answer, Table};
use crate::req::{base64, Rendered, Request};
use crate::words::{WEB, WEB_BODIES};

const WEB_HOST: &str = "127.0.0.1:9002";

/// Blocks of alice's collection c1: big.bin is the first three, hello.txt the last.
fn blocks() -> Vec<Vec<u8>> {
    let mut x: u32 = 0x9e37_79b9;
    let mut data = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    };
    vec![data(1000), data(1000), data(500), b"hello world\n".to_vec()]
}

/// c1's manifest with its locators signed for `token`.
fn c1_manifest(token: &str) -> String {
    let tok: Token = token.parse().expect("token");
    let now = SystemTime::now();
    let l: Vec<String> = blocks()
        .iter()
        .map(|b| {
            signer()
                .sign(&Locator::new(Hash::of(b), b.len() as u64), &tok, now)
                .to_string()
        })
        .collect();
    format!(
        ". {} {} {} {} 0:2500:big.bin 2500:12:hello.txt 2500:12:<i>&.txt\n./sub {} 0:12:a.txt\n./t=x {} 0:12:y.txt\n",
        l[0], l[1], l[2], l[3], l[3], l[3]
    )
}

/// `uri` without its `api_token=…` query pairs (key %-decoded, any case).
fn without_credentials(uri: &str) -> String {
    let Some((path, query)) = uri.split_once('?') else {
        return uri.to_string();
    };
    let decode = |k: &str| -> String {
        let b = k.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            match (
                b[i],
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) {
                (b'%', Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
                (b'+', _, _) => {
                    out.push(b' ');
                    i += 1;
                }
                (c, _, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).to_ascii_lowercase()
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| decode(kv.split('=').next().unwrap_or("")) != "api_token")
        .collect();
    format!("{path}?{}", kept.join("&"))
}

pub struct World {
    api: Api,
    web: keep_web::KeepWeb,
    pub words: Vec<String>,
    pub bodies: Vec<Vec<u8>>,
    admin: String,
    alice: String,
    c1: String,
    /// Token secrets that must never appear in a `Location`.
    secrets: Vec<String>,
    inputs: u64,
    _dir: tempfile::TempDir,
}

/// Serves `api` and `ks` on these listeners from a thread of their own, forever.
fn serve_in_background(api: Api, ks: Keepstore, la: TcpListener, lk: TcpListener) {
    std::thread::Builder::new()
        .name("upstreams".into())
        .spawn(move || {
            let sys = actix_web::rt::System::new();
            sys.block_on(async move {
                let a = HttpServer::new(move || {
                    let api = api.clone();
                    App::new().configure(move |c| api.configure(c))
                })
                .workers(1)
                .disable_signals()
                .listen(la)
                .expect("API listens")
                .run();
                let k = HttpServer::new(move || {
                    let ks = ks.clone();
                    App::new().configure(move |c| ks.configure(c))
                })
                .workers(1)
                .disable_signals()
                .listen(lk)
                .expect("keepstore listens")
                .run();
                actix_web::rt::spawn(a);
                let _ = k.await;
            })
        })
        .expect("a thread");
}

impl World {
    pub fn new() -> World {
        super::log_panics();
        let dir = tempfile::tempdir().expect("temp dir");
        let la = TcpListener::bind("127.0.0.1:0").expect("bind");
        let lk = TcpListener::bind("127.0.0.1:0").expect("bind");
        let api_url = format!("http://{}", la.local_addr().expect("addr"));
        let ks_url = format!("http://{}", lk.local_addr().expect("addr"));
        let api = Api::open(keep_api::Config {
            cluster_id: "zzzzz".into(),
            db_path: dir.path().join("db"),
            signer: signer(),
            system_root_token: ROOT.into(),
            management_token: MGMT.into(),
            keepstore_urls: vec![ks_url.clone()],
            web_url: format!("http://{WEB_HOST}"),
            default_replication: 1,
        })
        .expect("the API opens");
        let mut kc = keepstore::Config::new(
            vec![dir.path().join("vol").into()],
            signer(),
            ROOT.into(),
            MGMT.into(),
        );
        kc.token_check = Some(TokenCheckConfig::new(api_url.clone()));
        let ks = Keepstore::open(kc).expect("keepstore opens");
        serve_in_background(api.clone(), ks.clone(), la, lk);

        let c = api_world::cast(&api);
        // blocks, stored in process by alice
        for b in blocks() {
            let r = simple("PUT", &format!("/{}", Hash::of(&b)), &c.alice, &Value::Null);
            let r = Rendered { body: b, ..r };
            let t = test_request(&r, "127.0.0.1:25107").expect("valid");
            let ks2 = ks.clone();
            let a = block_on(async move {
                let app =
                    actix_web::test::init_service(App::new().configure(|cf| ks2.configure(cf)))
                        .await;
                send(&app, t.to_request()).await
            });
            assert_eq!(
                a.status,
                200,
                "PUT a block: {}",
                String::from_utf8_lossy(&a.body)
            );
        }
        let coll = |tok: &str, name: &str, owner: Option<&str>, m: String| -> Value {
            let mut cv = json!({"name": name, "manifest_text": m});
            if let Some(o) = owner {
                cv["owner_uuid"] = json!(o);
            }
            must(
                &api,
                "POST",
                "/arvados/v1/collections",
                tok,
                json!({"collection": cv}),
            )
        };
        let c1v = coll(&c.alice, "c1", None, c1_manifest(&c.alice));
        let c1 = uuid(&c1v);
        let pdh: Pdh = c1v["portable_data_hash"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .expect("a PDH");
        let hello = Locator::new(Hash::of(b"hello world\n"), 12);
        let bob_tok: Token = c.bob.parse().expect("token");
        let bob_m = format!(
            ". {} 0:12:secret.txt\n",
            signer().sign(&hello, &bob_tok, SystemTime::now())
        );
        let c_bob = uuid(&coll(&c.bob, "bobs", None, bob_m));
        let proj = uuid(&must(
            &api,
            "POST",
            "/arvados/v1/groups",
            &c.alice,
            json!({"group": {"name": "proj", "group_class": "project"}}),
        ));
        coll(
            &c.alice,
            "inproj",
            Some(&proj),
            api_world::hello_manifest(&c.alice),
        );
        let deep = uuid(&coll(&c.alice, "deep", None, api_world::deep_manifest(100)));
        // names with control characters and DEL (issue 11 items 9, 11), and a directory
        // named like a host (item 8: `GET //evil.example` on its vhost)
        let alice_tok: Token = c.alice.parse().expect("token");
        let signed = signer().sign(&hello, &alice_tok, SystemTime::now());
        let odd_m = format!(
            ". {signed} 0:12:a\\001b.txt 0:12:d\\177el.txt\n./evil.example {signed} 0:12:x.txt\n"
        );
        let body = json!({"collection": {"name": "odd", "manifest_text": odd_m}});
        let a = api_world::call(
            &api,
            &simple("POST", "/arvados/v1/collections", &c.alice, &body),
        )
        .expect("a valid request");
        let odd = match serde_json::from_slice::<Value>(&a.body) {
            Ok(v) if a.status == 200 => uuid(&v),
            // names the API refuses: the host-named directory alone
            _ => uuid(&coll(
                &c.alice,
                "odd",
                None,
                format!("./evil.example {signed} 0:12:x.txt\n"),
            )),
        };
        must(
            &api,
            "POST",
            "/arvados/v1/links",
            &c.alice,
            json!({"link": {"link_class": "permission", "name": "can_read", "tail_uuid": c.bob_uuid, "head_uuid": c1}}),
        );

        let web = keep_web::KeepWeb::new(keep_web::Config {
            api_url,
            keepstore_urls: vec![ks_url],
            domain: "localhost".into(),
            download_host: Some("dl.example".into()),
            trust_all_content: false,
            anonymous_token: Some(c.anon.parse().expect("token")),
            management_token: MGMT.into(),
            external_url: format!("http://{WEB_HOST}"),
        })
        .expect("keep-web starts");

        let mut t = Table::new(WEB);
        t.set("empty", "");
        t.set("alice", c.alice.clone());
        t.set("bob", c.bob.clone());
        t.set("anon", c.anon.clone());
        t.set("admin", c.admin.clone());
        t.set("mgmt", MGMT);
        t.set("c1", c1.clone());
        t.set("c1_pdh", pdh.to_string());
        t.set("c1_vhost", format!("{c1}.localhost"));
        t.set("c1_pdh_vhost", format!("{}.localhost", pdh.to_dns_label()));
        t.set("c1_dashes_vhost", format!("{c1}--localhost"));
        t.set("c_bob", c_bob);
        t.set("proj", proj);
        t.set("download_host", "dl.example");
        t.set("web_host", WEB_HOST);
        t.set("c=c1", format!("c={c1}"));
        t.set("c=c1_pdh", format!("c={pdh}"));
        t.set("t=alice", format!("t={}", c.alice));
        t.set("alice_name", "alice");
        t.set("bob_name", "bob");
        t.set("alice_uuid", c.alice_uuid.clone());
        t.set("proj_name", "proj");
        t.set("dest_c1", format!("http://{c1}.localhost/new.txt"));
        t.set(
            "dest_other",
            format!("http://{WEB_HOST}/c={c1}/sub/moved.txt"),
        );
        t.set(
            "lock_token",
            "<urn:uuid:00000000-0000-0000-0000-000000000000>",
        );
        t.set("zip", "application/zip");
        t.set("c1_deep_vhost", format!("{deep}.localhost"));
        t.set("deep", vec!["a"; 100].join("/"));
        t.set("odd", odd.clone());
        t.set("c=odd", format!("c={odd}"));
        t.set("odd_vhost", format!("{odd}.localhost"));
        t.set("ctrl_name", "a\u{1}b.txt");
        t.set("del_name", "d\u{7f}el.txt");
        t.set(
            "keep_web_session",
            format!("api_token={}", base64(c.alice.as_bytes())),
        );
        let words = t.words();

        let mut b = Table::new(WEB_BODIES);
        b.set(
            "propfind_all",
            r#"<?xml version="1.0" encoding="utf-8"?><propfind xmlns="DAV:"><allprop/></propfind>"#,
        );
        b.set(
            "propfind_prop",
            r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getcontentlength/><D:resourcetype/><D:getetag/><D:getlastmodified/><D:displayname/></D:prop></D:propfind>"#,
        );
        b.set(
            "propfind_names",
            r#"<propfind xmlns="DAV:"><propname/></propfind>"#,
        );
        b.set(
            "proppatch",
            r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:x"><D:set><D:prop><x:color>red</x:color></D:prop></D:set><D:remove><D:prop><x:size/></D:prop></D:remove></D:propertyupdate>"#,
        );
        b.set(
            "lock",
            r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>me</D:owner></D:lockinfo>"#,
        );
        b.set("hello", "hello world\n");
        b.set("api_token_form", format!("api_token={}", c.alice));
        b.set(
            "deep_xml",
            format!(
                "<propfind xmlns=\"DAV:\">{}{}</propfind>",
                "<a>".repeat(500),
                "</a>".repeat(500)
            ),
        );
        let secrets = [&c.alice, &c.bob, &c.admin, &c.anon]
            .iter()
            .map(|t| t.rsplit('/').next().unwrap_or(t).to_string())
            .collect();
        World {
            api,
            web,
            words,
            bodies: b.all(),
            admin: c.admin,
            alice: c.alice,
            c1,
            secrets,
            inputs: 0,
            _dir: dir,
        }
    }

    fn call(&self, r: &Rendered) -> Option<Answer> {
        let t = test_request(r, WEB_HOST)?;
        let web = self.web.clone();
        Some(block_on(async move {
            let app =
                actix_web::test::init_service(App::new().configure(|c| web.configure(c))).await;
            send(&app, t.to_request()).await
        }))
    }

    /// Can alice still read c1's hello.txt through keep-web? `Err`: what she got.
    fn canary(&self) -> Result<(), String> {
        let mut r = simple("GET", "/hello.txt", &self.alice, &Value::Null);
        r.host = Some(format!("{}.localhost", self.c1).into_bytes());
        match self.call(&r) {
            Some(a) if a.status == 200 && a.body == b"hello world\n" => Ok(()),
            Some(a) => Err(format!(
                "{} {}",
                a.status,
                String::from_utf8_lossy(&a.body[..a.body.len().min(500)])
            )),
            None => Err("no request".into()),
        }
    }

    /// A redirect stays on keep-web's hosts (or the one the client asked for) and never
    /// carries a token (issue 11 items 7, 8).
    fn check_location(&self, r: &Rendered, a: &Answer) {
        let Some(loc) = &a.location else { return };
        let loc = String::from_utf8_lossy(loc).to_ascii_lowercase();
        let fail = |why: &str| -> ! {
            panic!(
                "keep-web: {} {} answered {} with Location {loc:?}: {why}\nrequest: {r:?}",
                String::from_utf8_lossy(&r.method),
                r.uri,
                a.status
            )
        };
        // a token given as a credential (`api_token`, however its key is %-encoded) must
        // not be copied into the Location; one the client put elsewhere in the URL (a
        // path element, another key) is the client's text, kept as it was
        let elsewhere = without_credentials(&r.uri).to_ascii_lowercase();
        for s in &self.secrets {
            let s = s.to_ascii_lowercase();
            if loc.contains(&s) && !elsewhere.contains(&s) {
                fail("it carries a token");
            }
        }
        // browsers read `\` as `/`: `/\evil.example` is `//evil.example`
        let norm = loc.replace('\\', "/");
        let authority = match norm.split_once("://") {
            Some((_, rest)) => Some(rest),
            None => norm.strip_prefix("//"),
        };
        if let Some(rest) = authority {
            let host = rest
                .split(['/', '?', '#'])
                .next()
                .unwrap_or("")
                .rsplit('@')
                .next()
                .unwrap_or("");
            let name = host.split(':').next().unwrap_or("");
            let asked = r
                .host
                .as_deref()
                .map(|h| String::from_utf8_lossy(h).to_ascii_lowercase())
                .unwrap_or_else(|| WEB_HOST.into());
            let ours = name == "localhost"
                || name.ends_with(".localhost")
                || name.ends_with("--localhost")
                || name == "dl.example"
                || name == "127.0.0.1"
                || host == asked
                || Some(name) == asked.split(':').next();
            if !ours {
                fail("another host");
            }
        }
    }

    /// Puts c1 back as it was (untrashed, its manifest, its name).
    fn restore(&self) {
        let c1 = &self.c1;
        let untrash = simple(
            "POST",
            &format!("/arvados/v1/collections/{c1}/untrash"),
            &self.admin,
            &Value::Null,
        );
        let _ = api_world::call(&self.api, &untrash);
        must(
            &self.api,
            "PATCH",
            &format!("/arvados/v1/collections/{c1}"),
            &self.admin,
            json!({"collection": {"name": format!("c1 {:?}", SystemTime::now()), "manifest_text": c1_manifest(&self.admin)}}),
        );
    }

    pub fn run(&mut self, input: &Request) {
        self.inputs += 1;
        let r = input.render(&self.words, &self.bodies);
        if let Some(a) = self.call(&r) {
            // its upstreams are healthy local servers: a 502 means one of them answered
            // 5xx or something keep-web didn't expect (issue 11 item 11 showed as a 502)
            // (COPY and MOVE to another collection's host: 502, as RFC 4918 §9.8.5 says)
            let copy_move = matches!(r.method.as_slice(), b"COPY" | b"MOVE");
            let allowed: &[u16] = if copy_move {
                &[502, 503, 504]
            } else {
                &[503, 504]
            };
            check_allowing("keep-web", &r, &a, allowed);
            self.check_location(&r, &a);
        }
        let h = simple("GET", "/_health/ping", MGMT, &Value::Null);
        let a = self.call(&h).expect("a valid request");
        check_health("keep-web", &a, &r);
        if self.inputs.is_multiple_of(128) && self.canary().is_err() {
            self.restore();
            // keep-web reuses a token's view of a collection for up to a second
            let mut last = Ok(());
            for _ in 0..20 {
                std::thread::sleep(std::time::Duration::from_millis(200));
                last = self.canary();
                if last.is_ok() {
                    break;
                }
            }
            if let Err(e) = last {
                panic!("keep-web: c1 restored through the API, but alice reads {e}");
            }
        }
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}
