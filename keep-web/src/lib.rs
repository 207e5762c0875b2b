//! keep-web: Keep's HTTP and WebDAV gateway (DESIGN §5).
//!
//! The read path: resolve the URL to a collection version through the API (its index
//! is parsed once per PDH and shared), find the block slices of the requested bytes in
//! O(log n), and stream them from keepstore with `Range` requests.
//!
//! Modules are layers; each uses only those below it (`scripts/modgraph` checks that
//! no two import each other):
//!
//! | layer | modules |
//! |---|---|
//! | service | [`service`]: `KeepWeb`, routing, errors → responses, metrics |
//! | WebDAV handlers | `dav`: one per method family, one dispatch on `DavMethod` |
//! | operations | `ops`: read, write, zip, repack |
//! | blocks | `blocks`: cutting bodies into blocks, streaming files from them |
//! | path resolution | `resolve`: hosts, URL forms, projects and collections |
//! | upstream | `upstream`: the API and keepstores, and the caches |
//! | credentials | `credentials`: where tokens come from, the cookie redirect, redaction |
//! | request basics | `request`: method, headers, bodies, %-encoding |
//! | foundations | `config`, `error`, `limits` |

#![forbid(unsafe_code)]

mod blocks;
mod config;
pub mod credentials;
mod dav;
mod error;
mod limits;
mod ops;
mod request;
mod resolve;
mod service;
mod upstream;

pub use config::Config;
pub use error::Error;
pub use limits::UPSTREAM_POOL_IDLE;
pub use service::KeepWeb;
pub use upstream::{LocalBlocks, SliceStream};
