//! What keep-web remembers between requests: parsed manifests (by PDH, shared by every
//! token), each token's view of a collection (briefly), each token's expiry, and small
//! verified block slices. Every map is bounded; no lock can be poisoned (parking_lot).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use keep_format::{FileIndex, Hash, Pdh, Token};
use parking_lot::Mutex;

use crate::limits::{CREDENTIAL_TRUST, VIEW_TTL};
use crate::upstream::types::View;

/// Parsed manifests kept (by PDH).
const INDEX_ENTRIES: usize = 256;
/// (token, collection id) views kept; the map is cleared when it grows past this.
const VIEW_ENTRIES: usize = 10_000;
/// Tokens whose expiry is kept; the map is cleared when it grows past this.
const EXPIRY_ENTRIES: usize = 10_000;
/// What the small-slice cache may hold in all.
const SLICE_CACHE_BYTES: usize = 64 << 20;

/// The key of anything cached per token: its BLAKE3 (no token is kept).
pub type TokenKey = Hash;

pub fn token_key(t: &Token) -> TokenKey {
    Hash::of(t.expose().as_bytes())
}

/// Parsed manifests by PDH, and their PDHs oldest first.
type Indexes = (HashMap<Pdh, Arc<FileIndex>>, VecDeque<Pdh>);

/// Parsed manifests by PDH, oldest dropped first.
#[derive(Default)]
pub struct IndexCache {
    inner: Mutex<Indexes>,
}

impl IndexCache {
    pub fn get(&self, pdh: &Pdh) -> Option<Arc<FileIndex>> {
        self.inner.lock().0.get(pdh).cloned()
    }

    pub fn insert(&self, pdh: Pdh, i: Arc<FileIndex>) {
        let mut g = self.inner.lock();
        let (map, order) = &mut *g;
        if map.insert(pdh, i).is_none() {
            order.push_back(pdh);
            while order.len() > INDEX_ENTRIES {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
    }
}

/// A token's view of one collection id, with when it was last confirmed by the API.
#[derive(Clone)]
pub struct CachedView {
    pub view: Arc<View>,
    /// `modified_at` as the API gave it: a change of properties alone changes it.
    pub modified_at: String,
    pub checked: Instant,
    /// The earliest expiry among the view's block signatures.
    pub sigs_until: SystemTime,
}

impl CachedView {
    /// Still usable without asking the API at all.
    pub fn fresh(&self) -> bool {
        self.checked.elapsed() < VIEW_TTL
    }
}

/// Views by (token, collection id as requested).
#[derive(Default)]
pub struct ViewCache {
    map: Mutex<HashMap<(TokenKey, String), CachedView>>,
}

impl ViewCache {
    pub fn get(&self, key: &(TokenKey, String)) -> Option<CachedView> {
        self.map.lock().get(key).cloned()
    }

    pub fn insert(&self, key: (TokenKey, String), v: CachedView) {
        let mut map = self.map.lock();
        if map.len() >= VIEW_ENTRIES {
            map.clear();
        }
        map.insert(key, v);
    }

    /// Forgets every token's view of collection `id`.
    pub fn forget(&self, id: &str) {
        self.map.lock().retain(|(_, i), _| i != id);
    }
}

/// When each token expires, as the API said within [`CREDENTIAL_TRUST`].
#[derive(Default)]
pub struct ExpiryCache {
    map: Mutex<HashMap<TokenKey, (Option<SystemTime>, Instant)>>,
}

impl ExpiryCache {
    /// `Some(expires_at)` (`None` inside: never) when learned within [`CREDENTIAL_TRUST`].
    pub fn get(&self, k: &TokenKey) -> Option<Option<SystemTime>> {
        let map = self.map.lock();
        let (exp, at) = map.get(k)?;
        (at.elapsed() < CREDENTIAL_TRUST).then_some(*exp)
    }

    pub fn insert(&self, k: TokenKey, exp: Option<SystemTime>) {
        let mut map = self.map.lock();
        if map.len() >= EXPIRY_ENTRIES {
            map.clear();
        }
        map.insert(k, (exp, Instant::now()));
    }

    /// Whether anything cached for the token may be used now: its expiry is known (and
    /// recent) and not reached.
    pub fn trusted(&self, k: &TokenKey) -> bool {
        match self.get(k) {
            Some(None) => true,
            Some(Some(exp)) => SystemTime::now() < exp,
            None => false,
        }
    }
}

/// (block, 16 KiB group index).
pub type SliceKey = (Hash, u64);

/// Verified (by keepstore) 16 KiB groups of blocks, oldest dropped first.
#[derive(Default)]
pub struct SliceCache {
    inner: Mutex<SliceMap>,
}

#[derive(Default)]
struct SliceMap {
    map: HashMap<SliceKey, Bytes>,
    order: VecDeque<SliceKey>,
    bytes: usize,
}

impl SliceCache {
    /// Every group of `groups`, or `None` if one is missing.
    pub fn get_all(&self, hash: Hash, groups: std::ops::Range<u64>) -> Option<Vec<Bytes>> {
        let c = self.inner.lock();
        groups.map(|g| c.map.get(&(hash, g)).cloned()).collect()
    }

    pub fn insert(&self, k: SliceKey, b: Bytes) {
        let mut c = self.inner.lock();
        if c.map.contains_key(&k) {
            return;
        }
        c.bytes += b.len();
        c.map.insert(k, b);
        c.order.push_back(k);
        while c.bytes > SLICE_CACHE_BYTES {
            let Some(old) = c.order.pop_front() else {
                break;
            };
            if let Some(b) = c.map.remove(&old) {
                c.bytes -= b.len();
            }
        }
    }
}
