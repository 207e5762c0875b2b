//! keep-web: Keep's HTTP and WebDAV gateway (DESIGN §5).
//!
//! [`KeepWeb::configure`] takes every method and path (one default service): routing
//! depends on the Host header and on WebDAV methods, so no actix route table fits.
//! The read path: resolve the URL to a collection version through the API (its index
//! is parsed once per PDH and shared), find the block slices of the requested bytes in
//! O(log n), and stream them from keepstore with `Range` requests.

mod dav;
mod error;
mod path;
mod read;
mod repack;
mod time;
mod upstream;
mod write;
mod zip;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use base64::Engine;
use keep_format::dav as props;
use keep_format::Token;

pub use error::Error;
pub use upstream::{LocalBlocks, SliceStream};

use path::{Node, Parsed};
use upstream::Upstream;

/// What `keep serve` hands keep-web.
#[derive(Clone, Debug)]
pub struct Config {
    /// The API server, e.g. `http://127.0.0.1:8003`.
    pub api_url: String,
    /// Keepstore base URLs; empty: ask `GET {api_url}/arvados/v1/config`.
    pub keepstore_urls: Vec<String>,
    /// Collection vhosts are `<id>.<domain>` and `<id>--<domain>`.
    pub domain: String,
    /// The attachment-only download host (`host` or `host:port`; the port is ignored).
    /// `None`: the host of `external_url`. `Some("")`: none.
    pub download_host: Option<String>,
    /// Honour credentials on every host (only for trusted content).
    pub trust_all_content: bool,
    /// Tried last, and the only token used where credentials are not honoured.
    pub anonymous_token: Option<Token>,
    /// Bearer token for `/_health/ping` and `/metrics`; empty: those answer 404.
    pub management_token: String,
    /// keep-web's own URL as clients see it.
    pub external_url: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            api_url: "http://127.0.0.1:8003".into(),
            keepstore_urls: Vec::new(),
            domain: "localhost".into(),
            download_host: None,
            trust_all_content: false,
            anonymous_token: None,
            management_token: String::new(),
            external_url: "http://127.0.0.1:9002".into(),
        }
    }
}

/// The gateway: cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct KeepWeb {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: Config,
    domain: String,
    download_host: Option<String>,
    up: Arc<Upstream>,
    requests: AtomicU64,
    errors: AtomicU64,
    bytes_out: Arc<AtomicU64>,
}

/// `host[:port]` → lowercase host.
fn strip_port(h: &str) -> String {
    let h = h.trim().to_ascii_lowercase();
    if h.starts_with('[') {
        return match h.find(']') {
            Some(i) => h[..=i].to_string(),
            None => h,
        };
    }
    match h.rsplit_once(':') {
        Some((a, p)) if p.bytes().all(|b| b.is_ascii_digit()) => a.to_string(),
        _ => h,
    }
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
        let download_host = match &cfg.download_host {
            Some(h) if h.is_empty() => None,
            Some(h) => Some(strip_port(h)),
            None => {
                let rest = cfg
                    .external_url
                    .split_once("://")
                    .map(|(_, r)| r)
                    .unwrap_or(&cfg.external_url);
                let host = rest.split('/').next().unwrap_or_default();
                (!host.is_empty()).then(|| strip_port(host))
            }
        };
        let domain = cfg.domain.trim_matches('.').to_ascii_lowercase();
        if domain.is_empty() {
            return Err(Error::Config("web domain is empty".into()));
        }
        let up = Arc::new(Upstream::new(
            &cfg.api_url,
            cfg.keepstore_urls.clone(),
            local,
        )?);
        Ok(KeepWeb {
            inner: Arc::new(Inner {
                cfg,
                domain,
                download_host,
                up,
                requests: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                bytes_out: Arc::new(AtomicU64::new(0)),
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
        inner.requests.fetch_add(1, Ordering::Relaxed);
        let mut resp = match inner.route(&req, body).await {
            Ok(r) => r,
            Err(e) => e.error_response(),
        };
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(
                "Content-Range, Content-Length, Content-Type, ETag, Last-Modified, DAV, Lock-Token",
            ),
        );
        if resp.status().is_server_error() {
            inner.errors.fetch_add(1, Ordering::Relaxed);
        }
        // `keep serve` writes the one access line a request (with its request id);
        // this is for debugging keep-web embedded without that middleware
        tracing::debug!(
            method = %req.method(),
            path = %path::redact(req.uri().path()),
            status = resp.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "keep-web request"
        );
        resp
    }
}

/// Reads a non-PUT request body whole, up to [`props::BODY_MAX`].
async fn read_small_body(mut payload: web::Payload) -> Result<web::Bytes, Error> {
    use futures_util::StreamExt;
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| Error::BadRequest(format!("reading the request body: {e}")))?;
        if buf.len() + chunk.len() > props::BODY_MAX {
            return Err(Error::TooLarge(format!(
                "this method's body may be at most {} bytes",
                props::BODY_MAX
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// What a request may use and how its answer must look, decided before resolving.
pub(crate) struct Ctx {
    pub attachment: bool,
    pub parsed: Parsed,
}

impl Inner {
    fn vhost_id(&self, host: &str) -> Option<String> {
        let d = &self.domain;
        let label = host
            .strip_suffix(d.as_str())
            .and_then(|p| p.strip_suffix('.').or_else(|| p.strip_suffix("--")))?;
        if label.is_empty() || label.contains('.') {
            return None;
        }
        path::coll_id(label).map(|_| label.to_string())
    }

    async fn route(&self, req: &HttpRequest, payload: web::Payload) -> Result<HttpResponse, Error> {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(strip_port)
            .filter(|h| !h.is_empty());
        let vhost = host.as_deref().and_then(|h| self.vhost_id(h));
        let raw_path = req.uri().path();
        let method = req.method().as_str();
        let is_write = matches!(
            method,
            "PUT" | "DELETE" | "MKCOL" | "COPY" | "MOVE" | "PROPPATCH"
        );
        // a PUT body streams into blocks; any other body is small and read whole
        let (body, mut payload) = if method == "PUT" {
            (web::Bytes::new(), Some(payload))
        } else {
            (read_small_body(payload).await?, None)
        };
        let body = &body;
        if vhost.is_none() && (raw_path == "/_health/ping" || raw_path == "/metrics") {
            return self.management(req, raw_path);
        }
        if method == "OPTIONS" && req.headers().contains_key("access-control-request-method") {
            return Ok(dav::preflight());
        }
        let parsed = path::parse(raw_path, vhost.as_deref())?;
        let creds_ok = vhost.is_some()
            || self.cfg.trust_all_content
            || (host.is_some() && host == self.download_host);
        let attachment = vhost.is_none()
            && !self.cfg.trust_all_content
            && host.is_some()
            && host == self.download_host;

        // tokens offered in the query string or a POST form
        let query = req.uri().query().unwrap_or_default();
        let mut query_tokens = path::query_values(query, "api_token");
        let ctype = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if method == "POST" && ctype.starts_with("application/x-www-form-urlencoded") {
            let form = std::str::from_utf8(body).unwrap_or_default();
            query_tokens.extend(path::query_values(form, "api_token"));
        } else if method == "POST" && ctype.starts_with("multipart/form-data") {
            let ct = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            query_tokens.extend(path::multipart_values(ct, body, "api_token"));
        }
        let webdav = !matches!(method, "GET" | "HEAD" | "POST");
        if !query_tokens.is_empty() && host.is_some() {
            if !creds_ok {
                return Err(Error::BadRequest(
                    "api_token in a URL or form is refused on this host: a page served here \
                     could read your other collections with it. Use a collection host \
                     (<id>.<domain>), the download host, or a /t=<token>/ sharing URL"
                        .into(),
                ));
            }
            if !webdav {
                if let Some(t) = query_tokens.first() {
                    return Ok(self.cookie_redirect(req, query, t));
                }
            }
        }

        match method {
            "OPTIONS" => return Ok(dav::options()),
            "GET" | "HEAD" | "PROPFIND" | "LOCK" | "UNLOCK" => {}
            _ if is_write => {}
            _ => return Err(Error::MethodNotAllowed),
        }

        // candidate tokens, in order
        let mut client: Vec<Option<Token>> = Vec::new();
        let t_mode = parsed.path_token.is_some();
        if let Some(t) = &parsed.path_token {
            client.push(Some(t.parse().map_err(|_| Error::NotFound)?));
        } else if creds_ok {
            for t in self.client_tokens(req, &query_tokens) {
                client.push(t.parse().ok());
            }
        }
        let ctx = Ctx { attachment, parsed };
        let mut seen_denial = false;
        let mut tries: Vec<(Option<Token>, bool)> = client.into_iter().map(|t| (t, true)).collect();
        if !t_mode {
            if let Some(a) = &self.cfg.anonymous_token {
                tries.push((Some(a.clone()), false));
            }
        }
        if tries.is_empty() {
            tries.push((None, false));
        }
        for (tok, is_client) in tries {
            let Some(tok) = tok else {
                // no token at all: only the static listings resolve
                if let Some(n) = path::static_node(&ctx.parsed) {
                    if is_write {
                        return Err(write::Target::of(n).err().unwrap_or(Error::Unauthorized));
                    }
                    return self.act(req, body, &mut payload, &ctx, n, None).await;
                }
                continue;
            };
            match path::resolve(&self.up, &ctx.parsed, &tok).await {
                // a write with the anonymous token: ask for credentials instead
                Ok(_) if is_write && !is_client => return Err(Error::Unauthorized),
                Ok(n) => return self.act(req, body, &mut payload, &ctx, n, Some(tok)).await,
                Err(Error::NotFound) => seen_denial |= is_client,
                Err(Error::Unauthorized) => {}
                Err(Error::NoSuchPath) if is_write => {
                    return Err(Error::ReadOnly(
                        "nothing can be created here: this level lists projects and \
                         collections; write inside a collection"
                            .into(),
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        if is_write && seen_denial && !t_mode && ctx.parsed.site == path::Site::Tree {
            // a listing level, or a name no collection of yours has: nothing to write
            // into (the same answer whether or not someone else's collection is there)
            return Err(Error::ReadOnly(
                "there is no collection you can write at this path: write inside a \
                 collection (its listing levels can't be changed over WebDAV)"
                    .into(),
            ));
        }
        if t_mode || seen_denial {
            Err(Error::NotFound)
        } else {
            Err(Error::Unauthorized)
        }
    }

    /// Header, Basic, query and cookie credentials, in the order DESIGN §5 gives.
    fn client_tokens(&self, req: &HttpRequest, query_tokens: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(a) = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            let (scheme, rest) = a.trim().split_once(' ').unwrap_or((a, ""));
            let rest = rest.trim();
            if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth2") {
                out.push(rest.to_string());
            } else if scheme.eq_ignore_ascii_case("basic") {
                let dec = base64::engine::general_purpose::STANDARD
                    .decode(rest)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                if let Some((user, pass)) = dec.as_deref().and_then(|d| d.split_once(':')) {
                    if !user.is_empty() && !pass.is_empty() {
                        out.push(pass.to_string());
                    }
                }
            }
        }
        out.extend(query_tokens.iter().cloned());
        for v in req.headers().get_all(header::COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            for kv in v.split(';') {
                if let Some(("api_token", val)) = kv.trim().split_once('=') {
                    let val = val.trim_matches('"');
                    let dec = base64::engine::general_purpose::URL_SAFE
                        .decode(val)
                        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(val))
                        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(val))
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok());
                    if let Some(t) = dec {
                        out.push(t);
                    }
                }
            }
        }
        out
    }

    /// 303 to the same path without `api_token`, the token moved into a cookie.
    fn cookie_redirect(&self, req: &HttpRequest, query: &str, token: &str) -> HttpResponse {
        let rest: Vec<&str> = query
            .split('&')
            .filter(|kv| !kv.is_empty() && kv.split('=').next() != Some("api_token"))
            .collect();
        let host_port = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let mut loc = format!("//{host_port}{}", req.uri().path());
        if !rest.is_empty() {
            loc.push('?');
            loc.push_str(&rest.join("&"));
        }
        let https = req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .map(|p| p.eq_ignore_ascii_case("https"))
            .unwrap_or(req.connection_info().scheme() == "https");
        let mut cookie = format!(
            "api_token={}; Path=/; HttpOnly; SameSite=Lax",
            base64::engine::general_purpose::URL_SAFE.encode(token)
        );
        if https {
            cookie.push_str("; Secure");
        }
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, loc))
            .insert_header((header::SET_COOKIE, cookie))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish()
    }

    async fn act(
        &self,
        req: &HttpRequest,
        body: &web::Bytes,
        payload: &mut Option<web::Payload>,
        ctx: &Ctx,
        node: Node,
        token: Option<Token>,
    ) -> Result<HttpResponse, Error> {
        let method = req.method().as_str();
        if let (Node::Missing { .. }, "GET" | "HEAD" | "PROPFIND") = (&node, method) {
            return Err(Error::NoSuchPath);
        }
        let write_token = || token.clone().ok_or(Error::Unauthorized);
        match method {
            "PUT" => {
                let p = payload
                    .take()
                    .ok_or_else(|| Error::Internal("the PUT body was already read".into()))?;
                write::put(&self.up, req, p, write::Target::of(node)?, write_token()?).await
            }
            "MKCOL" => {
                write::mkcol(&self.up, body, write::Target::of(node)?, &write_token()?).await
            }
            "DELETE" => {
                write::delete(&self.up, req, write::Target::of(node)?, &write_token()?).await
            }
            "PROPPATCH" => {
                write::proppatch(
                    &self.up,
                    req,
                    body,
                    write::Target::of(node)?,
                    &write_token()?,
                )
                .await
            }
            "COPY" | "MOVE" => {
                let tok = write_token()?;
                let src = write::Target::of(node)?;
                let dst = write::Target::of(self.destination(req, &tok).await?)?;
                write::copy_move(&self.up, req, src, dst, &tok, method == "MOVE").await
            }
            _ => self.read(req, body, ctx, node, token).await,
        }
    }

    /// The node a COPY or MOVE `Destination` names, resolved with the request's token.
    async fn destination(&self, req: &HttpRequest, tok: &Token) -> Result<Node, Error> {
        let d = req
            .headers()
            .get("destination")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::BadRequest("COPY and MOVE need a Destination header".into()))?
            .trim();
        let req_host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let (host, path) = match d.split_once("://") {
            Some((_, rest)) => match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            },
            None if d.starts_with('/') => (req_host, d),
            None => {
                return Err(Error::BadRequest(format!(
                    "Destination must be an absolute URL or path, not {d:?}"
                )))
            }
        };
        if !host.eq_ignore_ascii_case(req_host) {
            return Err(Error::BadGateway(format!(
                "Destination is on another server ({host}): COPY and MOVE stay on this one"
            )));
        }
        let path = path.split(['?', '#']).next().unwrap_or("/");
        let vhost = self.vhost_id(&strip_port(host));
        let parsed = path::parse(path, vhost.as_deref())?;
        match path::resolve(&self.up, &parsed, tok).await {
            Err(Error::NotFound | Error::NoSuchPath | Error::Unauthorized) => {
                Err(Error::Forbidden(format!(
                    "Destination {path:?} is not inside a collection this token can see"
                )))
            }
            r => r,
        }
    }

    async fn read(
        &self,
        req: &HttpRequest,
        body: &web::Bytes,
        ctx: &Ctx,
        node: Node,
        token: Option<Token>,
    ) -> Result<HttpResponse, Error> {
        let method = req.method().as_str();
        match method {
            "GET" | "HEAD" => match node {
                Node::Coll {
                    view,
                    path,
                    dir: false,
                    ..
                } => {
                    if ctx.parsed.trailing {
                        // `file/` names no directory
                        return Err(Error::NotFound);
                    }
                    let tok = token.ok_or(Error::Unauthorized)?;
                    read::serve_file(
                        self.up_handle(),
                        req,
                        ctx,
                        &view,
                        &path,
                        tok,
                        self.bytes_out.clone(),
                    )
                }
                n => {
                    if !ctx.parsed.trailing {
                        let mut loc = format!("{}/", req.uri().path());
                        if let Some(q) = req.uri().query() {
                            loc.push('?');
                            loc.push_str(q);
                        }
                        return Ok(HttpResponse::SeeOther()
                            .insert_header((header::LOCATION, loc))
                            .finish());
                    }
                    if let (Node::Coll { view, path, .. }, true) = (&n, zip::wanted(req)) {
                        let tok = token.ok_or(Error::Unauthorized)?;
                        let name = match ctx.parsed.segs.last() {
                            Some(s) => s.clone(),
                            None => view.pdh.to_string(),
                        };
                        return Ok(zip::serve(self.up_handle(), view, path, &name, tok));
                    }
                    Ok(dav::html_listing(&ctx.parsed, &n))
                }
            },
            "PROPFIND" => dav::propfind(req, body, ctx, node),
            // LOCK on a missing path answers 201 and creates nothing
            "LOCK" => dav::lock(req, body, matches!(node, Node::Missing { .. })),
            "UNLOCK" => Ok(HttpResponse::NoContent().finish()),
            _ => Err(Error::MethodNotAllowed),
        }
    }

    fn up_handle(&self) -> &Arc<Upstream> {
        &self.up
    }

    fn management(&self, req: &HttpRequest, path: &str) -> Result<HttpResponse, Error> {
        let want = &self.cfg.management_token;
        if want.is_empty() {
            return Err(Error::NotFound);
        }
        let got = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let ok: bool = got.len() == want.len()
            && got
                .bytes()
                .zip(want.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !ok {
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
        let text = format!(
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
        );
        Ok(HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(text))
    }
}
