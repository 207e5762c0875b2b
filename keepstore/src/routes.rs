//! Every keepstore route, registered on an actix `ServiceConfig`, and the request
//! counter around them.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::web;

use crate::{admin, get, metrics, put, Keepstore};

impl Keepstore {
    /// Registers every keepstore route.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let ks = web::Data::new(self.clone());
        let counted = self.clone();
        cfg.service(
            web::scope("")
                .app_data(ks)
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
                .route("/pull", web::put().to(admin::pull))
                .route("/{locator}", web::put().to(put::put_block))
                .route("/{locator}", web::get().to(get::get_block))
                .route("/{locator}", web::head().to(get::get_block)),
        );
    }
}

async fn count_requests(
    ks: Keepstore,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let method = metrics::method_label(req.method());
    let res = next.call(req).await;
    let code = match &res {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    ks.inner.metrics.request(method, code);
    res
}
