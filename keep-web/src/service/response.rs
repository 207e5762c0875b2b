//! The one place where an [`Error`] becomes a response: its status, the headers that
//! status needs, and a body that says what failed (with its causes; never a URL, a
//! token or a signature: those are kept out of errors where they are made).

use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::error::{Error, Over};
use crate::limits::RETRY_AFTER_SECS;
use crate::request::method::READ_METHODS;

/// CORS headers every response carries (DESIGN §5).
pub fn add_cors(resp: &mut HttpResponse) {
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(
            "Content-Range, Content-Length, Content-Type, ETag, Last-Modified, DAV, Lock-Token",
        ),
    );
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::BodyRead {
                source: PayloadError::Io(e),
                ..
            } if e.kind() == std::io::ErrorKind::TimedOut => StatusCode::REQUEST_TIMEOUT,
            Error::BadRequest(_) | Error::BadBody(_) | Error::BodyRead { .. } => {
                StatusCode::BAD_REQUEST
            }
            Error::Limit { over, .. } => match over {
                Over::Body => StatusCode::PAYLOAD_TOO_LARGE,
                Over::Uri => StatusCode::URI_TOO_LONG,
                Over::Header => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                Over::Other => StatusCode::BAD_REQUEST,
            },
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::NotFound | Error::NoSuchPath => StatusCode::NOT_FOUND,
            Error::Forbidden(_) | Error::FiniteDepth => StatusCode::FORBIDDEN,
            Error::MethodNotAllowed | Error::ReadOnly(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict(_) | Error::BadPath { .. } => StatusCode::CONFLICT,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::RangeNotSatisfiable(_) | Error::RangeRefused { .. } => {
                StatusCode::RANGE_NOT_SATISFIABLE
            }
            Error::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::OtherServer(_)
            | Error::Upstream(_)
            | Error::Http { .. }
            | Error::UpstreamData { .. } => StatusCode::BAD_GATEWAY,
            Error::Config(_)
            | Error::Internal(_)
            | Error::Task { .. }
            | Error::Zip(_)
            | Error::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut r = HttpResponse::build(status);
        match self {
            Error::Unauthorized => {
                r.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"collections\""));
            }
            Error::RangeNotSatisfiable(len) | Error::RangeRefused { len, .. } => {
                r.insert_header((header::CONTENT_RANGE, format!("bytes */{len}")));
            }
            Error::Unavailable { .. } => {
                r.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()));
            }
            Error::MethodNotAllowed | Error::ReadOnly(_) => {
                r.insert_header((header::ALLOW, READ_METHODS));
            }
            Error::FiniteDepth => {
                return r.content_type("application/xml; charset=utf-8").body(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
                     <D:error xmlns:D=\"DAV:\"><D:propfind-finite-depth/></D:error>\n",
                );
            }
            _ => {}
        }
        let text = self.chain();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %text, "request failed");
        }
        r.content_type("text/plain; charset=utf-8")
            .body(format!("{text}\n"))
    }
}
