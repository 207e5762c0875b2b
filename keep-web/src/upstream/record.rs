//! API records (JSON) read into what keep-web uses. Everything here is upstream data:
//! what doesn't parse is a 502, never the client's 400.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keep_format::{Hash, Locator, Manifest, Pdh};
use serde_json::Value;

use crate::error::Error;
use crate::limits::MANIFEST_DEPTH_MAX;
use crate::upstream::types::Item;

pub fn modified(v: &Value) -> SystemTime {
    v.get("modified_at")
        .and_then(Value::as_str)
        .and_then(|s| keep_format::time::Timestamp::parse(s).ok())
        .map(SystemTime::from)
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

pub fn str_field<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

pub fn pdh(v: &Value, id: &str) -> Result<Pdh, Error> {
    v.get("portable_data_hash")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Upstream(format!("collection {id} without a portable_data_hash")))?
        .parse()
        .map_err(|source| Error::UpstreamData {
            what: format!("the portable_data_hash of collection {id}"),
            source,
        })
}

/// How many directory levels the deepest path of a manifest has, in one linear pass
/// over its text (the stream name's `/`s plus the file name's, `\057` counted too).
fn max_depth(text: &str) -> usize {
    let slashes = |s: &str| s.bytes().filter(|&b| b == b'/').count() + s.matches("\\057").count();
    text.lines()
        .map(|line| {
            let mut words = line.split_ascii_whitespace();
            let stream = words.next().map_or(0, slashes);
            let name = words
                .filter_map(|w| w.splitn(3, ':').nth(2))
                .map(slashes)
                .max()
                .unwrap_or(0);
            stream + name + 1
        })
        .max()
        .unwrap_or(0)
}

/// A manifest from the API, parsed, once it is known to be within keep-web's limits
/// (checked first, in linear time: parsing a deep path costs more than linear).
pub fn manifest(text: &str, id: &str) -> Result<Manifest, Error> {
    let depth = max_depth(text);
    if depth > MANIFEST_DEPTH_MAX {
        return Err(Error::Upstream(format!(
            "the manifest of collection {id} has a path {depth} levels deep; keep-web serves \
             at most {MANIFEST_DEPTH_MAX} (its limit; see doc/webdav.md, Limits)"
        )));
    }
    Manifest::parse(text).map_err(|source| Error::UpstreamData {
        what: format!("the manifest of collection {id}"),
        source,
    })
}

/// The signed locators of a manifest by block hash (a scan, cheaper than a parse, and
/// per token), and the earliest expiry among them.
pub fn signatures(text: &str) -> (HashMap<Hash, Locator>, SystemTime) {
    let sigs: HashMap<Hash, Locator> = text
        .split_ascii_whitespace()
        .filter(|w| w.len() > 66 && w.contains("+A"))
        .filter_map(|w| w.parse::<Locator>().ok())
        .map(|l| (l.hash, l))
        .collect();
    let until = sigs
        .values()
        .filter_map(|l| l.signature())
        .map(|(_, exp)| UNIX_EPOCH + Duration::from_secs(exp.into()))
        .min()
        // no signed block (an empty collection): nothing expires
        .unwrap_or(SystemTime::now() + Duration::from_secs(365 * 86400));
    (sigs, until)
}

/// The children of a project, filter group or home, by name (a `/` in a name becomes
/// `_`; names that can't be path elements, and repeats, are left out).
pub fn items(list: Vec<Value>) -> Vec<Item> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for v in list {
        let Some(u) = v.get("uuid").and_then(Value::as_str) else {
            continue;
        };
        let is_collection = u
            .parse::<keep_format::Uuid>()
            .is_ok_and(|u| u.kind() == keep_format::UuidKind::Collection);
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .unwrap_or(u)
            .replace('/', "_");
        if name == "." || name == ".." || !seen.insert(name.clone()) {
            continue;
        }
        out.push(Item {
            uuid: u.to_string(),
            name,
            is_collection,
            size: v.get("file_size_total").and_then(Value::as_u64),
            modified: modified(&v),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// (username, uuid) of each listed user with a name usable as a path element.
pub fn users(list: &[Value]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = list
        .iter()
        .filter_map(|v| {
            let name = v.get("username").and_then(Value::as_str)?;
            let uuid = v.get("uuid").and_then(Value::as_str)?;
            (!name.is_empty() && !name.contains('/')).then(|| (name.to_string(), uuid.to_string()))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_counted_before_parsing() {
        let e = keep_format::Locator::empty();
        assert_eq!(max_depth(""), 0);
        assert_eq!(max_depth(&format!(". {e} 0:0:f\n")), 1);
        assert_eq!(max_depth(&format!("./a/b {e} 0:0:c/d\n")), 4);
        assert_eq!(max_depth(&format!("./a\\057b {e} 0:0:c\n")), 3);
        let deep = format!(".{} {e} 0:0:f\n", "/a".repeat(60_000));
        let err = manifest(&deep, "x").unwrap_err();
        assert!(err.to_string().contains("60001 levels"), "{err}");
        let ok = format!(".{} {e} 0:0:f\n", "/a".repeat(MANIFEST_DEPTH_MAX - 1));
        assert!(manifest(&ok, "x").is_ok());
    }
}
