//! Prometheus metrics (`GET /metrics`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use actix_web::http::Method;

use crate::tokencheck::Outcome;
use crate::volume::Volume;
use crate::Error;

type Labels = Vec<(String, String)>;

/// The `method` label of a request: one of a fixed set, so a client inventing methods
/// cannot add series without bound.
pub(crate) fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// Every metric keepstore exports.
pub(crate) struct Metrics {
    registry: Registry,
    pub requests: Family<Labels, Counter>,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    pub corrupt: Counter,
    token_checks: Family<Labels, Counter>,
    volume_free: Family<Labels, Gauge>,
    volume_read: Family<Labels, Counter>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<Labels, Counter>::default();
        let bytes_in = Counter::default();
        let bytes_out = Counter::default();
        let corrupt = Counter::default();
        let token_checks = Family::<Labels, Counter>::default();
        let volume_free = Family::<Labels, Gauge>::default();
        let volume_read = Family::<Labels, Counter>::default();
        registry.register(
            "keepstore_requests",
            "HTTP requests by method and status code",
            requests.clone(),
        );
        registry.register(
            "keepstore_bytes_in",
            "Block bytes received by PUT",
            bytes_in.clone(),
        );
        registry.register(
            "keepstore_bytes_out",
            "Block bytes sent by GET",
            bytes_out.clone(),
        );
        registry.register(
            "keepstore_corrupt_blocks",
            "Blocks found failing their hash and quarantined",
            corrupt.clone(),
        );
        registry.register(
            "keepstore_token_checks",
            "Tokens of GET/HEAD requests checked with the API, by result (root, cached, asked, invalid, unavailable)",
            token_checks.clone(),
        );
        registry.register(
            "keepstore_volume_free_bytes",
            "Free bytes on each volume",
            volume_free.clone(),
        );
        registry.register(
            "keepstore_volume_read_bytes",
            "Block bytes read from each volume",
            volume_read.clone(),
        );
        Metrics {
            registry,
            requests,
            bytes_in,
            bytes_out,
            corrupt,
            token_checks,
            volume_free,
            volume_read,
        }
    }

    pub fn token_check(&self, r: &Result<Outcome, Error>) {
        let result = match r {
            Ok(Outcome::Root) => "root",
            Ok(Outcome::Cached) => "cached",
            Ok(Outcome::Asked) => "asked",
            Err(Error::TokenNotValid) => "invalid",
            Err(_) => "unavailable",
        };
        self.token_checks
            .get_or_create(&vec![("result".to_string(), result.to_string())])
            .inc();
    }

    pub fn request(&self, method: &'static str, code: u16) {
        self.requests
            .get_or_create(&vec![
                ("method".to_string(), method.to_string()),
                ("code".to_string(), code.to_string()),
            ])
            .inc();
    }

    /// The text exposition, after refreshing the per-volume values. Blocking (statvfs).
    pub fn render(&self, volumes: &[Arc<dyn Volume>]) -> String {
        for v in volumes {
            let labels = vec![("volume".to_string(), v.id().to_string())];
            if let Ok(space) = v.space() {
                self.volume_free
                    .get_or_create(&labels)
                    .set(i64::try_from(space.free).unwrap_or(i64::MAX));
            }
            self.volume_read
                .get_or_create(&labels)
                .inner()
                .store(v.read_bytes(), Ordering::Relaxed);
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.push_str("# error encoding metrics\n");
        }
        out
    }
}
