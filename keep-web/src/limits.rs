//! Every bound keep-web puts on what a client sends, and on what it takes from the API,
//! in one place. `doc/webdav.md` (Limits) lists them; an input over one is refused with
//! a 4xx whose message names the limit, before any work is done for it.

use std::time::Duration;

/// A request body read whole (PROPFIND, PROPPATCH, LOCK, MKCOL, POST forms): counted
/// while it arrives, 413 past this. (PUT bodies stream into blocks instead.)
pub const BODY_MAX: usize = keep_format::dav::BODY_MAX;

/// XML request bodies: elements nested deeper than this are refused before parsing
/// (a 20,000-deep body once cost 1.3 GB to parse). keep-format's, so that what it
/// accepts (a PROPPATCH value written back) keep-web accepts too.
pub const XML_DEPTH_MAX: usize = keep_format::dav::DEPTH_MAX;
/// XML request bodies: at most this many elements (keep-format's).
pub const XML_ELEMENTS_MAX: usize = keep_format::dav::ELEMENTS_MAX;

/// The request path as sent (still %-encoded): 414 past this.
pub const PATH_MAX: usize = 16 << 10;
/// The query string: 414 past this.
pub const QUERY_MAX: usize = 16 << 10;
/// Elements of a request path (`/a/b/c` has 3): 414 past this.
pub const PATH_DEPTH_MAX: usize = 1024;
/// One path element, decoded, in bytes: 414 past this.
pub const NAME_MAX: usize = 1024;

/// Any one request header value: 431 past this.
pub const HEADER_MAX: usize = 8 << 10;

/// A credential (a `t=` path token, Bearer, Basic password, `api_token` value, cookie),
/// in bytes: 400 past this.
pub const TOKEN_MAX: usize = 1024;

/// Parts of a multi-part `Range`: 416 past this (RFC 9110 §14.2 lets a server refuse
/// many small or overlapping ranges); overlapping parts are refused too.
pub const RANGE_PARTS_MAX: usize = 64;

/// Elements of a path inside a collection's manifest (its directories and the file's
/// name): a manifest from the API with a deeper path is refused (502) before it is
/// parsed. keep-format's limit, which the API enforces, so every stored collection fits.
pub const MANIFEST_DEPTH_MAX: usize = keep_format::manifest::PATH_DEPTH_MAX;

/// Entries of one project, filter group or user listing taken from the API: a listing
/// with more is refused (502) rather than held in memory.
pub const LISTING_MAX: usize = 100_000;

/// How long a token's view of a collection (its permission included) is reused without
/// asking the API again: a revoked token, or a changed collection, shows within this.
pub const VIEW_TTL: Duration = Duration::from_secs(1);

/// The longest that anything keep-web learned about a credential is trusted: its
/// `expires_at` is asked again after this. Nothing cached for a token is used past its
/// `expires_at`.
pub const CREDENTIAL_TRUST: Duration = Duration::from_secs(30);

/// How long keep-web keeps an idle connection to the API or a keepstore in its pool:
/// shorter than those servers' `keep_alive` (30 s by default, see `keep serve`'s
/// `[api.server]`), so that keep-web never sends a request on a connection the server
/// is closing. (A request that still meets a closed connection is retried once, when
/// it is idempotent and nothing of the response arrived.)
pub const UPSTREAM_POOL_IDLE: Duration = Duration::from_secs(20);

/// How long connecting to the API or a keepstore may take; past it the service counts
/// as unreachable (503).
pub const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A stalled API or keepstore: a response that sends nothing for this long fails, and
/// an API read that takes longer in all fails (503: the service counts as unavailable).
pub const UPSTREAM_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The `Retry-After` (seconds) of a 503 answered because the API or every keepstore
/// that could serve the request is unreachable.
pub const RETRY_AFTER_SECS: u32 = 5;
