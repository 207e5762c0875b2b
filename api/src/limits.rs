//! Every limit the API puts on its input, in one place (doc/api.md, "Limits", lists
//! them). A request over a limit gets a 4xx that names it, and changes nothing.

/// Request bodies of the collection writes (`POST /collections`, `PUT`/`PATCH
/// /collections/<uuid>`): a manifest of a few hundred thousand files fits.
pub const COLLECTION_BODY_MAX: usize = 128 << 20;

/// Request bodies of every other endpoint.
pub const BODY_MAX: usize = 1 << 20;
