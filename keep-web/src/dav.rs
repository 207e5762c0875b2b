//! Listings (HTML and PROPFIND multistatus), OPTIONS, LOCK/UNLOCK.
//!
//! The XML is written with quick-xml's writer, one `<D:response>` at a time, so a
//! multistatus streams: the first entry leaves before the last is built.

use std::sync::Arc;
use std::time::SystemTime;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::stream;
use keep_format::EntryKind;
use quick_xml::events::{BytesDecl, Event};
use quick_xml::Writer;

use crate::error::Error;
use crate::path::{encode, Node, Parsed};
use crate::upstream::View;
use crate::Ctx;
use keep_format::dav::{self as props, PropName, PropSet, Want};

/// What a read-only target allows.
pub const READ_METHODS: &str = "OPTIONS, GET, HEAD, PROPFIND, LOCK, UNLOCK";
/// Everything keep-web answers (inside a collection its token may change).
pub const ALL_METHODS: &str = "OPTIONS, GET, HEAD, POST, PUT, DELETE, MKCOL, COPY, MOVE, \
                               PROPFIND, PROPPATCH, LOCK, UNLOCK";

/// One listed thing.
pub struct Entry {
    pub name: String,
    pub dir: bool,
    pub size: Option<u64>,
    pub modified: SystemTime,
    pub etag: Option<String>,
    /// Dead properties (PROPPATCH).
    pub dead: Option<PropSet>,
}

pub fn preflight() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_METHODS,
            "GET, HEAD, OPTIONS, POST, PROPFIND, PROPPATCH, LOCK, UNLOCK, PUT, DELETE, MKCOL, COPY, MOVE",
        ))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "Authorization, Content-Type, Range, Depth, Destination, If, If-Match, \
             If-None-Match, If-Modified-Since, If-Range, Overwrite, Timeout, Lock-Token",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}

pub fn options() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("DAV", "1, 2"))
        .insert_header(("MS-Author-Via", "DAV"))
        .insert_header((header::ALLOW, ALL_METHODS))
        .finish()
}

fn file_entry(view: &View, path: &str, name: &str, kind: EntryKind) -> Entry {
    let dead = if view.dead.is_empty() {
        None
    } else {
        view.dead.get(path).cloned()
    };
    match kind {
        EntryKind::Dir => Entry {
            name: name.to_string(),
            dir: true,
            size: None,
            modified: view.modified,
            etag: None,
            dead,
        },
        EntryKind::File { size } => Entry {
            name: name.to_string(),
            dir: false,
            size: Some(size),
            modified: view.modified,
            etag: crate::read::file_etag(view, path),
            dead,
        },
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Entries under a collection directory, depth-first when `recurse`, with their hrefs
/// relative to that directory (already %-encoded). Lazy: nothing is built ahead.
struct CollWalk {
    view: Arc<View>,
    /// (directory path in the collection, its relative href, next child index)
    stack: Vec<(String, String, usize)>,
    recurse: bool,
}

impl Iterator for CollWalk {
    type Item = (String, Entry);
    fn next(&mut self) -> Option<(String, Entry)> {
        loop {
            let (dir, href, i) = self.stack.last_mut()?;
            let list = self.view.index.list(dir).unwrap_or(&[]);
            let Some(de) = list.get(*i) else {
                self.stack.pop();
                continue;
            };
            *i += 1;
            let path = join(dir, &de.name);
            let is_dir = de.kind == EntryKind::Dir;
            let child_href = format!(
                "{href}{}{}",
                encode(&de.name),
                if is_dir { "/" } else { "" }
            );
            let e = file_entry(&self.view, &path, &de.name, de.kind);
            if is_dir && self.recurse {
                self.stack.push((path, child_href.clone(), 0));
            }
            return Some((child_href, e));
        }
    }
}

type Children = Box<dyn Iterator<Item = (String, Entry)> + Send>;

fn dirs(names: Vec<(String, Option<u64>, SystemTime)>) -> Children {
    Box::new(names.into_iter().map(|(name, size, modified)| {
        (
            format!("{}/", encode(&name)),
            Entry {
                name,
                dir: true,
                size,
                modified,
                etag: None,
                dead: None,
            },
        )
    }))
}

/// The node's own entry and its children (all levels inside a collection if `recurse`).
fn entries(parsed: &Parsed, node: Node, recurse: bool) -> (Entry, Children) {
    let name = parsed.segs.last().cloned().unwrap_or_default();
    let epoch = SystemTime::UNIX_EPOCH;
    let dir_entry = |modified| Entry {
        name: name.clone(),
        dir: true,
        size: None,
        modified,
        etag: None,
        dead: None,
    };
    match node {
        Node::Root => (
            dir_entry(epoch),
            dirs(vec![
                ("by_id".into(), None, epoch),
                ("users".into(), None, epoch),
            ]),
        ),
        Node::ById | Node::Empty | Node::Missing { .. } => {
            (dir_entry(epoch), Box::new(std::iter::empty()))
        }
        Node::Users(us) => (
            dir_entry(epoch),
            dirs(us.into_iter().map(|(n, _)| (n, None, epoch)).collect()),
        ),
        Node::Project(items) => (
            dir_entry(epoch),
            dirs(
                items
                    .into_iter()
                    .map(|i| (i.name, i.size.filter(|_| i.is_collection), i.modified))
                    .collect(),
            ),
        ),
        Node::Coll {
            view, path, dir, ..
        } => {
            let kind = view.index.stat(&path).unwrap_or(EntryKind::Dir);
            let me = file_entry(&view, &path, &name, kind);
            if !dir {
                return (me, Box::new(std::iter::empty()));
            }
            let walk = CollWalk {
                view,
                stack: vec![(path, String::new(), 0)],
                recurse,
            };
            (me, Box::new(walk))
        }
    }
}

fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// One level of a directory as HTML. Links are relative, so they work under every URL
/// form (vhost, `/c=`, `/t=` sharing URLs, `/users/…`).
pub fn html_listing(parsed: &Parsed, node: &Node) -> HttpResponse {
    let title = format!("/{}", parsed.segs.join("/"));
    let node_copy = match node {
        Node::Root => Node::Root,
        Node::ById => Node::ById,
        Node::Empty | Node::Missing { .. } => Node::Empty,
        Node::Users(u) => Node::Users(u.clone()),
        Node::Project(i) => Node::Project(i.clone()),
        Node::Coll {
            view,
            path,
            dir,
            uuid,
        } => Node::Coll {
            view: view.clone(),
            path: path.clone(),
            dir: *dir,
            uuid: uuid.clone(),
        },
    };
    let (_, children) = entries(parsed, node_copy, false);
    let mut page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {t}</title>\
         <style>body{{font-family:sans-serif}}td{{padding:0 1em}}</style></head>\n\
         <body><h1>Index of {t}</h1>\n<table>\n\
         <tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n",
        t = html_escape(&title)
    );
    if !parsed.segs.is_empty() {
        page.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for (href, e) in children {
        let shown = if e.dir {
            format!("{}/", e.name)
        } else {
            e.name.clone()
        };
        let modified = if e.modified > SystemTime::UNIX_EPOCH {
            httpdate::fmt_http_date(e.modified)
        } else {
            String::new()
        };
        page.push_str(&format!(
            "<tr><td><a href=\"./{}\">{}</a></td><td>{}</td><td>{}</td></tr>\n",
            html_escape(&href),
            html_escape(&shown),
            e.size.map(|s| s.to_string()).unwrap_or_default(),
            modified
        ));
    }
    page.push_str("</table>\n</body></html>\n");
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'",
        ))
        .body(page)
}

/// Appends `text` as XML character data: `&`, `<` and `>` escaped; quotes are left
/// as they are (legal in text, and clients compare `getetag` byte for byte). A CR is
/// written `&#13;` so that parsers don't turn it into LF; control characters XML 1.0
/// cannot carry at all (a manifest name may hold them, written `\001`) become U+FFFD,
/// so that one odd name can't make a whole listing unparsable (its href, %-encoded,
/// still names it exactly).
pub(crate) fn push_text(buf: &mut Vec<u8>, text: &str) {
    let special = |c: char| matches!(c, '&' | '<' | '>' | '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{d}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}');
    // fast path on bytes; 0xEF leads U+FFFE/U+FFFF in UTF-8 (and other, fine, chars)
    let maybe = |b: &u8| {
        matches!(b, b'&' | b'<' | b'>' | 0xEF) || (*b < 0x20 && *b != b'\t' && *b != b'\n')
    };
    if !text.as_bytes().iter().any(maybe) || !text.chars().any(special) {
        buf.extend_from_slice(text.as_bytes());
        return;
    }
    let mut tmp = [0u8; 4];
    for c in text.chars() {
        match c {
            '&' => buf.extend_from_slice(b"&amp;"),
            '<' => buf.extend_from_slice(b"&lt;"),
            '>' => buf.extend_from_slice(b"&gt;"),
            '\r' => buf.extend_from_slice(b"&#13;"),
            c if special(c) => buf.extend_from_slice("\u{fffd}".as_bytes()),
            c => buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes()),
        }
    }
}

fn push_elem(buf: &mut Vec<u8>, tag: &str, text: &str) {
    buf.push(b'<');
    buf.extend_from_slice(tag.as_bytes());
    buf.push(b'>');
    push_text(buf, text);
    buf.extend_from_slice(b"</");
    buf.extend_from_slice(tag.as_bytes());
    buf.push(b'>');
}

/// The two date forms of one modification time, formatted once for a whole listing
/// (every file of a collection version shares it).
#[derive(Default)]
struct Dates {
    last: Option<(SystemTime, String, String)>,
}

impl Dates {
    fn of(&mut self, t: SystemTime) -> (&str, &str) {
        if self.last.as_ref().map(|l| l.0) != Some(t) {
            self.last = Some((
                t,
                httpdate::fmt_http_date(t),
                crate::time::format_rfc3339(t),
            ));
        }
        match &self.last {
            Some((_, http, rfc)) => (http, rfc),
            None => ("", ""),
        }
    }
}

const SUPPORTEDLOCK: &[u8] =
    b"<D:supportedlock><D:lockentry><D:lockscope><D:exclusive/></D:lockscope>\
<D:locktype><D:write/></D:locktype></D:lockentry></D:supportedlock>";

/// Writes the DAV: live property `local` of `e`; false if `e` has no such property.
fn live(buf: &mut Vec<u8>, local: &str, e: &Entry, dates: &mut Dates) -> bool {
    match local {
        "resourcetype" if e.dir => {
            buf.extend_from_slice(b"<D:resourcetype><D:collection/></D:resourcetype>")
        }
        "resourcetype" => buf.extend_from_slice(b"<D:resourcetype/>"),
        "displayname" => push_elem(buf, "D:displayname", &e.name),
        "getcontentlength" => match e.size.filter(|_| !e.dir) {
            Some(size) => {
                buf.extend_from_slice(b"<D:getcontentlength>");
                buf.extend_from_slice(size.to_string().as_bytes());
                buf.extend_from_slice(b"</D:getcontentlength>");
            }
            None => return false,
        },
        "getlastmodified" => push_elem(buf, "D:getlastmodified", dates.of(e.modified).0),
        "creationdate" => push_elem(buf, "D:creationdate", dates.of(e.modified).1),
        "getcontenttype" if !e.dir => {
            let ct = mime_guess::from_path(&e.name).first_or_octet_stream();
            push_elem(buf, "D:getcontenttype", ct.essence_str());
        }
        "getetag" => match &e.etag {
            Some(t) => push_elem(buf, "D:getetag", t),
            None => return false,
        },
        "supportedlock" => buf.extend_from_slice(SUPPORTEDLOCK),
        "lockdiscovery" => buf.extend_from_slice(b"<D:lockdiscovery/>"),
        _ => return false,
    }
    true
}

const OK_END: &[u8] = b"</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>";

/// Appends one `<D:response>` and a newline to `buf`.
fn append_response(buf: &mut Vec<u8>, href: &str, e: &Entry, dates: &mut Dates, want: &Want) {
    buf.extend_from_slice(b"<D:response>");
    push_elem(buf, "D:href", href);
    buf.extend_from_slice(b"<D:propstat><D:prop>");
    match want {
        Want::All => {
            // every live property but the (always empty) lockdiscovery
            for l in props::LIVE.iter().filter(|l| **l != "lockdiscovery") {
                live(buf, l, e, dates);
            }
            for (c, p) in e.dead.iter().flatten() {
                if let Some(n) = PropName::from_clark(c) {
                    props::write_prop(buf, &n, p);
                }
            }
            buf.extend_from_slice(OK_END);
        }
        Want::Names => {
            let mut tmp = Vec::new();
            for l in props::LIVE {
                tmp.clear();
                if live(&mut tmp, l, e, dates) {
                    buf.extend_from_slice(format!("<D:{l}/>").as_bytes());
                }
            }
            for c in e.dead.iter().flatten().map(|(c, _)| c) {
                if let Some(n) = PropName::from_clark(c) {
                    props::write_name(buf, &n);
                }
            }
            buf.extend_from_slice(OK_END);
        }
        Want::Some(names) => {
            let mut missing = Vec::new();
            for n in names {
                let found = if n.ns == "DAV:" && live(buf, &n.local, e, dates) {
                    true
                } else if let Some(p) = e.dead.as_ref().and_then(|d| d.get(&n.clark())) {
                    props::write_prop(buf, n, p);
                    true
                } else {
                    false
                };
                if !found {
                    missing.push(n);
                }
            }
            buf.extend_from_slice(OK_END);
            if !missing.is_empty() {
                buf.extend_from_slice(b"<D:propstat><D:prop>");
                for n in missing {
                    props::write_name(buf, n);
                }
                buf.extend_from_slice(
                    b"</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>",
                );
            }
        }
    }
    buf.extend_from_slice(b"</D:response>\n");
}

/// PROPFIND bodies leave in chunks of about this size: one per entry would cost a
/// chunk header and a trip through the server's write path for each of 100,000 files.
const PROPFIND_CHUNK: usize = 32 << 10;

/// The children's `<D:response>`s in [`PROPFIND_CHUNK`]-sized pieces, then the closing tag.
struct Batched {
    children: Children,
    base: String,
    done: bool,
    dates: Dates,
    want: Arc<Want>,
}

impl Iterator for Batched {
    type Item = Bytes;
    fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut buf = Vec::with_capacity(PROPFIND_CHUNK + 2048);
        let mut href = String::new();
        while buf.len() < PROPFIND_CHUNK {
            match self.children.next() {
                Some((rel, e)) => {
                    href.clear();
                    href.push_str(&self.base);
                    href.push_str(&rel);
                    append_response(&mut buf, &href, &e, &mut self.dates, &self.want);
                }
                None => {
                    buf.extend_from_slice(b"</D:multistatus>\n");
                    self.done = true;
                    break;
                }
            }
        }
        Some(Bytes::from(buf))
    }
}

pub fn propfind(
    req: &HttpRequest,
    body: &[u8],
    ctx: &Ctx,
    node: Node,
) -> Result<HttpResponse, Error> {
    let depth = req
        .headers()
        .get("depth")
        .map(|v| v.to_str().unwrap_or("bad").trim().to_ascii_lowercase());
    let recurse = match depth.as_deref() {
        Some("0") => None,
        Some("1") => Some(false),
        Some("infinity") | None => Some(true),
        Some(_) => return Err(Error::BadRequest("Depth must be 0, 1 or infinity".into())),
    };
    let want = Arc::new(props::parse_propfind(body)?);
    if recurse == Some(true) && !matches!(node, Node::Coll { .. }) {
        return Err(Error::FiniteDepth);
    }
    let is_dir = !matches!(node, Node::Coll { dir: false, .. });
    let mut href = req.uri().path().to_string();
    if is_dir && !href.ends_with('/') {
        href.push('/');
    }
    let (me, children) = entries(&ctx.parsed, node, recurse == Some(true));
    let children: Children = if recurse.is_none() {
        Box::new(std::iter::empty())
    } else {
        children
    };
    let mut head = Vec::new();
    {
        let mut w = Writer::new(&mut head);
        let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)));
    }
    head.extend_from_slice(b"\n<D:multistatus xmlns:D=\"DAV:\">\n");
    // the head and the resource itself leave at once: the first byte doesn't wait for
    // the listing
    let mut dates = Dates::default();
    append_response(&mut head, &href, &me, &mut dates, &want);
    let items = Batched {
        children,
        base: href,
        done: false,
        dates,
        want,
    };
    let all = std::iter::once(Bytes::from(head))
        .chain(items)
        .map(Ok::<Bytes, Error>);
    Ok(HttpResponse::build(StatusCode::MULTI_STATUS)
        .content_type("application/xml; charset=utf-8")
        .streaming(stream::iter(all)))
}

/// LOCK as a no-op: a fresh token (or, for a refresh, the one in the `If` header) and
/// a lockdiscovery body that echoes the requested scope, depth and owner.
pub fn lock(req: &HttpRequest, body: &[u8], missing: bool) -> Result<HttpResponse, Error> {
    let info = props::parse_lockinfo(body)?;
    let refresh_token = req
        .headers()
        .get("if")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let start = v.find("<opaquelocktoken:")?;
            let rest = &v[start + 1..];
            Some(rest[..rest.find('>')?].to_string())
        });
    let tok = match (&info, refresh_token) {
        (None, Some(t)) => t,
        _ => {
            let b: [u8; 16] = rand::random();
            let h = hex::encode(b);
            format!(
                "opaquelocktoken:{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            )
        }
    };
    let info = info.unwrap_or_default();
    let depth = match req.headers().get("depth").and_then(|v| v.to_str().ok()) {
        Some("0") => "0",
        _ => "infinity",
    };
    let mut out = Vec::new();
    out.extend_from_slice(
        b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:prop xmlns:D=\"DAV:\"><D:lockdiscovery><D:activelock>\
<D:locktype><D:write/></D:locktype><D:lockscope>",
    );
    out.extend_from_slice(if info.shared {
        b"<D:shared/>"
    } else {
        b"<D:exclusive/>"
    });
    out.extend_from_slice(b"</D:lockscope><D:depth>");
    out.extend_from_slice(depth.as_bytes());
    out.extend_from_slice(b"</D:depth>");
    if let Some(o) = &info.owner {
        out.extend_from_slice(b"<D:owner>");
        out.extend_from_slice(o.as_bytes());
        out.extend_from_slice(b"</D:owner>");
    }
    out.extend_from_slice(b"<D:timeout>Second-3600</D:timeout><D:locktoken><D:href>");
    push_text(&mut out, &tok);
    out.extend_from_slice(b"</D:href></D:locktoken><D:lockroot><D:href>");
    push_text(&mut out, req.uri().path());
    out.extend_from_slice(b"</D:href></D:lockroot></D:activelock></D:lockdiscovery></D:prop>\n");
    let mut r = if missing {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(r.content_type("application/xml; charset=utf-8")
        .insert_header(("Lock-Token", format!("<{tok}>")))
        .body(out))
}
