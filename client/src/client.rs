//! The client itself: the connection pool, the token, the options, the cluster's
//! configuration, and the JSON calls every typed call goes through.

use std::sync::Arc;
use std::time::Duration;

use keep_format::Token;
use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;

/// Timeouts, retries and overrides. `Default` suits a CLI on a LAN.
#[derive(Debug, Clone)]
pub struct Options {
    /// Establishing a TCP connection (to the API or a keepstore).
    pub connect_timeout: Duration,
    /// The longest wait for the next bytes of an answer once a request is sent.
    pub read_timeout: Duration,
    /// One whole API request.
    pub api_timeout: Duration,
    /// One whole block request (up to 64 MiB) to one keepstore.
    pub block_timeout: Duration,
    /// How many more passes over the keepstores (and more tries of an idempotent API
    /// call) after the first, for failures that waiting may cure.
    pub retries: u32,
    /// The wait before the first retry; doubled for each next one, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Use these keepstores instead of the ones the API lists (keep-web's
    /// `keepstore_urls` setting). Empty: ask the API.
    pub keepstores: Vec<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            api_timeout: Duration::from_secs(300),
            block_timeout: Duration::from_secs(300),
            retries: 3,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            keepstores: Vec::new(),
        }
    }
}

impl Options {
    /// The wait before retry number `n` (1-based): `backoff · 2^(n-1)`, capped, with up
    /// to a quarter added at random so that many clients do not retry in step.
    pub fn backoff_for(&self, n: u32) -> Duration {
        let base = self
            .backoff
            .saturating_mul(1u32 << n.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let jitter = base.mul_f64(rand::random::<f64>() / 4.0);
        base + jitter
    }
}

/// `GET /arvados/v1/config`: what a client needs to find the cluster's services.
#[derive(Debug, Clone, Deserialize)]
pub struct Cluster {
    #[serde(default)]
    pub cluster_id: String,
    /// Every keepstore (`[cluster] keepstores`), without trailing `/`.
    #[serde(default, rename = "keepstore_urls")]
    pub keepstores: Vec<String>,
    /// keep-web's external URL, if the API knows it.
    #[serde(default)]
    pub web_url: Option<String>,
    /// Copies of each block when a collection does not say (`[cluster]
    /// default_replication`); 1 when the API does not publish it.
    #[serde(default = "one")]
    pub default_replication: u32,
    /// How long a signature the API or a keepstore hands out stays valid (seconds).
    #[serde(default)]
    pub blob_signature_ttl: Option<u64>,
}

fn one() -> u32 {
    1
}

impl Cluster {
    pub(crate) fn normalize(mut self) -> Cluster {
        for k in &mut self.keepstores {
            *k = k.trim_end_matches('/').to_string();
        }
        self.keepstores.retain(|k| !k.is_empty());
        self.web_url = self
            .web_url
            .filter(|w| !w.is_empty())
            .map(|w| w.trim_end_matches('/').to_string());
        self.default_replication = self.default_replication.max(1);
        self
    }
}

struct Inner {
    http: reqwest::Client,
    /// `http://host:port`, no trailing `/`.
    api: String,
    opts: Options,
    cluster: tokio::sync::OnceCell<Cluster>,
}

/// A client for one cluster, acting with one token. Cheap to clone; [`Client::with_token`]
/// makes another token's client sharing the connections and the cluster's configuration.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    token: Token,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("api", &self.inner.api)
            .field("token", &self.token)
            .finish()
    }
}

/// The `errors` of an API error body, else nothing; at most 1,000 characters.
fn api_message(text: &str) -> String {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let m = v["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    let m = if m.is_empty() {
        text.trim().to_string()
    } else {
        m
    };
    truncate(m, 1000)
}

pub(crate) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

#[derive(Clone, Copy)]
enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl Client {
    /// A client for the API server at `api` (`http://host:port`). Nothing is sent yet.
    pub fn new(api: &str, token: Token, opts: Options) -> Result<Client, Error> {
        let api = api.trim_end_matches('/').to_string();
        if !(api.starts_with("http://") || api.starts_with("https://")) {
            return Err(Error::BadUrl { url: api });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.read_timeout)
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .map_err(Error::Build)?;
        Ok(Client::with_http(http, &api, token, opts))
    }

    /// As [`Client::new`] with an HTTP client of the caller's (keep-web shares one).
    pub fn with_http(http: reqwest::Client, api: &str, token: Token, opts: Options) -> Client {
        Client {
            inner: Arc::new(Inner {
                http,
                api: api.trim_end_matches('/').to_string(),
                opts,
                cluster: tokio::sync::OnceCell::new(),
            }),
            token,
        }
    }

    /// The same cluster (connections, configuration) acting with another token.
    pub fn with_token(&self, token: Token) -> Client {
        Client {
            inner: self.inner.clone(),
            token,
        }
    }

    /// The API server's URL.
    pub fn api_url(&self) -> &str {
        &self.inner.api
    }

    pub fn token(&self) -> &Token {
        &self.token
    }

    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The cluster's configuration, asked once and then remembered.
    pub async fn cluster(&self) -> Result<&Cluster, Error> {
        self.inner
            .cluster
            .get_or_try_init(|| async {
                let v = self.get_json("config", &[]).await?;
                let mut c: Cluster =
                    serde_json::from_value(v).map_err(|source| Error::ApiBody {
                        method: "GET",
                        path: "/arvados/v1/config".into(),
                        source,
                    })?;
                if !self.inner.opts.keepstores.is_empty() {
                    c.keepstores = self.inner.opts.keepstores.clone();
                }
                Ok(c.normalize())
            })
            .await
    }

    /// `GET /arvados/v1/<path>?<query>`; retried on no answer, 429, 502, 503, 504.
    pub async fn get_json(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Error> {
        self.call(Method::Get, path, query, None).await
    }

    /// `POST /arvados/v1/<path>` with a JSON body (not retried: not idempotent).
    pub async fn post_json(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: &Value,
    ) -> Result<Value, Error> {
        self.call(Method::Post, path, query, Some(body)).await
    }

    /// `PATCH /arvados/v1/<path>` with a JSON body.
    pub async fn patch_json(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: &Value,
    ) -> Result<Value, Error> {
        self.call(Method::Patch, path, query, Some(body)).await
    }

    /// `DELETE /arvados/v1/<path>`.
    pub async fn delete_json(&self, path: &str) -> Result<Value, Error> {
        self.call(Method::Delete, path, &[], None).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let full = format!("/arvados/v1/{}", path.trim_start_matches('/'));
        let url = format!("{}{full}", self.inner.api);
        let opts = &self.inner.opts;
        let tries = match method {
            Method::Get => opts.retries + 1,
            _ => 1,
        };
        let mut n = 0;
        loop {
            n += 1;
            let mut req = match method {
                Method::Get => self.inner.http.get(&url),
                Method::Post => self.inner.http.post(&url),
                Method::Patch => self.inner.http.patch(&url),
                Method::Delete => self.inner.http.delete(&url),
            };
            if !query.is_empty() {
                req = req.query(query);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let sent = req
                .bearer_auth(self.token.expose())
                .timeout(opts.api_timeout)
                .send()
                .await;
            let unreachable = |source: reqwest::Error| Error::ApiUnreachable {
                method: method.name(),
                api: self.inner.api.clone(),
                path: full.clone(),
                source: source.without_url(),
            };
            let answer = match sent {
                Ok(r) => {
                    let status = r.status().as_u16();
                    r.text().await.map(|t| (status, t)).map_err(unreachable)
                }
                Err(e) => Err(unreachable(e)),
            };
            let transient = match &answer {
                Err(_) => true,
                Ok((s, _)) => matches!(s, 429 | 502 | 503 | 504),
            };
            if transient && n < tries {
                tokio::time::sleep(opts.backoff_for(n)).await;
                continue;
            }
            let (status, text) = answer?;
            if !(200..300).contains(&status) {
                return Err(Error::Api {
                    method: method.name(),
                    path: full,
                    status,
                    message: api_message(&text),
                });
            }
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|source| Error::ApiBody {
                method: method.name(),
                path: full,
                source,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn backoff_doubles_and_caps() {
        let o = Options::default();
        let b1 = o.backoff_for(1);
        assert!(b1 >= o.backoff && b1 <= o.backoff.mul_f64(1.25), "{b1:?}");
        let b3 = o.backoff_for(3);
        assert!(b3 >= o.backoff * 4 && b3 <= (o.backoff * 4).mul_f64(1.25));
        let b40 = o.backoff_for(40);
        assert!(b40 >= o.max_backoff && b40 <= o.max_backoff.mul_f64(1.25));
    }

    #[test]
    fn api_messages() {
        assert_eq!(api_message(r#"{"errors":["a","b"]}"#), "a; b");
        assert_eq!(api_message("plain text\n"), "plain text");
        assert_eq!(api_message(&"x".repeat(2000)).chars().count(), 1001);
    }

    #[test]
    fn rejects_non_http_urls_and_hides_the_token() {
        let t: Token = "v2/zzzzz-gj3su-0123456789abcde/s3cr3t".parse().unwrap();
        assert!(matches!(
            Client::new("ftp://x", t.clone(), Options::default()),
            Err(Error::BadUrl { .. })
        ));
        let c = Client::new("http://127.0.0.1:1/", t, Options::default()).unwrap();
        assert_eq!(c.api_url(), "http://127.0.0.1:1");
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn cluster_defaults() {
        let c: Cluster = serde_json::from_value(json!({
            "keepstore_urls": ["http://a:1/", ""], "web_url": ""
        }))
        .unwrap();
        let c = c.normalize();
        assert_eq!(c.keepstores, ["http://a:1"]);
        assert_eq!(c.web_url, None);
        assert_eq!(c.default_replication, 1);
    }
}
