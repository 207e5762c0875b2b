//! A read-only index over one manifest version: path lookups, one-level listings and
//! byte-range → block-slice resolution in O(log n), built once, shared by every reader.

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
    segs: Range<u32>,
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
    files: HashMap<String, IndexedFile>,
    /// Directory path ("" = root) → its children, sorted by name.
    dirs: HashMap<String, Vec<DirEntry>>,
}

/// A file found in a [`FileIndex`].
#[derive(Clone, Copy, Debug)]
pub struct FileRef<'a> {
    index: &'a FileIndex,
    file: &'a IndexedFile,
}

impl FileIndex {
    pub fn new(m: &Manifest) -> FileIndex {
        let mut segs = Vec::new();
        let mut files = HashMap::with_capacity(m.files().len());
        let mut dirs: HashMap<String, Vec<DirEntry>> = HashMap::new();
        dirs.insert(String::new(), Vec::new());

        fn add_dir_chain(dirs: &mut HashMap<String, Vec<DirEntry>>, path: &str) {
            // make sure `path` and all its ancestors exist and are listed in their
            // parents (ancestors first, so a directory holding only directories is
            // listed too)
            if path.is_empty() || dirs.contains_key(path) {
                return;
            }
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
            add_dir_chain(dirs, parent);
            dirs.insert(path.to_string(), Vec::new());
            if let Some(children) = dirs.get_mut(parent) {
                children.push(DirEntry {
                    name: name.to_string(),
                    kind: EntryKind::Dir,
                });
            }
        }

        for (path, f) in m.files() {
            let start = segs.len() as u32;
            let mut at = 0;
            for s in &f.segments {
                segs.push(Seg {
                    file_offset: at,
                    block: s.block,
                    block_offset: s.offset,
                    len: s.len,
                });
                at += s.len;
            }
            let (parent, name) = match path.rsplit_once('/') {
                Some((a, b)) => (a, b),
                None => ("", path.as_str()),
            };
            add_dir_chain(&mut dirs, parent);
            dirs.entry(parent.to_string()).or_default().push(DirEntry {
                name: name.to_string(),
                kind: EntryKind::File { size: at },
            });
            files.insert(
                path.clone(),
                IndexedFile {
                    size: at,
                    segs: start..segs.len() as u32,
                },
            );
        }
        for d in m.explicit_dirs() {
            add_dir_chain(&mut dirs, d);
        }
        for children in dirs.values_mut() {
            children.sort_by(|a, b| a.name.cmp(&b.name));
        }
        FileIndex {
            blocks: m.blocks().to_vec(),
            segs,
            files,
            dirs,
        }
    }

    /// What is at `path` (`""` is the root; no leading or trailing `/`).
    pub fn stat(&self, path: &str) -> Option<EntryKind> {
        if let Some(f) = self.files.get(path) {
            return Some(EntryKind::File { size: f.size });
        }
        self.dirs.contains_key(path).then_some(EntryKind::Dir)
    }

    pub fn file(&self, path: &str) -> Option<FileRef<'_>> {
        self.files
            .get(path)
            .map(|file| FileRef { index: self, file })
    }

    /// The children of directory `path`, sorted by name; `None` if it is not a directory.
    pub fn list(&self, path: &str) -> Option<&[DirEntry]> {
        self.dirs.get(path).map(|v| v.as_slice())
    }

    /// Everything below directory `dir`, depth first, each directory's entries by name:
    /// (path relative to `dir`, full path, kind). Lazy: nothing is collected ahead.
    pub fn walk<'a>(&'a self, dir: &str) -> impl Iterator<Item = (String, String, EntryKind)> + 'a {
        let join = |a: &str, b: &str| {
            if a.is_empty() {
                b.to_string()
            } else {
                format!("{a}/{b}")
            }
        };
        // (directory path, its path relative to `dir`, next child index)
        let mut stack = vec![(dir.to_string(), String::new(), 0usize)];
        std::iter::from_fn(move || loop {
            let (d, rel, i) = stack.last_mut()?;
            let Some(e) = self.list(d).and_then(|l| l.get(*i)) else {
                stack.pop();
                continue;
            };
            *i += 1;
            let (path, r) = (join(d, &e.name), join(rel, &e.name));
            if e.kind == EntryKind::Dir {
                stack.push((path.clone(), r.clone(), 0));
            }
            return Some((r, path, e.kind));
        })
    }

    pub fn file_count(&self) -> usize {
        self.files.len()
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
        &self.index.segs[self.file.segs.start as usize..self.file.segs.end as usize]
    }

    /// The block slices holding bytes `range` of the file (clamped to its size), in order.
    /// Finding the first one is a binary search: O(log segments).
    pub fn slices(&self, range: Range<u64>) -> impl Iterator<Item = Slice<'a>> + 'a {
        let end = range.end.min(self.file.size);
        let start = range.start.min(end);
        let segs = self.segs();
        let first = segs.partition_point(|s| s.file_offset + s.len <= start);
        let blocks = &self.index.blocks;
        segs[first..]
            .iter()
            .take_while(move |s| s.file_offset < end)
            .map(move |s| {
                let from = start.max(s.file_offset);
                let to = end.min(s.file_offset + s.len);
                Slice {
                    locator: &blocks[s.block as usize],
                    block_offset: s.block_offset + (from - s.file_offset),
                    len: to - from,
                }
            })
            .filter(|s| s.len > 0)
    }

    /// A digest of the file's content identity (its blocks and offsets, not names or
    /// signatures): equal for equal content layouts, so it makes a stable strong ETag.
    pub fn content_id(&self) -> Hash {
        let mut h = blake3::Hasher::new();
        for s in self.segs() {
            let l = &self.index.blocks[s.block as usize];
            h.update(l.hash.as_bytes());
            h.update(&s.block_offset.to_le_bytes());
            h.update(&s.len.to_le_bytes());
        }
        h.update(&self.file.size.to_le_bytes());
        Hash::from(h.finalize())
    }
}
