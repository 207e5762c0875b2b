//! Request headers read once, with their limits, and response headers built from names
//! (which may hold any character a manifest allows) so that they are always valid.

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::HttpRequest;

use crate::error::{Error, Over};
use crate::limits::HEADER_MAX;
use crate::request::url;

/// Refuses a request with any header value longer than [`HEADER_MAX`] (431).
pub fn check_sizes(req: &HttpRequest) -> Result<(), Error> {
    for (name, v) in req.headers() {
        if v.len() > HEADER_MAX {
            return Err(Error::limit(
                format!("the {name} header is {} bytes long", v.len()),
                format!("{HEADER_MAX} bytes per header"),
                Over::Header,
            ));
        }
    }
    Ok(())
}

/// A header's value as text (`None` when absent or not visible ASCII).
pub fn get(req: &HttpRequest, name: impl AsRef<str>) -> Option<&str> {
    req.headers()
        .get(name.as_ref())
        .and_then(|v| v.to_str().ok())
}

/// `Depth` (RFC 4918 §10.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    Zero,
    One,
    Infinity,
}

/// The `Depth` header, if any; a value other than `0`, `1` or `infinity` is a 400.
pub fn depth(req: &HttpRequest) -> Result<Option<Depth>, Error> {
    let Some(v) = req.headers().get("depth") else {
        return Ok(None);
    };
    match v.to_str().map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        Ok("0") => Ok(Some(Depth::Zero)),
        Ok("1") => Ok(Some(Depth::One)),
        Ok("infinity") => Ok(Some(Depth::Infinity)),
        _ => Err(Error::BadRequest("Depth must be 0, 1 or infinity".into())),
    }
}

/// `Overwrite` (RFC 4918 §10.6): T unless the client says F.
pub fn overwrite(req: &HttpRequest) -> Result<bool, Error> {
    match get(req, "overwrite").map(str::trim) {
        None | Some("T") | Some("t") => Ok(true),
        Some("F") | Some("f") => Ok(false),
        Some(o) => Err(Error::BadRequest(format!(
            "Overwrite must be T or F, not {o:?}"
        ))),
    }
}

/// A `Destination` (RFC 4918 §10.3) split into its host (with port, as written; the
/// request's own host for an absolute path) and its raw path.
pub struct Destination<'a> {
    pub host: &'a str,
    pub path: &'a str,
}

/// The `Destination` of a COPY or MOVE: an absolute URL or an absolute path.
pub fn destination(req: &HttpRequest) -> Result<Destination<'_>, Error> {
    let d = get(req, "destination")
        .ok_or_else(|| Error::BadRequest("COPY and MOVE need a Destination header".into()))?
        .trim();
    let req_host = get(req, "host").unwrap_or_default();
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
    let path = path.split(['?', '#']).next().unwrap_or("/");
    Ok(Destination { host, path })
}

/// `Content-Disposition: attachment` for a file named `name` (RFC 6266): an ASCII
/// fallback (anything else, quotes and backslashes replaced by `_`) and the exact name
/// as `filename*=UTF-8''…`.
pub fn attachment(name: &str) -> (HeaderName, HeaderValue) {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    let v = format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{}",
        url::encode_attr(name)
    );
    // visible ASCII only, by construction
    let v = HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("attachment"));
    (actix_web::http::header::CONTENT_DISPOSITION, v)
}

/// A `Location` on this host: `path` (as the client sent it) with any run of `/` or `\`
/// at its start made one `/`, so that no path (`//evil.example`, `/\evil.example`) can
/// turn into a reference to another host; then `?query` when there is one.
pub fn local_location(path: &str, query: Option<&str>) -> (HeaderName, HeaderValue) {
    let rest = path.trim_start_matches(['/', '\\']);
    let mut loc = format!("/{rest}");
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        loc.push('?');
        loc.push_str(q);
    }
    let v = HeaderValue::from_str(&loc).unwrap_or(HeaderValue::from_static("/"));
    (actix_web::http::header::LOCATION, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_are_valid_headers() {
        let (_, v) = attachment("a\u{1}b\"c\\d é.txt");
        assert_eq!(
            v.to_str().unwrap(),
            "attachment; filename=\"a_b_c_d _.txt\"; filename*=UTF-8''a%01b%22c%5Cd%20%C3%A9.txt"
        );
    }

    #[test]
    fn locations_stay_on_this_host() {
        for (p, want) in [
            ("//evil.example", "/evil.example"),
            ("/\\evil.example/", "/evil.example/"),
            ("///x//y", "/x//y"),
            ("/c=x/sub", "/c=x/sub"),
        ] {
            let (_, v) = local_location(p, None);
            assert_eq!(v.to_str().unwrap(), want, "{p}");
        }
        let (_, v) = local_location("/a/", Some("x=1"));
        assert_eq!(v.to_str().unwrap(), "/a/?x=1");
    }
}
