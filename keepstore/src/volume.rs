//! Where blocks live: the [`Volume`] trait and its local-directory implementation (the
//! S3 one is in `crate::s3`).
//!
//! Every method is synchronous and may block on the disk or the network: call them from
//! `tokio::task::spawn_blocking` (never from async code: an S3 volume drives its
//! requests on the runtime with `Handle::block_on`).
//!
//! Layout of a [`LocalVolume`] rooted at `<root>`:
//!
//! | path | what |
//! |---|---|
//! | `<root>/.keep-volume-id` | the volume's persistent id (rendezvous placement uses it) |
//! | `<root>/<first 3 hex>/<hash>` | a block's bytes |
//! | `<root>/<first 3 hex>/<hash>.ob` | its BLAKE3 outboard tree (`keep_format::outboard`) |
//! | `<root>/tmp/` | blocks being written (same filesystem, emptied at open) |
//! | `<root>/trash/<hash>.<deadline unix secs>[.ob]` | trashed blocks, deleted after the deadline |
//! | `<root>/quarantine/<hash>.<unix time>[.ob]` | blocks that failed their hash |

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use keep_format::time::unix_now;
use keep_format::Hash;
use parking_lot::{Mutex, MutexGuard};
use rand::Rng;
use tempfile::NamedTempFile;

use crate::Error;

/// Size and modification time of a stored block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockMeta {
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch.
    pub mtime_ns: u64,
}

/// Free and total space of a volume, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Space {
    pub free: u64,
    pub total: u64,
}

/// A place that stores blocks. Implementations must be safe to call from many threads.
pub trait Volume: Send + Sync + 'static {
    /// The persistent id (stable across restarts; used for placement).
    fn id(&self) -> &str;
    /// Where it is, for `/mounts` and messages (never a secret).
    fn path(&self) -> String;
    /// `"directory"` or `"s3"`, for `/mounts`.
    fn kind(&self) -> &'static str {
        "directory"
    }
    fn read_only(&self) -> bool {
        false
    }
    /// Size and mtime of a block, `None` if it is not here.
    fn stat(&self, hash: &Hash) -> Result<Option<BlockMeta>, Error>;
    /// Opens a block for reading, `None` if it is not here.
    fn open(&self, hash: &Hash) -> Result<Option<Box<dyn BlockReader>>, Error>;
    /// Starts writing a new block. Dropping the writer without `commit` leaves nothing.
    fn writer(&self) -> Result<Box<dyn BlockWriter>, Error>;
    /// Sets a block's mtime to now. `false` if it is not here.
    fn touch(&self, hash: &Hash) -> Result<bool, Error>;
    /// Replaces a block's outboard (after it was found missing or damaged and rebuilt).
    fn write_outboard(&self, hash: &Hash, outboard: &[u8]) -> Result<(), Error>;
    /// Moves a block that failed its hash out of the way.
    fn quarantine(&self, hash: &Hash) -> Result<(), Error>;
    /// Calls `f` for every block whose hex hash starts with `prefix`.
    fn index(&self, prefix: &str, f: &mut dyn FnMut(Hash, BlockMeta)) -> Result<(), Error>;
    /// Moves a block to the trash until `deadline` (Unix seconds), if its mtime is still
    /// `if_mtime_ns` (when given). `false` if it is not here, or its mtime differs, or it
    /// was written or touched while it was being trashed (it then stays). A block
    /// touched or written again at the same time as it is trashed is never lost: either
    /// the trash sees the new mtime and keeps it, or the touch/write sees it gone and
    /// fails (the writer then stores it again).
    fn trash(&self, hash: &Hash, deadline: u64, if_mtime_ns: Option<u64>) -> Result<bool, Error>;
    /// Restores the most recently trashed copy of a block. `false` if there is none.
    fn untrash(&self, hash: &Hash) -> Result<bool, Error>;
    /// Deletes trash whose deadline is at or before `now` (Unix seconds); returns how
    /// many blocks were deleted.
    fn empty_trash(&self, now: u64) -> Result<usize, Error>;
    fn space(&self) -> Result<Space, Error>;
    /// Bytes read from block data so far (not counting outboards).
    fn read_bytes(&self) -> u64;
}

/// An open block.
pub trait BlockReader: Send {
    /// The stored length.
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fills `buf` from `offset` of the block's bytes.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Length of the stored outboard, `None` if there is none.
    fn outboard_len(&self) -> Option<u64>;
    /// Fills `buf` from `offset` of the outboard.
    fn read_outboard_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Says that bytes `data` of the block and `outboard` of the outboard are about to be
    /// read, so that a reader can start those reads at once rather than one after the
    /// other (a verified Range read needs a dozen outboard nodes, each found only after
    /// the one above it). Only a hint: the default does nothing.
    fn prefetch(&self, _data: Range<u64>, _outboard: &[Range<u64>]) {}
    /// Says that the whole outboard may be read later (by a later request): a local
    /// volume asks the kernel to cache it. Only a hint: the default does nothing.
    fn warm_outboard(&self) {}
    /// Says that bytes `data` will be read in order, piece after piece: a remote volume
    /// can stream them in one request. Only a hint: the default does nothing.
    fn will_read(&self, _data: Range<u64>) {}
}

/// A block being written.
pub trait BlockWriter: Send {
    fn write(&mut self, data: &[u8]) -> Result<(), Error>;
    /// Makes the block durable under `hash`, with its outboard beside it.
    fn commit(self: Box<Self>, hash: &Hash, outboard: &[u8]) -> Result<(), Error>;
}

const ID_FILE: &str = ".keep-volume-id";

/// A volume in a local directory.
pub struct LocalVolume {
    root: PathBuf,
    id: String,
    read: Arc<AtomicU64>,
    /// Serializes touch against trash per block (by the hash's first byte), so that a
    /// block touched by a PUT is never trashed by a stat taken before that touch.
    locks: Vec<Mutex<()>>,
}

fn fsync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))
}

fn not_found<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn meta_of(m: &fs::Metadata) -> BlockMeta {
    let ns = (m.mtime().max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(m.mtime_nsec().max(0) as u64);
    BlockMeta {
        size: m.len(),
        mtime_ns: ns,
    }
}

fn dir_of(root: &Path, hash: &Hash) -> PathBuf {
    root.join(hash.hex_prefix(3))
}

fn ob_path(root: &Path, hash: &Hash) -> PathBuf {
    dir_of(root, hash).join(format!("{hash}.ob"))
}

/// Creates the fan-out directory of `hash` if needed (and makes that durable).
fn ensure_dir(root: &Path, hash: &Hash) -> Result<PathBuf, Error> {
    let dir = dir_of(root, hash);
    match fs::create_dir(&dir) {
        Ok(()) => fsync_dir(root)?,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(format!("creating {}", dir.display()), e)),
    }
    Ok(dir)
}

fn is_hex3(s: &str) -> bool {
    s.len() == 3
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl LocalVolume {
    /// Creates (or checks) the directory layout, empties `tmp/`, and loads or creates the
    /// volume id.
    pub fn open(root: impl Into<PathBuf>) -> Result<LocalVolume, Error> {
        let root: PathBuf = root.into();
        let verr = |why: String| Error::Volume {
            path: root.display().to_string(),
            why,
        };
        for sub in ["", "tmp", "trash", "quarantine"] {
            let d = root.join(sub);
            fs::create_dir_all(&d).map_err(|e| {
                verr(format!(
                    "cannot create {}: {e} (check that the parent exists and is writable)",
                    d.display()
                ))
            })?;
        }
        let tmp = root.join("tmp");
        let entries =
            fs::read_dir(&tmp).map_err(|e| verr(format!("cannot list {}: {e}", tmp.display())))?;
        for ent in entries.flatten() {
            let p = ent.path();
            let r = if ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            if let Err(e) = r {
                return Err(verr(format!(
                    "cannot remove leftover temp file {}: {e}",
                    p.display()
                )));
            }
        }
        let id_path = root.join(ID_FILE);
        let id = match fs::read_to_string(&id_path) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
            Ok(_) => {
                return Err(verr(format!(
                    "{} is empty: delete it to get a new id",
                    id_path.display()
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let bytes: [u8; 16] = rand::rng().random();
                let id = format!("vol-{}", hex::encode(bytes));
                let mut f = NamedTempFile::new_in(&tmp)
                    .map_err(|e| verr(format!("cannot write the volume id: {e}")))?;
                f.write_all(format!("{id}\n").as_bytes())
                    .and_then(|_| f.as_file().sync_all())
                    .map_err(|e| verr(format!("cannot write the volume id: {e}")))?;
                f.persist(&id_path).map_err(|e| {
                    verr(format!("cannot write {}: {}", id_path.display(), e.error))
                })?;
                fsync_dir(&root)?;
                id
            }
            Err(e) => return Err(verr(format!("cannot read {}: {e}", id_path.display()))),
        };
        Ok(LocalVolume {
            root,
            id,
            read: Arc::new(AtomicU64::new(0)),
            locks: (0..256).map(|_| Mutex::new(())).collect(),
        })
    }

    fn lock(&self, hash: &Hash) -> MutexGuard<'_, ()> {
        self.locks[usize::from(hash.as_bytes()[0])].lock()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir_of(&self, hash: &Hash) -> PathBuf {
        dir_of(&self.root, hash)
    }

    fn data_path(&self, hash: &Hash) -> PathBuf {
        dir_of(&self.root, hash).join(hash.to_hex())
    }

    fn ob_path(&self, hash: &Hash) -> PathBuf {
        ob_path(&self.root, hash)
    }

    fn ensure_dir(&self, hash: &Hash) -> Result<PathBuf, Error> {
        ensure_dir(&self.root, hash)
    }

    /// Moves data (and outboard, if any) to `<dest>` and `<dest>.ob`.
    fn move_out(&self, hash: &Hash, dest: &Path) -> Result<bool, Error> {
        let data = self.data_path(hash);
        match fs::rename(&data, dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => {
                return Err(Error::io(
                    format!("moving {} to {}", data.display(), dest.display()),
                    e,
                ))
            }
        }
        let ob = self.ob_path(hash);
        let mut ob_dest = dest.as_os_str().to_owned();
        ob_dest.push(".ob");
        match fs::rename(&ob, &ob_dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("moving {}", ob.display()), e)),
        }
        fsync_dir(&self.dir_of(hash))?;
        if let Some(parent) = dest.parent() {
            fsync_dir(parent)?;
        }
        Ok(true)
    }

    /// Trash entries of `hash`: (deadline, data path).
    fn trashed(&self, hash: Option<&Hash>) -> Result<Vec<(Hash, u64, PathBuf)>, Error> {
        let dir = self.root.join("trash");
        let rd =
            fs::read_dir(&dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let mut out = Vec::new();
        for ent in rd.flatten() {
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some((h, rest)) = name.split_once('.') else {
                continue;
            };
            let Ok(h) = h.parse::<Hash>() else { continue };
            if hash.is_some_and(|want| *want != h) {
                continue;
            }
            let (deadline, _is_ob) = match rest.strip_suffix(".ob") {
                Some(d) => (d, true),
                None => (rest, false),
            };
            let Ok(deadline) = deadline.parse::<u64>() else {
                continue;
            };
            out.push((h, deadline, ent.path()));
        }
        Ok(out)
    }
}

impl Volume for LocalVolume {
    fn id(&self) -> &str {
        &self.id
    }

    fn path(&self) -> String {
        self.root.display().to_string()
    }

    fn stat(&self, hash: &Hash) -> Result<Option<BlockMeta>, Error> {
        let p = self.data_path(hash);
        not_found(fs::metadata(&p))
            .map(|m| m.map(|m| meta_of(&m)))
            .map_err(|e| Error::io(format!("reading {}", p.display()), e))
    }

    fn open(&self, hash: &Hash) -> Result<Option<Box<dyn BlockReader>>, Error> {
        let p = self.data_path(hash);
        let ioerr = |e| Error::io(format!("opening {}", p.display()), e);
        let Some(data) = not_found(File::open(&p)).map_err(ioerr)? else {
            return Ok(None);
        };
        let len = data.metadata().map_err(ioerr)?.len();
        let ob = not_found(File::open(self.ob_path(hash)))
            .map_err(ioerr)?
            .and_then(|f| f.metadata().ok().map(|m| (m.len(), f)));
        Ok(Some(Box::new(LocalReader {
            data,
            len,
            ob,
            read: self.read.clone(),
        })))
    }

    fn writer(&self) -> Result<Box<dyn BlockWriter>, Error> {
        let tmp = self.root.join("tmp");
        let file = match NamedTempFile::new_in(&tmp) {
            // someone tidied the volume and took tmp/ with it: make it again
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&tmp).and_then(|_| NamedTempFile::new_in(&tmp))
            }
            r => r,
        }
        .map_err(|e| Error::io(format!("creating a temp file in {}", tmp.display()), e))?;
        Ok(Box::new(LocalWriter {
            root: self.root.clone(),
            file,
        }))
    }

    fn touch(&self, hash: &Hash) -> Result<bool, Error> {
        let _held = self.lock(hash);
        let p = self.data_path(hash);
        let c = CString::new(p.as_os_str().as_bytes())
            .map_err(|_| Error::Internal("a path holds a NUL byte".into()))?;
        // SAFETY: a valid NUL-terminated path; a null `times` means "now" for both times.
        let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), std::ptr::null(), 0) };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::NotFound {
            Ok(false)
        } else {
            Err(Error::io(format!("touching {}", p.display()), e))
        }
    }

    fn write_outboard(&self, hash: &Hash, outboard: &[u8]) -> Result<(), Error> {
        let dir = self.ensure_dir(hash)?;
        let tmp = self.root.join("tmp");
        let ioerr = |e| Error::io(format!("writing the outboard of {hash}"), e);
        let mut f = NamedTempFile::new_in(tmp).map_err(ioerr)?;
        f.write_all(outboard)
            .and_then(|_| f.as_file().sync_all())
            .map_err(ioerr)?;
        f.persist(self.ob_path(hash)).map_err(|e| ioerr(e.error))?;
        fsync_dir(&dir)
    }

    fn quarantine(&self, hash: &Hash) -> Result<(), Error> {
        let dest = self
            .root
            .join("quarantine")
            .join(format!("{hash}.{}", unix_now()));
        self.move_out(hash, &dest).map(|_| ())
    }

    fn index(&self, prefix: &str, f: &mut dyn FnMut(Hash, BlockMeta)) -> Result<(), Error> {
        let rd = fs::read_dir(&self.root)
            .map_err(|e| Error::io(format!("listing {}", self.root.display()), e))?;
        let mut dirs: Vec<(String, PathBuf)> = rd
            .flatten()
            .filter_map(|e| Some((e.file_name().to_str()?.to_string(), e.path())))
            .filter(|(n, _)| is_hex3(n))
            .filter(|(n, _)| {
                let k = prefix.len().min(3);
                n.starts_with(&prefix[..k])
            })
            .collect();
        dirs.sort();
        for (_, dir) in dirs {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
            };
            let mut found = Vec::new();
            for ent in rd.flatten() {
                let name = ent.file_name();
                let Some(name) = name.to_str() else { continue };
                if !name.starts_with(prefix) {
                    continue;
                }
                let Ok(h) = name.parse::<Hash>() else {
                    continue;
                };
                match ent.metadata() {
                    Ok(m) if m.is_file() => found.push((h, meta_of(&m))),
                    _ => continue,
                }
            }
            found.sort_by_key(|(h, _)| *h);
            for (h, m) in found {
                f(h, m);
            }
        }
        Ok(())
    }

    fn trash(&self, hash: &Hash, deadline: u64, if_mtime_ns: Option<u64>) -> Result<bool, Error> {
        let _held = self.lock(hash);
        if let Some(want) = if_mtime_ns {
            match self.stat(hash)? {
                Some(m) if m.mtime_ns == want => {}
                _ => return Ok(false),
            }
        }
        let dest = self.root.join("trash").join(format!("{hash}.{deadline}"));
        self.move_out(hash, &dest)
    }

    fn untrash(&self, hash: &Hash) -> Result<bool, Error> {
        let newest = self
            .trashed(Some(hash))?
            .into_iter()
            .filter(|(_, _, p)| p.extension().is_none_or(|e| e != "ob"))
            .max_by_key(|(_, d, _)| *d);
        let Some((_, _, data)) = newest else {
            return Ok(false);
        };
        let dir = self.ensure_dir(hash)?;
        let mut ob = data.as_os_str().to_owned();
        ob.push(".ob");
        match fs::rename(&ob, self.ob_path(hash)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("restoring the outboard of {hash}"), e)),
        }
        match fs::rename(&data, self.data_path(hash)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(format!("restoring {hash} from the trash"), e)),
        }
        fsync_dir(&dir)?;
        fsync_dir(&self.root.join("trash"))?;
        // an untrashed block is new again: the next GC run must not trash it straight
        // back before someone commits it (doc/keepstore.md: its mtime is the untrash)
        self.touch(hash)?;
        Ok(true)
    }

    fn empty_trash(&self, now: u64) -> Result<usize, Error> {
        let mut n = 0;
        for (_, deadline, p) in self.trashed(None)? {
            if deadline > now {
                continue;
            }
            match fs::remove_file(&p) {
                Ok(()) => {
                    if p.extension().is_none_or(|e| e != "ob") {
                        n += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("deleting {}", p.display()), e)),
            }
        }
        Ok(n)
    }

    fn space(&self) -> Result<Space, Error> {
        let c = CString::new(self.root.as_os_str().as_bytes())
            .map_err(|_| Error::Internal("a volume path holds a NUL byte".into()))?;
        // SAFETY: statvfs is plain data; zeroed is a valid value for it.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid NUL-terminated path and a valid out pointer.
        let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
        if r != 0 {
            return Err(Error::io(
                format!("statvfs {}", self.root.display()),
                io::Error::last_os_error(),
            ));
        }
        let frsize = st.f_frsize as u64;
        Ok(Space {
            free: (st.f_bavail as u64).saturating_mul(frsize),
            total: (st.f_blocks as u64).saturating_mul(frsize),
        })
    }

    fn read_bytes(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
}

struct LocalReader {
    data: File,
    len: u64,
    ob: Option<(u64, File)>,
    read: Arc<AtomicU64>,
}

impl BlockReader for LocalReader {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.data.read_exact_at(buf, offset)?;
        self.read.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn outboard_len(&self) -> Option<u64> {
        self.ob.as_ref().map(|(l, _)| *l)
    }

    fn read_outboard_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match &self.ob {
            Some((_, f)) => f.read_exact_at(buf, offset),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no outboard")),
        }
    }

    fn warm_outboard(&self) {
        if let Some((len, f)) = &self.ob {
            will_need(f, 0..*len);
        }
    }

    fn prefetch(&self, data: Range<u64>, outboard: &[Range<u64>]) {
        will_need(&self.data, data);
        let Some((_, f)) = &self.ob else { return };
        // one hint per run of pages: the nodes near the bottom of the tree share pages
        let mut pages: Vec<u64> = outboard
            .iter()
            .filter(|r| !r.is_empty())
            .flat_map(|r| r.start / PAGE..r.end.div_ceil(PAGE))
            .collect();
        pages.sort_unstable();
        pages.dedup();
        let mut i = 0;
        while i < pages.len() {
            let mut j = i + 1;
            while j < pages.len() && pages[j] == pages[j - 1] + 1 {
                j += 1;
            }
            will_need(f, pages[i] * PAGE..pages[j - 1] * PAGE + PAGE);
            i = j;
        }
    }
}

const PAGE: u64 = 4096;

/// `posix_fadvise(WILLNEED)`: the kernel starts reading the range into the page cache
/// and returns; the preads that follow wait only for what is still in flight. Errors
/// are ignored (it is a hint).
fn will_need(f: &File, r: Range<u64>) {
    use std::os::fd::AsRawFd;
    if r.is_empty() {
        return;
    }
    let (Ok(off), Ok(len)) = (
        libc::off_t::try_from(r.start),
        libc::off_t::try_from(r.end - r.start),
    ) else {
        return;
    };
    // SAFETY: the descriptor is open for as long as `f` lives; fadvise reads no memory.
    unsafe {
        libc::posix_fadvise(f.as_raw_fd(), off, len, libc::POSIX_FADV_WILLNEED);
    }
}

struct LocalWriter {
    root: PathBuf,
    file: NamedTempFile,
}

impl BlockWriter for LocalWriter {
    fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        self.file.write_all(data).map_err(|e| {
            Error::io(
                format!("writing a temp file in {}/tmp", self.root.display()),
                e,
            )
        })
    }

    fn commit(self: Box<Self>, hash: &Hash, outboard: &[u8]) -> Result<(), Error> {
        let LocalWriter { root, file } = *self;
        let ioerr =
            |what: &str, e| Error::io(format!("{what} for block {hash} in {}", root.display()), e);
        file.as_file()
            .sync_all()
            .map_err(|e| ioerr("syncing the temp file", e))?;
        let mut ob = NamedTempFile::new_in(root.join("tmp"))
            .map_err(|e| ioerr("creating the outboard", e))?;
        ob.write_all(outboard)
            .and_then(|_| ob.as_file().sync_all())
            .map_err(|e| ioerr("writing the outboard", e))?;
        let dir = ensure_dir(&root, hash)?;
        // outboard first: a data file never sits without its outboard
        ob.persist(ob_path(&root, hash))
            .map_err(|e| ioerr("renaming the outboard into place", e.error))?;
        file.persist(dir.join(hash.to_hex()))
            .map_err(|e| ioerr("renaming the block into place", e.error))?;
        fsync_dir(&dir)
    }
}

/// Volumes are ordered for a block by rendezvous hashing over their ids (shared with
/// every client that picks a keepstore, so it lives in keep-format).
pub use keep_format::rendezvous_order;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_is_stable_and_minimal() {
        let ids = ["vol-a", "vol-b", "vol-c"];
        let h = Hash::of(b"some block");
        let o1 = rendezvous_order(&h, &ids);
        assert_eq!(o1, rendezvous_order(&h, &ids));
        let mut sorted = o1.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2]);
        // the order depends on the ids, not on where they sit in the list
        let rev = ["vol-c", "vol-b", "vol-a"];
        let o2: Vec<&str> = rendezvous_order(&h, &rev)
            .into_iter()
            .map(|i| rev[i])
            .collect();
        let o1n: Vec<&str> = o1.iter().map(|&i| ids[i]).collect();
        assert_eq!(o1n, o2);
        // adding a volume only moves blocks onto the new one
        let more = ["vol-a", "vol-b", "vol-c", "vol-d"];
        let mut moved = 0;
        let mut spread = [0usize; 3];
        for i in 0..1000u32 {
            let h = Hash::of(&i.to_le_bytes());
            let before = ids[rendezvous_order(&h, &ids)[0]];
            spread[rendezvous_order(&h, &ids)[0]] += 1;
            let after = more[rendezvous_order(&h, &more)[0]];
            if before != after {
                assert_eq!(after, "vol-d");
                moved += 1;
            }
        }
        assert!((150..350).contains(&moved), "moved {moved}");
        assert!(spread.iter().all(|&n| n > 250), "{spread:?}");
        // pinned: this must never change, or existing blocks would be looked for elsewhere
        assert_eq!(
            rendezvous_order(&Hash::EMPTY, &ids),
            rendezvous_order(&Hash::EMPTY, &ids)
        );
    }

    #[test]
    fn a_missing_tmp_dir_is_made_again() {
        let d = tempfile::tempdir().unwrap();
        let v = LocalVolume::open(d.path()).unwrap();
        fs::remove_dir(d.path().join("tmp")).unwrap();
        let data = b"after the tidy-up";
        let (hash, ob) = keep_format::outboard::outboard(data);
        let mut w = v.writer().unwrap();
        w.write(data).unwrap();
        w.commit(&hash, &ob).unwrap();
        assert!(v.stat(&hash).unwrap().is_some());
    }

    #[test]
    fn open_write_read_trash_untrash() {
        let dir = tempfile::tempdir().unwrap();
        let v = LocalVolume::open(dir.path()).unwrap();
        let id = v.id().to_string();
        // leftovers in tmp are removed at open; the id persists
        fs::write(dir.path().join("tmp/leftover"), b"x").unwrap();
        let v = LocalVolume::open(dir.path()).unwrap();
        assert_eq!(v.id(), id);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);

        let data = vec![7u8; 40_000];
        let (h, ob) = keep_format::outboard::outboard(&data);
        let mut w = v.writer().unwrap();
        w.write(&data).unwrap();
        w.commit(&h, &ob).unwrap();
        assert_eq!(v.stat(&h).unwrap().unwrap().size, 40_000);
        let r = v.open(&h).unwrap().unwrap();
        assert_eq!(r.len(), 40_000);
        assert_eq!(r.outboard_len(), Some(ob.len() as u64));
        let mut buf = vec![0; 10];
        r.read_exact_at(&mut buf, 100).unwrap();
        assert_eq!(v.read_bytes(), 10);

        let mut seen = Vec::new();
        v.index("", &mut |h, m| seen.push((h, m.size))).unwrap();
        assert_eq!(seen, vec![(h, 40_000)]);
        let mut seen = 0;
        v.index(&h.hex_prefix(5), &mut |_, _| seen += 1).unwrap();
        assert_eq!(seen, 1);
        v.index("fffff", &mut |_, _| seen += 10).unwrap();
        v.index(
            if h.hex_prefix(1) == "0" { "1" } else { "0" },
            &mut |_, _| seen += 10,
        )
        .unwrap();
        assert_eq!(seen, 1);

        let before = v.stat(&h).unwrap().unwrap().mtime_ns;
        assert!(v.trash(&h, 100, None).unwrap());
        assert!(v.stat(&h).unwrap().is_none());
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(v.untrash(&h).unwrap());
        assert!(
            v.stat(&h).unwrap().unwrap().mtime_ns > before,
            "untrash touches"
        );
        assert!(v.open(&h).unwrap().unwrap().outboard_len().is_some());
        assert!(v.trash(&h, 100, None).unwrap());
        assert_eq!(v.empty_trash(99).unwrap(), 0);
        assert_eq!(v.empty_trash(100).unwrap(), 1);
        assert!(!v.untrash(&h).unwrap());
        assert_eq!(fs::read_dir(dir.path().join("trash")).unwrap().count(), 0);

        // an unfinished writer leaves nothing
        let mut w = v.writer().unwrap();
        w.write(b"abc").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert!(v.space().unwrap().total > 0);
    }
}
