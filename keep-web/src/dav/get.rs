//! GET and HEAD: a file's bytes; a directory's HTML listing (after a 303 to its `/`
//! form) or, when asked for, its ZIP.

use actix_web::HttpResponse;
use keep_format::Token;

use crate::dav::call::Call;
use crate::dav::html;
use crate::error::Error;
use crate::ops::read::{serve_file, FileOpts};
use crate::ops::zip;
use crate::request::headers;
use crate::request::method::DavMethod;
use crate::resolve::node::Node;

pub async fn get(call: &Call<'_>, node: Node, token: Option<Token>) -> Result<HttpResponse, Error> {
    let trailing = call.parsed.trailing;
    match node {
        Node::Coll {
            view,
            path,
            dir: false,
            ..
        } => {
            if trailing {
                // `file/` names no directory
                return Err(Error::NotFound);
            }
            let tok = token.ok_or(Error::Unauthorized)?;
            let opts = FileOpts {
                immutable: call.parsed.pdh_url,
                attachment: call.attachment,
                counter: call.bytes_out.clone(),
            };
            let head = call.method == DavMethod::Head;
            serve_file(call.up, call.req, &view, &path, &tok, head, opts).await
        }
        _ if !trailing => {
            // a directory without its `/`: a Location that stays on this host
            let mut r = HttpResponse::SeeOther();
            r.insert_header(headers::local_location(
                &format!("{}/", call.req.uri().path()),
                call.req.uri().query(),
            ));
            Ok(r.finish())
        }
        Node::Coll { view, path, .. } if zip::wanted(call.req) => {
            let tok = token.ok_or(Error::Unauthorized)?;
            let name = match call.parsed.segs.last() {
                Some(s) => s.clone(),
                None => view.pdh.to_string(),
            };
            Ok(zip::serve(call.up, &view, &path, &name, tok))
        }
        n => Ok(html::listing(call.parsed, &n)),
    }
}
