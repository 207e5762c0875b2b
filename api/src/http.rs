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
use serde_json::{json, Value};

use crate::auth::{self, Caller};
use crate::db::Obj;
use crate::{collections, groups, limits, links, tokens, users, Core, Error};

/// One authenticated request, as the core sees it.
pub struct Ctx {
    pub caller: Caller,
    /// Query parameters and the JSON body's top-level keys (the body wins).
    pub params: Obj,
    /// The `{id}` path segment, if the route has one.
    pub id: String,
}

pub type Handler = fn(&Core, &Ctx) -> Result<Value, Error>;

/// Parameters whose query-string values are JSON.
const JSON_PARAMS: &[&str] = &[
    "filters",
    "order",
    "select",
    "limit",
    "offset",
    "include_trash",
    "include_old_versions",
    "ensure_unique_name",
    "replace_files",
    "collection",
    "group",
    "user",
    "link",
    "api_client_authorization",
    "recursive",
];

fn parse_params(qs: &str, body: &[u8], content_type: &str) -> Result<Obj, Error> {
    let mut params = Obj::new();
    let pairs = |text: &str, what: &str| -> Result<Vec<(String, String)>, Error> {
        web::Query::<Vec<(String, String)>>::from_query(text)
            .map(|q| q.into_inner())
            .map_err(|e| Error::BadRequest(format!("cannot parse the {what}: {e}")))
    };
    let mut add = |k: String, v: String| {
        let val = if JSON_PARAMS.contains(&k.as_str()) {
            serde_json::from_str(&v).unwrap_or(Value::String(v))
        } else {
            Value::String(v)
        };
        params.insert(k, val);
    };
    for (k, v) in pairs(qs, "query string")? {
        add(k, v);
    }
    let trimmed = body.iter().position(|b| !b.is_ascii_whitespace());
    if trimmed.is_some() {
        if content_type.starts_with("application/x-www-form-urlencoded") {
            let text = std::str::from_utf8(body)
                .map_err(|_| Error::BadRequest("the form body is not UTF-8".into()))?;
            for (k, v) in pairs(text, "form body")? {
                add(k, v);
            }
        } else {
            let v: Value = serde_json::from_slice(body).map_err(|e| {
                Error::BadRequest(format!(
                    "the request body is not valid JSON ({e}); send an object like {{\"collection\": {{…}}}}"
                ))
            })?;
            match v {
                Value::Object(m) => params.extend(m),
                _ => {
                    return Err(Error::BadRequest(
                        "the request body must be a JSON object like {\"collection\": {…}}".into(),
                    ))
                }
            }
        }
    }
    Ok(params)
}

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
    let mut params = parse_params(req.query_string(), b"", "")?;
    let param_token = params
        .remove("api_token")
        .and_then(|v| v.as_str().map(str::to_string));
    let text = auth::token_text(authz.as_deref(), param_token.as_deref());
    let core = core.into_inner();
    let c2 = core.clone();
    let caller = web::block(move || c2.authenticate(text.as_deref(), &method, &path))
        .await
        .map_err(|e| Error::Internal(format!("the request's worker failed: {e}")))??;
    let body = read_body(&req, payload, body_limit(req.method(), req.path())).await?;
    let out = web::block(move || -> Result<Value, Error> {
        let mut from_body = parse_params("", &body, &content_type)?;
        // a token counts only in the header or the query string (read before the body)
        from_body.remove("api_token");
        params.extend(from_body);
        let ctx = Ctx { caller, params, id };
        f(&core, &ctx)
    })
    .await
    .map_err(|e| Error::Internal(format!("the request's worker failed: {e}")))??;
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
        "blob_signature_ttl": c.signer.ttl().as_secs(),
        "anonymous_user_uuid": core.anonymous_user,
        "public_group_uuid": core.public_group,
        "system_user_uuid": core.system_user,
        "max_limit": crate::list::MAX_LIMIT,
    }))
}

fn management_ok(core: &Core, req: &HttpRequest) -> Result<(), Error> {
    let want = &core.cfg.management_token;
    if want.is_empty() {
        return Err(Error::NotFound(
            "the management endpoints are disabled (set management_token in the config)".into(),
        ));
    }
    let got = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    if got.is_empty() {
        return Err(Error::Unauthorized(
            "send the management token as \"Authorization: Bearer <management_token>\"".into(),
        ));
    }
    if got.len() != want.len()
        || got
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            != 0
    {
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
            // users
            .route("/users", web::get().to(ep!(users::list)))
            .route("/users", web::post().to(ep!(users::create)))
            .route("/users/current", web::get().to(ep!(users::current)))
            .route("/users/{id}", web::get().to(ep!(users::get)))
            .route("/users/{id}", web::put().to(ep!(users::update)))
            .route("/users/{id}", web::patch().to(ep!(users::update)))
            .route("/users/{id}", web::delete().to(ep!(users::delete)))
            // tokens
            .route(
                "/api_client_authorizations",
                web::get().to(ep!(tokens::list)),
            )
            .route(
                "/api_client_authorizations",
                web::post().to(ep!(tokens::create)),
            )
            .route(
                "/api_client_authorizations/current",
                web::get().to(ep!(tokens::current)),
            )
            .route(
                "/api_client_authorizations/{id}",
                web::get().to(ep!(tokens::get)),
            )
            .route(
                "/api_client_authorizations/{id}",
                web::put().to(ep!(tokens::update)),
            )
            .route(
                "/api_client_authorizations/{id}",
                web::patch().to(ep!(tokens::update)),
            )
            .route(
                "/api_client_authorizations/{id}",
                web::delete().to(ep!(tokens::delete)),
            )
            // groups
            .route("/groups", web::get().to(ep!(groups::list)))
            .route("/groups", web::post().to(ep!(groups::create)))
            .route("/groups/contents", web::get().to(ep!(groups::contents)))
            .route("/groups/{id}", web::get().to(ep!(groups::get)))
            .route("/groups/{id}", web::put().to(ep!(groups::update)))
            .route("/groups/{id}", web::patch().to(ep!(groups::update)))
            .route("/groups/{id}", web::delete().to(ep!(groups::trash)))
            .route(
                "/groups/{id}/contents",
                web::get().to(ep!(groups::contents)),
            )
            .route("/groups/{id}/trash", web::post().to(ep!(groups::trash)))
            .route("/groups/{id}/untrash", web::post().to(ep!(groups::untrash)))
            // collections
            .route("/collections", web::get().to(ep!(collections::list)))
            .route("/collections", web::post().to(ep!(collections::create)))
            .route("/collections/{id}", web::get().to(ep!(collections::get)))
            .route("/collections/{id}", web::put().to(ep!(collections::update)))
            .route(
                "/collections/{id}",
                web::patch().to(ep!(collections::update)),
            )
            .route(
                "/collections/{id}",
                web::delete().to(ep!(collections::trash)),
            )
            .route(
                "/collections/{id}/trash",
                web::post().to(ep!(collections::trash)),
            )
            .route(
                "/collections/{id}/untrash",
                web::post().to(ep!(collections::untrash)),
            )
            .route(
                "/collections/{id}/versions",
                web::get().to(ep!(collections::versions)),
            )
            // links
            .route("/links", web::get().to(ep!(links::list)))
            .route("/links", web::post().to(ep!(links::create)))
            .route("/links/{id}", web::get().to(ep!(links::get)))
            .route("/links/{id}", web::put().to(ep!(links::update)))
            .route("/links/{id}", web::patch().to(ep!(links::update)))
            .route("/links/{id}", web::delete().to(ep!(links::delete)))
            .default_service(web::to(no_route)),
    );
}

// ---- helpers shared by the resource modules ----

/// `params[name]` as an object (the `{"collection": {…}}` wrapper); `{}` when absent.
pub fn body_obj(ctx: &Ctx, name: &str) -> Result<Obj, Error> {
    match ctx.params.get(name) {
        None | Some(Value::Null) => Ok(Obj::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(other) => Err(Error::BadRequest(format!(
            "{name} must be a JSON object, got {}",
            short(other)
        ))),
    }
}

pub fn short(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 80 {
        let mut cut = 77;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// Refuses attributes outside `writable` (ignoring read-only ones clients echo back).
pub fn check_keys(o: &Obj, writable: &[&str], what: &str) -> Result<(), Error> {
    const ECHOED: &[&str] = &[
        "uuid",
        "kind",
        "etag",
        "created_at",
        "modified_at",
        "modified_by_user_uuid",
        "href",
    ];
    for k in o.keys() {
        if !writable.contains(&k.as_str()) && !ECHOED.contains(&k.as_str()) {
            return Err(Error::Unprocessable(format!(
                "{what} has no writable attribute {k:?} (writable: {})",
                writable.join(", ")
            )));
        }
    }
    Ok(())
}

/// An optional string attribute: Ok(None) absent, Ok(Some(None)) null.
pub fn opt_str(o: &Obj, k: &str, what: &str) -> Result<Option<Option<String>>, Error> {
    match o.get(k) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(other) => Err(Error::Unprocessable(format!(
            "{what}.{k} must be a string, got {}",
            short(other)
        ))),
    }
}

/// A timestamp attribute, normalized.
pub fn opt_time(o: &Obj, k: &str, what: &str) -> Result<Option<Option<String>>, Error> {
    match opt_str(o, k, what)? {
        Some(Some(t)) => crate::time::normalize(&t)
            .map(|t| Some(Some(t)))
            .map_err(|e| Error::Unprocessable(format!("{what}.{k}: {e}"))),
        other => Ok(other),
    }
}

/// A name for a project or collection: no `/`, no NUL, at most 255 bytes.
pub fn check_name(name: &str, what: &str) -> Result<(), Error> {
    if name.contains('/') || name.contains('\0') {
        return Err(Error::Unprocessable(format!(
            "{what}.name {name:?} may not contain \"/\" or NUL (it becomes a directory name)"
        )));
    }
    if name == "." || name == ".." {
        return Err(Error::Unprocessable(format!(
            "{what}.name may not be \".\" or \"..\""
        )));
    }
    if name.len() > 255 {
        return Err(Error::Unprocessable(format!(
            "{what}.name is {} bytes long; the limit is 255",
            name.len()
        )));
    }
    Ok(())
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
        let api = crate::testutil::mem_api();
        let a = api.clone();
        let app =
            actix_web::test::init_service(actix_web::App::new().configure(move |c| a.configure(c)))
                .await;
        for path in ["/arvados/v1/config", "/arvados/v1/users/current", "/nope"] {
            let req = actix_web::test::TestRequest::get().uri(path).to_request();
            let _ = actix_web::test::call_service(&app, req).await;
        }
        let text = String::from_utf8_lossy(&out.0.lock()).to_string();
        assert!(!text.contains("api request"), "{text}");
        assert!(api.core.metrics.render().contains("/arvados/v1/config"));
    }

    #[test]
    fn params() {
        let p = parse_params(
            "filters=%5B%5B%22name%22%2C%22%3D%22%2C%22x%22%5D%5D&limit=5&name=123",
            br#"{"collection": {"name": "n"}}"#,
            "application/json",
        )
        .unwrap();
        assert!(p["filters"].is_array());
        assert_eq!(p["limit"], json!(5));
        assert_eq!(p["name"], json!("123"));
        assert_eq!(p["collection"]["name"], json!("n"));
        assert!(parse_params("", b"[1]", "application/json").is_err());
        assert!(parse_params("", b"{nope", "application/json").is_err());
        let f = parse_params("", b"limit=3", "application/x-www-form-urlencoded").unwrap();
        assert_eq!(f["limit"], json!(3));
    }
}
