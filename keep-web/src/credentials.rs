//! Credentials (DESIGN §5): collected from the request in their order (Bearer, Basic,
//! `api_token` query and form values, the `api_token` cookie; a `t=` path token replaces
//! them all), the 303 that moves a query token into a cookie, and redaction for logs.
//!
//! A query key is matched decoded everywhere: `?api%5Ftoken=` is a credential, so it is
//! also stripped from the redirect's Location and hidden in logs.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;

use crate::error::{Error, Over};
use crate::limits::TOKEN_MAX;
use crate::request::headers;
use crate::request::method::DavMethod;
use crate::request::url;

/// Query and form keys that carry a credential.
pub const QUERY_KEYS: &[&str] = &["api_token"];

/// Refuses a credential longer than [`TOKEN_MAX`] (400 naming the limit).
pub fn bounded(t: String, source: &str) -> Result<String, Error> {
    if t.len() > TOKEN_MAX {
        return Err(Error::limit(
            format!("the {source} token is {} bytes long", t.len()),
            format!("{TOKEN_MAX} bytes per credential"),
            Over::Other,
        ));
    }
    Ok(t)
}

/// Tokens offered in the query string, or in a POSTed form (urlencoded or multipart).
pub fn query_tokens(
    req: &HttpRequest,
    method: Option<DavMethod>,
    body: &[u8],
) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for key in QUERY_KEYS {
        out.extend(url::query_values(req.query_string(), key));
    }
    if method == Some(DavMethod::Post) {
        let ct = headers::get(req, "content-type").unwrap_or_default();
        let lower = ct.to_ascii_lowercase();
        for key in QUERY_KEYS {
            if lower.starts_with("application/x-www-form-urlencoded") {
                let form = std::str::from_utf8(body).unwrap_or_default();
                out.extend(url::query_values(form, key));
            } else if lower.starts_with("multipart/form-data") {
                out.extend(url::multipart_values(ct, body, key));
            }
        }
    }
    out.into_iter().map(|t| bounded(t, "api_token")).collect()
}

/// The `Authorization` credential: a Bearer (or OAuth2) token, or a Basic password
/// with a non-empty user name.
fn authorization(req: &HttpRequest) -> Option<String> {
    let a = headers::get(req, header::AUTHORIZATION)?;
    let (scheme, rest) = a.trim().split_once(' ').unwrap_or((a, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth2") {
        return Some(rest.to_string());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let dec = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())?;
    let (user, pass) = dec.split_once(':')?;
    (!user.is_empty() && !pass.is_empty()).then(|| pass.to_string())
}

/// The tokens of every `api_token` cookie (base64 of the token).
fn cookies(req: &HttpRequest) -> Vec<String> {
    let mut out = Vec::new();
    for v in req.headers().get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for kv in v.split(';') {
            if let Some(("api_token", val)) = kv.trim().split_once('=') {
                let val = val.trim_matches('"');
                let engines = [
                    base64::engine::general_purpose::URL_SAFE,
                    base64::engine::general_purpose::STANDARD,
                    base64::engine::general_purpose::URL_SAFE_NO_PAD,
                ];
                let dec = engines
                    .iter()
                    .find_map(|e| e.decode(val).ok())
                    .and_then(|b| String::from_utf8(b).ok());
                out.extend(dec);
            }
        }
    }
    out
}

/// Header, Basic, query and cookie credentials, in the order DESIGN §5 gives.
pub fn client_tokens(req: &HttpRequest, query_tokens: &[String]) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    if let Some(t) = authorization(req) {
        out.push(bounded(t, "Authorization")?);
    }
    out.extend(query_tokens.iter().cloned());
    for t in cookies(req) {
        out.push(bounded(t, "api_token cookie")?);
    }
    Ok(out)
}

/// 303 to the same path without any credential in the query, the token moved into an
/// `HttpOnly` cookie (`Secure` behind https). The Location is `//host/path?rest`, the
/// host as the client named it.
pub fn cookie_redirect(req: &HttpRequest, token: &str) -> HttpResponse {
    let rest = url::query_without(req.query_string(), QUERY_KEYS);
    // `Host` is a valid header value; a path can't make the target another host
    let host_port = headers::get(req, header::HOST).unwrap_or_default();
    let (_, path) = headers::local_location(req.uri().path(), Some(&rest));
    let loc = format!("//{host_port}{}", path.to_str().unwrap_or("/"));
    let https = headers::get(req, "x-forwarded-proto")
        .map(|p| p.eq_ignore_ascii_case("https"))
        .unwrap_or(req.connection_info().scheme() == "https");
    let mut cookie = format!(
        "api_token={}; Path=/; HttpOnly; SameSite=Lax",
        base64::engine::general_purpose::URL_SAFE.encode(token)
    );
    if https {
        cookie.push_str("; Secure");
    }
    let mut r = HttpResponse::SeeOther();
    if let Ok(v) = HeaderValue::from_str(&loc) {
        r.insert_header((header::LOCATION, v));
    }
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.insert_header((header::SET_COOKIE, v));
    }
    r.insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// A request target for logs: every `t=` path token, `+A` locator signature and
/// credential query value replaced by `<redacted>`, whatever their %-encoding.
pub fn redact(path: &str, query: &str) -> String {
    let mut out = String::with_capacity(path.len() + query.len() + 1);
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let dec = percent_encoding::percent_decode_str(seg).decode_utf8_lossy();
        if dec.starts_with("t=") {
            out.push_str("t=<redacted>");
        } else if dec.contains("+A") {
            // a signed locator: keep the hash, the size and the other hints
            let parts: Vec<&str> = dec
                .split('+')
                .map(|p| if p.starts_with('A') { "A<redacted>" } else { p })
                .collect();
            out.push_str(&parts.join("+"));
        } else {
            out.push_str(seg);
        }
    }
    if !query.is_empty() {
        out.push('?');
        out.push_str(&url::query_redacted(query, QUERY_KEYS));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_encoding() {
        let h = "a".repeat(64);
        let p = format!("/{h}+3+A{}@00000001+Kzzzzz", "b".repeat(64));
        assert_eq!(redact(&p, ""), format!("/{h}+3+A<redacted>+Kzzzzz"));
        let p = format!("/{h}%2B3%2BA{}@00000001", "b".repeat(64));
        assert!(!redact(&p, "").contains("bbbb"));
        assert_eq!(
            redact("/c=x/t=secret123/_/f", "a=1&api_token=s3cr3t&b=2"),
            "/c=x/t=<redacted>/_/f?a=1&api_token=<redacted>&b=2"
        );
        for (p, q) in [
            ("/t%3Dabc/", ""),
            ("/%74%3dabc/", ""),
            ("/", "api%5Ftoken=abc"),
            ("/", "%61pi_token=abc&x=1"),
            ("/", "api_token=abc&api_token=abc2"),
        ] {
            let r = redact(p, q);
            assert!(!r.contains("abc"), "{p}?{q}: {r}");
        }
    }
}
