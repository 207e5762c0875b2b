//! `keep get ID[/path] [DEST]`: download a file (to DEST or stdout) or, with `-r`, a
//! directory tree. Blocks are fetched in parallel and every one is checked against its
//! BLAKE3 hash; files are written under a temp name and renamed when complete, so an
//! interrupted get never leaves a truncated file under the real name.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::Args;
use futures_util::stream::{self, StreamExt};
use keep_client::Client;
use keep_format::{EntryKind, FileIndex, Locator};

use crate::client::{broken_pipe_ok, connect, fail, parse_target, read_collection, Target};
use crate::error::CliError;
use crate::transfer::progress::Progress;

#[derive(Debug, Args)]
pub struct GetArgs {
    /// What to download: a collection UUID or PDH, optionally with a path inside it.
    #[arg(value_name = "ID[/PATH]")]
    pub source: String,
    /// Where to write: a file, a directory, or `-` for stdout (default: stdout for a
    /// file, the current directory with -r).
    #[arg(value_name = "DEST")]
    pub dest: Option<PathBuf>,
    /// Download a directory (or the whole collection) recursively.
    #[arg(short = 'r', long)]
    pub recursive: bool,
    /// Leave files that already exist alone.
    #[arg(long, conflicts_with = "force")]
    pub skip_existing: bool,
    /// Overwrite files that already exist.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// How many blocks to fetch at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: Option<u32>,
    /// Print machine-readable progress lines on stderr.
    #[arg(long)]
    pub batch_progress: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

pub const EXAMPLES: &str = "Examples:
  keep get zzzzz-4zz18-0123456789abcde/reads.fq .          # one file into the current directory
  keep get zzzzz-4zz18-0123456789abcde/reads.fq - | head   # to stdout
  keep get -r zzzzz-4zz18-0123456789abcde/ out/             # the whole collection into out/
  keep get -r zzzzz-4zz18-0123456789abcde/run1 out/         # out/run1/…
  keep get -r --skip-existing <pdh> out/                    # finish an interrupted download";

/// One file to write: collection path → local path.
struct Job {
    cpath: String,
    local: PathBuf,
    size: u64,
}

fn tmp_name(p: &Path) -> PathBuf {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    p.with_file_name(format!(".{name}.keep-partial-{}", std::process::id()))
}

fn io_err(what: String, e: std::io::Error) -> CliError {
    CliError::new(
        what,
        e.to_string(),
        "check the destination's permissions and free space",
    )
}

pub async fn run(args: GetArgs) -> Result<(), CliError> {
    let target = parse_target(&args.source)?;
    let client = connect()?;
    let (_, m) = read_collection(&client, &target.id).await?;
    let idx = FileIndex::new(&m);
    let kind = idx.stat(&target.path).ok_or_else(|| {
        CliError::new(
            format!("reading {}", args.source),
            format!("no file or directory {:?} in the collection", target.path),
            format!("list it with keep ls {}", target.id),
        )
    })?;
    let threads = args.threads.map(|t| t as usize).unwrap_or(8);

    let to_stdout = args.dest.as_deref() == Some(Path::new("-"));
    let (jobs, dirs) = match kind {
        EntryKind::File { size } => {
            if to_stdout || (args.dest.is_none() && !args.recursive) {
                return fetch_to_stdout(&client, &idx, &target.path, size, threads, &args).await;
            }
            (vec![file_job(&target, size, args.dest.clone())], Vec::new())
        }
        EntryKind::Dir => {
            if !args.recursive {
                return Err(CliError::usage(
                    format!("downloading {}", args.source),
                    "it is a directory",
                    "add -r to download it with everything in it",
                ));
            }
            if to_stdout {
                return Err(CliError::usage(
                    format!("downloading {}", args.source),
                    "a directory cannot be written to stdout",
                    "give a destination directory",
                ));
            }
            dir_jobs(&idx, &target, args.dest.clone())
        }
    };
    download(&client, &idx, jobs, dirs, threads, &args).await
}

/// One file into `dest`: into it if it is a directory (or ends with `/`), else as it.
fn file_job(target: &Target, size: u64, dest: Option<PathBuf>) -> Job {
    let dest = dest.unwrap_or_else(|| PathBuf::from("."));
    let name = target.path.rsplit('/').next().unwrap_or(&target.path);
    let local = if dest.is_dir() || dest.to_string_lossy().ends_with('/') {
        dest.join(name)
    } else {
        dest
    };
    Job {
        cpath: target.path.clone(),
        local,
        size,
    }
}

/// Every file under the target directory (sorted by collection path) and every local
/// directory to create. `dir/` puts the contents into `dest`, `dir` puts `dest/dir`.
fn dir_jobs(idx: &FileIndex, target: &Target, dest: Option<PathBuf>) -> (Vec<Job>, Vec<PathBuf>) {
    let dest = dest.unwrap_or_else(|| PathBuf::from("."));
    let base = if target.trailing_slash || target.path.is_empty() {
        dest
    } else {
        let name = target.path.rsplit('/').next().unwrap_or(&target.path);
        dest.join(name)
    };
    let mut jobs = Vec::new();
    let mut dirs = vec![base.clone()];
    let mut stack = vec![(target.path.clone(), base)];
    while let Some((cdir, ldir)) = stack.pop() {
        for e in idx.list(&cdir).unwrap_or(&[]) {
            let cpath = if cdir.is_empty() {
                e.name.clone()
            } else {
                format!("{cdir}/{}", e.name)
            };
            let local = ldir.join(&e.name);
            match e.kind {
                EntryKind::Dir => {
                    dirs.push(local.clone());
                    stack.push((cpath, local));
                }
                EntryKind::File { size } => jobs.push(Job { cpath, local, size }),
            }
        }
    }
    jobs.sort_by(|a, b| a.cpath.cmp(&b.cpath));
    (jobs, dirs)
}

async fn fetch_to_stdout(
    client: &Client,
    idx: &FileIndex,
    path: &str,
    size: u64,
    threads: usize,
    args: &GetArgs,
) -> Result<(), CliError> {
    let progress = Progress::new("get", args.batch_progress, args.no_progress);
    progress.set_total(size, 1);
    let f = idx
        .file(path)
        .ok_or_else(|| CliError::new("reading", "file vanished", ""))?;
    let slices: Vec<(Locator, u64, u64)> = f
        .slices(0..size)
        .map(|s| (s.locator.clone(), s.block_offset, s.len))
        .collect();
    let mut out = std::io::stdout().lock();
    let mut st = stream::iter(slices.into_iter().map(|(loc, off, len)| {
        let c = client.clone();
        tokio::spawn(async move {
            let d = c
                .read_block(&loc)
                .await
                .map_err(|e| fail("downloading", e))?;
            Ok::<_, CliError>(d.slice(off as usize..(off + len) as usize))
        })
    }))
    .buffered(threads);
    while let Some(r) = st.next().await {
        let d = r.map_err(|e| CliError::new("downloading", e.to_string(), ""))??;
        progress.add_sent(d.len() as u64);
        progress.add_done(d.len() as u64);
        out.write_all(&d)
            .map_err(|e| broken_pipe_ok(e, "writing to stdout"))?;
    }
    out.flush()
        .map_err(|e| broken_pipe_ok(e, "writing to stdout"))?;
    progress.file_done();
    progress.finish();
    Ok(())
}

/// Refuses to overwrite existing files unless `-f`; with `--skip-existing`, drops them.
/// Runs before anything is written.
fn check_existing(jobs: &mut Vec<Job>, args: &GetArgs) -> Result<(), CliError> {
    if args.force {
        return Ok(());
    }
    let exists = |j: &Job| std::fs::symlink_metadata(&j.local).is_ok();
    if args.skip_existing {
        jobs.retain(|j| !exists(j));
        return Ok(());
    }
    let existing: Vec<&Job> = jobs.iter().filter(|j| exists(j)).collect();
    let Some(first) = existing.first() else {
        return Ok(());
    };
    let more = if existing.len() > 1 {
        format!(" and {} more", existing.len() - 1)
    } else {
        String::new()
    };
    Err(CliError::new(
        format!("writing {}", first.local.display()),
        format!("it already exists{more}"),
        "pass -f to overwrite, or --skip-existing to keep what is there",
    ))
}

/// Creates the directories, and every file's parent; a directory where a file goes is
/// an error.
fn make_dirs(jobs: &[Job], dirs: &[PathBuf]) -> Result<(), CliError> {
    for d in dirs {
        std::fs::create_dir_all(d).map_err(|e| io_err(format!("creating {}", d.display()), e))?;
    }
    for j in jobs {
        if let Some(p) = j.local.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(p)
                .map_err(|e| io_err(format!("creating {}", p.display()), e))?;
        }
        if std::fs::metadata(&j.local).is_ok_and(|m| m.is_dir()) {
            return Err(CliError::new(
                format!("writing {}", j.local.display()),
                "a directory is in the way",
                "remove it or choose another destination",
            ));
        }
    }
    Ok(())
}

/// Bytes `off..off+len` of a block go to file `job`.
struct Piece {
    job: usize,
    off: u64,
    len: u64,
}

/// Runs of consecutive pieces sharing a block, in file order: one fetch each.
fn block_runs(idx: &FileIndex, jobs: &[Job]) -> Vec<(Locator, Vec<Piece>)> {
    let mut runs: Vec<(Locator, Vec<Piece>)> = Vec::new();
    for (ji, j) in jobs.iter().enumerate() {
        let Some(f) = idx.file(&j.cpath) else {
            continue;
        };
        for s in f.slices(0..j.size) {
            let piece = Piece {
                job: ji,
                off: s.block_offset,
                len: s.len,
            };
            match runs.last_mut() {
                Some((l, ps)) if l.hash == s.locator.hash => ps.push(piece),
                _ => runs.push((s.locator.clone(), vec![piece])),
            }
        }
    }
    runs
}

/// Writes the files: each under a temp name beside it, renamed once complete; on
/// failure the partial ones are removed.
struct Files<'a> {
    jobs: &'a [Job],
    tmps: Vec<PathBuf>,
    open: HashMap<usize, File>,
    remaining: Vec<u64>,
    progress: &'a Progress,
}

impl<'a> Files<'a> {
    fn new(jobs: &'a [Job], progress: &'a Progress) -> Self {
        Files {
            jobs,
            tmps: jobs.iter().map(|j| tmp_name(&j.local)).collect(),
            open: HashMap::new(),
            remaining: jobs.iter().map(|j| j.size).collect(),
            progress,
        }
    }

    fn finish(&self, ji: usize, f: File) -> Result<(), CliError> {
        drop(f);
        let to = &self.jobs[ji].local;
        std::fs::rename(&self.tmps[ji], to)
            .map_err(|e| io_err(format!("renaming into {}", to.display()), e))?;
        self.progress.file_done();
        Ok(())
    }

    /// Empty files need no block.
    fn write_empty(&self) -> Result<(), CliError> {
        for (ji, j) in self.jobs.iter().enumerate() {
            if j.size == 0 {
                let f = File::create(&self.tmps[ji])
                    .map_err(|e| io_err(format!("writing {}", self.tmps[ji].display()), e))?;
                self.finish(ji, f)?;
            }
        }
        Ok(())
    }

    /// Writes one block's pieces; a file whose last piece this is gets its real name.
    fn write_run(&mut self, data: &[u8], pieces: &[Piece]) -> Result<(), CliError> {
        for p in pieces {
            let f = match self.open.entry(p.job) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let f = File::create(&self.tmps[p.job]).map_err(|e| {
                        io_err(format!("writing {}", self.tmps[p.job].display()), e)
                    })?;
                    v.insert(f)
                }
            };
            let bytes = &data[p.off as usize..(p.off + p.len) as usize];
            f.write_all(bytes)
                .map_err(|e| io_err(format!("writing {}", self.jobs[p.job].local.display()), e))?;
            self.progress.add_done(p.len);
            self.remaining[p.job] -= p.len;
            if self.remaining[p.job] == 0 {
                if let Some(f) = self.open.remove(&p.job) {
                    self.finish(p.job, f)?;
                }
            }
        }
        Ok(())
    }

    /// Removes the temp files of the files not finished.
    fn abandon(&mut self) {
        for (k, _) in self.open.drain() {
            let _ = std::fs::remove_file(&self.tmps[k]);
        }
    }
}

async fn download(
    client: &Client,
    idx: &FileIndex,
    mut jobs: Vec<Job>,
    dirs: Vec<PathBuf>,
    threads: usize,
    args: &GetArgs,
) -> Result<(), CliError> {
    check_existing(&mut jobs, args)?;
    make_dirs(&jobs, &dirs)?;
    let progress = Progress::new("get", args.batch_progress, args.no_progress);
    progress.set_total(jobs.iter().map(|j| j.size).sum(), jobs.len() as u64);
    let mut files = Files::new(&jobs, &progress);
    files.write_empty()?;
    let runs = Arc::new(block_runs(idx, &jobs));
    // block buffers come back here once their pieces are written (see read_block_into)
    let pool: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let mut st = stream::iter((0..runs.len()).map(|ri| {
        let c = client.clone();
        let runs = runs.clone();
        let pool = pool.clone();
        tokio::spawn(async move {
            let buf = pool
                .lock()
                .ok()
                .and_then(|mut p| p.pop())
                .unwrap_or_default();
            c.read_block_into(&runs[ri].0, buf)
                .await
                .map_err(|e| fail("downloading", e))
        })
    }))
    .buffered(threads);
    let mut ri = 0;
    while let Some(r) = st.next().await {
        let written = r
            .map_err(|e| CliError::new("downloading", e.to_string(), ""))
            .and_then(|d| d)
            .and_then(|data| {
                progress.add_sent(data.len() as u64);
                files.write_run(&data, &runs[ri].1).map(|()| data)
            });
        match written {
            Ok(data) => {
                if let Ok(mut p) = pool.lock() {
                    p.push(data);
                }
            }
            Err(e) => {
                files.abandon();
                return Err(e);
            }
        }
        ri += 1;
    }
    progress.finish();
    Ok(())
}
