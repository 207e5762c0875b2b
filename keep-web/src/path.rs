//! URL forms (DESIGN §5) and resolving them to a node through the API.

use std::sync::Arc;

use keep_format::{EntryKind, Pdh, Token, Uuid, UuidKind};

use crate::error::Error;
use crate::upstream::{Item, Upstream, View};

/// Where the path starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Site {
    /// Inside one collection (vhost or `/c=<id>/`): the id as given.
    Collection(String),
    /// `/`, `/by_id/…`, `/users/…`.
    Tree,
}

#[derive(Clone, Debug)]
pub struct Parsed {
    pub site: Site,
    /// Decoded path elements after the site root (and any `t=`/`_` elements).
    pub segs: Vec<String>,
    /// The `t=` token text, decoded.
    pub path_token: Option<String>,
    /// The raw path ended with `/`.
    pub trailing: bool,
    /// The URL names a collection by PDH (so its content can't change).
    pub pdh_url: bool,
}

/// A resolved target.
pub enum Node {
    Root,
    ById,
    Users(Vec<(String, String)>),
    /// A project, filter group or home: its children.
    Project(Vec<Item>),
    /// A project or filter group met again on its own path: empty and read-only.
    Empty,
    Coll {
        view: Arc<View>,
        /// Path inside the collection ("" = its root).
        path: String,
        dir: bool,
        /// The collection's UUID when the URL named it by one (writes need it).
        uuid: Option<String>,
    },
    /// A path inside a collection that doesn't exist (yet: PUT and MKCOL make it).
    Missing {
        view: Arc<View>,
        path: String,
        uuid: Option<String>,
    },
}

/// A collection id: UUID, PDH (`+`, ` ` or `-` before the size) or PDH DNS label.
pub enum CollId {
    Uuid(String),
    Pdh(Pdh),
}

pub fn coll_id(s: &str) -> Option<CollId> {
    if let Ok(u) = s.parse::<Uuid>() {
        return (u.kind() == UuidKind::Collection).then(|| CollId::Uuid(u.to_string()));
    }
    if let Ok(p) = Pdh::parse_loose(s) {
        return Some(CollId::Pdh(p));
    }
    Pdh::from_dns_label(s).ok().map(CollId::Pdh)
}

fn hexval(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes (optionally `+` → space) into UTF-8.
pub fn decode(s: &str, plus: bool) -> Result<String, Error> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let v = b
                    .get(i + 1)
                    .and_then(|&h| hexval(h))
                    .zip(b.get(i + 2).and_then(|&l| hexval(l)))
                    .ok_or_else(|| Error::BadRequest("bad %-escape in the URL".into()))?;
                out.push(v.0 * 16 + v.1);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Error::BadRequest("the URL is not UTF-8".into()))
}

/// Percent-encodes one path element.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The decoded values of `key` in a query string or urlencoded form.
pub fn query_values(q: &str, key: &str) -> Vec<String> {
    q.split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k, true).ok()? == key).then(|| decode(v, true).ok())?
        })
        .filter(|v| !v.is_empty())
        .collect()
}

/// The values of the `multipart/form-data` fields named `key` in `body`, given the
/// request's Content-Type (which carries the boundary). Text fields only; a part with
/// a filename is not a form value.
pub fn multipart_values(content_type: &str, body: &[u8], key: &str) -> Vec<String> {
    let Some(boundary) = content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    }) else {
        return Vec::new();
    };
    if boundary.is_empty() {
        return Vec::new();
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Vec::new();
    };
    let delim = format!("--{boundary}");
    let want = format!("name=\"{key}\"");
    let mut out = Vec::new();
    for part in text.split(delim.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let named = head.lines().any(|l| {
            let l = l.trim();
            l.get(..20)
                .is_some_and(|h| h.eq_ignore_ascii_case("content-disposition:"))
                && l.split(';').any(|p| p.trim() == want)
                && !l.contains("filename=")
        });
        if named {
            let v = value.strip_suffix("\r\n").unwrap_or(value);
            if !v.is_empty() {
                out.push(v.to_string());
            }
        }
    }
    out
}

/// The path with any `t=<token>` element hidden, for logs.
pub fn redact(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if strip_key(s, "t").is_some() {
                "t=…"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn element(raw: &str) -> Result<String, Error> {
    let lower = raw.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return Err(Error::BadRequest(
            "an escaped / or \\ in a path element".into(),
        ));
    }
    let d = decode(raw, false)?;
    if d == "." || d == ".." || d.contains('\0') || d.contains('/') || d.contains('\\') {
        return Err(Error::BadRequest(format!(
            "path element {:?} is not allowed",
            d.replace('\0', "\\0")
        )));
    }
    Ok(d)
}

/// The rest of a raw path element that starts with `key` and `=`, the `=` written as
/// is or %-encoded (davfs2 and others send `/c%3D…/`).
fn strip_key<'a>(seg: &'a str, key: &str) -> Option<&'a str> {
    let rest = seg.strip_prefix(key)?;
    rest.strip_prefix('=')
        .or_else(|| rest.strip_prefix("%3D"))
        .or_else(|| rest.strip_prefix("%3d"))
}

/// Splits a raw request path into its form. `vhost`: the collection id from the Host.
pub fn parse(raw: &str, vhost: Option<&str>) -> Result<Parsed, Error> {
    let trailing = raw.ends_with('/');
    let raw_segs: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
    let mut i = 0;
    let mut site = Site::Tree;
    if let Some(v) = vhost {
        site = Site::Collection(v.to_string());
    } else if let Some(id) = raw_segs.first().and_then(|s| strip_key(s, "c")) {
        site = Site::Collection(decode(id, false)?);
        i = 1;
    }
    let mut path_token = None;
    if matches!(site, Site::Collection(_)) {
        if let Some(t) = raw_segs.get(i).and_then(|s| strip_key(s, "t")) {
            let t = decode(t, false)?;
            if t.contains('\0') {
                return Err(Error::BadRequest("NUL in the t= token".into()));
            }
            path_token = Some(t);
            i += 1;
        }
        if raw_segs.get(i) == Some(&"_") {
            i += 1;
        }
    }
    let segs = raw_segs[i.min(raw_segs.len())..]
        .iter()
        .copied()
        .map(element)
        .collect::<Result<Vec<_>, _>>()?;
    let pdh_url = match &site {
        Site::Collection(id) => matches!(coll_id(id), Some(CollId::Pdh(_))),
        Site::Tree => {
            segs.first().map(String::as_str) == Some("by_id")
                && segs
                    .get(1)
                    .is_some_and(|id| matches!(coll_id(id), Some(CollId::Pdh(_))))
        }
    };
    Ok(Parsed {
        site,
        segs,
        path_token,
        trailing,
        pdh_url,
    })
}

/// Nodes that need no token: `/` and `/by_id/`.
pub fn static_node(p: &Parsed) -> Option<Node> {
    if p.site != Site::Tree {
        return None;
    }
    match p.segs.as_slice() {
        [] => Some(Node::Root),
        [b] if b == "by_id" => Some(Node::ById),
        _ => None,
    }
}

fn api_id(c: &CollId) -> String {
    match c {
        CollId::Uuid(u) => u.clone(),
        CollId::Pdh(p) => p.to_string(),
    }
}

async fn collection(up: &Upstream, id: &str, rest: &[String], tok: &Token) -> Result<Node, Error> {
    let c = coll_id(id).ok_or(Error::NotFound)?;
    let view = up.collection(&api_id(&c), tok).await?;
    let uuid = match c {
        CollId::Uuid(u) => Some(u),
        CollId::Pdh(_) => None,
    };
    let path = rest.join("/");
    match view.index.stat(&path) {
        None => Ok(Node::Missing { view, path, uuid }),
        Some(EntryKind::File { .. }) => Ok(Node::Coll {
            view,
            path,
            dir: false,
            uuid,
        }),
        Some(EntryKind::Dir) => Ok(Node::Coll {
            view,
            path,
            dir: true,
            uuid,
        }),
    }
}

/// Walks from a project (or home) down `rest`, through subprojects, filter groups and
/// into a collection; a group met again on its own path is [`Node::Empty`].
async fn walk(up: &Upstream, start: &str, rest: &[String], tok: &Token) -> Result<Node, Error> {
    let mut on_path = vec![start.to_string()];
    let mut cur = start.to_string();
    let mut rest = rest;
    loop {
        let items = up.contents(&cur, tok).await?;
        let Some((name, tail)) = rest.split_first() else {
            return Ok(Node::Project(items));
        };
        let item = items
            .into_iter()
            .find(|i| &i.name == name)
            .ok_or(Error::NoSuchPath)?;
        if item.is_collection {
            return collection(up, &item.uuid, tail, tok)
                .await
                .map_err(|e| match e {
                    // visible in the listing but not readable, or gone since: final
                    Error::NotFound => Error::NoSuchPath,
                    e => e,
                });
        }
        if on_path.contains(&item.uuid) {
            return if tail.is_empty() {
                Ok(Node::Empty)
            } else {
                Err(Error::NoSuchPath)
            };
        }
        on_path.push(item.uuid.clone());
        cur = item.uuid;
        rest = tail;
    }
}

pub async fn resolve(up: &Upstream, p: &Parsed, tok: &Token) -> Result<Node, Error> {
    if let Site::Collection(id) = &p.site {
        return collection(up, id, &p.segs, tok).await;
    }
    if let Some(n) = static_node(p) {
        return Ok(n);
    }
    let segs = p.segs.as_slice();
    match segs {
        [b, id, rest @ ..] if b == "by_id" => {
            if coll_id(id).is_some() {
                return collection(up, id, rest, tok).await;
            }
            // not an id at all: nothing can be there, whoever asks
            let u: Uuid = id.parse().map_err(|_| Error::NoSuchPath)?;
            match u.kind() {
                UuidKind::Group => {
                    up.group(id, tok).await?;
                    walk(up, id, rest, tok).await
                }
                UuidKind::User => walk(up, id, rest, tok).await,
                _ => Err(Error::NoSuchPath),
            }
        }
        [u] if u == "users" => Ok(Node::Users(up.users(tok).await?)),
        [u, name, rest @ ..] if u == "users" => {
            let users = up.users(tok).await?;
            let (_, uuid) = users
                .iter()
                .find(|(n, _)| n == name)
                .ok_or(Error::NotFound)?;
            walk(up, uuid, rest, tok).await
        }
        _ => Err(Error::NoSuchPath),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let p = parse(
            "/c=abc/t=v2%2Fzzzzz-gj3su-000000000000000%2Fsecret/_/t=x/",
            None,
        )
        .unwrap();
        assert_eq!(p.site, Site::Collection("abc".into()));
        assert_eq!(
            p.path_token.as_deref(),
            Some("v2/zzzzz-gj3su-000000000000000/secret")
        );
        assert_eq!(p.segs, vec!["t=x".to_string()]);
        assert!(p.trailing);
        assert!(parse("/c=abc/a/%2e%2e/b", None).is_err());
        assert!(parse("/c=abc/a%2fb", None).is_err());
        assert!(parse("/c=abc/a%00b", None).is_err());
        assert!(parse("/by_id/../x", None).is_err());
        // `=` %-encoded, as davfs2 sends it
        let p = parse("/c%3Dabc/t%3dtok/f", None).unwrap();
        assert_eq!(p.site, Site::Collection("abc".into()));
        assert_eq!(p.path_token.as_deref(), Some("tok"));
        assert_eq!(p.segs, vec!["f".to_string()]);
        let p = parse("/_/t=x", Some("abc")).unwrap();
        assert_eq!(p.segs, vec!["t=x".to_string()]);
        assert!(p.path_token.is_none());
    }

    #[test]
    fn redacts() {
        assert_eq!(redact("/c=x/t=secret/f"), "/c=x/t=…/f");
        assert_eq!(redact("/c=x/t%3Dsecret/f"), "/c=x/t=…/f");
    }

    #[test]
    fn multipart_form_token() {
        let body = "--b1\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n\
                    --b1\r\nContent-Disposition: form-data; name=\"api_token\"\r\n\r\nv2/a/b\r\n\
                    --b1\r\nContent-Disposition: form-data; name=\"api_token\"; filename=\"f\"\r\n\r\nno\r\n\
                    --b1--\r\n";
        let ct = "multipart/form-data; boundary=\"b1\"";
        assert_eq!(
            multipart_values(ct, body.as_bytes(), "api_token"),
            vec!["v2/a/b"]
        );
        assert!(multipart_values("multipart/form-data", body.as_bytes(), "api_token").is_empty());
    }
}
