//! `GET`/`HEAD /<locator>`: verified reads, whole or one `Range`.
//!
//! Every 16 KiB group is checked against the block hash (through the outboard tree)
//! before any of its bytes leave the server. The first piece is read and checked before
//! the response starts, so a corrupt start is a clean 502; a later corrupt piece ends the
//! body stream with an error, which makes actix abort the connection.

use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use keep_format::outboard::{self, Cv};
use keep_format::{Hash, Locator, Token};
use tokio::sync::mpsc;

use crate::range::{self, Wanted};
use crate::volume::{BlockReader, Volume};
use crate::{auth, Error, Keepstore};

/// Groups read and verified per piece: 64 × 16 KiB = 1 MiB.
const GROUPS_PER_PIECE: u64 = 64;
/// Up to this many groups, the outboard nodes are read one by one (pread) instead of
/// reading the whole outboard.
const NODE_READ_LIMIT: u64 = 64;
/// An outboard this small (a block of at most 64 groups) is read whole in one go.
const SMALL_OUTBOARD: u64 = 4096;

/// A block being read: the groups still to send, each checked first.
pub(crate) struct BlockStream {
    ks: Keepstore,
    vol: Arc<dyn Volume>,
    block: Box<dyn BlockReader>,
    hash: Hash,
    len: u64,
    window: Range<u64>,
    cvs: Vec<Cv>,
    first_group: u64,
    next_group: u64,
    end_group: u64,
}

impl BlockStream {
    /// Reads, verifies and returns the next piece of the window (blocking).
    fn next_piece(&mut self) -> Result<Option<Bytes>, Error> {
        if self.next_group >= self.end_group {
            return Ok(None);
        }
        let g0 = self.next_group;
        let g1 = (g0 + GROUPS_PER_PIECE).min(self.end_group);
        let start = outboard::group_bytes(self.len, g0).start;
        let end = outboard::group_bytes(self.len, g1 - 1).end;
        let mut buf = vec![0u8; (end - start) as usize];
        if let Err(e) = self.block.read_exact_at(&mut buf, start) {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                // the file shrank under us, or lies about its length
                return Err(self.corrupt("the data file is shorter than its length"));
            }
            return Err(Error::read(
                format!("reading block {} on {}", self.hash, self.vol.path()),
                e,
            ));
        }
        for g in g0..g1 {
            let r = outboard::group_bytes(self.len, g);
            let slice = &buf[(r.start - start) as usize..(r.end - start) as usize];
            let cv = self.cvs.get((g - self.first_group) as usize);
            if !outboard::check_group(self.len, &self.hash, g, cv, slice) {
                return Err(self.corrupt(&format!("chunk group {g} does not match the hash")));
            }
        }
        self.next_group = g1;
        let a = self.window.start.max(start) - start;
        let b = self.window.end.min(end) - start;
        Ok(Some(Bytes::from(buf).slice(a as usize..b as usize)))
    }

    /// Quarantines the block, counts it, logs it (hash only), and returns the 502 error.
    fn corrupt(&self, why: &str) -> Error {
        quarantine(&self.ks, &*self.vol, &self.hash, why)
    }
}

pub(crate) fn quarantine(ks: &Keepstore, vol: &dyn Volume, hash: &Hash, why: &str) -> Error {
    ks.inner.metrics.corrupt.inc();
    match vol.quarantine(hash) {
        Ok(()) => tracing::error!(
            block = %hash, volume = vol.id(), reason = why,
            "block failed its hash check: moved to quarantine"
        ),
        Err(e) => tracing::error!(
            block = %hash, volume = vol.id(), reason = why, error = %e,
            "block failed its hash check and could not be quarantined"
        ),
    }
    Error::Corrupt(*hash)
}

/// The trusted chaining values of groups `want`, from the outboard (rebuilt if it is
/// missing or has the wrong size). `Err(Corrupt)` if the block or outboard fails.
fn trusted_cvs(
    ks: &Keepstore,
    vol: &dyn Volume,
    block: &dyn BlockReader,
    hash: &Hash,
    want: Range<u64>,
) -> Result<Vec<Cv>, Error> {
    let len = block.len();
    if outboard::group_count(len) == 1 {
        return Ok(Vec::new());
    }
    let expect = outboard::outboard_size(len);
    let io = |e| {
        Error::read(
            format!("reading the outboard of {hash} on {}", vol.path()),
            e,
        )
    };
    let has_outboard = block.outboard_len() == Some(expect);
    let read_nodes =
        has_outboard && want.end - want.start <= NODE_READ_LIMIT && expect > SMALL_OUTBOARD;
    if has_outboard {
        // start the first piece's data and the outboard reads together
        let last = (want.start + GROUPS_PER_PIECE)
            .min(want.end)
            .max(want.start + 1)
            - 1;
        let data =
            outboard::group_bytes(len, want.start).start..outboard::group_bytes(len, last).end;
        let nodes: Vec<Range<u64>> = if read_nodes {
            outboard::path_nodes(len, want.clone())
                .into_iter()
                .map(|i| i * outboard::NODE_SIZE..(i + 1) * outboard::NODE_SIZE)
                .collect()
        } else {
            std::iter::once(0..expect).collect()
        };
        block.prefetch(data, &nodes);
        if read_nodes {
            // then the rest of the outboard, in the background: later reads of this
            // block find every node cached and cost one read (the data group) each
            block.warm_outboard();
        }
    }
    let in_memory: Option<Vec<u8>> = if !has_outboard {
        // missing or damaged outboard: hash the whole block, and rebuild it if it is good
        let mut b = outboard::Builder::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0;
        while at < len {
            let n = ((len - at) as usize).min(buf.len());
            if let Err(e) = block.read_exact_at(&mut buf[..n], at) {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    return Err(quarantine(
                        ks,
                        vol,
                        hash,
                        "the data file is shorter than its length",
                    ));
                }
                return Err(Error::read(
                    format!("reading block {hash} on {}", vol.path()),
                    e,
                ));
            }
            b.update(&buf[..n]);
            at += n as u64;
        }
        let (got, ob) = b.finish();
        if got != *hash {
            return Err(quarantine(
                ks,
                vol,
                hash,
                "the outboard is missing and the data does not match the hash",
            ));
        }
        match vol.write_outboard(hash, &ob) {
            Ok(()) => {
                tracing::warn!(block = %hash, volume = vol.id(), "rebuilt a missing or damaged outboard")
            }
            Err(e) => {
                tracing::warn!(block = %hash, volume = vol.id(), error = %e, "could not rebuild the outboard")
            }
        }
        Some(ob)
    } else if !read_nodes {
        let mut ob = vec![0u8; expect as usize];
        block.read_outboard_at(&mut ob, 0).map_err(io)?;
        Some(ob)
    } else {
        None
    };
    let walked = match &in_memory {
        Some(ob) => outboard::expected_cvs(len, hash, want, |i| {
            let at = (i * outboard::NODE_SIZE) as usize;
            ob.get(at..at + 64)
                .and_then(|s| <[u8; 64]>::try_from(s).ok())
                .ok_or(std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
        }),
        None => outboard::expected_cvs(len, hash, want, |i| {
            let mut node = [0u8; 64];
            block
                .read_outboard_at(&mut node, i * outboard::NODE_SIZE)
                .map(|_| node)
        }),
    };
    match walked.map_err(io)? {
        Ok(cvs) => Ok(cvs),
        Err(m) => Err(quarantine(
            ks,
            vol,
            hash,
            &format!("outboard node {} does not lead to the hash", m.node),
        )),
    }
}

struct Prepared {
    len: u64,
    window: Range<u64>,
    partial: bool,
    /// `None` for HEAD.
    body: Option<(Bytes, BlockStream)>,
}

fn prepare(
    ks: Keepstore,
    hash: Hash,
    range_header: Option<String>,
    head: bool,
) -> Result<Prepared, Error> {
    let mut found = None;
    for v in ks.order(&hash) {
        if let Some(b) = v.open(&hash)? {
            found = Some((v, b));
            break;
        }
    }
    let Some((vol, block)) = found else {
        return Err(Error::NotFound(hash));
    };
    let len = block.len();
    let (window, partial) = match range::parse(range_header.as_deref(), len) {
        Wanted::Whole => (0..len, false),
        Wanted::Part(r) => (r, true),
        Wanted::Unsatisfiable => return Err(Error::RangeNotSatisfiable { len }),
    };
    if head {
        return Ok(Prepared {
            len,
            window,
            partial,
            body: None,
        });
    }
    let groups = if len == 0 {
        0..1
    } else {
        outboard::groups_for(len, window.clone())
    };
    if len > 0 {
        block.will_read(
            outboard::group_bytes(len, groups.start).start
                ..outboard::group_bytes(len, groups.end - 1).end,
        );
    }
    let cvs = trusted_cvs(&ks, &*vol, &*block, &hash, groups.clone())?;
    let mut st = BlockStream {
        ks,
        vol,
        block,
        hash,
        len,
        window: window.clone(),
        cvs,
        first_group: groups.start,
        next_group: groups.start,
        end_group: groups.end,
    };
    let first = st.next_piece()?.unwrap_or_default();
    Ok(Prepared {
        len,
        window,
        partial,
        body: Some((first, st)),
    })
}

pub(crate) async fn get_block(
    req: HttpRequest,
    path: web::Path<String>,
    ks: web::Data<Keepstore>,
) -> Result<HttpResponse, Error> {
    let loc = crate::locator::parse_locator(path.as_str())?;
    let token = auth::require(&req)?;
    ks.inner
        .signer
        .verify(&loc, &token, SystemTime::now())
        .map_err(Error::Signature)?;
    ks.check_token(&token).await?;
    let head = req.method() == Method::HEAD;
    let range_header = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let ks_inner: Keepstore = ks.get_ref().clone();
    let hash = loc.hash;
    let p =
        tokio::task::spawn_blocking(move || prepare(ks_inner, hash, range_header, head)).await??;

    let mut resp = HttpResponse::build(if p.partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    });
    resp.insert_header((header::CONTENT_TYPE, "application/octet-stream"))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::ETAG, format!("\"{hash}\"")));
    if p.partial {
        resp.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", p.window.start, p.window.end - 1, p.len),
        ));
    }
    let size = p.window.end - p.window.start;
    let Some((first, st)) = p.body else {
        return Ok(resp.body(SizedStream::new(
            size,
            stream::empty::<Result<Bytes, Error>>(),
        )));
    };
    let counted = ks.get_ref().clone();
    let count = move |r: &Result<Bytes, Error>| {
        if let Ok(b) = r {
            counted.inner.metrics.bytes_out.inc_by(b.len() as u64);
        }
    };
    Ok(resp.body(SizedStream::new(size, pieces(first, st).inspect(count))))
}

/// The first (already verified) piece, then the rest, read and verified one piece
/// ahead of the consumer by a task; a piece failing its hash ends the stream with the
/// error, so a consumer never gets the bad bytes.
fn pieces(first: Bytes, st: BlockStream) -> BoxStream<'static, Result<Bytes, Error>> {
    let head_piece = stream::once(async move { Ok::<_, Error>(first) });
    if st.next_group >= st.end_group {
        return head_piece.boxed();
    }
    // the rest: a task reads one piece ahead of the client
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, Error>>(1);
    tokio::spawn(async move {
        let mut st = st;
        loop {
            let r = tokio::task::spawn_blocking(move || {
                let r = st.next_piece();
                (st, r)
            })
            .await;
            let (back, r) = match r {
                Ok(v) => v,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            };
            st = back;
            match r {
                Ok(Some(b)) => {
                    if tx.send(Ok(b)).await.is_err() {
                        return; // the client went away
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(block = %st.hash, error = %e, "aborting a GET: the rest of the block is not served");
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    let rest = stream::poll_fn(move |cx| rx.poll_recv(cx));
    head_piece.chain(rest).boxed()
}

impl Keepstore {
    /// Bytes `[off, off + len)` of a block for a caller in the same process (keep-web
    /// inside `keep serve`): the signature is checked and every group verified exactly
    /// as on `GET` with a `Range`, without the HTTP round trip. `NotFound` when no
    /// volume here has the block.
    pub async fn read_slice(
        &self,
        loc: &Locator,
        token: &Token,
        off: u64,
        len: u64,
    ) -> Result<BoxStream<'static, Result<Bytes, Error>>, Error> {
        self.inner
            .signer
            .verify(loc, token, SystemTime::now())
            .map_err(Error::Signature)?;
        self.check_token(token).await?;
        if len == 0 {
            return Ok(stream::empty().boxed());
        }
        let range = format!("bytes={off}-{}", off + len - 1);
        let ks = self.clone();
        let hash = loc.hash;
        let p =
            tokio::task::spawn_blocking(move || prepare(ks, hash, Some(range), false)).await??;
        if p.window != (off..off + len) {
            // the block is shorter than the slice asked for
            return Err(Error::RangeNotSatisfiable { len: p.len });
        }
        let Some((first, st)) = p.body else {
            return Ok(stream::empty().boxed());
        };
        let counted = self.clone();
        Ok(pieces(first, st)
            .inspect(move |r| {
                if let Ok(b) = r {
                    counted.inner.metrics.bytes_out.inc_by(b.len() as u64);
                }
            })
            .boxed())
    }
}
