//! Request bodies other than PUT's: read whole, counted while they arrive; and the XML
//! ones checked for their shape before keep-format parses them.

use actix_web::web;
use futures_util::StreamExt;
use keep_format::dav::{self as props, LockInfo, Update, Want};
use quick_xml::events::Event;

use crate::error::{Error, Over};
use crate::limits::{BODY_MAX, XML_DEPTH_MAX, XML_ELEMENTS_MAX};

/// Reads a body whole, refusing it (413) as soon as it passes [`BODY_MAX`].
pub async fn read_small(mut payload: web::Payload, method: &str) -> Result<web::Bytes, Error> {
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|source| Error::BodyRead {
            what: format!("reading the {method} request body"),
            source,
        })?;
        if buf.len() + chunk.len() > BODY_MAX {
            return Err(Error::limit(
                format!("the {method} request body is longer than {BODY_MAX} bytes"),
                format!("{BODY_MAX} bytes for a body other than PUT's"),
                Over::Body,
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Refuses an XML body nested deeper than [`XML_DEPTH_MAX`] or with more than
/// [`XML_ELEMENTS_MAX`] elements (400 naming the limit), in one pass that keeps nothing
/// but the open element names. Whether it is well-formed is keep-format's to say.
fn check_shape(body: &[u8], what: &str) -> Result<(), Error> {
    let mut r = quick_xml::Reader::from_reader(body);
    r.config_mut().check_end_names = false;
    let (mut depth, mut elements) = (0usize, 0usize);
    let mut buf = Vec::new();
    loop {
        match r.read_event_into(&mut buf) {
            Ok(Event::Start(_)) => {
                depth += 1;
                elements += 1;
            }
            Ok(Event::Empty(_)) => elements += 1,
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Eof) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
        if depth > XML_DEPTH_MAX {
            return Err(Error::limit(
                format!("the {what} body nests elements deeper than {XML_DEPTH_MAX}"),
                format!("{XML_DEPTH_MAX} levels in an XML body"),
                Over::Other,
            ));
        }
        if elements > XML_ELEMENTS_MAX {
            return Err(Error::limit(
                format!("the {what} body has more than {XML_ELEMENTS_MAX} elements"),
                format!("{XML_ELEMENTS_MAX} elements in an XML body"),
                Over::Other,
            ));
        }
        buf.clear();
    }
}

pub fn propfind(body: &[u8]) -> Result<Want, Error> {
    check_shape(body, "PROPFIND")?;
    props::parse_propfind(body).map_err(Error::BadBody)
}

pub fn proppatch(body: &[u8]) -> Result<Vec<Update>, Error> {
    check_shape(body, "PROPPATCH")?;
    props::parse_proppatch(body).map_err(Error::BadBody)
}

pub fn lockinfo(body: &[u8]) -> Result<Option<LockInfo>, Error> {
    check_shape(body, "LOCK")?;
    props::parse_lockinfo(body).map_err(Error::BadBody)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_and_wide_bodies_are_refused_before_parsing() {
        let deep = format!(
            "<D:propfind xmlns:D=\"DAV:\">{}{}</D:propfind>",
            "<x>".repeat(20_000),
            "</x>".repeat(20_000)
        );
        let e = propfind(deep.as_bytes()).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("deeper than {XML_DEPTH_MAX}")),
            "{e}"
        );
        let wide = format!(
            "<D:propfind xmlns:D=\"DAV:\"><D:prop>{}</D:prop></D:propfind>",
            "<x/>".repeat(30_000)
        );
        let e = propfind(wide.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("elements"), "{e}");
        // within the limits: keep-format decides
        let ok = "<D:propfind xmlns:D=\"DAV:\"><D:prop><D:getetag/></D:prop></D:propfind>";
        assert!(propfind(ok.as_bytes()).is_ok());
        assert!(matches!(propfind(b"<a>"), Err(Error::BadBody(_))));
    }
}
