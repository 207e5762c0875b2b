//! keepstore's integration tests: one binary, a module per topic, each test on its own
//! in-process server (port 0, temp dirs); the S3 tests start a real Garage
//! (`scripts/garage`).

mod admin;
mod common;
mod limits;
mod put_get;
mod tokens;
mod verify;
