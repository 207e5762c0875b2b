//! keepstore: Keep's block server.
//!
//! Blocks are stored by their BLAKE3 hash on one or more [`Volume`]s (local directories
//! by default), each with a BLAKE3 outboard tree beside it so that every byte sent is
//! verified first, and a `Range` read touches only the 16 KiB groups it needs.
//!
//! Public interface used by `keep serve` (cli/src/serve.rs):
//! [`Config`], [`Keepstore::open`], [`Keepstore::configure`], [`Keepstore::run_sweeper`].
//!
//! Routes (see DESIGN §4): `PUT /<hash>`, `GET`/`HEAD /<locator>`, admin-token
//! `GET /index[/<prefix>]`, `GET /mounts`, `PUT /trash`, `PUT /untrash/<locator>`,
//! management-token `GET /_health/ping`, `GET /metrics`.

mod admin;
mod auth;
mod error;
mod get;
mod locator;
mod metrics;
mod pull;
mod puller;
mod put;
mod range;
mod routes;
pub mod s3;
mod service;
mod tokencheck;
pub mod volume;

pub use error::Error;
pub use tokencheck::TokenCheckConfig;
pub use volume::{
    rendezvous_order, BlockMeta, BlockReader, BlockWriter, LocalVolume, Space, Volume,
};

pub use service::{Config, Keepstore, VolumeConfig};
