//! GET and HEAD of a file: conditionals, Range (single, multipart, suffix, open-ended,
//! If-Range, 416) and the block-slice stream.

use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix_web::body::SizedStream;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use keep_format::{Locator, Token};

use crate::error::Error;
use crate::upstream::{Upstream, View};
use crate::Ctx;

/// One block slice to fetch, owned so the stream can outlive the request.
struct Part {
    locator: Locator,
    off: u64,
    len: u64,
}

/// How many block slices are requested ahead of the one being sent.
const READ_AHEAD: usize = 2;

fn header_str(req: &HttpRequest, h: header::HeaderName) -> Option<&str> {
    req.headers().get(h).and_then(|v| v.to_str().ok())
}

fn etag_matches(list: &str, etag: &str, weak: bool) -> bool {
    list.split(',').map(str::trim).any(|t| {
        if t == "*" {
            return true;
        }
        if weak {
            t.trim_start_matches("W/") == etag
        } else {
            t == etag
        }
    })
}

pub fn file_etag(view: &View, path: &str) -> Option<String> {
    view.index
        .file(path)
        .map(|f| format!("\"{}\"", f.content_id().to_hex()))
}

pub fn serve_file(
    up: &Arc<Upstream>,
    req: &HttpRequest,
    ctx: &Ctx,
    view: &Arc<View>,
    path: &str,
    token: Token,
    counter: Arc<AtomicU64>,
) -> Result<HttpResponse, Error> {
    let file = view.index.file(path).ok_or(Error::NoSuchPath)?;
    let size = file.size();
    let etag = format!("\"{}\"", file.content_id().to_hex());
    let modified = crate::time::trunc(view.modified);
    let ctype = mime_guess::from_path(path).first_or_octet_stream();
    let name = path.rsplit('/').next().unwrap_or(path);

    let mut b = HttpResponse::Ok();
    b.insert_header((header::ETAG, etag.clone()))
        .insert_header((header::LAST_MODIFIED, httpdate::fmt_http_date(modified)))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header(("X-Content-Type-Options", "nosniff"));
    if ctx.parsed.pdh_url {
        b.insert_header((
            header::CACHE_CONTROL,
            "private, max-age=31536000, immutable",
        ));
    }
    if ctx.attachment {
        b.insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{}\"; filename*=UTF-8''{}",
                name.replace(['"', '\\', '\r', '\n'], "_"),
                crate::path::encode(name)
            ),
        ));
    }

    // conditionals (RFC 9110 §13.2.2 order)
    if let Some(inm) = header_str(req, header::IF_NONE_MATCH) {
        if etag_matches(inm, &etag, true) {
            return Ok(not_modified(b));
        }
    } else if let Some(ims) = header_str(req, header::IF_MODIFIED_SINCE) {
        if let Ok(t) = httpdate::parse_http_date(ims) {
            if modified <= t {
                return Ok(not_modified(b));
            }
        }
    }

    let mut ranges: Option<Vec<RangeInclusive<u64>>> = None;
    if let Some(r) = header_str(req, header::RANGE) {
        let if_range_ok = match header_str(req, header::IF_RANGE) {
            None => true,
            Some(v) if v.starts_with('"') => v == etag,
            Some(v) => httpdate::parse_http_date(v).is_ok_and(|t| t == modified),
        };
        if if_range_ok {
            // a malformed Range is ignored (RFC 9110 §14.2); an unsatisfiable one is 416
            if let Ok(parsed) = http_range_header::parse_range_header(r) {
                use http_range_header::RangeUnsatisfiableError as U;
                match parsed.validate(size) {
                    _ if size == 0 => return Err(Error::RangeNotSatisfiable(size)),
                    Ok(v) if !v.is_empty() => ranges = Some(v),
                    Ok(_) => {}
                    // a suffix longer than the file means all of it (RFC 9110 §14.1.2)
                    Err(U::FileSuffixOutOfBounds) if !r.contains(',') => {
                        ranges = Some(vec![0..=size - 1]);
                    }
                    Err(_) => return Err(Error::RangeNotSatisfiable(size)),
                }
            }
        }
    }

    let head = req.method() == actix_web::http::Method::HEAD;
    let fetch = |start: u64, end: u64| -> BoxStream<'static, Result<Bytes, Error>> {
        if head {
            return stream::empty().boxed();
        }
        byte_stream(
            up_parts(view, path, start, end),
            up.clone(),
            token.clone(),
            counter.clone(),
        )
    };
    match ranges {
        None => {
            b.content_type(ctype.essence_str());
            Ok(b.body(SizedStream::new(size, fetch(0, size))))
        }
        Some(rs) if rs.len() == 1 => {
            let (s, e) = (*rs[0].start(), *rs[0].end());
            b.status(StatusCode::PARTIAL_CONTENT)
                .content_type(ctype.essence_str())
                .insert_header((header::CONTENT_RANGE, format!("bytes {s}-{e}/{size}")));
            Ok(b.body(SizedStream::new(e - s + 1, fetch(s, e + 1))))
        }
        Some(rs) => {
            let boundary = format!("keepweb{:032x}", rand::random::<u128>());
            let mut total = 0u64;
            let mut parts: Vec<BoxStream<'static, Result<Bytes, Error>>> = Vec::new();
            for r in &rs {
                let (s, e) = (*r.start(), *r.end());
                let head_text = format!(
                    "\r\n--{boundary}\r\nContent-Type: {}\r\nContent-Range: bytes {s}-{e}/{size}\r\n\r\n",
                    ctype.essence_str()
                );
                total += head_text.len() as u64 + (e - s + 1);
                parts.push(
                    stream::once(async move { Ok::<Bytes, Error>(Bytes::from(head_text)) }).boxed(),
                );
                parts.push(fetch(s, e + 1));
            }
            let tail = format!("\r\n--{boundary}--\r\n");
            total += tail.len() as u64;
            if !head {
                parts.push(
                    stream::once(async move { Ok::<Bytes, Error>(Bytes::from(tail)) }).boxed(),
                );
            }
            let body: BoxStream<'static, Result<Bytes, Error>> = if head {
                stream::empty().boxed()
            } else {
                stream::iter(parts).flatten().boxed()
            };
            b.status(StatusCode::PARTIAL_CONTENT).insert_header((
                header::CONTENT_TYPE,
                format!("multipart/byteranges; boundary={boundary}"),
            ));
            Ok(b.body(SizedStream::new(total, body)))
        }
    }
}

fn not_modified(mut b: HttpResponseBuilder) -> HttpResponse {
    b.status(StatusCode::NOT_MODIFIED).finish()
}

fn up_parts(view: &View, path: &str, start: u64, end: u64) -> Vec<Part> {
    let Some(f) = view.index.file(path) else {
        return Vec::new();
    };
    f.slices(start..end)
        .map(|s| Part {
            locator: view.signed(s.locator),
            off: s.block_offset,
            len: s.len,
        })
        .collect()
}

/// Streams the parts in order, requesting up to [`READ_AHEAD`] slices ahead; memory is
/// bounded by what the open responses buffer.
fn byte_stream(
    parts: Vec<Part>,
    up: Arc<Upstream>,
    token: Token,
    counter: Arc<AtomicU64>,
) -> BoxStream<'static, Result<Bytes, Error>> {
    stream::iter(parts)
        .map(move |p| {
            let up = up.clone();
            let token = token.clone();
            async move { up.block_slice(&p.locator, p.off, p.len, &token).await }
        })
        .buffered(READ_AHEAD)
        .try_flatten()
        .inspect_ok(move |b| {
            counter.fetch_add(b.len() as u64, Ordering::Relaxed);
        })
        .boxed()
}
