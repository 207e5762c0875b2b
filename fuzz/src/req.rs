//! The HTTP-level targets' input: one request, derived from the fuzz input with
//! `arbitrary`, whose parts are either raw bytes or picks from the target's table of
//! known-good words (valid tokens, UUIDs, locators, manifests, route names, XML bodies),
//! so that mutations reach deep into the routers instead of stopping at the first 401.
//!
//! Every type here is consumed from the front of the input only (no `String`, whose
//! length `arbitrary` reads from the end), so [`Enc`] can write the bytes that decode
//! to a given request: the committed seeds are made that way (`seedgen`), and a test
//! checks that decoding what was encoded gives the same request back.

use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};

/// Raw bytes: element by element with a continuation byte each when inside the input,
/// the whole remaining input when last (a body).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl<'a> Arbitrary<'a> for Bytes {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Bytes(u.arbitrary_iter::<u8>()?.collect::<Result<_, _>>()?))
    }
    fn arbitrary_take_rest(u: Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Bytes(u.take_rest().to_vec()))
    }
}

/// One piece of text: a word of the target's table (index modulo its length), or bytes.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Known(u8),
    Raw(Bytes),
    /// A word with bytes appended (`<uuid>x`, `<token>/`).
    Suffixed(u8, Bytes),
}

#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Put,
    Post,
    Patch,
    Delete,
    Options,
    Propfind,
    Proppatch,
    Mkcol,
    Copy,
    Move,
    Lock,
    Unlock,
    Other(Bytes),
}

#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    Bearer(Part),
    OAuth2(Part),
    Basic(Part, Part),
    Raw(Part),
}

/// A JSON value for API bodies (and keep-web's JSON-ish inputs).
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Str(Part),
    Arr(Vec<Json>),
    Obj(Vec<(Part, Json)>),
}

#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Empty,
    Known(u8),
    Json(Json),
    Form(Vec<(Part, Part)>),
    Raw(Bytes),
}

/// A header: a well-known name (index modulo [`HEADER_NAMES`]) or raw bytes.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Name {
    Known(u8),
    Raw(Bytes),
}

pub const HEADER_NAMES: &[&str] = &[
    "content-type",
    "range",
    "depth",
    "destination",
    "overwrite",
    "if",
    "lock-token",
    "timeout",
    "cookie",
    "content-length",
    "content-range",
    "x-keep-desired-replicas",
    "origin",
    "access-control-request-method",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-range",
    "accept-encoding",
    "x-http-method-override",
    "content-md5",
    "digest",
    "x-keep-storage-classes",
    "referer",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "x-request-id",
    "content-encoding",
    "expect",
    "accept",
    "user-agent",
];

#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The Host header (keep-web routes on it); `None`: the target's default host.
    pub host: Option<Part>,
    pub auth: Auth,
    pub path: Vec<Part>,
    /// The path ends with `/`.
    pub trailing_slash: bool,
    pub query: Vec<(Part, Part)>,
    pub headers: Vec<(Name, Part)>,
    pub body: Body,
}

/// A request made concrete: what the target sends to the service.
#[derive(Debug)]
pub struct Rendered {
    pub method: Vec<u8>,
    /// Path and query, every byte a URI allows there.
    pub uri: String,
    pub host: Option<Vec<u8>>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// Percent-encodes every byte a URI path or query may not hold raw; `%` stays raw so
/// that bad escapes reach the service too.
fn uri_bytes(out: &mut String, b: &[u8], extra_ok: &[u8]) {
    for &c in b {
        let ok =
            c.is_ascii_alphanumeric() || b"-._~!$'()*+,;:@%".contains(&c) || extra_ok.contains(&c);
        if ok {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
}

impl Part {
    pub fn render(&self, words: &[String]) -> Vec<u8> {
        let word = |i: u8| -> Vec<u8> {
            if words.is_empty() {
                Vec::new()
            } else {
                words[i as usize % words.len()].as_bytes().to_vec()
            }
        };
        match self {
            Part::Known(i) => word(*i),
            Part::Raw(b) => b.0.clone(),
            Part::Suffixed(i, b) => {
                let mut w = word(*i);
                w.extend_from_slice(&b.0);
                w
            }
        }
    }
}

impl Json {
    pub fn render(&self, words: &[String]) -> serde_like::Value {
        match self {
            Json::Null => serde_like::Value::Null,
            Json::Bool(b) => serde_like::Value::Bool(*b),
            Json::Int(i) => serde_like::Value::Int(*i),
            Json::Str(p) => {
                serde_like::Value::Str(String::from_utf8_lossy(&p.render(words)).into_owned())
            }
            Json::Arr(v) => serde_like::Value::Arr(v.iter().map(|j| j.render(words)).collect()),
            Json::Obj(v) => serde_like::Value::Obj(
                v.iter()
                    .map(|(k, j)| {
                        (
                            String::from_utf8_lossy(&k.render(words)).into_owned(),
                            j.render(words),
                        )
                    })
                    .collect(),
            ),
        }
    }
}

/// A JSON writer with no dependency (the keep-format targets don't build serde_json).
pub mod serde_like {
    pub enum Value {
        Null,
        Bool(bool),
        Int(i64),
        Str(String),
        Arr(Vec<Value>),
        Obj(Vec<(String, Value)>),
    }

    fn string(out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }

    impl Value {
        pub fn write(&self, out: &mut String) {
            match self {
                Value::Null => out.push_str("null"),
                Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                Value::Int(i) => out.push_str(&i.to_string()),
                Value::Str(s) => string(out, s),
                Value::Arr(v) => {
                    out.push('[');
                    for (n, x) in v.iter().enumerate() {
                        if n > 0 {
                            out.push(',');
                        }
                        x.write(out);
                    }
                    out.push(']');
                }
                Value::Obj(v) => {
                    out.push('{');
                    for (n, (k, x)) in v.iter().enumerate() {
                        if n > 0 {
                            out.push(',');
                        }
                        string(out, k);
                        out.push(':');
                        x.write(out);
                    }
                    out.push('}');
                }
            }
        }
    }
}

impl Request {
    /// `words`: the target's table; `bodies`: its table of whole bodies (manifests as
    /// JSON, XML documents, trash lists).
    pub fn render(&self, words: &[String], bodies: &[Vec<u8>]) -> Rendered {
        let method = match &self.method {
            Method::Get => b"GET".to_vec(),
            Method::Head => b"HEAD".to_vec(),
            Method::Put => b"PUT".to_vec(),
            Method::Post => b"POST".to_vec(),
            Method::Patch => b"PATCH".to_vec(),
            Method::Delete => b"DELETE".to_vec(),
            Method::Options => b"OPTIONS".to_vec(),
            Method::Propfind => b"PROPFIND".to_vec(),
            Method::Proppatch => b"PROPPATCH".to_vec(),
            Method::Mkcol => b"MKCOL".to_vec(),
            Method::Copy => b"COPY".to_vec(),
            Method::Move => b"MOVE".to_vec(),
            Method::Lock => b"LOCK".to_vec(),
            Method::Unlock => b"UNLOCK".to_vec(),
            Method::Other(b) => b.0.clone(),
        };
        let mut uri = String::new();
        for p in &self.path {
            uri.push('/');
            // a word may hold `/` (a route prefix); raw bytes may not
            match p {
                Part::Known(_) => uri_bytes(&mut uri, &p.render(words), b"/=&"),
                _ => uri_bytes(&mut uri, &p.render(words), b"=&"),
            }
        }
        if self.path.is_empty() || self.trailing_slash {
            uri.push('/');
        }
        if !self.query.is_empty() {
            uri.push('?');
            for (n, (k, v)) in self.query.iter().enumerate() {
                if n > 0 {
                    uri.push('&');
                }
                uri_bytes(&mut uri, &k.render(words), b"/?");
                uri.push('=');
                uri_bytes(&mut uri, &v.render(words), b"/?");
            }
        }
        let mut headers = Vec::new();
        let auth = match &self.auth {
            Auth::None => None,
            Auth::Bearer(p) => Some([b"Bearer ".as_slice(), &p.render(words)].concat()),
            Auth::OAuth2(p) => Some([b"OAuth2 ".as_slice(), &p.render(words)].concat()),
            Auth::Basic(u, p) => {
                let up = [u.render(words), b":".to_vec(), p.render(words)].concat();
                Some([b"Basic ".as_slice(), base64(&up).as_bytes()].concat())
            }
            Auth::Raw(p) => Some(p.render(words)),
        };
        if let Some(a) = auth {
            headers.push((b"authorization".to_vec(), a));
        }
        for (n, v) in &self.headers {
            let name = match n {
                Name::Known(i) => HEADER_NAMES[*i as usize % HEADER_NAMES.len()]
                    .as_bytes()
                    .to_vec(),
                Name::Raw(b) => b.0.clone(),
            };
            headers.push((name, v.render(words)));
        }
        let body = match &self.body {
            Body::Empty => Vec::new(),
            Body::Known(i) => {
                if bodies.is_empty() {
                    Vec::new()
                } else {
                    bodies[*i as usize % bodies.len()].clone()
                }
            }
            Body::Json(j) => {
                let mut s = String::new();
                j.render(words).write(&mut s);
                s.into_bytes()
            }
            Body::Form(kv) => {
                let mut s = String::new();
                for (n, (k, v)) in kv.iter().enumerate() {
                    if n > 0 {
                        s.push('&');
                    }
                    uri_bytes(&mut s, &k.render(words), b"");
                    s.push('=');
                    uri_bytes(&mut s, &v.render(words), b"");
                }
                s.into_bytes()
            }
            Body::Raw(b) => b.0.clone(),
        };
        Rendered {
            method,
            uri,
            host: self.host.as_ref().map(|h| h.render(words)),
            headers,
            body,
        }
    }
}

pub fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for ch in b.chunks(3) {
        let n = ch
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, &x)| a | (x as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= ch.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes the input bytes that `arbitrary` decodes to a given value (seeds).
pub trait Enc {
    /// `last`: this value is the input's last (decoded with `arbitrary_take_rest`).
    fn enc(&self, out: &mut Vec<u8>, last: bool);
}

/// The discriminant `arbitrary`'s derive decodes as variant `i` of `n`.
fn variant(out: &mut Vec<u8>, i: u64, n: u64) {
    let x = (i << 32).div_ceil(n);
    out.extend_from_slice(&(x as u32).to_le_bytes());
}

impl Enc for u8 {
    fn enc(&self, out: &mut Vec<u8>, _: bool) {
        out.push(*self);
    }
}
impl Enc for bool {
    fn enc(&self, out: &mut Vec<u8>, _: bool) {
        out.push(*self as u8);
    }
}
impl Enc for i64 {
    fn enc(&self, out: &mut Vec<u8>, _: bool) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}
impl<T: Enc> Enc for Vec<T> {
    fn enc(&self, out: &mut Vec<u8>, last: bool) {
        for x in self {
            out.push(1);
            x.enc(out, false);
        }
        if !last {
            out.push(0);
        }
    }
}
impl<A: Enc, B: Enc> Enc for (A, B) {
    fn enc(&self, out: &mut Vec<u8>, last: bool) {
        self.0.enc(out, false);
        self.1.enc(out, last);
    }
}
impl<T: Enc> Enc for Option<T> {
    fn enc(&self, out: &mut Vec<u8>, last: bool) {
        match self {
            None => out.push(0),
            Some(x) => {
                out.push(1);
                x.enc(out, last);
            }
        }
    }
}
impl Enc for Bytes {
    fn enc(&self, out: &mut Vec<u8>, last: bool) {
        if last {
            out.extend_from_slice(&self.0);
        } else {
            self.0.enc(out, false);
        }
    }
}
impl Enc for Part {
    fn enc(&self, out: &mut Vec<u8>, last: bool) {
        match self {
            Part::Known(i) => {
                variant(out, 0, 3);
                i.enc(out, last);
            }
            Part::Raw(b) => {
                variant(out, 1, 3);
                b.enc(out, last);
            }
            Part::Suffixed(i, b) => {
                variant(out, 2, 3);
                i.enc(out, false);
                b.enc(out, last);
            }
        }
    }
}
impl Enc for Method {
    fn enc(&self, out: &mut Vec<u8>, last: bool) {
        let i = match self {
            Method::Get => 0,
            Method::Head => 1,
            Method::Put => 2,
            Method::Post => 3,
            Method::Patch => 4,
            Method::Delete => 5,
            Method::Options => 6,
            Method::Propfind => 7,
            Method::Proppatch => 8,
            Method::Mkcol => 9,
            Method::Copy => 10,
            Method::Move => 11,
            Method::Lock => 12,
            Method::Unlock => 13,
            Method::Other(b) => {
                variant(out, 14, 15);
                b.enc(out, last);
                return;
            }
        };
        variant(out, i, 15);
    }
}
impl Enc for Auth {
    fn enc(&self, out: &mut Vec<u8>, last: bool) {
        match self {
            Auth::None => variant(out, 0, 5),
            Auth::Bearer(p) => {
                variant(out, 1, 5);
                p.enc(out, last);
            }
            Auth::OAuth2(p) => {
                variant(out, 2, 5);
                p.enc(out, last);
            }
            Auth::Basic(u, p) => {
                variant(out, 3, 5);
                u.enc(out, false);
                p.enc(out, last);
            }
            Auth::Raw(p) => {
                variant(out, 4, 5);
                p.enc(out, last);
            }
        }
    }
}
impl Enc for Json {
    fn enc(&self, out: &mut Vec<u8>, last: bool) {
        match self {
            Json::Null => variant(out, 0, 6),
            Json::Bool(b) => {
                variant(out, 1, 6);
                b.enc(out, last);
            }
            Json::Int(i) => {
                variant(out, 2, 6);
                i.enc(out, last);
            }
            Json::Str(p) => {
                variant(out, 3, 6);
                p.enc(out, last);
            }
            Json::Arr(v) => {
                variant(out, 4, 6);
                v.enc(out, last);
            }
            Json::Obj(v) => {
                variant(out, 5, 6);
                v.enc(out, last);
            }
        }
    }
}
impl Enc for Body {
    fn enc(&self, out: &mut Vec<u8>, last: bool) {
        match self {
            Body::Empty => variant(out, 0, 5),
            Body::Known(i) => {
                variant(out, 1, 5);
                i.enc(out, last);
            }
            Body::Json(j) => {
                variant(out, 2, 5);
                j.enc(out, last);
            }
            Body::Form(v) => {
                variant(out, 3, 5);
                v.enc(out, last);
            }
            Body::Raw(b) => {
                variant(out, 4, 5);
                b.enc(out, last);
            }
        }
    }
}
impl Enc for Name {
    fn enc(&self, out: &mut Vec<u8>, last: bool) {
        match self {
            Name::Known(i) => {
                variant(out, 0, 2);
                i.enc(out, last);
            }
            Name::Raw(b) => {
                variant(out, 1, 2);
                b.enc(out, last);
            }
        }
    }
}
impl Enc for Request {
    fn enc(&self, out: &mut Vec<u8>, _: bool) {
        self.method.enc(out, false);
        self.host.enc(out, false);
        self.auth.enc(out, false);
        self.path.enc(out, false);
        self.trailing_slash.enc(out, false);
        self.query.enc(out, false);
        self.headers.enc(out, false);
        self.body.enc(out, true);
    }
}

impl Request {
    /// The fuzz input that decodes to this request.
    pub fn to_input(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.enc(&mut out, true);
        out
    }

    /// Decodes a fuzz input as the targets do.
    pub fn from_input(data: &[u8]) -> Option<Request> {
        Request::arbitrary_take_rest(Unstructured::new(data)).ok()
    }
}

/// Shorthands for writing seeds.
pub mod build {
    use super::*;

    pub fn k(i: usize) -> Part {
        Part::Known(i as u8)
    }
    pub fn raw(s: &str) -> Part {
        Part::Raw(Bytes(s.as_bytes().to_vec()))
    }
    pub fn header(name: &str, v: Part) -> (Name, Part) {
        match HEADER_NAMES
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
        {
            Some(i) => (Name::Known(i as u8), v),
            None => (Name::Raw(Bytes(name.as_bytes().to_vec())), v),
        }
    }
    pub fn req(method: Method, path: Vec<Part>) -> Request {
        Request {
            method,
            host: None,
            auth: Auth::None,
            path,
            trailing_slash: false,
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::Empty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    #[test]
    fn encode_decode() {
        let mut r = req(
            Method::Other(Bytes(b"PROPFIND".to_vec())),
            vec![k(3), raw("a b"), Part::Suffixed(7, Bytes(vec![0, 255]))],
        );
        r.host = Some(k(2));
        r.auth = Auth::Basic(k(1), raw("x"));
        r.trailing_slash = true;
        r.query = vec![(raw("api_token"), k(4))];
        r.headers = vec![header("depth", raw("1")), header("x-made-up", k(9))];
        for body in [
            Body::Empty,
            Body::Known(3),
            Body::Raw(Bytes(b"<?xml?>\0\xff".to_vec())),
            Body::Json(Json::Obj(vec![(
                k(5),
                Json::Obj(vec![
                    (raw("name"), Json::Str(raw("n"))),
                    (
                        k(1),
                        Json::Arr(vec![Json::Int(-5), Json::Null, Json::Bool(true)]),
                    ),
                ]),
            )])),
            Body::Form(vec![(raw("a"), k(1))]),
        ] {
            r.body = body;
            let bytes = r.to_input();
            assert_eq!(Request::from_input(&bytes).as_ref(), Some(&r), "{bytes:?}");
        }
        for m in [Method::Get, Method::Unlock, Method::Lock, Method::Propfind] {
            let r = req(m, vec![]);
            assert_eq!(Request::from_input(&r.to_input()), Some(r));
        }
    }
}
