//! Resolving a parsed path to what it names, through the API: a collection's file or
//! directory, a project's children (walked level by level, never recursively), the
//! user list, or the static listings.

use std::sync::Arc;

use keep_format::{EntryKind, Token, Uuid, UuidKind};

use crate::error::Error;
use crate::resolve::url::{coll_id, CollId, Parsed, Site};
use crate::upstream::{Item, Upstream, View};

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

impl Node {
    /// A second handle on the same node (the listings are cloned, views shared).
    pub fn share(&self) -> Node {
        match self {
            Node::Root => Node::Root,
            Node::ById => Node::ById,
            Node::Empty => Node::Empty,
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
            Node::Missing { view, path, uuid } => Node::Missing {
                view: view.clone(),
                path: path.clone(),
                uuid: uuid.clone(),
            },
        }
    }
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

async fn collection(up: &Upstream, id: &str, rest: &[String], tok: &Token) -> Result<Node, Error> {
    let c = coll_id(id).ok_or(Error::NotFound)?;
    let view = up.collection(&c.api_id(), tok).await?;
    let uuid = match c {
        CollId::Uuid(u) => Some(u),
        CollId::Pdh(_) => None,
    };
    let path = rest.join("/");
    Ok(match view.index.stat(&path) {
        None => Node::Missing { view, path, uuid },
        Some(kind) => Node::Coll {
            view,
            path,
            dir: kind == EntryKind::Dir,
            uuid,
        },
    })
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

/// What `p` names for `tok`.
pub async fn resolve(up: &Upstream, p: &Parsed, tok: &Token) -> Result<Node, Error> {
    if let Site::Collection(id) = &p.site {
        return collection(up, id, &p.segs, tok).await;
    }
    if let Some(n) = static_node(p) {
        return Ok(n);
    }
    match p.segs.as_slice() {
        [b, id, rest @ ..] if b == "by_id" => by_id(up, id, rest, tok).await,
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

/// `/by_id/<id>/…`: a collection, or a project or user's home to walk.
async fn by_id(up: &Upstream, id: &str, rest: &[String], tok: &Token) -> Result<Node, Error> {
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
