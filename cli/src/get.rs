//! `keep get ID[/path] [DEST]`: download a file (to DEST or stdout) or, with `-r`, a
//! directory tree. Blocks are fetched in parallel and every one is checked against its
//! BLAKE3 hash; files are written under a temp name and renamed when complete, so an
//! interrupted get never leaves a truncated file under the real name.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use futures_util::stream::{self, StreamExt};
use keep_format::{EntryKind, FileIndex, Locator, Manifest};

use crate::client::{broken_pipe_ok, parse_target, Client};
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
    let client = Client::connect().await?;
    let rec = client.collection(&target.id).await?;
    let text = rec["manifest_text"].as_str().unwrap_or("");
    let m = Manifest::parse(text).map_err(|e| {
        CliError::new(
            format!("reading collection {}", target.id),
            format!("its manifest does not parse: {e}"),
            "report this to the cluster's admin",
        )
    })?;
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
    match kind {
        EntryKind::File { size } => {
            if to_stdout || (args.dest.is_none() && !args.recursive) {
                return fetch_to_stdout(&client, &idx, &target.path, size, threads, &args).await;
            }
            let dest = args.dest.clone().unwrap_or_else(|| PathBuf::from("."));
            let name = target.path.rsplit('/').next().unwrap_or(&target.path);
            let local = if dest.is_dir() || dest.to_string_lossy().ends_with('/') {
                dest.join(name)
            } else {
                dest
            };
            let jobs = vec![Job {
                cpath: target.path.clone(),
                local,
                size,
            }];
            download(&client, &idx, jobs, vec![], threads, &args).await
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
            let dest = args.dest.clone().unwrap_or_else(|| PathBuf::from("."));
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
            download(&client, &idx, jobs, dirs, threads, &args).await
        }
    }
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
            let d = c.get_block(&loc).await?;
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

async fn download(
    client: &Client,
    idx: &FileIndex,
    mut jobs: Vec<Job>,
    dirs: Vec<PathBuf>,
    threads: usize,
    args: &GetArgs,
) -> Result<(), CliError> {
    // refuse before writing anything
    if !args.force {
        let existing: Vec<&Job> = jobs
            .iter()
            .filter(|j| std::fs::symlink_metadata(&j.local).is_ok())
            .collect();
        if !existing.is_empty() && !args.skip_existing {
            let first = existing[0].local.display();
            let more = if existing.len() > 1 {
                format!(" and {} more", existing.len() - 1)
            } else {
                String::new()
            };
            return Err(CliError::new(
                format!("writing {first}"),
                format!("it already exists{more}"),
                "pass -f to overwrite, or --skip-existing to keep what is there",
            ));
        }
        if args.skip_existing {
            jobs.retain(|j| std::fs::symlink_metadata(&j.local).is_err());
        }
    }
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(|e| io_err(format!("creating {}", d.display()), e))?;
    }
    for j in &jobs {
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

    let progress = Progress::new("get", args.batch_progress, args.no_progress);
    progress.set_total(jobs.iter().map(|j| j.size).sum(), jobs.len() as u64);

    // runs of consecutive pieces sharing a block: one fetch each
    struct Piece {
        job: usize,
        off: u64,
        len: u64,
    }
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

    let tmps: Vec<PathBuf> = jobs.iter().map(|j| tmp_name(&j.local)).collect();
    let cleanup = |open: &HashMap<usize, std::fs::File>| {
        for k in open.keys() {
            let _ = std::fs::remove_file(&tmps[*k]);
        }
    };
    let finish = |ji: usize, f: std::fs::File| -> Result<(), CliError> {
        drop(f);
        std::fs::rename(&tmps[ji], &jobs[ji].local)
            .map_err(|e| io_err(format!("renaming into {}", jobs[ji].local.display()), e))
    };
    // empty files first
    for (ji, j) in jobs.iter().enumerate() {
        if j.size == 0 {
            let f = std::fs::File::create(&tmps[ji])
                .map_err(|e| io_err(format!("writing {}", tmps[ji].display()), e))?;
            finish(ji, f)?;
            progress.file_done();
        }
    }
    let mut remaining: Vec<u64> = jobs.iter().map(|j| j.size).collect();
    let mut open: HashMap<usize, std::fs::File> = HashMap::new();
    let runs = Arc::new(runs);
    // block buffers come back here once their pieces are written (see get_block_into)
    let pool: Arc<std::sync::Mutex<Vec<Vec<u8>>>> = Arc::default();
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
            c.get_block_into(&runs[ri].0, buf).await
        })
    }))
    .buffered(threads);
    let mut ri = 0;
    while let Some(r) = st.next().await {
        let data = match r {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                cleanup(&open);
                return Err(e);
            }
            Err(e) => {
                cleanup(&open);
                return Err(CliError::new("downloading", e.to_string(), ""));
            }
        };
        progress.add_sent(data.len() as u64);
        for p in &runs[ri].1 {
            let f = match open.entry(p.job) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let f = std::fs::File::create(&tmps[p.job])
                        .map_err(|e| io_err(format!("writing {}", tmps[p.job].display()), e))?;
                    v.insert(f)
                }
            };
            let bytes = &data[p.off as usize..(p.off + p.len) as usize];
            if let Err(e) = f.write_all(bytes) {
                cleanup(&open);
                return Err(io_err(
                    format!("writing {}", jobs[p.job].local.display()),
                    e,
                ));
            }
            progress.add_done(p.len);
            remaining[p.job] -= p.len;
            if remaining[p.job] == 0 {
                if let Some(f) = open.remove(&p.job) {
                    finish(p.job, f)?;
                    progress.file_done();
                }
            }
        }
        if let Ok(mut p) = pool.lock() {
            p.push(data);
        }
        ri += 1;
    }
    progress.finish();
    Ok(())
}
