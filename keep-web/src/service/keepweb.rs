//! [`KeepWeb`]: the service. It owns the upstream clients and caches, the background
//! repacker and the metrics, takes every request (one default actix service: routing
//! depends on the Host header and on WebDAV methods, so no route table fits), and turns
//! every error into a response in one place.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::config::Config;
use crate::credentials;
use crate::error::Error;
use crate::ops::repack::Repacker;
use crate::resolve::host::Hosts;
use crate::service::metrics::Metrics;
use crate::service::response::add_cors;
use crate::upstream::{LocalBlocks, Upstream};

/// The gateway: cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct KeepWeb {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub cfg: Config,
    pub hosts: Hosts,
    pub up: Arc<Upstream>,
    pub repacker: Arc<Repacker>,
    pub metrics: Metrics,
}

impl KeepWeb {
    pub fn new(cfg: Config) -> Result<KeepWeb, Error> {
        KeepWeb::with_local_blocks(cfg, None)
    }

    /// As [`KeepWeb::new`], reading blocks from `local` first (the keepstore of the same
    /// process) and over HTTP only for blocks it doesn't have.
    pub fn with_local_blocks(
        cfg: Config,
        local: Option<Arc<dyn LocalBlocks>>,
    ) -> Result<KeepWeb, Error> {
        let hosts = Hosts::new(
            &cfg.domain,
            cfg.download_host.as_deref(),
            &cfg.external_url,
            cfg.trust_all_content,
        )?;
        let up = Arc::new(Upstream::new(
            &cfg.api_url,
            cfg.keepstore_urls.clone(),
            local,
        )?);
        Ok(KeepWeb {
            inner: Arc::new(Inner {
                cfg,
                hosts,
                up,
                repacker: Arc::default(),
                metrics: Metrics::default(),
            }),
        })
    }

    /// Registers the gateway as the default service: it answers every method and path.
    pub fn configure(&self, c: &mut web::ServiceConfig) {
        let kw = self.clone();
        c.default_service(web::to(move |req: HttpRequest, body: web::Payload| {
            let kw = kw.clone();
            async move { kw.serve(req, body).await }
        }));
    }

    async fn serve(&self, req: HttpRequest, body: web::Payload) -> HttpResponse {
        let started = Instant::now();
        let inner = &self.inner;
        inner.metrics.requests.fetch_add(1, Ordering::Relaxed);
        let mut resp = match inner.route(&req, body).await {
            Ok(r) => r,
            Err(e) => e.error_response(),
        };
        add_cors(&mut resp);
        if resp.status().is_server_error() {
            inner.metrics.errors.fetch_add(1, Ordering::Relaxed);
        }
        // `keep serve` writes the one access line a request (with its request id);
        // this is for debugging keep-web embedded without that middleware
        tracing::debug!(
            method = %req.method(),
            target = %credentials::redact(req.path(), req.query_string()),
            status = resp.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "keep-web request"
        );
        resp
    }
}
