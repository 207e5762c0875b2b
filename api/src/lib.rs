//! keep-api: Keep's metadata server (DESIGN §3–§4, issue 3).
//!
//! Users, API tokens, projects / filter groups / roles, collections (with their version
//! history) and permission links, stored in RocksDB behind a small [`store::Store`]
//! trait, served as Arvados-shaped REST JSON under `/arvados/v1/`.
//!
//! Layers, each importing only from those above it in this list (`scripts/modgraph api`
//! checks that there is no cycle):
//! - `error`, `limits`, `metrics`; `store` (key-value trait, RocksDB and in-memory
//!   backends);
//! - `records` (the typed, versioned records), `db` (records with their indexes,
//!   migration), `core` (configuration and shared state);
//! - `auth` (tokens, scopes), `perm` (who may do what), `list` (filters, order,
//!   pagination), `params` (request parameters and typed patches), `rules` (ownership
//!   and names), `replace` (`replace_files` manifest editing);
//! - one module per resource (`users`, `tokens`, `links`, `groups`, `collections`,
//!   `contents`);
//! - `http` (routes, the async shell around the blocking handlers), and this file.

#![forbid(unsafe_code)]

use std::sync::Arc;

use keep_format::{Token, UuidKind};

mod auth;
mod collections;
mod contents;
mod core;
pub mod db;
mod error;
mod groups;
mod http;
pub mod limits;
mod links;
mod list;
mod metrics;
mod params;
mod perm;
pub mod records;
mod replace;
mod rules;
pub mod store;
mod tokens;
mod users;

pub use crate::core::Config;
pub use crate::error::Error;
pub use crate::store::StoreOptions;

use crate::core::Core;
use crate::records::{GroupClass, Record};
use crate::store::{Op, Table};

/// The API server: cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Api {
    core: Arc<Core>,
}

impl Api {
    /// Opens (or creates) the database with the default [`StoreOptions`], and brings
    /// its records to the current format. Blocking: call it before starting the server
    /// or from `spawn_blocking`.
    pub fn open(config: Config) -> Result<Api, Error> {
        Api::open_with(config, &StoreOptions::default())
    }

    /// [`Api::open`] with chosen RocksDB bounds (memory, WAL).
    pub fn open_with(config: Config, opts: &StoreOptions) -> Result<Api, Error> {
        let store = store::RocksStore::open_with(&config.db_path, true, opts)?;
        Api::with_store(config, Box::new(store))
    }

    /// Runs on any [`store::Store`] (e.g. [`store::MemStore`] in tests).
    pub fn with_store(config: Config, store: Box<dyn store::Store>) -> Result<Api, Error> {
        Ok(Api {
            core: Arc::new(Core::new(config, store)?),
        })
    }

    /// First start: creates the system user, the anonymous user and public role, the
    /// admin user and an admin token, and returns that token. `None` if the cluster
    /// already had its admin. Blocking.
    pub fn bootstrap(&self) -> Result<Option<Token>, Error> {
        bootstrap(&self.core)
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

/// The well-known records (system user, anonymous user, public role) that are missing,
/// staged in `ops`.
fn stage_well_known(core: &Core, ops: &mut Vec<Op>) -> Result<(), Error> {
    let sys = &core.system_user;
    for (uuid, username, first, admin) in [
        (sys, "root", "System", true),
        (&core.anonymous_user, "anonymous", "Anonymous", false),
    ] {
        if core.db.get::<records::User>(uuid)?.is_none() {
            let mut u = users::new_user(uuid, sys, sys, username, first);
            u.is_admin = admin;
            u.touch(sys);
            core.db.stage(ops, None, Some(&u))?;
        }
    }
    if core.db.get::<records::Group>(&core.public_group)?.is_none() {
        let mut g = groups::new_group(&core.public_group, sys, sys, "Public", GroupClass::Role);
        g.description = Some("Everyone, including the anonymous user, is a reader of this role: grant it can_read to make something world-readable.".into());
        g.touch(sys);
        core.db.stage(ops, None, Some(&g))?;
    }
    Ok(())
}

fn bootstrap(core: &Core) -> Result<Option<Token>, Error> {
    let _g = core.lock();
    let mut ops = Vec::new();
    stage_well_known(core, &mut ops)?;
    if core.db.meta("admin_user")?.is_some() {
        if !ops.is_empty() {
            core.db.store.write(ops)?;
        }
        return Ok(None);
    }
    let sys = &core.system_user;
    let admin_uuid = core.new_uuid(UuidKind::User)?;
    let mut admin = users::new_user(&admin_uuid, sys, sys, "admin", "Admin");
    admin.is_admin = true;
    admin.touch(sys);
    core.db.stage(&mut ops, None, Some(&admin))?;
    let (tok, rec) = tokens::new_token_record(core, &admin_uuid, sys, vec!["all".into()], None)?;
    core.db.stage(&mut ops, None, Some(&rec))?;
    ops.push(Op::Put(
        Table::Meta,
        b"admin_user".to_vec(),
        admin_uuid.clone().into_bytes(),
    ));
    core.db.store.write(ops)?;
    tracing::info!(admin = %admin_uuid, "bootstrapped the cluster's admin user and token");
    Ok(Some(tok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_once() {
        let api = Api {
            core: std::sync::Arc::new(crate::core::tests::mem_core()),
        };
        let t = api.bootstrap().unwrap();
        assert!(t.is_some());
        assert!(api.bootstrap().unwrap().is_none());
        let c = &api.core;
        assert!(c
            .db
            .get::<records::User>(&c.anonymous_user)
            .unwrap()
            .is_some());
        assert!(c
            .db
            .get::<records::Group>(&c.public_group)
            .unwrap()
            .is_some());
        assert!(c.db.user_by_name("admin").unwrap().is_some());
    }
}
