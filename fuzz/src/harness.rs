//! Driving a service's router in process: one fuzz input becomes one request (or none,
//! when the HTTP parser would refuse it before any router sees it), its answer is
//! checked, and the service must still answer its health request afterwards.

use std::collections::HashMap;
use std::str::FromStr;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, Uri};
use actix_web::test::TestRequest;

use crate::req::Rendered;

/// A target's words (see [`crate::words`]) with their values.
pub struct Table {
    names: &'static [&'static str],
    values: HashMap<&'static str, Vec<u8>>,
}

impl Table {
    pub fn new(names: &'static [&'static str]) -> Table {
        Table {
            names,
            values: HashMap::new(),
        }
    }

    pub fn set(&mut self, name: &'static str, value: impl Into<Vec<u8>>) {
        assert!(self.names.contains(&name), "no word {name:?}");
        self.values.insert(name, value.into());
    }

    pub fn get(&self, name: &str) -> &[u8] {
        self.values
            .get(name)
            .unwrap_or_else(|| panic!("word {name:?} not set"))
    }

    pub fn text(&self, name: &str) -> String {
        String::from_utf8_lossy(self.get(name)).into_owned()
    }

    /// Words not set explicitly are their own names (route names, attribute names).
    pub fn words(&self) -> Vec<String> {
        self.names
            .iter()
            .map(|n| match self.values.get(n) {
                Some(v) => String::from_utf8_lossy(v).into_owned(),
                None => n.to_string(),
            })
            .collect()
    }

    /// Every name must be set (bodies have no default).
    pub fn all(&self) -> Vec<Vec<u8>> {
        self.names.iter().map(|n| self.get(n).to_vec()).collect()
    }
}

/// The request the service's router would get, or `None` if the HTTP/1 parser would
/// answer 400 itself (a method, URI, header name or value it can't hold).
pub fn test_request(r: &Rendered, default_host: &str) -> Option<TestRequest> {
    let method = Method::from_bytes(&r.method).ok()?;
    Uri::from_str(&r.uri).ok()?;
    let mut t = TestRequest::default()
        .method(method)
        .uri(&r.uri)
        .peer_addr("127.0.0.1:40000".parse().ok()?);
    let host = r.host.as_deref().unwrap_or(default_host.as_bytes());
    t = t.insert_header((
        HeaderName::from_static("host"),
        HeaderValue::from_bytes(host).ok()?,
    ));
    for (n, v) in &r.headers {
        let n = HeaderName::from_bytes(n).ok()?;
        let v = HeaderValue::from_bytes(v).ok()?;
        t = t.append_header((n, v));
    }
    Some(t.set_payload(r.body.clone()))
}

/// A service's answer: its status and (the first 16 MiB of) its body.
pub struct Answer {
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<Vec<u8>>,
    pub body: Vec<u8>,
    /// The body failed while streaming.
    pub body_error: Option<String>,
}

pub async fn send<S, R, B>(app: &S, req: R) -> Answer
where
    S: Service<R, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    match app.call(req).await {
        Ok(res) => {
            let status = res.status().as_u16();
            let location = res
                .headers()
                .get(actix_web::http::header::LOCATION)
                .map(|v| v.as_bytes().to_vec());
            match actix_web::body::to_bytes_limited(res.into_body(), 16 << 20).await {
                Ok(Ok(b)) => Answer {
                    status,
                    location,
                    body: b.to_vec(),
                    body_error: None,
                },
                Ok(Err(e)) => Answer {
                    status,
                    location,
                    body: Vec::new(),
                    body_error: Some(Into::<Box<dyn std::error::Error>>::into(e).to_string()),
                },
                Err(_) => Answer {
                    status,
                    location,
                    body: Vec::new(),
                    body_error: None,
                },
            }
        }
        // what the server would send for an error the service returned
        Err(e) => {
            let res = e.error_response();
            let status = res.status().as_u16();
            let location = res
                .headers()
                .get(actix_web::http::header::LOCATION)
                .map(|v| v.as_bytes().to_vec());
            let body = actix_web::body::to_bytes_limited(res.into_body(), 1 << 20)
                .await
                .ok()
                .and_then(|b| b.ok())
                .map(|b| b.to_vec())
                .unwrap_or_default();
            Answer {
                status,
                location,
                body,
                body_error: None,
            }
        }
    }
}

/// The property every HTTP target checks: no 5xx but 502/503/504 (upstream trouble),
/// and a body that streams to its end.
pub fn check(target: &str, r: &Rendered, a: &Answer) {
    check_allowing(target, r, a, &[502, 503, 504])
}

/// [`check`], allowing only these 5xx statuses.
pub fn check_allowing(target: &str, r: &Rendered, a: &Answer, allowed: &[u16]) {
    trace(target, r, a);
    if a.status >= 500 && !allowed.contains(&a.status) {
        panic!(
            "{target}: {} {} answered {}: {}\nrequest: {r:?}",
            String::from_utf8_lossy(&r.method),
            r.uri,
            a.status,
            String::from_utf8_lossy(&a.body[..a.body.len().min(2000)])
        );
    }
    if let Some(e) = &a.body_error {
        panic!(
            "{target}: {} {} answered {} but its body failed: {e}\nrequest: {r:?}",
            String::from_utf8_lossy(&r.method),
            r.uri,
            a.status
        );
    }
}

/// With `KEEP_FUZZ_TRACE` set, prints every request and its answer (to see what an
/// input does: run the target binary on that one file).
pub fn trace(target: &str, r: &Rendered, a: &Answer) {
    if std::env::var_os("KEEP_FUZZ_TRACE").is_some() {
        eprintln!(
            "{target}: {} {} host={:?} headers={:?} body={:?}\n  -> {} location={:?} {:?}",
            String::from_utf8_lossy(&r.method),
            r.uri,
            r.host.as_deref().map(String::from_utf8_lossy),
            r.headers
                .iter()
                .map(|(n, v)| format!(
                    "{}: {}",
                    String::from_utf8_lossy(n),
                    String::from_utf8_lossy(v)
                ))
                .collect::<Vec<_>>(),
            String::from_utf8_lossy(&r.body[..r.body.len().min(300)]),
            a.status,
            a.location.as_deref().map(String::from_utf8_lossy),
            String::from_utf8_lossy(&a.body[..a.body.len().min(300)]),
        );
    }
}

/// Health requests must answer 200, after every input.
pub fn check_health(target: &str, a: &Answer, after: &Rendered) {
    assert!(
        a.status == 200,
        "{target}: the health request answered {} ({}) after {after:?}",
        a.status,
        String::from_utf8_lossy(&a.body)
    );
}

/// With `KEEP_FUZZ_PANIC_LOG=<file>`, every panic message (any thread) is appended to
/// that file before libFuzzer's hook aborts: in `-fork` mode a job's own output is
/// deleted, and a crash that needs the state earlier inputs left can't be replayed alone.
pub fn log_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let Some(path) = std::env::var_os("KEEP_FUZZ_PANIC_LOG") else {
        return;
    };
    ONCE.call_once(move || {
        let next = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
            {
                let _ = writeln!(f, "pid {}: {info}\n", std::process::id());
            }
            next(info)
        }));
    });
}

/// Runs `f` on this thread's actix system (made once; libFuzzer calls the target from
/// one thread).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RT: actix_web::rt::SystemRunner = actix_web::rt::System::new();
    }
    RT.with(|rt| rt.block_on(f))
}

pub mod api_world;
pub mod keepstore_world;
pub mod web_world;
