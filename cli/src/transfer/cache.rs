//! `keep put`'s resume cache: `$XDG_CACHE_HOME/keep/put/<key>.json` (default
//! `~/.cache/keep/put/`), keyed by the API host, the token and the real input paths.
//! For each file (real path, size, mtime, inode) it remembers the signed locators of the
//! blocks already stored, so a rerun uploads only what is missing and a second upload
//! of unchanged data sends no block bytes. Written atomically (temp file + rename) and
//! locked (`flock`) against a concurrent `keep put` of the same inputs. Locators whose
//! signatures expire within the hour are not trusted (the blocks are sent again).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keep_format::Locator;
use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// One stored run of a file: bytes `file_off..file_off+len` are `len` bytes at
/// `block_off` in `locator`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Seg {
    pub file_off: u64,
    pub locator: String,
    pub block_off: u64,
    pub len: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fingerprint {
    pub size: u64,
    pub mtime_ns: i128,
    pub ino: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    pub fp: Fingerprint,
    pub complete: bool,
    pub segs: Vec<Seg>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Data {
    api_host: String,
    files: BTreeMap<String, FileEntry>,
}

pub struct Cache {
    path: PathBuf,
    data: Data,
    dirty: bool,
    last_save: Instant,
    _lock: File,
}

/// `$XDG_CACHE_HOME/keep`, else `~/.cache/keep`.
pub fn dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
    };
    Some(base.join("keep"))
}

/// Does a signed locator stay valid for at least another hour?
pub fn fresh(loc: &Locator, now: u64) -> bool {
    if loc.size == 0 {
        return true;
    }
    loc.signature()
        .is_some_and(|(_, exp)| u64::from(exp) > now + 3600)
}

impl Cache {
    /// Opens (and locks) the cache for `key`; `resume` false starts from empty.
    pub fn open(key: &str, api_host: &str, resume: bool) -> Result<Cache, CliError> {
        let d = dir().ok_or_else(|| {
            CliError::new(
                "opening the resume cache",
                "neither XDG_CACHE_HOME nor HOME is set",
                "set HOME, or pass --no-cache",
            )
        })?;
        let d = d.join("put");
        std::fs::create_dir_all(&d).map_err(|e| {
            CliError::new(
                format!("creating the resume cache {}", d.display()),
                e.to_string(),
                "check permissions, or pass --no-cache",
            )
        })?;
        let path = d.join(format!("{key}.json"));
        let lock_path = d.join(format!("{key}.lock"));
        let mut lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                CliError::new(
                    format!("opening {}", lock_path.display()),
                    e.to_string(),
                    "check permissions, or pass --no-cache",
                )
            })?;
        // SAFETY: flock on a file descriptor we own.
        let r = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            let other = std::fs::read_to_string(&lock_path).unwrap_or_default();
            let other = other.trim();
            return Err(CliError::new(
                "locking the resume cache",
                format!(
                    "another keep put{} is uploading the same paths",
                    if other.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {other})")
                    }
                ),
                "wait for it to finish, or pass --no-cache to upload independently",
            ));
        }
        let _ = lock.set_len(0);
        let _ = write!(lock, "{}", std::process::id());
        let data = if resume {
            std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Data>(&b).ok())
                .filter(|d| d.api_host == api_host)
                .unwrap_or_default()
        } else {
            Data::default()
        };
        Ok(Cache {
            path,
            data: Data {
                api_host: api_host.to_string(),
                ..data
            },
            dirty: false,
            last_save: Instant::now(),
            _lock: lock,
        })
    }

    /// The entry for `real` if its fingerprint still matches.
    pub fn get(&self, real: &Path, fp: &Fingerprint) -> Option<&FileEntry> {
        self.data
            .files
            .get(&real.to_string_lossy().into_owned())
            .filter(|e| &e.fp == fp)
    }

    pub fn set(&mut self, real: &Path, e: FileEntry) {
        self.data
            .files
            .insert(real.to_string_lossy().into_owned(), e);
        self.dirty = true;
    }

    /// Saves if something changed and the last save is over a second old.
    pub fn maybe_save(&mut self) {
        if self.dirty && self.last_save.elapsed() > Duration::from_secs(1) {
            let _ = self.save();
        }
    }

    /// Writes the cache atomically: temp file, fsync, rename.
    pub fn save(&mut self) -> std::io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        let bytes = serde_json::to_vec(&self.data).map_err(std::io::Error::other)?;
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_data()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        self.dirty = false;
        self.last_save = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_lock() {
        let d = tempfile::tempdir().unwrap();
        // the only test touching XDG_CACHE_HOME
        std::env::set_var("XDG_CACHE_HOME", d.path());
        let fp = Fingerprint {
            size: 3,
            mtime_ns: 5,
            ino: 7,
        };
        {
            let mut c = Cache::open("k", "http://h", true).unwrap();
            c.set(
                Path::new("/x/y"),
                FileEntry {
                    fp: fp.clone(),
                    complete: true,
                    segs: vec![],
                },
            );
            // a second run on the same key is refused while the first holds the lock
            let e = Cache::open("k", "http://h", true).err().unwrap();
            assert!(e.why.contains("another keep put"), "{e}");
            c.save().unwrap();
        }
        let c = Cache::open("k", "http://h", true).unwrap();
        assert!(c.get(Path::new("/x/y"), &fp).is_some());
        let other = Fingerprint { size: 4, ..fp };
        assert!(c.get(Path::new("/x/y"), &other).is_none());
        drop(c);
        let c = Cache::open("k", "http://other", true).unwrap();
        assert!(c.get(Path::new("/x/y"), &fp).is_none());
    }
}
