//! [`Upstream`]: everything keep-web asks of the API and the keepstores, behind one
//! small interface (collections, project listings, users, updates, block slices, block
//! writes), with the caches that make repeated asks cheap.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::stream::{StreamExt, TryStreamExt};
use keep_format::dav as props;
use keep_format::{FileIndex, Locator, Manifest, Pdh, Token};
use serde_json::Value;

use crate::error::Error;
use crate::upstream::api::ApiClient;
use crate::upstream::cache::{
    token_key, CachedView, ExpiryCache, IndexCache, SliceCache, ViewCache,
};
use crate::upstream::keep::KeepClient;
use crate::upstream::record;
use crate::upstream::types::{Item, LocalBlocks, SliceStream, View};

/// A view is refetched this long before its block signatures expire.
const SIG_MARGIN: Duration = Duration::from_secs(300);
/// Block slices at most this long are kept in memory once read (small files, the
/// heads of files): a hot 4 KiB file is then served without a keepstore round trip.
const SMALL_SLICE: u64 = 64 << 10;
/// keepstore verifies blocks in groups of this many bytes.
const GROUP: u64 = 16 << 10;

pub struct Upstream {
    api: ApiClient,
    keep: KeepClient,
    indexes: IndexCache,
    views: ViewCache,
    expiry: ExpiryCache,
    slices: SliceCache,
}

impl Upstream {
    pub fn new(
        api_url: &str,
        keepstores: Vec<String>,
        local: Option<Arc<dyn LocalBlocks>>,
    ) -> Result<Upstream, Error> {
        let http = crate::upstream::http::Http::new()?;
        Ok(Upstream {
            api: ApiClient::new(http.clone(), api_url),
            keep: KeepClient::new(http, keepstores, local),
            indexes: IndexCache::default(),
            views: ViewCache::default(),
            expiry: ExpiryCache::default(),
            slices: SliceCache::default(),
        })
    }

    /// A collection by UUID or PDH as `token` sees it, with its index (parsed once per
    /// PDH, shared by every token). Within `limits::VIEW_TTL` a token's view is reused,
    /// but never past the token's `expires_at`; after that the API is asked for the PDH
    /// alone, and the manifest is fetched again only when the PDH changed or the block
    /// signatures are about to expire.
    pub async fn collection(&self, id: &str, token: &Token) -> Result<Arc<View>, Error> {
        let tk = token_key(token);
        let key = (tk, id.to_string());
        let known = self
            .views
            .get(&key)
            .filter(|c| c.sigs_until > SystemTime::now() + SIG_MARGIN);
        if let Some(c) = &known {
            if c.fresh() && self.expiry.trusted(&tk) {
                return Ok(c.view.clone());
            }
        }
        let learn_expiry = self.learn_expiry(token);
        if let Some(c) = known {
            let (recheck, _) = tokio::join!(self.recheck(id, token, &c), learn_expiry);
            if let Some(view) = recheck? {
                let mut c = c;
                c.view = view.clone();
                c.checked = Instant::now();
                self.views.insert(key, c);
                return Ok(view);
            }
            return self.fetch_and_keep(key, id, token).await;
        }
        let (fetched, _) = tokio::join!(self.fetch_and_keep(key, id, token), learn_expiry);
        fetched
    }

    /// Asks the API when `token` expires, unless that was learned recently. A failure
    /// only leaves it unknown (cached views are then confirmed with the API each time).
    async fn learn_expiry(&self, token: &Token) {
        let tk = token_key(token);
        if self.expiry.get(&tk).is_some() {
            return;
        }
        if let Ok(v) = self
            .api
            .get("/arvados/v1/api_client_authorizations/current", token, &[])
            .await
        {
            let exp = v
                .get("expires_at")
                .and_then(Value::as_str)
                .and_then(|s| keep_format::time::Timestamp::parse(s).ok())
                .map(SystemTime::from);
            self.expiry.insert(tk, exp);
        }
    }

    /// The cached view again if the API still gives the same PDH and `modified_at` to
    /// this token (`None` when it changed).
    async fn recheck(
        &self,
        id: &str,
        token: &Token,
        c: &CachedView,
    ) -> Result<Option<Arc<View>>, Error> {
        let q = [(
            "select",
            r#"["portable_data_hash","modified_at","can_write"]"#.to_string(),
        )];
        let v = self
            .api
            .get(&format!("/arvados/v1/collections/{id}"), token, &q)
            .await?;
        let old = &c.view;
        let same_pdh = v
            .get("portable_data_hash")
            .and_then(Value::as_str)
            .and_then(|p| p.parse::<Pdh>().ok())
            == Some(old.pdh);
        if !same_pdh || record::str_field(&v, "modified_at") != c.modified_at {
            return Ok(None);
        }
        Ok(Some(Arc::new(View {
            modified: old.modified,
            index: old.index.clone(),
            pdh: old.pdh,
            can_write: v.get("can_write").and_then(Value::as_bool).unwrap_or(false),
            dead: old.dead.clone(),
            sigs: old.sigs.clone(),
        })))
    }

    async fn fetch_and_keep(
        &self,
        key: (crate::upstream::cache::TokenKey, String),
        id: &str,
        token: &Token,
    ) -> Result<Arc<View>, Error> {
        let (view, modified_at, sigs_until) = self.fetch_collection(id, token).await?;
        self.views.insert(
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
        let q = [(
            "select",
            r#"["portable_data_hash","modified_at","manifest_text","properties","can_write"]"#
                .to_string(),
        )];
        let v = self
            .api
            .get(&format!("/arvados/v1/collections/{id}"), token, &q)
            .await?;
        let text = record::str_field(&v, "manifest_text");
        let pdh = record::pdh(&v, id)?;
        let index = match self.indexes.get(&pdh) {
            Some(i) => i,
            None => {
                let i = Arc::new(FileIndex::new(&record::manifest(text, id)?));
                self.indexes.insert(pdh, i.clone());
                i
            }
        };
        let (sigs, sigs_until) = record::signatures(text);
        let view = Arc::new(View {
            modified: record::modified(&v),
            index,
            pdh,
            can_write: v.get("can_write").and_then(Value::as_bool).unwrap_or(false),
            dead: Arc::new(props::from_properties(v.get("properties"))),
            sigs: Arc::new(sigs),
        });
        let modified_at = record::str_field(&v, "modified_at").to_string();
        Ok((view, modified_at, sigs_until))
    }

    /// What a project, filter group or user's home contains.
    pub async fn contents(&self, uuid: &str, token: &Token) -> Result<Vec<Item>, Error> {
        let list = self
            .api
            .list_all(&format!("/arvados/v1/groups/{uuid}/contents"), token)
            .await?;
        Ok(record::items(list))
    }

    /// Checks that `uuid` (a group) is readable.
    pub async fn group(&self, uuid: &str, token: &Token) -> Result<(), Error> {
        self.api
            .get(&format!("/arvados/v1/groups/{uuid}"), token, &[])
            .await
            .map(|_| ())
    }

    /// (username, uuid) of each user the token may read.
    pub async fn users(&self, token: &Token) -> Result<Vec<(String, String)>, Error> {
        let list = self.api.list_all("/arvados/v1/users", token).await?;
        Ok(record::users(&list))
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
    ) -> Result<SliceStream, Error> {
        if len == 0 {
            // (a zero-length segment: no request, and no `Range: bytes=off-(off-1)`)
            return Ok(futures_util::stream::empty().boxed());
        }
        if len > SMALL_SLICE || locator.signature().is_none() {
            return self.keep.slice(&self.api, locator, off, len, token).await;
        }
        // cached by 16 KiB group (keepstore's unit of verification), so random small
        // reads anywhere in a hot file come from memory after the groups were read once
        let (g0, g1) = (off / GROUP, (off + len).div_ceil(GROUP));
        let groups = match self.slices.get_all(locator.hash, g0..g1) {
            Some(v) => v,
            None => self.fetch_groups(locator, g0, g1, token).await?,
        };
        // the requested bytes out of the groups
        let skip = (off - g0 * GROUP) as usize;
        let bytes = if let [one] = groups.as_slice() {
            one.slice(skip..skip + len as usize)
        } else {
            Bytes::from(groups.concat()).slice(skip..skip + len as usize)
        };
        Ok(futures_util::stream::once(async move { Ok(bytes) }).boxed())
    }

    /// Groups `g0..g1` of a block, read in one slice and kept.
    async fn fetch_groups(
        &self,
        locator: &Locator,
        g0: u64,
        g1: u64,
        token: &Token,
    ) -> Result<Vec<Bytes>, Error> {
        let start = g0 * GROUP;
        let end = (g1 * GROUP).min(locator.size);
        let parts: Vec<Bytes> = self
            .keep
            .slice(&self.api, locator, start, end - start, token)
            .await?
            .try_collect()
            .await?;
        let all = Bytes::from(parts.concat());
        if all.len() as u64 != end - start {
            return Err(Error::Upstream(format!(
                "keepstore sent {} bytes of a {}-byte slice of block {}",
                all.len(),
                end - start,
                locator.hash
            )));
        }
        let v: Vec<Bytes> = (g0..g1)
            .map(|g| {
                let a = ((g - g0) * GROUP) as usize;
                let b = (((g - g0 + 1) * GROUP) as usize).min(all.len());
                all.slice(a..b)
            })
            .collect();
        for (g, b) in (g0..g1).zip(&v) {
            self.slices.insert((locator.hash, g), b.clone());
        }
        Ok(v)
    }

    /// Stores one block (at most 64 MiB); its locator signed for `token`.
    pub async fn put_block(&self, data: Bytes, token: &Token) -> Result<Locator, Error> {
        self.keep.put(&self.api, data, token).await
    }

    /// `PATCH /arvados/v1/collections/<uuid>` with `body`; every token's view of the
    /// collection is forgotten, so that the next request sees the write at once.
    pub async fn update_collection(
        &self,
        uuid: &str,
        token: &Token,
        body: &Value,
    ) -> Result<Value, Error> {
        let r = self
            .api
            .patch(
                &format!("/arvados/v1/collections/{uuid}"),
                token,
                &[("select", r#"["portable_data_hash","modified_at"]"#)],
                body,
            )
            .await;
        self.views.forget(uuid);
        r
    }

    /// The signed manifest of `uuid` (parsed) and its PDH, fresh from the API.
    pub async fn manifest(&self, uuid: &str, token: &Token) -> Result<(Manifest, Pdh), Error> {
        let q = [("select", r#"["manifest_text","portable_data_hash"]"#.into())];
        let v = self
            .api
            .get(&format!("/arvados/v1/collections/{uuid}"), token, &q)
            .await?;
        let pdh = record::pdh(&v, uuid)?;
        let m = record::manifest(record::str_field(&v, "manifest_text"), uuid)?;
        Ok((m, pdh))
    }

    /// The collection's `properties` as they are now (not from any cache), and the etag
    /// of the record they were read from.
    pub async fn properties(
        &self,
        uuid: &str,
        token: &Token,
    ) -> Result<(serde_json::Map<String, Value>, String), Error> {
        let q = [("select", r#"["properties","etag"]"#.into())];
        let v = self
            .api
            .get(&format!("/arvados/v1/collections/{uuid}"), token, &q)
            .await?;
        let props = match v.get("properties") {
            Some(Value::Object(m)) => m.clone(),
            _ => serde_json::Map::new(),
        };
        Ok((props, record::str_field(&v, "etag").to_string()))
    }
}
