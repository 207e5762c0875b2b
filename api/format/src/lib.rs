//! Keep's shared formats.
//!
//! Every other crate speaks through these types, so the compiler keeps a block
//! [`Hash`] apart from a [`Pdh`], a [`Locator`] apart from a path, and a [`Token`]
//! out of log lines (its `Debug` and `Display` never show the secret).
//!
//! | type | text form |
//! |---|---|
//! | [`Hash`] | 64 lowercase hex BLAKE3 digits (`base32()` for DNS labels) |
//! | [`Locator`] | `<hash>+<size>[+<Hint>…]`, `+A<sig>@<expiry>` signs it |
//! | [`Pdh`] | `<hash>+<size>` of the stripped, normalized manifest |
//! | [`Uuid`] | `<cluster>-<type>-<15 [a-z0-9]>` |
//! | [`Token`] | `v2/<uuid>/<secret>` or a bare secret |
//! | [`Manifest`] | the Arvados manifest text, BLAKE3 locators |
//!
//! | [`time::Timestamp`] | RFC 3339, `2026-11-22T02:13:05.123456789Z` |
//! | [`duration`] | `90s`, `12h`, `7d`, `2w`, `1h30m` (one grammar for every flag and key) |
//!
//! Small helpers every crate needs live here once: [`time`] (RFC 3339, HTTP dates,
//! `unix_now`), [`duration`], [`secret::ct_eq`], [`UuidKind::of`].
//!
//! See `doc/formats.md` for worked examples.

#![forbid(unsafe_code)]

pub mod dav;
pub mod duration;
mod error;
mod hash;
mod index;
mod limits;
mod locator;
pub mod manifest;
pub mod outboard;
mod pdh;
pub mod secret;
mod signature;
pub mod time;
mod token;
mod uuid;

pub use duration::{format_duration, parse_duration};
pub use error::{Error, Limit};
pub use hash::{rendezvous_order, Hash};
pub use index::{DirEntry, EntryKind, FileIndex, FileRef, Slice};
pub use locator::{Hint, Locator};
pub use manifest::{escape_name, unescape_name, FileSegment, Manifest, ManifestFile};
pub use pdh::Pdh;
pub use signature::{BlobSigner, SignatureError, SigningKey};
pub use token::Token;
pub use uuid::{Uuid, UuidKind};

pub use limits::BLOCK_SIZE_MAX;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
