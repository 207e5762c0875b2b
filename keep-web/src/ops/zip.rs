//! Bulk download: `GET <dir>/?accept=application/zip` (or `Accept: application/zip`)
//! streams the directory as a ZIP archive (entries stored, not compressed: science data
//! rarely compresses and the CPU goes to verifying the blocks). Memory stays bounded:
//! the archive is written into a 256 KiB pipe that the response drains. The archive ends
//! with `BLAKE3SUMS`, each file's BLAKE3 in `b3sum` format (`b3sum -c BLAKE3SUMS`
//! checks the unpacked files).

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use async_zip::base::write::ZipFileWriter;
use async_zip::{Compression, ZipDateTime, ZipDateTimeBuilder, ZipEntryBuilder};
use futures_util::io::AsyncWriteExt;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use keep_format::{EntryKind, Token};
use tokio_util::compat::TokioAsyncWriteCompatExt;

use crate::blocks::file_stream;
use crate::error::Error;
use crate::request::{headers, url};
use crate::upstream::{Upstream, View};

/// The pipe between the archive writer and the response.
const PIPE: usize = 256 << 10;

/// Whether a GET of a directory asks for a ZIP.
pub fn wanted(req: &HttpRequest) -> bool {
    let q = req.uri().query().unwrap_or_default();
    if url::query_values(q, "accept")
        .iter()
        .any(|v| v.eq_ignore_ascii_case("application/zip"))
    {
        return true;
    }
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/zip"))
        })
}

async fn write_archive(
    up: Arc<Upstream>,
    view: Arc<View>,
    dir: String,
    token: Token,
    w: tokio::io::DuplexStream,
) -> Result<(), Error> {
    let zerr = Error::Zip;
    let ioerr = |source| Error::Io {
        what: "writing the ZIP",
        source,
    };
    let mut zw = ZipFileWriter::new(w.compat_write());
    // every entry carries the collection's modification time (UTC; a ZIP date has no
    // zone), not the invalid zero date unzip shows as 1980-00-00
    let when = zip_date(view.modified);
    let entry = |name: String| {
        ZipEntryBuilder::new(name.into(), Compression::Stored).last_modification_date(when)
    };
    let mut sums = String::new();
    for (rel, path, kind) in view.index.walk(&dir) {
        if kind == EntryKind::Dir {
            // only empty directories need an entry of their own
            if view.index.list(&path).is_some_and(|l| l.is_empty()) {
                let e = entry(format!("{rel}/"));
                zw.write_entry_whole(e, &[]).await.map_err(zerr)?;
            }
            continue;
        }
        let Some(f) = view.index.file(&path) else {
            continue;
        };
        let size = f.size();
        let e = entry(rel.clone());
        let mut ew = zw.write_entry_stream(e).await.map_err(zerr)?;
        let mut hasher = blake3::Hasher::new();
        let mut st = file_stream(&up, &view, &path, 0..size, &token, None);
        while let Some(chunk) = st.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            ew.write_all(&chunk).await.map_err(ioerr)?;
        }
        ew.close().await.map_err(zerr)?;
        sums.push_str(&format!("{}  {rel}\n", hasher.finalize().to_hex()));
    }
    let mut name = String::from("BLAKE3SUMS");
    // a name no entry at the top of the archive has (the index knows them all)
    let at_top = |n: &str| {
        if dir.is_empty() {
            n.to_string()
        } else {
            format!("{dir}/{n}")
        }
    };
    while view.index.stat(&at_top(&name)).is_some() {
        name.push('~');
    }
    let e = entry(name);
    zw.write_entry_whole(e, sums.as_bytes())
        .await
        .map_err(zerr)?;
    let mut inner = zw.close().await.map_err(zerr)?;
    inner.close().await.map_err(ioerr)?;
    Ok(())
}

/// A ZIP (MS-DOS) date holds the years 1980 to 2107: times outside are clamped.
fn zip_date(t: std::time::SystemTime) -> ZipDateTime {
    let utc = jiff::tz::Offset::UTC
        .to_datetime(jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH));
    let (y, m, d) = (utc.year(), utc.month() as u32, utc.day() as u32);
    let (h, mi, s) = (utc.hour() as u32, utc.minute() as u32, utc.second() as u32);
    let (y, m, d, h, mi, s) = match y {
        ..1980 => (1980, 1, 1, 0, 0, 0),
        2108.. => (2107, 12, 31, 23, 59, 58),
        _ => (y as i32, m, d, h, mi, s),
    };
    ZipDateTimeBuilder::new()
        .year(y)
        .month(m)
        .day(d)
        .hour(h)
        .minute(mi)
        .second(s)
        .build()
}

/// The ZIP of directory `dir` of `view`, named `<name>.zip`.
pub fn serve(
    up: &Arc<Upstream>,
    view: &Arc<View>,
    dir: &str,
    name: &str,
    token: Token,
) -> HttpResponse {
    let (w, r) = tokio::io::duplex(PIPE);
    let task = tokio::spawn(write_archive(
        up.clone(),
        view.clone(),
        dir.to_string(),
        token,
        w,
    ));
    // the archive's bytes, then the writer's verdict: an error aborts the response so
    // that the client sees a failed download, not a short archive
    let body = tokio_util::io::ReaderStream::new(r)
        .map_err(|source| Error::Io {
            what: "streaming the ZIP",
            source,
        })
        .chain(
            stream::once(async move {
                match task.await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(Err(e)),
                    Err(source) => Some(Err(Error::Task {
                        what: "the ZIP writer stopped",
                        source,
                    })),
                }
            })
            .filter_map(|x| async move { x }),
        );
    let file = format!("{}.zip", if name.is_empty() { "collection" } else { name });
    HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header(headers::attachment(&file))
        .streaming(body)
}
