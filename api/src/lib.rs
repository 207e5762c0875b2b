//! keep-api: Keep's metadata server (DESIGN §3–§4, issue 3).
//!
//! Users, API tokens, projects / filter groups / roles, collections (with their version
//! history) and permission links, stored in RocksDB behind a small [`store::Store`]
//! trait, served as Arvados-shaped REST JSON under `/arvados/v1/`.
//!
//! Layout: `store` (key-value trait, RocksDB and in-memory backends), `db` (records and
//! indexes), `auth` (tokens, scopes), `perm` (who may do what), `list` (filters, order,
//! pagination), one module per resource, and `http` (routes, the async shell around the
//! blocking core).

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use keep_format::{BlobSigner, Token, Uuid, UuidKind};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

mod auth;
mod collections;
pub mod db;
mod error;
mod groups;
mod http;
pub mod limits;
mod links;
mod list;
mod metrics;
mod perm;
pub mod store;
pub mod time;
mod tokens;
mod users;

pub use error::Error;

use db::{Db, Obj};
use store::{Op, Table};

/// What `keep serve` hands the API server.
pub struct Config {
    /// 5 characters `[a-z0-9]`, the first part of every UUID.
    pub cluster_id: String,
    /// RocksDB directory (created if missing).
    pub db_path: PathBuf,
    /// Signs (and checks) block locators in manifests.
    pub signer: BlobSigner,
    /// A bare secret that acts as the system (admin) user. Empty: disabled.
    pub system_root_token: String,
    /// Bearer token for `/_health/ping` and `/metrics`. Empty: those answer 404.
    pub management_token: String,
    /// Returned by `GET /arvados/v1/config`.
    pub keepstore_urls: Vec<String>,
    /// keep-web's external URL, returned by `GET /arvados/v1/config`.
    pub web_url: String,
}

/// The API server: cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Api {
    core: Arc<Core>,
}

pub(crate) struct Core {
    pub cfg: Config,
    pub db: Db,
    write_lock: Mutex<()>,
    pub metrics: metrics::Metrics,
    pub system_user: String,
    pub anonymous_user: String,
    pub public_group: String,
}

impl Api {
    /// Opens (or creates) the database. Blocking: call it before starting the server or
    /// from `spawn_blocking`.
    pub fn open(config: Config) -> Result<Api, Error> {
        let store = store::RocksStore::open(&config.db_path, true)?;
        Api::with_store(config, Box::new(store))
    }

    /// Runs on any [`store::Store`] (e.g. [`store::MemStore`] in tests).
    pub fn with_store(config: Config, store: Box<dyn store::Store>) -> Result<Api, Error> {
        let cl = config.cluster_id.as_str();
        let bad = |e: keep_format::Error| {
            Error::Internal(format!(
                "cluster_id {cl:?} is not 5 characters [a-z0-9]: {e}"
            ))
        };
        let system_user = Uuid::with_tail(cl, UuidKind::User, "000000000000000")
            .map_err(bad)?
            .to_string();
        let anonymous_user = Uuid::anonymous(cl).map_err(bad)?.to_string();
        let public_group = Uuid::with_tail(cl, UuidKind::Group, "anonymouspublic")
            .map_err(bad)?
            .to_string();
        let db = Db { store };
        match db.meta("format")? {
            None => db.store.write(vec![Op::Put(
                Table::Meta,
                b"format".to_vec(),
                db::RECORD_FORMAT.to_string().into_bytes(),
            )])?,
            Some(v) if v == db::RECORD_FORMAT.to_string() => {}
            Some(v) => {
                return Err(Error::Store(format!(
                "the database at {} uses record format {v}; this server knows {} (upgrade keep)",
                config.db_path.display(),
                db::RECORD_FORMAT
            )))
            }
        }
        Ok(Api {
            core: Arc::new(Core {
                cfg: config,
                db,
                write_lock: Mutex::new(()),
                metrics: metrics::Metrics::default(),
                system_user,
                anonymous_user,
                public_group,
            }),
        })
    }

    /// First start: creates the system user, the anonymous user and public role, the
    /// admin user and an admin token, and returns that token. `None` if the cluster
    /// already had its admin. Blocking.
    pub fn bootstrap(&self) -> Result<Option<Token>, Error> {
        self.core.bootstrap()
    }

    /// Registers every route (`/arvados/v1/…`, `/_health/ping`, `/metrics`).
    pub fn configure(&self, cfg: &mut actix_web::web::ServiceConfig) {
        http::configure(self.core.clone(), cfg)
    }

    /// The anonymous user's UUID (`<cluster>-tpzed-anonymouspublic`).
    pub fn anonymous_user_uuid(&self) -> &str {
        &self.core.anonymous_user
    }

    /// The public role (`<cluster>-j7d0g-anonymouspublic`): grant it `can_read` to make
    /// something world-readable.
    pub fn public_group_uuid(&self) -> &str {
        &self.core.public_group
    }

    /// Creates an API token for `user_uuid` (e.g. keep-web's anonymous token for the
    /// anonymous user). Blocking.
    pub fn create_token(
        &self,
        user_uuid: &str,
        scopes: Option<Vec<String>>,
        expires_at: Option<String>,
    ) -> Result<Token, Error> {
        tokens::create_for(&self.core, user_uuid, scopes, expires_at)
    }
}

impl Core {
    pub fn cluster(&self) -> &str {
        &self.cfg.cluster_id
    }

    pub fn new_uuid(&self, kind: UuidKind) -> Result<String, Error> {
        Uuid::generate(self.cluster(), kind)
            .map(|u| u.to_string())
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// Serializes every read-modify-write (the store itself is safe for readers).
    /// A `parking_lot` mutex: a panic while it is held cannot poison it, so one bad
    /// request never wedges the writes of every other (issue 11 item 3).
    pub fn lock(&self) -> MutexGuard<'_, ()> {
        self.write_lock.lock()
    }

    /// Stamps `modified_*` and the etag.
    pub fn touch(&self, o: &mut Obj, by: &str, now: &str) {
        o.insert("modified_at".into(), json!(now));
        o.insert("modified_by_user_uuid".into(), json!(by));
        o.remove("etag");
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(o).unwrap_or_default());
        o.insert("etag".into(), json!(hex::encode(&h.finalize()[..12])));
    }

    /// A new record with the common fields set.
    pub fn new_record(&self, uuid: &str, owner: &str, by: &str) -> Obj {
        let now = time::now();
        let mut o = Obj::new();
        o.insert("uuid".into(), json!(uuid));
        o.insert("kind".into(), json!(db::kind_of(uuid)));
        o.insert("owner_uuid".into(), json!(owner));
        o.insert("created_at".into(), json!(now));
        o.insert("modified_at".into(), json!(now));
        o.insert("modified_by_user_uuid".into(), json!(by));
        o
    }

    fn bootstrap(&self) -> Result<Option<Token>, Error> {
        let _g = self.lock();
        let mut ops = Vec::new();
        let sys = self.system_user.clone();
        let mk_user = |uuid: &str, username: &str, first: &str, admin: bool| {
            let mut u = self.new_record(uuid, &sys, &sys);
            u.insert("username".into(), json!(username));
            u.insert("email".into(), Value::Null);
            u.insert("first_name".into(), json!(first));
            u.insert("last_name".into(), json!(""));
            u.insert("full_name".into(), json!(first));
            u.insert("is_admin".into(), json!(admin));
            u.insert("is_active".into(), json!(true));
            u.insert("prefs".into(), json!({}));
            let now = time::now();
            self.touch(&mut u, &sys, &now);
            u
        };
        if self.db.get(&self.system_user)?.is_none() {
            let u = mk_user(&self.system_user, "root", "System", true);
            self.db.stage(&mut ops, Table::Users, None, Some(&u))?;
        }
        if self.db.get(&self.anonymous_user)?.is_none() {
            let u = mk_user(&self.anonymous_user, "anonymous", "Anonymous", false);
            self.db.stage(&mut ops, Table::Users, None, Some(&u))?;
        }
        if self.db.get(&self.public_group)?.is_none() {
            let mut g = self.new_record(&self.public_group, &sys, &sys);
            g.insert("name".into(), json!("Public"));
            g.insert("group_class".into(), json!("role"));
            g.insert(
                "description".into(),
                json!("Everyone, including the anonymous user, is a reader of this role: grant it can_read to make something world-readable."),
            );
            g.insert("properties".into(), json!({}));
            g.insert("is_trashed".into(), json!(false));
            g.insert("trash_at".into(), Value::Null);
            g.insert("delete_at".into(), Value::Null);
            let now = time::now();
            self.touch(&mut g, &sys, &now);
            self.db.stage(&mut ops, Table::Groups, None, Some(&g))?;
        }
        if self.db.meta("admin_user")?.is_some() {
            if !ops.is_empty() {
                self.db.store.write(ops)?;
            }
            return Ok(None);
        }
        let admin_uuid = self.new_uuid(UuidKind::User)?;
        let admin = mk_user(&admin_uuid, "admin", "Admin", true);
        self.db.stage(&mut ops, Table::Users, None, Some(&admin))?;
        let (tok, rec) =
            tokens::new_token_record(self, &admin_uuid, &sys, vec!["all".into()], None)?;
        self.db.stage(&mut ops, Table::Tokens, None, Some(&rec))?;
        ops.push(Op::Put(
            Table::Meta,
            b"admin_user".to_vec(),
            admin_uuid.clone().into_bytes(),
        ));
        self.db.store.write(ops)?;
        tracing::info!(admin = %admin_uuid, "bootstrapped the cluster's admin user and token");
        Ok(Some(tok))
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use keep_format::SigningKey;
    use std::time::Duration;

    pub fn config() -> Config {
        Config {
            cluster_id: "zzzzz".into(),
            db_path: PathBuf::from("/nonexistent"),
            signer: BlobSigner::new(SigningKey::new("test-key"), Duration::from_secs(3600)),
            system_root_token: "rootsecret".into(),
            management_token: "mgmt".into(),
            keepstore_urls: vec!["http://127.0.0.1:25107".into()],
            web_url: "http://127.0.0.1:9002".into(),
        }
    }

    pub fn mem_api() -> Api {
        Api::with_store(config(), Box::new(store::MemStore::default())).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_once() {
        let api = testutil::mem_api();
        let t = api.bootstrap().unwrap();
        assert!(t.is_some());
        assert!(api.bootstrap().unwrap().is_none());
        let c = &api.core;
        assert!(c.db.get(&c.anonymous_user).unwrap().is_some());
        assert!(c.db.get(&c.public_group).unwrap().is_some());
        assert!(c.db.user_by_name("admin").unwrap().is_some());
    }
}
