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

use crate::{Error, Hash, Locator, Pdh};

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
        self.segments.iter().map(|s| s.len).sum()
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

/// Escapes a file or directory name for a manifest: bytes below 0x21, `:` and `\`
/// become `\ooo` (3-digit octal).
pub fn escape_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if (c as u32) < 0x21 || c == ':' || c == '\\' {
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

/// Checks a relative path (`a/b/c`, no leading `./`): no empty, `.` or `..` components, no NUL.
pub(crate) fn check_path(path: &str) -> Result<(), Error> {
    let err = |why| Error::Path {
        path: path.to_string(),
        why,
    };
    if path.is_empty() {
        return Err(err("the path is empty"));
    }
    if path.contains('\0') {
        return Err(err("NUL is not allowed in a name"));
    }
    for comp in path.split('/') {
        match comp {
            "" => return Err(err("empty path component (a doubled or trailing '/')")),
            "." | ".." => return Err(err("'.' and '..' are not allowed as names")),
            _ => {}
        }
    }
    Ok(())
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

    /// Parses any valid manifest text. Errors say which line and token and why.
    pub fn parse(text: &str) -> Result<Manifest, Error> {
        let mut m = Manifest::new();
        if text.is_empty() {
            return Ok(m);
        }
        let line_count = text.split_inclusive('\n').count();
        for (i, raw) in text.split_inclusive('\n').enumerate() {
            let lineno = i + 1;
            let Some(line) = raw.strip_suffix('\n') else {
                return Err(Error::manifest(
                    lineno,
                    0,
                    raw,
                    "the last line must end with a newline",
                ));
            };
            debug_assert!(lineno <= line_count);
            m.parse_stream(lineno, line)?;
        }
        m.check_file_dir_clash()?;
        Ok(m)
    }

    fn parse_stream(&mut self, lineno: usize, line: &str) -> Result<(), Error> {
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
            check_path(rest).map_err(|e| Error::manifest(lineno, 1, name_tok, e.to_string()))?;
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
        let mut stream_blocks: Vec<(u32, u64)> = Vec::new(); // (block id, stream offset)
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
                let id = self.intern(loc);
                stream_blocks.push((id, stream_len));
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
            if stream_blocks.is_empty() {
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
                    self.dirs.insert(dir.clone());
                }
                continue;
            }
            if name.contains('\0') || name.is_empty() {
                return Err(Error::manifest(lineno, ti, tok, "empty file name"));
            }
            let path = join(&dir, &name);
            check_path(&path).map_err(|e| Error::manifest(lineno, ti, tok, e.to_string()))?;
            let file = self.files.entry(path).or_default();
            // cut [pos, end) into per-block segments
            let first = stream_blocks
                .partition_point(|&(_, off)| off <= pos)
                .saturating_sub(1);
            let mut at = pos;
            for &(id, boff) in &stream_blocks[first..] {
                if at >= end {
                    break;
                }
                let bsize = self.blocks[id as usize].size;
                if boff + bsize <= at {
                    continue;
                }
                let take = (boff + bsize).min(end) - at;
                push_segment(
                    &mut file.segments,
                    FileSegment {
                        block: id,
                        offset: at - boff,
                        len: take,
                    },
                );
                at += take;
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

    fn check_file_dir_clash(&self) -> Result<(), Error> {
        for path in self.files.keys() {
            let mut p = parent(path);
            while !p.is_empty() {
                if self.files.contains_key(p) {
                    return Err(Error::Path {
                        path: p.to_string(),
                        why: "is both a file and a directory",
                    });
                }
                p = parent(p);
            }
        }
        for d in &self.dirs {
            if self.files.contains_key(d) {
                return Err(Error::Path {
                    path: d.clone(),
                    why: "is both a file and a directory",
                });
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
        self.files.values().map(|f| f.size()).sum()
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
        let mut segs = Vec::new();
        for (loc, offset, len) in runs {
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
            let l = &self.blocks[id as usize];
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
                        stream_len += self.blocks[s.block as usize].size;
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
