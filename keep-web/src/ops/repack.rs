//! Small-write repacking: every PUT stores at least one block, so a collection written
//! file by file through WebDAV collects many tiny blocks (one per small file). After a
//! write, when a collection holds [`MIN_SMALL_BLOCKS`] blocks under [`SMALL_BLOCK`]
//! bytes, the small files that use them are read back (verified), packed together into
//! full blocks, and committed as one new version, but only if the collection is still
//! the version that was read (`if_portable_data_hash`): a concurrent write wins and the
//! repack waits for the next write. Older versions keep their blocks, so their PDHs
//! still serve the old content.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::StreamExt;
use keep_format::{Locator, Token};
use parking_lot::Mutex;
use serde_json::json;

use crate::blocks::{BlockCutter, Run};
use crate::error::Error;
use crate::upstream::{Upstream, View};

/// Blocks smaller than this count as small.
pub const SMALL_BLOCK: u64 = 4 << 20;
/// A collection is repacked once it holds this many small blocks.
pub const MIN_SMALL_BLOCKS: usize = 32;

/// Only files up to this size are moved into packed blocks.
const SMALL_FILE: u64 = 8 << 20;

/// Collections being repacked now (one repack at a time per collection), each with
/// whether another write came in meanwhile (the repack then runs again when done).
#[derive(Default)]
pub struct Repacker {
    busy: Mutex<HashMap<String, bool>>,
}

impl Repacker {
    /// Starts a repack of `uuid` in the background if it needs one and none is running.
    pub fn after_write(self: &Arc<Self>, up: &Arc<Upstream>, uuid: &str, token: &Token) {
        let mut busy = self.busy.lock();
        if let Some(again) = busy.get_mut(uuid) {
            *again = true;
            return;
        }
        busy.insert(uuid.to_string(), false);
        drop(busy);
        let (me, up, uuid, token) = (self.clone(), up.clone(), uuid.to_string(), token.clone());
        tokio::spawn(async move {
            loop {
                match repack(&up, &uuid, &token).await {
                    Ok(Some(n)) => {
                        tracing::info!(collection = %uuid, files = n, "repacked small blocks")
                    }
                    Ok(None) => {}
                    // a concurrent write changed it: that write asked for another round
                    Err(Error::PreconditionFailed(_)) => {}
                    Err(e) => {
                        tracing::warn!(collection = %uuid, error = %e.chain(), "repack failed")
                    }
                }
                let mut busy = me.busy.lock();
                match busy.get_mut(&uuid) {
                    Some(again) if *again => *again = false,
                    _ => {
                        busy.remove(&uuid);
                        return;
                    }
                }
            }
        });
    }
}

/// Whether `l` is one of the small blocks repacking gathers.
fn is_small(l: &Locator) -> bool {
    l.size > 0 && l.size < SMALL_BLOCK
}

/// Whether a collection seen as `view`, plus the one small block a write just added, may
/// need a repack: a cheap count on the cached index, so that a write to a collection
/// without many small blocks costs no manifest fetch and parse in the background.
pub fn worth_a_look(view: &View) -> bool {
    let small = view.index.blocks().iter().filter(|l| is_small(l)).count();
    small + 1 >= MIN_SMALL_BLOCKS
}

/// Repacks `uuid` if it holds enough small blocks; returns how many files moved.
pub async fn repack(up: &Arc<Upstream>, uuid: &str, token: &Token) -> Result<Option<usize>, Error> {
    let (m, pdh) = up.manifest(uuid, token).await?;
    let small: HashSet<usize> = m
        .blocks()
        .iter()
        .enumerate()
        .filter(|(_, l)| is_small(l))
        .map(|(i, _)| i)
        .collect();
    if small.len() < MIN_SMALL_BLOCKS {
        return Ok(None);
    }
    let files: Vec<&String> = m
        .files()
        .iter()
        .filter(|(_, f)| {
            f.size() <= SMALL_FILE
                && f.segments
                    .iter()
                    .any(|s| small.contains(&(s.block as usize)))
        })
        .map(|(p, _)| p)
        .collect();
    if files.len() < 2 {
        return Ok(None);
    }

    // read each file (verified by keepstore), pack into full blocks
    let mut blocks = BlockCutter::new(up.clone(), token.clone(), None);
    let mut placed: Vec<(&String, Vec<Run>)> = Vec::new();
    for path in files {
        let Some(f) = m.file(path) else { continue };
        let mut runs = Vec::new();
        for seg in &f.segments {
            let loc = &m.blocks()[seg.block as usize];
            let mut st = up.block_slice(loc, seg.offset, seg.len, token).await?;
            while let Some(chunk) = st.next().await {
                blocks.write(&chunk?, Some(&mut runs)).await?;
            }
        }
        placed.push((path, runs));
    }
    let packed = blocks.finish().await?;
    let mut out = m.clone();
    for (path, runs) in &placed {
        out.put_file(
            path,
            runs.iter()
                .map(|(b, off, len)| (packed[*b].clone(), *off, *len)),
        )
        .map_err(|e| Error::Internal(format!("repacking {path:?}: {e}")))?;
    }
    let body = json!({
        "collection": { "manifest_text": out.to_text() },
        "if_portable_data_hash": pdh.to_string(),
    });
    up.update_collection(uuid, token, &body).await?;
    Ok(Some(placed.len()))
}
