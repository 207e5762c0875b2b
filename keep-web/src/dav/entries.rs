//! What a listing shows: a node's own entry and its children, lazily (a collection
//! directory's children are walked with an explicit stack, one level or all of them,
//! never recursively), each with its href relative to the listed directory.

use std::sync::Arc;
use std::time::SystemTime;

use keep_format::dav::PropSet;
use keep_format::EntryKind;

use crate::ops::read::file_etag;
use crate::request::url::encode;
use crate::resolve::node::Node;
use crate::resolve::url::Parsed;
use crate::upstream::View;

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

/// (href relative to the listed directory, already %-encoded; the entry).
pub type Children = Box<dyn Iterator<Item = (String, Entry)> + Send>;

fn file_entry(view: &View, path: &str, name: &str, kind: EntryKind) -> Entry {
    let dead = if view.dead.is_empty() {
        None
    } else {
        view.dead.get(path).cloned()
    };
    let (dir, size, etag) = match kind {
        EntryKind::Dir => (true, None, None),
        EntryKind::File { size } => (false, Some(size), file_etag(view, path)),
    };
    Entry {
        name: name.to_string(),
        dir,
        size,
        modified: view.modified,
        etag,
        dead,
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
/// relative to that directory. Lazy: nothing is built ahead, and the stack holds one
/// frame per directory level, on the heap.
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
pub fn entries(parsed: &Parsed, node: Node, recurse: bool) -> (Entry, Children) {
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
