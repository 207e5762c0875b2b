//! The service: [`KeepWeb`] owns the caches, the repacker and the metrics; `route` takes
//! a request through its steps; `response` is where errors become responses.

mod keepweb;
mod metrics;
mod response;
mod route;

pub use keepweb::KeepWeb;
