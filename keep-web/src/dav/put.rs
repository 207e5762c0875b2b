//! PUT: a file from the streamed body (201, or 204 is not used: every PUT answers 201
//! with the file's ETag), then a background repack if the collection collects small
//! blocks.

use actix_web::http::header;
use actix_web::HttpResponse;
use keep_format::Token;

use crate::dav::call::Call;
use crate::error::Error;
use crate::ops::repack;
use crate::ops::write::{self, Target};
use crate::request::digest::Digests;
use crate::request::headers;

pub async fn put(call: &mut Call<'_>, t: Target, tok: Token) -> Result<HttpResponse, Error> {
    let declared =
        match headers::get(call.req, "content-length") {
            Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
                Error::BadRequest("the Content-Length header is not a number".into())
            })?),
            None => None,
        };
    let digests = Digests::from(call.req)?;
    let payload = call
        .payload
        .take()
        .ok_or_else(|| Error::Internal("the PUT body was already read".into()))?;
    let etag = write::put(call.up, &t, payload, declared, digests, &tok).await?;
    if repack::worth_a_look(&t.view) {
        call.repacker.after_write(call.up, &t.uuid, &tok);
    }
    let mut r = HttpResponse::Created();
    if let Some(e) = etag {
        r.insert_header((header::ETAG, e));
    }
    Ok(r.finish())
}
