//! The block server's state and configuration: [`Keepstore`] (volumes, signer, token
//! checks, pull queue, metrics) and [`Config`]. Its routes are in `routes`, its
//! handlers in `get`, `put`, `admin`; they depend on this module, never the reverse.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use keep_format::{BlobSigner, Hash};

use crate::metrics::Metrics;
use crate::volume::{rendezvous_order, LocalVolume, Volume};
use crate::{pull, s3, tokencheck, Error, TokenCheckConfig};

/// One `[keepstore] volumes` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeConfig {
    /// A local directory.
    Directory(PathBuf),
    /// An S3 bucket (and prefix).
    S3(s3::S3Config),
}

impl From<PathBuf> for VolumeConfig {
    fn from(p: PathBuf) -> Self {
        VolumeConfig::Directory(p)
    }
}

impl From<&std::path::Path> for VolumeConfig {
    fn from(p: &std::path::Path) -> Self {
        VolumeConfig::Directory(p.to_path_buf())
    }
}

/// Everything keepstore needs from the config file.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where blocks live; blocks are placed by rendezvous hashing over the volumes.
    pub volumes: Vec<VolumeConfig>,
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
    /// How a `GET`/`HEAD`'s token is checked with the API (revocation and expiry reach
    /// blocks). `None`: signatures alone decide (only for a keepstore without an API,
    /// such as in tests).
    pub token_check: Option<TokenCheckConfig>,
}

impl Config {
    /// A config with every other setting at its default: trash kept 14 days, swept
    /// hourly, no token check.
    pub fn new(
        volumes: Vec<VolumeConfig>,
        signer: BlobSigner,
        admin_token: String,
        management_token: String,
    ) -> Config {
        Config {
            volumes,
            signer,
            admin_token,
            management_token,
            trash_lifetime: Duration::from_secs(14 * 86400),
            trash_check_interval: Duration::from_secs(3600),
            token_check: None,
        }
    }
}

/// The block server. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Keepstore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub volumes: Vec<Arc<dyn Volume>>,
    pub signer: BlobSigner,
    pub admin_token: String,
    pub management_token: String,
    pub trash_lifetime: Duration,
    pub trash_check_interval: Duration,
    pub tokens: Option<tokencheck::TokenChecker>,
    pub pulls: pull::Queue,
    pub metrics: Metrics,
}

impl Keepstore {
    /// Creates or checks every volume directory, removes leftover temp files, and loads
    /// (or generates) each volume's id. Blocking; with an S3 volume it must run on a
    /// blocking thread of a tokio runtime: use [`Keepstore::start`].
    pub fn open(config: Config) -> Result<Keepstore, Error> {
        if config.volumes.is_empty() {
            return Err(Error::Volume {
                path: "(none)".into(),
                why: "no volume configured: list at least one directory in [keepstore] volumes"
                    .into(),
            });
        }
        let mut volumes: Vec<Arc<dyn Volume>> = Vec::new();
        for vc in &config.volumes {
            let v: Arc<dyn Volume> = match vc {
                VolumeConfig::Directory(path) => Arc::new(LocalVolume::open(path)?),
                VolumeConfig::S3(c) => Arc::new(s3::S3Volume::open(c)?),
            };
            if let Some(other) = volumes.iter().find(|o| o.id() == v.id()) {
                return Err(Error::Volume {
                    path: v.path(),
                    why: format!(
                        "it has the same volume id as {} (the same volume listed twice, or a copied {}): list each volume once",
                        other.path(),
                        ".keep-volume-id"
                    ),
                });
            }
            tracing::info!(volume = v.id(), path = %v.path(), kind = v.kind(), "keepstore volume ready");
            volumes.push(v);
        }
        Self::with_volumes(config, volumes)
    }

    /// [`Keepstore::open`] from async code: the volumes are opened on a blocking thread
    /// (an S3 volume talks to its server while it opens).
    pub async fn start(config: Config) -> Result<Keepstore, Error> {
        tokio::task::spawn_blocking(move || Keepstore::open(config)).await?
    }

    /// Like [`Keepstore::open`] but with volumes already opened (any [`Volume`]
    /// implementation); `config.volumes` is ignored.
    pub fn with_volumes(config: Config, volumes: Vec<Arc<dyn Volume>>) -> Result<Keepstore, Error> {
        let tokens = match &config.token_check {
            Some(tc) => Some(tokencheck::TokenChecker::new(
                tc.clone(),
                &config.admin_token,
            )?),
            None => None,
        };
        Ok(Keepstore {
            inner: Arc::new(Inner {
                volumes,
                signer: config.signer,
                admin_token: config.admin_token,
                management_token: config.management_token,
                trash_lifetime: config.trash_lifetime,
                trash_check_interval: config.trash_check_interval,
                tokens,
                pulls: pull::Queue::default(),
                metrics: Metrics::new(),
            }),
        })
    }

    /// Checks with the API that `token` is still valid (see `tokencheck`): a no-op
    /// when no token check is configured.
    pub(crate) async fn check_token(&self, token: &keep_format::Token) -> Result<(), Error> {
        let Some(tc) = &self.inner.tokens else {
            return Ok(());
        };
        let r = tc.check(token).await;
        self.inner.metrics.token_check(&r);
        r.map(|_| ())
    }

    /// The volumes, in configuration order.
    pub fn volumes(&self) -> &[Arc<dyn Volume>] {
        &self.inner.volumes
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
            let now = keep_format::time::unix_now();
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
