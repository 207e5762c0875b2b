//! Writes inside a UUID-addressed collection: a file from a body, a directory, a
//! deletion, a copy or move, dead properties. Each commits exactly one `replace_files`
//! update through the API (which applies it atomically to the collection's current
//! version, so writers on different paths never lose each other's change), or changes
//! nothing. What the request asked is parsed by the WebDAV handlers; this layer only
//! decides and commits.

use std::sync::Arc;

use actix_web::web;
use futures_util::StreamExt;
use keep_format::dav::{self as props, DeadProps, Update};
use keep_format::{EntryKind, FileIndex, Manifest, Token};
use serde_json::{json, Map, Value};

use crate::blocks::BlockCutter;
use crate::error::Error;
use crate::request::digest::Digests;
use crate::resolve::node::Node;
use crate::upstream::{Upstream, View};

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

fn bad_path(path: &str) -> impl FnOnce(keep_format::Error) -> Error + '_ {
    move |source| Error::BadPath {
        what: format!("{path:?} can't be written"),
        source,
    }
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

/// PUT: the body is cut into blocks of at most 64 MiB as it arrives; each full block goes
/// to keepstore while the next fills (at most two in memory), and only when the whole
/// body arrived, with the length (`declared`) and digests it claimed, is the file
/// committed. Returns the file's ETag.
pub async fn put(
    up: &Arc<Upstream>,
    t: &Target,
    mut payload: web::Payload,
    declared: Option<u64>,
    mut digests: Digests,
    tok: &Token,
) -> Result<Option<String>, Error> {
    if t.path.is_empty() || t.kind == Some(EntryKind::Dir) {
        return Err(Error::MethodNotAllowed);
    }
    t.parent_is_dir()?;
    let mut blocks = BlockCutter::new(up.clone(), tok.clone(), declared);
    let mut total: u64 = 0;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|source| Error::BodyRead {
            what: format!("the request body ended early after {total} bytes: nothing was stored"),
            source,
        })?;
        total += chunk.len() as u64;
        if let Some(d) = declared.filter(|d| total > *d) {
            return Err(Error::BadRequest(format!(
                "the body is longer than its Content-Length ({d}): nothing was stored"
            )));
        }
        digests.update(&chunk);
        blocks.write(&chunk, None).await?;
    }
    if let Some(d) = declared.filter(|d| total != *d) {
        return Err(Error::BadRequest(format!(
            "the body had {total} bytes but its Content-Length said {d}: nothing was stored"
        )));
    }
    digests.check()?;
    let runs = blocks.finish().await?;

    let mut m = Manifest::new();
    m.put_file(&t.path, runs.iter().map(|l| (l.clone(), 0, l.size)))
        .map_err(bad_path(&t.path))?;
    let etag = FileIndex::new(&m)
        .file(&t.path)
        .map(|f| format!("\"{}\"", f.content_id().to_hex()));
    let body = update_body(
        Some(m.to_text()),
        vec![(abs(&t.path), format!("manifest_text/{}", t.path))],
        None,
    );
    up.update_collection(&t.uuid, tok, &body).await?;
    Ok(etag)
}

/// MKCOL: one new empty directory.
pub async fn mkcol(up: &Upstream, t: &Target, tok: &Token) -> Result<(), Error> {
    if t.kind.is_some() {
        return Err(Error::MethodNotAllowed);
    }
    t.parent_is_dir()?;
    let mut m = Manifest::new();
    m.put_dir(&t.path).map_err(bad_path(&t.path))?;
    let body = update_body(
        Some(m.to_text()),
        vec![(abs(&t.path), format!("manifest_text/{}", t.path))],
        None,
    );
    up.update_collection(&t.uuid, tok, &body).await?;
    Ok(())
}

/// DELETE: a file, or a directory with everything in it.
pub async fn delete(up: &Upstream, t: &Target, tok: &Token) -> Result<(), Error> {
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
    let needed = props::has_tree(&t.view.dead, &t.path);
    commit(
        up,
        t,
        tok,
        needed,
        |d| {
            props::remove_tree(d, &t.path);
        },
        |p| update_body(None, vec![(abs(&t.path), String::new())], p),
    )
    .await
}

/// What a COPY or MOVE was asked to do.
pub struct CopyMove {
    pub is_move: bool,
    /// `Overwrite: T`.
    pub overwrite: bool,
    /// `Depth: infinity` (a COPY of a directory with `Depth: 0` makes it empty).
    pub deep: bool,
}

/// COPY and MOVE of `src` to `dst` (possibly another collection). Returns whether the
/// destination existed (204) or not (201).
pub async fn copy_move(
    up: &Upstream,
    src: &Target,
    dst: &Target,
    tok: &Token,
    how: CopyMove,
) -> Result<bool, Error> {
    let CopyMove {
        is_move,
        overwrite,
        deep,
    } = how;
    let Some(kind) = src.kind else {
        return Err(Error::NoSuchPath);
    };
    check_copy_move(src, dst, kind, is_move)?;
    let existed = dst.kind.is_some();
    if existed && !overwrite {
        return Err(Error::PreconditionFailed(format!(
            "{:?} exists and the request says Overwrite: F",
            dst.path
        )));
    }
    let same = src.uuid == dst.uuid;
    // what the destination gets
    let (manifest, source) = if kind == EntryKind::Dir && !deep {
        let mut m = Manifest::new();
        m.put_dir(&dst.path).map_err(bad_path(&dst.path))?;
        (Some(m.to_text()), format!("manifest_text/{}", dst.path))
    } else if same {
        (None, format!("current/{}", src.path))
    } else {
        // another collection: its version as this request saw it
        (None, format!("{}/{}", src.view.pdh, src.path))
    };
    let mut replace = vec![(abs(&dst.path), source)];
    let clears_src = is_move && same;
    if clears_src {
        replace.push((abs(&src.path), String::new()));
    }
    let moved = props::copy_tree(&src.view.dead, &src.path, &dst.path, deep);
    let needed = !moved.is_empty()
        || props::has_tree(&dst.view.dead, &dst.path)
        || (clears_src && props::has_tree(&src.view.dead, &src.path));
    commit(
        up,
        dst,
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
        delete(up, src, tok).await?;
    }
    Ok(existed)
}

/// The refusals of a COPY or MOVE that depend only on the two paths.
fn check_copy_move(
    src: &Target,
    dst: &Target,
    kind: EntryKind,
    is_move: bool,
) -> Result<(), Error> {
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
    if src.uuid == dst.uuid
        && (dst.path == src.path
            || (kind == EntryKind::Dir && dst.path.starts_with(&format!("{}/", src.path))))
    {
        return Err(Error::Forbidden(format!(
            "{:?} can't be {} onto itself or into itself",
            src.path,
            if is_move { "moved" } else { "copied" }
        )));
    }
    parent_is_dir(&dst.view, &dst.path)
}

/// PROPPATCH: every change applies, in one update, or none does. Returns false (and
/// changes nothing) when a live property was among them (403 for it, 424 the rest).
pub async fn proppatch(
    up: &Upstream,
    t: &Target,
    updates: &[Update],
    tok: &Token,
) -> Result<bool, Error> {
    if t.kind.is_none() {
        return Err(Error::NoSuchPath);
    }
    if updates.iter().any(|u| u.name().is_live()) {
        return Ok(false);
    }
    let apply = |d: &mut DeadProps| {
        let set = d.entry(t.path.clone()).or_default();
        for u in updates {
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
        t,
        tok,
        true,
        apply,
        |p| json!({ "collection": { "properties": p } }),
    )
    .await?;
    Ok(true)
}
