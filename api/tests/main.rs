//! keep-api's integration tests, in one binary (`cargo test -p keep-api --test api`):
//! one module per area, the harness in `common`.

mod api;
mod bench;
mod common;
mod crash;
mod migration;
mod permissions;
