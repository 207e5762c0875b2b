//! The crate's one error type, and the one place errors become HTTP statuses
//! ([`Error::status_code`]). Errors that come from a library keep it as their
//! `source()`; the message sent to the client is the `Display` text.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use keep_format::UuidKind;

/// Everything a request can fail with. Each message says what failed, why, and where
/// it helps, what to do; it is sent to the client as `{"errors":["…"]}`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request itself is malformed (bad JSON, bad parameter).
    #[error("{0}")]
    BadRequest(String),
    /// 400: the request is malformed, for a reason a parser gave.
    #[error("{context}: {source}")]
    BadJson {
        context: String,
        #[source]
        source: serde_json::Error,
    },
    /// 401: no usable token (missing, unknown, revoked, expired).
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the caller can see the object but may not do this to it (or its token's
    /// scopes forbid the request, or a manifest names blocks it has not proved it holds).
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such object, or the caller may not read it (existence never leaks).
    #[error("{0}")]
    NotFound(String),
    /// 412: a precondition the request set (`if_portable_data_hash`) does not hold.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 413: the request body is larger than the endpoint's limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 422: the object would be invalid (duplicate name, bad field).
    #[error("{0}")]
    Unprocessable(String),
    /// 422 (413 for a size limit): input that keep-format refused, e.g. a malformed
    /// manifest or timestamp; `context` says which input.
    #[error("{context}: {source}")]
    Input {
        context: String,
        #[source]
        source: keep_format::Error,
    },
    /// 500: the storage engine failed.
    #[error("metadata store error: {what}: {source}")]
    Store {
        what: String,
        #[source]
        source: rocksdb::Error,
    },
    /// 500: a stored record is of a format this server does not know, or missing.
    #[error("metadata store error: {0}")]
    StoreFormat(String),
    /// 500: a stored record does not decode.
    #[error("metadata store error: a stored {kind} record is corrupt: {source}")]
    Corrupt {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// 500: stored data that keep-format no longer accepts (the bad data is the
    /// server's, not the client's).
    #[error("{context}: {source}")]
    Stored {
        context: String,
        #[source]
        source: keep_format::Error,
    },
    /// 500: a bug or an unexpected condition.
    #[error("internal error: {0}")]
    Internal(String),
    /// 500: a bug or an unexpected condition, with its cause.
    #[error("internal error: {context}: {source}")]
    InternalCause {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub(crate) fn not_found(what: &str, id: &str) -> Error {
        Error::NotFound(format!(
            "{what} {id} not found (it does not exist, or your token may not read it)"
        ))
    }

    /// Client input keep-format refused, in `context` (e.g. `collection.trash_at`).
    pub(crate) fn input(context: impl Into<String>, source: keep_format::Error) -> Error {
        Error::Input {
            context: context.into(),
            source,
        }
    }

    /// Stored data keep-format refused.
    pub(crate) fn stored(context: impl Into<String>, source: keep_format::Error) -> Error {
        Error::Stored {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn internal(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::InternalCause {
            context: context.into(),
            source: Box::new(source),
        }
    }

    pub(crate) fn corrupt(kind: UuidKind, source: serde_json::Error) -> Error {
        Error::Corrupt {
            kind: kind.name(),
            source,
        }
    }

    /// Is this the server's fault (500)?
    pub fn is_server_error(&self) -> bool {
        self.status_code().is_server_error()
    }
}

/// A JSON value as an error message shows it: at most 80 bytes.
pub fn short(v: &serde_json::Value) -> String {
    let mut s = v.to_string();
    if s.len() > 80 {
        let mut cut = 77;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// keep-format errors reached with `?` are about client input (a manifest being
/// edited); stored data is wrapped with [`Error::stored`] instead.
impl From<keep_format::Error> for Error {
    fn from(e: keep_format::Error) -> Self {
        Error::input("invalid input", e)
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) | Error::BadJson { .. } => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Input { source, .. } => match source.limit_exceeded() {
                Some(l) if l.is_size() => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            },
            Error::Store { .. }
            | Error::StoreFormat(_)
            | Error::Corrupt { .. }
            | Error::Stored { .. }
            | Error::Internal(_)
            | Error::InternalCause { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if self.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, Error::Unauthorized(_)) {
            resp.insert_header(("WWW-Authenticate", "Bearer realm=\"keep\""));
        }
        resp.json(serde_json::json!({ "errors": [self.to_string()] }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn causes_are_kept_and_statuses_decided_here() {
        let bad = keep_format::Manifest::parse("nope").unwrap_err();
        let e = Error::input("manifest_text is malformed", bad.clone());
        assert_eq!(e.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.source().is_some());
        assert!(e.to_string().starts_with("manifest_text is malformed: "));
        // the same error from stored data is the server's
        let e = Error::stored("a stored manifest no longer parses", bad);
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        let j = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let e = Error::corrupt(UuidKind::User, j);
        assert!(e.is_server_error() && e.source().is_some());
    }
}
