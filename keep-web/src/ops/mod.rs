//! Operations on collections, below the WebDAV handlers: reading a file (conditionals,
//! ranges), writing (one commit each), ZIP downloads, background repacking.

pub mod read;
pub mod repack;
pub mod write;
pub mod zip;
