//! keepstore: Keep's block server.
//!
//! Blocks are stored by their BLAKE3 hash on one or more [`Volume`]s (local directories
//! by default), each with a BLAKE3 outboard tree beside it so that every byte sent is
//! verified first, and a `Range` read touches only the 16 KiB groups it needs.
//!
//! Public interface used by `keep serve` (cli/src/serve.rs):
//! [`Config`], [`Keepstore::open`], [`Keepstore::configure`], [`Keepstore::run_sweeper`].
//!
//! Routes (see DESIGN §4): `PUT /<hash>`, `GET`/`HEAD /<locator>`, admin-token
//! `GET /index[/<prefix>]`, `GET /mounts`, `PUT /trash`, `PUT /untrash/<locator>`,
//! management-token `GET /_health/ping`, `GET /metrics`.

mod admin;
mod auth;
mod error;
mod get;
mod metrics;
mod put;
mod range;
pub mod volume;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::web;
use keep_format::{BlobSigner, Hash};

pub use error::Error;
pub use volume::{
    rendezvous_order, BlockMeta, BlockReader, BlockWriter, LocalVolume, Space, Volume,
};

use metrics::Metrics;

/// Everything keepstore needs from the config file.
#[derive(Clone, Debug)]
pub struct Config {
    /// Local directories holding blocks; blocks are placed by rendezvous hashing.
    pub volumes: Vec<PathBuf>,
    /// Signs locators on PUT, checks them on GET/HEAD.
    pub signer: BlobSigner,
    /// The cluster's system root token: required for index, mounts, trash, untrash.
    pub admin_token: String,
    /// Required (as Bearer) for `/_health/ping` and `/metrics`.
    pub management_token: String,
    /// How long a trashed block stays recoverable.
    pub trash_lifetime: Duration,
    /// How often the sweeper deletes expired trash.
    pub trash_check_interval: Duration,
}

/// The block server. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Keepstore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub volumes: Vec<Arc<dyn Volume>>,
    pub signer: BlobSigner,
    pub admin_token: String,
    pub management_token: String,
    pub trash_lifetime: Duration,
    pub trash_check_interval: Duration,
    pub metrics: Metrics,
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Keepstore {
    /// Creates or checks every volume directory, removes leftover temp files, and loads
    /// (or generates) each volume's id.
    pub fn open(config: Config) -> Result<Keepstore, Error> {
        if config.volumes.is_empty() {
            return Err(Error::Volume {
                path: "(none)".into(),
                why: "no volume configured: list at least one directory in [keepstore] volumes"
                    .into(),
            });
        }
        let mut volumes: Vec<Arc<dyn Volume>> = Vec::new();
        for path in &config.volumes {
            let v = LocalVolume::open(path)?;
            if let Some(other) = volumes.iter().find(|o| o.id() == v.id()) {
                return Err(Error::Volume {
                    path: path.display().to_string(),
                    why: format!(
                        "it has the same volume id as {} (the same directory listed twice, or a copied {}): list each directory once",
                        other.path(),
                        ".keep-volume-id"
                    ),
                });
            }
            tracing::info!(volume = v.id(), path = %path.display(), "keepstore volume ready");
            volumes.push(Arc::new(v));
        }
        Ok(Self::with_volumes(config, volumes))
    }

    /// Like [`Keepstore::open`] but with volumes already opened (any [`Volume`]
    /// implementation); `config.volumes` is ignored.
    pub fn with_volumes(config: Config, volumes: Vec<Arc<dyn Volume>>) -> Keepstore {
        Keepstore {
            inner: Arc::new(Inner {
                volumes,
                signer: config.signer,
                admin_token: config.admin_token,
                management_token: config.management_token,
                trash_lifetime: config.trash_lifetime,
                trash_check_interval: config.trash_check_interval,
                metrics: Metrics::new(),
            }),
        }
    }

    /// The volumes, in configuration order.
    pub fn volumes(&self) -> &[Arc<dyn Volume>] {
        &self.inner.volumes
    }

    /// Registers every keepstore route.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let ks = web::Data::new(self.clone());
        let counted = self.clone();
        cfg.service(
            web::scope("")
                .app_data(ks)
                .app_data(web::PayloadConfig::new(64 << 20))
                .wrap(from_fn(move |req, next| {
                    count_requests(counted.clone(), req, next)
                }))
                .route("/_health/ping", web::get().to(admin::health))
                .route("/metrics", web::get().to(admin::metrics))
                .route("/index", web::get().to(admin::index_all))
                .route("/index/{prefix}", web::get().to(admin::index_prefix))
                .route("/mounts", web::get().to(admin::mounts))
                .route("/trash", web::put().to(admin::trash))
                .route("/untrash/{locator}", web::put().to(admin::untrash))
                .route("/{locator}", web::put().to(put::put_block))
                .route("/{locator}", web::get().to(get::get_block))
                .route("/{locator}", web::head().to(get::get_block)),
        );
    }

    /// Loops forever, deleting expired trash every `trash_check_interval`.
    pub async fn run_sweeper(self) {
        let every = self
            .inner
            .trash_check_interval
            .max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(every).await;
            match self.sweep_trash().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "keepstore: deleted expired trash"),
                Err(e) => tracing::error!(error = %e, "keepstore: emptying the trash failed"),
            }
        }
    }

    /// Deletes every trashed block whose deadline has passed, now. Returns how many.
    pub async fn sweep_trash(&self) -> Result<usize, Error> {
        let vols = self.inner.volumes.clone();
        tokio::task::spawn_blocking(move || {
            let now = unix_now();
            let mut n = 0;
            let mut first_err = None;
            for v in &vols {
                match v.empty_trash(now) {
                    Ok(k) => n += k,
                    Err(e) => {
                        tracing::error!(volume = v.id(), error = %e, "emptying trash");
                        first_err.get_or_insert(e);
                    }
                }
            }
            match first_err {
                Some(e) if n == 0 => Err(e),
                _ => Ok(n),
            }
        })
        .await?
    }

    /// The volumes in the order to try for `hash` (rendezvous hashing).
    pub(crate) fn order(&self, hash: &Hash) -> Vec<Arc<dyn Volume>> {
        let ids: Vec<&str> = self.inner.volumes.iter().map(|v| v.id()).collect();
        rendezvous_order(hash, &ids)
            .into_iter()
            .map(|i| self.inner.volumes[i].clone())
            .collect()
    }
}

async fn count_requests(
    ks: Keepstore,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let method = req.method().as_str().to_string();
    let res = next.call(req).await;
    let code = match &res {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    ks.inner.metrics.request(&method, code);
    res
}
