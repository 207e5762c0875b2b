//! What a WebDAV handler is given: the request, its parsed path, and the services it
//! may use. Built by the service once the request is authorized.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use actix_web::{web, HttpRequest};

use crate::ops::repack::Repacker;
use crate::request::method::DavMethod;
use crate::resolve::host::Hosts;
use crate::resolve::url::Parsed;
use crate::upstream::Upstream;

pub struct Call<'a> {
    pub req: &'a HttpRequest,
    pub method: DavMethod,
    pub parsed: &'a Parsed,
    /// Files are sent as attachments (the download host).
    pub attachment: bool,
    /// The request body, read whole (empty for PUT, whose body streams).
    pub body: &'a web::Bytes,
    /// PUT's body, not read yet.
    pub payload: Option<web::Payload>,
    pub up: &'a Arc<Upstream>,
    pub hosts: &'a Hosts,
    pub repacker: &'a Arc<Repacker>,
    /// File bytes sent (the metrics).
    pub bytes_out: &'a Arc<AtomicU64>,
}
