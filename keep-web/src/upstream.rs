//! Talking to the API server and the keepstores, and the shared manifest cache.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use keep_format::{FileIndex, Hash, Locator, Manifest, Pdh, Token};
use serde_json::Value;

use crate::error::Error;
use keep_format::dav::{self as props, DeadProps};

/// Page size for list calls (the API's maximum).
const PAGE: usize = 1000;
/// Parsed manifests kept (by PDH).
const CACHE_ENTRIES: usize = 256;
/// How long a token's view of a collection is reused without asking the API again:
/// a revoked token or a changed collection shows within this time.
const VIEW_TTL: Duration = Duration::from_secs(1);
/// A view is refetched this long before its block signatures expire.
const SIG_MARGIN: Duration = Duration::from_secs(300);
/// (token, collection id) views kept; the map is cleared when it grows past this.
const VIEW_ENTRIES: usize = 10_000;
/// Block slices at most this long are kept in memory once read (small files, the
/// heads of files): a hot 4 KiB file is then served without a keepstore round trip.
const SMALL_SLICE: u64 = 64 << 10;
/// What the small-slice cache may hold in all.
const SLICE_CACHE_BYTES: usize = 64 << 20;

/// keepstore verifies blocks in groups of this many bytes.
const GROUP: u64 = 16 << 10;

/// (block, 16 KiB group index).
type SliceKey = (Hash, u64);

/// Verified (by keepstore) 16 KiB groups of blocks, oldest dropped first.
#[derive(Default)]
struct SliceCache {
    map: HashMap<SliceKey, Bytes>,
    order: VecDeque<SliceKey>,
    bytes: usize,
}

impl SliceCache {
    fn insert(&mut self, k: SliceKey, b: Bytes) {
        if self.map.contains_key(&k) {
            return;
        }
        self.bytes += b.len();
        self.map.insert(k, b);
        self.order.push_back(k);
        while self.bytes > SLICE_CACHE_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(b) = self.map.remove(&old) {
                self.bytes -= b.len();
            }
        }
    }
}

/// One collection version as a request sees it: the shared index plus the block
/// signatures the API gave this request's token.
pub struct View {
    pub modified: SystemTime,
    pub index: Arc<FileIndex>,
    pub pdh: Pdh,
    /// The token may change the collection (false for a PDH, a past version, anonymous).
    pub can_write: bool,
    /// Dead properties stored by PROPPATCH.
    pub dead: Arc<DeadProps>,
    sigs: Arc<HashMap<Hash, Locator>>,
}

/// A token's view of one collection id, with when it was last confirmed by the API.
struct CachedView {
    view: Arc<View>,
    /// `modified_at` as the API gave it: a change of properties alone changes it.
    modified_at: String,
    checked: Instant,
    /// The earliest expiry among the view's block signatures.
    sigs_until: SystemTime,
}

impl View {
    /// The locator to send to keepstore for `l` (signed for this request's token).
    pub fn signed(&self, l: &Locator) -> Locator {
        self.sigs.get(&l.hash).cloned().unwrap_or_else(|| l.clone())
    }
}

/// A slice of a block as a stream of verified bytes.
pub type SliceStream = BoxStream<'static, Result<Bytes, Error>>;

/// Blocks keep-web can read without HTTP: the keepstore of the same `keep serve`
/// process. It must check the locator's signature for the token and verify every byte,
/// exactly as a keepstore `GET` does.
pub trait LocalBlocks: Send + Sync {
    /// `Ok(None)`: no such block here (the keepstores are then asked over HTTP).
    fn slice(
        &self,
        locator: &Locator,
        token: &Token,
        off: u64,
        len: u64,
    ) -> futures_util::future::BoxFuture<'static, Result<Option<SliceStream>, Error>>;

    /// Stores a block here and returns its locator signed for `token`; `Ok(None)` when
    /// this process has nowhere to store it (the keepstores are then used over HTTP).
    fn store(
        &self,
        _data: Bytes,
        _token: &Token,
    ) -> futures_util::future::BoxFuture<'static, Result<Option<Locator>, Error>> {
        Box::pin(async { Ok(None) })
    }
}

/// A child of a project, filter group or user home as the API lists it.
#[derive(Clone, Debug)]
pub struct Item {
    pub uuid: String,
    pub name: String,
    pub is_collection: bool,
    pub size: Option<u64>,
    pub modified: SystemTime,
}

pub struct Upstream {
    http: reqwest::Client,
    api_url: String,
    keepstores: tokio::sync::OnceCell<Vec<String>>,
    configured_keepstores: Vec<String>,
    cache: Mutex<Cache>,
    /// Keyed by (BLAKE3 of the token, collection id as requested): no token is kept.
    views: Mutex<HashMap<(Hash, String), CachedView>>,
    slices: Mutex<SliceCache>,
    local: Option<Arc<dyn LocalBlocks>>,
    /// Background repacking of small blocks after writes.
    pub repacker: Arc<crate::repack::Repacker>,
}

#[derive(Default)]
struct Cache {
    map: HashMap<Pdh, Arc<FileIndex>>,
    order: VecDeque<Pdh>,
}

fn api_status(st: reqwest::StatusCode, what: &str) -> Error {
    match st.as_u16() {
        401 => Error::Unauthorized,
        403 | 404 => Error::NotFound,
        400 | 422 => Error::NotFound,
        _ => Error::Upstream(format!("API answered {st} for {what}")),
    }
}

fn modified(v: &Value) -> SystemTime {
    v.get("modified_at")
        .and_then(Value::as_str)
        .and_then(crate::time::parse_rfc3339)
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

impl Upstream {
    pub fn new(
        api_url: &str,
        keepstores: Vec<String>,
        local: Option<Arc<dyn LocalBlocks>>,
    ) -> Result<Upstream, Error> {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Upstream {
            http,
            api_url: api_url.trim_end_matches('/').to_string(),
            keepstores: tokio::sync::OnceCell::new(),
            configured_keepstores: keepstores
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            cache: Mutex::new(Cache::default()),
            views: Mutex::new(HashMap::new()),
            slices: Mutex::new(SliceCache::default()),
            local,
            repacker: Arc::default(),
        })
    }

    pub(crate) async fn api_get(
        &self,
        path: &str,
        token: &Token,
        query: &[(&str, String)],
    ) -> Result<Value, Error> {
        let what = path.split('?').next().unwrap_or(path);
        let r = self
            .http
            .get(format!("{}{path}", self.api_url))
            .query(query)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| Error::Upstream(format!("API request {what}: {e}")))?;
        if !r.status().is_success() {
            return Err(api_status(r.status(), what));
        }
        r.json()
            .await
            .map_err(|e| Error::Upstream(format!("API response for {what}: {e}")))
    }

    /// A collection by UUID or PDH as `token` sees it, with its index (parsed once per
    /// PDH, shared by every token). Within [`VIEW_TTL`] a token's view is reused; after
    /// that the API is asked for the PDH alone, and the manifest is fetched again only
    /// when the PDH changed or the block signatures are about to expire.
    pub async fn collection(&self, id: &str, token: &Token) -> Result<Arc<View>, Error> {
        let key = (Hash::of(token.expose().as_bytes()), id.to_string());
        let now = SystemTime::now();
        let lock_err = |_| Error::Internal("view cache lock poisoned".into());
        let known = {
            let views = self.views.lock().map_err(lock_err)?;
            match views.get(&key) {
                Some(c) if c.sigs_until > now + SIG_MARGIN => {
                    if c.checked.elapsed() < VIEW_TTL {
                        return Ok(c.view.clone());
                    }
                    Some((c.modified_at.clone(), c.view.clone()))
                }
                _ => None,
            }
        };
        if let Some((modified_at, old)) = known {
            let v = self
                .api_get(
                    &format!("/arvados/v1/collections/{id}"),
                    token,
                    &[(
                        "select",
                        r#"["portable_data_hash","modified_at","can_write"]"#.into(),
                    )],
                )
                .await?;
            let same = v
                .get("portable_data_hash")
                .and_then(Value::as_str)
                .and_then(|p| p.parse::<Pdh>().ok())
                == Some(old.pdh)
                && v.get("modified_at")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    == modified_at;
            if same {
                let view = Arc::new(View {
                    modified: old.modified,
                    index: old.index.clone(),
                    pdh: old.pdh,
                    can_write: v.get("can_write").and_then(Value::as_bool).unwrap_or(false),
                    dead: old.dead.clone(),
                    sigs: old.sigs.clone(),
                });
                let mut views = self.views.lock().map_err(lock_err)?;
                if let Some(c) = views.get_mut(&key) {
                    c.view = view.clone();
                    c.checked = Instant::now();
                }
                return Ok(view);
            }
        }
        let (view, modified_at, sigs_until) = self.fetch_collection(id, token).await?;
        let mut views = self.views.lock().map_err(lock_err)?;
        if views.len() >= VIEW_ENTRIES {
            views.clear();
        }
        views.insert(
            key,
            CachedView {
                view: view.clone(),
                modified_at,
                checked: Instant::now(),
                sigs_until,
            },
        );
        Ok(view)
    }

    /// The whole record, manifest included: the index comes from the shared cache when
    /// the PDH is known, the signatures are this token's.
    async fn fetch_collection(
        &self,
        id: &str,
        token: &Token,
    ) -> Result<(Arc<View>, String, SystemTime), Error> {
        let v = self
            .api_get(
                &format!("/arvados/v1/collections/{id}"),
                token,
                &[(
                    "select",
                    r#"["portable_data_hash","modified_at","manifest_text","properties","can_write"]"#
                        .into(),
                )],
            )
            .await?;
        let text = v
            .get("manifest_text")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let pdh: Pdh = v
            .get("portable_data_hash")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Upstream("collection without portable_data_hash".into()))?
            .parse()
            .map_err(|e| Error::Upstream(format!("collection portable_data_hash: {e}")))?;
        let cached = self
            .cache
            .lock()
            .map_err(|_| Error::Internal("cache lock poisoned".into()))?
            .map
            .get(&pdh)
            .cloned();
        let index = match cached {
            Some(i) => i,
            None => {
                let m = Manifest::parse(text)
                    .map_err(|e| Error::Upstream(format!("manifest of {id}: {e}")))?;
                let i = Arc::new(FileIndex::new(&m));
                let mut c = self
                    .cache
                    .lock()
                    .map_err(|_| Error::Internal("cache lock poisoned".into()))?;
                if c.map.insert(pdh, i.clone()).is_none() {
                    c.order.push_back(pdh);
                    while c.order.len() > CACHE_ENTRIES {
                        if let Some(old) = c.order.pop_front() {
                            c.map.remove(&old);
                        }
                    }
                }
                i
            }
        };
        // the signed locators: cheaper than a parse, and per token
        let sigs: HashMap<Hash, Locator> = text
            .split_ascii_whitespace()
            .filter(|w| w.len() > 66 && w.contains("+A"))
            .filter_map(|w| w.parse::<Locator>().ok())
            .map(|l| (l.hash, l))
            .collect();
        let sigs_until = sigs
            .values()
            .filter_map(|l| l.signature())
            .map(|(_, exp)| UNIX_EPOCH + Duration::from_secs(exp.into()))
            .min()
            // no signed block (an empty collection): nothing expires
            .unwrap_or(SystemTime::now() + Duration::from_secs(365 * 86400));
        let view = Arc::new(View {
            modified: modified(&v),
            index,
            pdh,
            can_write: v.get("can_write").and_then(Value::as_bool).unwrap_or(false),
            dead: Arc::new(props::from_properties(v.get("properties"))),
            sigs: Arc::new(sigs),
        });
        let modified_at = v
            .get("modified_at")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok((view, modified_at, sigs_until))
    }

    async fn list_all(&self, path: &str, token: &Token) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        loop {
            let v = self
                .api_get(
                    path,
                    token,
                    &[
                        ("limit", PAGE.to_string()),
                        ("offset", out.len().to_string()),
                    ],
                )
                .await?;
            let items = match v.get("items") {
                Some(Value::Array(a)) => a.clone(),
                _ => Vec::new(),
            };
            let avail = v
                .get("items_available")
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize;
            let n = items.len();
            out.extend(items);
            if n == 0 || out.len() >= avail {
                return Ok(out);
            }
        }
    }

    /// What a project, filter group or user's home contains.
    pub async fn contents(&self, uuid: &str, token: &Token) -> Result<Vec<Item>, Error> {
        let items = self
            .list_all(&format!("/arvados/v1/groups/{uuid}/contents"), token)
            .await?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for v in items {
            let Some(u) = v.get("uuid").and_then(Value::as_str) else {
                continue;
            };
            let is_collection = u.get(6..11) == Some("4zz18");
            let name = v
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .unwrap_or(u)
                .replace('/', "_");
            if name == "." || name == ".." || !seen.insert(name.clone()) {
                continue;
            }
            out.push(Item {
                uuid: u.to_string(),
                name,
                is_collection,
                size: v.get("file_size_total").and_then(Value::as_u64),
                modified: modified(&v),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Checks that `uuid` (a group) is readable.
    pub async fn group(&self, uuid: &str, token: &Token) -> Result<(), Error> {
        self.api_get(&format!("/arvados/v1/groups/{uuid}"), token, &[])
            .await
            .map(|_| ())
    }

    /// (username, uuid) of each user the token may read.
    pub async fn users(&self, token: &Token) -> Result<Vec<(String, String)>, Error> {
        let items = self.list_all("/arvados/v1/users", token).await?;
        let mut out: Vec<(String, String)> = items
            .iter()
            .filter_map(|v| {
                let name = v.get("username").and_then(Value::as_str)?;
                let uuid = v.get("uuid").and_then(Value::as_str)?;
                (!name.is_empty() && !name.contains('/'))
                    .then(|| (name.to_string(), uuid.to_string()))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// The keepstores in `hash`'s rendezvous order: where the block is written first,
    /// and so where a read finds it first (as keepstore's volumes and the CLI order them).
    async fn keepstores_for(&self, hash: &Hash) -> Result<Vec<&str>, Error> {
        let urls = self.keepstore_urls().await?;
        Ok(keep_format::rendezvous_order(hash, urls)
            .into_iter()
            .map(|i| urls[i].as_str())
            .collect())
    }

    async fn keepstore_urls(&self) -> Result<&[String], Error> {
        self.keepstores
            .get_or_try_init(|| async {
                if !self.configured_keepstores.is_empty() {
                    return Ok(self.configured_keepstores.clone());
                }
                let r = self
                    .http
                    .get(format!("{}/arvados/v1/config", self.api_url))
                    .send()
                    .await
                    .map_err(|e| Error::Upstream(format!("API config: {e}")))?;
                let v: Value = r
                    .json()
                    .await
                    .map_err(|e| Error::Upstream(format!("API config: {e}")))?;
                let urls: Vec<String> = match v.get("keepstore_urls") {
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|u| u.trim_end_matches('/').to_string())
                        .collect(),
                    _ => Vec::new(),
                };
                if urls.is_empty() {
                    return Err(Error::Upstream("the API lists no keepstores".into()));
                }
                Ok::<Vec<String>, Error>(urls)
            })
            .await
            .map(Vec::as_slice)
    }

    /// Bytes `[off, off+len)` of one block, streamed (keepstore verifies the slice).
    /// Small slices come from memory after their first read; only a locator that
    /// carries the signature the API gave this token's view may use them.
    pub async fn block_slice(
        &self,
        locator: &Locator,
        off: u64,
        len: u64,
        token: &Token,
    ) -> Result<BoxStream<'static, Result<Bytes, Error>>, Error> {
        if len > SMALL_SLICE || locator.signature().is_none() {
            return self.fetch_slice(locator, off, len, token).await;
        }
        // cached by 16 KiB group (keepstore's unit of verification), so random small
        // reads anywhere in a hot file come from memory after the groups were read once
        let (g0, g1) = (off / GROUP, (off + len).div_ceil(GROUP));
        let hit: Option<Vec<Bytes>> = self.slices.lock().ok().and_then(|c| {
            (g0..g1)
                .map(|g| c.map.get(&(locator.hash, g)).cloned())
                .collect()
        });
        let groups = match hit {
            Some(v) => v,
            None => {
                let start = g0 * GROUP;
                let end = (g1 * GROUP).min(locator.size);
                let parts: Vec<Bytes> = self
                    .fetch_slice(locator, start, end - start, token)
                    .await?
                    .try_collect()
                    .await?;
                let all = Bytes::from(parts.concat());
                if all.len() as u64 != end - start {
                    return Err(Error::Upstream(format!(
                        "keepstore sent {} bytes of a {}-byte slice",
                        all.len(),
                        end - start
                    )));
                }
                let v: Vec<Bytes> = (g0..g1)
                    .map(|g| {
                        let a = ((g - g0) * GROUP) as usize;
                        let b = (((g - g0 + 1) * GROUP) as usize).min(all.len());
                        all.slice(a..b)
                    })
                    .collect();
                if let Ok(mut c) = self.slices.lock() {
                    for (g, b) in (g0..g1).zip(&v) {
                        c.insert((locator.hash, g), b.clone());
                    }
                }
                v
            }
        };
        // the requested bytes out of the groups
        let skip = (off - g0 * GROUP) as usize;
        let bytes = if groups.len() == 1 {
            groups[0].slice(skip..skip + len as usize)
        } else {
            let mut out = Vec::with_capacity(len as usize);
            for g in &groups {
                out.extend_from_slice(g);
            }
            Bytes::from(out).slice(skip..skip + len as usize)
        };
        Ok(futures_util::stream::once(async move { Ok(bytes) }).boxed())
    }

    async fn fetch_slice(
        &self,
        locator: &Locator,
        off: u64,
        len: u64,
        token: &Token,
    ) -> Result<BoxStream<'static, Result<Bytes, Error>>, Error> {
        if let Some(local) = &self.local {
            if let Some(st) = local.slice(locator, token, off, len).await? {
                return Ok(st);
            }
        }
        let mut last = Error::Upstream(format!("no keepstore has block {}", locator.hash));
        for ks in self.keepstores_for(&locator.hash).await? {
            let r = self
                .http
                .get(format!("{ks}/{locator}"))
                .bearer_auth(token.expose())
                .header("Range", format!("bytes={off}-{}", off + len - 1))
                .send()
                .await;
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    last = Error::Upstream(format!("keepstore {ks}: {e}"));
                    continue;
                }
            };
            let st = r.status().as_u16();
            let whole = st == 200 && off == 0 && len == locator.size;
            if st == 206 || whole {
                if r.content_length().is_some_and(|n| n != len) {
                    return Err(Error::Upstream(format!(
                        "keepstore {ks} sent a slice of the wrong length"
                    )));
                }
                return Ok(r
                    .bytes_stream()
                    .map_err(|e| Error::Upstream(format!("reading a block: {e}")))
                    .boxed());
            }
            last = Error::Upstream(format!("keepstore {ks} answered {st} for a block"));
        }
        Err(last)
    }
}

/// The first message of an API error body (`{"errors": ["…"]}`), else the status.
async fn api_error_text(r: reqwest::Response) -> String {
    let st = r.status();
    let v: Option<Value> = r.json().await.ok();
    v.as_ref()
        .and_then(|v| v.get("errors"))
        .and_then(|e| e.get(0))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("the API answered {st}"))
}

/// Writing: blocks to keepstore, collection updates to the API.
impl Upstream {
    /// Forgets every token's view of collection `uuid`, so that the next request sees a
    /// write at once.
    pub fn invalidate(&self, uuid: &str) {
        if let Ok(mut v) = self.views.lock() {
            v.retain(|(_, id), _| id != uuid);
        }
    }

    /// `PATCH /arvados/v1/collections/<uuid>` with `body`; the write's errors map to the
    /// statuses a WebDAV client expects (403 may not write, 409 the tree changed under us).
    pub async fn update_collection(
        &self,
        uuid: &str,
        token: &Token,
        body: &Value,
    ) -> Result<Value, Error> {
        let r = self
            .http
            .patch(format!("{}/arvados/v1/collections/{uuid}", self.api_url))
            .query(&[("select", r#"["portable_data_hash","modified_at"]"#)])
            .bearer_auth(token.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| Error::Upstream(format!("API update of {uuid}: {e}")));
        self.invalidate(uuid);
        let r = r?;
        let st = r.status().as_u16();
        if (200..300).contains(&st) {
            return r
                .json()
                .await
                .map_err(|e| Error::Upstream(format!("API response for {uuid}: {e}")));
        }
        let msg = api_error_text(r).await;
        Err(match st {
            401 => Error::Unauthorized,
            403 => Error::Forbidden(msg),
            404 => Error::NotFound,
            409 | 422 => Error::Conflict(msg),
            412 => Error::PreconditionFailed(msg),
            400 => Error::BadRequest(msg),
            _ => Error::Upstream(format!("updating {uuid}: {msg}")),
        })
    }

    /// The signed manifest of `uuid` and its PDH, fresh from the API.
    pub async fn manifest(&self, uuid: &str, token: &Token) -> Result<(String, Pdh), Error> {
        let v = self
            .api_get(
                &format!("/arvados/v1/collections/{uuid}"),
                token,
                &[("select", r#"["manifest_text","portable_data_hash"]"#.into())],
            )
            .await?;
        let text = v
            .get("manifest_text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let pdh = v
            .get("portable_data_hash")
            .and_then(Value::as_str)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| Error::Upstream(format!("collection {uuid} without a PDH")))?;
        Ok((text, pdh))
    }

    /// The collection's `properties` as they are now (not from any cache), and the etag
    /// of the record they were read from.
    pub async fn properties(
        &self,
        uuid: &str,
        token: &Token,
    ) -> Result<(serde_json::Map<String, Value>, String), Error> {
        let v = self
            .api_get(
                &format!("/arvados/v1/collections/{uuid}"),
                token,
                &[("select", r#"["properties","etag"]"#.into())],
            )
            .await?;
        let props = match v.get("properties") {
            Some(Value::Object(m)) => m.clone(),
            _ => serde_json::Map::new(),
        };
        let etag = v.get("etag").and_then(Value::as_str).unwrap_or_default();
        Ok((props, etag.to_string()))
    }

    /// Stores one block (at most 64 MiB) and returns its locator signed for `token`: in
    /// this process's own keepstore when there is one (`keep serve`), else on the
    /// keepstores, tried in rendezvous order for the block (a full one is skipped).
    pub async fn put_block(&self, data: Bytes, token: &Token) -> Result<Locator, Error> {
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
                .map_err(|e| Error::Internal(format!("hashing a block: {e}")))?
        } else {
            Hash::of(&data)
        };
        let order = self.keepstores_for(&hash).await?;
        let mut last = Error::Upstream("no keepstore is configured".into());
        let mut full = Vec::new();
        for &ks in &order {
            let r = self
                .http
                .put(format!("{ks}/{hash}"))
                .bearer_auth(token.expose())
                .body(data.clone())
                .send()
                .await;
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    last = Error::Upstream(format!("storing a block on {ks}: {e}"));
                    continue;
                }
            };
            let st = r.status();
            let text = r.text().await.unwrap_or_default();
            if st.is_success() {
                let l: Locator = text.trim().parse().map_err(|e| {
                    Error::Upstream(format!("keepstore {ks} answered a bad locator: {e}"))
                })?;
                if l.hash != hash || l.size != size {
                    return Err(Error::Upstream(format!(
                        "keepstore {ks} answered a locator for other data"
                    )));
                }
                return Ok(l);
            }
            last = match st.as_u16() {
                401 | 403 => {
                    return Err(Error::Forbidden(format!("keepstore {ks}: {}", text.trim())))
                }
                507 => {
                    full.push(format!("{ks}: {}", text.trim()));
                    continue;
                }
                _ => Error::Upstream(format!("keepstore {ks} answered {st}: {}", text.trim())),
            };
        }
        // full everywhere it was asked (and no other failure): the client's disk is full
        if !full.is_empty() && full.len() == order.len() {
            return Err(Error::InsufficientStorage(full.join("; ")));
        }
        Err(last)
    }
}
