//! `keep put PATH…`: upload files and directories as a new collection.
//!
//! Files are read in order and cut into blocks of at most 64 MiB; small files share
//! blocks, a large file that does not fit in the current block starts a new one. Blocks
//! are hashed (BLAKE3) and uploaded by `--threads` workers, with at most
//! `threads + 2` blocks in memory. The resume cache (see [`crate::transfer::cache`])
//! makes a rerun upload only what is missing.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use clap::Args;
use keep_client::{Client, NewCollection};
use keep_format::{Hash, Locator, Manifest, BLOCK_SIZE_MAX};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::client::{connect, fail, unix_now};
use crate::error::CliError;
use crate::transfer::cache::{self, Cache, Fingerprint, Seg};
use crate::transfer::glob::{excluded, Exclude};
use crate::transfer::progress::Progress;

const BLOCK: usize = BLOCK_SIZE_MAX as usize;
/// The most one read asks for: the buffer grows by at most this much at a time.
const READ_CHUNK: usize = 1 << 20;
/// A file at least this big that doesn't fit in the current block starts a new one.
const ALIGN_MIN: u64 = 16 << 20;

#[derive(Debug, Args)]
pub struct PutArgs {
    /// Files and directories to upload. A directory named with a trailing `/` puts its
    /// contents at the collection's root; without, the directory itself. `-` reads stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The project to create the collection in (default: your home project).
    #[arg(long, value_name = "UUID")]
    pub project: Option<String>,
    /// The collection's name (default: "Saved at <UTC time> by <user>@<host>").
    #[arg(long)]
    pub name: Option<String>,
    /// How many copies of each block to ask for.
    #[arg(long, value_name = "N")]
    pub replication: Option<u32>,
    /// How many blocks to hash and upload at once (default: CPUs, at most 8).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: Option<u32>,
    /// Skip files and directories matching PAT (`*.tmp` anywhere, `sub/*.txt` or `./x`
    /// relative to the input directory). Repeatable.
    #[arg(long = "exclude", value_name = "PAT")]
    pub exclude: Vec<String>,
    /// Skip symbolic links instead of following them.
    #[arg(long)]
    pub no_follow_links: bool,
    /// Ignore what an earlier interrupted run stored (the cache is still written).
    #[arg(long)]
    pub no_resume: bool,
    /// Neither read nor write the resume cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Print the portable data hash instead of the UUID.
    #[arg(long)]
    pub portable_data_hash: bool,
    /// The file name for data read from stdin (`-`), or for a single file.
    #[arg(long)]
    pub filename: Option<String>,
    /// Print machine-readable progress lines on stderr.
    #[arg(long)]
    pub batch_progress: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

pub const EXAMPLES: &str = "Examples:
  keep put reads/                      # contents of reads/ at the collection root
  keep put reads sample.vcf            # ./reads/… and ./sample.vcf
  keep put --name 'run 42' --project zzzzz-j7d0g-0123456789abcde data/
  keep put --exclude '*.tmp' --exclude './scratch' data/
  tar c dir | keep put - --filename dir.tar
  keep get $(keep put big.bam)/big.bam copy.bam";

enum Source {
    File(PathBuf),
    Stdin,
}

struct Entry {
    /// Path inside the collection.
    mpath: String,
    source: Source,
    /// Canonical path (cache key).
    real: PathBuf,
    fp: Fingerprint,
}

fn io_err(what: String, e: std::io::Error) -> CliError {
    let hint = match e.kind() {
        std::io::ErrorKind::NotFound => "check the path",
        std::io::ErrorKind::PermissionDenied => "check the file's permissions",
        _ => "",
    };
    CliError::new(what, e.to_string(), hint)
}

fn utf8_name(p: &Path, name: &std::ffi::OsStr) -> Result<String, CliError> {
    name.to_str().map(str::to_string).ok_or_else(|| {
        CliError::new(
            format!("reading {}", p.display()),
            "the name is not valid UTF-8",
            "rename it, or --exclude it",
        )
    })
}

struct Walker<'a> {
    follow: bool,
    excludes: &'a [Exclude],
    files: Vec<Entry>,
    dirs: Vec<String>,
    seen: HashSet<String>,
}

fn fingerprint(md: &std::fs::Metadata) -> Fingerprint {
    Fingerprint {
        size: md.len(),
        mtime_ns: i128::from(md.mtime()) * 1_000_000_000 + i128::from(md.mtime_nsec()),
        ino: md.ino(),
    }
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}

impl Walker<'_> {
    fn add_file(
        &mut self,
        mpath: String,
        p: &Path,
        md: &std::fs::Metadata,
    ) -> Result<(), CliError> {
        if !self.seen.insert(mpath.clone()) {
            return Err(CliError::usage(
                format!("adding {}", p.display()),
                format!("two inputs would both be {mpath:?} in the collection"),
                "upload them from different directories, or rename one",
            ));
        }
        let real = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        self.files.push(Entry {
            mpath,
            source: Source::File(p.to_path_buf()),
            real,
            fp: fingerprint(md),
        });
        Ok(())
    }

    /// Walks directory `p` whose contents go under `mpath`; `rel` is relative to the input dir.
    fn walk(
        &mut self,
        p: &Path,
        mpath: &str,
        rel: &str,
        ancestors: &mut Vec<(u64, u64)>,
    ) -> Result<(), CliError> {
        let rd = std::fs::read_dir(p)
            .map_err(|e| io_err(format!("reading directory {}", p.display()), e))?;
        let mut kids: Vec<(String, PathBuf)> = Vec::new();
        for e in rd {
            let e = e.map_err(|e| io_err(format!("reading directory {}", p.display()), e))?;
            let name = utf8_name(&e.path(), &e.file_name())?;
            kids.push((name, e.path()));
        }
        kids.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let before = self.files.len() + self.dirs.len();
        for (name, kp) in kids {
            let krel = join(rel, &name);
            if excluded(self.excludes, &krel) {
                continue;
            }
            let lmd = std::fs::symlink_metadata(&kp)
                .map_err(|e| io_err(format!("reading {}", kp.display()), e))?;
            let md = if lmd.file_type().is_symlink() {
                if !self.follow {
                    continue;
                }
                match std::fs::metadata(&kp) {
                    Ok(m) => m,
                    Err(e) => {
                        eprintln!(
                            "keep: skipping {}: a broken symbolic link ({e})",
                            kp.display()
                        );
                        continue;
                    }
                }
            } else {
                lmd
            };
            let kmpath = join(mpath, &name);
            if md.is_dir() {
                let id = (md.dev(), md.ino());
                if ancestors.contains(&id) {
                    eprintln!("keep: skipping {}: a symbolic link loop", kp.display());
                    continue;
                }
                ancestors.push(id);
                self.walk(&kp, &kmpath, &krel, ancestors)?;
                ancestors.pop();
            } else if md.is_file() {
                self.add_file(kmpath, &kp, &md)?;
            }
            // sockets, fifos, devices: skipped
        }
        if self.files.len() + self.dirs.len() == before && !mpath.is_empty() {
            self.dirs.push(mpath.to_string());
        }
        Ok(())
    }
}

fn base_name(p: &Path) -> Result<String, CliError> {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let abs = std::fs::canonicalize(&abs).unwrap_or(abs);
    match abs.file_name() {
        Some(n) => utf8_name(p, n),
        None => Ok(String::new()),
    }
}

fn collect(args: &PutArgs, excludes: &[Exclude]) -> Result<(Vec<Entry>, Vec<String>), CliError> {
    let mut w = Walker {
        follow: !args.no_follow_links,
        excludes,
        files: Vec::new(),
        dirs: Vec::new(),
        seen: HashSet::new(),
    };
    let single = args.paths.len() == 1;
    for p in &args.paths {
        if p.as_os_str() == "-" {
            let name = args.filename.clone().unwrap_or_else(|| "stdin".into());
            check_name(&name)?;
            if !w.seen.insert(name.clone()) {
                return Err(CliError::usage(
                    "reading stdin",
                    "- is given twice",
                    "give - once",
                ));
            }
            w.files.push(Entry {
                mpath: name,
                source: Source::Stdin,
                real: PathBuf::from("-"),
                fp: Fingerprint {
                    size: 0,
                    mtime_ns: 0,
                    ino: 0,
                },
            });
            continue;
        }
        let md = if args.no_follow_links {
            std::fs::symlink_metadata(p)
        } else {
            std::fs::metadata(p)
        }
        .map_err(|e| io_err(format!("reading {}", p.display()), e))?;
        if md.is_dir() {
            let s = p.to_string_lossy();
            let contents = s.ends_with('/') || s == "." || s.ends_with("/.");
            let prefix = if contents {
                String::new()
            } else {
                base_name(p)?
            };
            let mut anc = vec![(md.dev(), md.ino())];
            w.walk(p, &prefix, "", &mut anc)?;
        } else if md.is_file() {
            let name = match (&args.filename, single) {
                (Some(n), true) => n.clone(),
                _ => base_name(p)?,
            };
            check_name(&name)?;
            w.add_file(name, p, &md)?;
        } else if md.file_type().is_symlink() {
            eprintln!(
                "keep: skipping {}: a symbolic link (--no-follow-links)",
                p.display()
            );
        } else {
            return Err(CliError::new(
                format!("reading {}", p.display()),
                "not a regular file or directory",
                "give files and directories",
            ));
        }
    }
    if args.filename.is_some() && !(single) {
        let has_stdin = args.paths.iter().any(|p| p.as_os_str() == "-");
        if !has_stdin {
            return Err(CliError::usage(
                "using --filename",
                "it names stdin (-) or a single file",
                "give one file, or -",
            ));
        }
    }
    Ok((w.files, w.dirs))
}

fn check_name(n: &str) -> Result<(), CliError> {
    if n.is_empty() || n.contains('/') || n == "." || n == ".." || n.contains('\0') {
        return Err(CliError::usage(
            format!("using the file name {n:?}"),
            "a name must be non-empty, without '/', and not . or ..",
            "choose another --filename",
        ));
    }
    Ok(())
}

/// A part of a block: bytes `block_off..+len` are bytes `file_off..` of file `file`.
#[derive(Clone, Copy, Debug)]
struct Part {
    file: usize,
    file_off: u64,
    block_off: u64,
    len: u64,
}

/// Block buffers go back here when the last reference to an uploaded block drops, so
/// the reader fills memory that is already mapped: a fresh 64 MiB buffer per block cost
/// a page fault and a page clear for every 4 KiB (a third of the CPU `keep put` spent
/// on a 1 GiB file, measured with perf).
#[derive(Clone)]
struct Pool(std::sync::mpsc::Sender<Vec<u8>>);

/// A block's buffer on its way to keepstore; back to the pool when dropped.
struct Pooled {
    buf: Vec<u8>,
    pool: Pool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let _ = self.pool.0.send(buf); // the reader may be gone: then it is just freed
    }
}

enum Item {
    Block(Pooled, Vec<Part>),
    /// Already stored (from the resume cache): no bytes to send.
    Stored(Locator, Part),
    /// Stdin's final size.
    StdinSize(usize, u64),
    Failed(CliError),
}

/// Chunks already stored for a partly uploaded file: (file_off, len, locator).
type Chunks = Vec<(u64, u64, Locator)>;

fn reader(todo: Todo, tx: mpsc::Sender<Item>, progress: Arc<Progress>) {
    let send = |it: Item| tx.blocking_send(it).is_ok();
    let (back, returned) = std::sync::mpsc::channel::<Vec<u8>>();
    let pool = Pool(back);
    // a returned buffer if there is one (the number in flight is bounded by the
    // channel and the upload tasks, so this allocates only until they start coming back)
    let fresh = || {
        returned
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BLOCK))
    };
    let mut buf: Vec<u8> = fresh();
    let mut parts: Vec<Part> = Vec::new();
    let flush = |buf: &mut Vec<u8>, parts: &mut Vec<Part>| -> bool {
        if buf.is_empty() {
            return true;
        }
        let b = Pooled {
            buf: std::mem::replace(buf, fresh()),
            pool: pool.clone(),
        };
        send(Item::Block(b, std::mem::take(parts)))
    };
    for (file, path, size, chunks) in todo {
        let (mut r, what): (Box<dyn Read>, String) = match &path {
            Some(p) => match std::fs::File::open(p) {
                Ok(f) => (Box::new(f), format!("reading {}", p.display())),
                Err(e) => {
                    send(Item::Failed(io_err(format!("reading {}", p.display()), e)));
                    return;
                }
            },
            None => (
                Box::new(std::io::stdin().lock()),
                "reading stdin".to_string(),
            ),
        };
        if path.is_some()
            && size > ALIGN_MIN
            && (size as usize) > BLOCK - buf.len()
            && !flush(&mut buf, &mut parts)
        {
            return;
        }
        let mut off: u64 = 0;
        loop {
            // a whole block stored by an earlier run: skip its bytes
            if buf.is_empty() {
                if let Some((_, len, loc)) = chunks.iter().find(|c| c.0 == off) {
                    let part = Part {
                        file,
                        file_off: off,
                        block_off: 0,
                        len: *len,
                    };
                    // seek past it
                    let skipped = match &path {
                        Some(p) => std::fs::File::open(p)
                            .and_then(|mut f| f.seek(SeekFrom::Start(off + len)).map(|_| f))
                            .map(|f| {
                                r = Box::new(f);
                            }),
                        None => Ok(()),
                    };
                    if let Err(e) = skipped {
                        send(Item::Failed(io_err(what.clone(), e)));
                        return;
                    }
                    progress.add_done(*len);
                    if !send(Item::Stored(loc.clone(), part)) {
                        return;
                    }
                    off += len;
                    continue;
                }
            }
            // Grow the buffer only by what this read can fill: zeroing the whole
            // 64 MiB block for every small file made packing 10,000 files take a minute.
            let start = buf.len();
            let remaining = size.saturating_sub(off) as usize;
            let want = match path {
                // one byte more than the file should hold finds its end (or its growth)
                Some(_) => remaining.clamp(1, READ_CHUNK),
                None => READ_CHUNK,
            }
            .min(BLOCK - start);
            buf.resize(start + want, 0);
            let n = loop {
                match r.read(&mut buf[start..start + want]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        send(Item::Failed(io_err(what.clone(), e)));
                        return;
                    }
                }
            };
            buf.truncate(start + n);
            if n == 0 {
                break;
            }
            // merge with the previous part of the same file in this block
            match parts.last_mut() {
                Some(p) if p.file == file && p.block_off + p.len == start as u64 => {
                    p.len += n as u64
                }
                _ => parts.push(Part {
                    file,
                    file_off: off,
                    block_off: start as u64,
                    len: n as u64,
                }),
            }
            off += n as u64;
            if buf.len() == BLOCK && !flush(&mut buf, &mut parts) {
                return;
            }
        }
        if path.is_some() && off != size {
            send(Item::Failed(CliError::new(
                what,
                format!("the file changed while it was read ({size} bytes before, {off} now)"),
                "upload it again once it stops changing",
            )));
            return;
        }
        if path.is_none() && !send(Item::StdinSize(file, off)) {
            return;
        }
    }
    flush(&mut buf, &mut parts);
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its length.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn cache_key(client: &Client, args: &PutArgs) -> String {
    let mut h = blake3::Hasher::new();
    h.update(client.api_url().as_bytes());
    h.update(b"\0");
    h.update(Hash::of(client.token().expose().as_bytes()).as_bytes());
    for p in &args.paths {
        let real = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        h.update(real.as_os_str().as_encoded_bytes());
        h.update(b"\0");
    }
    for e in &args.exclude {
        h.update(e.as_bytes());
        h.update(b"\x01");
    }
    h.update(&[u8::from(args.no_follow_links)]);
    Hash::from(h.finalize()).to_hex()[..32].to_string()
}

/// A file's stored runs: (file_off, locator, block_off, len).
type Segs = Vec<(u64, Locator, u64, u64)>;

/// What the reader thread is to read: (file index, path or stdin, size, chunks stored).
type Todo = Vec<(usize, Option<PathBuf>, u64, Chunks)>;

pub async fn run(args: PutArgs) -> Result<(), CliError> {
    let excludes: Vec<Exclude> = args.exclude.iter().map(|p| Exclude::new(p)).collect();
    let (entries, dirs) = collect(&args, &excludes)?;
    let client = connect()?;
    let copies = client
        .replication(args.replication)
        .await
        .map_err(|e| fail("asking the API server for the cluster's configuration", e))?;
    let threads = args.threads.map(|t| t as usize).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(4)
            .clamp(2, 8)
    });
    let cache = match args.no_cache {
        true => None,
        false => Some(Cache::open(
            &cache_key(&client, &args),
            client.api_url(),
            !args.no_resume,
        )?),
    };
    let progress = Progress::new("put", args.batch_progress, args.no_progress);
    progress.set_total(
        entries.iter().map(|e| e.fp.size).sum(),
        entries.len() as u64,
    );

    let mut up = Upload {
        client: &client,
        copies,
        entries: &entries,
        segs: vec![Vec::new(); entries.len()],
        sizes: entries.iter().map(|e| e.fp.size).collect(),
        cache,
        progress: &progress,
    };
    let todo = up.resume();
    up.upload(todo, threads).await?;
    let m = up.manifest(&dirs)?;
    progress.finish();
    create_collection(&client, &args, m).await
}

/// One `keep put`'s upload: which bytes of which file are in which stored block.
struct Upload<'a> {
    client: &'a Client,
    /// Copies of each block to store.
    copies: u32,
    entries: &'a [Entry],
    /// Per file: its stored runs, in the order stored.
    segs: Vec<Segs>,
    /// Per file: its size (stdin's once read).
    sizes: Vec<u64>,
    cache: Option<Cache>,
    progress: &'a Arc<Progress>,
}

impl Upload<'_> {
    /// Takes what the resume cache says is stored (with unexpired signatures): whole
    /// files, and the whole-block prefix of partly stored ones. Returns what to read.
    fn resume(&mut self) -> Todo {
        let now = unix_now();
        let mut todo = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let path = match &e.source {
                Source::Stdin => {
                    todo.push((i, None, 0, Vec::new()));
                    continue;
                }
                Source::File(p) => p.clone(),
            };
            if e.fp.size == 0 {
                self.progress.file_done();
                continue;
            }
            let hit = self.cache.as_ref().and_then(|c| c.get(&e.real, &e.fp));
            let parsed: Option<Segs> = hit.and_then(|h| {
                h.segs
                    .iter()
                    .map(|s| {
                        s.locator
                            .parse::<Locator>()
                            .ok()
                            .filter(|l| cache::fresh(l, now))
                            .map(|l| (s.file_off, l, s.block_off, s.len))
                    })
                    .collect()
            });
            match (hit, parsed) {
                (Some(h), Some(p)) if h.complete => {
                    self.progress.add_done(e.fp.size);
                    self.progress.file_done();
                    self.segs[i] = p;
                }
                (Some(_), Some(p)) => todo.push((i, Some(path), e.fp.size, whole_blocks(p))),
                _ => todo.push((i, Some(path), e.fp.size, Vec::new())),
            }
        }
        todo
    }

    /// Notes that `parts` are stored in block `loc`, in memory and in the cache.
    fn record(&mut self, loc: Locator, parts: Vec<Part>) {
        for p in parts {
            let segs = &mut self.segs[p.file];
            segs.push((p.file_off, loc.clone(), p.block_off, p.len));
            let e = &self.entries[p.file];
            let complete = segs.iter().map(|s| s.3).sum::<u64>() == e.fp.size;
            if complete {
                self.progress.file_done();
            }
            if let (Some(c), Source::File(_)) = (self.cache.as_mut(), &e.source) {
                c.set(
                    &e.real,
                    cache::FileEntry {
                        fp: e.fp.clone(),
                        complete,
                        segs: segs
                            .iter()
                            .map(|s| Seg {
                                file_off: s.0,
                                locator: s.1.to_string(),
                                block_off: s.2,
                                len: s.3,
                            })
                            .collect(),
                    },
                );
            }
        }
    }

    /// A block reached its keepstores: it is in the resume cache on disk before
    /// progress counts it as sent, so a run killed at any moment resends only what was
    /// in flight.
    fn uploaded(&mut self, r: Result<Uploaded, tokio::task::JoinError>) -> Result<(), CliError> {
        let (loc, parts) = r.map_err(|e| CliError::new("uploading", e.to_string(), ""))??;
        let n = loc.size;
        self.record(loc, parts);
        if let Some(c) = self.cache.as_mut() {
            let _ = c.save();
        }
        self.progress.add_sent(n);
        self.progress.add_done(n);
        Ok(())
    }

    /// Hashes and stores one block in a task of its own.
    fn spawn(&self, tasks: &mut JoinSet<Uploaded>, data: Pooled, parts: Vec<Part>) {
        let c = self.client.clone();
        let copies = self.copies;
        tasks.spawn(async move {
            let data = Bytes::from_owner(data);
            let d2 = data.clone();
            let hash = tokio::task::spawn_blocking(move || Hash::from(blake3::hash(&d2)))
                .await
                .map_err(|e| CliError::new("hashing", e.to_string(), ""))?;
            let stored = c
                .write_hashed(hash, data, copies)
                .await
                .map_err(|e| fail("uploading", e))?;
            Ok((stored.locator, parts))
        });
    }

    /// Reads the files in a thread of their own and stores their blocks, `threads` at
    /// once. On failure the cache keeps what was stored.
    async fn upload(&mut self, todo: Todo, threads: usize) -> Result<(), CliError> {
        let (tx, rx) = mpsc::channel::<Item>(1);
        let rp = self.progress.clone();
        let reader_thread = std::thread::spawn(move || reader(todo, tx, rp));
        let mut tasks: JoinSet<Uploaded> = JoinSet::new();
        let result = self.pump(rx, &mut tasks, threads).await;
        let result = match result {
            Ok(()) => loop {
                match tasks.join_next().await {
                    Some(r) => {
                        if let Err(e) = self.uploaded(r) {
                            break Err(e);
                        }
                    }
                    None => break Ok(()),
                }
            },
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            if let Some(c) = self.cache.as_mut() {
                let _ = c.save();
            }
            return Err(e);
        }
        let _ = reader_thread.join();
        if let Some(c) = self.cache.as_mut() {
            c.save().map_err(|e| {
                CliError::new(
                    "saving the resume cache",
                    e.to_string(),
                    "check the disk, or pass --no-cache",
                )
            })?;
        }
        Ok(())
    }

    /// Takes the reader's blocks until it is done, keeping at most `threads` uploads
    /// running (the channel holds one more block: `threads + 2` in memory).
    async fn pump(
        &mut self,
        mut rx: mpsc::Receiver<Item>,
        tasks: &mut JoinSet<Uploaded>,
        threads: usize,
    ) -> Result<(), CliError> {
        loop {
            while tasks.len() >= threads {
                if let Some(r) = tasks.join_next().await {
                    self.uploaded(r)?;
                }
            }
            let item = tokio::select! {
                biased;
                Some(r) = tasks.join_next() => {
                    self.uploaded(r)?;
                    continue;
                }
                item = rx.recv() => item,
            };
            match item {
                None => return Ok(()),
                Some(Item::Failed(e)) => return Err(e),
                Some(Item::StdinSize(i, n)) => self.sizes[i] = n,
                Some(Item::Stored(loc, part)) => {
                    self.record(loc, vec![part]);
                    if let Some(c) = self.cache.as_mut() {
                        c.maybe_save();
                    }
                }
                Some(Item::Block(data, parts)) => self.spawn(tasks, data, parts),
            }
        }
    }

    /// The collection's manifest: every file from its stored runs, every empty directory.
    fn manifest(&mut self, dirs: &[String]) -> Result<Manifest, CliError> {
        let mut m = Manifest::new();
        for (i, e) in self.entries.iter().enumerate() {
            let mut s = std::mem::take(&mut self.segs[i]);
            s.sort_by_key(|x| x.0);
            let have: u64 = s.iter().map(|x| x.3).sum();
            if have != self.sizes[i] {
                return Err(CliError::new(
                    format!("uploading {}", e.mpath),
                    format!("{have} of {} bytes were stored", self.sizes[i]),
                    "run the same keep put again to resume",
                ));
            }
            m.put_file(&e.mpath, s.into_iter().map(|(_, l, o, n)| (l, o, n)))
                .map_err(|err| {
                    CliError::new(
                        format!("adding {} to the manifest", e.mpath),
                        err.to_string(),
                        "",
                    )
                })?;
        }
        for d in dirs {
            m.put_dir(d).map_err(|err| {
                CliError::new(format!("adding {d} to the manifest"), err.to_string(), "")
            })?;
        }
        Ok(m)
    }
}

/// An upload task's result: the stored block's locator and the file parts it holds.
type Uploaded = Result<(Locator, Vec<Part>), CliError>;

/// The whole blocks holding only this file, from its start: what a rerun can reuse.
fn whole_blocks(mut p: Segs) -> Chunks {
    p.sort_by_key(|s| s.0);
    let mut chunks = Vec::new();
    let mut at = 0;
    for (off, loc, boff, len) in p {
        if off != at || boff != 0 || len != loc.size {
            break;
        }
        chunks.push((off, len, loc));
        at += len;
    }
    chunks
}

/// `--name`, else "Saved at <UTC time> by <user>@<host>".
async fn collection_name(client: &Client, args: &PutArgs) -> Result<String, CliError> {
    if let Some(n) = &args.name {
        return Ok(n.clone());
    }
    let me = client
        .current_user()
        .await
        .map_err(|e| fail("finding who you are", e))?;
    let user = if me.username.is_empty() {
        "unknown"
    } else {
        &me.username
    };
    Ok(format!(
        "Saved at {} by {user}@{}",
        crate::client::rfc3339(unix_now())
            .replace('T', " ")
            .replace('Z', " UTC"),
        hostname()
    ))
}

/// Creates the collection and prints its UUID (or PDH).
async fn create_collection(client: &Client, args: &PutArgs, m: Manifest) -> Result<(), CliError> {
    let new = NewCollection {
        manifest_text: m.to_text(),
        name: Some(collection_name(client, args).await?),
        owner_uuid: args.project.clone(),
        replication_desired: args.replication,
        properties: None,
    };
    let what = "creating the collection";
    let c = client
        .create_collection(&new, true)
        .await
        .map_err(|e| fail(what, e))?;
    let out = match args.portable_data_hash {
        true => Some(c.portable_data_hash.as_str()).filter(|p| !p.is_empty()),
        false => c.uuid(),
    };
    let out = out.ok_or_else(|| {
        CliError::new(
            what,
            "the API's answer has no UUID or portable data hash",
            "check that KEEP_API_HOST is a Keep API server",
        )
    })?;
    use std::io::Write;
    let mut so = std::io::stdout().lock();
    writeln!(so, "{out}").map_err(|e| crate::client::broken_pipe_ok(e, "writing to stdout"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(paths: &[&Path]) -> PutArgs {
        PutArgs {
            paths: paths.iter().map(|p| p.to_path_buf()).collect(),
            project: None,
            name: None,
            replication: None,
            threads: None,
            exclude: vec![],
            no_follow_links: false,
            no_resume: false,
            no_cache: false,
            portable_data_hash: false,
            filename: None,
            batch_progress: false,
            no_progress: false,
        }
    }

    #[test]
    fn walks_trees() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("tree");
        std::fs::create_dir_all(t.join("a/empty")).unwrap();
        std::fs::create_dir_all(t.join("b")).unwrap();
        std::fs::write(t.join("a/x.txt"), b"x").unwrap();
        std::fs::write(t.join("b/y.tmp"), b"y").unwrap();
        std::fs::write(t.join("z"), b"").unwrap();
        let a = args(&[&t]);
        let (files, dirs) = collect(&a, &[]).unwrap();
        let names: Vec<&str> = files.iter().map(|e| e.mpath.as_str()).collect();
        assert_eq!(names, ["tree/a/x.txt", "tree/b/y.tmp", "tree/z"]);
        assert_eq!(dirs, ["tree/a/empty"]);
        let mut slash = t.clone().into_os_string();
        slash.push("/");
        let a = args(&[Path::new(&slash)]);
        let ex = [Exclude::new("*.tmp")];
        let (files, dirs) = collect(&a, &ex).unwrap();
        let names: Vec<&str> = files.iter().map(|e| e.mpath.as_str()).collect();
        assert_eq!(names, ["a/x.txt", "z"]);
        assert_eq!(dirs, ["a/empty", "b"]);
        // the same name twice is refused
        let a = args(&[&t.join("z"), &t.join("z")]);
        assert_eq!(collect(&a, &[]).err().unwrap().code, 2);
    }
}
