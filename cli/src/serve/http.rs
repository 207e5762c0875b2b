//! The one HTTP server builder of `keep serve` ([`http_server`]) and its settings
//! ([`ServerSettings`], `[api.server]`, `[keepstore.server]`, `[web.server]`).
//!
//! Slow and idle clients (slowloris) are bounded three ways:
//! - actix's own timers: a new connection's first request head within
//!   `header_timeout` (else 408), an idle kept-alive connection closed after
//!   `keep_alive`, `disconnect_timeout` for the client to close after the server did;
//! - a request body that sends nothing for `body_idle_timeout` fails ([`IdleBody`]);
//! - actix times only a connection's *first* request head: a client that completes one
//!   request and then sends a byte of the next (which stops the keep-alive timer) would
//!   hold its connection forever. A watchdog per connection ([`watch`]) closes a
//!   connection that has had no request in progress for `keep_alive + header_timeout`
//!   (a legitimate idle connection is closed by actix at `keep_alive` before that).
//!
//! `max_connections` bounds the connections one worker holds; past it the listener
//! stops accepting until one closes.

use std::any::Any;
use std::future::Future;
use std::net::TcpListener;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Extensions, Payload, Server, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpMessage, HttpServer};
use futures_util::Stream;
use serde::Deserialize;

use crate::access_log;
use crate::error::CliError;

/// One service's HTTP server settings (defaults: [`ServerSettings::default`]).
///
/// Every bound here is what keeps slow or idle clients (slowloris) from holding a
/// server's connections: a client that sends nothing is dropped after `header_timeout`,
/// one that stops sending a body after `body_idle_timeout`, an idle kept-alive
/// connection after `keep_alive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    /// A new connection must send its first request head within this (else 408 and
    /// the connection is closed).
    pub header_timeout: Duration,
    /// After a response that ends the connection, how long the client gets to close
    /// its side before the socket is dropped.
    pub disconnect_timeout: Duration,
    /// An idle kept-alive connection is closed after this. Keep it above the clients'
    /// pool idle time (keep-web's is [`keep_web::UPSTREAM_POOL_IDLE`]) so that a client
    /// never sends on a connection the server is closing.
    pub keep_alive: Duration,
    /// Connections one worker holds at once; past it the listener stops accepting (new
    /// clients wait in the backlog) until one closes.
    pub max_connections: usize,
    /// A request body that sends no bytes for this long fails (the handler sees a read
    /// error: 408 in keep-web).
    pub body_idle_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            header_timeout: Duration::from_secs(10),
            disconnect_timeout: Duration::from_secs(2),
            keep_alive: Duration::from_secs(30),
            max_connections: 8192,
            body_idle_timeout: Duration::from_secs(30),
        }
    }
}

/// `[api.server]`, `[keepstore.server]`, `[web.server]` as written in the config file.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub header_timeout: Option<String>,
    pub disconnect_timeout: Option<String>,
    pub keep_alive: Option<String>,
    pub max_connections: Option<usize>,
    pub body_idle_timeout: Option<String>,
}

impl ServerSection {
    /// The settings with every missing key defaulted; `section` names the table in
    /// errors. Durations are written as every duration in the config (`90s`, `2m`).
    pub fn resolve(&self, section: &str, file: &str) -> Result<ServerSettings, CliError> {
        let d = ServerSettings::default();
        let dur = |key: &str, v: &Option<String>, default: Duration| match v {
            None => Ok(default),
            Some(text) => keep_format::parse_duration(text).map_err(|e| {
                CliError::config(
                    format!("[{section}] {key} = {text:?} in {file}"),
                    e.to_string(),
                    "write a duration like \"10s\" or \"2m\"",
                )
            }),
        };
        let s = ServerSettings {
            header_timeout: dur("header_timeout", &self.header_timeout, d.header_timeout)?,
            disconnect_timeout: dur(
                "disconnect_timeout",
                &self.disconnect_timeout,
                d.disconnect_timeout,
            )?,
            keep_alive: dur("keep_alive", &self.keep_alive, d.keep_alive)?,
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            body_idle_timeout: dur(
                "body_idle_timeout",
                &self.body_idle_timeout,
                d.body_idle_timeout,
            )?,
        };
        let zero = [
            ("header_timeout", s.header_timeout.is_zero()),
            ("keep_alive", s.keep_alive.is_zero()),
            ("body_idle_timeout", s.body_idle_timeout.is_zero()),
            ("max_connections", s.max_connections == 0),
        ];
        if let Some((key, _)) = zero.iter().find(|(_, z)| *z) {
            return Err(CliError::config(
                format!("[{section}] {key} in {file}"),
                "must be more than zero (zero would leave slow clients unbounded, or accept none)",
                "remove it to use the default; doc/admin.md lists the defaults",
            ));
        }
        Ok(s)
    }
}

/// The one HTTP server builder every service uses: the access log (`service` names the
/// service in it), the body idle timeout, the connection watchdog, `TCP_NODELAY` (a response whose headers and
/// body leave in separate writes otherwise waits out the client's delayed ACK, 40 ms
/// per request on a kept-alive connection) and `settings`. The server is returned
/// unstarted: await it (or spawn it) to serve.
pub fn http_server<F>(
    service: &'static str,
    listener: TcpListener,
    settings: &ServerSettings,
    configure: F,
) -> Result<Server, CliError>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let idle = settings.body_idle_timeout;
    let quiet = settings.keep_alive + settings.header_timeout;
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(move |req, next| body_idle_timeout(idle, req, next)))
            .wrap(from_fn(track_request))
            .wrap(from_fn(move |req, next| {
                access_log::log(service, req, next)
            }))
            .configure(configure.clone())
    })
    .on_connect(move |conn: &dyn Any, ext: &mut Extensions| start_watch(conn, ext, quiet))
    .tcp_nodelay(true)
    .client_request_timeout(settings.header_timeout)
    .client_disconnect_timeout(settings.disconnect_timeout)
    .keep_alive(settings.keep_alive)
    .max_connections(settings.max_connections)
    .listen(listener)
    .map_err(|e| CliError::new(format!("starting {service}"), e.to_string(), ""))?
    .disable_signals()
    .shutdown_timeout(30)
    .run();
    Ok(server)
}

/// Replaces the request's body with one that fails when no bytes arrive for `idle`.
async fn body_idle_timeout(
    idle: Duration,
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let inner = req.take_payload();
    req.set_payload(Payload::Stream {
        payload: Box::pin(IdleBody {
            inner,
            idle,
            timer: None,
        }),
    });
    next.call(req).await
}

/// A body stream that ends with `TimedOut` after `idle` without bytes (the timer runs
/// only while the handler waits for bytes: a handler that doesn't read is not timed).
struct IdleBody {
    inner: Payload,
    idle: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Stream for IdleBody {
    type Item = Result<web::Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(item) => {
                this.timer = None;
                Poll::Ready(item)
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.timer = None;
                        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!(
                                "no request body bytes for {} s (body_idle_timeout)",
                                idle.as_secs_f64()
                            ),
                        )))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

/// What a connection's requests tell its watchdog.
struct ConnState {
    accepted: Instant,
    /// Requests whose head has arrived and whose response is not yet fully sent.
    active: AtomicUsize,
    /// When the last request ended, in milliseconds after `accepted`.
    idle_since_ms: AtomicU64,
}

impl ConnState {
    fn quiet_until(&self, quiet: Duration) -> Instant {
        self.accepted + Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed)) + quiet
    }
}

/// Kept in the connection's data: dropped with the connection, which tells the
/// watchdog to stop (and close its copy of the socket) at once.
struct ConnWatch {
    state: Arc<ConnState>,
    _closed: tokio::sync::oneshot::Sender<()>,
}

/// `on_connect`: starts the watchdog of a TCP connection.
fn start_watch(conn: &dyn Any, ext: &mut Extensions, quiet: Duration) {
    let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() else {
        return;
    };
    // a second descriptor of the same socket: shutting it down ends the connection
    // without touching a descriptor number actix may have closed and reused
    let fd = match tcp.as_fd().try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!("no watchdog for a connection: {e}");
            return;
        }
    };
    let state = Arc::new(ConnState {
        accepted: Instant::now(),
        active: AtomicUsize::new(0),
        idle_since_ms: AtomicU64::new(0),
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    ext.insert(ConnWatch {
        state: state.clone(),
        _closed: tx,
    });
    actix_web::rt::spawn(watch(state, fd, quiet, rx));
}

/// Closes the connection once no request has been in progress for `quiet`: by then
/// actix has closed every idle kept-alive connection, so what is left is a client
/// sending a request head that never ends. Returns when the connection closes.
async fn watch(
    state: Arc<ConnState>,
    fd: OwnedFd,
    quiet: Duration,
    mut closed: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let now = Instant::now();
        let deadline = match state.active.load(Ordering::Relaxed) {
            0 => state.quiet_until(quiet),
            _ => now + quiet,
        };
        if deadline <= now {
            tracing::debug!(
                "closing a connection that sent no complete request for {} s",
                quiet.as_secs()
            );
            let _ = std::net::TcpStream::from(fd).shutdown(std::net::Shutdown::Both);
            return;
        }
        tokio::select! {
            _ = &mut closed => return,
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
    }
}

/// A request in progress on a watched connection: from its head until its response
/// body is sent (or dropped).
struct InProgress(Arc<ConnState>);

impl InProgress {
    fn start(state: &Arc<ConnState>) -> InProgress {
        state.active.fetch_add(1, Ordering::Relaxed);
        InProgress(state.clone())
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        let ms = self.0.accepted.elapsed().as_millis() as u64;
        self.0.idle_since_ms.store(ms, Ordering::Relaxed);
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Marks the request in progress on its connection until its response body ends.
async fn track_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<TrackedBody>, actix_web::Error> {
    let progress = req
        .conn_data::<ConnWatch>()
        .map(|w| InProgress::start(&w.state));
    let res = next.call(req).await?;
    Ok(res.map_body(move |_, body| TrackedBody {
        body: body.boxed(),
        _progress: progress,
    }))
}

/// A response body that keeps its request marked in progress until it is dropped.
pub struct TrackedBody {
    body: BoxBody,
    _progress: Option<InProgress>,
}

impl MessageBody for TrackedBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<web::Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_parse_and_refuse_zero() {
        let s: ServerSection =
            toml::from_str("header_timeout = \"3s\"\nmax_connections = 100\n").unwrap();
        let r = s.resolve("web.server", "keep.toml").unwrap();
        assert_eq!(r.header_timeout, Duration::from_secs(3));
        assert_eq!(r.max_connections, 100);
        assert_eq!(r.keep_alive, ServerSettings::default().keep_alive);
        let s: ServerSection = toml::from_str("keep_alive = \"0s\"\n").unwrap();
        let err = s
            .resolve("web.server", "keep.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("[web.server] keep_alive"), "{err}");
        assert!(toml::from_str::<ServerSection>("keepalive = \"1s\"\n").is_err());
        let s: ServerSection = toml::from_str("keep_alive = \"7 fortnights\"\n").unwrap();
        let err = s
            .resolve("api.server", "keep.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[api.server] keep_alive") && err.contains("fortnights"),
            "{err}"
        );
    }
}
