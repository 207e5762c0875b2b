//! URL path forms (DESIGN §5): where a path starts (a collection, or the tree of
//! `/by_id/` and `/users/`), its `t=` token and `_` escape, and its elements, checked
//! and bounded before anything is looked up.

use keep_format::{Pdh, Uuid, UuidKind};

use crate::error::{Error, Over};
use crate::limits::{NAME_MAX, PATH_DEPTH_MAX, PATH_MAX};
use crate::request::url::decode;

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

/// A collection id: UUID, PDH (`+`, ` ` or `-` before the size) or PDH DNS label.
pub enum CollId {
    Uuid(String),
    Pdh(Pdh),
}

impl CollId {
    /// The id as the API takes it.
    pub fn api_id(&self) -> String {
        match self {
            CollId::Uuid(u) => u.clone(),
            CollId::Pdh(p) => p.to_string(),
        }
    }
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

fn element(raw: &str) -> Result<String, Error> {
    let lower = raw.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return Err(Error::BadRequest(
            "an escaped / or \\ in a path element".into(),
        ));
    }
    let d = decode(raw)?;
    if d == "." || d == ".." || d.contains('\0') || d.contains('/') || d.contains('\\') {
        return Err(Error::BadRequest(format!(
            "path element {:?} is not allowed",
            d.replace('\0', "\\0")
        )));
    }
    if d.len() > NAME_MAX {
        return Err(Error::limit(
            format!("a path element is {} bytes long", d.len()),
            format!("{NAME_MAX} bytes per path element"),
            Over::Uri,
        ));
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
    if raw.len() > PATH_MAX {
        return Err(Error::limit(
            format!("the path is {} bytes long", raw.len()),
            format!("{PATH_MAX} bytes of path"),
            Over::Uri,
        ));
    }
    let trailing = raw.ends_with('/');
    let raw_segs: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
    if raw_segs.len() > PATH_DEPTH_MAX {
        return Err(Error::limit(
            format!("the path has {} elements", raw_segs.len()),
            format!("{PATH_DEPTH_MAX} elements in a path"),
            Over::Uri,
        ));
    }
    let mut i = 0;
    let mut site = Site::Tree;
    if let Some(v) = vhost {
        site = Site::Collection(v.to_string());
    } else if let Some(id) = raw_segs.first().and_then(|s| strip_key(s, "c")) {
        site = Site::Collection(decode(id)?);
        i = 1;
    }
    let mut path_token = None;
    if matches!(site, Site::Collection(_)) {
        if let Some(t) = raw_segs.get(i).and_then(|s| strip_key(s, "t")) {
            let t = decode(t)?;
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
    fn limits() {
        let over = |r: Result<Parsed, Error>| {
            matches!(
                r,
                Err(Error::Limit {
                    over: Over::Uri,
                    ..
                })
            )
        };
        assert!(over(parse(&"/a".repeat(PATH_DEPTH_MAX + 1), None)));
        assert!(parse(&"/a".repeat(PATH_DEPTH_MAX), None).is_ok());
        assert!(over(parse(&format!("/{}", "n".repeat(NAME_MAX + 1)), None)));
        assert!(over(parse(
            &format!("/{}", "%41".repeat(NAME_MAX + 1)),
            None
        )));
        assert!(over(parse(&"/".repeat(PATH_MAX + 1), None)));
    }
}
