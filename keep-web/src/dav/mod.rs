//! The WebDAV handlers, one per method family, and the one dispatch on [`DavMethod`].
//! A handler is given an authorized request ([`Call`]), the node its path resolved to
//! and the token that resolved it.

pub mod call;
mod copymove;
mod entries;
mod get;
mod html;
mod lock;
pub mod options;
mod propfind;
mod put;
mod write;
mod xml;

use actix_web::HttpResponse;
use keep_format::Token;

use crate::error::Error;
use crate::ops::write::Target;
use crate::request::method::DavMethod;
use crate::resolve::node::Node;

use self::call::Call;

/// Answers an authorized request.
pub async fn handle(
    mut call: Call<'_>,
    node: Node,
    token: Option<Token>,
) -> Result<HttpResponse, Error> {
    let missing = matches!(node, Node::Missing { .. });
    // a write needs a token of the caller's own, and a target inside a collection
    let target = |node: Node| -> Result<(Target, Token), Error> {
        let t = Target::of(node)?;
        Ok((t, token.clone().ok_or(Error::Unauthorized)?))
    };
    match call.method {
        DavMethod::Get | DavMethod::Head | DavMethod::Propfind if missing => Err(Error::NoSuchPath),
        DavMethod::Options => Ok(options::options()),
        DavMethod::Get | DavMethod::Head => get::get(&call, node, token).await,
        DavMethod::Propfind => propfind::propfind(&call, node),
        // LOCK on a missing path answers 201 and creates nothing
        DavMethod::Lock => lock::lock(&call, missing),
        DavMethod::Unlock => Ok(lock::unlock()),
        DavMethod::Put => {
            let (t, tok) = target(node)?;
            put::put(&mut call, t, tok).await
        }
        DavMethod::Mkcol => {
            let (t, tok) = target(node)?;
            write::mkcol(&call, t, &tok).await
        }
        DavMethod::Delete => {
            let (t, tok) = target(node)?;
            write::delete(&call, t, &tok).await
        }
        DavMethod::Proppatch => {
            let (t, tok) = target(node)?;
            write::proppatch(&call, t, &tok).await
        }
        DavMethod::Copy | DavMethod::Move => {
            let (t, tok) = target(node)?;
            copymove::copy_move(&call, t, &tok).await
        }
        DavMethod::Post => Err(Error::MethodNotAllowed),
    }
}
