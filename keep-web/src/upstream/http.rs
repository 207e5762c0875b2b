//! The one HTTP client keep-web uses for the API and the keepstores, and the one retry
//! rule: an idempotent request that failed before any byte of a response arrived (the
//! server closed a pooled connection just as it was reused, a reset) or that the
//! server answered 408 (it timed the connection out) is sent once more, on a fresh
//! connection.

use crate::error::Error;
use crate::limits::{UPSTREAM_CONNECT_TIMEOUT, UPSTREAM_POOL_IDLE, UPSTREAM_READ_TIMEOUT};

/// The clients: `TCP_NODELAY`, idle pooled connections dropped after
/// [`UPSTREAM_POOL_IDLE`] (before the servers' keep-alive closes them), connects bounded
/// by [`UPSTREAM_CONNECT_TIMEOUT`], a response that stalls by [`UPSTREAM_READ_TIMEOUT`].
/// `pooled` serves every request; `fresh` keeps no idle connection, so that a retry
/// never meets another stale pooled one (they tend to expire together).
#[derive(Clone)]
pub struct Http {
    pub pooled: reqwest::Client,
    fresh: reqwest::Client,
}

impl Http {
    pub fn new() -> Result<Http, Error> {
        let build = |idle_per_host: usize| {
            reqwest::Client::builder()
                .tcp_nodelay(true)
                .pool_idle_timeout(UPSTREAM_POOL_IDLE)
                .pool_max_idle_per_host(idle_per_host)
                .connect_timeout(UPSTREAM_CONNECT_TIMEOUT)
                .read_timeout(UPSTREAM_READ_TIMEOUT)
                .build()
                .map_err(|e| Error::Config(format!("HTTP client: {e}")))
        };
        Ok(Http {
            pooled: build(usize::MAX)?,
            fresh: build(0)?,
        })
    }

    /// Sends the request `build` makes with the pooled client; once more, on a new
    /// connection, if the first attempt failed before any response byte or got a 408.
    /// Only for idempotent requests (GET, HEAD, PUT of a block).
    pub async fn send_idempotent(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, reqwest::Error> {
        match build(&self.pooled).send().await {
            Ok(r) if r.status() == reqwest::StatusCode::REQUEST_TIMEOUT => {
                tracing::debug!("upstream answered 408; sending the request again");
                build(&self.fresh).send().await
            }
            Err(e) if before_response(&e) => {
                tracing::debug!(
                    "upstream request failed before a response ({}); sending it again",
                    e.without_url()
                );
                build(&self.fresh).send().await
            }
            other => other,
        }
    }
}

/// Whether a failed send may be repeated: nothing of a response arrived. A connect
/// failure is not retried here (the service is down: the caller says 503), nor a
/// timeout (repeating would double the wait).
fn before_response(e: &reqwest::Error) -> bool {
    e.is_request() && !e.is_connect() && !e.is_timeout()
}
