//! The HTTP methods keep-web answers, parsed once per request.

use actix_web::http::Method;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DavMethod {
    Options,
    Get,
    Head,
    Post,
    Put,
    Delete,
    Mkcol,
    Copy,
    Move,
    Propfind,
    Proppatch,
    Lock,
    Unlock,
}

/// What a read-only target allows.
pub const READ_METHODS: &str = "OPTIONS, GET, HEAD, PROPFIND, LOCK, UNLOCK";
/// Everything keep-web answers (inside a collection its token may change).
pub const ALL_METHODS: &str = "OPTIONS, GET, HEAD, POST, PUT, DELETE, MKCOL, COPY, MOVE, \
                               PROPFIND, PROPPATCH, LOCK, UNLOCK";

impl DavMethod {
    /// `None`: a method keep-web doesn't answer (405).
    pub fn parse(m: &Method) -> Option<DavMethod> {
        Some(match m.as_str() {
            "OPTIONS" => DavMethod::Options,
            "GET" => DavMethod::Get,
            "HEAD" => DavMethod::Head,
            "POST" => DavMethod::Post,
            "PUT" => DavMethod::Put,
            "DELETE" => DavMethod::Delete,
            "MKCOL" => DavMethod::Mkcol,
            "COPY" => DavMethod::Copy,
            "MOVE" => DavMethod::Move,
            "PROPFIND" => DavMethod::Propfind,
            "PROPPATCH" => DavMethod::Proppatch,
            "LOCK" => DavMethod::Lock,
            "UNLOCK" => DavMethod::Unlock,
            _ => return None,
        })
    }

    /// Methods that change a collection.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            DavMethod::Put
                | DavMethod::Delete
                | DavMethod::Mkcol
                | DavMethod::Copy
                | DavMethod::Move
                | DavMethod::Proppatch
        )
    }

    /// The methods a browser sends: only these follow the query-token → cookie redirect
    /// (DESIGN §5); for WebDAV methods a query token is an ordinary credential.
    pub fn is_browser(self) -> bool {
        matches!(self, DavMethod::Get | DavMethod::Head | DavMethod::Post)
    }

    /// Methods that resolve a path and act on it (OPTIONS and POST don't).
    pub fn acts_on_a_path(self) -> bool {
        !matches!(self, DavMethod::Options | DavMethod::Post)
    }
}
