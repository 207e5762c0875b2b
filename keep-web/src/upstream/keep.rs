//! The keepstores over HTTP (and the in-process one through [`LocalBlocks`]): verified
//! block slices and block writes, each block's keepstores in rendezvous order.
//!
//! No message here names a signed locator (its `+A` signature is a credential) or a
//! keepstore's URL (an internal address): errors reach clients in 502 bodies. Which
//! keepstore failed is logged (its base URL only).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{StreamExt, TryStreamExt};
use keep_format::{Hash, Locator, Token};

use crate::error::Error;
use crate::upstream::api::ApiClient;
use crate::upstream::http::Http;
use crate::upstream::types::{LocalBlocks, SliceStream};

/// A keepstore's error text as keep-web repeats it: its first line, at most 200 bytes.
fn one_line(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or_default();
    let mut end = line.len().min(200);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_string()
}

pub struct KeepClient {
    http: Http,
    configured: Vec<String>,
    found: tokio::sync::OnceCell<Vec<String>>,
    local: Option<Arc<dyn LocalBlocks>>,
}

impl KeepClient {
    pub fn new(
        http: Http,
        keepstores: Vec<String>,
        local: Option<Arc<dyn LocalBlocks>>,
    ) -> KeepClient {
        KeepClient {
            http,
            configured: keepstores
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            found: tokio::sync::OnceCell::new(),
            local,
        }
    }

    async fn urls(&self, api: &ApiClient) -> Result<&[String], Error> {
        self.found
            .get_or_try_init(|| async {
                if !self.configured.is_empty() {
                    return Ok(self.configured.clone());
                }
                api.keepstore_urls().await
            })
            .await
            .map(Vec::as_slice)
    }

    /// The keepstores in `hash`'s rendezvous order: where the block is written first,
    /// and so where a read finds it first (as keepstore's volumes and the CLI order them).
    async fn ordered(&self, api: &ApiClient, hash: &Hash) -> Result<Vec<&str>, Error> {
        let urls = self.urls(api).await?;
        Ok(keep_format::rendezvous_order(hash, urls)
            .into_iter()
            .map(|i| urls[i].as_str())
            .collect())
    }

    /// Bytes `[off, off+len)` of one block, streamed (keepstore verifies the slice).
    pub async fn slice(
        &self,
        api: &ApiClient,
        locator: &Locator,
        off: u64,
        len: u64,
        token: &Token,
    ) -> Result<SliceStream, Error> {
        if let Some(local) = &self.local {
            if let Some(st) = local.slice(locator, token, off, len).await? {
                return Ok(st);
            }
        }
        let hash = locator.hash;
        let mut last = Error::Upstream(format!("no keepstore has block {hash}"));
        for (i, ks) in self.ordered(api, &hash).await?.into_iter().enumerate() {
            let url = format!("{ks}/{locator}");
            let range = format!("bytes={off}-{}", off + len - 1);
            let r = self
                .http
                .send_idempotent(|c| {
                    c.get(&url)
                        .bearer_auth(token.expose())
                        .header("Range", &range)
                })
                .await;
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    last = Error::http(format!("reading block {hash} from keepstore #{i}"), e);
                    tracing::warn!(keepstore = %ks, "reading block {hash}: {}", last.chain());
                    continue;
                }
            };
            let st = r.status().as_u16();
            let whole = st == 200 && off == 0 && len == locator.size;
            if st == 206 || whole {
                if r.content_length().is_some_and(|n| n != len) {
                    tracing::warn!(keepstore = %ks, "a slice of block {hash} of the wrong length");
                    return Err(Error::Upstream(format!(
                        "keepstore #{i} sent a slice of block {hash} of the wrong length"
                    )));
                }
                return Ok(r
                    .bytes_stream()
                    .map_err(move |e| Error::http(format!("reading block {hash}"), e))
                    .boxed());
            }
            tracing::warn!(keepstore = %ks, "answered {st} for block {hash}");
            last = Error::Upstream(format!("keepstore #{i} answered {st} for block {hash}"));
        }
        Err(last)
    }

    /// Stores one block (at most 64 MiB) and returns its locator signed for `token`: in
    /// this process's own keepstore when there is one (`keep serve`), else on the
    /// keepstores, tried in rendezvous order for the block (a full one is skipped).
    pub async fn put(&self, api: &ApiClient, data: Bytes, token: &Token) -> Result<Locator, Error> {
        let size = data.len() as u64;
        if let Some(local) = &self.local {
            if let Some(l) = local.store(data.clone(), token).await? {
                return Ok(l);
            }
        }
        let hash = if data.len() > (1 << 20) {
            let d = data.clone();
            tokio::task::spawn_blocking(move || Hash::of(&d))
                .await
                .map_err(|source| Error::Task {
                    what: "hashing a block",
                    source,
                })?
        } else {
            Hash::of(&data)
        };
        let order = self.ordered(api, &hash).await?;
        let mut last = Error::Upstream("no keepstore is configured".into());
        let mut full = Vec::new();
        for (i, &ks) in order.iter().enumerate() {
            // a block PUT is idempotent (same hash, same bytes): retried like a read
            let url = format!("{ks}/{hash}");
            let r = self
                .http
                .send_idempotent(|c| c.put(&url).bearer_auth(token.expose()).body(data.clone()))
                .await;
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    last = Error::http(format!("storing block {hash} on keepstore #{i}"), e);
                    tracing::warn!(keepstore = %ks, "storing block {hash}: {}", last.chain());
                    continue;
                }
            };
            let st = r.status();
            let text = r.text().await.unwrap_or_default();
            if st.is_success() {
                // (the parse error would quote the signed locator: not kept)
                let l: Locator = text.trim().parse().map_err(|_| {
                    Error::Upstream(format!(
                        "keepstore #{i} answered something that is not a locator for block {hash}"
                    ))
                })?;
                if l.hash != hash || l.size != size {
                    return Err(Error::Upstream(format!(
                        "keepstore #{i} answered a locator for other data than block {hash}"
                    )));
                }
                return Ok(l);
            }
            // keepstore's error texts name no locator or URL (they are its own messages)
            let text = one_line(&text);
            tracing::warn!(keepstore = %ks, "storing block {hash}: {st}: {text}");
            last = match st.as_u16() {
                401 | 403 => return Err(Error::Forbidden(format!("keepstore #{i}: {text}"))),
                507 => {
                    full.push(format!("keepstore #{i}: {text}"));
                    continue;
                }
                _ => Error::Upstream(format!("keepstore #{i} answered {st}: {text}")),
            };
        }
        // full everywhere it was asked (and no other failure): the client's disk is full
        if !full.is_empty() && full.len() == order.len() {
            return Err(Error::InsufficientStorage(full.join("; ")));
        }
        Err(last)
    }
}
