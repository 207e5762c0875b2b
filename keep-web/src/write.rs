//! Writes: PUT, DELETE, MKCOL, COPY, MOVE and PROPPATCH inside a UUID-addressed
//! collection. Each commits exactly one `replace_files` update through the API (which
//! applies it atomically to the collection's current version, so writers on different
//! paths never lose each other's change), or changes nothing.

use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use keep_format::{EntryKind, FileIndex, Locator, Manifest, Token, BLOCK_SIZE_MAX};
use md5::Digest as _;
use serde_json::{json, Map, Value};

use crate::error::Error;
use crate::path::Node;
use crate::upstream::{Upstream, View};
use keep_format::dav::{self as props, DeadProps, PropName, Update};

/// Where a write lands: an existing or missing path of a collection the token may change.
pub struct Target {
    pub uuid: String,
    pub view: Arc<View>,
    pub path: String,
    pub kind: Option<EntryKind>,
}

impl Target {
    /// The node a write names, or why it can't be written.
    pub fn of(node: Node) -> Result<Target, Error> {
        let (view, path, uuid, kind) = match node {
            Node::Coll {
                view, path, uuid, ..
            } => {
                let kind = view.index.stat(&path);
                (view, path, uuid, kind)
            }
            Node::Missing { view, path, uuid } => (view, path, uuid, None),
            _ => {
                return Err(Error::ReadOnly(
                    "this is a listing of projects or users, not the inside of a collection: \
                     only files and directories inside a collection can be written"
                        .into(),
                ))
            }
        };
        let Some(uuid) = uuid else {
            return Err(Error::ReadOnly(
                "a collection named by its portable data hash is read-only (that hash names \
                 fixed content): write through its UUID instead"
                    .into(),
            ));
        };
        if !view.can_write {
            return Err(Error::Forbidden(format!(
                "your token may read collection {uuid} but not change it (it needs can_write)"
            )));
        }
        Ok(Target {
            uuid,
            view,
            path,
            kind,
        })
    }

    fn parent_is_dir(&self) -> Result<(), Error> {
        parent_is_dir(&self.view, &self.path)
    }
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

fn parent_is_dir(view: &View, path: &str) -> Result<(), Error> {
    let parent = parent_of(path);
    match view.index.stat(parent) {
        Some(EntryKind::Dir) => Ok(()),
        Some(EntryKind::File { .. }) => Err(Error::Conflict(format!(
            "{parent:?} is a file, so it cannot hold {path:?}"
        ))),
        None => Err(Error::Conflict(format!(
            "the directory {parent:?} does not exist: create it first (MKCOL)"
        ))),
    }
}

fn abs(path: &str) -> String {
    format!("/{path}")
}

/// The body of one `replace_files` update, with the dead properties when they change.
fn update_body(
    manifest: Option<String>,
    replace: Vec<(String, String)>,
    properties: Option<Value>,
) -> Value {
    let mut c = Map::new();
    if let Some(m) = manifest {
        c.insert("manifest_text".into(), json!(m));
    }
    if let Some(p) = properties {
        c.insert("properties".into(), p);
    }
    let mut r = Map::new();
    for (k, v) in replace {
        r.insert(k, json!(v));
    }
    json!({ "collection": c, "replace_files": r })
}

/// Commits one update of `t`'s collection: `body` builds it, given the collection's
/// properties with the dead properties changed by `f` — or `None` when the caller found
/// (on its view, cheaply) that no dead property changes (`needed` false): the update
/// then leaves `properties` alone, which is what almost every write does.
///
/// A change of properties is made to the properties as they are now, not as the view
/// saw them, and only if no one changed the collection between that read and the write
/// (`if_etag`); if someone did, it is read and tried again, so two concurrent
/// PROPPATCHes never lose one another's property.
async fn commit(
    up: &Upstream,
    t: &Target,
    tok: &Token,
    needed: bool,
    f: impl Fn(&mut DeadProps),
    body: impl Fn(Option<Value>) -> Value,
) -> Result<(), Error> {
    if !needed {
        up.update_collection(&t.uuid, tok, &body(None)).await?;
        return Ok(());
    }
    const TRIES: usize = 16;
    for _ in 0..TRIES {
        let (fresh, etag) = up.properties(&t.uuid, tok).await?;
        let mut dead = props::dead_of(&fresh);
        f(&mut dead);
        let mut b = body(Some(props::into_properties(fresh, dead)));
        if let Some(o) = b.as_object_mut() {
            o.insert("if_etag".into(), json!(etag));
        }
        match up.update_collection(&t.uuid, tok, &b).await {
            Err(Error::PreconditionFailed(_)) => continue,
            r => return r.map(drop),
        }
    }
    Err(Error::Conflict(format!(
        "collection {} kept changing while its properties were written ({TRIES} tries): \
         try again",
        t.uuid
    )))
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The `sha-256=<value>` item of a digest header (`Content-Digest` or `Digest`).
fn sha256_item<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    header_str(req, name)?
        .split(',')
        .filter_map(|item| item.trim().split_once('='))
        .find(|(alg, _)| alg.trim().eq_ignore_ascii_case("sha-256"))
        .map(|(_, v)| v.trim())
}

/// Digests the client asked us to check the body against.
struct Digests {
    md5: Option<(md5::Md5, Vec<u8>)>,
    sha256: Option<(sha2::Sha256, Vec<u8>)>,
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>, Error> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|_| Error::BadRequest(format!("{what} is not base64: {s:?}")))
}

impl Digests {
    fn from(req: &HttpRequest) -> Result<Digests, Error> {
        let md5 = match header_str(req, "content-md5") {
            Some(v) => {
                let want = b64(v, "Content-MD5")?;
                if want.len() != 16 {
                    return Err(Error::BadRequest(
                        "Content-MD5 must be the base64 of 16 bytes".into(),
                    ));
                }
                Some((md5::Md5::new(), want))
            }
            None => None,
        };
        // RFC 9530 `Content-Digest: sha-256=:<base64>:`, or RFC 3230 `Digest: SHA-256=<b64>`
        let sha = match sha256_item(req, "content-digest") {
            Some(v) => Some(b64(v.trim_matches(':'), "Content-Digest sha-256")?),
            None => match sha256_item(req, "digest") {
                Some(v) => Some(b64(v, "Digest SHA-256")?),
                None => None,
            },
        };
        if sha.as_ref().is_some_and(|s| s.len() != 32) {
            return Err(Error::BadRequest(
                "the sha-256 digest must be the base64 of 32 bytes".into(),
            ));
        }
        Ok(Digests {
            md5,
            sha256: sha.map(|w| (sha2::Sha256::new(), w)),
        })
    }

    fn update(&mut self, b: &[u8]) {
        if let Some((h, _)) = &mut self.md5 {
            h.update(b);
        }
        if let Some((h, _)) = &mut self.sha256 {
            h.update(b);
        }
    }

    fn check(self) -> Result<(), Error> {
        let same = |alg: &str, header: &str, got: &[u8], want: &[u8]| {
            if got == want {
                return Ok(());
            }
            let enc = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
            Err(Error::BadRequest(format!(
                "the body's {alg} is {} but {header} says {}: nothing was stored",
                enc(got),
                enc(want)
            )))
        };
        if let Some((h, want)) = self.md5 {
            same("MD5", "Content-MD5", &h.finalize(), &want)?;
        }
        if let Some((h, want)) = self.sha256 {
            same("sha-256", "the request's digest", &h.finalize(), &want)?;
        }
        Ok(())
    }
}

/// PUT: the body is cut into blocks of at most 64 MiB as it arrives; each full block goes
/// to keepstore while the next fills (at most two in memory), and only when the whole
/// body arrived, with the length and digests it claimed, is the file committed.
pub async fn put(
    up: &Arc<Upstream>,
    req: &HttpRequest,
    mut payload: web::Payload,
    t: Target,
    tok: Token,
) -> Result<HttpResponse, Error> {
    if t.path.is_empty() || t.kind == Some(EntryKind::Dir) {
        return Err(Error::MethodNotAllowed);
    }
    t.parent_is_dir()?;
    let declared =
        match header_str(req, "content-length") {
            Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
                Error::BadRequest("the Content-Length header is not a number".into())
            })?),
            None => None,
        };
    let mut digests = Digests::from(req)?;
    let mut blocks = BlockCutter::new(up.clone(), tok.clone(), declared);
    let mut total: u64 = 0;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            Error::BadRequest(format!(
                "the request body ended early after {total} bytes ({e}): nothing was stored"
            ))
        })?;
        total += chunk.len() as u64;
        if declared.is_some_and(|d| total > d) {
            return Err(Error::BadRequest(format!(
                "the body is longer than its Content-Length ({}): nothing was stored",
                declared.unwrap_or(0)
            )));
        }
        digests.update(&chunk);
        blocks.write(&chunk, None).await?;
    }
    if let Some(d) = declared {
        if total != d {
            return Err(Error::BadRequest(format!(
                "the body had {total} bytes but its Content-Length said {d}: nothing was stored"
            )));
        }
    }
    digests.check()?;
    let runs = blocks.finish().await?;

    let mut m = Manifest::new();
    m.put_file(&t.path, runs.iter().map(|l| (l.clone(), 0, l.size)))
        .map_err(|e| Error::Conflict(e.to_string()))?;
    let etag = FileIndex::new(&m)
        .file(&t.path)
        .map(|f| format!("\"{}\"", f.content_id().to_hex()));
    let body = update_body(
        Some(m.to_text()),
        vec![(abs(&t.path), format!("manifest_text/{}", t.path))],
        None,
    );
    up.update_collection(&t.uuid, &tok, &body).await?;
    if crate::repack::worth_a_look(&t.view) {
        up.repacker.after_write(up, &t.uuid, &tok);
    }
    let mut r = HttpResponse::Created();
    if let Some(e) = etag {
        r.insert_header((header::ETAG, e));
    }
    Ok(r.finish())
}

/// Where bytes written to a [`BlockCutter`] landed: (block index, offset in it, length).
pub type Run = (usize, u64, u64);

/// Bytes cut into blocks of at most 64 MiB as they come: each full block is stored on
/// keepstore while the next one fills, so at most two blocks are in memory.
pub struct BlockCutter {
    up: Arc<Upstream>,
    tok: Token,
    buf: BytesMut,
    /// Bytes still expected, when known (sizes the next buffer).
    expected: Option<u64>,
    pending: Option<tokio::task::JoinHandle<Result<Locator, Error>>>,
    stored: Vec<Locator>,
}

impl BlockCutter {
    pub fn new(up: Arc<Upstream>, tok: Token, expected: Option<u64>) -> BlockCutter {
        let mut c = BlockCutter {
            up,
            tok,
            buf: BytesMut::new(),
            expected,
            pending: None,
            stored: Vec::new(),
        };
        c.buf = c.fresh_buffer();
        c
    }

    fn fresh_buffer(&self) -> BytesMut {
        let block = BLOCK_SIZE_MAX as usize;
        BytesMut::with_capacity(self.expected.map_or(1 << 20, |l| (l as usize).min(block)))
    }

    /// Blocks handed to keepstore so far (stored or on their way).
    fn sent(&self) -> usize {
        self.stored.len() + usize::from(self.pending.is_some())
    }

    /// Appends `data`; where it landed goes to `runs` when given.
    pub async fn write(
        &mut self,
        mut data: &[u8],
        mut runs: Option<&mut Vec<Run>>,
    ) -> Result<(), Error> {
        let block = BLOCK_SIZE_MAX as usize;
        if let Some(e) = &mut self.expected {
            *e = e.saturating_sub(data.len() as u64);
        }
        while !data.is_empty() {
            let take = (block - self.buf.len()).min(data.len());
            if let Some(r) = runs.as_deref_mut() {
                r.push((self.sent(), self.buf.len() as u64, take as u64));
            }
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == block {
                let next = self.fresh_buffer();
                let full = std::mem::replace(&mut self.buf, next).freeze();
                self.send(full).await?;
            }
        }
        Ok(())
    }

    async fn send(&mut self, data: Bytes) -> Result<(), Error> {
        let (up, tok) = (self.up.clone(), self.tok.clone());
        let task = tokio::spawn(async move { up.put_block(data, &tok).await });
        if let Some(prev) = self.pending.replace(task) {
            self.stored.push(join(prev).await?);
        }
        Ok(())
    }

    /// Stores what is left; the locators of every block, in order.
    pub async fn finish(mut self) -> Result<Vec<Locator>, Error> {
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf).freeze();
            self.send(last).await?;
        }
        if let Some(last) = self.pending.take() {
            self.stored.push(join(last).await?);
        }
        Ok(self.stored)
    }
}

async fn join(h: tokio::task::JoinHandle<Result<Locator, Error>>) -> Result<Locator, Error> {
    h.await
        .map_err(|e| Error::Internal(format!("a block upload stopped: {e}")))?
}

/// MKCOL: one new empty directory.
pub async fn mkcol(
    up: &Upstream,
    body: &[u8],
    t: Target,
    tok: &Token,
) -> Result<HttpResponse, Error> {
    if !body.is_empty() {
        return Err(Error::UnsupportedMediaType(
            "MKCOL takes no body here: it makes one empty directory".into(),
        ));
    }
    if t.kind.is_some() {
        return Err(Error::MethodNotAllowed);
    }
    t.parent_is_dir()?;
    let mut m = Manifest::new();
    m.put_dir(&t.path)
        .map_err(|e| Error::Conflict(e.to_string()))?;
    let body = update_body(
        Some(m.to_text()),
        vec![(abs(&t.path), format!("manifest_text/{}", t.path))],
        None,
    );
    up.update_collection(&t.uuid, tok, &body).await?;
    Ok(HttpResponse::Created().finish())
}

/// DELETE: a file, or a directory with everything in it.
pub async fn delete(
    up: &Upstream,
    req: &HttpRequest,
    t: Target,
    tok: &Token,
) -> Result<HttpResponse, Error> {
    if t.kind.is_none() {
        return Err(Error::NoSuchPath);
    }
    if t.path.is_empty() {
        return Err(Error::ReadOnly(
            "DELETE of a whole collection is not done over WebDAV: trash it with the API \
             or `keep` instead"
                .into(),
        ));
    }
    if let Some(d) = header_str(req, "depth") {
        if !d.trim().eq_ignore_ascii_case("infinity") {
            return Err(Error::BadRequest(
                "DELETE takes Depth: infinity (or none)".into(),
            ));
        }
    }
    let needed = props::has_tree(&t.view.dead, &t.path);
    commit(
        up,
        &t,
        tok,
        needed,
        |d| {
            props::remove_tree(d, &t.path);
        },
        |p| update_body(None, vec![(abs(&t.path), String::new())], p),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// COPY and MOVE: `dst` is the resolved Destination.
pub async fn copy_move(
    up: &Upstream,
    req: &HttpRequest,
    src: Target,
    dst: Target,
    tok: &Token,
    is_move: bool,
) -> Result<HttpResponse, Error> {
    let Some(kind) = src.kind else {
        return Err(Error::NoSuchPath);
    };
    let overwrite = match header_str(req, "overwrite").map(str::trim) {
        None | Some("T") | Some("t") => true,
        Some("F") | Some("f") => false,
        Some(o) => {
            return Err(Error::BadRequest(format!(
                "Overwrite must be T or F, not {o:?}"
            )))
        }
    };
    let depth = header_str(req, "depth").map(|d| d.trim().to_ascii_lowercase());
    let deep = match depth.as_deref() {
        None | Some("infinity") => true,
        Some("0") if !is_move => false,
        _ => {
            return Err(Error::BadRequest(if is_move {
                "MOVE takes Depth: infinity (or none)".into()
            } else {
                "COPY takes Depth: 0 or infinity".into()
            }))
        }
    };
    if src.path.is_empty() {
        return Err(Error::Forbidden(
            "the collection's root can't be copied or moved into a path (copy its files)".into(),
        ));
    }
    if dst.path.is_empty() {
        return Err(Error::Forbidden(
            "the Destination is a collection's root: name a path inside it".into(),
        ));
    }
    let same = src.uuid == dst.uuid;
    if same
        && (dst.path == src.path
            || (kind == EntryKind::Dir && dst.path.starts_with(&format!("{}/", src.path))))
    {
        return Err(Error::Forbidden(format!(
            "{:?} can't be {} onto itself or into itself",
            src.path,
            if is_move { "moved" } else { "copied" }
        )));
    }
    parent_is_dir(&dst.view, &dst.path)?;
    let existed = dst.kind.is_some();
    if existed && !overwrite {
        return Err(Error::PreconditionFailed(format!(
            "{:?} exists and the request says Overwrite: F",
            dst.path
        )));
    }

    // what the destination gets
    let (manifest, source) = if kind == EntryKind::Dir && !deep {
        let mut m = Manifest::new();
        m.put_dir(&dst.path)
            .map_err(|e| Error::Conflict(e.to_string()))?;
        (Some(m.to_text()), format!("manifest_text/{}", dst.path))
    } else if same {
        (None, format!("current/{}", src.path))
    } else {
        // another collection: its version as this request saw it
        (None, format!("{}/{}", src.view.pdh, src.path))
    };
    let mut replace = vec![(abs(&dst.path), source)];
    if is_move && same {
        replace.push((abs(&src.path), String::new()));
    }
    let moved = props::copy_tree(&src.view.dead, &src.path, &dst.path, deep);
    let clears_src = is_move && same;
    let needed = !moved.is_empty()
        || props::has_tree(&dst.view.dead, &dst.path)
        || (clears_src && props::has_tree(&src.view.dead, &src.path));
    commit(
        up,
        &dst,
        tok,
        needed,
        |d| {
            props::remove_tree(d, &dst.path);
            if clears_src {
                props::remove_tree(d, &src.path);
            }
            d.extend(moved.clone());
        },
        |p| update_body(manifest.clone(), replace.clone(), p),
    )
    .await?;
    if is_move && !same {
        // the copy is committed; now the source goes (a second, separate update)
        commit(
            up,
            &src,
            tok,
            props::has_tree(&src.view.dead, &src.path),
            |d| {
                props::remove_tree(d, &src.path);
            },
            |p| update_body(None, vec![(abs(&src.path), String::new())], p),
        )
        .await?;
    }
    Ok(if existed {
        HttpResponse::NoContent().finish()
    } else {
        HttpResponse::Created().finish()
    })
}

/// PROPPATCH: every change applies, in one update, or none does (a live property
/// refused with 403, the rest 424).
pub async fn proppatch(
    up: &Upstream,
    req: &HttpRequest,
    body: &[u8],
    t: Target,
    tok: &Token,
) -> Result<HttpResponse, Error> {
    if t.kind.is_none() {
        return Err(Error::NoSuchPath);
    }
    let updates = props::parse_proppatch(body)?;
    let refused = updates.iter().any(|u| u.name().is_live());
    if !refused {
        let apply = |d: &mut DeadProps| {
            let set = d.entry(t.path.clone()).or_default();
            for u in &updates {
                match u {
                    Update::Set(n, p) => {
                        set.insert(n.clark(), p.clone());
                    }
                    Update::Remove(n) => {
                        set.remove(&n.clark());
                    }
                }
            }
            if set.is_empty() {
                d.remove(&t.path);
            }
        };
        commit(
            up,
            &t,
            tok,
            true,
            apply,
            |p| json!({ "collection": { "properties": p } }),
        )
        .await?;
    }
    let mut out = Vec::new();
    out.extend_from_slice(
        b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\"><D:response><D:href>",
    );
    crate::dav::push_text(&mut out, req.uri().path());
    out.extend_from_slice(b"</D:href>");
    let mut group = |names: Vec<&PropName>, status: &str| {
        if names.is_empty() {
            return;
        }
        out.extend_from_slice(b"<D:propstat><D:prop>");
        for n in names {
            props::write_name(&mut out, n);
        }
        out.extend_from_slice(b"</D:prop><D:status>HTTP/1.1 ");
        out.extend_from_slice(status.as_bytes());
        out.extend_from_slice(b"</D:status></D:propstat>");
    };
    if refused {
        let (live, dead): (Vec<_>, Vec<_>) =
            updates.iter().map(Update::name).partition(|n| n.is_live());
        group(live, "403 Forbidden");
        group(dead, "424 Failed Dependency");
    } else {
        group(updates.iter().map(Update::name).collect(), "200 OK");
    }
    out.extend_from_slice(b"</D:response></D:multistatus>\n");
    Ok(HttpResponse::build(StatusCode::MULTI_STATUS)
        .content_type("application/xml; charset=utf-8")
        .body(out))
}
