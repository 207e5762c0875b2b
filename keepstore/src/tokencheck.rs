//! Is the token that came with a `GET`/`HEAD` still valid? A signed locator proves that
//! its token once wrote or was given the block; it does not prove that the token was not
//! revoked (or did not expire) since. keepstore asks the API
//! (`GET {api}/arvados/v1/api_client_authorizations/current` with that token: 200 valid,
//! 401/403 not) and remembers the answer for a short, bounded time.
//!
//! - Entries are keyed by the BLAKE3 hash of the token text: the token itself is never
//!   kept, logged or shown.
//! - A valid answer is kept `valid_for` (default 30 s), an invalid one `invalid_for`
//!   (default 5 s), at most `max_entries` (default 10,000) tokens.
//! - Concurrent requests with the same unknown token share one API call.
//! - The API unreachable or answering 5xx: the request fails closed with 503 and
//!   `Retry-After` (nothing is cached, the next request asks again).
//! - The system root token is always valid (it is not in the API's token table).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keep_format::Token;
use parking_lot::Mutex;
use tokio::sync::OnceCell;

use crate::Error;

/// How keepstore checks tokens with the API (`[keepstore] token_check_*`).
#[derive(Clone, Debug)]
pub struct TokenCheckConfig {
    /// The API's base URL, e.g. `http://127.0.0.1:8003`.
    pub api_url: String,
    /// How long a "valid" answer is trusted.
    pub valid_for: Duration,
    /// How long an "invalid" answer is remembered.
    pub invalid_for: Duration,
    /// At most this many tokens are remembered.
    pub max_entries: usize,
    /// One API call may take this long; after it the request answers 503.
    pub timeout: Duration,
}

impl TokenCheckConfig {
    /// The defaults: 30 s valid, 5 s invalid, 10,000 entries, 5 s per call.
    pub fn new(api_url: impl Into<String>) -> Self {
        TokenCheckConfig {
            api_url: api_url.into(),
            valid_for: Duration::from_secs(30),
            invalid_for: Duration::from_secs(5),
            max_entries: 10_000,
            timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Verdict {
    valid: bool,
    until: Instant,
}

/// One token's answer, filled once by whichever request asks first.
#[derive(Default)]
struct Slot {
    cell: OnceCell<Verdict>,
}

impl Slot {
    fn fresh(&self, now: Instant) -> bool {
        self.cell.get().is_none_or(|v| v.until > now)
    }
}

pub(crate) struct TokenChecker {
    cfg: TokenCheckConfig,
    url: String,
    client: reqwest::Client,
    root_secret: String,
    cache: Mutex<HashMap<[u8; 32], Arc<Slot>>>,
}

/// What happened to one check (for the metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Root,
    Cached,
    Asked,
}

impl TokenChecker {
    pub fn new(cfg: TokenCheckConfig, root_token: &str) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .build()
            .map_err(|e| Error::Internal(format!("building the API client: {e}")))?;
        let url = format!(
            "{}/arvados/v1/api_client_authorizations/current",
            cfg.api_url.trim_end_matches('/')
        );
        let root_secret = root_token
            .parse::<Token>()
            .map(|t| t.secret().to_string())
            .unwrap_or_default();
        Ok(TokenChecker {
            cfg,
            url,
            client,
            root_secret,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// `Ok` if `token` is valid now (as far as the cache window allows),
    /// `Err(TokenNotValid)` if the API says it is not, `Err(ApiUnavailable)` if the API
    /// could not say.
    pub async fn check(&self, token: &Token) -> Result<Outcome, Error> {
        if !self.root_secret.is_empty()
            && token.uuid().is_none()
            && crate::auth::ct_eq(token.secret().as_bytes(), self.root_secret.as_bytes())
        {
            return Ok(Outcome::Root);
        }
        let key: [u8; 32] = blake3::hash(token.expose().as_bytes()).into();
        let slot = self.slot(key);
        let mut asked = false;
        let verdict = *slot
            .cell
            .get_or_try_init(|| {
                asked = true;
                self.ask(token)
            })
            .await?;
        if verdict.valid {
            Ok(if asked {
                Outcome::Asked
            } else {
                Outcome::Cached
            })
        } else {
            Err(Error::TokenNotValid)
        }
    }

    /// The slot for `key`: the cached one if still fresh, else a new empty one.
    fn slot(&self, key: [u8; 32]) -> Arc<Slot> {
        let now = Instant::now();
        let mut cache = self.cache.lock();
        if let Some(s) = cache.get(&key) {
            if s.fresh(now) {
                return s.clone();
            }
        }
        if cache.len() >= self.cfg.max_entries.max(1) {
            cache.retain(|_, s| s.fresh(now));
            if cache.len() >= self.cfg.max_entries.max(1) {
                // still full of fresh answers: forget a quarter of them (any quarter:
                // a forgotten token is only asked about again)
                let drop: Vec<[u8; 32]> = cache
                    .keys()
                    .take(self.cfg.max_entries / 4 + 1)
                    .copied()
                    .collect();
                for k in drop {
                    cache.remove(&k);
                }
            }
        }
        let s = Arc::new(Slot::default());
        cache.insert(key, s.clone());
        s
    }

    async fn ask(&self, token: &Token) -> Result<Verdict, Error> {
        let r = self
            .client
            .get(&self.url)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| Error::ApiUnavailable {
                why: "the API could not be reached".into(),
                source: Some(e.without_url()),
            })?;
        let status = r.status();
        // the body is small; read it so the connection can be reused
        let _ = r.bytes().await;
        let now = Instant::now();
        match status.as_u16() {
            200 => Ok(Verdict {
                valid: true,
                until: now + self.cfg.valid_for,
            }),
            401 | 403 => Ok(Verdict {
                valid: false,
                until: now + self.cfg.invalid_for,
            }),
            s => Err(Error::ApiUnavailable {
                why: format!("the API answered {s}"),
                source: None,
            }),
        }
    }

    /// How many tokens are remembered (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.cache.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker(max: usize) -> TokenChecker {
        let mut cfg = TokenCheckConfig::new("http://127.0.0.1:9");
        cfg.max_entries = max;
        TokenChecker::new(cfg, "rootsecret").unwrap()
    }

    #[tokio::test]
    async fn root_token_needs_no_api() {
        let c = checker(10);
        let root: Token = "rootsecret".parse().unwrap();
        assert_eq!(c.check(&root).await.unwrap(), Outcome::Root);
        // anything else asks the API, which is not there: 503, nothing cached
        let other = Token::generate_bare();
        let e = c.check(&other).await.unwrap_err();
        assert!(matches!(e, Error::ApiUnavailable { .. }), "{e}");
        assert!(!e.to_string().contains(other.secret()));
    }

    #[test]
    fn the_cache_is_bounded() {
        let c = checker(8);
        let now = Instant::now();
        for i in 0..100u32 {
            let s = c.slot(blake3::hash(&i.to_le_bytes()).into());
            let _ = s.cell.set(Verdict {
                valid: true,
                until: now + Duration::from_secs(60),
            });
            assert!(c.len() <= 8, "{}", c.len());
        }
    }
}
