//! What the upstream layer hands the layers above: a collection version as one token
//! sees it, a project's children, block slices as streams.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use keep_format::dav::DeadProps;
use keep_format::{FileIndex, Hash, Locator, Pdh, Token};

use crate::error::Error;

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
    pub(crate) sigs: Arc<HashMap<Hash, Locator>>,
}

impl View {
    /// The locator to send to keepstore for `l` (signed for this request's token).
    pub fn signed(&self, l: &Locator) -> Locator {
        self.sigs.get(&l.hash).cloned().unwrap_or_else(|| l.clone())
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
    ) -> BoxFuture<'static, Result<Option<SliceStream>, Error>>;

    /// Stores a block here and returns its locator signed for `token`; `Ok(None)` when
    /// this process has nowhere to store it (the keepstores are then used over HTTP).
    fn store(
        &self,
        _data: Bytes,
        _token: &Token,
    ) -> BoxFuture<'static, Result<Option<Locator>, Error>> {
        Box::pin(async { Ok(None) })
    }
}
