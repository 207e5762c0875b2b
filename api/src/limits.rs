//! Every limit the API puts on its input, in one place (doc/api.md, "Limits", lists
//! them). A request over a limit gets a 4xx that names it, and changes nothing.

/// Request bodies of the collection writes (`POST /collections`, `PUT`/`PATCH
/// /collections/<uuid>`): a manifest of a few hundred thousand files fits.
pub const COLLECTION_BODY_MAX: usize = 128 << 20;

/// Request bodies of every other endpoint.
pub const BODY_MAX: usize = 1 << 20;

/// JSON nesting of a request body or a JSON-valued parameter (serde_json's own bound).
pub const JSON_DEPTH_MAX: usize = 128;

/// `filters`: [attr, op, value] triples in one request (a filter group's
/// `properties.filters` too).
pub const FILTERS_MAX: usize = 100;

/// Bytes of one attribute name in `filters`, `order` or `select`; control characters
/// are refused.
pub const ATTR_MAX: usize = 256;

/// Values in one filter's list (`in`, `not in`, `is_a`).
pub const FILTER_VALUES_MAX: usize = 1000;

/// Bytes of one string in a filter's value.
pub const FILTER_STRING_MAX: usize = 64 << 10;

/// Characters of a `like`/`ilike` pattern (matching costs pattern × text).
pub const PATTERN_MAX: usize = 1024;

/// Nesting of a filter's value (lists and objects inside it).
pub const FILTER_VALUE_DEPTH_MAX: usize = 4;

/// Terms in `order`.
pub const ORDER_MAX: usize = 16;

/// Attributes in `select`.
pub const SELECT_MAX: usize = 100;
