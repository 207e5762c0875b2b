//! Blocks over every keepstore of the cluster (DESIGN §4a).
//!
//! Each block has its own order of keepstores: rendezvous hashing of the block hash
//! with each keepstore's URL ([`keep_format::rendezvous_order`], the order keep-web,
//! keepstore's volumes and `keep balance` use), so that a block is written first where
//! a reader looks first.
//!
//! - **Read**: the keepstores in order; the next one on 404, 5xx, a timeout, a
//!   connection error, a broken transfer, or bytes that fail the size or BLAKE3 check
//!   (made here, whatever keepstore checked). Keepstores whose failure waiting may cure
//!   are asked again, `retries` more passes, after a growing pause. "Not found" only
//!   when every keepstore said 404.
//! - **Write**: the copies asked for on distinct keepstores, first in order; at most as
//!   many requests at once as copies still missing, the next keepstore taking over from
//!   one that fails. A keepstore's answer counts `X-Keep-Replicas-Stored` copies (1 when
//!   absent, as Arvados clients count). Too few after the retries: a [`WriteError`]
//!   naming every keepstore tried and what it answered.

use bytes::Bytes;
use futures_util::stream::{BoxStream, FuturesUnordered, StreamExt, TryStreamExt};
use keep_format::{rendezvous_order, Hash, Locator};

use crate::client::{truncate, Client};
use crate::error::{Attempt, AttemptError, Error, ReadError, WriteError};

/// What a write stored.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The block's locator, signed for the client's token.
    pub locator: Locator,
    /// Copies stored (the sum of the keepstores' `X-Keep-Replicas-Stored`).
    pub copies: u32,
    /// The keepstores that stored it, in rendezvous order.
    pub keepstores: Vec<String>,
}

/// The most of an error body kept for a message.
const BODY_MAX: usize = 300;

async fn error_body(r: reqwest::Response) -> String {
    let text = r.text().await.unwrap_or_default();
    truncate(text.trim().to_string(), BODY_MAX)
}

impl Client {
    /// Every keepstore: those in [`crate::Options::keepstores`], else those the API lists.
    pub async fn keepstores(&self) -> Result<Vec<String>, Error> {
        let configured = &self.options().keepstores;
        let list = if configured.is_empty() {
            self.cluster().await?.keepstores.clone()
        } else {
            configured
                .iter()
                .map(|k| k.trim_end_matches('/').to_string())
                .collect()
        };
        if list.is_empty() {
            return Err(Error::NoKeepstores {
                api: self.api_url().to_string(),
            });
        }
        Ok(list)
    }

    /// The keepstores in `hash`'s rendezvous order.
    pub async fn order(&self, hash: &Hash) -> Result<Vec<String>, Error> {
        let list = self.keepstores().await?;
        Ok(rendezvous_order(hash, &list)
            .into_iter()
            .map(|i| list[i].clone())
            .collect())
    }

    /// The copies to write: `desired` (a collection's `replication_desired`, a
    /// `--replication`), else the cluster's default.
    pub async fn replication(&self, desired: Option<u32>) -> Result<u32, Error> {
        match desired {
            Some(n) => Ok(n.max(1)),
            None => Ok(self.cluster().await?.default_replication),
        }
    }

    /// One whole block, its size and BLAKE3 hash checked.
    pub async fn read_block(&self, loc: &Locator) -> Result<Bytes, Error> {
        self.read_block_into(loc, Vec::new()).await.map(Bytes::from)
    }

    /// As [`Client::read_block`], into `buf` (cleared first): a caller that hands the
    /// same buffers back keeps their memory mapped instead of faulting in 64 MiB a block.
    pub async fn read_block_into(&self, loc: &Locator, mut buf: Vec<u8>) -> Result<Vec<u8>, Error> {
        buf.clear();
        if loc.size == 0 && loc.hash == Hash::EMPTY {
            return Ok(buf);
        }
        let (buf, r) = self
            .failover(loc, buf, |ks, mut buf| async move {
                let r = self.fetch(&ks, loc, &mut buf).await;
                (buf, r)
            })
            .await;
        r.map(|()| buf)
    }

    /// Asks the keepstores for block `loc` in its rendezvous order, with `attempt`, until
    /// one succeeds; those whose failure waiting may cure are asked again, `retries`
    /// more passes after a growing pause. `state` (a read's buffer) goes through every
    /// attempt and comes back.
    async fn failover<S, T, F, Fut>(
        &self,
        loc: &Locator,
        mut state: S,
        mut attempt: F,
    ) -> (S, Result<T, Error>)
    where
        F: FnMut(String, S) -> Fut,
        Fut: std::future::Future<Output = (S, Result<T, AttemptError>)>,
    {
        let order = match self.order(&loc.hash).await {
            Ok(o) => o,
            Err(e) => return (state, Err(e)),
        };
        let opts = self.options();
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut pending = order;
        for pass in 0..=opts.retries {
            if pass > 0 {
                tokio::time::sleep(opts.backoff_for(pass)).await;
            }
            let mut again = Vec::new();
            for ks in pending {
                let (s, r) = attempt(ks.clone(), state).await;
                state = s;
                match r {
                    Ok(v) => {
                        if !attempts.is_empty() {
                            tracing::info!(
                                block = %loc.hash,
                                keepstore = %ks,
                                failed = attempts.len(),
                                "read the block after failing over"
                            );
                        }
                        return (state, Ok(v));
                    }
                    Err(error) => {
                        tracing::debug!(block = %loc.hash, keepstore = %ks, "read failed: {error}");
                        if error.is_transient() {
                            again.push(ks.clone());
                        }
                        attempts.push(Attempt {
                            keepstore: ks,
                            error,
                        });
                    }
                }
            }
            if again.is_empty() {
                break;
            }
            pending = again;
        }
        let e = ReadError {
            hash: loc.hash,
            size: loc.size,
            attempts,
        };
        (state, Err(e.into()))
    }

    /// Bytes `off..off+len` of a block (`len` > 0), streamed as a keepstore sends them.
    /// keepstore checks a slice against the block's outboard tree before sending it;
    /// the client cannot (it would need the whole block), so use [`Client::read_block`]
    /// when the whole block is wanted anyway. Fails over, as a whole read does, until a
    /// keepstore starts answering; a stream that breaks off later ends with
    /// [`Error::Stream`].
    pub async fn read_range(
        &self,
        loc: &Locator,
        off: u64,
        len: u64,
    ) -> Result<BoxStream<'static, Result<Bytes, Error>>, Error> {
        let end = off.saturating_add(len);
        if len == 0 || end > loc.size {
            return Err(Error::Range {
                hash: loc.hash,
                size: loc.size,
                off,
                end,
            });
        }
        let (_, r) = self
            .failover(loc, (), |ks, ()| async move {
                (
                    (),
                    self.open_range(&ks, loc, off, len).await.map(|r| (ks, r)),
                )
            })
            .await;
        let (keepstore, resp) = r?;
        let (hash, size) = (loc.hash, loc.size);
        Ok(resp
            .bytes_stream()
            .map_err(move |e| Error::Stream {
                hash,
                size,
                keepstore: keepstore.clone(),
                source: e.without_url(),
            })
            .boxed())
    }

    /// `GET <ks>/<locator>` with `Range`: the response once it is a 206 of the right
    /// length (or a 200 of a whole block asked for whole).
    async fn open_range(
        &self,
        ks: &str,
        loc: &Locator,
        off: u64,
        len: u64,
    ) -> Result<reqwest::Response, AttemptError> {
        let timeout = self.options().block_timeout;
        let resp = self
            .http()
            .get(format!("{ks}/{loc}"))
            .bearer_auth(self.token().expose())
            .header("Range", format!("bytes={off}-{}", off + len - 1))
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| AttemptError::from_reqwest(e, timeout))?;
        let status = resp.status().as_u16();
        let whole = status == 200 && off == 0 && len == loc.size;
        if status != 206 && !whole {
            return Err(AttemptError::Status {
                status,
                message: error_body(resp).await,
            });
        }
        match resp.content_length() {
            Some(n) if n != len => Err(AttemptError::Size { got: n, want: len }),
            _ => Ok(resp),
        }
    }

    /// `GET <ks>/<locator>` into `buf`, hashing as the bytes arrive.
    async fn fetch(&self, ks: &str, loc: &Locator, buf: &mut Vec<u8>) -> Result<(), AttemptError> {
        let timeout = self.options().block_timeout;
        let fail = |e: reqwest::Error| AttemptError::from_reqwest(e, timeout);
        buf.clear();
        let mut resp = self
            .http()
            .get(format!("{ks}/{loc}"))
            .bearer_auth(self.token().expose())
            .timeout(timeout)
            .send()
            .await
            .map_err(fail)?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(AttemptError::Status {
                status,
                message: error_body(resp).await,
            });
        }
        if let Some(n) = resp.content_length().filter(|n| *n != loc.size) {
            return Err(AttemptError::Size {
                got: n,
                want: loc.size,
            });
        }
        buf.reserve(loc.size as usize);
        let mut hasher = blake3::Hasher::new();
        while let Some(chunk) = resp.chunk().await.map_err(fail)? {
            if (buf.len() + chunk.len()) as u64 > loc.size {
                return Err(AttemptError::Size {
                    got: (buf.len() + chunk.len()) as u64,
                    want: loc.size,
                });
            }
            hasher.update(&chunk);
            buf.extend_from_slice(&chunk);
        }
        if buf.len() as u64 != loc.size {
            return Err(AttemptError::Size {
                got: buf.len() as u64,
                want: loc.size,
            });
        }
        if Hash::from(hasher.finalize()) != loc.hash {
            return Err(AttemptError::Hash);
        }
        Ok(())
    }

    /// Stores `data` with `copies` copies (None: the cluster's default); hashes it first.
    pub async fn write_block(&self, data: Bytes, copies: Option<u32>) -> Result<Stored, Error> {
        let d = data.clone();
        let hash = if data.len() > (1 << 20) {
            tokio::task::spawn_blocking(move || Hash::of(&d))
                .await
                .map_err(|source| Error::Task {
                    what: "hashing a block",
                    source,
                })?
        } else {
            Hash::of(&d)
        };
        let copies = self.replication(copies).await?;
        self.write_hashed(hash, data, copies).await
    }

    /// Stores `data`, whose BLAKE3 hash is `hash`, on `copies` distinct keepstores.
    pub async fn write_hashed(
        &self,
        hash: Hash,
        data: Bytes,
        copies: u32,
    ) -> Result<Stored, Error> {
        let order = self.order(&hash).await?;
        let want = copies.max(1);
        let opts = self.options();
        let mut stored: Vec<(usize, u32)> = Vec::new();
        let mut locator: Option<Locator> = None;
        let mut attempts = Vec::new();
        let have = |stored: &[(usize, u32)]| stored.iter().map(|s| s.1).sum::<u32>();
        // not yet stored on and not refused for good, in order
        let mut candidates: Vec<usize> = (0..order.len()).collect();
        if want as usize <= order.len() {
            for pass in 0..=opts.retries {
                if pass > 0 {
                    tokio::time::sleep(opts.backoff_for(pass)).await;
                }
                let mut next = candidates.into_iter();
                let mut again = Vec::new();
                let mut inflight = FuturesUnordered::new();
                loop {
                    while have(&stored) + (inflight.len() as u32) < want {
                        let Some(i) = next.next() else { break };
                        let d = data.clone();
                        let ks = order[i].as_str();
                        inflight.push(async move { (i, self.put_one(ks, hash, d, want).await) });
                    }
                    let Some((i, r)) = inflight.next().await else {
                        break;
                    };
                    match r {
                        Ok((loc, n)) => {
                            stored.push((i, n));
                            locator.get_or_insert(loc);
                        }
                        Err(error) => {
                            tracing::debug!(block = %hash, keepstore = %order[i], "write failed: {error}");
                            if error.is_transient() {
                                again.push(i);
                            }
                            attempts.push(Attempt {
                                keepstore: order[i].clone(),
                                error,
                            });
                        }
                    }
                }
                if have(&stored) >= want {
                    break;
                }
                // keepstores never asked this pass stay candidates too
                again.extend(next);
                again.sort_unstable();
                candidates = again;
                if candidates.is_empty() {
                    break;
                }
            }
        }
        stored.sort_unstable();
        let copies = have(&stored);
        match locator {
            Some(locator) if copies >= want => Ok(Stored {
                locator,
                copies,
                keepstores: stored.iter().map(|s| order[s.0].clone()).collect(),
            }),
            _ => Err(WriteError {
                hash,
                size: data.len() as u64,
                wanted: want,
                stored: stored.iter().map(|s| (order[s.0].clone(), s.1)).collect(),
                keepstores: order.len(),
                attempts,
            }
            .into()),
        }
    }

    /// `PUT <ks>/<hash>`: the signed locator and the copies the keepstore reports.
    async fn put_one(
        &self,
        ks: &str,
        hash: Hash,
        data: Bytes,
        want: u32,
    ) -> Result<(Locator, u32), AttemptError> {
        let timeout = self.options().block_timeout;
        let size = data.len() as u64;
        let resp = self
            .http()
            .put(format!("{ks}/{hash}"))
            .bearer_auth(self.token().expose())
            .header("X-Keep-Desired-Replicas", want.to_string())
            .timeout(timeout)
            .body(data)
            .send()
            .await
            .map_err(|e| AttemptError::from_reqwest(e, timeout))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(AttemptError::Status {
                status,
                message: error_body(resp).await,
            });
        }
        let copies = resp
            .headers()
            .get("X-Keep-Replicas-Stored")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(1);
        let text = resp
            .text()
            .await
            .map_err(|e| AttemptError::from_reqwest(e, timeout))?;
        // (a parse error would quote the signed locator: not kept)
        let loc: Locator = text.trim().parse().map_err(|_| AttemptError::Locator)?;
        if loc.hash != hash || loc.size != size {
            return Err(AttemptError::Locator);
        }
        Ok((loc, copies))
    }
}
