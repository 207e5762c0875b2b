//! Reading a file: conditionals (RFC 9110 §13), Range (single, multipart, suffix,
//! open-ended, If-Range, 416; at most `limits::RANGE_PARTS_MAX` parts, none
//! overlapping), and the response streamed from the blocks.

use std::ops::RangeInclusive;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::SystemTime;

use actix_web::body::SizedStream;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use http_range_header::RangeUnsatisfiableError;
use keep_format::Token;

use crate::blocks::file_stream;
use crate::error::Error;
use crate::limits::RANGE_PARTS_MAX;
use crate::request::headers;
use crate::upstream::{Upstream, View};

/// How a file is answered, besides its bytes.
pub struct FileOpts {
    /// The URL names fixed content (a PDH): `Cache-Control: immutable`.
    pub immutable: bool,
    /// `Content-Disposition: attachment` (the download host).
    pub attachment: bool,
    /// Counts the file bytes sent (the metrics).
    pub counter: Arc<AtomicU64>,
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

/// A file's strong ETag: from its content (blocks and offsets), not the collection's
/// modification time, so it survives changes to other files.
pub fn file_etag(view: &View, path: &str) -> Option<String> {
    view.index
        .file(path)
        .map(|f| format!("\"{}\"", f.content_id().to_hex()))
}

/// The ranges of a `Range` header to serve (`None`: the whole file), per RFC 9110
/// §14.2: a malformed header is ignored; an unsatisfiable one, or one keep-web won't
/// serve, is a 416.
fn ranges(r: &str, size: u64) -> Result<Option<Vec<RangeInclusive<u64>>>, Error> {
    // a malformed Range is ignored (RFC 9110 §14.2)
    let Ok(parsed) = http_range_header::parse_range_header(r) else {
        return Ok(None);
    };
    if size == 0 {
        return Err(Error::RangeNotSatisfiable(size));
    }
    if parsed.ranges.len() > RANGE_PARTS_MAX {
        return Err(Error::RangeRefused {
            len: size,
            why: format!(
                "{} ranges in one request (keep-web's limit: {RANGE_PARTS_MAX}; see \
                 doc/webdav.md, Limits)",
                parsed.ranges.len()
            ),
        });
    }
    match parsed.validate(size) {
        Ok(v) if !v.is_empty() => Ok(Some(v)),
        Ok(_) => Ok(None),
        // a suffix longer than the file means all of it (RFC 9110 §14.1.2)
        Err(RangeUnsatisfiableError::FileSuffixOutOfBounds) if !r.contains(',') => {
            Ok(Some(vec![0..=size - 1]))
        }
        Err(RangeUnsatisfiableError::OverlappingRanges) => Err(Error::RangeRefused {
            len: size,
            why: "the ranges overlap (keep-web serves several ranges only when they don't; \
                  see doc/webdav.md, Limits)"
                .into(),
        }),
        Err(_) => Err(Error::RangeNotSatisfiable(size)),
    }
}

/// GET or HEAD (`head`) of file `path` of `view`. The status waits for the first bytes
/// of the body (see [`started`]).
pub async fn serve_file(
    up: &Arc<Upstream>,
    req: &HttpRequest,
    view: &Arc<View>,
    path: &str,
    token: &Token,
    head: bool,
    opts: FileOpts,
) -> Result<HttpResponse, Error> {
    let file = view.index.file(path).ok_or(Error::NoSuchPath)?;
    let size = file.size();
    let etag = format!("\"{}\"", file.content_id().to_hex());
    let modified = keep_format::time::trunc_seconds(view.modified);
    let ctype = mime_guess::from_path(path).first_or_octet_stream();
    let name = path.rsplit('/').next().unwrap_or(path);

    let mut b = HttpResponse::Ok();
    b.insert_header((header::ETAG, etag.clone()))
        .insert_header((header::LAST_MODIFIED, httpdate::fmt_http_date(modified)))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header(("X-Content-Type-Options", "nosniff"));
    if opts.immutable {
        b.insert_header((
            header::CACHE_CONTROL,
            "private, max-age=31536000, immutable",
        ));
    }
    if opts.attachment {
        b.insert_header(headers::attachment(name));
    }

    if not_modified_since(req, &etag, modified) {
        return Ok(b.status(StatusCode::NOT_MODIFIED).finish());
    }
    let wanted = match headers::get(req, header::RANGE) {
        Some(r) if if_range(req, &etag, modified) => ranges(r, size)?,
        _ => None,
    };

    let fetch = |start: u64, end: u64| -> BoxStream<'static, Result<Bytes, Error>> {
        if head {
            return stream::empty().boxed();
        }
        file_stream(
            up,
            view,
            path,
            start..end,
            token,
            Some(opts.counter.clone()),
        )
    };
    let ctype = ctype.essence_str();
    match wanted {
        None => {
            let body = started(fetch(0, size)).await?;
            b.content_type(ctype);
            Ok(b.body(SizedStream::new(size, body)))
        }
        Some(rs) if rs.len() == 1 => {
            let (s, e) = (*rs[0].start(), *rs[0].end());
            let body = started(fetch(s, e + 1)).await?;
            b.status(StatusCode::PARTIAL_CONTENT)
                .content_type(ctype)
                .insert_header((header::CONTENT_RANGE, format!("bytes {s}-{e}/{size}")));
            Ok(b.body(SizedStream::new(e - s + 1, body)))
        }
        Some(rs) => Ok(multipart(b, &rs, size, ctype, head, fetch)),
    }
}

/// `st` once its first chunk has arrived: a keepstore that can't be reached, or fails,
/// at the start is then answered with its status (503, 502) instead of a 200 whose body
/// breaks off.
async fn started(
    mut st: BoxStream<'static, Result<Bytes, Error>>,
) -> Result<BoxStream<'static, Result<Bytes, Error>>, Error> {
    match st.next().await {
        None => Ok(stream::empty().boxed()),
        Some(Err(e)) => Err(e),
        Some(Ok(first)) => Ok(stream::once(async move { Ok(first) }).chain(st).boxed()),
    }
}

/// A `multipart/byteranges` body of the ranges `rs` (RFC 9110 §14.6).
fn multipart(
    mut b: HttpResponseBuilder,
    rs: &[RangeInclusive<u64>],
    size: u64,
    ctype: &str,
    head: bool,
    fetch: impl Fn(u64, u64) -> BoxStream<'static, Result<Bytes, Error>>,
) -> HttpResponse {
    let boundary = format!("keepweb{:032x}", rand::random::<u128>());
    let mut total = 0u64;
    let mut parts: Vec<BoxStream<'static, Result<Bytes, Error>>> = Vec::new();
    let text = |t: String| stream::once(async move { Ok::<Bytes, Error>(Bytes::from(t)) }).boxed();
    for r in rs {
        let (s, e) = (*r.start(), *r.end());
        let head_text = format!(
            "\r\n--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {s}-{e}/{size}\r\n\r\n"
        );
        total += head_text.len() as u64 + (e - s + 1);
        parts.push(text(head_text));
        parts.push(fetch(s, e + 1));
    }
    let tail = format!("\r\n--{boundary}--\r\n");
    total += tail.len() as u64;
    parts.push(text(tail));
    let body: BoxStream<'static, Result<Bytes, Error>> = if head {
        stream::empty().boxed()
    } else {
        stream::iter(parts).flatten().boxed()
    };
    b.status(StatusCode::PARTIAL_CONTENT).insert_header((
        header::CONTENT_TYPE,
        format!("multipart/byteranges; boundary={boundary}"),
    ));
    b.body(SizedStream::new(total, body))
}

/// `If-None-Match` / `If-Modified-Since` say the client has this version (RFC 9110
/// §13.2.2 order: If-None-Match wins).
fn not_modified_since(req: &HttpRequest, etag: &str, modified: SystemTime) -> bool {
    if let Some(inm) = headers::get(req, header::IF_NONE_MATCH) {
        return etag_matches(inm, etag, true);
    }
    headers::get(req, header::IF_MODIFIED_SINCE)
        .and_then(|ims| httpdate::parse_http_date(ims).ok())
        .is_some_and(|t| modified <= t)
}

/// `If-Range` (absent, or naming this version) lets the Range apply.
fn if_range(req: &HttpRequest, etag: &str, modified: SystemTime) -> bool {
    match headers::get(req, header::IF_RANGE) {
        None => true,
        Some(v) if v.starts_with('"') => v == etag,
        Some(v) => httpdate::parse_http_date(v).is_ok_and(|t| t == modified),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_limits() {
        let many = format!(
            "bytes={}",
            (0..=RANGE_PARTS_MAX)
                .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(matches!(
            ranges(&many, 100_000),
            Err(Error::RangeRefused { len: 100_000, .. })
        ));
        let e = ranges("bytes=0-10,5-20", 100).unwrap_err();
        assert!(e.to_string().contains("overlap"), "{e}");
        assert_eq!(ranges("bytes=0-1,4-5", 100).unwrap().unwrap().len(), 2);
        assert!(ranges("bytes=x-y", 100).unwrap().is_none());
        assert!(matches!(
            ranges("bytes=200-", 100),
            Err(Error::RangeNotSatisfiable(100))
        ));
    }
}
