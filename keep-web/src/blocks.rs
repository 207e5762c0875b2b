//! Blocks, both ways: [`BlockCutter`] cuts bytes into blocks of at most 64 MiB and
//! stores them (PUT and repacking), [`file_stream`] streams a byte range of a file from
//! its blocks (GET, ZIP).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use keep_format::{Locator, Token, BLOCK_SIZE_MAX};

use crate::error::Error;
use crate::upstream::{Upstream, View};

/// How many block slices are requested ahead of the one being sent.
const READ_AHEAD: usize = 2;

/// One block slice to fetch, owned so the stream can outlive the request.
struct Part {
    locator: Locator,
    off: u64,
    len: u64,
}

/// Bytes `[start, end)` of file `path` of `view`, streamed from its blocks in order with
/// up to [`READ_AHEAD`] slices requested ahead (memory is bounded by what the open
/// responses buffer); every byte sent is added to `counter`.
pub fn file_stream(
    up: &Arc<Upstream>,
    view: &View,
    path: &str,
    range: std::ops::Range<u64>,
    token: &Token,
    counter: Option<Arc<AtomicU64>>,
) -> BoxStream<'static, Result<Bytes, Error>> {
    let parts: Vec<Part> = match view.index.file(path) {
        Some(f) => f
            .slices(range)
            .map(|s| Part {
                locator: view.signed(s.locator),
                off: s.block_offset,
                len: s.len,
            })
            .collect(),
        None => Vec::new(),
    };
    let (up, token) = (up.clone(), token.clone());
    stream::iter(parts)
        .map(move |p| {
            let up = up.clone();
            let token = token.clone();
            async move { up.block_slice(&p.locator, p.off, p.len, &token).await }
        })
        .buffered(READ_AHEAD)
        .try_flatten()
        .inspect_ok(move |b| {
            if let Some(c) = &counter {
                c.fetch_add(b.len() as u64, Ordering::Relaxed);
            }
        })
        .boxed()
}

/// Where bytes written to a [`BlockCutter`] landed: (block index, offset in it, length).
pub type Run = (usize, u64, u64);

/// Bytes cut into blocks of at most 64 MiB as they come: each full block is stored on
/// keepstore while the next one fills, so at most two blocks are in memory.
pub struct BlockCutter {
    up: Arc<Upstream>,
    tok: Token,
    buf: BytesMut,
    /// Bytes still expected, when known (sizes the next buffer).
    expected: Option<u64>,
    pending: Option<tokio::task::JoinHandle<Result<Locator, Error>>>,
    stored: Vec<Locator>,
}

impl BlockCutter {
    pub fn new(up: Arc<Upstream>, tok: Token, expected: Option<u64>) -> BlockCutter {
        let mut c = BlockCutter {
            up,
            tok,
            buf: BytesMut::new(),
            expected,
            pending: None,
            stored: Vec::new(),
        };
        c.buf = c.fresh_buffer();
        c
    }

    fn fresh_buffer(&self) -> BytesMut {
        let block = BLOCK_SIZE_MAX as usize;
        BytesMut::with_capacity(self.expected.map_or(1 << 20, |l| (l as usize).min(block)))
    }

    /// Blocks handed to keepstore so far (stored or on their way).
    fn sent(&self) -> usize {
        self.stored.len() + usize::from(self.pending.is_some())
    }

    /// Appends `data`; where it landed goes to `runs` when given.
    pub async fn write(
        &mut self,
        mut data: &[u8],
        mut runs: Option<&mut Vec<Run>>,
    ) -> Result<(), Error> {
        let block = BLOCK_SIZE_MAX as usize;
        if let Some(e) = &mut self.expected {
            *e = e.saturating_sub(data.len() as u64);
        }
        while !data.is_empty() {
            let take = (block - self.buf.len()).min(data.len());
            if let Some(r) = runs.as_deref_mut() {
                r.push((self.sent(), self.buf.len() as u64, take as u64));
            }
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == block {
                let next = self.fresh_buffer();
                let full = std::mem::replace(&mut self.buf, next).freeze();
                self.send(full).await?;
            }
        }
        Ok(())
    }

    async fn send(&mut self, data: Bytes) -> Result<(), Error> {
        let (up, tok) = (self.up.clone(), self.tok.clone());
        let task = tokio::spawn(async move { up.put_block(data, &tok).await });
        if let Some(prev) = self.pending.replace(task) {
            self.stored.push(join(prev).await?);
        }
        Ok(())
    }

    /// Stores what is left; the locators of every block, in order.
    pub async fn finish(mut self) -> Result<Vec<Locator>, Error> {
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf).freeze();
            self.send(last).await?;
        }
        if let Some(last) = self.pending.take() {
            self.stored.push(join(last).await?);
        }
        Ok(self.stored)
    }
}

async fn join(h: tokio::task::JoinHandle<Result<Locator, Error>>) -> Result<Locator, Error> {
    h.await.map_err(|source| Error::Task {
        what: "a block upload stopped",
        source,
    })?
}
