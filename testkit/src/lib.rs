//! Fixtures for Keep's integration tests, shared by every crate's `tests/` (a
//! dev-dependency only). Everything is real: servers listen on 127.0.0.1:0, data lives
//! in a temp dir of the test's own, and records are made through the real API.
//!
//! - [`Serve`]: the real `keep serve` process (the binary's path is passed in, e.g.
//!   `env!("CARGO_BIN_EXE_keep")`), its URLs, secrets and log.
//! - [`ApiServer`]: keep-api in this process (RocksDB in a temp dir), for crates that
//!   test a service of their own against a real API.
//! - [`Api`]: a client of either: users, tokens, projects, collections, blocks.
//! - [`bytes`], [`files_under`], [`temp_dir`]: test data and places to put it.
//!
//! Helpers panic with the server's answer when a fixture can't be made: a test that
//! can't set up has nothing to test.

#![forbid(unsafe_code)]

mod api;
mod data;
mod inproc;
mod serve;

pub use api::{put_block, Api, Collection, User};
pub use data::{bytes, files_under, temp_dir};
pub use inproc::{ApiServer, ApiSettings};
pub use serve::{Secrets, Serve};
