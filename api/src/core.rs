//! The server's state: its configuration, the database, the write lock and the
//! well-known UUIDs. Every handler gets a `&Core`.

use std::path::PathBuf;

use keep_format::{BlobSigner, Uuid, UuidKind};
use parking_lot::{Mutex, MutexGuard};

use crate::db::Db;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::store::Store;

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
    /// Copies of each block a client writes when a collection does not say
    /// (`[cluster] default_replication`), returned by `GET /arvados/v1/config`.
    pub default_replication: u32,
}

pub struct Core {
    pub cfg: Config,
    pub db: Db,
    write_lock: Mutex<()>,
    pub metrics: Metrics,
    pub system_user: String,
    pub anonymous_user: String,
    pub public_group: String,
}

impl Core {
    /// The server's state on `store`, whose records are brought to the current format.
    pub fn new(cfg: Config, store: Box<dyn Store>) -> Result<Core, Error> {
        let cl = cfg.cluster_id.as_str();
        let bad = |e: keep_format::Error| {
            Error::input(format!("cluster_id {cl:?} is not 5 characters [a-z0-9]"), e)
        };
        let system_user = Uuid::with_tail(cl, UuidKind::User, "000000000000000")
            .map_err(bad)?
            .to_string();
        let anonymous_user = Uuid::anonymous(cl).map_err(bad)?.to_string();
        let public_group = Uuid::with_tail(cl, UuidKind::Group, "anonymouspublic")
            .map_err(bad)?
            .to_string();
        let db = Db { store };
        db.migrate().map_err(|e| match e {
            Error::StoreFormat(m) => {
                Error::StoreFormat(format!("{m} (database at {})", cfg.db_path.display()))
            }
            other => other,
        })?;
        Ok(Core {
            cfg,
            db,
            write_lock: Mutex::new(()),
            metrics: Metrics::default(),
            system_user,
            anonymous_user,
            public_group,
        })
    }

    pub fn cluster(&self) -> &str {
        &self.cfg.cluster_id
    }

    pub fn new_uuid(&self, kind: UuidKind) -> Result<String, Error> {
        Uuid::generate(self.cluster(), kind)
            .map(|u| u.to_string())
            .map_err(|e| Error::internal("generating a UUID", e))
    }

    /// Serializes every read-modify-write (the store itself is safe for readers).
    /// A `parking_lot` mutex: a panic while it is held cannot poison it, so one bad
    /// request never wedges the writes of every other (issue 11 item 3).
    pub fn lock(&self) -> MutexGuard<'_, ()> {
        self.write_lock.lock()
    }
}

#[cfg(test)]
pub(crate) mod tests {
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
            default_replication: 1,
        }
    }

    /// A server state on an in-memory store.
    pub fn mem_core() -> Core {
        Core::new(config(), Box::new(crate::store::MemStore::default())).unwrap()
    }
}
