//! The one HTTP client keep-web uses for the API and the keepstores, and the one retry
//! rule: an idempotent request that failed before any byte of a response arrived (the
//! server closed a pooled connection just as it was reused, a reset) or that the
//! server answered 408 (it timed the connection out) is sent once more, on a fresh
//! connection.

use crate::error::Error;
use crate::limits::{UPSTREAM_CONNECT_TIMEOUT, UPSTREAM_POOL_IDLE, UPSTREAM_READ_TIMEOUT};

/// The client: `TCP_NODELAY`, idle pooled connections dropped after
/// [`UPSTREAM_POOL_IDLE`] (before the servers' keep-alive closes them), connects bounded
/// by [`UPSTREAM_CONNECT_TIMEOUT`], a response that stalls by [`UPSTREAM_READ_TIMEOUT`].
pub fn client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_idle_timeout(UPSTREAM_POOL_IDLE)
        .connect_timeout(UPSTREAM_CONNECT_TIMEOUT)
        .read_timeout(UPSTREAM_READ_TIMEOUT)
        .build()
        .map_err(|e| Error::Config(format!("HTTP client: {e}")))
}

/// Whether a failed send may be repeated: nothing of a response arrived. A connect
/// failure is not retried here (the service is down: the caller says 503), nor a
/// timeout (repeating would double the wait).
fn before_response(e: &reqwest::Error) -> bool {
    e.is_request() && !e.is_connect() && !e.is_timeout()
}

/// Sends the request `build` makes; once more if the first attempt failed before any
/// response byte or got a 408. Only for idempotent requests (GET, HEAD, PUT of a block).
pub async fn send_idempotent(
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, reqwest::Error> {
    match build().send().await {
        Ok(r) if r.status() == reqwest::StatusCode::REQUEST_TIMEOUT => {
            tracing::debug!("upstream answered 408; sending the request again");
            build().send().await
        }
        Err(e) if before_response(&e) => {
            tracing::debug!(
                "upstream request failed before a response ({}); sending it again",
                e.without_url()
            );
            build().send().await
        }
        other => other,
    }
}
