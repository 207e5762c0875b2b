//! The HTTP client the user commands share: the API (JSON under `/arvados/v1/`) and
//! keepstore (`PUT /<hash>`, `GET /<signed locator>`), found through `GET /arvados/v1/config`.

use std::time::Duration;

use bytes::Bytes;
use keep_format::{Hash, Locator, Pdh, Token, Uuid, UuidKind};
use serde_json::Value;

use crate::error::CliError;
use crate::settings::{self, Settings};

/// A connected client: where every service is and the caller's token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    pub api: String,
    token: String,
    pub keepstores: Vec<String>,
    pub web_url: Option<String>,
}

/// A collection as the user names it on the command line: `ID[/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// A collection UUID or PDH.
    pub id: String,
    /// The path inside it, without leading `/` (empty for the root).
    pub path: String,
    /// Whether the user wrote a trailing `/` (copy the directory's contents, not the directory).
    pub trailing_slash: bool,
}

/// Parses `ID[/path]`, ID being a collection UUID or a PDH. Usage error (exit 2) otherwise.
pub fn parse_target(s: &str) -> Result<Target, CliError> {
    let s = s.strip_prefix("keep:").unwrap_or(s);
    let (id, rest) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let ok_uuid = id
        .parse::<Uuid>()
        .is_ok_and(|u| u.kind() == UuidKind::Collection);
    let ok_pdh = id.parse::<Pdh>().is_ok();
    if !ok_uuid && !ok_pdh {
        return Err(CliError::usage(
            format!("reading {s:?}"),
            format!("{id:?} is neither a collection UUID nor a portable data hash"),
            "write it like zzzzz-4zz18-0123456789abcde/dir/file or <hash>+<size>/file",
        ));
    }
    let rest = rest.unwrap_or("");
    let trailing_slash = rest.ends_with('/') || rest.is_empty();
    let path: Vec<&str> = rest
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if path.contains(&"..") {
        return Err(CliError::usage(
            format!("reading {s:?}"),
            "'..' is not allowed in a collection path",
            "name the file from the collection's root",
        ));
    }
    Ok(Target {
        id: id.to_string(),
        path: path.join("/"),
        trailing_slash,
    })
}

fn api_why(status: u16, v: &Value) -> String {
    v["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("the server answered {status}"))
}

fn api_hint(status: u16) -> &'static str {
    match status {
        401 => "check KEEP_API_TOKEN, or get a new token with keep token create",
        403 => "ask the object's owner or an admin for the permission",
        404 => "check the ID; you may also lack permission to see it",
        422 => "fix the value and try again",
        _ => "see the API server's log",
    }
}

impl Client {
    /// Reads the settings and asks the API where keepstore and keep-web are.
    pub async fn connect() -> Result<Client, CliError> {
        let s = settings::load()?;
        Client::connect_with(&s).await
    }

    pub async fn connect_with(s: &Settings) -> Result<Client, CliError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(20))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| CliError::new("starting the HTTP client", e.to_string(), ""))?;
        let mut c = Client {
            http,
            api: s.api_host.trim_end_matches('/').to_string(),
            token: s.token.expose(),
            keepstores: Vec::new(),
            web_url: None,
        };
        let cfg = c
            .api_get("config", "asking the API server for the cluster's services")
            .await?;
        c.keepstores = cfg["keepstore_urls"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|u| u.trim_end_matches('/').to_string())
                    .collect()
            })
            .unwrap_or_default();
        c.web_url = cfg["web_url"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_end_matches('/').to_string());
        Ok(c)
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    fn unreachable(&self, what: &str, e: &reqwest::Error) -> CliError {
        let mut why = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            why = format!("{why}: {s}");
            src = s.source();
        }
        CliError::new(
            what,
            format!("cannot reach the API server at {}: {why}", self.api),
            "is keep serve running? check KEEP_API_HOST",
        )
    }

    async fn api_call(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Value, CliError> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| self.unreachable(what, &e))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| self.unreachable(what, &e))?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            if v.is_null() && !text.trim().is_empty() {
                return Err(CliError::new(
                    what,
                    format!("{} did not answer JSON", self.api),
                    "check that KEEP_API_HOST is a Keep API server",
                ));
            }
            return Ok(v);
        }
        Err(CliError::new(what, api_why(status, &v), api_hint(status)))
    }

    pub async fn api_get(&self, path: &str, what: &str) -> Result<Value, CliError> {
        let url = format!("{}/arvados/v1/{path}", self.api);
        self.api_call(self.http.get(url), what).await
    }

    pub async fn api_get_query(
        &self,
        path: &str,
        query: &[(&str, String)],
        what: &str,
    ) -> Result<Value, CliError> {
        let url = format!("{}/arvados/v1/{path}", self.api);
        self.api_call(self.http.get(url).query(query), what).await
    }

    pub async fn api_post(&self, path: &str, body: Value, what: &str) -> Result<Value, CliError> {
        let url = format!("{}/arvados/v1/{path}", self.api);
        self.api_call(self.http.post(url).json(&body), what).await
    }

    pub async fn api_delete(&self, path: &str, what: &str) -> Result<Value, CliError> {
        let url = format!("{}/arvados/v1/{path}", self.api);
        self.api_call(self.http.delete(url), what).await
    }

    /// The collection record (manifest signed for us).
    pub async fn collection(&self, id: &str) -> Result<Value, CliError> {
        self.api_get(
            &format!("collections/{id}"),
            &format!("reading collection {id}"),
        )
        .await
    }

    fn keepstore(&self, hash: &Hash) -> Result<&str, CliError> {
        if self.keepstores.is_empty() {
            return Err(CliError::new(
                "finding a keepstore",
                format!("the API server at {} lists no keepstore", self.api),
                "set keepstore_urls in the API server's configuration",
            ));
        }
        // spread blocks over the servers by hash
        // the same rendezvous order keep-web and keepstore's volumes use
        let i = keep_format::rendezvous_order(hash, &self.keepstores)[0];
        Ok(&self.keepstores[i])
    }

    /// Stores one block; returns its signed locator. Retries transient failures.
    pub async fn put_block(
        &self,
        hash: Hash,
        data: Bytes,
        replication: Option<u32>,
    ) -> Result<Locator, CliError> {
        let ks = self.keepstore(&hash)?.to_string();
        let url = format!("{ks}/{hash}");
        let what = format!("storing block {hash}+{} in {ks}", data.len());
        let mut last = String::new();
        for attempt in 0..4u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
            let mut req = self
                .http
                .put(&url)
                .bearer_auth(&self.token)
                .body(data.clone());
            if let Some(r) = replication {
                req = req.header("X-Keep-Desired-Replicas", r.to_string());
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = format!("cannot reach keepstore: {e}");
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            if status == 200 {
                let loc: Locator = body.trim().parse().map_err(|e| {
                    CliError::new(
                        &what,
                        format!("keepstore answered a bad locator {:?}: {e}", body.trim()),
                        "check that the keepstore URL the API lists is a keepstore",
                    )
                })?;
                if loc.hash != hash || loc.size != data.len() as u64 {
                    return Err(CliError::new(
                        &what,
                        format!("keepstore answered the locator of another block: {loc}"),
                        "check the keepstore",
                    ));
                }
                return Ok(loc);
            }
            last = format!("keepstore answered {status}: {}", body.trim());
            if status < 500 && status != 408 && status != 429 {
                break;
            }
        }
        Err(CliError::new(
            what,
            last,
            "check that keepstore is running and has space; rerun to resume",
        ))
    }

    /// Fetches one whole block and checks its size and BLAKE3 hash.
    pub async fn get_block(&self, loc: &Locator) -> Result<Bytes, CliError> {
        self.get_block_into(loc, Vec::new()).await.map(Bytes::from)
    }

    /// As [`Client::get_block`], into `buf` (cleared first): a caller that hands the same
    /// buffers back keeps its memory mapped instead of faulting in 64 MiB per block.
    pub async fn get_block_into(
        &self,
        loc: &Locator,
        mut buf: Vec<u8>,
    ) -> Result<Vec<u8>, CliError> {
        buf.clear();
        if loc.size == 0 {
            return Ok(buf);
        }
        let ks = self.keepstore(&loc.hash)?.to_string();
        let url = format!("{ks}/{loc}");
        let what = format!("reading block {}+{} from {ks}", loc.hash, loc.size);
        let mut last = String::new();
        for attempt in 0..4u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
            let mut resp = match self.http.get(&url).bearer_auth(&self.token).send().await {
                Ok(r) => r,
                Err(e) => {
                    last = format!("cannot reach keepstore: {e}");
                    continue;
                }
            };
            let status = resp.status().as_u16();
            if status != 200 {
                let body = resp.text().await.unwrap_or_default();
                last = format!("keepstore answered {status}: {}", body.trim());
                if status < 500 {
                    break;
                }
                continue;
            }
            buf.clear();
            buf.reserve(loc.size as usize);
            let broke = loop {
                match resp.chunk().await {
                    Ok(Some(c)) if buf.len() + c.len() <= loc.size as usize => {
                        buf.extend_from_slice(&c)
                    }
                    Ok(Some(_)) => break Some("more bytes than the block holds".to_string()),
                    Ok(None) => break None,
                    Err(e) => break Some(e.to_string()),
                }
            };
            if let Some(e) = broke {
                last = format!("the transfer broke off: {e}");
                continue;
            }
            if buf.len() as u64 != loc.size {
                last = format!("got {} bytes, expected {}", buf.len(), loc.size);
                continue;
            }
            let want = loc.hash;
            let (data, ok) = tokio::task::spawn_blocking(move || {
                let got = Hash::from(blake3::hash(&buf));
                (buf, got == want)
            })
            .await
            .map_err(|e| CliError::new(&what, e.to_string(), ""))?;
            buf = data;
            if !ok {
                last = "the bytes received do not match the block's hash".into();
                continue;
            }
            return Ok(buf);
        }
        Err(CliError::new(
            what,
            last,
            "check that keepstore is running; a 401 means the collection must be read again",
        ))
    }
}

/// Parses the API's token for sharing URLs etc.
pub fn token_secret(t: &str) -> String {
    t.parse::<Token>()
        .map(|t| t.secret().to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix seconds as RFC 3339 UTC (`2026-11-22T10:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let secs = secs as i64;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Writes to stdout, turning a broken pipe into a quiet success.
pub fn broken_pipe_ok(e: std::io::Error, what: &str) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    CliError::new(what, e.to_string(), "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = parse_target("zzzzz-4zz18-0123456789abcde/a/b").unwrap();
        assert_eq!(t.id, "zzzzz-4zz18-0123456789abcde");
        assert_eq!(t.path, "a/b");
        assert!(!t.trailing_slash);
        let t = parse_target("zzzzz-4zz18-0123456789abcde").unwrap();
        assert_eq!(t.path, "");
        assert!(t.trailing_slash);
        let t = parse_target("zzzzz-4zz18-0123456789abcde/d/").unwrap();
        assert_eq!(t.path, "d");
        assert!(t.trailing_slash);
        let pdh = format!("{}+0", Hash::of(b""));
        assert_eq!(parse_target(&pdh).unwrap().id, pdh);
        assert_eq!(parse_target("nope").unwrap_err().code, 2);
        assert_eq!(
            parse_target("zzzzz-tpzed-0123456789abcde")
                .unwrap_err()
                .code,
            2
        );
        assert!(parse_target("zzzzz-4zz18-0123456789abcde/../x").is_err());
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
