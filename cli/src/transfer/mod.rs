//! Shared pieces of `keep put` and `keep get`: progress reporting, exclude patterns and
//! the resume cache.

pub mod cache;
pub mod glob;
pub mod progress;
