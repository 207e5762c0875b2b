//! Routes, and the async shell around the blocking core: each request is parsed here,
//! then authenticated and served on the blocking pool (RocksDB calls block).

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use keep_format::secret::ct_eq_str;
use serde_json::{json, Value};

use crate::core::Core;
use crate::error::Error;
use crate::params::{Ctx, Params};
use crate::{auth, collections, contents, groups, limits, links, tokens, users};

pub type Handler = fn(&Core, &Ctx) -> Result<Value, Error>;

/// The most a request body may hold: `limit` for a route that takes large bodies
/// (collections, whose manifests can be long), [`limits::BODY_MAX`] for the others.
fn body_limit(method: &actix_web::http::Method, path: &str) -> usize {
    let collection_write = path.starts_with("/arvados/v1/collections")
        && matches!(method.as_str(), "POST" | "PUT" | "PATCH");
    if collection_write {
        limits::COLLECTION_BODY_MAX
    } else {
        limits::BODY_MAX
    }
}

/// Reads the body, refusing it (413) as soon as it declares or reaches more than
/// `limit` bytes: nothing beyond the limit is ever read or buffered.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, Error> {
    let too_large = || {
        Error::PayloadTooLarge(format!(
            "the request body is larger than this endpoint's limit of {limit} bytes (see \"Limits\" in doc/api.md)"
        ))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut buf = web::BytesMut::with_capacity(declared.unwrap_or(0).min(64 << 10) as usize);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| Error::BadRequest(format!("the request body could not be read: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// One API request: the caller is authenticated from the `Authorization` header or the
/// `api_token` query parameter *before* any of the body is read (an unauthenticated
/// request never costs more than its head), then the body is read within the route's
/// limit, and the handler runs on the blocking pool (RocksDB calls block).
async fn run(
    core: web::Data<Core>,
    req: HttpRequest,
    payload: web::Payload,
    f: Handler,
) -> Result<HttpResponse, Error> {
    let method = req.method().as_str().to_string();
    let path = req.path().to_string();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let authz = header("authorization");
    let content_type = header("content-type").unwrap_or_default();
    let id = req.match_info().get("id").unwrap_or("").to_string();
    let mut params = Params::parse(req.query_string(), b"", "")?;
    let param_token = params
        .remove("api_token")
        .and_then(|v| v.as_str().map(str::to_string));
    let text = auth::token_text(authz.as_deref(), param_token.as_deref());
    let core = core.into_inner();
    let c2 = core.clone();
    let caller = web::block(move || auth::authenticate(&c2, text.as_deref(), &method, &path))
        .await
        .map_err(|e| Error::internal("the request's worker failed", e))??;
    let body = read_body(&req, payload, body_limit(req.method(), req.path())).await?;
    let out = web::block(move || -> Result<Value, Error> {
        let mut from_body = Params::parse("", &body, &content_type)?;
        // a token counts only in the header or the query string (read before the body)
        from_body.remove("api_token");
        params.extend(from_body);
        let ctx = Ctx { caller, params, id };
        f(&core, &ctx)
    })
    .await
    .map_err(|e| Error::internal("the request's worker failed", e))??;
    Ok(HttpResponse::Ok().json(out))
}

macro_rules! ep {
    ($f:path) => {
        |core: web::Data<Core>, req: HttpRequest, body: web::Payload| run(core, req, body, $f)
    };
}

async fn config(core: web::Data<Core>) -> HttpResponse {
    let c = &core.cfg;
    HttpResponse::Ok().json(json!({
        "kind": "arvados#config",
        "cluster_id": c.cluster_id,
        "keepstore_urls": c.keepstore_urls,
        "web_url": c.web_url,
        "default_replication": c.default_replication,
        "blob_signature_ttl": c.signer.ttl().as_secs(),
        "anonymous_user_uuid": core.anonymous_user,
        "public_group_uuid": core.public_group,
        "system_user_uuid": core.system_user,
        "max_limit": crate::list::MAX_LIMIT,
    }))
}

/// The one management-token rule (doc/api.md, "Service"): 404 when no management
/// token is configured, 401 without a bearer token, 403 for another token, else OK.
/// The comparison is constant-time.
fn management_ok(core: &Core, req: &HttpRequest) -> Result<(), Error> {
    let want = &core.cfg.management_token;
    if want.is_empty() {
        return Err(Error::NotFound(
            "the management endpoints are disabled (set management_token in the config)".into(),
        ));
    }
    let got = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    if got.is_empty() {
        return Err(Error::Unauthorized(
            "send the management token as \"Authorization: Bearer <management_token>\"".into(),
        ));
    }
    if !ct_eq_str(got, want) {
        return Err(Error::Forbidden(
            "that is not the management token (see management_token in the config)".into(),
        ));
    }
    Ok(())
}

async fn health(core: web::Data<Core>, req: HttpRequest) -> Result<HttpResponse, Error> {
    management_ok(&core, &req)?;
    Ok(HttpResponse::Ok().json(json!({"health": "OK"})))
}

async fn metrics(core: web::Data<Core>, req: HttpRequest) -> Result<HttpResponse, Error> {
    management_ok(&core, &req)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(core.metrics.render()))
}

async fn no_route(req: HttpRequest) -> Result<HttpResponse, Error> {
    Err(Error::NotFound(format!(
        "no API endpoint {} {} (see doc/api.md)",
        req.method(),
        req.path()
    )))
}

/// Counts every API request in the metrics (labels from fixed sets) and logs it at
/// debug level: the one access-log line a request is `keep serve`'s (cli/access_log.rs),
/// which also sets `X-Request-Id`. The path is logged, never the query string (it may
/// hold api_token).
async fn observe_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let start = Instant::now();
    let core = req.app_data::<web::Data<Core>>().cloned();
    let res = next.call(req).await?;
    let secs = start.elapsed().as_secs_f64();
    let status = res.status().as_u16();
    let r = res.request();
    let route = r.match_pattern();
    if let Some(core) = core {
        core.metrics
            .observe(r.method(), route.as_deref(), status, secs);
    }
    tracing::debug!(
        method = %r.method(),
        path = %r.path(),
        status,
        ms = secs * 1000.0,
        "api request"
    );
    Ok(res)
}

pub fn configure(core: Arc<Core>, cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::Data::from(core));
    cfg.route("/_health/ping", web::get().to(health));
    cfg.route("/metrics", web::get().to(metrics));
    cfg.service(
        web::scope("/arvados/v1")
            .wrap(from_fn(observe_requests))
            .route("/config", web::get().to(config))
            .configure(user_routes)
            .configure(token_routes)
            .configure(group_routes)
            .configure(collection_routes)
            .configure(link_routes)
            .default_service(web::to(no_route)),
    );
}

fn user_routes(c: &mut web::ServiceConfig) {
    c.route("/users", web::get().to(ep!(users::list)));
    c.route("/users", web::post().to(ep!(users::create)));
    c.route("/users/current", web::get().to(ep!(users::current)));
    c.route("/users/{id}", web::get().to(ep!(users::get)));
    c.route("/users/{id}", web::put().to(ep!(users::update)));
    c.route("/users/{id}", web::patch().to(ep!(users::update)));
    c.route("/users/{id}", web::delete().to(ep!(users::delete)));
}

fn token_routes(c: &mut web::ServiceConfig) {
    c.route(
        "/api_client_authorizations",
        web::get().to(ep!(tokens::list)),
    );
    c.route(
        "/api_client_authorizations",
        web::post().to(ep!(tokens::create)),
    );
    c.route(
        "/api_client_authorizations/current",
        web::get().to(ep!(tokens::current)),
    );
    c.route(
        "/api_client_authorizations/{id}",
        web::get().to(ep!(tokens::get)),
    );
    c.route(
        "/api_client_authorizations/{id}",
        web::put().to(ep!(tokens::update)),
    );
    c.route(
        "/api_client_authorizations/{id}",
        web::patch().to(ep!(tokens::update)),
    );
    c.route(
        "/api_client_authorizations/{id}",
        web::delete().to(ep!(tokens::delete)),
    );
}

fn group_routes(c: &mut web::ServiceConfig) {
    c.route("/groups", web::get().to(ep!(groups::list)));
    c.route("/groups", web::post().to(ep!(groups::create)));
    c.route("/groups/contents", web::get().to(ep!(contents::contents)));
    c.route("/groups/{id}", web::get().to(ep!(groups::get)));
    c.route("/groups/{id}", web::put().to(ep!(groups::update)));
    c.route("/groups/{id}", web::patch().to(ep!(groups::update)));
    c.route("/groups/{id}", web::delete().to(ep!(groups::trash)));
    c.route(
        "/groups/{id}/contents",
        web::get().to(ep!(contents::contents)),
    );
    c.route("/groups/{id}/trash", web::post().to(ep!(groups::trash)));
    c.route("/groups/{id}/untrash", web::post().to(ep!(groups::untrash)));
}

fn collection_routes(c: &mut web::ServiceConfig) {
    c.route("/collections", web::get().to(ep!(collections::list)));
    c.route("/collections", web::post().to(ep!(collections::create)));
    c.route("/collections/{id}", web::get().to(ep!(collections::get)));
    c.route("/collections/{id}", web::put().to(ep!(collections::update)));
    c.route(
        "/collections/{id}",
        web::patch().to(ep!(collections::update)),
    );
    c.route(
        "/collections/{id}",
        web::delete().to(ep!(collections::trash)),
    );
    c.route(
        "/collections/{id}/trash",
        web::post().to(ep!(collections::trash)),
    );
    c.route(
        "/collections/{id}/untrash",
        web::post().to(ep!(collections::untrash)),
    );
    c.route(
        "/collections/{id}/versions",
        web::get().to(ep!(collections::versions)),
    );
}

fn link_routes(c: &mut web::ServiceConfig) {
    c.route("/links", web::get().to(ep!(links::list)));
    c.route("/links", web::post().to(ep!(links::create)));
    c.route("/links/{id}", web::get().to(ep!(links::get)));
    c.route("/links/{id}", web::put().to(ep!(links::update)));
    c.route("/links/{id}", web::patch().to(ep!(links::update)));
    c.route("/links/{id}", web::delete().to(ep!(links::delete)));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer collecting what the tracing subscriber prints.
    #[derive(Clone, Default)]
    struct Captured(Arc<parking_lot::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The API logs no line of its own per request at info level: `keep serve`'s
    /// access log is the one line (issue 13: every request was logged twice).
    #[actix_web::test]
    async fn no_info_line_per_request() {
        let out = Captured::default();
        let w = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || w.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let core = Arc::new(crate::core::tests::mem_core());
        let c2 = core.clone();
        let app = actix_web::test::init_service(
            actix_web::App::new().configure(move |c| configure(c2.clone(), c)),
        )
        .await;
        for path in ["/arvados/v1/config", "/arvados/v1/users/current", "/nope"] {
            let req = actix_web::test::TestRequest::get().uri(path).to_request();
            let _ = actix_web::test::call_service(&app, req).await;
        }
        let text = String::from_utf8_lossy(&out.0.lock()).to_string();
        assert!(!text.contains("api request"), "{text}");
        assert!(core.metrics.render().contains("/arvados/v1/config"));
    }
}
