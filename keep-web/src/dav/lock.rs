//! LOCK and UNLOCK as no-ops (DESIGN §5), so that Finder, Windows and davfs2 can write.

use actix_web::http::header::HeaderValue;
use actix_web::HttpResponse;

use crate::dav::call::Call;
use crate::dav::xml::push_text;
use crate::error::Error;
use crate::request::{body, headers};

/// A fresh `opaquelocktoken:` URI (RFC 4918 §20.7).
fn fresh_token() -> String {
    let h = hex::encode(rand::random::<[u8; 16]>());
    format!(
        "opaquelocktoken:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// LOCK: a fresh token (or, for a refresh, the one in the `If` header) and a
/// lockdiscovery body that echoes the requested scope, depth and owner. On a missing
/// path it answers 201 and creates nothing.
pub fn lock(call: &Call<'_>, missing: bool) -> Result<HttpResponse, Error> {
    let info = body::lockinfo(call.body)?;
    let refresh_token = headers::get(call.req, "if").and_then(|v| {
        let start = v.find("<opaquelocktoken:")?;
        let rest = &v[start + 1..];
        Some(rest[..rest.find('>')?].to_string())
    });
    let tok = match (&info, refresh_token) {
        (None, Some(t)) => t,
        _ => fresh_token(),
    };
    let info = info.unwrap_or_default();
    let depth = match headers::get(call.req, "depth") {
        Some("0") => "0",
        _ => "infinity",
    };
    let mut out = Vec::new();
    out.extend_from_slice(
        b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:prop xmlns:D=\"DAV:\"><D:lockdiscovery><D:activelock>\
<D:locktype><D:write/></D:locktype><D:lockscope>",
    );
    out.extend_from_slice(if info.shared {
        b"<D:shared/>"
    } else {
        b"<D:exclusive/>"
    });
    out.extend_from_slice(b"</D:lockscope><D:depth>");
    out.extend_from_slice(depth.as_bytes());
    out.extend_from_slice(b"</D:depth>");
    if let Some(o) = &info.owner {
        out.extend_from_slice(b"<D:owner>");
        out.extend_from_slice(o.as_bytes());
        out.extend_from_slice(b"</D:owner>");
    }
    out.extend_from_slice(b"<D:timeout>Second-3600</D:timeout><D:locktoken><D:href>");
    push_text(&mut out, &tok);
    out.extend_from_slice(b"</D:href></D:locktoken><D:lockroot><D:href>");
    push_text(&mut out, call.req.uri().path());
    out.extend_from_slice(b"</D:href></D:lockroot></D:activelock></D:lockdiscovery></D:prop>\n");
    let mut r = if missing {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    // the token came from a valid header or was made here: a valid header again
    if let Ok(v) = HeaderValue::from_str(&format!("<{tok}>")) {
        r.insert_header(("Lock-Token", v));
    }
    Ok(r.content_type("application/xml; charset=utf-8").body(out))
}

pub fn unlock() -> HttpResponse {
    HttpResponse::NoContent().finish()
}
