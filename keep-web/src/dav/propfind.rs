//! PROPFIND (RFC 4918 §9.1): Depth 0, 1, or infinity inside one collection; the
//! multistatus streams, one `<D:response>` after another in 32 KiB chunks, so the first
//! byte leaves before the last entry is built.

use std::sync::Arc;
use std::time::SystemTime;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use bytes::Bytes;
use futures_util::stream;
use keep_format::dav::{self as props, PropName, Want};

use crate::dav::call::Call;
use crate::dav::entries::{entries, Children, Entry};
use crate::dav::xml::{push_elem, MULTISTATUS_HEAD};
use crate::error::Error;
use crate::request::body;
use crate::request::headers::{self, Depth};
use crate::resolve::node::Node;

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
                keep_format::time::Timestamp::from(t).to_rfc3339_seconds(),
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

/// The properties `names` asks for: those found (200), then a 404 propstat for the rest.
fn some_props(buf: &mut Vec<u8>, names: &[PropName], e: &Entry, dates: &mut Dates) {
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
        buf.extend_from_slice(b"</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>");
    }
}

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
        Want::Some(names) => some_props(buf, names, e, dates),
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

pub fn propfind(call: &Call<'_>, node: Node) -> Result<HttpResponse, Error> {
    // no Depth means infinity (RFC 4918 §9.1)
    let depth = headers::depth(call.req)?.unwrap_or(Depth::Infinity);
    let want = Arc::new(body::propfind(call.body)?);
    if depth == Depth::Infinity && !matches!(node, Node::Coll { .. }) {
        return Err(Error::FiniteDepth);
    }
    let is_dir = !matches!(node, Node::Coll { dir: false, .. });
    let mut href = call.req.uri().path().to_string();
    if is_dir && !href.ends_with('/') {
        href.push('/');
    }
    let (me, children) = entries(call.parsed, node, depth == Depth::Infinity);
    let children: Children = if depth == Depth::Zero {
        Box::new(std::iter::empty())
    } else {
        children
    };
    let mut head = MULTISTATUS_HEAD.to_vec();
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
