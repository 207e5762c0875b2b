//! The manifest text format (DESIGN §3), parsed into a normalized tree.
//!
//! ```text
//! . <locator>… <pos>:<len>:<name>…\n          one line a directory ("stream")
//! ./sub\040dir <locator>… 0:5:a\072b\n         names escape space, tab, newline, ':', '\'
//! ./empty <empty-block> 0:0:\056\n            an empty directory
//! ```
//!
//! Parsing accepts any valid manifest (several streams per directory, files listed in
//! several segments, segments spanning blocks, names holding `/`) and builds one tree;
//! serializing always writes the normalized form: one stream per directory, directories
//! and files sorted bytewise, each block listed once per stream, adjacent segments merged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use crate::{Error, Hash, Limit, Locator, Pdh, BLOCK_SIZE_MAX};

// Limits, checked by `Manifest::parse` (and the path ones by `put_file`/`put_dir`), each
// refused with an `Error::Limit` that names it. Parsing and every check cost time
// linear in the text; memory is bounded by these. Values and reasons: doc/formats.md.

pub use crate::limits::{
    FILES_MAX, NAME_MAX, PATH_BYTES_MAX, PATH_DEPTH_MAX, PATH_LEN_MAX, SEGMENTS_MAX, STREAMS_MAX,
    TEXT_MAX,
};

/// A run of bytes of one block that a file is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileSegment {
    /// Index into [`Manifest::blocks`].
    pub block: u32,
    /// Offset of the run inside the block.
    pub offset: u64,
    pub len: u64,
}

/// A file: its segments in order. An empty file has none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestFile {
    pub segments: Vec<FileSegment>,
}

impl ManifestFile {
    pub fn size(&self) -> u64 {
        // cannot overflow within the limits (segments × block size < 2^53); saturate
        // rather than panic if a caller builds something bigger
        self.segments
            .iter()
            .fold(0u64, |a, s| a.saturating_add(s.len))
    }
}

/// A collection's tree: files (by path, without a leading `./`) and empty directories.
#[derive(Clone, Debug, Default)]
pub struct Manifest {
    blocks: Vec<Locator>,
    block_ids: HashMap<Hash, u32>,
    files: BTreeMap<String, ManifestFile>,
    /// Directories that exist without holding any file (kept minimal by `empty_dirs`).
    dirs: BTreeSet<String>,
}

/// Whether a character must be written `\ooo` in a manifest: every character the
/// parser refuses raw (bytes below 0x20 and DEL), space (it separates tokens), `:` (it
/// separates a file token's fields) and `\` (it starts an escape).
fn must_escape(c: char) -> bool {
    (c as u32) < 0x21 || c == '\x7f' || c == ':' || c == '\\'
}

/// Escapes a file or directory name for a manifest: bytes below 0x21, DEL, `:` and `\`
/// become `\ooo` (3-digit octal). `/` is kept: it separates the levels of a path.
pub fn escape_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if must_escape(c) {
            let _ = write!(out, "\\{:03o}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Reverses [`escape_name`]. Errors name the problem; the caller adds line and token.
pub fn unescape_name(s: &str) -> Result<String, String> {
    if !s.contains('\\') {
        return Ok(s.to_string());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let oct = b
                .get(i + 1..i + 4)
                .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
            let Some(d) = oct else {
                return Err("a backslash must start a 3-digit octal escape like \\040".into());
            };
            let v = (d[0] - b'0') as u32 * 64 + (d[1] - b'0') as u32 * 8 + (d[2] - b'0') as u32;
            if v > 255 {
                return Err(format!(
                    "octal escape \\{} is above \\377",
                    std::str::from_utf8(d).unwrap_or("")
                ));
            }
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the unescaped name is not valid UTF-8".to_string())
}

/// A path as an error message quotes it: at most 80 bytes.
fn shorten(s: &str) -> String {
    if s.len() <= 80 {
        return s.to_string();
    }
    let mut cut = 77;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &s[..cut])
}

/// Checks a relative path (`a/b/c`, no leading `./`): no empty, `.` or `..` components,
/// no NUL, within [`PATH_LEN_MAX`], [`PATH_DEPTH_MAX`] and [`NAME_MAX`]. One pass.
pub(crate) fn check_path(path: &str) -> Result<(), Error> {
    let err = |why| Error::Path {
        path: shorten(path),
        why,
    };
    if path.is_empty() {
        return Err(err("the path is empty"));
    }
    if path.len() > PATH_LEN_MAX {
        return Err(Error::limit(
            Limit::PathLength,
            format!("path {:?} ({} bytes)", shorten(path), path.len()),
        ));
    }
    if path.contains('\0') {
        return Err(err("NUL is not allowed in a name"));
    }
    for (depth, comp) in path.split('/').enumerate() {
        if depth >= PATH_DEPTH_MAX {
            return Err(Error::limit(
                Limit::PathDepth,
                format!("path {:?}", shorten(path)),
            ));
        }
        match comp {
            "" => return Err(err("empty path component (a doubled or trailing '/')")),
            "." | ".." => return Err(err("'.' and '..' are not allowed as names")),
            c if c.len() > NAME_MAX => {
                return Err(Error::limit(
                    Limit::NameLength,
                    format!("name {:?} ({} bytes)", shorten(c), c.len()),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Where a manifest error is: `manifest line 3, token 2 ("0:4:x")`.
fn at(line: usize, token: usize, text: &str) -> String {
    if token == 0 {
        format!("manifest line {line}")
    } else {
        format!("manifest line {line}, token {token} ({:?})", shorten(text))
    }
}

/// A path error found at a line and token: limits keep their kind, the rest become
/// manifest errors.
fn at_token(e: Error, line: usize, token: usize, text: &str) -> Error {
    match e {
        Error::Limit { limit, at: what } => Error::Limit {
            limit,
            at: format!("{}: {what}", at(line, token, text)),
        },
        e => Error::manifest(line, token, text, e.to_string()),
    }
}

/// What one parse has used of the limits that count across lines.
#[derive(Default)]
struct Used {
    segments: usize,
    path_bytes: usize,
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Manifest {
    /// The empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses any valid manifest text within the limits (see the constants of this
    /// module). Errors say which line and token and why. Time and memory are linear in
    /// the text.
    pub fn parse(text: &str) -> Result<Manifest, Error> {
        let mut m = Manifest::new();
        if text.len() > TEXT_MAX {
            return Err(Error::limit(
                Limit::ManifestText,
                format!("manifest of {} bytes", text.len()),
            ));
        }
        let mut used = Used::default();
        for (i, raw) in text.split_inclusive('\n').enumerate() {
            let lineno = i + 1;
            if lineno > STREAMS_MAX {
                return Err(Error::limit(Limit::ManifestStreams, at(lineno, 0, "")));
            }
            let Some(line) = raw.strip_suffix('\n') else {
                return Err(Error::manifest(
                    lineno,
                    0,
                    raw,
                    "the last line must end with a newline",
                ));
            };
            m.parse_stream(lineno, line, &mut used)?;
        }
        m.check_file_dir_clash()?;
        Ok(m)
    }

    /// Parses `text` and returns the collection with its normalized text, having
    /// checked that the normalized text parses back to the same collection: what the
    /// API stores (see [`Manifest::to_checked_text`]).
    pub fn parse_normalized(text: &str) -> Result<(Manifest, String), Error> {
        let m = Manifest::parse(text)?;
        let norm = m.to_checked_text()?;
        Ok((m, norm))
    }

    /// The normalized text, checked to parse back to this same collection (same files
    /// with the same bytes and locators, same directories). Store only what this
    /// returns: an error means nothing may be stored. A normalized text over a limit
    /// (normalizing can lengthen a manifest: each directory gets its own line and
    /// locators) is an [`Error::Limit`]; any other difference is an
    /// [`Error::RoundTrip`] (a bug in this crate).
    pub fn to_checked_text(&self) -> Result<String, Error> {
        let text = self.to_text();
        let back = Manifest::parse(&text).map_err(|e| match e {
            Error::Limit { limit, at } => Error::Limit {
                limit,
                at: format!("the normalized manifest: {at}"),
            },
            e => Error::RoundTrip { why: e.to_string() },
        })?;
        self.same_collection(&back)
            .map_err(|why| Error::RoundTrip { why })?;
        Ok(text)
    }

    /// Whether `other` holds the same files (same bytes of the same locators, hints
    /// included) and the same directories.
    fn same_collection(&self, other: &Manifest) -> Result<(), String> {
        if self.files.len() != other.files.len() {
            return Err(format!(
                "{} files became {}",
                self.files.len(),
                other.files.len()
            ));
        }
        for ((p, f), (q, g)) in self.files.iter().zip(other.files.iter()) {
            if p != q {
                return Err(format!("file {:?} became {:?}", shorten(p), shorten(q)));
            }
            let runs = |m: &Manifest, f: &ManifestFile| -> Vec<(Option<Locator>, u64, u64)> {
                f.segments
                    .iter()
                    .map(|s| (m.blocks.get(s.block as usize).cloned(), s.offset, s.len))
                    .collect()
            };
            if runs(self, f) != runs(other, g) {
                return Err(format!("the content of {:?} changed", shorten(p)));
            }
        }
        for d in &self.dirs {
            if !other.is_dir(d) {
                return Err(format!("directory {:?} was lost", shorten(d)));
            }
        }
        for d in &other.dirs {
            if !self.is_dir(d) {
                return Err(format!("directory {:?} appeared", shorten(d)));
            }
        }
        Ok(())
    }

    fn parse_stream(&mut self, lineno: usize, line: &str, used: &mut Used) -> Result<(), Error> {
        if line.is_empty() {
            return Err(Error::manifest(
                lineno,
                0,
                "",
                "empty line (a stream needs a name, locators and files)",
            ));
        }
        if let Some(bad) = line.bytes().find(|&b| b < 0x20 || b == 0x7f) {
            return Err(Error::manifest(
                lineno,
                0,
                line,
                format!("raw control byte 0x{bad:02x} (names must escape it as \\{bad:03o})"),
            ));
        }
        let mut tokens = line.split(' ').enumerate().map(|(i, t)| (i + 1, t));
        let (_, name_tok) = tokens.next().unwrap_or((1, ""));
        let stream =
            unescape_name(name_tok).map_err(|why| Error::manifest(lineno, 1, name_tok, why))?;
        let dir = if stream == "." {
            String::new()
        } else if let Some(rest) = stream.strip_prefix("./") {
            check_path(rest).map_err(|e| at_token(e, lineno, 1, name_tok))?;
            rest.to_string()
        } else {
            return Err(Error::manifest(
                lineno,
                1,
                name_tok,
                "a stream name must be '.' or start with './'",
            ));
        };

        // locators, then files
        // (block id, stream offset) of the blocks that hold bytes: empty blocks add
        // nothing to the stream, and leaving them out keeps cutting a file token linear
        // in the segments it makes
        let mut stream_blocks: Vec<(u32, u64)> = Vec::new();
        let mut saw_locator = false;
        let mut stream_len: u64 = 0;
        let mut saw_file = false;
        for (ti, tok) in tokens {
            if tok.is_empty() {
                return Err(Error::manifest(
                    lineno,
                    ti,
                    tok,
                    "empty token (two spaces in a row, or a trailing space)",
                ));
            }
            if !tok.contains(':') {
                if saw_file {
                    let why = if Locator::looks_like(tok) {
                        "a locator after a file token (locators come first)"
                    } else {
                        "not a locator and not a pos:len:name file token"
                    };
                    return Err(Error::manifest(lineno, ti, tok, why));
                }
                let loc: Locator = tok
                    .parse()
                    .map_err(|e: Error| Error::manifest(lineno, ti, tok, e.to_string()))?;
                let size = loc.size;
                if size > BLOCK_SIZE_MAX {
                    return Err(Error::limit(Limit::BlockSize, at(lineno, ti, tok)));
                }
                let id = self.intern(loc);
                saw_locator = true;
                if size > 0 {
                    stream_blocks.push((id, stream_len));
                }
                stream_len = stream_len.checked_add(size).ok_or_else(|| {
                    Error::manifest(
                        lineno,
                        ti,
                        tok,
                        "the stream's blocks add up to more than 2^64 bytes",
                    )
                })?;
                continue;
            }
            if !saw_locator {
                return Err(Error::manifest(
                    lineno,
                    ti,
                    tok,
                    "a file token before any locator",
                ));
            }
            saw_file = true;
            let mut parts = tok.splitn(3, ':');
            let (p, l, n) = (parts.next(), parts.next(), parts.next());
            let (Some(pos), Some(len), Some(name_esc)) =
                (p.and_then(parse_u64), l.and_then(parse_u64), n)
            else {
                return Err(Error::manifest(
                    lineno,
                    ti,
                    tok,
                    "a file token is <pos>:<len>:<name> with decimal pos and len",
                ));
            };
            let end = pos.checked_add(len).filter(|&e| e <= stream_len).ok_or_else(|| {
                Error::manifest(
                    lineno,
                    ti,
                    tok,
                    format!("the segment ends past the end of the stream's blocks ({stream_len} bytes)"),
                )
            })?;
            let name =
                unescape_name(name_esc).map_err(|why| Error::manifest(lineno, ti, tok, why))?;
            if name == "." {
                if len != 0 {
                    return Err(Error::manifest(
                        lineno,
                        ti,
                        tok,
                        "the directory marker \\056 must have length 0",
                    ));
                }
                if !dir.is_empty() {
                    used.path_bytes += dir.len();
                    if used.path_bytes > PATH_BYTES_MAX {
                        return Err(Error::limit(Limit::ManifestPathBytes, at(lineno, ti, tok)));
                    }
                    self.dirs.insert(dir.clone());
                }
                continue;
            }
            if name.contains('\0') || name.is_empty() {
                return Err(Error::manifest(lineno, ti, tok, "empty file name"));
            }
            used.path_bytes += dir.len() + 1 + name.len();
            if used.path_bytes > PATH_BYTES_MAX {
                return Err(Error::limit(Limit::ManifestPathBytes, at(lineno, ti, tok)));
            }
            let path = join(&dir, &name);
            check_path(&path).map_err(|e| at_token(e, lineno, ti, tok))?;
            if self.files.len() >= FILES_MAX && !self.files.contains_key(&path) {
                return Err(Error::limit(Limit::ManifestFiles, at(lineno, ti, tok)));
            }
            let file = self.files.entry(path).or_default();
            // cut [pos, end) into per-block segments: one step per segment made
            let first = stream_blocks
                .partition_point(|&(_, off)| off <= pos)
                .saturating_sub(1);
            let mut here = pos;
            for &(id, boff) in stream_blocks.get(first..).unwrap_or_default() {
                if here >= end {
                    break;
                }
                let bsize = self.blocks.get(id as usize).map_or(0, |b| b.size);
                let bend = boff.saturating_add(bsize);
                if bend <= here {
                    continue;
                }
                used.segments += 1;
                if used.segments > SEGMENTS_MAX {
                    return Err(Error::limit(Limit::ManifestSegments, at(lineno, ti, tok)));
                }
                let take = bend.min(end) - here;
                push_segment(
                    &mut file.segments,
                    FileSegment {
                        block: id,
                        offset: here - boff,
                        len: take,
                    },
                );
                here += take;
            }
        }
        if !saw_file {
            return Err(Error::manifest(
                lineno,
                0,
                line,
                "a stream needs at least one pos:len:name file token",
            ));
        }
        Ok(())
    }

    /// No path is both a file and a directory. One pass over every path: each
    /// component is looked up once in a map keyed by (parent, name), so the cost is
    /// linear in the paths' length (it was quadratic in their depth).
    fn check_file_dir_clash(&self) -> Result<(), Error> {
        // (parent node, name) -> (node, is a file); node 0 is the root
        let mut nodes: HashMap<(usize, &str), (usize, bool)> = HashMap::new();
        let clash = |path: &str| Error::Path {
            path: shorten(path),
            why: "is both a file and a directory",
        };
        let paths = self
            .files
            .keys()
            .map(|p| (p.as_str(), true))
            .chain(self.dirs.iter().map(|d| (d.as_str(), false)));
        for (path, is_file) in paths {
            let mut parent = 0usize;
            let mut end = 0usize;
            let mut comps = path.split('/').peekable();
            while let Some(comp) = comps.next() {
                end += comp.len();
                let last = comps.peek().is_none();
                let want_file = last && is_file;
                let next_id = nodes.len() + 1;
                let &mut (id, was_file) =
                    nodes.entry((parent, comp)).or_insert((next_id, want_file));
                if was_file != want_file {
                    return Err(clash(path.get(..end).unwrap_or(path)));
                }
                parent = id;
                end += 1;
            }
        }
        Ok(())
    }

    fn intern(&mut self, loc: Locator) -> u32 {
        if let Some(&id) = self.block_ids.get(&loc.hash) {
            return id;
        }
        let id = self.blocks.len() as u32;
        self.block_ids.insert(loc.hash, id);
        self.blocks.push(loc);
        id
    }

    /// Every block the manifest names, each once, in first-use order.
    pub fn blocks(&self) -> &[Locator] {
        &self.blocks
    }

    /// Rewrites every block's locator (e.g. to re-sign it for another token).
    /// The closure must keep the hash and size.
    pub fn map_locators(&mut self, mut f: impl FnMut(&Locator) -> Locator) {
        for b in &mut self.blocks {
            let new = f(b);
            debug_assert_eq!((new.hash, new.size), (b.hash, b.size));
            *b = new;
        }
    }

    pub fn files(&self) -> &BTreeMap<String, ManifestFile> {
        &self.files
    }

    pub fn file(&self, path: &str) -> Option<&ManifestFile> {
        self.files.get(path)
    }

    /// Explicitly created directories (there may be more, implied by files' paths).
    pub fn explicit_dirs(&self) -> &BTreeSet<String> {
        &self.dirs
    }

    pub fn file_count(&self) -> u64 {
        self.files.len() as u64
    }

    pub fn total_size(&self) -> u64 {
        self.files
            .values()
            .fold(0u64, |a, f| a.saturating_add(f.size()))
    }

    /// Adds (or replaces) a file made of `(locator, offset, len)` runs.
    pub fn put_file(
        &mut self,
        path: &str,
        runs: impl IntoIterator<Item = (Locator, u64, u64)>,
    ) -> Result<(), Error> {
        check_path(path)?;
        let mut p = parent(path);
        while !p.is_empty() {
            if self.files.contains_key(p) {
                return Err(Error::Path {
                    path: p.to_string(),
                    why: "is a file, so it cannot hold other files",
                });
            }
            p = parent(p);
        }
        if self.is_dir(path) {
            return Err(Error::Path {
                path: path.to_string(),
                why: "is a directory",
            });
        }
        if self.files.len() >= FILES_MAX && !self.files.contains_key(path) {
            return Err(Error::limit(
                Limit::ManifestFiles,
                format!("adding {:?}", shorten(path)),
            ));
        }
        let mut segs = Vec::new();
        for (loc, offset, len) in runs {
            if loc.size > BLOCK_SIZE_MAX {
                return Err(Error::limit(Limit::BlockSize, format!("{loc:?}")));
            }
            if offset.checked_add(len).is_none_or(|e| e > loc.size) {
                return Err(Error::Path {
                    path: path.to_string(),
                    why: "a segment reaches past the end of its block",
                });
            }
            let block = self.intern(loc);
            push_segment(&mut segs, FileSegment { block, offset, len });
        }
        self.files
            .insert(path.to_string(), ManifestFile { segments: segs });
        Ok(())
    }

    /// Creates an empty directory (and its parents).
    pub fn put_dir(&mut self, path: &str) -> Result<(), Error> {
        check_path(path)?;
        let mut p = path;
        while !p.is_empty() {
            if self.files.contains_key(p) {
                return Err(Error::Path {
                    path: p.to_string(),
                    why: "is a file",
                });
            }
            p = parent(p);
        }
        self.dirs.insert(path.to_string());
        Ok(())
    }

    /// True for the root (`""`) and every directory, explicit or implied.
    pub fn is_dir(&self, path: &str) -> bool {
        if path.is_empty() || self.dirs.contains(path) {
            return true;
        }
        let prefix = format!("{path}/");
        self.files
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
            || self
                .dirs
                .range(prefix.clone()..)
                .next()
                .is_some_and(|k| k.starts_with(&prefix))
    }

    /// Removes a file or a whole directory. Returns whether anything was there.
    pub fn remove(&mut self, path: &str) -> bool {
        let mut found = self.files.remove(path).is_some() | self.dirs.remove(path);
        let prefix = format!("{path}/");
        let files: Vec<String> = self
            .files
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        let dirs: Vec<String> = self
            .dirs
            .range(prefix.clone()..)
            .take_while(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        found |= !files.is_empty() || !dirs.is_empty();
        for f in files {
            self.files.remove(&f);
        }
        for d in dirs {
            self.dirs.remove(&d);
        }
        found
    }

    /// Directories that must be written with a `\056` marker: explicit ones with no
    /// file and no other explicit directory below them.
    fn leaf_empty_dirs(&self) -> Vec<&str> {
        self.dirs
            .iter()
            .filter(|d| {
                let prefix = format!("{d}/");
                !self
                    .files
                    .range(prefix.clone()..)
                    .next()
                    .is_some_and(|(k, _)| k.starts_with(&prefix))
                    && !self
                        .dirs
                        .range(prefix.clone()..)
                        .next()
                        .is_some_and(|k| k.starts_with(&prefix))
            })
            .map(|d| d.as_str())
            .collect()
    }

    fn write(&self, stripped: bool) -> String {
        // directory -> files in it (BTreeMap keeps both levels sorted bytewise)
        let mut by_dir: BTreeMap<&str, Vec<(&str, &ManifestFile)>> = BTreeMap::new();
        for (path, f) in &self.files {
            let (dir, name) = match path.rsplit_once('/') {
                Some((d, n)) => (d, n),
                None => ("", path.as_str()),
            };
            by_dir.entry(dir).or_default().push((name, f));
        }
        for d in self.leaf_empty_dirs() {
            by_dir.entry(d).or_default();
        }
        let loc_text = |id: u32| {
            let Some(l) = self.blocks.get(id as usize) else {
                return String::new();
            };
            if stripped {
                format!("{}+{}", l.hash, l.size)
            } else {
                l.to_string()
            }
        };
        let empty_loc = || {
            let l = Locator::empty();
            match self.block_ids.get(&l.hash) {
                Some(&id) => loc_text(id),
                None => l.to_string(),
            }
        };
        let mut out = String::new();
        for (dir, mut files) in by_dir {
            files.sort_by(|a, b| a.0.cmp(b.0));
            let mut stream_blocks: Vec<u32> = Vec::new();
            let mut block_pos: HashMap<u32, u64> = HashMap::new();
            let mut stream_len = 0u64;
            let mut file_tokens = String::new();
            for (name, f) in &files {
                let name = escape_name(name);
                // merged (pos, len) runs in stream coordinates
                let mut runs: Vec<(u64, u64)> = Vec::new();
                for s in &f.segments {
                    let base = *block_pos.entry(s.block).or_insert_with(|| {
                        stream_blocks.push(s.block);
                        let at = stream_len;
                        stream_len = stream_len.saturating_add(
                            self.blocks.get(s.block as usize).map_or(0, |b| b.size),
                        );
                        at
                    });
                    let pos = base + s.offset;
                    match runs.last_mut() {
                        Some((p, l)) if *p + *l == pos => *l += s.len,
                        _ => runs.push((pos, s.len)),
                    }
                }
                if runs.is_empty() {
                    runs.push((0, 0));
                }
                for (p, l) in runs {
                    let _ = write!(file_tokens, " {p}:{l}:{name}");
                }
            }
            if files.is_empty() {
                file_tokens.push_str(" 0:0:\\056");
            }
            out.push_str(&if dir.is_empty() {
                ".".to_string()
            } else {
                format!("./{}", escape_name(dir))
            });
            if stream_blocks.is_empty() {
                out.push(' ');
                out.push_str(&empty_loc());
            }
            for id in stream_blocks {
                out.push(' ');
                out.push_str(&loc_text(id));
            }
            out.push_str(&file_tokens);
            out.push('\n');
        }
        out
    }

    /// The normalized manifest text, locators with their hints (signatures).
    pub fn to_text(&self) -> String {
        self.write(false)
    }

    /// The normalized text with every hint but the size removed: what the PDH hashes.
    pub fn to_stripped_text(&self) -> String {
        self.write(true)
    }

    /// The portable data hash of this collection.
    pub fn pdh(&self) -> Pdh {
        Pdh::of_text(&self.to_stripped_text())
    }
}

/// Appends a segment, merging it into the previous one when they are contiguous in one block.
fn push_segment(segs: &mut Vec<FileSegment>, s: FileSegment) {
    if s.len == 0 {
        return;
    }
    if let Some(last) = segs.last_mut() {
        if last.block == s.block && last.offset + last.len == s.offset {
            last.len += s.len;
            return;
        }
    }
    segs.push(s);
}

impl std::str::FromStr for Manifest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Manifest::parse(s)
    }
}
