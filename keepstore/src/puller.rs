//! The pull worker: takes the entries [`crate::pull`] queued, fetches each block from
//! the servers listed, checks it against its hash and stores it like a PUT.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use keep_format::{Hash, Locator, Token, BLOCK_SIZE_MAX};

use crate::pull::Pull;
use crate::{Error, Keepstore};

impl Keepstore {
    /// Replaces the pull queue and makes sure the worker runs.
    pub(crate) fn set_pulls(&self, pulls: Vec<Pull>) {
        *self.inner.pulls.items.lock() = pulls.into();
        self.inner.pulls.wake.notify_one();
        if !self.inner.pulls.started.swap(true, Ordering::SeqCst) {
            tokio::spawn(self.clone().pull_worker());
        }
    }

    /// Entries still queued (for tests and `/mounts`-style status).
    pub fn pulls_queued(&self) -> usize {
        self.inner.pulls.items.lock().len()
    }

    async fn pull_worker(self) {
        let client = match reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(30))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "keepstore: the pull worker cannot start");
                return;
            }
        };
        loop {
            let next = self.inner.pulls.items.lock().pop_front();
            let Some(p) = next else {
                self.inner.pulls.wake.notified().await;
                continue;
            };
            match self.pull_one(&client, &p).await {
                Ok(how) => tracing::info!(block = %p.hash, how, "pull done"),
                Err(e) => tracing::warn!(block = %p.hash, error = %e, "pull failed"),
            }
        }
    }

    async fn pull_one(&self, client: &reqwest::Client, p: &Pull) -> Result<&'static str, Error> {
        let root: Token = self
            .inner
            .admin_token
            .parse()
            .map_err(|_| Error::Internal("the system root token is malformed".into()))?;
        // already here: renew its protection, nothing to fetch
        let order = self.order(&p.hash);
        let h = p.hash;
        let here = tokio::task::spawn_blocking(move || -> Result<bool, Error> {
            for v in &order {
                if v.stat(&h)?.is_some() {
                    return v.touch(&h);
                }
            }
            Ok(false)
        })
        .await??;
        if here {
            return Ok("already stored");
        }
        let signed =
            self.inner
                .signer
                .sign(&Locator::new(p.hash, p.size), &root, SystemTime::now());
        let mut last = Error::NotFound(p.hash);
        for server in &p.servers {
            let url = format!("{}/{signed}", server.trim_end_matches('/'));
            match fetch(client, &url, &root, p.size).await {
                Ok(bytes) => {
                    if Hash::of(&bytes) != p.hash {
                        tracing::warn!(block = %p.hash, server, "pulled bytes fail their hash: ignored");
                        last = Error::Corrupt(p.hash);
                        continue;
                    }
                    self.store(bytes.into(), &root).await?;
                    return Ok("pulled");
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// GETs a block of `size` bytes (at most `BLOCK_SIZE_MAX`).
async fn fetch(
    client: &reqwest::Client,
    url: &str,
    root: &Token,
    size: u64,
) -> Result<Vec<u8>, Error> {
    let fail = |why: String| Error::Internal(format!("pulling from another keepstore: {why}"));
    let r = client
        .get(url)
        .bearer_auth(root.expose())
        .send()
        .await
        .map_err(|e| fail(e.without_url().to_string()))?;
    if !r.status().is_success() {
        return Err(fail(format!("it answered {}", r.status())));
    }
    let mut out = Vec::with_capacity(size.min(BLOCK_SIZE_MAX) as usize);
    let mut body = r.bytes_stream();
    while let Some(c) = body.next().await {
        let c = c.map_err(|e| fail(e.without_url().to_string()))?;
        if (out.len() + c.len()) as u64 > size {
            return Err(fail("it sent more bytes than the locator's size".into()));
        }
        out.extend_from_slice(&c);
    }
    Ok(out)
}
