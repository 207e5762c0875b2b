//! MKCOL, DELETE and PROPPATCH: the request's headers and body read, one commit made.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use keep_format::dav::{self as props, PropName, Update};
use keep_format::Token;

use crate::dav::call::Call;
use crate::dav::xml::push_text;
use crate::error::Error;
use crate::ops::write::{self, Target};
use crate::request::body;
use crate::request::headers::{self, Depth};

/// MKCOL: one new empty directory (a body is refused: 415).
pub async fn mkcol(call: &Call<'_>, t: Target, tok: &Token) -> Result<HttpResponse, Error> {
    if !call.body.is_empty() {
        return Err(Error::UnsupportedMediaType(
            "MKCOL takes no body here: it makes one empty directory".into(),
        ));
    }
    write::mkcol(call.up, &t, tok).await?;
    Ok(HttpResponse::Created().finish())
}

/// DELETE: a file, or a directory with everything in it (`Depth: infinity` or none).
pub async fn delete(call: &Call<'_>, t: Target, tok: &Token) -> Result<HttpResponse, Error> {
    if t.kind.is_none() {
        return Err(Error::NoSuchPath);
    }
    if !matches!(headers::depth(call.req)?, None | Some(Depth::Infinity)) {
        return Err(Error::BadRequest(
            "DELETE takes Depth: infinity (or none)".into(),
        ));
    }
    write::delete(call.up, &t, tok).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// PROPPATCH: every change applies, in one update, or none does (a live property
/// refused with 403, the rest 424); the answer is a multistatus either way.
pub async fn proppatch(call: &Call<'_>, t: Target, tok: &Token) -> Result<HttpResponse, Error> {
    if t.kind.is_none() {
        return Err(Error::NoSuchPath);
    }
    let updates = body::proppatch(call.body)?;
    let applied = write::proppatch(call.up, &t, &updates, tok).await?;
    let mut out = Vec::new();
    out.extend_from_slice(
        b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\"><D:response><D:href>",
    );
    push_text(&mut out, call.req.uri().path());
    out.extend_from_slice(b"</D:href>");
    let mut group = |names: Vec<&PropName>, status: &str| {
        if names.is_empty() {
            return;
        }
        out.extend_from_slice(b"<D:propstat><D:prop>");
        for n in names {
            props::write_name(&mut out, n);
        }
        out.extend_from_slice(b"</D:prop><D:status>HTTP/1.1 ");
        out.extend_from_slice(status.as_bytes());
        out.extend_from_slice(b"</D:status></D:propstat>");
    };
    if applied {
        group(updates.iter().map(Update::name).collect(), "200 OK");
    } else {
        let (live, dead): (Vec<_>, Vec<_>) =
            updates.iter().map(Update::name).partition(|n| n.is_live());
        group(live, "403 Forbidden");
        group(dead, "424 Failed Dependency");
    }
    out.extend_from_slice(b"</D:response></D:multistatus>\n");
    Ok(HttpResponse::build(StatusCode::MULTI_STATUS)
        .content_type("application/xml; charset=utf-8")
        .body(out))
}
