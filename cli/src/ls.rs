//! `keep ls ID[/path] [-s]`: list the files of a collection (recursively, depth first
//! and by name), one per line; empty directories end with `/`. `-s` puts each file's size in bytes first.

use std::io::Write;

use clap::Args;
use keep_format::{EntryKind, FileIndex};

use crate::client::{broken_pipe_ok, connect, parse_target, read_collection};
use crate::error::CliError;

#[derive(Debug, Args)]
pub struct LsArgs {
    /// A collection UUID or PDH, optionally with a directory or file inside it.
    #[arg(value_name = "ID[/PATH]")]
    pub target: String,
    /// Print each file's size in bytes before its name.
    #[arg(short = 's', long)]
    pub sizes: bool,
}

pub const EXAMPLES: &str = "Examples:
  keep ls zzzzz-4zz18-0123456789abcde
  keep ls -s zzzzz-4zz18-0123456789abcde/run1";

/// The lines `keep ls` prints, paths relative to `base`.
pub fn lines(idx: &FileIndex, base: &str, sizes: bool) -> Vec<String> {
    let mut out = Vec::new();
    let fmt = |size: Option<u64>, name: &str| match (sizes, size) {
        (true, Some(s)) => format!("{s:>12} {name}"),
        (true, None) => format!("{:>12} {name}", "-"),
        _ => name.to_string(),
    };
    if let Some(EntryKind::File { size }) = idx.stat(base) {
        let name = base.rsplit('/').next().unwrap_or(base);
        out.push(fmt(Some(size), name));
        return out;
    }
    // depth first, by name (the order of `FileIndex::walk`, as ZIP downloads use it)
    for (rel, path, kind) in idx.walk(base) {
        match kind {
            EntryKind::File { size } => out.push(fmt(Some(size), &rel)),
            EntryKind::Dir if idx.list(&path).is_some_and(|l| l.is_empty()) => {
                out.push(fmt(None, &format!("{rel}/")))
            }
            EntryKind::Dir => {}
        }
    }
    out
}

pub async fn run(args: LsArgs) -> Result<(), CliError> {
    let t = parse_target(&args.target)?;
    let client = connect()?;
    let (_, m) = read_collection(&client, &t.id).await?;
    let idx = FileIndex::new(&m);
    if idx.stat(&t.path).is_none() {
        return Err(CliError::new(
            format!("listing {}", args.target),
            format!("no file or directory {:?} in the collection", t.path),
            format!("list the whole collection with keep ls {}", t.id),
        ));
    }
    let mut out = std::io::stdout().lock();
    for l in lines(&idx, &t.path, args.sizes) {
        writeln!(out, "{l}").map_err(|e| broken_pipe_ok(e, "writing to stdout"))?;
    }
    out.flush()
        .map_err(|e| broken_pipe_ok(e, "writing to stdout"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use keep_format::{Hash, Locator, Manifest};

    #[test]
    fn lists_recursively() {
        let mut m = Manifest::new();
        let l = Locator::new(Hash::of(b"abc"), 3);
        m.put_file("b/c.txt", [(l.clone(), 0, 3)]).unwrap();
        m.put_file("a.txt", [(l.clone(), 0, 1)]).unwrap();
        m.put_dir("e").unwrap();
        m.put_file("f.txt", [(l.clone(), 1, 1)]).unwrap();
        m.put_file("b/a/z.txt", [(l.clone(), 2, 1)]).unwrap();
        let idx = FileIndex::new(&m);
        assert_eq!(
            lines(&idx, "", false),
            ["a.txt", "b/a/z.txt", "b/c.txt", "e/", "f.txt"]
        );
        assert_eq!(
            lines(&idx, "b", true),
            ["           1 a/z.txt", "           3 c.txt"]
        );
        assert_eq!(lines(&idx, "a.txt", false), ["a.txt"]);
    }
}
