//! The API on a temp RocksDB, bootstrapped, with users, tokens, a project, collections,
//! a permission link and a filter group made through its own routes; its router driven
//! in process. An input may revoke a token or trash a collection the seeds rely on: a
//! canary checks them every 128 inputs, and the world is rebuilt when one fails (and
//! every 4096 inputs, so that the database stays small).

use std::time::{Duration, SystemTime};

use actix_web::App;
use keep_api::{Api, Config};
use keep_format::{BlobSigner, Hash, Locator, SigningKey, Token};
use serde_json::{json, Value};

use super::{block_on, check, check_health, send, test_request, Answer, Table};
use crate::req::{Rendered, Request};
use crate::words::{API, API_BODIES};

pub const KEY: &str = "fuzz-signing-key";
pub const ROOT: &str = "rootfuzz0123456789abcdef";
pub const MGMT: &str = "mgmtfuzz0123456789";

pub fn signer() -> BlobSigner {
    BlobSigner::new(SigningKey::new(KEY), Duration::from_secs(3600))
}

/// Calls `api`'s router in process.
pub fn call(api: &Api, r: &Rendered) -> Option<Answer> {
    let t = test_request(r, "127.0.0.1:8003")?;
    let api = api.clone();
    Some(block_on(async move {
        let app = actix_web::test::init_service(App::new().configure(|c| api.configure(c))).await;
        send(&app, t.to_request()).await
    }))
}

pub fn simple(method: &str, uri: &str, token: &str, body: &Value) -> Rendered {
    Rendered {
        method: method.as_bytes().to_vec(),
        uri: uri.into(),
        host: None,
        headers: vec![
            (
                b"authorization".to_vec(),
                format!("Bearer {token}").into_bytes(),
            ),
            (b"content-type".to_vec(), b"application/json".to_vec()),
        ],
        body: if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        },
    }
}

/// A JSON call that must succeed (setting the world up).
pub fn must(api: &Api, method: &str, uri: &str, token: &str, body: Value) -> Value {
    let a = call(api, &simple(method, uri, token, &body)).expect("a valid request");
    assert_eq!(
        a.status,
        200,
        "{method} {uri}: {}",
        String::from_utf8_lossy(&a.body)
    );
    serde_json::from_slice(&a.body).expect("JSON")
}

pub fn uuid(v: &Value) -> String {
    v["uuid"].as_str().expect("a uuid").to_string()
}

/// The users, tokens and objects a world starts with.
pub struct Cast {
    pub admin: String,
    pub alice: String,
    pub alice_uuid: String,
    pub alice_token_uuid: String,
    pub bob: String,
    pub bob_uuid: String,
    pub anon: String,
    pub alice_scoped: String,
}

pub fn token_for(api: &Api, admin: &str, owner: &str, extra: Value) -> (String, String) {
    let mut t = json!({"owner_uuid": owner});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            t[k] = v;
        }
    }
    let v = must(
        api,
        "POST",
        "/arvados/v1/api_client_authorizations",
        admin,
        json!({"api_client_authorization": t}),
    );
    let u = uuid(&v);
    let secret = v["api_token"].as_str().expect("a secret");
    (format!("v2/{u}/{secret}"), u)
}

/// Bootstraps `api` and makes alice, bob and their tokens.
pub fn cast(api: &Api) -> Cast {
    let admin = api
        .bootstrap()
        .expect("bootstrap")
        .expect("a new cluster")
        .expose();
    let mut users = Vec::new();
    for name in ["alice", "bob"] {
        let u = must(
            api,
            "POST",
            "/arvados/v1/users",
            &admin,
            json!({"user": {"username": name}}),
        );
        let uu = uuid(&u);
        let (tok, tu) = token_for(api, &admin, &uu, json!({}));
        users.push((uu, tok, tu));
    }
    let (anon, _) = token_for(api, &admin, api.anonymous_user_uuid(), json!({}));
    let (alice_scoped, _) = token_for(
        api,
        &admin,
        &users[0].0,
        json!({"scopes": ["GET /arvados/v1/collections/"]}),
    );
    Cast {
        admin,
        alice: users[0].1.clone(),
        alice_uuid: users[0].0.clone(),
        alice_token_uuid: users[0].2.clone(),
        bob: users[1].1.clone(),
        bob_uuid: users[1].0.clone(),
        anon,
        alice_scoped,
    }
}

/// `. <hello signed for token> 0:12:hello.txt` and a subdirectory.
pub fn hello_manifest(token: &str) -> String {
    let tok: Token = token.parse().expect("token");
    let hello = b"hello world\n";
    let l = Locator::new(Hash::of(hello), hello.len() as u64);
    let signed = signer().sign(&l, &tok, SystemTime::now());
    format!(". {signed} 0:12:hello.txt\n./sub {signed} 0:12:a.txt\n")
}

pub fn deep_manifest(depth: usize) -> String {
    let dir = vec!["a"; depth].join("/");
    format!("./{dir} {} 0:0:f\n", Locator::empty())
}

pub struct World {
    api: Api,
    pub words: Vec<String>,
    pub bodies: Vec<Vec<u8>>,
    cast: Cast,
    c1: String,
    inputs: u64,
    _dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> World {
        super::log_panics();
        let dir = tempfile::tempdir().expect("temp dir");
        let api = Api::open(Config {
            cluster_id: "zzzzz".into(),
            db_path: dir.path().join("db"),
            signer: signer(),
            system_root_token: ROOT.into(),
            management_token: MGMT.into(),
            keepstore_urls: vec!["http://127.0.0.1:25107".into()],
            web_url: "http://127.0.0.1:9002".into(),
        default_replication: 1,
        })
        .expect("the API opens");
        let c = cast(&api);
        let m_alice = hello_manifest(&c.alice);
        let proj = uuid(&must(
            &api,
            "POST",
            "/arvados/v1/groups",
            &c.alice,
            json!({"group": {"name": "proj", "group_class": "project"}}),
        ));
        let c1v = must(
            &api,
            "POST",
            "/arvados/v1/collections",
            &c.alice,
            json!({"collection": {"name": "c1", "manifest_text": m_alice}}),
        );
        let c1 = uuid(&c1v);
        let c2 = uuid(&must(
            &api,
            "POST",
            "/arvados/v1/collections",
            &c.alice,
            json!({"collection": {"name": "c2", "owner_uuid": proj, "manifest_text": m_alice}}),
        ));
        let link = uuid(&must(
            &api,
            "POST",
            "/arvados/v1/links",
            &c.alice,
            json!({"link": {"link_class": "permission", "name": "can_read", "tail_uuid": c.bob_uuid, "head_uuid": c1}}),
        ));
        let filt = uuid(&must(
            &api,
            "POST",
            "/arvados/v1/groups",
            &c.alice,
            json!({"group": {"name": "filt", "group_class": "filter", "owner_uuid": proj,
                "properties": {"filters": [["groups.uuid", "=", proj]]}}}),
        ));
        let pdh = c1v["portable_data_hash"].as_str().unwrap_or("").to_string();

        let mut t = Table::new(API);
        t.set("empty", "");
        t.set("admin", c.admin.clone());
        t.set("alice", c.alice.clone());
        t.set("bob", c.bob.clone());
        t.set("anon", c.anon.clone());
        t.set("alice_scoped", c.alice_scoped.clone());
        t.set("root", ROOT);
        t.set("mgmt", MGMT);
        t.set("alice_uuid", c.alice_uuid.clone());
        t.set("bob_uuid", c.bob_uuid.clone());
        t.set("anon_uuid", api.anonymous_user_uuid());
        t.set("system_uuid", "zzzzz-tpzed-000000000000000");
        t.set("public_uuid", api.public_group_uuid());
        t.set("proj", proj.clone());
        t.set("c1", c1.clone());
        t.set("c2", c2);
        t.set("link", link);
        t.set("alice_token_uuid", c.alice_token_uuid.clone());
        t.set("filter_group", filt);
        t.set("c1_pdh", pdh.clone());
        t.set("manifest_alice", m_alice.clone());
        t.set("manifest_admin", hello_manifest(&c.admin));
        t.set(
            "manifest_empty",
            format!(". {} 0:0:empty.txt\n", Locator::empty()),
        );
        t.set("manifest_deep", deep_manifest(200));
        t.set(
            "manifest_del",
            format!("./a\\177b {} 0:0:f\n", Locator::empty()),
        );
        t.set(
            "manifest_ctrl",
            format!(". {} 0:0:a\\001b\n", Locator::empty()),
        );
        t.set("filters_name", r#"[["name","=","c1"]]"#);
        t.set("filters_is_a", r#"[["uuid","is_a","arvados#collection"]]"#);
        t.set("filters_props", r#"[["properties.k","exists",true]]"#);
        t.set("select_uuid", r#"["uuid","name","manifest_text"]"#);
        t.set("order_desc", r#"["name desc","created_at"]"#);
        t.set(
            "replace_c1",
            format!(r#"{{"/copy.txt":"{pdh}/hello.txt"}}"#),
        );
        let words = t.words();

        let mut b = Table::new(API_BODIES);
        let js = |v: Value| v.to_string().into_bytes();
        b.set(
            "create_collection",
            js(json!({"collection": {"name": "new", "manifest_text": m_alice}})),
        );
        b.set(
            "create_project",
            js(json!({"group": {"name": "p2", "group_class": "project", "owner_uuid": proj}})),
        );
        b.set(
            "grant_bob",
            js(json!({"link": {"link_class": "permission", "name": "can_write", "tail_uuid": c.bob_uuid, "head_uuid": proj}})),
        );
        b.set(
            "create_token",
            js(json!({"api_client_authorization": {"scopes": ["all"], "expires_at": "2030-01-01T00:00:00Z"}})),
        );
        b.set(
            "update_c1",
            js(json!({"collection": {"name": "c1b", "manifest_text": m_alice, "properties": {"k": "v"}}})),
        );
        b.set(
            "owner_change",
            js(json!({"collection": {"owner_uuid": c.bob_uuid}})),
        );
        b.set(
            "bad_time",
            js(json!({"collection": {"trash_at": "2030-01-01T00:00:00+€00"}})),
        );
        World {
            api,
            words,
            bodies: b.all(),
            cast: c,
            c1,
            inputs: 0,
            _dir: dir,
        }
    }

    /// Do the seeds' tokens and collection still work?
    fn canary(&self) -> bool {
        let ok = |tok: &str, uri: &str| {
            call(&self.api, &simple("GET", uri, tok, &Value::Null)).is_some_and(|a| a.status == 200)
        };
        ok(&self.cast.admin, "/arvados/v1/users/current")
            && ok(&self.cast.alice, "/arvados/v1/users/current")
            && ok(&self.cast.bob, "/arvados/v1/users/current")
            && ok(
                &self.cast.alice,
                &format!("/arvados/v1/collections/{}", self.c1),
            )
    }

    pub fn run(&mut self, input: &Request) {
        self.inputs += 1;
        let r = input.render(&self.words, &self.bodies);
        if let Some(a) = call(&self.api, &r) {
            check("api", &r, &a);
        }
        let h = simple("GET", "/_health/ping", MGMT, &Value::Null);
        let a = call(&self.api, &h).expect("a valid request");
        check_health("api", &a, &r);
        if self.inputs.is_multiple_of(128) {
            if self.inputs.is_multiple_of(4096) || !self.canary() {
                *self = World::new();
                return;
            }
            // writes still work (issue 11 item 3: one bad request wedged every write)
            let name = format!("canary {} {:?}", self.inputs, SystemTime::now());
            let a = call(
                &self.api,
                &simple(
                    "POST",
                    "/arvados/v1/groups",
                    &self.cast.admin,
                    &json!({"group": {"name": name, "group_class": "project"}}),
                ),
            )
            .expect("a valid request");
            check_health("api (a write)", &a, &r);
        }
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}
