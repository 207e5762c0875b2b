//! The crate's one error type and its one mapping to HTTP.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad request: {0}")]
    BadRequest(String),
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
    /// `Overwrite: F` and the destination exists: 412.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// MKCOL with a body.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// A request body over what this method may send.
    #[error("request body too large: {0}")]
    TooLarge(String),
    /// A Destination on another server: 502 (RFC 4918 §9.8.5).
    #[error("bad gateway: {0}")]
    BadGateway(String),
    /// Unsatisfiable Range for a file of this length.
    #[error("range not satisfiable")]
    RangeNotSatisfiable(u64),
    /// Every keepstore that could take a block is full or read-only: 507 (RFC 4918
    /// §11.5), which WebDAV clients report as "disk full" rather than a server fault.
    #[error("insufficient storage: {0}")]
    InsufficientStorage(String),
    #[error("upstream: {0}")]
    Upstream(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("internal: {0}")]
    Internal(String),
}

/// A request body or name keep-format refused: the client's mistake.
impl From<keep_format::Error> for Error {
    fn from(e: keep_format::Error) -> Self {
        Error::BadRequest(e.to_string())
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::NotFound | Error::NoSuchPath => StatusCode::NOT_FOUND,
            Error::Forbidden(_) | Error::FiniteDepth => StatusCode::FORBIDDEN,
            Error::MethodNotAllowed | Error::ReadOnly(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Error::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            Error::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            Error::Upstream(_) => StatusCode::BAD_GATEWAY,
            Error::Config(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status_code());
        r.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"));
        match self {
            Error::Unauthorized => {
                r.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"collections\""));
            }
            Error::RangeNotSatisfiable(len) => {
                r.insert_header((header::CONTENT_RANGE, format!("bytes */{len}")));
            }
            Error::MethodNotAllowed | Error::ReadOnly(_) => {
                r.insert_header((header::ALLOW, crate::dav::READ_METHODS));
            }
            Error::FiniteDepth => {
                return r.content_type("application/xml; charset=utf-8").body(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
                     <D:error xmlns:D=\"DAV:\"><D:propfind-finite-depth/></D:error>\n",
                );
            }
            Error::Upstream(e) | Error::Internal(e) | Error::Config(e) => {
                tracing::warn!(error = %e, "request failed");
            }
            _ => {}
        }
        r.content_type("text/plain; charset=utf-8")
            .body(format!("{self}\n"))
    }
}
