//! The API server and the keepstores, as keep-web uses them: [`Upstream`] is the whole
//! interface the layers above see. Only `api.rs` and `keep.rs` speak HTTP,
//! with the client and retry rule of `http.rs`.

mod api;
mod cache;
mod client;
mod http;
mod keep;
mod record;
mod types;

pub use client::Upstream;
pub use types::{Item, LocalBlocks, SliceStream, View};
