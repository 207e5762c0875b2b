//! The credential and permission matrix (issue 11, item 4), generated from tables.
//!
//! Five tests, each against its own real `keep serve` (keep-web, the API on RocksDB and
//! keepstore in one process, over real sockets). In each, the status a cell must get is
//! computed by a small rule function that reads like the contract, never written out
//! cell by cell:
//!
//! - `keep_web_matrix`: principals × path forms × `trust_all_content` off/on × methods;
//!   [`web_expect`] decides from three facts (does this host honour the principal's
//!   credential, is the credential valid, what may the principal do to the collection)
//!   following DESIGN §5's status rules. Also checks what each write left behind.
//! - `keep_web_project_matrix`: principals × a project's listing × methods
//!   ([`proj_expect`], DESIGN §5 "In a project").
//! - `keep_web_credential_sources`: principals × where the credential travels × hosts ×
//!   methods ([`src_expect`]: the 400 on a shared host, the 303 into a cookie).
//! - `keepstore_matrix`: principals × block operations ([`ks_expect`]: signatures end
//!   with their token).
//! - `api_matrix`: principals × operations × object types ([`api_expect`], from the
//!   principal's level on the object: doc/api.md, Permissions).
//!
//! Every cell runs, concurrently; each test prints its table's size and fails listing
//! every cell that differs from the rule (with the server's reason), and checks that no
//! log line holds a token. `MATRIX_PRINT=1` prints every cell. doc/security.md explains
//! how to run it as part of the hardening campaign.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

// The harness: the only lines that name it. Folded into cli/tests/main.rs (keep-testkit)
// they become `use crate::support::{b64, Env, Serve as Keep};` and
// `crate::support::serve()`.
use crate::support::{b64, Env, Serve as Keep};
fn start_keep() -> Keep {
    crate::support::serve()
}

// ---------------------------------------------------------------------------------------
// The principals
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum P {
    /// alice: owns the project `proj` and everything in it.
    Owner,
    /// wendy: `can_write` on `proj`.
    Writer,
    /// rita: `can_read` on `proj`.
    Reader,
    /// olga: no grant at all.
    Other,
    /// the admin `keep serve` made (DIR/admin-token).
    Admin,
    /// keep-web: no credential at all. API: the anonymous user's token
    /// (DIR/anonymous-token, what keep-web itself uses).
    Anonymous,
    /// the token of `keep share <collection A>` (scoped to reading A).
    Share,
    /// a token of alice's whose `expires_at` has passed.
    Expired,
    /// a token of alice's that was deleted (revoked).
    Revoked,
    /// a well-formed token the API never issued.
    Bogus,
    /// API only: oscar, `can_write` granted on each object itself, not on its project
    /// (issue 11 item 4: a writer may not take an object from its owner).
    ObjWriter,
}

const WEB_PRINCIPALS: [P; 10] = [
    P::Owner,
    P::Writer,
    P::Reader,
    P::Other,
    P::Admin,
    P::Anonymous,
    P::Share,
    P::Expired,
    P::Revoked,
    P::Bogus,
];

/// The API table's principals: keep-web's and oscar.
fn api_principals() -> Vec<P> {
    WEB_PRINCIPALS.into_iter().chain([P::ObjWriter]).collect()
}

/// What a principal's credential is, as the API sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cred {
    /// No credential.
    Nothing,
    /// A token the API accepts.
    Valid,
    /// Expired, revoked or never issued.
    Invalid,
}

fn cred(p: P) -> Cred {
    match p {
        P::Anonymous => Cred::Nothing,
        P::Expired | P::Revoked | P::Bogus => Cred::Invalid,
        _ => Cred::Valid,
    }
}

/// Permission levels (doc/api.md): none < read < write < manage.
const NONE: u8 = 0;
const READ: u8 = 1;
const WRITE: u8 = 2;
const MANAGE: u8 = 3;

// ---------------------------------------------------------------------------------------
// keep-web: forms and methods
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Host {
    /// `<uuid of A>.localhost`
    VhostUuid,
    /// `<base32 of F's PDH>-<size>.localhost`
    VhostPdh,
    /// `127.0.0.1`, the host of keep-web's URL: the default attachment-only download host.
    Download,
    /// `localhost`: neither a collection vhost nor the download host.
    Shared,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Path {
    /// the vhost's root: the whole path is inside the collection.
    VhostRoot,
    /// `/c=<uuid of A>/…`
    CUuid,
    /// `/c=<pdh of F>/…`
    CPdh,
    /// `/c=<uuid of A>/t=<the principal's token>/_/…` (the sharing URL form).
    CUuidT,
    /// `/by_id/<uuid of A>/…`
    ByIdUuid,
    /// `/by_id/<pdh of F>/…`
    ByIdPdh,
    /// `/users/alice/proj/A/…`
    Users,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Form {
    host: Host,
    path: Path,
}

impl Form {
    /// The target is named by its PDH: fixed content, read-only.
    fn by_pdh(self) -> bool {
        self.host == Host::VhostPdh || matches!(self.path, Path::CPdh | Path::ByIdPdh)
    }
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let h = match self.host {
            Host::VhostUuid => "vhost(uuid)",
            Host::VhostPdh => "vhost(pdh)",
            Host::Download => "download",
            Host::Shared => "shared",
        };
        let p = match self.path {
            Path::VhostRoot => "/",
            Path::CUuid => "/c=<uuid>/",
            Path::CPdh => "/c=<pdh>/",
            Path::CUuidT => "/c=<uuid>/t=<token>/_/",
            Path::ByIdUuid => "/by_id/<uuid>/",
            Path::ByIdPdh => "/by_id/<pdh>/",
            Path::Users => "/users/alice/proj/A/",
        };
        write!(f, "{h}{p}")
    }
}

fn web_forms() -> Vec<Form> {
    let mut v = vec![
        Form {
            host: Host::VhostUuid,
            path: Path::VhostRoot,
        },
        Form {
            host: Host::VhostPdh,
            path: Path::VhostRoot,
        },
    ];
    for host in [Host::Download, Host::Shared] {
        for path in [
            Path::CUuid,
            Path::CPdh,
            Path::CUuidT,
            Path::ByIdUuid,
            Path::ByIdPdh,
            Path::Users,
        ] {
            v.push(Form { host, path });
        }
    }
    v
}

const METHODS: [&str; 10] = [
    "GET",
    "HEAD",
    "PROPFIND",
    "PUT",
    "DELETE",
    "MKCOL",
    "COPY",
    "MOVE",
    "PROPPATCH",
    "LOCK",
];

fn is_write(m: &str) -> bool {
    matches!(
        m,
        "PUT" | "DELETE" | "MKCOL" | "COPY" | "MOVE" | "PROPPATCH"
    )
}

/// The status of a method that succeeds on our targets (a file that exists for reads,
/// a new name for PUT/MKCOL/COPY/MOVE destinations).
fn success(m: &str) -> u16 {
    match m {
        "PROPFIND" | "PROPPATCH" => 207,
        "PUT" | "MKCOL" | "COPY" | "MOVE" => 201,
        "DELETE" => 204,
        _ => 200, // GET, HEAD, LOCK (a no-op that answers a lock token)
    }
}

/// The principal's level on the collection the form names (A by UUID, F by PDH), given a
/// valid token that reaches keep-web.
fn web_level(p: P, f: Form) -> u8 {
    match p {
        P::Owner | P::Admin => MANAGE,
        // /users/<name>/ opens alice's home project, which only alice (and admins) can
        // read: /users/ lists "the users whose home project the caller can read"
        P::Writer if f.path != Path::Users => WRITE,
        P::Reader if f.path != Path::Users => READ,
        // the scope names A's UUID: reading A by UUID is in scope; by PDH (another API
        // path) or through the /users/ tree (user and group listings) it is not
        P::Share if !f.by_pdh() && f.path != Path::Users => READ,
        _ => NONE,
    }
}

/// DESIGN §5 as a function: the status of `m` by `p` on form `f`, with
/// `[web] trust_all_content = trust`. None: the cell does not exist (the anonymous
/// principal has no token to put in a `t=` path).
fn web_expect(p: P, f: Form, m: &str, trust: bool) -> Option<u16> {
    let t_form = f.path == Path::CUuidT;
    if t_form && cred(p) == Cred::Nothing {
        return None;
    }
    // "Credentials are honoured only … on a collection vhost, on the configured
    // attachment-only download host, or when trust_all_content is set; elsewhere only
    // the anonymous token applies". A t= token "is honoured on every host".
    let honoured = t_form || f.host != Host::Shared || trust;
    let c = if honoured { cred(p) } else { Cred::Nothing };
    match c {
        // "no usable token on a private resource: 401" (A and F are private: the
        // anonymous token can't read them)
        Cred::Nothing => return Some(401),
        // an expired, revoked or unknown token is no usable token; "a bad t= token: 404"
        Cred::Invalid => return Some(if t_form { 404 } else { 401 }),
        Cred::Valid => {}
    }
    let level = web_level(p, f);
    if level == NONE {
        // "a valid token that can't see the resource … 404 (existence never leaks)"
        return Some(404);
    }
    if !is_write(m) {
        return Some(success(m));
    }
    if f.by_pdh() {
        // "any write under a PDH … 405"
        return Some(405);
    }
    if level < WRITE {
        // "a write the token may not do: 403"
        return Some(403);
    }
    Some(success(m))
}

// ---------------------------------------------------------------------------------------
// API: operations and object types
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Get,
    List,
    Create,
    Update,
    OwnerChange,
    Trash,
    Grant,
}

const OPS: [Op; 7] = [
    Op::Get,
    Op::List,
    Op::Create,
    Op::Update,
    Op::OwnerChange,
    Op::Trash,
    Op::Grant,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ty {
    /// alice's user record.
    User,
    /// a project inside `proj`.
    Project,
    /// a filter group inside `proj`.
    FilterGroup,
    /// a collection inside `proj` (for `get`: collection A, the one shared).
    Collection,
    /// a token of alice's.
    Token,
    /// a permission link (dave `can_read` on `proj`) that alice made.
    Link,
}

const TYS: [Ty; 6] = [
    Ty::User,
    Ty::Project,
    Ty::FilterGroup,
    Ty::Collection,
    Ty::Token,
    Ty::Link,
];

impl Ty {
    fn resource(self) -> &'static str {
        match self {
            Ty::User => "users",
            Ty::Project | Ty::FilterGroup => "groups",
            Ty::Collection => "collections",
            Ty::Token => "api_client_authorizations",
            Ty::Link => "links",
        }
    }
    fn singular(self) -> &'static str {
        match self {
            Ty::User => "user",
            Ty::Project | Ty::FilterGroup => "group",
            Ty::Collection => "collection",
            Ty::Token => "api_client_authorization",
            Ty::Link => "link",
        }
    }
    /// Objects that live inside `proj` (levels come down the owner chain).
    fn in_project(self) -> bool {
        matches!(self, Ty::Project | Ty::FilterGroup | Ty::Collection)
    }
}

/// The principal's level on the object of type `ty` (doc/api.md, Permissions).
fn api_level(p: P, ty: Ty) -> u8 {
    match p {
        P::Owner | P::Admin => MANAGE,
        P::Writer | P::ObjWriter if ty.in_project() => WRITE,
        P::Reader if ty.in_project() => READ,
        _ => NONE,
    }
}

/// The principal's level on `proj`, where `create` puts things.
fn api_level_on_proj(p: P) -> u8 {
    match p {
        P::Owner | P::Admin => MANAGE,
        P::Writer => WRITE,
        P::Reader => READ,
        _ => NONE,
    }
}

/// What a cell must answer: a status, and for `list` whether the object is listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Want {
    status: u16,
    listed: Option<bool>,
}

fn st(status: u16) -> Want {
    Want {
        status,
        listed: None,
    }
}

/// doc/api.md (Conventions, Errors, Permissions) as a function.
fn api_expect(p: P, op: Op, ty: Ty) -> Want {
    // "401: no token, unknown or revoked token, expired token" (here the anonymous
    // principal carries the anonymous user's token: a valid one)
    if cred(p) == Cred::Invalid {
        return st(401);
    }
    if p == P::Share {
        // "403: the token's scopes forbid the request": a sharing token may only GET
        // its collection
        return st(if (op, ty) == (Op::Get, Ty::Collection) {
            200
        } else {
            403
        });
    }
    let anonymous = p == P::Anonymous;
    let lvl = api_level(p, ty);
    // reading needs can_read, else 404; a change needs `need`, else 403 when readable
    let gate = |need: u8| {
        if lvl < READ {
            st(404)
        } else if lvl < need || anonymous {
            st(403)
        } else {
            st(200)
        }
    };
    match op {
        Op::Get => gate(READ),
        Op::List => Want {
            status: 200,
            listed: Some(lvl >= READ),
        },
        Op::Create => {
            if anonymous {
                // "The anonymous user can never write"
                return st(403);
            }
            match ty {
                // users are made by admins only
                Ty::User => st(if p == P::Admin { 200 } else { 403 }),
                // a token for alice: alice herself or an admin; others can't see alice
                Ty::Token => st(if lvl >= MANAGE { 200 } else { 404 }),
                // things in proj, and a (non-permission) link whose head is proj: need
                // can_write on proj
                _ => {
                    let l = api_level_on_proj(p);
                    st(match l {
                        NONE => 404,
                        READ => 403,
                        _ => 200,
                    })
                }
            }
        }
        Op::Update => match ty {
            // a user: only itself or an admin
            Ty::User => gate(MANAGE),
            // a permission link: can_manage on its head (or owning the link)
            Ty::Link => gate(MANAGE),
            _ => gate(WRITE),
        },
        Op::OwnerChange => match ty {
            // a token can't be given to another user (owner_uuid is not an attribute
            // a client may set on a token): 422, decided before any lookup
            Ty::Token => st(422),
            // a user's owner is fixed: 422 once the caller may change the user at all
            Ty::User => match gate(MANAGE) {
                Want { status: 200, .. } => st(422),
                w => w,
            },
            // alice's link to alice (no change) / the admin's to itself: write on both
            Ty::Link => gate(MANAGE),
            // "can_write on its current owner as well as on the new one": moving into
            // one's own home needs can_write on proj too
            _ => match gate(WRITE) {
                Want { status: 200, .. } if api_level_on_proj(p) < WRITE => st(403),
                w => w,
            },
        },
        Op::Trash => match ty {
            // deleting a user: admins only
            Ty::User => match gate(READ) {
                Want { status: 200, .. } if p != P::Admin => st(403),
                w => w,
            },
            // revoking a token: its user (it can see it) or an admin
            Ty::Token => gate(MANAGE),
            Ty::Link => gate(MANAGE),
            _ => gate(WRITE),
        },
        Op::Grant => match ty {
            // a grant is a new link: the anonymous user may not make one
            _ if anonymous => st(403),
            // a token or a link can't be the head of a permission: nothing to grant on
            Ty::Token | Ty::Link => st(404),
            // "granting needs can_manage"
            _ => gate(MANAGE),
        },
    }
}

// ---------------------------------------------------------------------------------------
// Fixture: one keep serve with users, tokens, a project and collections
// ---------------------------------------------------------------------------------------

const HELLO: &str = "hello world\n";
const FROZEN: &str = "frozen file\n";

struct Fx {
    k: Keep,
    http: reqwest::Client,
    api: String,
    admin: String,
    /// principal → its token (none for keep-web's anonymous principal)
    tokens: BTreeMap<P, String>,
    /// user uuids by name
    users: BTreeMap<&'static str, String>,
    proj: String,
    /// collection A (in proj): hello.txt plus the files the write cells consume
    a: String,
    a_name: String,
    /// collection F (in proj), never written: reached by its PDH
    f: String,
    f_pdh: String,
    hello_loc: String,
}

impl Fx {
    async fn start(extra_files: &[String]) -> Fx {
        let k = start_keep();
        let api = k.api.clone().expect("keep serve reports the api URL");
        let admin = std::fs::read_to_string(k.path("admin-token"))
            .expect("admin-token")
            .trim()
            .to_string();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut fx = Fx {
            k,
            http,
            api,
            admin: admin.clone(),
            tokens: BTreeMap::new(),
            users: BTreeMap::new(),
            proj: String::new(),
            a: String::new(),
            a_name: "A".into(),
            f: String::new(),
            f_pdh: String::new(),
            hello_loc: String::new(),
        };
        for name in ["alice", "wendy", "rita", "olga", "dave", "oscar"] {
            let (st, u) = fx
                .call(
                    "POST",
                    "/arvados/v1/users",
                    &admin,
                    json!({"user": {"username": name}}),
                )
                .await;
            assert_eq!(st, 200, "{u}");
            fx.users
                .insert(name, u["uuid"].as_str().unwrap().to_string());
        }
        for (p, name) in [
            (P::Owner, "alice"),
            (P::Writer, "wendy"),
            (P::Reader, "rita"),
            (P::Other, "olga"),
            (P::ObjWriter, "oscar"),
        ] {
            let t = fx.token_for(name, json!({})).await;
            fx.tokens.insert(p, t);
        }
        fx.tokens.insert(P::Admin, admin.clone());
        // a well-formed token the API never issued
        let bogus = keep_format::Token::generate(
            keep_format::Uuid::generate("zzzzz", keep_format::UuidKind::Token).expect("uuid"),
        );
        fx.tokens.insert(P::Bogus, bogus.expose().to_string());
        let expired = fx
            .token_for("alice", json!({"expires_at": "2001-01-01T00:00:00Z"}))
            .await;
        fx.tokens.insert(P::Expired, expired);
        let revoked = fx.token_for("alice", json!({})).await;
        let ruuid = revoked.split('/').nth(1).unwrap().to_string();
        let (st, v) = fx
            .call(
                "DELETE",
                &format!("/arvados/v1/api_client_authorizations/{ruuid}"),
                &admin,
                Value::Null,
            )
            .await;
        assert_eq!(st, 200, "{v}");
        fx.tokens.insert(P::Revoked, revoked);

        let alice = fx.tokens[&P::Owner].clone();
        let (st, g) = fx
            .call(
                "POST",
                "/arvados/v1/groups",
                &alice,
                json!({"group": {"name": "proj", "group_class": "project"}}),
            )
            .await;
        assert_eq!(st, 200, "{g}");
        fx.proj = g["uuid"].as_str().unwrap().to_string();
        let proj = fx.proj.clone();
        fx.grant("wendy", "can_write", &proj).await;
        fx.grant("rita", "can_read", &proj).await;

        fx.hello_loc = fx.put_block(&alice, HELLO.as_bytes()).await;
        let mut m = format!(". {} 0:12:hello.txt", fx.hello_loc);
        for f in extra_files {
            m.push_str(&format!(" 0:12:{f}"));
        }
        m.push('\n');
        let a = fx.collection(&alice, "A", &proj, &m).await;
        fx.a = a["uuid"].as_str().unwrap().to_string();
        let floc = fx.put_block(&alice, FROZEN.as_bytes()).await;
        let f = fx
            .collection(&alice, "F", &proj, &format!(". {floc} 0:12:f.txt\n"))
            .await;
        fx.f = f["uuid"].as_str().unwrap().to_string();
        fx.f_pdh = f["portable_data_hash"].as_str().unwrap().to_string();

        // the sharing link, made the way a user makes it
        let env = Env {
            home: tempfile::tempdir().unwrap(),
            api: fx.api.clone(),
            token: alice.clone(),
        };
        let url = env.ok(&["share", fx.a.as_str()]);
        let t = url
            .split("/t=")
            .nth(1)
            .and_then(|r| r.strip_suffix("/_/"))
            .unwrap_or_else(|| panic!("keep share printed {url}"));
        fx.tokens.insert(P::Share, t.replace("%2F", "/"));
        fx
    }

    async fn call(&self, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self.http.request(m, format!("{}{path}", self.api));
        if !token.is_empty() {
            r = r.bearer_auth(token);
        }
        if !body.is_null() {
            r = r.json(&body);
        }
        match r.send().await {
            Ok(r) => {
                let st = r.status().as_u16();
                (st, r.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (0, json!(e.to_string())),
        }
    }

    async fn token_for(&self, user: &str, extra: Value) -> String {
        let mut body = json!({"owner_uuid": self.users[user]});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                body[k] = v;
            }
        }
        let (st, t) = self
            .call(
                "POST",
                "/arvados/v1/api_client_authorizations",
                &self.admin,
                json!({"api_client_authorization": body}),
            )
            .await;
        assert_eq!(st, 200, "{t}");
        format!(
            "v2/{}/{}",
            t["uuid"].as_str().unwrap(),
            t["api_token"].as_str().unwrap()
        )
    }

    async fn grant(&self, user: &str, level: &str, head: &str) {
        let (st, l) = self
            .call(
                "POST",
                "/arvados/v1/links",
                &self.admin,
                json!({"link": {"link_class": "permission", "name": level,
                    "tail_uuid": self.users[user], "head_uuid": head}}),
            )
            .await;
        assert_eq!(st, 200, "{l}");
    }

    async fn put_block(&self, token: &str, body: &[u8]) -> String {
        let r = self
            .http
            .put(format!(
                "{}/{}",
                self.k.keepstore,
                keep_format::Hash::of(body)
            ))
            .bearer_auth(token)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap().trim().to_string()
    }

    async fn collection(&self, token: &str, name: &str, owner: &str, m: &str) -> Value {
        let (st, v) = self
            .call(
                "POST",
                "/arvados/v1/collections",
                token,
                json!({"collection": {"name": name, "owner_uuid": owner, "manifest_text": m}}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        v
    }
}

/// No token's secret (nor its base64, as a cookie carries it) is in the server's log.
fn assert_log_clean(fx: &Fx) {
    let log = fx.k.log();
    let mut leaks = Vec::new();
    for (p, t) in &fx.tokens {
        let secret = t.rsplit('/').next().unwrap_or_default();
        for line in log.lines() {
            if line.contains(secret) || line.contains(&b64(t)) {
                // shown with the secret masked: test output is a log too
                let masked = line
                    .replace(secret, "<SECRET>")
                    .replace(&b64(t), "<SECRET>");
                leaks.push(format!("{p:?}: {masked}"));
            }
        }
    }
    for l in &leaks {
        eprintln!("LOG LEAK {l}");
    }
    assert!(leaks.is_empty(), "{} log lines hold a token", leaks.len());
}

/// Checks that each write left what its status says: `(path, must exist)` per row, `has`
/// telling what exists now.
fn check_effects(what: &str, wanted: &[(&Row, Vec<(String, bool)>)], has: impl Fn(&str) -> bool) {
    let mut wrong = Vec::new();
    for (r, checks) in wanted {
        for (path, must) in checks {
            if has(path) != *must {
                wrong.push(format!(
                    "{} (answered {}): {path} {}",
                    r.cell,
                    r.got,
                    if *must { "missing" } else { "present" }
                ));
            }
        }
    }
    for w in &wrong {
        eprintln!("EFFECT {what}: {w}");
    }
    assert!(
        wrong.is_empty(),
        "{} {what} writes did not leave what their status says",
        wrong.len()
    );
}

/// One cell's outcome.
struct Row {
    /// the cell's index in its table
    i: usize,
    cell: String,
    want: String,
    got: String,
    /// the start of the answer's body (the server's reason), shown for mismatches
    note: String,
}

/// Prints the mismatches (and with MATRIX_PRINT=1 every cell); returns how many.
fn report(what: &str, rows: &[Row]) -> usize {
    let bad: Vec<&Row> = rows.iter().filter(|r| r.want != r.got).collect();
    if std::env::var_os("MATRIX_PRINT").is_some() {
        for r in rows {
            eprintln!("{what}: {}: want {}, got {}", r.cell, r.want, r.got);
        }
    }
    for r in &bad {
        eprintln!(
            "MISMATCH {what}: {}: DESIGN says {}, got {} ({})",
            r.cell, r.want, r.got, r.note
        );
    }
    bad.len()
}

/// Reports, checks the log, and fails on any mismatch.
fn conclude(what: &str, fx: &Fx, rows: &[Row]) {
    let bad = report(what, rows);
    assert_log_clean(fx);
    assert_none_bad(what, bad, rows.len());
}

fn assert_none_bad(what: &str, bad: usize, of: usize) {
    assert!(
        bad == 0,
        "{bad} of {of} {what} cells disagree with the rule (listed above as MISMATCH)"
    );
}

// ---------------------------------------------------------------------------------------
// keep-web matrix
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct WebCell {
    i: usize,
    p: P,
    f: Form,
    m: &'static str,
    trust: bool,
    want: u16,
}

fn web_cells() -> (Vec<WebCell>, usize) {
    let mut cells = Vec::new();
    let mut skipped = 0;
    for trust in [false, true] {
        for f in web_forms() {
            for p in WEB_PRINCIPALS {
                for m in METHODS {
                    match web_expect(p, f, m, trust) {
                        Some(want) => cells.push(WebCell {
                            i: cells.len(),
                            p,
                            f,
                            m,
                            trust,
                            want,
                        }),
                        None => skipped += 1,
                    }
                }
            }
        }
    }
    (cells, skipped)
}

/// What a running keep-web needs to address the fixture.
struct WebCtx {
    fx: Fx,
    port: u16,
    vhost_uuid: String,
    vhost_pdh: String,
}

impl WebCtx {
    fn host(&self, h: Host) -> String {
        match h {
            Host::VhostUuid => self.vhost_uuid.clone(),
            Host::VhostPdh => self.vhost_pdh.clone(),
            Host::Download => "127.0.0.1".into(),
            Host::Shared => "localhost".into(),
        }
    }

    /// The collection prefix the form puts before a path inside the collection.
    fn prefix(&self, c: &WebCell) -> String {
        let fx = &self.fx;
        match c.f.path {
            Path::VhostRoot => String::new(),
            Path::CUuid => format!("/c={}", fx.a),
            Path::CPdh => format!("/c={}", fx.f_pdh),
            Path::CUuidT => format!("/c={}/t={}/_", fx.a, fx.tokens[&c.p].replace('/', "%2F")),
            Path::ByIdUuid => format!("/by_id/{}", fx.a),
            Path::ByIdPdh => format!("/by_id/{}", fx.f_pdh),
            Path::Users => format!("/users/alice/proj/{}", fx.a_name),
        }
    }

    async fn run(&self, c: &WebCell) -> (String, String) {
        let host = self.host(c.f.host);
        let pre = self.prefix(c);
        let file = if c.f.by_pdh() { "f.txt" } else { "hello.txt" };
        let i = c.i;
        let path = match c.m {
            "PUT" => format!("{pre}/new-{i}.txt"),
            "MKCOL" => format!("{pre}/mk-{i}"),
            "DELETE" if !c.f.by_pdh() => format!("{pre}/del-{i}.txt"),
            "MOVE" if !c.f.by_pdh() => format!("{pre}/mv-{i}.txt"),
            // a file of its own: hello.txt keeps no dead property (a COPY of a file
            // with dead properties must write properties, which is a retry loop under
            // concurrent writers: not what this matrix is about)
            "PROPPATCH" if !c.f.by_pdh() => format!("{pre}/pp-{i}.txt"),
            _ => format!("{pre}/{file}"),
        };
        let m = reqwest::Method::from_bytes(c.m.as_bytes()).unwrap();
        let mut r = self
            .fx
            .http
            .request(m, format!("http://127.0.0.1:{}{path}", self.port))
            .header("Host", format!("{host}:{}", self.port));
        if c.f.path != Path::CUuidT {
            if let Some(t) = self.fx.tokens.get(&c.p).filter(|_| c.p != P::Anonymous) {
                r = r.bearer_auth(t);
            }
        }
        r = match c.m {
            "PUT" => r.body("x"),
            "PROPFIND" => r.header("Depth", "0"),
            "COPY" | "MOVE" => {
                let dest = if c.m == "COPY" { "cp" } else { "mvd" };
                r.header(
                    "Destination",
                    format!("http://{host}:{}{pre}/{dest}-{i}.txt", self.port),
                )
            }
            "PROPPATCH" => r.header("Content-Type", "application/xml").body(format!(
                "<?xml version=\"1.0\"?><D:propertyupdate xmlns:D=\"DAV:\" \
                 xmlns:Z=\"urn:x-keep-matrix\"><D:set><D:prop><Z:cell{i}>{i}</Z:cell{i}>\
                 </D:prop></D:set></D:propertyupdate>"
            )),
            "LOCK" => r.header("Content-Type", "application/xml").body(
                "<?xml version=\"1.0\"?><D:lockinfo xmlns:D=\"DAV:\"><D:lockscope>\
                 <D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>\
                 <D:owner>matrix</D:owner></D:lockinfo>",
            ),
            _ => r,
        };
        outcome(r).await
    }
}

/// Sends a request; its status and the start of its body (read whole: the connection
/// is reused, and the body says why).
async fn outcome(r: reqwest::RequestBuilder) -> (String, String) {
    match r.send().await {
        Ok(resp) => {
            let st = resp.status().as_u16();
            let body = resp.bytes().await.unwrap_or_default();
            (st.to_string(), snippet(&body))
        }
        Err(e) => (format!("error: {e}"), String::new()),
    }
}

fn web_port(k: &Keep) -> u16 {
    k.web
        .as_deref()
        .expect("keep serve reports the keep-web URL")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Runs cells concurrently: reads and most writes 16 at a time; PROPPATCH (which
/// retries while the collection changes under it) 4 at a time, after the rest.
async fn run_web_cells(ctx: &Arc<WebCtx>, cells: &[WebCell]) -> Vec<Row> {
    let (pp, rest): (Vec<&WebCell>, Vec<&WebCell>) = cells.iter().partition(|c| c.m == "PROPPATCH");
    let mut out = Vec::new();
    for (group, n) in [(rest, 16), (pp, 4)] {
        let t0 = Instant::now();
        let count = group.len();
        let got: Vec<Row> = stream::iter(group)
            .map(|c| {
                let ctx = ctx.clone();
                async move {
                    let (got, note) = ctx.run(c).await;
                    let cell = format!(
                        "trust_all_content={} {:<34} {:<9?} {:<9}",
                        c.trust,
                        c.f.to_string(),
                        c.p,
                        c.m
                    );
                    Row {
                        i: c.i,
                        cell,
                        want: c.want.to_string(),
                        got,
                        note,
                    }
                }
            })
            .buffer_unordered(n)
            .collect()
            .await;
        eprintln!(
            "  {count} cells, {n} at a time: {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        out.extend(got);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_web_matrix() {
    let (cells, skipped) = web_cells();
    let forms = web_forms().len();
    eprintln!(
        "keep-web matrix: {} cells = {} principals × {} path forms × 2 trust_all_content × {} methods, \
         less {skipped} (no anonymous t= token)",
        cells.len(),
        WEB_PRINCIPALS.len(),
        forms,
        METHODS.len(),
    );
    // every DELETE, MOVE and PROPPATCH cell gets a file of its own
    let mut files = Vec::new();
    for c in &cells {
        match c.m {
            "DELETE" => files.push(format!("del-{}.txt", c.i)),
            "MOVE" => files.push(format!("mv-{}.txt", c.i)),
            "PROPPATCH" => files.push(format!("pp-{}.txt", c.i)),
            _ => {}
        }
    }
    let fx = Fx::start(&files).await;
    let (hash, size) = fx.f_pdh.split_once('+').unwrap();
    let label = format!(
        "{}-{size}",
        hash.parse::<keep_format::Hash>().unwrap().to_base32()
    );
    let mut ctx = WebCtx {
        port: web_port(&fx.k),
        vhost_uuid: format!("{}.localhost", fx.a),
        vhost_pdh: format!("{label}.localhost"),
        fx,
    };
    let mut rows = Vec::new();
    for trust in [false, true] {
        if trust {
            // the harness writes the [web] table last: the setting lands in it
            let mut cfg = std::fs::read_to_string(&ctx.fx.k.config).unwrap();
            cfg.push_str("trust_all_content = true\n");
            std::fs::write(&ctx.fx.k.config, cfg).unwrap();
            ctx.fx.k.restart();
            ctx.port = web_port(&ctx.fx.k);
            ctx.fx.api = ctx.fx.k.api.clone().unwrap();
        }
        let shared = Arc::new(ctx);
        let t0 = Instant::now();
        let these: Vec<WebCell> = cells.iter().filter(|c| c.trust == trust).cloned().collect();
        rows.extend(run_web_cells(&shared, &these).await);
        eprintln!(
            "keep-web matrix: trust_all_content={trust}: {} cells in {:.1} s",
            these.len(),
            t0.elapsed().as_secs_f64()
        );
        ctx = match Arc::try_unwrap(shared) {
            Ok(c) => c,
            Err(_) => panic!("cells still running"),
        };
    }
    let bad = report("keep-web", &rows);
    effects(&ctx.fx, &cells, &rows).await;
    assert_log_clean(&ctx.fx);
    assert_none_bad("keep-web", bad, rows.len());
}

/// What the writes left behind: every write that answered 2xx did what it said, every
/// other changed nothing (its new name is absent, the file it would consume is still
/// there), and F, written only under its PDH, is unchanged.
async fn effects(fx: &Fx, cells: &[WebCell], rows: &[Row]) {
    let alice = &fx.tokens[&P::Owner];
    let (st, a) = fx
        .call(
            "GET",
            &format!("/arvados/v1/collections/{}", fx.a),
            alice,
            Value::Null,
        )
        .await;
    assert_eq!(st, 200, "{a}");
    let m = keep_format::Manifest::parse(a["manifest_text"].as_str().unwrap_or_default())
        .expect("A's manifest parses");
    let idx = keep_format::FileIndex::new(&m);
    let has = |p: &str| idx.stat(p).is_some();
    let mut wanted = Vec::new();
    for r in rows {
        let c = &cells[r.i];
        if !is_write(c.m) || c.f.by_pdh() {
            continue;
        }
        let ok = r.got.starts_with('2');
        let i = c.i;
        // (path, whether it must exist)
        let checks: Vec<(String, bool)> = match c.m {
            "PUT" => vec![(format!("new-{i}.txt"), ok)],
            "MKCOL" => vec![(format!("mk-{i}"), ok)],
            "COPY" => vec![(format!("cp-{i}.txt"), ok)],
            "MOVE" => vec![(format!("mvd-{i}.txt"), ok), (format!("mv-{i}.txt"), !ok)],
            "DELETE" => vec![(format!("del-{i}.txt"), !ok)],
            _ => vec![],
        };
        wanted.push((r, checks));
    }
    check_effects("keep-web", &wanted, has);
    let (st, f) = fx
        .call(
            "GET",
            &format!("/arvados/v1/collections/{}", fx.f),
            alice,
            Value::Null,
        )
        .await;
    assert_eq!(st, 200, "{f}");
    assert_eq!(
        f["portable_data_hash"],
        fx.f_pdh.as_str(),
        "F changed through its PDH"
    );
    assert_eq!(f["version"], 1, "F got a new version through its PDH");
}

// ---------------------------------------------------------------------------------------
// keep-web: a project's level (DESIGN §5, "In a project")
// ---------------------------------------------------------------------------------------

/// `/by_id/<proj>/` and `/users/alice/proj/` on the download host.
const PROJ_PATHS: [Path; 2] = [Path::ByIdUuid, Path::Users];
/// What can be done to a project's listing: read it, make a collection (MKCOL), trash one
/// (DELETE), rename one (MOVE), and put a file straight into the project (PUT).
const PROJ_METHODS: [&str; 6] = ["GET", "PROPFIND", "MKCOL", "DELETE", "MOVE", "PUT"];

/// DESIGN §5 for a project: "In a project: MKCOL creates an empty collection; MOVE renames
/// or re-parents a collection or project (write on old and new owner); DELETE trashes it";
/// a file can't live in a project ("any write … to a project … listing: 405").
fn proj_expect(p: P, path: Path, m: &str) -> u16 {
    match cred(p) {
        Cred::Nothing | Cred::Invalid => return 401,
        Cred::Valid => {}
    }
    let level = match p {
        P::Owner | P::Admin => MANAGE,
        // alice's home (the /users/alice/ level) is readable by alice and admins only
        P::Writer if path != Path::Users => WRITE,
        P::Reader if path != Path::Users => READ,
        // a sharing token may read its collection, nothing else
        _ => NONE,
    };
    if level == NONE {
        return 404;
    }
    match m {
        "GET" => 200,
        "PROPFIND" => 207,
        "PUT" => 405,
        _ if level < WRITE => 403,
        "DELETE" => 204,
        _ => 201, // MKCOL, MOVE
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "issue 16: project-level MKCOL/MOVE/DELETE of collections are not built yet (16 cells)"]
async fn keep_web_project_matrix() {
    let mut cells = Vec::new();
    for path in PROJ_PATHS {
        for p in WEB_PRINCIPALS {
            for m in PROJ_METHODS {
                cells.push((cells.len(), p, path, m, proj_expect(p, path, m)));
            }
        }
    }
    eprintln!(
        "keep-web project matrix: {} cells = {} principals × {} project forms × {} methods",
        cells.len(),
        WEB_PRINCIPALS.len(),
        PROJ_PATHS.len(),
        PROJ_METHODS.len()
    );
    let fx = Fx::start(&[]).await;
    let alice = fx.tokens[&P::Owner].clone();
    // a collection of its own for every DELETE and MOVE cell
    for (i, _, _, m, _) in &cells {
        if matches!(*m, "DELETE" | "MOVE") {
            fx.collection(&alice, &format!("pc-{i}"), &fx.proj, "")
                .await;
        }
    }
    let port = web_port(&fx.k);
    let fx = Arc::new(fx);
    let rows: Vec<Row> = stream::iter(cells.clone())
        .map(|(i, p, path, m, want)| {
            let fx = fx.clone();
            async move {
                let pre = match path {
                    Path::Users => "/users/alice/proj".to_string(),
                    _ => format!("/by_id/{}", fx.proj),
                };
                let target = match m {
                    "MKCOL" => format!("{pre}/new-{i}"),
                    "DELETE" | "MOVE" => format!("{pre}/pc-{i}"),
                    "PUT" => format!("{pre}/file-{i}.txt"),
                    _ => format!("{pre}/"),
                };
                let mut r = fx
                    .http
                    .request(
                        reqwest::Method::from_bytes(m.as_bytes()).unwrap(),
                        format!("http://127.0.0.1:{port}{target}"),
                    )
                    .header("Host", format!("127.0.0.1:{port}"));
                if let Some(t) = fx.tokens.get(&p).filter(|_| p != P::Anonymous) {
                    r = r.bearer_auth(t);
                }
                r = match m {
                    "PUT" => r.body("x"),
                    "PROPFIND" => r.header("Depth", "1"),
                    "MOVE" => r.header(
                        "Destination",
                        format!("http://127.0.0.1:{port}{pre}/pc-{i}-renamed"),
                    ),
                    _ => r,
                };
                let (got, note) = outcome(r).await;
                Row {
                    i,
                    cell: format!(
                        "download{:<22} {:<9?} {:<8}",
                        pre.replace(&fx.proj, "<proj>"),
                        p,
                        m
                    ),
                    want: want.to_string(),
                    got,
                    note,
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let bad = report("keep-web project", &rows);
    // what the project holds now: each 2xx did it, anything else changed nothing
    let (st, v) = fx
        .call(
            "GET",
            &format!(
                "/arvados/v1/groups/{}/contents?limit=1000&select=%5B%22name%22%5D",
                fx.proj
            ),
            &alice,
            Value::Null,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let names: Vec<&str> = v["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o["name"].as_str()).collect())
        .unwrap_or_default();
    let has = |n: &str| names.contains(&n);
    let mut wanted = Vec::new();
    for r in &rows {
        let (i, _, _, m, _) = cells[r.i];
        let ok = r.got.starts_with('2');
        let checks: Vec<(String, bool)> = match m {
            "MKCOL" => vec![(format!("new-{i}"), ok)],
            "DELETE" => vec![(format!("pc-{i}"), !ok)],
            "MOVE" => vec![(format!("pc-{i}"), !ok), (format!("pc-{i}-renamed"), ok)],
            _ => vec![],
        };
        wanted.push((r, checks));
    }
    check_effects("keep-web project", &wanted, has);
    assert_log_clean(&fx);
    assert_none_bad("keep-web project", bad, rows.len());
}

// ---------------------------------------------------------------------------------------
// keepstore: signatures end with their token (issue 11 item 5)
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KsOp {
    /// PUT a new block.
    Put,
    /// GET a block with a locator signed (by keepstore's PUT) for the principal's own
    /// token, obtained while that token was valid.
    GetOwn,
    /// HEAD of the same.
    HeadOwn,
    /// GET a block with a locator signed for alice's token.
    GetAlices,
    /// GET /index (system root token only).
    Index,
}

const KS_OPS: [KsOp; 5] = [
    KsOp::Put,
    KsOp::GetOwn,
    KsOp::HeadOwn,
    KsOp::GetAlices,
    KsOp::Index,
];

/// DESIGN §4 (keepstore) and §7: PUT needs a token; GET/HEAD need a signature for the
/// request's token and a token the API still accepts ("signatures never outlive the
/// token that asked for them"); the admin endpoints need the system root token (401
/// without a token, 403 with another: the admin's token is not it).
fn ks_expect(p: P, op: KsOp) -> u16 {
    let has_token = p != P::Anonymous;
    match op {
        KsOp::Put => {
            if has_token {
                200
            } else {
                401
            }
        }
        KsOp::Index => {
            if has_token {
                403
            } else {
                401
            }
        }
        KsOp::GetOwn | KsOp::HeadOwn => {
            if cred(p) == Cred::Valid {
                200
            } else {
                401
            }
        }
        KsOp::GetAlices => {
            if p == P::Owner {
                200
            } else {
                401
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepstore_matrix() {
    let mut fx = Fx::start(&[]).await;
    // keepstore trusts a "valid" answer about a token for 1 s instead of 30 s, so that
    // the dead tokens below, whose validity it has cached, are asked about again in time
    let cfg = std::fs::read_to_string(&fx.k.config).unwrap();
    assert!(cfg.contains("[keepstore]\n"), "{cfg}");
    let cfg = cfg.replace(
        "[keepstore]\n",
        "[keepstore]\ntoken_check_valid_for = \"1s\"\n",
    );
    std::fs::write(&fx.k.config, cfg).unwrap();
    fx.k.restart();
    fx.api = fx.k.api.clone().unwrap();
    // tokens that die after their locators were signed and read once (keepstore then
    // remembers them as valid): one expiring in 3 s, one revoked
    let expiring = fx
        .token_for(
            "alice",
            json!({"expires_at": keep_format::time::Timestamp::now()
                .checked_add(std::time::Duration::from_secs(3))
                .expect("now + 3 s")
                .to_string()}),
        )
        .await;
    let revoked = fx.token_for("alice", json!({})).await;
    fx.tokens.insert(P::Expired, expiring);
    fx.tokens.insert(P::Revoked, revoked.clone());
    let mut own = BTreeMap::new();
    for p in WEB_PRINCIPALS {
        let loc = match fx.tokens.get(&p).filter(|_| p != P::Anonymous) {
            Some(t) => {
                fx.put_block(t, format!("own block of {p:?}").as_bytes())
                    .await
            }
            // no token: the bare locator of alice's block
            None => fx
                .hello_loc
                .split("+A")
                .next()
                .unwrap_or_default()
                .to_string(),
        };
        own.insert(p, loc);
    }
    for p in [P::Expired, P::Revoked] {
        let r = fx
            .http
            .get(format!("{}/{}", fx.k.keepstore, own[&p]))
            .bearer_auth(&fx.tokens[&p])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{p:?} reads its block while it is valid");
    }
    let (st, v) = fx
        .call(
            "DELETE",
            &format!(
                "/arvados/v1/api_client_authorizations/{}",
                revoked.split('/').nth(1).unwrap_or_default()
            ),
            &fx.admin,
            Value::Null,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let mut cells = Vec::new();
    for p in WEB_PRINCIPALS {
        for op in KS_OPS {
            cells.push((cells.len(), p, op, ks_expect(p, op)));
        }
    }
    eprintln!(
        "keepstore matrix: {} cells = {} principals × {} operations",
        cells.len(),
        WEB_PRINCIPALS.len(),
        KS_OPS.len()
    );
    let fx = Arc::new(fx);
    let own = Arc::new(own);
    let rows: Vec<Row> = stream::iter(cells)
        .map(|(i, p, op, want)| {
            let fx = fx.clone();
            let own = own.clone();
            async move {
                let ks = &fx.k.keepstore;
                let body = format!("cell {i}").into_bytes();
                let r = match op {
                    KsOp::Put => fx
                        .http
                        .put(format!("{ks}/{}", keep_format::Hash::of(&body)))
                        .body(body),
                    KsOp::GetOwn => fx.http.get(format!("{ks}/{}", own[&p])),
                    KsOp::HeadOwn => fx.http.head(format!("{ks}/{}", own[&p])),
                    KsOp::GetAlices => fx.http.get(format!("{ks}/{}", fx.hello_loc)),
                    KsOp::Index => fx.http.get(format!("{ks}/index")),
                };
                let r = match fx.tokens.get(&p).filter(|_| p != P::Anonymous) {
                    Some(t) => r.bearer_auth(t),
                    None => r,
                };
                let (got, note) = outcome(r).await;
                Row {
                    i,
                    cell: format!("{:<9?} {:<9?}", p, op),
                    want: want.to_string(),
                    got,
                    note,
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    conclude("keepstore", &fx, &rows);
}

// ---------------------------------------------------------------------------------------
// keep-web: credential sources
// ---------------------------------------------------------------------------------------

/// Where a credential travels (DESIGN §5, "Credentials").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    Bearer,
    /// Basic, any non-empty user name, the token as password.
    Basic,
    /// the `api_token` cookie, base64 of the token.
    Cookie,
    /// `?api_token=`
    Query,
    /// `?api%5Ftoken=`: the same key percent-encoded (issue 11 item 7).
    QueryEncoded,
}

const SRCS: [Src; 5] = [
    Src::Bearer,
    Src::Basic,
    Src::Cookie,
    Src::Query,
    Src::QueryEncoded,
];
const SRC_PRINCIPALS: [P; 4] = [P::Owner, P::Other, P::Expired, P::Bogus];
const SRC_HOSTS: [Host; 3] = [Host::VhostUuid, Host::Download, Host::Shared];
const SRC_METHODS: [&str; 4] = ["GET", "HEAD", "PROPFIND", "PUT"];

fn src_form(host: Host) -> Form {
    Form {
        host,
        path: if host == Host::VhostUuid {
            Path::VhostRoot
        } else {
            Path::CUuid
        },
    }
}

/// DESIGN §5 for a credential sent by `src`: a query token is refused (400) where
/// credentials are not honoured, and moved into a cookie by a 303 on GET/HEAD where they
/// are ("WebDAV methods never redirect: a query token is then an ordinary credential");
/// every other case is [`web_expect`]'s.
fn src_expect(p: P, src: Src, host: Host, m: &str) -> u16 {
    let query = matches!(src, Src::Query | Src::QueryEncoded);
    if query && host == Host::Shared {
        return 400;
    }
    if query && matches!(m, "GET" | "HEAD") {
        return 303;
    }
    web_expect(p, src_form(host), m, false).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_web_credential_sources() {
    let mut cells = Vec::new();
    for p in SRC_PRINCIPALS {
        for src in SRCS {
            for host in SRC_HOSTS {
                for m in SRC_METHODS {
                    cells.push((cells.len(), p, src, host, m, src_expect(p, src, host, m)));
                }
            }
        }
    }
    eprintln!(
        "keep-web credential sources: {} cells = {} principals × {} sources × {} hosts × {} methods",
        cells.len(),
        SRC_PRINCIPALS.len(),
        SRCS.len(),
        SRC_HOSTS.len(),
        SRC_METHODS.len()
    );
    let fx = Fx::start(&[]).await;
    let port = web_port(&fx.k);
    let vhost = format!("{}.localhost", fx.a);
    let fx = Arc::new(fx);
    let rows: Vec<Row> = stream::iter(cells)
        .map(|(i, p, src, host, m, want)| {
            let fx = fx.clone();
            let vhost = vhost.clone();
            async move {
                let tok = fx.tokens[&p].clone();
                let (h, pre) = match host {
                    Host::VhostUuid => (vhost, String::new()),
                    Host::Download => ("127.0.0.1".to_string(), format!("/c={}", fx.a)),
                    _ => ("localhost".to_string(), format!("/c={}", fx.a)),
                };
                let file = if m == "PUT" {
                    format!("src-{i}.txt")
                } else {
                    "hello.txt".into()
                };
                let esc = tok.replace('/', "%2F");
                let query = match src {
                    Src::Query => format!("?x=1&api_token={esc}"),
                    Src::QueryEncoded => format!("?x=1&api%5Ftoken={esc}"),
                    _ => String::new(),
                };
                let mut r = fx
                    .http
                    .request(
                        reqwest::Method::from_bytes(m.as_bytes()).unwrap(),
                        format!("http://127.0.0.1:{port}{pre}/{file}{query}"),
                    )
                    .header("Host", format!("{h}:{port}"));
                r = match src {
                    Src::Bearer => r.bearer_auth(&tok),
                    Src::Basic => r.basic_auth("someone", Some(&tok)),
                    Src::Cookie => r.header("Cookie", format!("api_token={}", b64(&tok))),
                    _ => r,
                };
                if m == "PUT" {
                    r = r.body("x");
                } else if m == "PROPFIND" {
                    r = r.header("Depth", "0");
                }
                let (got, note) = match r.send().await {
                    Ok(resp) => {
                        let st = resp.status().as_u16();
                        let hv = |k: &str| {
                            resp.headers()
                                .get(k)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string()
                        };
                        let (loc, cookie) = (hv("location"), hv("set-cookie"));
                        let body = resp.bytes().await.unwrap_or_default();
                        let secret = tok.rsplit('/').next().unwrap_or_default();
                        let mut got = st.to_string();
                        if st == 303 {
                            // the token leaves the URL and lands in the cookie
                            let l = loc.to_ascii_lowercase();
                            if loc.contains(secret)
                                || l.contains("api_token")
                                || l.contains("api%5ftoken")
                            {
                                got.push_str(" with the token in its Location");
                            } else if !cookie.starts_with("api_token=") {
                                got.push_str(" without the api_token cookie");
                            }
                        }
                        if String::from_utf8_lossy(&body).contains(secret) {
                            got.push_str(" with the token in its body");
                        }
                        let note = format!("Location: {loc}; {}", snippet(&body));
                        (got, note.replace(secret, "<SECRET>"))
                    }
                    Err(e) => (format!("error: {e}"), String::new()),
                };
                Row {
                    i,
                    cell: format!(
                        "{:<12} {:<8?} {:<12?} {:<9}",
                        src_form(host).to_string(),
                        p,
                        src,
                        m
                    ),
                    want: want.to_string(),
                    got,
                    note,
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    conclude("keep-web credential sources", &fx, &rows);
}

// ---------------------------------------------------------------------------------------
// API matrix
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct ApiCell {
    i: usize,
    p: P,
    op: Op,
    ty: Ty,
    want: Want,
    /// the object the cell acts on
    target: String,
}

/// Does `op` change its target (so that each cell needs an object of its own)?
fn consumes(op: Op) -> bool {
    matches!(op, Op::Update | Op::OwnerChange | Op::Trash)
}

impl Fx {
    /// A fresh object of type `ty` with the relations the rule assumes; `tag` makes
    /// its name unique.
    async fn object(&self, ty: Ty, tag: &str) -> String {
        let alice = &self.tokens[&P::Owner];
        let (path, body) = match ty {
            Ty::User => (
                "/arvados/v1/users",
                json!({"user": {"username": format!("u{tag}")}}),
            ),
            Ty::Project => (
                "/arvados/v1/groups",
                json!({"group": {"name": format!("p{tag}"), "group_class": "project",
                    "owner_uuid": self.proj}}),
            ),
            Ty::FilterGroup => (
                "/arvados/v1/groups",
                json!({"group": {"name": format!("f{tag}"), "group_class": "filter",
                    "owner_uuid": self.proj,
                    "properties": {"filters": [["collections.name", "=", "none"]]}}}),
            ),
            Ty::Collection => (
                "/arvados/v1/collections",
                json!({"collection": {"name": format!("c{tag}"), "owner_uuid": self.proj,
                    "manifest_text": ""}}),
            ),
            Ty::Token => (
                "/arvados/v1/api_client_authorizations",
                json!({"api_client_authorization": {}}),
            ),
            Ty::Link => (
                "/arvados/v1/links",
                json!({"link": {"link_class": "permission", "name": "can_read",
                    "tail_uuid": self.users["dave"], "head_uuid": self.proj}}),
            ),
        };
        // users are made by the admin, everything else by alice
        let by = if ty == Ty::User { &self.admin } else { alice };
        let (st, v) = self.call("POST", path, by, body).await;
        assert_eq!(st, 200, "{ty:?}: {v}");
        v["uuid"].as_str().unwrap().to_string()
    }
}

async fn api_cells(fx: &Fx) -> Vec<ApiCell> {
    // the objects every non-consuming cell shares
    let mut fixed = BTreeMap::new();
    for ty in TYS {
        let uuid = match ty {
            Ty::User => fx.users["alice"].clone(),
            Ty::Collection => fx.a.clone(),
            _ => fx.object(ty, "fixed").await,
        };
        if ty.in_project() {
            fx.grant("oscar", "can_write", &uuid).await;
        }
        fixed.insert(ty, uuid);
    }
    let mut cells = Vec::new();
    for p in api_principals() {
        for op in OPS {
            for ty in TYS {
                let i = cells.len();
                let target = if !consumes(op) {
                    fixed[&ty].clone()
                } else if ty == Ty::User {
                    // alice herself, except where the cell would delete her
                    if (op, p) == (Op::Trash, P::Admin) {
                        fx.object(ty, &i.to_string()).await
                    } else {
                        fx.users["alice"].clone()
                    }
                } else {
                    let u = fx.object(ty, &i.to_string()).await;
                    if ty.in_project() && p == P::ObjWriter {
                        fx.grant("oscar", "can_write", &u).await;
                    }
                    u
                };
                cells.push(ApiCell {
                    i,
                    p,
                    op,
                    ty,
                    want: api_expect(p, op, ty),
                    target,
                });
            }
        }
    }
    cells
}

/// The principal's own user UUID (where owner changes move things to).
fn home(fx: &Fx, p: P, admin_uuid: &str, anon_uuid: &str) -> String {
    match p {
        P::Owner | P::Share | P::Expired | P::Revoked | P::Bogus => fx.users["alice"].clone(),
        P::Writer => fx.users["wendy"].clone(),
        P::Reader => fx.users["rita"].clone(),
        P::Other => fx.users["olga"].clone(),
        P::ObjWriter => fx.users["oscar"].clone(),
        P::Admin => admin_uuid.to_string(),
        P::Anonymous => anon_uuid.to_string(),
    }
}

async fn run_api_cell(fx: &Fx, c: &ApiCell, homes: &BTreeMap<P, String>) -> (String, String) {
    let tok = fx.tokens.get(&c.p).cloned().unwrap_or_default();
    let res = c.ty.resource();
    let one = format!("/arvados/v1/{res}/{}", c.target);
    let sing = c.ty.singular();
    let i = c.i;
    let (method, path, body) = match c.op {
        Op::Get => ("GET", one, Value::Null),
        Op::List => {
            let filters = json!([["uuid", "=", c.target]]).to_string();
            let q: String = url_encode(&filters);
            ("GET", format!("/arvados/v1/{res}?filters={q}"), Value::Null)
        }
        Op::Create => {
            let body = match c.ty {
                Ty::User => json!({"user": {"username": format!("new{i}")}}),
                Ty::Project => json!({"group": {"name": format!("new{i}"),
                    "group_class": "project", "owner_uuid": fx.proj}}),
                Ty::FilterGroup => json!({"group": {"name": format!("new{i}"),
                    "group_class": "filter", "owner_uuid": fx.proj,
                    "properties": {"filters": [["collections.name", "=", "none"]]}}}),
                Ty::Collection => json!({"collection": {"name": format!("new{i}"),
                    "owner_uuid": fx.proj, "manifest_text": ""}}),
                Ty::Token => json!({"api_client_authorization": {
                    "owner_uuid": fx.users["alice"]}}),
                Ty::Link => json!({"link": {"link_class": "tag", "name": format!("new{i}"),
                    "tail_uuid": fx.users["dave"], "head_uuid": fx.proj}}),
            };
            ("POST", format!("/arvados/v1/{res}"), body)
        }
        Op::Update => {
            let patch = match c.ty {
                Ty::User => json!({"first_name": format!("F{i}")}),
                Ty::Token => json!({"expires_at": "2099-01-01T00:00:00Z"}),
                Ty::Link => json!({"properties": {"cell": i}}),
                _ => json!({"description": format!("cell {i}")}),
            };
            ("PATCH", one, json!({ sing: patch }))
        }
        Op::OwnerChange => ("PATCH", one, json!({ sing: {"owner_uuid": homes[&c.p]} })),
        Op::Trash => ("DELETE", one, Value::Null),
        Op::Grant => (
            "POST",
            "/arvados/v1/links".to_string(),
            json!({"link": {"link_class": "permission", "name": "can_read",
                "tail_uuid": fx.users["dave"], "head_uuid": c.target}}),
        ),
    };
    let (st, v) = fx.call(method, &path, &tok, body).await;
    if c.op == Op::List && st == 200 {
        let listed = v["items"]
            .as_array()
            .is_some_and(|a| a.iter().any(|o| o["uuid"] == c.target.as_str()));
        return (format!("200 listed={listed}"), String::new());
    }
    (st.to_string(), snippet(v.to_string().as_bytes()))
}

/// The first 160 bytes of a body, on one line.
fn snippet(body: &[u8]) -> String {
    let t = String::from_utf8_lossy(&body[..body.len().min(160)]);
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn show(w: Want) -> String {
    match w.listed {
        Some(l) => format!("{} listed={l}", w.status),
        None => w.status.to_string(),
    }
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_matrix() {
    let mut fx = Fx::start(&[]).await;
    let anon = std::fs::read_to_string(fx.k.path("anonymous-token"))
        .expect("keep serve keeps keep-web's anonymous token in DIR/anonymous-token")
        .trim()
        .to_string();
    fx.tokens.insert(P::Anonymous, anon.clone());
    let mut homes = BTreeMap::new();
    let (st, admin_user) = fx
        .call("GET", "/arvados/v1/users/current", &fx.admin, Value::Null)
        .await;
    assert_eq!(st, 200);
    let (st, anon_user) = fx
        .call("GET", "/arvados/v1/users/current", &anon, Value::Null)
        .await;
    assert_eq!(st, 200, "{anon_user}");
    for p in api_principals() {
        homes.insert(
            p,
            home(
                &fx,
                p,
                admin_user["uuid"].as_str().unwrap(),
                anon_user["uuid"].as_str().unwrap(),
            ),
        );
    }
    let t0 = Instant::now();
    let cells = api_cells(&fx).await;
    eprintln!(
        "API matrix: {} cells = {} principals × {} operations × {} object types (setup {:.1} s)",
        cells.len(),
        api_principals().len(),
        OPS.len(),
        TYS.len(),
        t0.elapsed().as_secs_f64()
    );
    let t0 = Instant::now();
    let fx = Arc::new(fx);
    let homes = Arc::new(homes);
    let rows: Vec<Row> = stream::iter(cells)
        .map(|c| {
            let fx = fx.clone();
            let homes = homes.clone();
            async move {
                let (got, note) = run_api_cell(&fx, &c, &homes).await;
                Row {
                    i: c.i,
                    cell: format!("{:<9?} {:<11?} {:<11?}", c.p, c.op, c.ty),
                    want: show(c.want),
                    got,
                    note,
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    eprintln!("API matrix: ran in {:.1} s", t0.elapsed().as_secs_f64());
    let bad = report("API", &rows);
    assert_none_bad("API", bad, rows.len());
}
