//! The crate's one error type. A variant says what failed and keeps its cause as its
//! `source`; which HTTP status each one becomes is decided in one place,
//! `service::response`.
//!
//! Where a keep-format error came from decides its status: a body the client sent that
//! doesn't parse is [`Error::BadBody`] (400); data from the API or keepstore that doesn't
//! parse is [`Error::UpstreamData`] (502).

/// Which kind of input went over a limit (it decides the status: 413, 414, 431 or 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Over {
    /// A request body: 413.
    Body,
    /// The request path or query: 414.
    Uri,
    /// A request header: 431.
    Header,
    /// Anything else (a credential's length): 400.
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A request body keep-format refused.
    #[error("the request body can't be used")]
    BadBody(#[source] keep_format::Error),
    /// The request body stopped or failed while it was read.
    #[error("{what}")]
    BodyRead {
        what: String,
        #[source]
        source: actix_web::error::PayloadError,
    },
    /// An input over one of the limits in `limits`.
    #[error("{what} (keep-web's limit: {limit}; see doc/webdav.md, Limits)")]
    Limit {
        what: String,
        limit: String,
        over: Over,
    },
    /// No usable credentials for a private resource.
    #[error("credentials required")]
    Unauthorized,
    /// Unknown, or not visible with the given credentials (existence never leaks).
    #[error("not found")]
    NotFound,
    /// The container was found with this token but the path inside it does not exist
    /// (final: other credentials are not tried).
    #[error("not found")]
    NoSuchPath,
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Depth: infinity above a collection.
    #[error("PROPFIND with Depth: infinity is only answered inside one collection")]
    FiniteDepth,
    #[error("method not allowed here")]
    MethodNotAllowed,
    /// A write where writing can't happen (a PDH, a listing level above a collection);
    /// the text says why.
    #[error("{0}")]
    ReadOnly(String),
    /// The write's target doesn't fit the tree as it is (missing parent, a source that
    /// vanished): 409.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A write's path that the manifest format refuses (it can't exist in a collection).
    #[error("conflict: {what}")]
    BadPath {
        what: String,
        #[source]
        source: keep_format::Error,
    },
    /// `Overwrite: F` and the destination exists; a precondition the API checked: 412.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// MKCOL with a body.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// A Destination on another server: 502 (RFC 4918 §9.8.5).
    #[error("bad gateway: {0}")]
    OtherServer(String),
    /// Unsatisfiable Range for a file of this length.
    #[error("range not satisfiable")]
    RangeNotSatisfiable(u64),
    /// A Range keep-web won't serve (too many parts, overlapping parts; RFC 9110 §14.2
    /// lets a server refuse them): 416 like an unsatisfiable one, the text says why.
    #[error("range not served: {why}")]
    RangeRefused { len: u64, why: String },
    /// Every keepstore that could take a block is full or read-only: 507 (RFC 4918
    /// §11.5), which WebDAV clients report as "disk full" rather than a server fault.
    #[error("insufficient storage: {0}")]
    InsufficientStorage(String),
    /// The API or a keepstore answered something unusable (the text says what).
    #[error("upstream: {0}")]
    Upstream(String),
    /// A request to the API or a keepstore failed (the URL is never kept: it may hold a
    /// signed locator).
    #[error("upstream: {what}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    /// The API, or every keepstore a request needed, could not be reached (connection
    /// refused, a timeout), or answered 502/503/504 itself: 503 with Retry-After.
    #[error("service unavailable: {what}")]
    Unavailable {
        what: String,
        #[source]
        source: Option<reqwest::Error>,
    },
    /// Data from the API (a manifest, a PDH) that keep-format refused.
    #[error("upstream: {what}")]
    UpstreamData {
        what: String,
        #[source]
        source: keep_format::Error,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error("internal: {0}")]
    Internal(String),
    /// A spawned task (a block upload, the ZIP writer) stopped.
    #[error("internal: {what}")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("internal: writing the ZIP")]
    Zip(#[source] async_zip::error::ZipError),
    #[error("internal: {what}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A failed request to the API or a keepstore, its URL dropped; one that could not
    /// connect, or timed out, is [`Error::Unavailable`].
    pub fn http(what: impl Into<String>, e: reqwest::Error) -> Error {
        let (what, source) = (what.into(), e.without_url());
        if source.is_connect() || source.is_timeout() {
            return Error::Unavailable {
                what,
                source: Some(source),
            };
        }
        Error::Http { what, source }
    }

    pub fn limit(what: impl Into<String>, limit: impl ToString, over: Over) -> Error {
        Error::Limit {
            what: what.into(),
            limit: limit.to_string(),
            over,
        }
    }

    /// The message and every cause after it: `what: why: why`.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(self);
        while let Some(e) = cur {
            out.push_str(": ");
            out.push_str(&e.to_string());
            cur = e.source();
        }
        out
    }
}
