//! A volume in an S3 bucket (Garage, MinIO, Ceph RGW, AWS S3…), with the directory
//! volume's semantics.
//!
//! Objects, under the configured prefix `P` (`""` or ending in `/`):
//!
//! | key | what |
//! |---|---|
//! | `P.keep-volume-id` | the volume's id (written at first start; shared by every keepstore using this bucket and prefix) |
//! | `P<hash>` | a block's bytes |
//! | `P<hash>.ob` | its BLAKE3 outboard tree |
//! | `Precent/<hash>` | a small marker rewritten by every write and touch: S3 cannot change an object's mtime, so a block's mtime is the later of its own and this marker's `Last-Modified` (whole seconds) |
//! | `Ptrash/<hash>.<deadline>[.ob]` | trashed copies, deleted after the deadline (Unix seconds) |
//! | `Pquarantine/<hash>.<unix time>[.ob]` | blocks that failed their hash |
//!
//! Every S3 object appears whole or not at all, and a block is its data object: a
//! write puts the marker, then the outboard, then the data, so the data never appears
//! without its outboard. A block being written is spooled to an unnamed temp file
//! (in `$TMPDIR`) and uploaded with its length once it is whole; an abandoned write
//! leaves nothing.
//!
//! The check-then-delete race (S3 has no conditional delete): a trash checks the mtime,
//! copies the block to `trash/`, deletes it, then reads `recent/<hash>` again; a touch
//! or write writes `recent/<hash>` first and then checks that the data is there. So
//! either the trash sees the new marker and puts the block back, or the touch sees the
//! block gone and fails (the client's PUT is answered 5xx and stores it again). This
//! needs read-after-write consistency (Garage's default `consistent` mode, AWS S3 since
//! 2020, MinIO).
//!
//! The methods are synchronous (the [`Volume`] contract): each runs its requests on
//! the tokio runtime with `Handle::block_on` and must be called from a blocking thread.

use std::fmt;
use std::future::Future;
use std::io::{self, Seek, Write};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use futures_util::future::join_all;
use keep_format::Hash;
use parking_lot::Mutex;
use rand::Rng;
use reqwest::header::{CONTENT_LENGTH, ETAG, LAST_MODIFIED, RANGE};
use reqwest::StatusCode;
use rusty_s3::actions::ListObjectsV2;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use tokio::runtime::Handle;

use crate::volume::{BlockMeta, BlockReader, BlockWriter, Space, Volume};
use crate::Error;

/// One `{ s3 = { … } }` entry of `[keepstore] volumes`.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// `http(s)://host[:port]` of the S3 API.
    pub endpoint: String,
    pub bucket: String,
    /// The region the request signatures name (`garage` for Garage's default,
    /// `us-east-1` for MinIO's).
    pub region: String,
    /// Prepended to every key (a `/` is added if missing); `[A-Za-z0-9._/-]` only.
    pub prefix: String,
    /// `None`: from `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `None`: from `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// `true`: `endpoint/bucket/key` (Garage, MinIO); `false`: `bucket.endpoint/key`
    /// (AWS's virtual-hosted style).
    pub path_style: bool,
    /// Connecting may take this long.
    pub connect_timeout: Duration,
    /// A response (or the next piece of a body) may keep us waiting this long: a
    /// stalled server fails the request after it.
    pub read_timeout: Duration,
    /// One request, body included, may take this long.
    pub request_timeout: Duration,
}

impl S3Config {
    /// Defaults: region `us-east-1`, no prefix, credentials from the environment,
    /// path-style, 5 s to connect, 30 s of silence, 5 min per request.
    pub fn new(endpoint: impl Into<String>, bucket: impl Into<String>) -> Self {
        S3Config {
            endpoint: endpoint.into(),
            bucket: bucket.into(),
            region: "us-east-1".into(),
            prefix: String::new(),
            access_key_id: None,
            secret_access_key: None,
            path_style: true,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(300),
        }
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("path_style", &self.path_style)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// What an S3 volume reports as its free and total space (S3 has no such notion).
pub const UNLIMITED: u64 = i64::MAX as u64;

/// How long each presigned request URL is valid (it is used at once).
const SIGN_FOR: Duration = Duration::from_secs(900);
/// Objects read whole (the volume id, an outboard) are at most this big.
const SMALL_OBJECT_MAX: u64 = 1 << 20;
/// Outboard ranges closer than this are fetched in one request.
const MERGE_GAP: u64 = 16 << 10;
const ID_KEY: &str = ".keep-volume-id";

/// A volume in an S3 bucket. Cheap to share: readers and writers hold the inside.
pub struct S3Volume {
    inner: Arc<Inner>,
    id: String,
}

struct Inner {
    bucket: Bucket,
    creds: Credentials,
    prefix: String,
    client: reqwest::Client,
    rt: Handle,
    /// For messages: `s3://bucket/prefix at endpoint`.
    path: String,
    read: AtomicU64,
}

/// What HEAD says about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Head {
    len: u64,
    /// Last-Modified, whole seconds.
    mtime: u64,
    etag: Option<String>,
}

/// One listed object.
struct Listed {
    key: String,
    size: u64,
    mtime: u64,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn io_err(e: Error) -> io::Error {
    io::Error::other(e)
}

/// `true` for the characters a prefix may hold.
fn prefix_ok(p: &str) -> bool {
    p.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
        && !p.starts_with('/')
        && !p.contains("//")
        && p.len() <= 512
}

impl S3Volume {
    /// Connects, checks the credentials and the bucket, and reads (or writes, the first
    /// time) the volume id. Blocking: call it from a blocking thread of a tokio runtime
    /// (see [`crate::Keepstore::start`]).
    pub fn open(cfg: &S3Config) -> Result<S3Volume, Error> {
        let where_ = format!(
            "s3://{}/{} at {}",
            cfg.bucket,
            cfg.prefix.trim_end_matches('/'),
            cfg.endpoint
        );
        let verr = |why: String| Error::Volume {
            path: where_.clone(),
            why,
        };
        let rt = Handle::try_current().map_err(|_| {
            verr("an S3 volume needs a tokio runtime: open it with Keepstore::start".into())
        })?;
        let endpoint: reqwest::Url = cfg.endpoint.parse().map_err(|e| {
            verr(format!(
                "endpoint {:?} is not a URL ({e}): write it like \"http://127.0.0.1:3900\"",
                cfg.endpoint
            ))
        })?;
        let style = if cfg.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket =
            Bucket::new(endpoint, style, cfg.bucket.clone(), cfg.region.clone()).map_err(|e| {
                verr(format!(
                    "bucket {:?} at {:?}: {e}",
                    cfg.bucket, cfg.endpoint
                ))
            })?;
        if !prefix_ok(&cfg.prefix) {
            return Err(verr(format!(
                "prefix {:?}: use at most 512 characters of [A-Za-z0-9._/-], not starting with / and without //",
                cfg.prefix
            )));
        }
        let mut prefix = cfg.prefix.clone();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        let key = cfg
            .access_key_id
            .clone()
            .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok())
            .filter(|k| !k.is_empty());
        let secret = cfg
            .secret_access_key
            .clone()
            .or_else(|| std::env::var("AWS_SECRET_ACCESS_KEY").ok())
            .filter(|k| !k.is_empty());
        let (Some(key), Some(secret)) = (key, secret) else {
            return Err(verr(
                "no credentials: set access_key_id and secret_access_key in the volume's entry, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in keepstore's environment".into(),
            ));
        };
        let client = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout)
            .timeout(cfg.request_timeout)
            .build()
            .map_err(|e| verr(format!("building the HTTP client: {e}")))?;
        let inner = Arc::new(Inner {
            bucket,
            creds: Credentials::new(key, secret),
            prefix,
            client,
            rt,
            path: where_.clone(),
            read: AtomicU64::new(0),
        });
        let id = inner
            .block_on(inner.volume_id())
            .map_err(|e| verr(format!("reading or writing the volume id: {e}")))?;
        Ok(S3Volume { inner, id })
    }
}

impl Inner {
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }
    fn data_key(&self, h: &Hash) -> String {
        self.key(&h.to_hex())
    }
    fn ob_key(&self, h: &Hash) -> String {
        self.key(&format!("{h}.ob"))
    }
    fn recent_key(&self, h: &Hash) -> String {
        self.key(&format!("recent/{h}"))
    }

    fn fail(&self, what: &str, e: reqwest::Error) -> Error {
        let timeout = e.is_timeout();
        let why = if timeout {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else {
            "the request failed"
        };
        Error::S3 {
            volume: self.path.clone(),
            what: what.to_string(),
            why: why.to_string(),
            timeout,
            source: Some(e.without_url()),
        }
    }

    /// An error for an unexpected status: names S3's error code when the body has one.
    async fn status_error(&self, what: &str, r: reqwest::Response) -> Error {
        let status = r.status();
        let body = read_at_most(r, 4096).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        let code = text
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map(|(c, _)| format!(" ({c})"))
            .unwrap_or_default();
        Error::S3 {
            volume: self.path.clone(),
            what: what.to_string(),
            why: format!("the server answered {status}{code}"),
            timeout: false,
            source: None,
        }
    }

    async fn send(
        &self,
        what: &str,
        rq: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        rq.send().await.map_err(|e| self.fail(what, e))
    }

    async fn head(&self, key: &str) -> Result<Option<Head>, Error> {
        let what = format!("HEAD {key}");
        let url = self
            .bucket
            .head_object(Some(&self.creds), key)
            .sign(SIGN_FOR);
        let r = self.send(&what, self.client.head(url)).await?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !r.status().is_success() {
            return Err(self.status_error(&what, r).await);
        }
        let h = r.headers();
        let len = h
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let mtime = h
            .get(LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        let (Some(len), Some(mtime)) = (len, mtime) else {
            return Err(Error::S3 {
                volume: self.path.clone(),
                what,
                why: "the answer lacks Content-Length or Last-Modified".into(),
                timeout: false,
                source: None,
            });
        };
        let etag = h
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Some(Head { len, mtime, etag }))
    }

    /// Bytes `range` of an object (or all of a small one); `None` if it does not exist.
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Option<Bytes>, Error> {
        let what = match &range {
            Some(r) => format!("GET {key} bytes {}-{}", r.start, r.end.saturating_sub(1)),
            None => format!("GET {key}"),
        };
        let r = self.open_get(&what, key, range.clone()).await?;
        let Some(r) = r else { return Ok(None) };
        let want = match &range {
            Some(rg) => rg.end - rg.start,
            None => SMALL_OBJECT_MAX,
        };
        let body = read_at_most(r, want)
            .await
            .map_err(|e| self.fail(&what, e))?;
        Ok(Some(body))
    }

    /// Starts a GET (ranged if asked); `None` on 404.
    async fn open_get(
        &self,
        what: &str,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<Option<reqwest::Response>, Error> {
        let url = self
            .bucket
            .get_object(Some(&self.creds), key)
            .sign(SIGN_FOR);
        let mut rq = self.client.get(url);
        if let Some(r) = &range {
            if r.is_empty() {
                return Ok(Some(
                    self.send(
                        what,
                        self.client.head(
                            self.bucket
                                .head_object(Some(&self.creds), key)
                                .sign(SIGN_FOR),
                        ),
                    )
                    .await?,
                ));
            }
            rq = rq.header(RANGE, format!("bytes={}-{}", r.start, r.end - 1));
        }
        let r = self.send(what, rq).await?;
        match r.status() {
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::OK | StatusCode::PARTIAL_CONTENT => Ok(Some(r)),
            _ => Err(self.status_error(what, r).await),
        }
    }

    async fn put(&self, key: &str, body: reqwest::Body, len: u64) -> Result<(), Error> {
        let what = format!("PUT {key}");
        let url = self
            .bucket
            .put_object(Some(&self.creds), key)
            .sign(SIGN_FOR);
        let r = self
            .send(
                &what,
                self.client.put(url).header(CONTENT_LENGTH, len).body(body),
            )
            .await?;
        if !r.status().is_success() {
            return Err(self.status_error(&what, r).await);
        }
        Ok(())
    }

    async fn put_bytes(&self, key: &str, b: Bytes) -> Result<(), Error> {
        let len = b.len() as u64;
        self.put(key, reqwest::Body::from(b), len).await
    }

    /// Server-side copy; `false` if `src` does not exist.
    async fn copy(&self, src: &str, dst: &str) -> Result<bool, Error> {
        let what = format!("copy {src} to {dst}");
        let source = format!("{}/{src}", self.bucket.name());
        let mut action = self.bucket.put_object(Some(&self.creds), dst);
        action
            .headers_mut()
            .insert("x-amz-copy-source", source.clone());
        let url = action.sign(SIGN_FOR);
        let r = self
            .send(
                &what,
                self.client.put(url).header("x-amz-copy-source", source),
            )
            .await?;
        match r.status() {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => {
                // a copy can fail after its 200 started: the error is then in the body
                let body = read_at_most(r, 64 << 10)
                    .await
                    .map_err(|e| self.fail(&what, e))?;
                if String::from_utf8_lossy(&body).contains("<Error>") {
                    return Err(Error::S3 {
                        volume: self.path.clone(),
                        what,
                        why: "the copy failed after it started".into(),
                        timeout: false,
                        source: None,
                    });
                }
                Ok(true)
            }
            _ => Err(self.status_error(&what, r).await),
        }
    }

    /// Deletes an object (a missing one is not an error).
    async fn delete(&self, key: &str) -> Result<(), Error> {
        let what = format!("DELETE {key}");
        let url = self
            .bucket
            .delete_object(Some(&self.creds), key)
            .sign(SIGN_FOR);
        let r = self.send(&what, self.client.delete(url)).await?;
        if r.status().is_success() || r.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(self.status_error(&what, r).await)
    }

    /// One page of keys starting with `prefix`, after `token`.
    async fn list_page(
        &self,
        prefix: &str,
        token: Option<&str>,
    ) -> Result<(Vec<Listed>, Option<String>), Error> {
        let what = format!("list {prefix}*");
        let mut action = self.bucket.list_objects_v2(Some(&self.creds));
        action.with_prefix(prefix.to_string());
        if let Some(t) = token {
            action.with_continuation_token(t.to_string());
        }
        let url = action.sign(SIGN_FOR);
        let r = self.send(&what, self.client.get(url)).await?;
        if !r.status().is_success() {
            return Err(self.status_error(&what, r).await);
        }
        // a page of 1000 keys is ~300 KiB of XML
        let body = read_at_most(r, 16 << 20)
            .await
            .map_err(|e| self.fail(&what, e))?;
        let text = String::from_utf8_lossy(&body);
        let bad = |why: String| Error::S3 {
            volume: self.path.clone(),
            what: what.clone(),
            why,
            timeout: false,
            source: None,
        };
        let page = ListObjectsV2::parse_response(&text)
            .map_err(|e| bad(format!("the listing does not parse: {e}")))?;
        let mut out = Vec::with_capacity(page.contents.len());
        for c in page.contents {
            let mtime = c
                .last_modified
                .parse::<jiff::Timestamp>()
                .map_err(|e| bad(format!("LastModified {:?}: {e}", c.last_modified)))?
                .as_second();
            out.push(Listed {
                key: c.key,
                size: c.size,
                mtime: u64::try_from(mtime).unwrap_or(0),
            });
        }
        Ok((out, page.next_continuation_token))
    }

    /// Writes `recent/<hash>` with content that differs every time (so its ETag does).
    async fn mark_recent(&self, h: &Hash) -> Result<(), Error> {
        let ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let nonce: u64 = rand::rng().random();
        self.put_bytes(
            &self.recent_key(h),
            Bytes::from(format!("{ns} {nonce:016x}\n")),
        )
        .await
    }

    async fn volume_id(&self) -> Result<String, Error> {
        let key = self.key(ID_KEY);
        let valid = |b: &Bytes| -> Option<String> {
            let s = std::str::from_utf8(b).ok()?.trim().to_string();
            (!s.is_empty()
                && s.len() <= 100
                && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
            .then_some(s)
        };
        if let Some(b) = self.get(&key, None).await? {
            return valid(&b).ok_or_else(|| Error::S3 {
                volume: self.path.clone(),
                what: format!("GET {key}"),
                why: "the volume id object is empty or malformed: delete it to get a new id".into(),
                timeout: false,
                source: None,
            });
        }
        let bytes: [u8; 16] = rand::rng().random();
        let id = format!("vol-{}", hex::encode(bytes));
        self.put_bytes(&key, Bytes::from(format!("{id}\n"))).await?;
        // two keepstores starting at once: whichever id landed last is everyone's
        match self.get(&key, None).await? {
            Some(b) => Ok(valid(&b).unwrap_or(id)),
            None => Ok(id),
        }
    }

    /// The block's mtime (ns): the later of the data's and the marker's.
    fn mtime_ns(data: &Head, recent: &Option<Head>) -> u64 {
        let s = recent
            .as_ref()
            .map_or(data.mtime, |r| r.mtime.max(data.mtime));
        s.saturating_mul(1_000_000_000)
    }

    async fn trash(
        &self,
        h: &Hash,
        deadline: u64,
        if_mtime_ns: Option<u64>,
    ) -> Result<bool, Error> {
        let (data_key, ob_key, recent_key) = (self.data_key(h), self.ob_key(h), self.recent_key(h));
        let (data, recent) = tokio::join!(self.head(&data_key), self.head(&recent_key));
        let Some(data) = data? else { return Ok(false) };
        let recent = recent?;
        if if_mtime_ns.is_some_and(|want| want != Self::mtime_ns(&data, &recent)) {
            return Ok(false);
        }
        let t_key = self.key(&format!("trash/{h}.{deadline}"));
        let t_ob = format!("{t_key}.ob");
        self.copy(&ob_key, &t_ob).await?;
        if !self.copy(&data_key, &t_key).await? {
            let _ = self.delete(&t_ob).await;
            return Ok(false);
        }
        self.delete(&data_key).await?;
        self.delete(&ob_key).await?;
        // a write or touch between our check and the delete rewrote the marker first:
        // put the block back
        let after = self.head(&recent_key).await?;
        let tag = |m: &Option<Head>| m.as_ref().map(|m| (m.etag.clone(), m.mtime));
        if tag(&after) != tag(&recent) {
            tracing::warn!(block = %h, volume = %self.path, "block written or touched while being trashed: kept");
            self.copy(&t_ob, &ob_key).await?;
            self.copy(&t_key, &data_key).await?;
            self.delete(&t_key).await?;
            self.delete(&t_ob).await?;
            return Ok(false);
        }
        Ok(true)
    }

    async fn untrash(&self, h: &Hash) -> Result<bool, Error> {
        let prefix = self.key(&format!("trash/{h}."));
        let mut newest: Option<u64> = None;
        let mut token = None;
        loop {
            let (page, next) = self.list_page(&prefix, token.as_deref()).await?;
            for l in page {
                if let Ok(d) = l.key[prefix.len()..].parse::<u64>() {
                    newest = Some(newest.map_or(d, |n: u64| n.max(d)));
                }
            }
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let Some(d) = newest else { return Ok(false) };
        let t_key = format!("{prefix}{d}");
        let t_ob = format!("{t_key}.ob");
        // like a write: marker, outboard, data
        self.mark_recent(h).await?;
        self.copy(&t_ob, &self.ob_key(h)).await?;
        if !self.copy(&t_key, &self.data_key(h)).await? {
            return Ok(false);
        }
        self.delete(&t_key).await?;
        self.delete(&t_ob).await?;
        Ok(true)
    }

    async fn empty_trash(&self, now: u64) -> Result<usize, Error> {
        let prefix = self.key("trash/");
        let mut token = None;
        let mut n = 0;
        loop {
            let (page, next) = self.list_page(&prefix, token.as_deref()).await?;
            for l in page {
                let rest = &l.key[prefix.len()..];
                let Some((hex, tail)) = rest.split_once('.') else {
                    continue;
                };
                let Ok(h) = hex.parse::<Hash>() else { continue };
                let (deadline, is_ob) = match tail.strip_suffix(".ob") {
                    Some(d) => (d, true),
                    None => (tail, false),
                };
                let Ok(deadline) = deadline.parse::<u64>() else {
                    continue;
                };
                if deadline > now {
                    continue;
                }
                self.delete(&l.key).await?;
                if !is_ob {
                    n += 1;
                    // the marker outlives nothing: drop it unless the block is back
                    if self.head(&self.data_key(&h)).await?.is_none() {
                        self.delete(&self.recent_key(&h)).await?;
                    }
                }
            }
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(n)
    }

    async fn quarantine(&self, h: &Hash) -> Result<(), Error> {
        let q = self.key(&format!("quarantine/{h}.{}", unix_now()));
        self.copy(&self.ob_key(h), &format!("{q}.ob")).await?;
        self.copy(&self.data_key(h), &q).await?;
        self.delete(&self.data_key(h)).await?;
        self.delete(&self.ob_key(h)).await
    }

    /// Every block whose hex hash starts with `hex`, in hash order, with its mtime: the
    /// data listing merged with the `recent/` listing.
    async fn index(&self, hex: &str, f: &mut dyn FnMut(Hash, BlockMeta)) -> Result<(), Error> {
        let data_prefix = self.key(hex);
        let recent_prefix = self.key(&format!("recent/{hex}"));
        let mut data = Lister::new(data_prefix);
        let mut recent = Lister::new(recent_prefix);
        let plen = self.prefix.len();
        let rlen = self.prefix.len() + "recent/".len();
        let mut pending_recent: Option<(Hash, u64)> = None;
        while let Some(l) = data.next(self).await? {
            let rest = &l.key[plen..];
            // the data keys are hex; everything else (id, recent/, trash/, quarantine/
            // and any foreign object) sorts before "0" or after "f"
            if rest.as_bytes().first().is_some_and(|&c| c > b'f') {
                break;
            }
            let Ok(h) = rest.parse::<Hash>() else {
                continue;
            };
            // advance the marker listing up to this hash
            let mut mtime = l.mtime;
            loop {
                if pending_recent.is_none() {
                    pending_recent = match recent.next(self).await? {
                        Some(r) => r.key[rlen..].parse::<Hash>().ok().map(|rh| (rh, r.mtime)),
                        None => break,
                    };
                    if pending_recent.is_none() {
                        continue;
                    }
                }
                match pending_recent {
                    Some((rh, _)) if rh < h => pending_recent = None,
                    Some((rh, rm)) if rh == h => {
                        mtime = mtime.max(rm);
                        pending_recent = None;
                        break;
                    }
                    _ => break,
                }
            }
            f(
                h,
                BlockMeta {
                    size: l.size,
                    mtime_ns: mtime.saturating_mul(1_000_000_000),
                },
            );
        }
        Ok(())
    }
}

/// Pages through a listing on demand.
struct Lister {
    prefix: String,
    token: Option<String>,
    page: std::vec::IntoIter<Listed>,
    done: bool,
}

impl Lister {
    fn new(prefix: String) -> Self {
        Lister {
            prefix,
            token: None,
            page: Vec::new().into_iter(),
            done: false,
        }
    }

    async fn next(&mut self, s3: &Inner) -> Result<Option<Listed>, Error> {
        loop {
            if let Some(l) = self.page.next() {
                return Ok(Some(l));
            }
            if self.done {
                return Ok(None);
            }
            let (page, next) = s3.list_page(&self.prefix, self.token.as_deref()).await?;
            self.done = next.is_none();
            self.token = next;
            self.page = page.into_iter();
        }
    }
}

/// Reads a response body, at most `max` bytes (the rest is dropped with the connection).
async fn read_at_most(mut r: reqwest::Response, max: u64) -> Result<Bytes, reqwest::Error> {
    let mut out = BytesMut::new();
    while let Some(chunk) = r.chunk().await? {
        let room = (max as usize).saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() as u64 >= max {
            break;
        }
    }
    Ok(out.freeze())
}

impl Volume for S3Volume {
    fn id(&self) -> &str {
        &self.id
    }

    fn path(&self) -> String {
        self.inner.path.clone()
    }

    fn kind(&self) -> &'static str {
        "s3"
    }

    fn stat(&self, hash: &Hash) -> Result<Option<BlockMeta>, Error> {
        let s = &self.inner;
        let (dk, rk) = (s.data_key(hash), s.recent_key(hash));
        s.block_on(async {
            let (data, recent) = tokio::join!(s.head(&dk), s.head(&rk));
            let Some(data) = data? else { return Ok(None) };
            let recent = recent?;
            Ok(Some(BlockMeta {
                size: data.len,
                mtime_ns: Inner::mtime_ns(&data, &recent),
            }))
        })
    }

    fn open(&self, hash: &Hash) -> Result<Option<Box<dyn BlockReader>>, Error> {
        let s = &self.inner;
        let (dk, ok) = (s.data_key(hash), s.ob_key(hash));
        let (data, ob) = s.block_on(async { tokio::join!(s.head(&dk), s.head(&ok)) });
        let Some(data) = data? else { return Ok(None) };
        let ob_len = ob?.map(|h| h.len);
        Ok(Some(Box::new(S3Reader {
            s3: s.clone(),
            data_key: s.data_key(hash),
            ob_key: s.ob_key(hash),
            len: data.len,
            ob_len,
            state: Mutex::new(ReadState::default()),
        })))
    }

    fn writer(&self) -> Result<Box<dyn BlockWriter>, Error> {
        let file = tempfile::tempfile().map_err(|e| {
            Error::io(
                "creating a temp file to spool a block for S3 (check TMPDIR)",
                e,
            )
        })?;
        Ok(Box::new(S3Writer {
            s3: self.inner.clone(),
            file,
            len: 0,
        }))
    }

    fn touch(&self, hash: &Hash) -> Result<bool, Error> {
        let s = &self.inner;
        s.block_on(async {
            // marker first, then look: see the module doc on races
            s.mark_recent(hash).await?;
            Ok(s.head(&s.data_key(hash)).await?.is_some())
        })
    }

    fn write_outboard(&self, hash: &Hash, outboard: &[u8]) -> Result<(), Error> {
        let s = &self.inner;
        s.block_on(s.put_bytes(&s.ob_key(hash), Bytes::copy_from_slice(outboard)))
    }

    fn quarantine(&self, hash: &Hash) -> Result<(), Error> {
        self.inner.block_on(self.inner.quarantine(hash))
    }

    fn index(&self, prefix: &str, f: &mut dyn FnMut(Hash, BlockMeta)) -> Result<(), Error> {
        self.inner.block_on(self.inner.index(prefix, f))
    }

    fn trash(&self, hash: &Hash, deadline: u64, if_mtime_ns: Option<u64>) -> Result<bool, Error> {
        self.inner
            .block_on(self.inner.trash(hash, deadline, if_mtime_ns))
    }

    fn untrash(&self, hash: &Hash) -> Result<bool, Error> {
        self.inner.block_on(self.inner.untrash(hash))
    }

    fn empty_trash(&self, now: u64) -> Result<usize, Error> {
        self.inner.block_on(self.inner.empty_trash(now))
    }

    fn space(&self) -> Result<Space, Error> {
        Ok(Space {
            free: UNLIMITED,
            total: UNLIMITED,
        })
    }

    fn read_bytes(&self) -> u64 {
        self.inner.read.load(Ordering::Relaxed)
    }
}

/// What a reader has fetched ahead and where its sequential stream stands.
#[derive(Default)]
struct ReadState {
    /// Fetched data pieces: (offset, bytes).
    data: Vec<(u64, Bytes)>,
    /// Fetched outboard pieces.
    ob: Vec<(u64, Bytes)>,
    /// The bytes the caller said it will read in order.
    plan: Option<Range<u64>>,
    /// An open GET streaming the plan from `pos`.
    stream: Option<Sequential>,
}

struct Sequential {
    pos: u64,
    resp: reqwest::Response,
    rest: Bytes,
}

impl Sequential {
    async fn read(&mut self, buf: &mut [u8]) -> Result<(), io::Error> {
        let mut at = 0;
        while at < buf.len() {
            if self.rest.is_empty() {
                match self.resp.chunk().await {
                    Ok(Some(c)) => self.rest = c,
                    Ok(None) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Err(e) => return Err(io::Error::other(e.without_url())),
                }
            }
            let n = self.rest.len().min(buf.len() - at);
            buf[at..at + n].copy_from_slice(&self.rest[..n]);
            self.rest = self.rest.slice(n..);
            at += n;
        }
        self.pos += buf.len() as u64;
        Ok(())
    }
}

/// Copies `[off, off + buf.len())` out of fetched pieces, if one holds all of it.
fn from_pieces(pieces: &[(u64, Bytes)], off: u64, buf: &mut [u8]) -> bool {
    let end = off + buf.len() as u64;
    for (start, b) in pieces {
        if *start <= off && end <= start + b.len() as u64 {
            let a = (off - start) as usize;
            buf.copy_from_slice(&b[a..a + buf.len()]);
            return true;
        }
    }
    false
}

struct S3Reader {
    s3: Arc<Inner>,
    data_key: String,
    ob_key: String,
    len: u64,
    ob_len: Option<u64>,
    state: Mutex<ReadState>,
}

/// The object was deleted (trashed, quarantined) since the reader opened it.
fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        "the object is gone (trashed or quarantined meanwhile)",
    )
}

impl S3Reader {
    fn fetched(&self, b: Option<Bytes>, want: u64) -> io::Result<Bytes> {
        match b {
            None => Err(gone()),
            Some(b) if (b.len() as u64) < want => Err(io::ErrorKind::UnexpectedEof.into()),
            Some(b) => Ok(b),
        }
    }
}

impl BlockReader for S3Reader {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let end = off + buf.len() as u64;
        if end > self.len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let mut st = self.state.lock();
        let counted = |n: usize| {
            self.s3.read.fetch_add(n as u64, Ordering::Relaxed);
        };
        if from_pieces(&st.data, off, buf) {
            counted(buf.len());
            return Ok(());
        }
        // the next piece of an open stream
        if let Some(seq) = st.stream.as_mut() {
            if seq.pos == off {
                match self.s3.block_on(seq.read(buf)) {
                    Ok(()) => {
                        counted(buf.len());
                        return Ok(());
                    }
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(e),
                    // the stream broke (a timeout while the client was slow, a reset):
                    // ask again for what is left
                    Err(_) => st.stream = None,
                }
            }
        }
        // a planned run: stream it from here in one request
        if let Some(plan) = st.plan.clone() {
            if plan.start <= off && end < plan.end {
                let what = format!("GET {} bytes {off}-{}", self.data_key, plan.end - 1);
                let resp = self
                    .s3
                    .block_on(self.s3.open_get(&what, &self.data_key, Some(off..plan.end)))
                    .map_err(io_err)?
                    .ok_or_else(gone)?;
                let mut seq = Sequential {
                    pos: off,
                    resp,
                    rest: Bytes::new(),
                };
                self.s3.block_on(seq.read(buf))?;
                st.stream = Some(seq);
                counted(buf.len());
                return Ok(());
            }
        }
        let b = self
            .s3
            .block_on(self.s3.get(&self.data_key, Some(off..end)))
            .map_err(io_err)?;
        let b = self.fetched(b, buf.len() as u64)?;
        buf.copy_from_slice(&b[..buf.len()]);
        counted(buf.len());
        Ok(())
    }

    fn outboard_len(&self) -> Option<u64> {
        self.ob_len
    }

    fn read_outboard_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        if from_pieces(&self.state.lock().ob, off, buf) {
            return Ok(());
        }
        let end = off + buf.len() as u64;
        let b = self
            .s3
            .block_on(self.s3.get(&self.ob_key, Some(off..end)))
            .map_err(io_err)?;
        let b = self.fetched(b, buf.len() as u64)?;
        buf.copy_from_slice(&b[..buf.len()]);
        Ok(())
    }

    fn prefetch(&self, data: Range<u64>, outboard: &[Range<u64>]) {
        // merge nearby outboard ranges: the nodes of one walk cluster near its leaves
        let ob_len = self.ob_len.unwrap_or(0);
        let mut rs: Vec<Range<u64>> = outboard
            .iter()
            .map(|r| r.start.min(ob_len)..r.end.min(ob_len))
            .filter(|r| !r.is_empty())
            .collect();
        rs.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<u64>> = Vec::new();
        for r in rs {
            match merged.last_mut() {
                Some(last) if r.start <= last.end + MERGE_GAP => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        let data = data.start.min(self.len)..data.end.min(self.len);
        let s3 = &self.s3;
        let (d, obs) = s3.block_on(async {
            let d = async {
                if data.is_empty() {
                    None
                } else {
                    Some(s3.get(&self.data_key, Some(data.clone())).await)
                }
            };
            let obs = join_all(merged.iter().map(|r| s3.get(&self.ob_key, Some(r.clone()))));
            tokio::join!(d, obs)
        });
        let mut st = self.state.lock();
        if let Some(Ok(Some(b))) = d {
            if b.len() as u64 == data.end - data.start {
                st.data.push((data.start, b));
            }
        }
        for (r, got) in merged.iter().zip(obs) {
            match got {
                Ok(Some(b)) if b.len() as u64 == r.end - r.start => st.ob.push((r.start, b)),
                // only a hint: the read itself will ask again and report
                _ => {}
            }
        }
    }

    fn will_read(&self, data: Range<u64>) {
        self.state.lock().plan = Some(data);
    }
}

struct S3Writer {
    s3: Arc<Inner>,
    file: std::fs::File,
    len: u64,
}

impl BlockWriter for S3Writer {
    fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        self.file.write_all(data).map_err(|e| {
            Error::io(
                "spooling a block for S3 in a temp file (check TMPDIR's free space)",
                e,
            )
        })?;
        self.len += data.len() as u64;
        Ok(())
    }

    fn commit(self: Box<Self>, hash: &Hash, outboard: &[u8]) -> Result<(), Error> {
        let S3Writer { s3, mut file, len } = *self;
        file.rewind()
            .map_err(|e| Error::io("rewinding the spooled block", e))?;
        let ob = Bytes::copy_from_slice(outboard);
        s3.block_on(async {
            // marker, outboard, data: the data (the block itself) appears last, whole
            s3.mark_recent(hash).await?;
            s3.put_bytes(&s3.ob_key(hash), ob).await?;
            let f = tokio::fs::File::from_std(file);
            let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
                f,
                256 << 10,
            ));
            s3.put(&s3.data_key(hash), body, len).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert!(prefix_ok(""));
        assert!(prefix_ok("keep/vol-1"));
        assert!(!prefix_ok("/keep"));
        assert!(!prefix_ok("a//b"));
        assert!(!prefix_ok("a b"));
        assert!(!prefix_ok(&"a".repeat(513)));
    }

    #[test]
    fn pieces() {
        let p = vec![(10u64, Bytes::from_static(b"abcdef"))];
        let mut buf = [0u8; 3];
        assert!(from_pieces(&p, 11, &mut buf));
        assert_eq!(&buf, b"bcd");
        assert!(!from_pieces(&p, 14, &mut buf));
        assert!(!from_pieces(&p, 9, &mut buf));
    }

    #[test]
    fn debug_hides_the_secret() {
        let mut c = S3Config::new("http://x", "b");
        c.secret_access_key = Some("very-secret".into());
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
