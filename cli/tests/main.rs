//! keep-cli's integration tests, one binary (`cargo test -p keep-cli --test cli`), a
//! module per area. Every test runs the real `keep` binary: `keep serve` on port 0 in a
//! temp dir of its own (keep-testkit's `Serve`), client commands in an environment of
//! their own (`support::Env`), real WebDAV clients where installed by scripts/setup.
//!
//! The rules of keep-web itself are tested where they live (keep-web/tests/web.rs);
//! here, what only the whole `keep serve` shows: its config, its access log, the
//! commands, real clients. Tests that need root are `#[ignore = "needs root: …"]`
//! (scripts/test runs them when it can, and lists them when it can't).

mod balance;
mod matrix;
mod misc;
mod put_get;
mod serve_api;
mod serve_keepstore;
mod support;
mod web;
