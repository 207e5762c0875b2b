//! `PUT /<hash>`: stream the body to a temp file while hashing it, then commit.

use std::sync::Arc;
use std::time::SystemTime;

use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderName};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use keep_format::outboard::Builder;
use keep_format::{Hash, Locator, Token, BLOCK_SIZE_MAX};
use tokio::sync::mpsc;

use crate::volume::{BlockWriter, Volume};
use crate::{auth, Error, Keepstore};

/// Bytes handed to the blocking writer at a time. With one piece queued and one being
/// written, a request holds at most ~3 pieces of body in memory.
const PIECE: usize = 512 << 10;

/// Where the body goes: a new block on a volume, or (the block is already stored) nowhere
/// but the hasher.
enum Target {
    New(Box<dyn BlockWriter>),
    Existing(Arc<dyn Volume>),
}

fn content_length(req: &HttpRequest) -> Result<Option<u64>, Error> {
    match req.headers().get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| Error::BadRequest("the Content-Length header is not a number".into())),
    }
}

pub(crate) async fn put_block(
    req: HttpRequest,
    path: web::Path<String>,
    mut payload: web::Payload,
    ks: web::Data<Keepstore>,
) -> Result<HttpResponse, Error> {
    let token = auth::require(&req)?;
    let want: Hash = path.as_str().parse().map_err(|_| {
        Error::BadRequest(format!(
            "PUT /{}: the URL must be / and the block's 64-digit lowercase hex BLAKE3 hash",
            crate::error::strip_signatures(path.as_str())
        ))
    })?;
    let declared = content_length(&req)?;
    if let Some(n) = declared {
        if n > BLOCK_SIZE_MAX {
            return Err(Error::TooLarge {
                got: n,
                max: BLOCK_SIZE_MAX,
            });
        }
    }
    let target = choose_target(&ks, want, declared.unwrap_or(BLOCK_SIZE_MAX)).await?;

    // the blocking side: writes pieces and feeds the hasher
    let (tx, mut rx) = mpsc::channel::<Bytes>(1);
    let worker = tokio::task::spawn_blocking(move || -> Result<(Builder, Target), Error> {
        let mut builder = Builder::new();
        let mut target = target;
        while let Some(piece) = rx.blocking_recv() {
            builder.update(&piece);
            if let Target::New(w) = &mut target {
                w.write(&piece)?;
            }
        }
        Ok((builder, target))
    });

    let read = read_body(&mut payload, declared, &tx).await;
    drop(tx);
    // if reading failed, dropping the worker's result removes the temp file
    let (builder, target) = match read {
        Ok(_) => worker.await??,
        Err(e) => {
            // a write failure closes the channel early: prefer the worker's reason
            return match worker.await {
                Ok(Err(we)) => Err(we),
                _ => Err(e),
            };
        }
    };
    let size = builder.len();

    tokio::task::spawn_blocking(move || -> Result<(), Error> {
        let (got, outboard) = builder.finish();
        if got != want {
            return Err(Error::HashMismatch { want, got });
        }
        commit(target, &want, &outboard)
    })
    .await??;

    ks.inner.metrics.bytes_in.inc_by(size);
    let signed = ks
        .inner
        .signer
        .sign(&Locator::new(want, size), &token, SystemTime::now())
        .to_string();
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((HeaderName::from_static("x-keep-locator"), signed.clone()))
        .body(signed))
}

/// Makes a block whose bytes went to `target` durable: a new one is committed with its
/// outboard; one already stored only has its mtime refreshed.
fn commit(target: Target, hash: &Hash, outboard: &[u8]) -> Result<(), Error> {
    match target {
        Target::New(w) => w.commit(hash, outboard),
        Target::Existing(v) => {
            if v.touch(hash)? {
                return Ok(());
            }
            // trashed while we read the body: it is gone, we kept no copy
            Err(Error::Internal(format!(
                "block {hash} was removed from {} while it was being stored again: retry the PUT",
                v.path()
            )))
        }
    }
}

impl Keepstore {
    /// Stores a block held in memory for a caller in the same process (keep-web inside
    /// `keep serve`) and returns its locator signed for `token`: what `PUT /<hash>` does,
    /// without the HTTP round trip and with one hashing pass instead of two (the hash is
    /// computed here, not checked against one the caller computed).
    pub async fn store(&self, data: Bytes, token: &Token) -> Result<Locator, Error> {
        let size = data.len() as u64;
        if size > BLOCK_SIZE_MAX {
            return Err(Error::TooLarge {
                got: size,
                max: BLOCK_SIZE_MAX,
            });
        }
        let d = data.clone();
        let (hash, outboard) =
            tokio::task::spawn_blocking(move || keep_format::outboard::outboard(&d)).await?;
        let target = choose_target(self, hash, size).await?;
        tokio::task::spawn_blocking(move || -> Result<(), Error> {
            let mut target = target;
            if let Target::New(w) = &mut target {
                w.write(&data)?;
            }
            commit(target, &hash, &outboard)
        })
        .await??;
        self.inner.metrics.bytes_in.inc_by(size);
        Ok(self
            .inner
            .signer
            .sign(&Locator::new(hash, size), token, SystemTime::now()))
    }
}

/// Reads the body into pieces for the worker. Enforces the size limit and Content-Length.
async fn read_body(
    payload: &mut web::Payload,
    declared: Option<u64>,
    tx: &mpsc::Sender<Bytes>,
) -> Result<u64, Error> {
    // room for one piece plus the chunk that tops it up, so it never reallocates
    let cap = PIECE + (64 << 10);
    let fresh = || BytesMut::with_capacity(cap);
    // a small block gets a small buffer
    let mut buf = BytesMut::with_capacity(declared.map_or(cap, |d| (d as usize).min(cap)));
    let mut total: u64 = 0;
    while let Some(chunk) = payload.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(PayloadError::Incomplete(_)) if declared.is_some() => {
                return Err(Error::LengthMismatch {
                    got: total,
                    want: declared.unwrap_or(0),
                })
            }
            Err(e) => {
                return Err(Error::Body {
                    after: total,
                    why: e.to_string(),
                })
            }
        };
        total += chunk.len() as u64;
        if total > BLOCK_SIZE_MAX {
            return Err(Error::TooLarge {
                got: total,
                max: BLOCK_SIZE_MAX,
            });
        }
        if let Some(want) = declared {
            if total > want {
                return Err(Error::LengthMismatch { got: total, want });
            }
        }
        buf.extend_from_slice(&chunk);
        if buf.len() >= PIECE
            && tx
                .send(std::mem::replace(&mut buf, fresh()).freeze())
                .await
                .is_err()
        {
            return Err(Error::Internal("the block writer stopped".into()));
        }
    }
    if let Some(want) = declared {
        if total != want {
            return Err(Error::LengthMismatch { got: total, want });
        }
    }
    if !buf.is_empty() && tx.send(buf.freeze()).await.is_err() {
        return Err(Error::Internal("the block writer stopped".into()));
    }
    Ok(total)
}

/// The block's own volume if it is already stored; else a writer on the first volume (in
/// rendezvous order) with room for `need` bytes.
async fn choose_target(ks: &Keepstore, hash: Hash, need: u64) -> Result<Target, Error> {
    let order = ks.order(&hash);
    tokio::task::spawn_blocking(move || {
        for v in &order {
            if v.stat(&hash)?.is_some() {
                return Ok(Target::Existing(v.clone()));
            }
        }
        let mut why = Vec::new();
        for v in &order {
            if v.read_only() {
                why.push(format!("{} is read-only", v.path()));
                continue;
            }
            match v.space() {
                // keep a little headroom for the outboard and the filesystem
                Ok(s) if s.free < need + need / 64 + (1 << 20) => {
                    why.push(format!("{} has {} bytes free", v.path(), s.free));
                    continue;
                }
                _ => {}
            }
            match v.writer() {
                Ok(w) => return Ok(Target::New(w)),
                Err(e) if e.is_full() => {
                    why.push(format!("{}: {e}", v.path()));
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Full(why.join("; ")))
    })
    .await?
}
