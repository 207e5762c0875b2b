//! OPTIONS (RFC 4918 §10.1) and CORS preflights: answered anywhere, without credentials.

use actix_web::http::header;
use actix_web::HttpResponse;

use crate::request::method::ALL_METHODS;

pub fn preflight() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_METHODS,
            "GET, HEAD, OPTIONS, POST, PROPFIND, PROPPATCH, LOCK, UNLOCK, PUT, DELETE, MKCOL, COPY, MOVE",
        ))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "Authorization, Content-Type, Range, Depth, Destination, If, If-Match, \
             If-None-Match, If-Modified-Since, If-Range, Overwrite, Timeout, Lock-Token",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}

pub fn options() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("DAV", "1, 2"))
        .insert_header(("MS-Author-Via", "DAV"))
        .insert_header((header::ALLOW, ALL_METHODS))
        .finish()
}
