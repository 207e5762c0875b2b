//! WebDAV request bodies (PROPFIND, PROPPATCH, LOCK) and the dead properties PROPPATCH
//! stores with a collection. keep-web answers with them; they live here, beside the
//! other formats, so that the fuzz target reaches them without a web server.
//!
//! Dead properties live in the collection's `properties` under [`KEY`], as
//! `{ "<path in the collection>": { "{ns}name": {"value": "<inner XML>", "xmlns": {…}} } }`.
//! A value keeps the XML it was given byte for byte, and the namespace bindings in scope
//! where it was given, so that it is written back well-formed wherever it is listed.

use std::collections::BTreeMap;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;

/// The key of the collection's `properties` that holds the dead properties.
pub const KEY: &str = "webdav:dead_properties";

/// Request bodies (PROPFIND, PROPPATCH, LOCK) may be at most this long.
pub const BODY_MAX: usize = 1 << 20;

/// The DAV: properties keep-web computes; PROPPATCH may not change them.
pub const LIVE: &[&str] = &[
    "resourcetype",
    "displayname",
    "getcontentlength",
    "getlastmodified",
    "creationdate",
    "getcontenttype",
    "getetag",
    "supportedlock",
    "lockdiscovery",
];

/// One dead property.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadProp {
    /// The inner XML of the property element, as given.
    #[serde(default)]
    pub value: String,
    /// The namespace bindings in scope where it was given (prefix → URI, "" = default).
    #[serde(default)]
    pub xmlns: BTreeMap<String, String>,
}

/// Clark name (`{ns}local`) → property.
pub type PropSet = BTreeMap<String, DeadProp>;
/// Path in the collection ("" = its root) → its dead properties.
pub type DeadProps = BTreeMap<String, PropSet>;

/// A property's name: namespace URI ("" for none) and local name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropName {
    pub ns: String,
    pub local: String,
}

impl PropName {
    pub fn clark(&self) -> String {
        format!("{{{}}}{}", self.ns, self.local)
    }

    pub fn from_clark(c: &str) -> Option<PropName> {
        let rest = c.strip_prefix('{')?;
        let (ns, local) = rest.split_once('}')?;
        (!local.is_empty()).then(|| PropName {
            ns: ns.to_string(),
            local: local.to_string(),
        })
    }

    pub fn is_live(&self) -> bool {
        self.ns == "DAV:" && LIVE.contains(&self.local.as_str())
    }
}

/// The dead properties in a collection's `properties` (anything malformed is skipped:
/// they are ours, but a user may have edited them through the API).
pub fn from_properties(props: Option<&Value>) -> DeadProps {
    props
        .and_then(Value::as_object)
        .map(dead_of)
        .unwrap_or_default()
}

/// As [`from_properties`], from the `properties` object itself.
pub fn dead_of(props: &serde_json::Map<String, Value>) -> DeadProps {
    props
        .get(KEY)
        .and_then(|v| DeadProps::deserialize(v).ok())
        .unwrap_or_default()
}

/// `properties` with the dead properties replaced by `dead` (other keys kept).
pub fn into_properties(mut props: serde_json::Map<String, Value>, mut dead: DeadProps) -> Value {
    dead.retain(|_, s| !s.is_empty());
    if dead.is_empty() {
        props.remove(KEY);
    } else {
        props.insert(
            KEY.into(),
            serde_json::to_value(dead).unwrap_or(Value::Null),
        );
    }
    Value::Object(props)
}

fn under(p: &str, root: &str) -> bool {
    root.is_empty() || p == root || p.strip_prefix(root).is_some_and(|r| r.starts_with('/'))
}

/// Whether `path` or anything under it has dead properties.
pub fn has_tree(dead: &DeadProps, path: &str) -> bool {
    dead.keys().any(|p| under(p, path))
}

/// Removes the properties of `path` and everything under it. Returns whether any were.
pub fn remove_tree(dead: &mut DeadProps, path: &str) -> bool {
    let before = dead.len();
    dead.retain(|p, _| !under(p, path));
    dead.len() != before
}

/// The properties of `from` and everything under it, as they would be at `to`.
pub fn copy_tree(dead: &DeadProps, from: &str, to: &str, deep: bool) -> DeadProps {
    dead.iter()
        .filter(|(p, _)| if deep { under(p, from) } else { *p == from })
        .map(|(p, s)| {
            let rest = &p[from.len()..];
            let np = if from.is_empty() && !to.is_empty() && !rest.is_empty() {
                format!("{to}/{rest}")
            } else {
                format!("{to}{rest}")
            };
            (np.trim_start_matches('/').to_string(), s.clone())
        })
        .collect()
}

/// An element of a request body.
#[derive(Debug)]
struct Elem {
    name: PropName,
    children: Vec<Elem>,
    /// Its inner XML as sent.
    inner: String,
    /// The namespace bindings in scope inside it.
    xmlns: BTreeMap<String, String>,
}

fn bad(what: &'static str, why: impl std::fmt::Display) -> Error {
    Error::Xml {
        what,
        why: why.to_string(),
    }
}

/// Parses a whole body into elements (namespaces resolved; text kept only as the raw
/// inner XML of each element).
fn parse_tree(body: &[u8], what: &'static str) -> Result<Option<Elem>, Error> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(None);
    }
    let text = std::str::from_utf8(body).map_err(|_| bad(what, "not UTF-8"))?;
    // the reader skips a byte order mark; without it here too, the positions it reports
    // (and so the raw values cut from `text`) would be 3 bytes off (found by fuzzing)
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // a second mark is a character before the root element, not XML; the reader would
    // skip it too and shift every position by 3 bytes again (found by fuzzing)
    if text.starts_with('\u{feff}') {
        return Err(bad(
            what,
            "text before the root element (a second byte order mark)",
        ));
    }
    let mut r = NsReader::from_str(text);
    // (element, where its content starts, how many bindings it declared)
    let mut stack: Vec<(Elem, usize, usize)> = Vec::new();
    let mut scope: Vec<(String, String)> = Vec::new();
    let mut root: Option<Elem> = None;
    loop {
        let before = r.buffer_position() as usize;
        let (res, ev) = r.read_resolved_event().map_err(|e| bad(what, e))?;
        let ns = match res {
            ResolveResult::Bound(n) => Some(unescape_ns(n.as_ref(), what)?),
            ResolveResult::Unbound => Some(String::new()),
            ResolveResult::Unknown(p) => {
                if matches!(ev, Event::Start(_) | Event::Empty(_)) {
                    return Err(bad(
                        what,
                        format!(
                            "the prefix {:?} is not bound to a namespace",
                            String::from_utf8_lossy(&p)
                        ),
                    ));
                }
                None
            }
        };
        match ev {
            Event::Start(s) | Event::Empty(s) if root.is_some() && stack.is_empty() => {
                let _ = s;
                return Err(bad(what, "more than one root element"));
            }
            Event::Start(ref s) | Event::Empty(ref s) => {
                let n = bindings(s, &mut scope, what)?;
                // only a property (a child of DAV:prop) keeps the bindings in scope: its
                // value is written back elsewhere and must stay well-formed there
                let in_prop = stack.last().is_some_and(|(p, _, _)| is_dav(p, "prop"));
                let e = Elem {
                    name: PropName {
                        ns: ns.unwrap_or_default(),
                        local: String::from_utf8_lossy(s.local_name().as_ref()).into_owned(),
                    },
                    children: Vec::new(),
                    inner: String::new(),
                    xmlns: if in_prop {
                        scope.iter().cloned().collect()
                    } else {
                        BTreeMap::new()
                    },
                };
                if matches!(ev, Event::Start(_)) {
                    stack.push((e, r.buffer_position() as usize, n));
                } else {
                    scope.truncate(scope.len() - n);
                    match stack.last_mut() {
                        Some(parent) => parent.0.children.push(e),
                        None => root = Some(e),
                    }
                }
            }
            Event::End(_) => {
                let Some((mut e, start, n)) = stack.pop() else {
                    return Err(bad(what, "an end tag without its start"));
                };
                // the positions must frame the raw content exactly; if they ever drift,
                // refuse the body rather than store a cut-up value
                match text.get(start..before) {
                    Some(inner) if text[before..].starts_with("</") => e.inner = inner.to_string(),
                    _ => return Err(bad(what, "the reader lost its position in the body")),
                }
                scope.truncate(scope.len() - n);
                match stack.last_mut() {
                    Some(parent) => parent.0.children.push(e),
                    None => root = Some(e),
                }
            }
            Event::Text(t) if stack.is_empty() && !t.iter().all(|b| b.is_ascii_whitespace()) => {
                return Err(bad(what, "text outside the root element"));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() || root.is_none() {
        return Err(bad(what, "not a complete XML document"));
    }
    Ok(root)
}

/// Namespace declarations a body may have in scope at once: each property value keeps a
/// copy of them, so without a bound a 1 MiB body could cost quadratic time and memory.
const MAX_BINDINGS: usize = 256;

/// A namespace name as an attribute gives it, unescaped: the resolved names of elements
/// and the bindings kept for values must agree (`a&amp;b` is `a&b` on both sides).
fn unescape_ns(raw: &[u8], what: &'static str) -> Result<String, Error> {
    let raw = String::from_utf8_lossy(raw);
    Ok(quick_xml::escape::unescape(&raw)
        .map_err(|e| bad(what, e))?
        .into_owned())
}

/// Pushes the element's `xmlns` attributes onto `scope`; returns how many.
fn bindings(
    s: &BytesStart<'_>,
    scope: &mut Vec<(String, String)>,
    what: &'static str,
) -> Result<usize, Error> {
    let mut n = 0;
    for a in s.attributes() {
        let a = a.map_err(|e| bad(what, e))?;
        let key = a.key.as_ref();
        let prefix = if key == b"xmlns" {
            ""
        } else if let Some(p) = key.strip_prefix(b"xmlns:") {
            std::str::from_utf8(p).map_err(|_| bad(what, "not UTF-8"))?
        } else {
            continue;
        };
        let uri = unescape_ns(&a.value, what)?;
        if !prefix.is_empty() && uri.is_empty() {
            return Err(bad(
                what,
                format!("xmlns:{prefix}=\"\" is not allowed (XML Namespaces 1.0: only the default namespace may be undeclared)"),
            ));
        }
        if scope.len() >= MAX_BINDINGS {
            return Err(bad(
                what,
                format!("more than {MAX_BINDINGS} namespace declarations in scope"),
            ));
        }
        scope.push((prefix.to_string(), uri));
        n += 1;
    }
    Ok(n)
}

fn is_dav(e: &Elem, local: &str) -> bool {
    e.name.ns == "DAV:" && e.name.local == local
}

/// What a PROPFIND asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Want {
    /// Every property (an empty body, or `allprop`).
    All,
    /// The names alone.
    Names,
    /// These properties.
    Some(Vec<PropName>),
}

pub fn parse_propfind(body: &[u8]) -> Result<Want, Error> {
    const W: &str = "PROPFIND";
    let Some(root) = parse_tree(body, W)? else {
        return Ok(Want::All);
    };
    if !is_dav(&root, "propfind") {
        return Err(bad(W, "the root element must be DAV:propfind"));
    }
    for c in &root.children {
        if is_dav(c, "allprop") {
            return Ok(Want::All);
        }
        if is_dav(c, "propname") {
            return Ok(Want::Names);
        }
        if is_dav(c, "prop") {
            return Ok(Want::Some(
                c.children.iter().map(|p| p.name.clone()).collect(),
            ));
        }
    }
    Err(bad(W, "DAV:propfind must hold prop, allprop or propname"))
}

/// One change of a PROPPATCH, in document order.
#[derive(Debug, PartialEq, Eq)]
pub enum Update {
    Set(PropName, DeadProp),
    Remove(PropName),
}

impl Update {
    pub fn name(&self) -> &PropName {
        match self {
            Update::Set(n, _) | Update::Remove(n) => n,
        }
    }
}

pub fn parse_proppatch(body: &[u8]) -> Result<Vec<Update>, Error> {
    const W: &str = "PROPPATCH";
    let root = parse_tree(body, W)?.ok_or_else(|| bad(W, "empty"))?;
    if !is_dav(&root, "propertyupdate") {
        return Err(bad(W, "the root element must be DAV:propertyupdate"));
    }
    let mut out = Vec::new();
    for op in root.children {
        let set = if is_dav(&op, "set") {
            true
        } else if is_dav(&op, "remove") {
            false
        } else {
            continue;
        };
        for prop in op.children.into_iter().filter(|c| is_dav(c, "prop")) {
            for p in prop.children {
                if p.name.local.is_empty() {
                    continue;
                }
                out.push(if set {
                    Update::Set(
                        p.name,
                        DeadProp {
                            value: p.inner,
                            xmlns: p.xmlns,
                        },
                    )
                } else {
                    Update::Remove(p.name)
                });
            }
        }
    }
    if out.is_empty() {
        return Err(bad(W, "no property to set or remove"));
    }
    Ok(out)
}

/// What a LOCK asks for (LOCK is a no-op, but its answer echoes the request).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LockInfo {
    pub shared: bool,
    /// The inner XML of `DAV:owner`, as given.
    pub owner: Option<String>,
}

/// A LOCK body: `None` when empty (a refresh).
pub fn parse_lockinfo(body: &[u8]) -> Result<Option<LockInfo>, Error> {
    const W: &str = "LOCK";
    let Some(root) = parse_tree(body, W)? else {
        return Ok(None);
    };
    if !is_dav(&root, "lockinfo") {
        return Err(bad(W, "the root element must be DAV:lockinfo"));
    }
    let mut info = LockInfo::default();
    for c in &root.children {
        if is_dav(c, "lockscope") {
            info.shared = c.children.iter().any(|s| is_dav(s, "shared"));
        }
        if is_dav(c, "owner") {
            info.owner = Some(c.inner.clone());
        }
    }
    Ok(Some(info))
}

fn push_attr(buf: &mut Vec<u8>, name: &str, val: &str) {
    buf.push(b' ');
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"=\"");
    for c in val.chars() {
        match c {
            '&' => buf.extend_from_slice(b"&amp;"),
            '<' => buf.extend_from_slice(b"&lt;"),
            '"' => buf.extend_from_slice(b"&quot;"),
            c => {
                let mut t = [0u8; 4];
                buf.extend_from_slice(c.encode_utf8(&mut t).as_bytes());
            }
        }
    }
    buf.push(b'"');
}

/// The element's opening (without `>`) and its closing tag name.
fn open(buf: &mut Vec<u8>, name: &PropName, xmlns: &BTreeMap<String, String>) -> String {
    // a prefix of our own for the property's namespace, clear of the value's
    let mut prefix = String::from("K");
    while xmlns.contains_key(&prefix) {
        prefix.push('K');
    }
    let tag = if name.ns.is_empty() {
        name.local.clone()
    } else {
        format!("{prefix}:{}", name.local)
    };
    buf.push(b'<');
    buf.extend_from_slice(tag.as_bytes());
    if name.ns.is_empty() {
        push_attr(buf, "xmlns", "");
    } else {
        push_attr(buf, &format!("xmlns:{prefix}"), &name.ns);
    }
    for (p, uri) in xmlns {
        if p == "xml" || (p.is_empty() && name.ns.is_empty()) {
            continue;
        }
        if p.is_empty() {
            push_attr(buf, "xmlns", uri);
        } else {
            push_attr(buf, &format!("xmlns:{p}"), uri);
        }
    }
    tag
}

/// `<name …>value</name>` for a dead property.
pub fn write_prop(buf: &mut Vec<u8>, name: &PropName, p: &DeadProp) {
    let tag = open(buf, name, &p.xmlns);
    if p.value.is_empty() {
        buf.extend_from_slice(b"/>");
        return;
    }
    buf.push(b'>');
    buf.extend_from_slice(p.value.as_bytes());
    buf.extend_from_slice(b"</");
    buf.extend_from_slice(tag.as_bytes());
    buf.push(b'>');
}

/// `<name/>` (a property named, not given: propname answers, 404s, PROPPATCH results).
pub fn write_name(buf: &mut Vec<u8>, name: &PropName) {
    if name.ns == "DAV:" {
        buf.extend_from_slice(format!("<D:{}/>", name.local).as_bytes());
        return;
    }
    open(buf, name, &BTreeMap::new());
    buf.extend_from_slice(b"/>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(ns: &str, l: &str) -> PropName {
        PropName {
            ns: ns.into(),
            local: l.into(),
        }
    }

    #[test]
    fn propfind_bodies() {
        assert_eq!(parse_propfind(b"").unwrap(), Want::All);
        assert_eq!(
            parse_propfind(
                b"<?xml version=\"1.0\"?><D:propfind xmlns:D=\"DAV:\"><D:allprop/></D:propfind>"
            )
            .unwrap(),
            Want::All
        );
        assert_eq!(
            parse_propfind(b"<propfind xmlns=\"DAV:\"><propname/></propfind>").unwrap(),
            Want::Names
        );
        assert_eq!(
            parse_propfind(
                b"<D:propfind xmlns:D=\"DAV:\"><D:prop><D:getetag/><x:a xmlns:x=\"urn:x\"/><b xmlns=\"\"/></D:prop></D:propfind>"
            )
            .unwrap(),
            Want::Some(vec![n("DAV:", "getetag"), n("urn:x", "a"), n("", "b")])
        );
        for bad in [
            &b"<D:propfind xmlns:D=\"DAV:\"><D:prop><bar:foo xmlns:bar=\"\"/></D:prop></D:propfind>"[..],
            b"<D:propfind xmlns:D=\"DAV:\"><D:prop>",
            b"<propfind><allprop/></propfind>",
            b"<D:propfind xmlns:D=\"DAV:\"><x:y/></D:propfind>",
            b"<D:x xmlns:D=\"DAV:\"/>",
            b"<D:propfind xmlns:D=\"DAV:\"/><D:propfind xmlns:D=\"DAV:\"/>",
        ] {
            assert!(parse_propfind(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn proppatch_keeps_values_and_bindings() {
        let body = br#"<?xml version="1.0"?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="http://ex/z">
 <D:set><D:prop><Z:a>hello &amp; <Z:b x="1">bye</Z:b></Z:a><c xmlns="">plain</c></D:prop></D:set>
 <D:remove><D:prop><Z:gone/></D:prop></D:remove>
</D:propertyupdate>"#;
        let u = parse_proppatch(body).unwrap();
        assert_eq!(u.len(), 3);
        let Update::Set(name, p) = &u[0] else {
            panic!("{u:?}")
        };
        assert_eq!(name, &n("http://ex/z", "a"));
        assert_eq!(p.value, "hello &amp; <Z:b x=\"1\">bye</Z:b>");
        assert_eq!(p.xmlns.get("Z").map(String::as_str), Some("http://ex/z"));
        let mut out = Vec::new();
        write_prop(&mut out, name, p);
        let out = String::from_utf8(out).unwrap();
        // written back well-formed on its own
        let wrapped = format!("<r>{out}</r>");
        assert!(parse_tree(wrapped.as_bytes(), "t").is_ok(), "{out}");
        assert!(matches!(&u[1], Update::Set(n2, p2) if n2 == &n("", "c") && p2.value == "plain"));
        assert_eq!(u[2], Update::Remove(n("http://ex/z", "gone")));
        assert!(parse_proppatch(b"<D:propertyupdate xmlns:D=\"DAV:\"/>").is_err());
        // found by the fuzz target: a namespace name with an escaped (or a bare) `&`
        let body = br#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="a&amp;b"><D:set><D:prop><Z:x>v</Z:x></D:prop></D:set></D:propertyupdate>"#;
        let u = parse_proppatch(body).unwrap();
        let Update::Set(name, p) = &u[0] else {
            panic!("{u:?}")
        };
        assert_eq!(name.ns, "a&b");
        let mut xml = b"<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop>".to_vec();
        write_prop(&mut xml, name, p);
        xml.extend_from_slice(b"</D:prop></D:set></D:propertyupdate>");
        assert!(matches!(&parse_proppatch(&xml).unwrap()[0], Update::Set(n2, _) if n2 == name));
        assert!(parse_proppatch(
            br#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="ht&p:/"><D:set><D:prop><Z:x/></D:prop></D:set></D:propertyupdate>"#
        )
        .is_err());
        // a byte order mark before the document: values are cut at the right place
        let body = "\u{feff}<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop><x xmlns=\"urn:x\"><y>v</y></x></D:prop></D:set></D:propertyupdate>";
        let u = parse_proppatch(body.as_bytes()).unwrap();
        assert!(
            matches!(&u[0], Update::Set(_, p) if p.value == "<y>v</y>"),
            "{u:?}"
        );
        let mut two = "\u{feff}".to_string();
        two.push_str(body);
        assert!(parse_proppatch(two.as_bytes()).is_err());
    }

    #[test]
    fn namespace_declarations_are_bounded() {
        let decls: String = (0..MAX_BINDINGS + 1)
            .map(|i| format!(" xmlns:p{i}=\"urn:{i}\""))
            .collect();
        let body = format!(
            "<D:propertyupdate xmlns:D=\"DAV:\"{decls}><D:set><D:prop><p1:x>v</p1:x></D:prop></D:set></D:propertyupdate>"
        );
        assert!(parse_proppatch(body.as_bytes()).is_err());
    }

    #[test]
    fn trees_move_with_their_paths() {
        let mut d = DeadProps::new();
        for p in ["a", "a/b", "ab", "c"] {
            d.insert(
                p.into(),
                PropSet::from([("{x}y".into(), DeadProp::default())]),
            );
        }
        let c = copy_tree(&d, "a", "z/q", true);
        assert_eq!(c.keys().collect::<Vec<_>>(), vec!["z/q", "z/q/b"]);
        let c = copy_tree(&d, "a", "z", false);
        assert_eq!(c.keys().collect::<Vec<_>>(), vec!["z"]);
        assert!(has_tree(&d, "a") && !has_tree(&d, "zz"));
        assert!(remove_tree(&mut d, "a"));
        assert_eq!(d.keys().collect::<Vec<_>>(), vec!["ab", "c"]);
        assert!(!remove_tree(&mut d, "zz"));
        assert_eq!(PropName::from_clark("{}x"), Some(n("", "x")));
        assert_eq!(n("DAV:", "getetag").clark(), "{DAV:}getetag");
    }
}
