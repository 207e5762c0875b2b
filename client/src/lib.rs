//! keep-client: the one client for a Keep cluster, used by the `keep` commands (and
//! meant for keep-web and `keep balance`).
//!
//! - **API** ([`api`]): typed calls for users, collections, groups, tokens and links,
//!   and the cluster's configuration (`GET /arvados/v1/config`: the keepstores, keep-web,
//!   the default replication). Generic JSON calls for the rest.
//! - **Blocks** ([`blocks`]): every keepstore the cluster lists, in each block's
//!   rendezvous order. A read fails over to the next keepstore on 404, 5xx, a timeout, a
//!   connection error or bytes that fail their BLAKE3 check; a write stores the copies
//!   asked for on distinct keepstores and reports how many it got.
//! - **Errors** ([`error`]) keep their cause and name the URL path, the block hash and
//!   the keepstores tried, never a token or a signed locator.
//!
//! ```no_run
//! # async fn f() -> Result<(), keep_client::Error> {
//! let token = "v2/zzzzz-gj3su-0123456789abcde/secret".parse().expect("a token");
//! let c = keep_client::Client::new("http://127.0.0.1:8003", token, Default::default())?;
//! let stored = c.write_block(bytes::Bytes::from_static(b"hello"), None).await?;
//! assert_eq!(c.read_block(&stored.locator).await?.as_ref(), b"hello");
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod api;
pub mod blocks;
mod client;
pub mod error;

pub use api::{
    ApiToken, Collection, Group, ItemList, Link, ListParams, NewCollection, NewGroup, NewToken,
    NewUser, Resource, User,
};
pub use blocks::Stored;
pub use client::{Client, Cluster, Options};
pub use error::{Attempt, AttemptError, Error, ReadError, WriteError};
