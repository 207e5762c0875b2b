//! The requests balance makes: the API's config and collection list, and each
//! keepstore's `/mounts`, `/index`, `PUT /pull`, `PUT /trash`, all with the system root
//! token. Any failure is an error naming the server: the caller then sends nothing.

use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use keep_format::Hash;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::CliError;

/// The API's page size limit (`max_limit`).
const PAGE: usize = 1000;
/// Longest index line accepted (a locator, a space, a number).
const INDEX_LINE_MAX: usize = 256;

pub struct Http {
    client: reqwest::Client,
    root: String,
}

fn fail(what: String, why: impl ToString, hint: &str) -> CliError {
    CliError::new(what, why.to_string(), hint)
}

/// One collection record as balance needs it.
#[derive(Deserialize, Debug, Default)]
pub struct Collection {
    pub uuid: String,
    #[serde(default)]
    pub portable_data_hash: String,
    #[serde(default)]
    pub unsigned_manifest_text: Option<String>,
    #[serde(default)]
    pub replication_desired: Option<u64>,
    #[serde(default)]
    pub is_trashed: bool,
    #[serde(default)]
    pub delete_at: Option<String>,
    #[serde(default)]
    pub modified_at: Option<String>,
    /// The current version's UUID (its own for a current record).
    #[serde(default)]
    pub current_version_uuid: String,
}

/// Which records a listing reads.
#[derive(Clone, Copy)]
pub enum Listing {
    /// Every record (current, past versions, trashed) with its manifest.
    Everything,
    /// Trashed current records, without manifests.
    TrashedCurrent,
}

/// What the API publishes about the cluster.
pub struct ClusterInfo {
    pub keepstores: Vec<String>,
    pub default_replication: Option<u64>,
}

#[derive(Deserialize)]
pub struct Mount {
    pub uuid: String,
}

impl Http {
    pub fn new(root: &str) -> Result<Http, CliError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| fail("starting the HTTP client".into(), e, ""))?;
        Ok(Http {
            client,
            root: root.to_string(),
        })
    }

    async fn json(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Value, CliError> {
        let r = req
            .bearer_auth(&self.root)
            .send()
            .await
            .map_err(|e| fail(what.into(), e.without_url(), "is it running?"))?;
        let status = r.status();
        let body = r
            .text()
            .await
            .map_err(|e| fail(what.into(), e.without_url(), ""))?;
        if !status.is_success() {
            let short: String = body.chars().take(300).collect();
            return Err(fail(
                what.into(),
                format!("it answered {status}: {}", short.trim()),
                "check that balance runs with the cluster's config (system root token)",
            ));
        }
        serde_json::from_str(&body).map_err(|e| fail(what.into(), e, "not JSON"))
    }

    pub async fn cluster(&self, api: &str) -> Result<ClusterInfo, CliError> {
        let what = format!("reading the cluster config from the API at {api}");
        let v = self
            .json(self.client.get(format!("{api}/arvados/v1/config")), &what)
            .await?;
        let keepstores = v["keepstore_urls"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(|s| s.trim_end_matches('/').to_string()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        Ok(ClusterInfo {
            keepstores,
            default_replication: v["default_replication"].as_u64(),
        })
    }

    async fn list_page(
        &self,
        api: &str,
        what: Listing,
        filters: Value,
        limit: usize,
        count: bool,
    ) -> Result<Value, CliError> {
        let mut select = vec![
            "uuid",
            "portable_data_hash",
            "replication_desired",
            "is_trashed",
            "delete_at",
            "modified_at",
            "current_version_uuid",
        ];
        let mut filters = filters;
        if let (Listing::TrashedCurrent, Some(f)) = (what, filters.as_array_mut()) {
            f.push(json!(["is_trashed", "=", true]));
        }
        if let Listing::Everything = what {
            select.push("unsigned_manifest_text");
        }
        let q: Vec<(&str, String)> = vec![
            ("filters", filters.to_string()),
            ("order", json!(["modified_at asc", "uuid asc"]).to_string()),
            ("select", json!(select).to_string()),
            ("include_trash", "true".into()),
            (
                "include_old_versions",
                matches!(what, Listing::Everything).to_string(),
            ),
            ("limit", limit.to_string()),
            ("count", if count { "exact" } else { "none" }.into()),
        ];
        self.json(
            self.client
                .get(format!("{api}/arvados/v1/collections"))
                .query(&q),
            &format!("listing collections at {api}"),
        )
        .await
    }

    /// Reads one page (`filters`, ordered by modified_at then uuid), hands each record
    /// to `f`, moves `last` to the page's last record; returns how many it read.
    async fn feed(
        &self,
        api: &str,
        what: Listing,
        filters: Value,
        last: &mut Option<(String, String)>,
        f: &mut impl FnMut(&Collection),
    ) -> Result<usize, CliError> {
        let page = Self::items(self.list_page(api, what, filters, PAGE, false).await?, api)?;
        page.iter().for_each(&mut *f);
        if let Some(c) = page.last() {
            *last = Some((c.modified_at.clone().unwrap_or_default(), c.uuid.clone()));
        }
        Ok(page.len())
    }

    fn items(v: Value, api: &str) -> Result<Vec<Collection>, CliError> {
        serde_json::from_value::<Vec<Collection>>(v["items"].clone()).map_err(|e| {
            fail(
                format!("listing collections at {api}"),
                format!("unexpected answer: {e}"),
                "",
            )
        })
    }

    /// Calls `f` for every collection record: current ones, past versions and trashed
    /// ones. Pages by (modified_at, uuid) ascending: a record written while the listing
    /// runs gets a `modified_at` after every one already read, so it is read later;
    /// an overwritten record's previous content stays as a past version. Returns the
    /// largest `modified_at` seen and how many records had one at most that large.
    pub async fn each_collection(
        &self,
        api: &str,
        what: Listing,
        mut f: impl FnMut(&Collection),
    ) -> Result<(String, u64), CliError> {
        let nulls = self
            .list_page(api, what, json!([["modified_at", "=", null]]), 0, true)
            .await?;
        if nulls["items_available"].as_u64().unwrap_or(0) > 0 {
            return Err(fail(
                format!("listing collections at {api}"),
                format!(
                    "{} collection records have no modified_at, and balance cannot page past them",
                    nulls["items_available"]
                ),
                "set their modified_at; balance does nothing until then",
            ));
        }
        let mut last: Option<(String, String)> = None;
        let mut seen = 0u64;
        loop {
            let filters = match &last {
                None => json!([]),
                Some((m, _)) => json!([["modified_at", ">", m]]),
            };
            let n = self.feed(api, what, filters, &mut last, &mut f).await?;
            if n == 0 {
                break;
            }
            seen += n as u64;
            // a full page may have stopped inside a run of equal modified_at
            let mut full = n == PAGE;
            while let (true, Some((m, u))) = (full, last.clone()) {
                let rest = json!([["modified_at", "=", m], ["uuid", ">", u]]);
                let n = self.feed(api, what, rest, &mut last, &mut f).await?;
                seen += n as u64;
                full = n == PAGE;
            }
        }
        Ok((last.map(|l| l.0).unwrap_or_default(), seen))
    }

    /// How many records now have `modified_at <= max` (Arvados's recount: fewer seen
    /// than this means the listing missed some).
    pub async fn count_upto(&self, api: &str, max: &str) -> Result<u64, CliError> {
        let v = self
            .list_page(
                api,
                Listing::Everything,
                json!([["modified_at", "<=", max]]),
                0,
                true,
            )
            .await?;
        v["items_available"].as_u64().ok_or_else(|| {
            fail(
                format!("counting collections at {api}"),
                "no items_available in the answer",
                "",
            )
        })
    }

    /// The keepstore's volumes, and its clock (its `Date` header).
    pub async fn mounts(&self, ks: &str) -> Result<(Vec<Mount>, SystemTime), CliError> {
        let what = format!("reading {ks}/mounts");
        let r = self
            .client
            .get(format!("{ks}/mounts"))
            .bearer_auth(&self.root)
            .send()
            .await
            .map_err(|e| fail(what.clone(), e.without_url(), "is that keepstore running?"))?;
        let date = r
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| keep_format::time::parse_http_date(d).ok())
            .ok_or_else(|| fail(what.clone(), "no Date header in its answer", ""))?;
        let status = r.status();
        let body = r
            .text()
            .await
            .map_err(|e| fail(what.clone(), e.without_url(), ""))?;
        if !status.is_success() {
            return Err(fail(
                what,
                format!("it answered {status}: {}", body.trim()),
                "check that balance runs with the cluster's config (system root token)",
            ));
        }
        let mounts = serde_json::from_str(&body).map_err(|e| fail(what, e, "not JSON"))?;
        Ok((mounts, date))
    }

    /// Streams a keepstore's whole index into `f(hash, size, mtime_ns)`. Fails unless
    /// the listing ends with its final empty line (complete).
    pub async fn index(
        &self,
        ks: &str,
        mut f: impl FnMut(&Hash, u64, u64),
    ) -> Result<u64, CliError> {
        let what = format!("reading {ks}/index");
        let r = self
            .client
            .get(format!("{ks}/index"))
            .bearer_auth(&self.root)
            .send()
            .await
            .map_err(|e| fail(what.clone(), e.without_url(), "is that keepstore running?"))?;
        if !r.status().is_success() {
            return Err(fail(
                what,
                format!("it answered {}", r.status()),
                "check the system root token",
            ));
        }
        let mut body = r.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut n = 0u64;
        let mut complete = false;
        let bad = |line: &[u8]| {
            fail(
                what.clone(),
                format!(
                    "malformed index line {:?}",
                    String::from_utf8_lossy(&line[..line.len().min(100)])
                ),
                "",
            )
        };
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| fail(what.clone(), e.without_url(), ""))?;
            buf.extend_from_slice(&chunk);
            let mut start = 0;
            while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
                let line = &buf[start..start + nl];
                start += nl + 1;
                if complete {
                    return Err(fail(what.clone(), "data after the final empty line", ""));
                }
                if line.is_empty() {
                    complete = true;
                    continue;
                }
                let (hash, size, mtime) = parse_index_line(line).ok_or_else(|| bad(line))?;
                f(&hash, size, mtime);
                n += 1;
            }
            buf.drain(..start);
            if buf.len() > INDEX_LINE_MAX {
                return Err(bad(&buf));
            }
        }
        if !complete || !buf.is_empty() {
            return Err(fail(
                what,
                "the index ended early (no final empty line)",
                "retry; a keepstore that restarts mid-listing gives a partial index",
            ));
        }
        Ok(n)
    }

    async fn put_list<T: serde::Serialize>(
        &self,
        ks: &str,
        path: &str,
        list: &[T],
    ) -> Result<Value, CliError> {
        self.json(
            self.client.put(format!("{ks}/{path}")).json(list),
            &format!("sending the {path} list to {ks}"),
        )
        .await
    }

    pub async fn pull(&self, ks: &str, list: &[super::plan::PullEntry]) -> Result<Value, CliError> {
        self.put_list(ks, "pull", list).await
    }

    pub async fn trash(
        &self,
        ks: &str,
        list: &[super::plan::TrashEntry],
    ) -> Result<Value, CliError> {
        self.put_list(ks, "trash", list).await
    }
}

/// `<hash>+<size> <mtime_ns>`.
fn parse_index_line(line: &[u8]) -> Option<(Hash, u64, u64)> {
    let s = std::str::from_utf8(line).ok()?;
    let (loc, mtime) = s.split_once(' ')?;
    let (hash, size) = loc.split_once('+')?;
    let size = size.split('+').next()?;
    Some((hash.parse().ok()?, size.parse().ok()?, mtime.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lines() {
        let h = Hash::of(b"x");
        let line = format!("{h}+12 1700000000123456789");
        assert_eq!(
            parse_index_line(line.as_bytes()),
            Some((h, 12, 1_700_000_000_123_456_789))
        );
        assert!(parse_index_line(b"nonsense").is_none());
        assert!(parse_index_line(format!("{h}+x 1").as_bytes()).is_none());
    }
}
