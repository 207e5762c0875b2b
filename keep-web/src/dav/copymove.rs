//! COPY and MOVE (RFC 4918 §9.8, §9.9): the Destination resolved on this host with the
//! request's token, `Overwrite` and `Depth` read, one commit (two for a MOVE between
//! collections: the copy, then the removal).

use actix_web::HttpResponse;
use keep_format::Token;

use crate::dav::call::Call;
use crate::error::Error;
use crate::ops::write::{self, CopyMove, Target};
use crate::request::headers::{self, Depth};
use crate::request::method::DavMethod;
use crate::resolve::host::strip_port;
use crate::resolve::node::{resolve, Node};
use crate::resolve::url::parse;

/// The node a COPY or MOVE `Destination` names, resolved with the request's token.
async fn destination(call: &Call<'_>, tok: &Token) -> Result<Node, Error> {
    let d = headers::destination(call.req)?;
    let req_host = headers::get(call.req, "host").unwrap_or_default();
    if !d.host.eq_ignore_ascii_case(req_host) {
        return Err(Error::OtherServer(format!(
            "Destination is on another server ({}): COPY and MOVE stay on this one",
            d.host
        )));
    }
    let vhost = call.hosts.vhost_id(&strip_port(d.host));
    let parsed = parse(d.path, vhost.as_deref())?;
    match resolve(call.up, &parsed, tok).await {
        Err(Error::NotFound | Error::NoSuchPath | Error::Unauthorized) => {
            Err(Error::Forbidden(format!(
                "Destination {:?} is not inside a collection this token can see",
                d.path
            )))
        }
        r => r,
    }
}

pub async fn copy_move(call: &Call<'_>, src: Target, tok: &Token) -> Result<HttpResponse, Error> {
    let is_move = call.method == DavMethod::Move;
    let dst = Target::of(destination(call, tok).await?)?;
    if src.kind.is_none() {
        return Err(Error::NoSuchPath);
    }
    let overwrite = headers::overwrite(call.req)?;
    let deep = match headers::depth(call.req)? {
        None | Some(Depth::Infinity) => true,
        Some(Depth::Zero) if !is_move => false,
        _ => {
            return Err(Error::BadRequest(if is_move {
                "MOVE takes Depth: infinity (or none)".into()
            } else {
                "COPY takes Depth: 0 or infinity".into()
            }))
        }
    };
    let how = CopyMove {
        is_move,
        overwrite,
        deep,
    };
    let existed = write::copy_move(call.up, &src, &dst, tok, how).await?;
    Ok(if existed {
        HttpResponse::NoContent().finish()
    } else {
        HttpResponse::Created().finish()
    })
}
