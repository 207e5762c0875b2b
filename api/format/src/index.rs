//! A read-only index over one manifest version: path lookups, one-level listings and
//! byte-range → block-slice resolution, built once, shared by every reader.
//!
//! The directories form a tree of nodes, each holding only its own entries' names, so
//! the index costs memory linear in the manifest (a directory's path is never stored
//! once per level, as a map keyed by full paths would), building it is one pass
//! without recursion, and a lookup walks the path's components (binary search in each
//! directory): O(path length × log entries).

use std::collections::HashMap;
use std::ops::Range;

use crate::{Hash, Locator, Manifest};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File { size: u64 },
    Dir,
}

/// One child in a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub kind: EntryKind,
}

#[derive(Clone, Copy, Debug)]
struct Seg {
    /// Offset of this segment's first byte within the file.
    file_offset: u64,
    block: u32,
    block_offset: u64,
    len: u64,
}

#[derive(Clone, Debug)]
struct IndexedFile {
    size: u64,
    segs: Range<usize>,
}

/// One directory: its entries sorted by name, and for each the node it leads to (a
/// directory's index in `dirs`, or a file's in `files`).
#[derive(Clone, Debug, Default)]
struct Dir {
    entries: Vec<DirEntry>,
    ids: Vec<usize>,
}

/// A run of bytes inside one block: what to fetch for part of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slice<'a> {
    pub locator: &'a Locator,
    pub block_offset: u64,
    pub len: u64,
}

/// See the module docs.
#[derive(Clone, Debug)]
pub struct FileIndex {
    blocks: Vec<Locator>,
    segs: Vec<Seg>,
    files: Vec<IndexedFile>,
    /// `dirs[0]` is the root.
    dirs: Vec<Dir>,
}

/// A file found in a [`FileIndex`].
#[derive(Clone, Copy, Debug)]
pub struct FileRef<'a> {
    index: &'a FileIndex,
    file: &'a IndexedFile,
}

/// What a path leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    Dir(usize),
    File(usize),
}

/// The directory `path` names, created with its ancestors as needed: one step per
/// component, no recursion.
fn dir_of<'m>(
    dirs: &mut Vec<Dir>,
    ids: &mut HashMap<(usize, &'m str), usize>,
    path: &'m str,
) -> usize {
    let mut cur = 0;
    if path.is_empty() {
        return cur;
    }
    for comp in path.split('/') {
        cur = match ids.get(&(cur, comp)) {
            Some(&id) => id,
            None => {
                let id = dirs.len();
                dirs.push(Dir::default());
                if let Some(parent) = dirs.get_mut(cur) {
                    parent.entries.push(DirEntry {
                        name: comp.to_string(),
                        kind: EntryKind::Dir,
                    });
                    parent.ids.push(id);
                }
                ids.insert((cur, comp), id);
                id
            }
        };
    }
    cur
}

impl FileIndex {
    pub fn new(m: &Manifest) -> FileIndex {
        let mut segs = Vec::new();
        let mut files = Vec::with_capacity(m.files().len());
        let mut dirs: Vec<Dir> = vec![Dir::default()];
        // (parent dir, name) -> dir, while building: each component is hashed once
        let mut dir_ids: HashMap<(usize, &str), usize> = HashMap::new();

        for (path, f) in m.files() {
            let start = segs.len();
            let mut at = 0u64;
            for s in &f.segments {
                segs.push(Seg {
                    file_offset: at,
                    block: s.block,
                    block_offset: s.offset,
                    len: s.len,
                });
                at = at.saturating_add(s.len);
            }
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
            let d = dir_of(&mut dirs, &mut dir_ids, parent);
            let id = files.len();
            files.push(IndexedFile {
                size: at,
                segs: start..segs.len(),
            });
            if let Some(dir) = dirs.get_mut(d) {
                dir.entries.push(DirEntry {
                    name: name.to_string(),
                    kind: EntryKind::File { size: at },
                });
                dir.ids.push(id);
            }
        }
        for d in m.explicit_dirs() {
            dir_of(&mut dirs, &mut dir_ids, d);
        }
        for dir in &mut dirs {
            let mut both: Vec<(DirEntry, usize)> = std::mem::take(&mut dir.entries)
                .into_iter()
                .zip(std::mem::take(&mut dir.ids))
                .collect();
            both.sort_by(|a, b| a.0.name.cmp(&b.0.name));
            (dir.entries, dir.ids) = both.into_iter().unzip();
        }
        FileIndex {
            blocks: m.blocks().to_vec(),
            segs,
            files,
            dirs,
        }
    }

    /// What `path` leads to: one binary search per component.
    fn find(&self, path: &str) -> Option<Node> {
        let mut node = Node::Dir(0);
        if path.is_empty() {
            return Some(node);
        }
        for comp in path.split('/') {
            let Node::Dir(d) = node else {
                return None;
            };
            let dir = self.dirs.get(d)?;
            let i = dir
                .entries
                .binary_search_by(|e| e.name.as_str().cmp(comp))
                .ok()?;
            let id = *dir.ids.get(i)?;
            node = match dir.entries.get(i)?.kind {
                EntryKind::Dir => Node::Dir(id),
                EntryKind::File { .. } => Node::File(id),
            };
        }
        Some(node)
    }

    /// What is at `path` (`""` is the root; no leading or trailing `/`).
    pub fn stat(&self, path: &str) -> Option<EntryKind> {
        match self.find(path)? {
            Node::Dir(_) => Some(EntryKind::Dir),
            Node::File(f) => Some(EntryKind::File {
                size: self.files.get(f)?.size,
            }),
        }
    }

    pub fn file(&self, path: &str) -> Option<FileRef<'_>> {
        match self.find(path)? {
            Node::File(f) => Some(FileRef {
                index: self,
                file: self.files.get(f)?,
            }),
            Node::Dir(_) => None,
        }
    }

    /// The children of directory `path`, sorted by name; `None` if it is not a directory.
    pub fn list(&self, path: &str) -> Option<&[DirEntry]> {
        match self.find(path)? {
            Node::Dir(d) => self.dirs.get(d).map(|d| d.entries.as_slice()),
            Node::File(_) => None,
        }
    }

    /// Everything below directory `dir`, depth first, each directory's entries by name:
    /// (path relative to `dir`, full path, kind). Lazy: nothing is collected ahead, and
    /// the stack holds one small frame per level (no recursion).
    pub fn walk<'a>(&'a self, dir: &str) -> impl Iterator<Item = (String, String, EntryKind)> + 'a {
        let join = |a: &str, b: &str| {
            if a.is_empty() {
                b.to_string()
            } else {
                format!("{a}/{b}")
            }
        };
        // (directory node, its full path, its path relative to `dir`, next child index)
        let mut stack: Vec<(usize, String, String, usize)> = match self.find(dir) {
            Some(Node::Dir(d)) => vec![(d, dir.to_string(), String::new(), 0)],
            _ => Vec::new(),
        };
        std::iter::from_fn(move || loop {
            let (d, path, rel, i) = stack.last_mut()?;
            let Some(dir) = self.dirs.get(*d) else {
                stack.pop();
                continue;
            };
            let (Some(e), Some(&id)) = (dir.entries.get(*i), dir.ids.get(*i)) else {
                stack.pop();
                continue;
            };
            *i += 1;
            let (p, r) = (join(path, &e.name), join(rel, &e.name));
            if e.kind == EntryKind::Dir {
                stack.push((id, p.clone(), r.clone(), 0));
            }
            return Some((r, p, e.kind));
        })
    }

    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// How many directories the index holds (the root included).
    pub fn dir_count(&self) -> usize {
        self.dirs.len()
    }

    pub fn blocks(&self) -> &[Locator] {
        &self.blocks
    }
}

impl<'a> FileRef<'a> {
    pub fn size(&self) -> u64 {
        self.file.size
    }

    fn segs(&self) -> &'a [Seg] {
        self.index
            .segs
            .get(self.file.segs.clone())
            .unwrap_or_default()
    }

    /// The block slices holding bytes `range` of the file (clamped to its size), in order.
    /// Finding the first one is a binary search: O(log segments).
    pub fn slices(&self, range: Range<u64>) -> impl Iterator<Item = Slice<'a>> + 'a {
        let end = range.end.min(self.file.size);
        let start = range.start.min(end);
        let segs = self.segs();
        let first = segs.partition_point(|s| s.file_offset.saturating_add(s.len) <= start);
        let blocks = &self.index.blocks;
        segs.get(first..)
            .unwrap_or_default()
            .iter()
            .take_while(move |s| s.file_offset < end)
            .filter_map(move |s| {
                let from = start.max(s.file_offset);
                let to = end.min(s.file_offset.saturating_add(s.len));
                Some(Slice {
                    locator: blocks.get(s.block as usize)?,
                    block_offset: s.block_offset + (from - s.file_offset),
                    len: to.saturating_sub(from),
                })
            })
            .filter(|s| s.len > 0)
    }

    /// A digest of the file's content identity (its blocks and offsets, not names or
    /// signatures): equal for equal content layouts, so it makes a stable strong ETag.
    pub fn content_id(&self) -> Hash {
        let mut h = blake3::Hasher::new();
        for s in self.segs() {
            if let Some(l) = self.index.blocks.get(s.block as usize) {
                h.update(l.hash.as_bytes());
            }
            h.update(&s.block_offset.to_le_bytes());
            h.update(&s.len.to_le_bytes());
        }
        h.update(&self.file.size.to_le_bytes());
        Hash::from(h.finalize())
    }
}
