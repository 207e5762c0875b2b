//! keep-web's counters, and the management endpoints that show them
//! (`/_health/ping`, `/metrics`, with the management token).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

use crate::error::Error;
use crate::request::headers;

#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    /// File bytes sent (shared with the streams that send them).
    pub bytes_out: Arc<AtomicU64>,
}

impl Metrics {
    fn render(&self) -> String {
        format!(
            "# HELP keepweb_requests_total Requests received.\n\
             # TYPE keepweb_requests_total counter\n\
             keepweb_requests_total {}\n\
             # HELP keepweb_errors_total Requests answered with a 5xx status.\n\
             # TYPE keepweb_errors_total counter\n\
             keepweb_errors_total {}\n\
             # HELP keepweb_file_bytes_total File bytes sent.\n\
             # TYPE keepweb_file_bytes_total counter\n\
             keepweb_file_bytes_total {}\n\
             # EOF\n",
            self.requests.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
            self.bytes_out.load(Ordering::Relaxed),
        )
    }

    /// `/_health/ping` or `/metrics` (`path`), for the management token `want` (empty:
    /// there are no management endpoints, 404).
    pub fn management(
        &self,
        req: &HttpRequest,
        path: &str,
        want: &str,
    ) -> Result<HttpResponse, Error> {
        if want.is_empty() {
            return Err(Error::NotFound);
        }
        let got = headers::get(req, header::AUTHORIZATION)
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !keep_format::secret::ct_eq_str(got, want) {
            return Err(if got.is_empty() {
                Error::Unauthorized
            } else {
                Error::Forbidden("wrong management token".into())
            });
        }
        if path == "/_health/ping" {
            return Ok(HttpResponse::Ok()
                .content_type("application/json")
                .body("{\"health\":\"OK\"}\n"));
        }
        Ok(HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(self.render()))
    }
}
