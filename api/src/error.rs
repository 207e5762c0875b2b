//! The crate's one error type, and the one place errors become HTTP statuses.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// Everything a request can fail with. Each message says what failed, why, and where
/// it helps, what to do; it is sent to the client as `{"errors":["…"]}`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request itself is malformed (bad JSON, bad parameter).
    #[error("{0}")]
    BadRequest(String),
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
    /// 422: the object would be invalid (malformed manifest, duplicate name, bad field).
    #[error("{0}")]
    Unprocessable(String),
    /// 500: the metadata store failed.
    #[error("metadata store error: {0}")]
    Store(String),
    /// 500: a bug or an unexpected condition.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn not_found(what: &str, id: &str) -> Error {
        Error::NotFound(format!(
            "{what} {id} not found (it does not exist, or your token may not read it)"
        ))
    }
}

impl From<keep_format::Error> for Error {
    fn from(e: keep_format::Error) -> Self {
        Error::Unprocessable(e.to_string())
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Store(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if matches!(self, Error::Store(_) | Error::Internal(_)) {
            tracing::error!(error = %self, "request failed");
        }
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, Error::Unauthorized(_)) {
            resp.insert_header(("WWW-Authenticate", "Bearer realm=\"keep\""));
        }
        resp.json(serde_json::json!({ "errors": [self.to_string()] }))
    }
}
