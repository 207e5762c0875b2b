//! Shared pieces of the fuzz targets: the HTTP-level targets' request type ([`req`]),
//! their tables of known-good words ([`words`]) and seeds ([`seeds`]) and, with feature
//! `services`, the harness that drives each service's router in process ([`harness`]).

pub mod req;
pub mod seeds;
pub mod words;

#[cfg(feature = "services")]
pub mod harness;
