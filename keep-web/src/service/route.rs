//! One request, step by step: its limits, its body, the management endpoints and CORS
//! preflights, its path, the query-token redirect, then authorization (the candidate
//! tokens in DESIGN §5's order, the first that can see the path wins) and the WebDAV
//! handler.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use keep_format::Token;

use crate::credentials;
use crate::dav::{self, call::Call, options};
use crate::error::{Error, Over};
use crate::limits::QUERY_MAX;
use crate::ops::write::Target;
use crate::request::method::DavMethod;
use crate::request::{body, headers};
use crate::resolve::host::Origin;
use crate::resolve::node::{resolve, static_node, Node};
use crate::resolve::url::{coll_id, parse, Parsed, Site};
use crate::service::keepweb::Inner;

/// A token to try, and whether the client offered it (not the anonymous token).
type Candidate = (Option<Token>, bool);

impl Inner {
    pub(super) async fn route(
        &self,
        req: &HttpRequest,
        payload: web::Payload,
    ) -> Result<HttpResponse, Error> {
        check_sizes(req)?;
        let method = DavMethod::parse(req.method());
        let origin = self.hosts.origin(headers::get(req, header::HOST));
        // a PUT body streams into blocks; any other body is small and read whole
        let (body, payload) = match method {
            Some(DavMethod::Put) => (web::Bytes::new(), Some(payload)),
            _ => (
                body::read_small(payload, req.method().as_str()).await?,
                None,
            ),
        };
        if let Some(r) = self.before_path(req, method, &origin)? {
            return Ok(r);
        }
        let parsed = parse(req.uri().path(), origin.vhost.as_deref())?;
        let query_tokens = credentials::query_tokens(req, method, &body)?;
        if let Some(r) = query_token_redirect(req, method, &origin, &query_tokens)? {
            return Ok(r);
        }
        let method = match method {
            Some(DavMethod::Options) => return Ok(options::options()),
            Some(m) if m.acts_on_a_path() => m,
            _ => return Err(Error::MethodNotAllowed),
        };
        let tries = self.candidates(req, &origin, &parsed, &query_tokens)?;
        let (node, token) = self.authorize(&parsed, method, tries).await?;
        let call = Call {
            req,
            method,
            parsed: &parsed,
            attachment: origin.attachment,
            body: &body,
            payload,
            up: &self.up,
            hosts: &self.hosts,
            repacker: &self.repacker,
            bytes_out: &self.metrics.bytes_out,
        };
        dav::handle(call, node, token).await
    }

    /// What is answered before the path is looked at: the management endpoints (on any
    /// host but a collection vhost) and CORS preflights.
    fn before_path(
        &self,
        req: &HttpRequest,
        method: Option<DavMethod>,
        origin: &Origin,
    ) -> Result<Option<HttpResponse>, Error> {
        let path = req.uri().path();
        if origin.vhost.is_none() && (path == "/_health/ping" || path == "/metrics") {
            let r = self
                .metrics
                .management(req, path, &self.cfg.management_token)?;
            return Ok(Some(r));
        }
        let preflight = req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if method == Some(DavMethod::Options) && preflight {
            return Ok(Some(options::preflight()));
        }
        Ok(None)
    }

    /// The tokens to try, in order: a `t=` path token alone (it replaces every other
    /// credential, and a bad one is a 404); else the client's credentials where this host
    /// honours them, then the anonymous token.
    fn candidates(
        &self,
        req: &HttpRequest,
        origin: &Origin,
        parsed: &Parsed,
        query_tokens: &[String],
    ) -> Result<Vec<Candidate>, Error> {
        let mut tries: Vec<Candidate> = Vec::new();
        if let Some(t) = &parsed.path_token {
            let t = credentials::bounded(t.clone(), "t=")?;
            tries.push((Some(t.parse().map_err(|_| Error::NotFound)?), true));
            return Ok(tries);
        }
        if origin.creds_ok {
            for t in credentials::client_tokens(req, query_tokens)? {
                tries.push((t.parse().ok(), true));
            }
        }
        if let Some(a) = &self.cfg.anonymous_token {
            tries.push((Some(a.clone()), false));
        }
        if tries.is_empty() {
            tries.push((None, false));
        }
        Ok(tries)
    }

    /// The node the path names for the first candidate that can see it, with that
    /// token; or the status DESIGN §5 gives (401 with no usable token, 404 when a token
    /// can't see it or a `t=` token is bad — for writes too: existence never leaks, and a
    /// write the caller could never see is not told apart from a missing name).
    async fn authorize(
        &self,
        parsed: &Parsed,
        method: DavMethod,
        tries: Vec<Candidate>,
    ) -> Result<(Node, Option<Token>), Error> {
        let is_write = method.is_write();
        let t_mode = parsed.path_token.is_some();
        let mut seen_denial = false;
        for (tok, is_client) in tries {
            let Some(tok) = tok else {
                // no token at all: only the static listings resolve
                if let Some(n) = static_node(parsed) {
                    if is_write {
                        return Err(Target::of(n).err().unwrap_or(Error::Unauthorized));
                    }
                    return Ok((n, None));
                }
                continue;
            };
            match resolve(&self.up, parsed, &tok).await {
                // a write with the anonymous token: ask for credentials instead
                Ok(_) if is_write && !is_client => return Err(Error::Unauthorized),
                Ok(n) => return Ok((n, Some(tok))),
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
        if is_write && seen_denial && !t_mode && listing_level(parsed) {
            // a new name in a listing (`/`, `/by_id/`, `/users/`, a user's folder): the
            // same answer whether or not someone else's collection is there
            return Err(Error::ReadOnly(
                "nothing can be created here: this level lists projects and \
                 collections; write inside a collection"
                    .into(),
            ));
        }
        Err(if t_mode || seen_denial {
            Error::NotFound
        } else {
            Error::Unauthorized
        })
    }
}

/// Does a tree path name an entry of a listing itself (`/x`, `/by_id/<not an id>`,
/// `/users/<name>`) rather than something inside a collection or a user's home? A write
/// there is 405 (DESIGN §5); inside what the caller can't see it is 404.
fn listing_level(parsed: &Parsed) -> bool {
    if parsed.site != Site::Tree {
        return false;
    }
    match parsed.segs.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] | [_] => true,
        ["by_id", id, ..] => coll_id(id).is_none(),
        ["users", _] => true,
        _ => false,
    }
}

/// Header and query sizes (431, 414).
fn check_sizes(req: &HttpRequest) -> Result<(), Error> {
    headers::check_sizes(req)?;
    let q = req.query_string();
    if q.len() > QUERY_MAX {
        return Err(Error::limit(
            format!("the query string is {} bytes long", q.len()),
            format!("{QUERY_MAX} bytes of query"),
            Over::Uri,
        ));
    }
    Ok(())
}

/// A token in the query string or a POSTed form: refused (400) where credentials are not
/// honoured; for a browser's GET, HEAD or POST, a 303 that moves it into a cookie
/// (WebDAV methods never redirect: for them it is an ordinary credential).
fn query_token_redirect(
    req: &HttpRequest,
    method: Option<DavMethod>,
    origin: &Origin,
    query_tokens: &[String],
) -> Result<Option<HttpResponse>, Error> {
    if query_tokens.is_empty() || origin.host.is_none() {
        return Ok(None);
    }
    if !origin.creds_ok {
        return Err(Error::BadRequest(
            "api_token in a URL or form is refused on this host: a page served here \
             could read your other collections with it. Use a collection host \
             (<id>.<domain>), the download host, or a /t=<token>/ sharing URL"
                .into(),
        ));
    }
    // a method keep-web doesn't know is no browser's: no redirect
    match (method, query_tokens.first()) {
        (Some(m), Some(t)) if m.is_browser() => Ok(Some(credentials::cookie_redirect(req, t))),
        _ => Ok(None),
    }
}
