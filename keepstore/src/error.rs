//! The crate's one error type, and the one place errors become HTTP statuses.
//!
//! Every message says what failed, why, and what to do; none contains a token or a
//! locator signature.

use std::io;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use keep_format::{Hash, SignatureError};

/// Everything that can go wrong in keepstore.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A volume could not be set up at start.
    #[error("volume {path}: {why}")]
    Volume { path: String, why: String },
    /// A filesystem operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("no token: send `Authorization: Bearer <token>`")]
    NoToken,
    #[error("the token in the Authorization header is malformed: {0}")]
    BadToken(String),
    #[error("this token may not {0}: use the {1}")]
    Forbidden(&'static str, &'static str),
    #[error("{0}")]
    Signature(SignatureError),
    #[error("{0}")]
    BadLocator(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("block {0} is not stored here")]
    NotFound(Hash),
    #[error("block {0} has no copy in the trash (never trashed, already restored, or deleted by the sweeper)")]
    NotInTrash(Hash),
    #[error("the block is {got} bytes or more, but blocks are at most {max} bytes: split the data into blocks of at most 64 MiB")]
    TooLarge { got: u64, max: u64 },
    #[error("the body had {got} bytes but Content-Length said {want}: resend the whole block")]
    LengthMismatch { got: u64, want: u64 },
    #[error("the body's BLAKE3 hash is {got} but the URL names {want}: nothing was stored; PUT the block to /<its hash>")]
    HashMismatch { want: Hash, got: Hash },
    #[error("reading the request body failed after {after} bytes ({why}): nothing was stored; resend the block")]
    Body { after: u64, why: String },
    #[error("every volume is full ({0}): free space or add a volume")]
    Full(String),
    #[error("block {0} failed its hash check on disk: it has been quarantined; fetch it from another replica")]
    Corrupt(Hash),
    #[error("the range is outside the block of {len} bytes")]
    RangeNotSatisfiable { len: u64 },
    #[error("the token is no longer valid (the API says it expired or was revoked): get a new token and a new signed locator")]
    TokenNotValid,
    #[error("cannot check the token with the API ({why}): retry shortly")]
    ApiUnavailable {
        why: String,
        #[source]
        source: Option<reqwest::Error>,
    },
    #[error("the {what} body is larger than {limit} bytes (keepstore's limit for {what}): send fewer entries per request")]
    BodyTooLarge { what: &'static str, limit: u64 },
    #[error("the {what} holds {got} entries, more than {limit} (keepstore's limit for {what}): send fewer entries per request")]
    TooManyEntries {
        what: &'static str,
        got: usize,
        limit: usize,
    },
    /// An S3 volume's server failed, answered an error, or did not answer in time.
    #[error("S3 volume {volume}: {what}: {why}")]
    S3 {
        volume: String,
        what: String,
        why: String,
        timeout: bool,
        #[source]
        source: Option<reqwest::Error>,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// An error reading a block through [`crate::BlockReader`]: a volume's own error
    /// (e.g. an S3 timeout) carried inside the `io::Error` comes back out as itself.
    pub(crate) fn read(what: impl Into<String>, source: io::Error) -> Self {
        if source.get_ref().is_some_and(|i| i.is::<Error>()) {
            if let Some(inner) = source.into_inner() {
                if let Ok(e) = inner.downcast::<Error>() {
                    return *e;
                }
                // unreachable: `is` said it was ours
                return Error::Internal("a read error changed type".into());
            }
            return Error::Internal("a read error lost its cause".into());
        }
        Error::io(what, source)
    }

    /// Did this come from a full disk (so the next volume may take the block)?
    pub(crate) fn is_full(&self) -> bool {
        match self {
            Error::Full(_) => true,
            Error::Io { source, .. } => is_enospc(source),
            _ => false,
        }
    }
}

pub(crate) fn is_enospc(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Internal(format!("a background task failed: {e}"))
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::Volume { .. } | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Io { source, .. } if is_enospc(source) => StatusCode::INSUFFICIENT_STORAGE,
            Error::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Error::NoToken | Error::BadToken(_) | Error::Signature(_) | Error::TokenNotValid => {
                StatusCode::UNAUTHORIZED
            }
            Error::ApiUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::S3 { timeout: true, .. } => StatusCode::GATEWAY_TIMEOUT,
            Error::S3 { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::BodyTooLarge { .. } | Error::TooManyEntries { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Error::Forbidden(..) => StatusCode::FORBIDDEN,
            Error::BadLocator(_)
            | Error::BadRequest(_)
            | Error::LengthMismatch { .. }
            | Error::HashMismatch { .. }
            | Error::Body { .. } => StatusCode::BAD_REQUEST,
            Error::NotFound(_) | Error::NotInTrash(_) => StatusCode::NOT_FOUND,
            Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Full(_) => StatusCode::INSUFFICIENT_STORAGE,
            Error::Corrupt(_) => StatusCode::BAD_GATEWAY,
            Error::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self, "keepstore request failed");
        }
        let mut resp = HttpResponse::build(status);
        resp.insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"));
        if let Error::RangeNotSatisfiable { len } = self {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                resp.insert_header((header::CONTENT_RANGE, v));
            }
        }
        if let Error::ApiUnavailable { .. } = self {
            resp.insert_header((header::RETRY_AFTER, "5"));
        }
        if matches!(self, Error::NoToken | Error::BadToken(_)) {
            resp.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        resp.body(format!("{self}\n"))
    }
}

/// A locator (or anything holding one) with every `+A…` signature hint removed, for
/// messages and logs.
pub(crate) fn strip_signatures(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, part) in s.split('+').enumerate() {
        if i > 0 {
            out.push('+');
            if part.starts_with('A') {
                out.push_str("A<redacted>");
                continue;
            }
        }
        out.push_str(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_signatures() {
        assert_eq!(
            strip_signatures("abc+3+Adeadbeef@1234+Kzz"),
            "abc+3+A<redacted>+Kzz"
        );
        assert_eq!(strip_signatures("abc"), "abc");
    }

    #[test]
    fn statuses() {
        assert_eq!(Error::NoToken.status_code(), 401);
        assert_eq!(Error::Corrupt(Hash::EMPTY).status_code(), 502);
        assert_eq!(
            Error::io("x", io::Error::from_raw_os_error(libc::ENOSPC)).status_code(),
            507
        );
        let r = Error::RangeNotSatisfiable { len: 5 }.error_response();
        assert_eq!(r.status(), 416);
        assert_eq!(r.headers().get("content-range").unwrap(), "bytes */5");
    }
}
