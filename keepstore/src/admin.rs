//! Admin-token routes (index, mounts, trash, untrash) and management-token routes
//! (health, metrics).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::BytesMut;
use futures_util::StreamExt;
use keep_format::Hash;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::locator::parse_locator;
use keep_format::time::unix_now;

use crate::{auth, Error, Keepstore};

fn require_admin(req: &HttpRequest, ks: &Keepstore) -> Result<(), Error> {
    auth::require_exact(
        req,
        &ks.inner.admin_token,
        "use the admin endpoints",
        "cluster's admin (system root) token",
    )
}

fn require_management(req: &HttpRequest, ks: &Keepstore) -> Result<(), Error> {
    auth::require_exact(
        req,
        &ks.inner.management_token,
        "read health or metrics",
        "management token",
    )
}

pub(crate) async fn health(
    req: HttpRequest,
    ks: web::Data<Keepstore>,
) -> Result<HttpResponse, Error> {
    require_management(&req, &ks)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"health": "OK"})))
}

pub(crate) async fn metrics(
    req: HttpRequest,
    ks: web::Data<Keepstore>,
) -> Result<HttpResponse, Error> {
    require_management(&req, &ks)?;
    let ks = ks.get_ref().clone();
    let text =
        tokio::task::spawn_blocking(move || ks.inner.metrics.render(&ks.inner.volumes)).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(text))
}

pub(crate) async fn index_all(
    req: HttpRequest,
    ks: web::Data<Keepstore>,
) -> Result<HttpResponse, Error> {
    index(req, ks, String::new()).await
}

pub(crate) async fn index_prefix(
    req: HttpRequest,
    path: web::Path<String>,
    ks: web::Data<Keepstore>,
) -> Result<HttpResponse, Error> {
    index(req, ks, path.into_inner()).await
}

async fn index(
    req: HttpRequest,
    ks: web::Data<Keepstore>,
    prefix: String,
) -> Result<HttpResponse, Error> {
    require_admin(&req, &ks)?;
    if prefix.len() > 64
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Error::BadRequest(format!(
            "the index prefix must be at most 64 lowercase hex digits (keepstore's limit for a prefix); got {} characters{}",
            prefix.len(),
            if prefix.len() <= 64 { " that are not all lowercase hex" } else { "" }
        )));
    }
    let ks = ks.get_ref().clone();
    let text = tokio::task::spawn_blocking(move || -> Result<String, Error> {
        let mut out = String::new();
        for v in &ks.inner.volumes {
            v.index(&prefix, &mut |h, m| {
                out.push_str(&format!("{h}+{} {}\n", m.size, m.mtime_ns));
            })?;
        }
        // a final empty line: the listing is complete
        out.push('\n');
        Ok(out)
    })
    .await??;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(text))
}

#[derive(Serialize)]
struct Mount {
    uuid: String,
    /// `directory` or `s3`.
    kind: &'static str,
    path: String,
    read_only: bool,
    free_bytes: u64,
    total_bytes: u64,
    block_count: u64,
}

pub(crate) async fn mounts(
    req: HttpRequest,
    ks: web::Data<Keepstore>,
) -> Result<HttpResponse, Error> {
    require_admin(&req, &ks)?;
    let ks = ks.get_ref().clone();
    let list = tokio::task::spawn_blocking(move || -> Result<Vec<Mount>, Error> {
        let mut out = Vec::new();
        for v in &ks.inner.volumes {
            let space = v.space()?;
            let mut n = 0u64;
            v.index("", &mut |_, _| n += 1)?;
            out.push(Mount {
                uuid: v.id().to_string(),
                kind: v.kind(),
                path: v.path(),
                read_only: v.read_only(),
                free_bytes: space.free,
                total_bytes: space.total,
                block_count: n,
            });
        }
        Ok(out)
    })
    .await??;
    Ok(HttpResponse::Ok().json(list))
}

/// Largest body of `PUT /trash` and `PUT /pull` (read only after the admin token was
/// checked).
pub(crate) const LIST_BODY_MAX: u64 = 16 << 20;
/// Most entries in one trash or pull list.
pub(crate) const LIST_ENTRIES_MAX: usize = 100_000;

/// Reads a JSON list body of at most [`LIST_BODY_MAX`] bytes and [`LIST_ENTRIES_MAX`]
/// entries: refused from `Content-Length` before reading, or as soon as the body passes
/// the limit. Call only after authenticating.
async fn read_list<T: DeserializeOwned>(
    req: &HttpRequest,
    mut payload: web::Payload,
    what: &'static str,
    shape: &str,
) -> Result<Vec<T>, Error> {
    let too_large = || Error::BodyTooLarge {
        what,
        limit: LIST_BODY_MAX,
    };
    if let Some(n) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        if n > LIST_BODY_MAX {
            return Err(too_large());
        }
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| Error::Body {
            after: body.len() as u64,
            why: e.to_string(),
        })?;
        if (body.len() + chunk.len()) as u64 > LIST_BODY_MAX {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let items: Vec<T> = serde_json::from_slice(&body)
        .map_err(|e| Error::BadRequest(format!("the {what} must be JSON {shape}: {e}")))?;
    if items.len() > LIST_ENTRIES_MAX {
        return Err(Error::TooManyEntries {
            what,
            got: items.len(),
            limit: LIST_ENTRIES_MAX,
        });
    }
    Ok(items)
}

#[derive(Deserialize)]
struct TrashItem {
    locator: String,
    block_mtime: u64,
}

#[derive(Serialize, Debug, Default, PartialEq, Eq)]
struct TrashResult {
    trashed: u64,
    skipped: u64,
}

pub(crate) async fn trash(
    req: HttpRequest,
    payload: web::Payload,
    ks: web::Data<Keepstore>,
) -> Result<HttpResponse, Error> {
    // authenticate before reading a byte of the body
    require_admin(&req, &ks)?;
    let items: Vec<TrashItem> = read_list(
        &req,
        payload,
        "trash list",
        r#"[{"locator":"<hash>+<size>","block_mtime":<ns>}, …]"#,
    )
    .await?;
    let mut hashes: Vec<(Hash, u64)> = Vec::with_capacity(items.len());
    for it in &items {
        hashes.push((parse_locator(&it.locator)?.hash, it.block_mtime));
    }
    let ks = ks.get_ref().clone();
    let result = tokio::task::spawn_blocking(move || -> Result<TrashResult, Error> {
        let now = SystemTime::now();
        // a block newer than this may still be referenced by a valid signature
        let cutoff = now
            .checked_sub(ks.inner.signer.ttl())
            .unwrap_or(UNIX_EPOCH)
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos();
        let deadline = unix_now().saturating_add(ks.inner.trash_lifetime.as_secs());
        let mut res = TrashResult::default();
        for (hash, mtime) in hashes {
            let mut done = false;
            // too new: a client may still hold a valid signature for it
            let young = u128::from(mtime) > cutoff;
            for v in &ks.inner.volumes {
                if young {
                    break;
                }
                // skipped when its mtime is no longer the one the index showed
                if v.trash(&hash, deadline, Some(mtime))? {
                    tracing::info!(block = %hash, volume = v.id(), deadline, "trashed block");
                    done = true;
                }
            }
            if done {
                res.trashed += 1;
            } else {
                res.skipped += 1;
            }
        }
        Ok(res)
    })
    .await??;
    Ok(HttpResponse::Ok().json(result))
}

pub(crate) async fn untrash(
    req: HttpRequest,
    path: web::Path<String>,
    ks: web::Data<Keepstore>,
) -> Result<HttpResponse, Error> {
    require_admin(&req, &ks)?;
    let hash = parse_locator(path.as_str())?.hash;
    let ks = ks.get_ref().clone();
    let restored = tokio::task::spawn_blocking(move || -> Result<bool, Error> {
        let mut any = false;
        for v in ks.order(&hash) {
            if v.untrash(&hash)? {
                tracing::info!(block = %hash, volume = v.id(), "untrashed block");
                any = true;
            }
        }
        Ok(any)
    })
    .await??;
    if !restored {
        return Err(Error::NotInTrash(hash));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("OK\n"))
}

/// `PUT /pull`: replaces the pull queue; answers how many entries it now holds.
pub(crate) async fn pull(
    req: HttpRequest,
    payload: web::Payload,
    ks: web::Data<Keepstore>,
) -> Result<HttpResponse, Error> {
    require_admin(&req, &ks)?;
    let items: Vec<crate::pull::PullItem> = read_list(
        &req,
        payload,
        "pull list",
        r#"[{"locator":"<hash>+<size>","servers":["http://host:25107", …]}, …]"#,
    )
    .await?;
    let pulls = items
        .into_iter()
        .map(crate::pull::Pull::check)
        .collect::<Result<Vec<_>, _>>()?;
    let n = pulls.len();
    ks.set_pulls(pulls);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "queued": n })))
}
