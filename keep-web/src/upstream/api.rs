//! The API server over HTTP: JSON records, list pages, updates. This file and `keep.rs`
//! are the only ones that speak HTTP to other services (a shared client crate can
//! replace them without touching the rest).

use keep_format::Token;
use serde_json::Value;

use crate::error::Error;
use crate::limits::{LISTING_MAX, UPSTREAM_READ_TIMEOUT};
use crate::upstream::http::Http;

/// Page size for list calls (the API's maximum).
const PAGE: usize = 1000;

pub struct ApiClient {
    http: Http,
    url: String,
}

/// The status a failed read from the API becomes: the caller may not see it (or it
/// doesn't exist) is 404, whatever the API said, so that existence never leaks.
fn read_status(st: reqwest::StatusCode, what: &str) -> Error {
    match st.as_u16() {
        401 => Error::Unauthorized,
        400 | 403 | 404 | 422 => Error::NotFound,
        502..=504 => unavailable(st, what),
        _ => Error::Upstream(format!("the API answered {st} for {what}")),
    }
}

/// The API (or a proxy before it) says it can't serve now: so does keep-web.
fn unavailable(st: reqwest::StatusCode, what: &str) -> Error {
    Error::Unavailable {
        what: format!("the API answered {st} for {what}"),
        source: None,
    }
}

/// The first message of an API error body (`{"errors": ["…"]}`), else the status.
async fn error_text(r: reqwest::Response) -> String {
    let st = r.status();
    let v: Option<Value> = r.json().await.ok();
    v.as_ref()
        .and_then(|v| v.get("errors"))
        .and_then(|e| e.get(0))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("the API answered {st}"))
}

impl ApiClient {
    pub fn new(http: Http, url: &str) -> ApiClient {
        ApiClient {
            http,
            url: url.trim_end_matches('/').to_string(),
        }
    }

    /// `GET {api}{path}` with `token`.
    pub async fn get(
        &self,
        path: &str,
        token: &Token,
        query: &[(&str, String)],
    ) -> Result<Value, Error> {
        let url = format!("{}{path}", self.url);
        let r = self
            .http
            .send_idempotent(|c| {
                c.get(&url)
                    .query(query)
                    .timeout(UPSTREAM_READ_TIMEOUT)
                    .bearer_auth(token.expose())
            })
            .await
            .map_err(|e| Error::http(format!("API request {path}"), e))?;
        if !r.status().is_success() {
            return Err(read_status(r.status(), path));
        }
        r.json()
            .await
            .map_err(|e| Error::http(format!("API response for {path}"), e))
    }

    /// Every item of a list call, page by page (at most [`LISTING_MAX`]).
    pub async fn list_all(&self, path: &str, token: &Token) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        loop {
            let query = [
                ("limit", PAGE.to_string()),
                ("offset", out.len().to_string()),
            ];
            let v = self.get(path, token, &query).await?;
            let items = match v.get("items") {
                Some(Value::Array(a)) => a.clone(),
                _ => Vec::new(),
            };
            let avail = v
                .get("items_available")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let n = items.len();
            out.extend(items);
            if out.len() > LISTING_MAX {
                return Err(Error::Upstream(format!(
                    "the API lists more than {LISTING_MAX} entries at {path} (keep-web's \
                     limit for one listing; see doc/webdav.md, Limits)"
                )));
            }
            if n == 0 || out.len() as u64 >= avail {
                return Ok(out);
            }
        }
    }

    /// `PATCH {api}{path}` with `body`; the errors map to the statuses a WebDAV client
    /// expects (403 may not write, 409 the tree changed under us, 412 a precondition).
    pub async fn patch(
        &self,
        path: &str,
        token: &Token,
        query: &[(&str, &str)],
        body: &Value,
    ) -> Result<Value, Error> {
        let r = self
            .http
            .pooled
            .patch(format!("{}{path}", self.url))
            .query(query)
            .bearer_auth(token.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| Error::http(format!("API update {path}"), e))?;
        let status = r.status();
        let st = status.as_u16();
        if (200..300).contains(&st) {
            return r
                .json()
                .await
                .map_err(|e| Error::http(format!("API response for {path}"), e));
        }
        let msg = error_text(r).await;
        Err(match st {
            401 => Error::Unauthorized,
            403 => Error::Forbidden(msg),
            404 => Error::NotFound,
            409 | 422 => Error::Conflict(msg),
            502..=504 => unavailable(status, path),
            412 => Error::PreconditionFailed(msg),
            400 => Error::BadRequest(msg),
            _ => Error::Upstream(format!("updating {path}: {msg}")),
        })
    }

    /// The keepstores the API publishes (`GET /arvados/v1/config`).
    pub async fn keepstore_urls(&self) -> Result<Vec<String>, Error> {
        let what = "API config";
        let url = format!("{}/arvados/v1/config", self.url);
        let r = self
            .http
            .send_idempotent(|c| c.get(&url))
            .await
            .map_err(|e| Error::http(what, e))?;
        if !r.status().is_success() {
            return Err(read_status(r.status(), what));
        }
        let v: Value = r.json().await.map_err(|e| Error::http(what, e))?;
        let urls: Vec<String> = match v.get("keepstore_urls") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            _ => Vec::new(),
        };
        if urls.is_empty() {
            return Err(Error::Upstream("the API lists no keepstores".into()));
        }
        Ok(urls)
    }
}
