//! Hosts: which collection a vhost names, and what the request's host allows (DESIGN
//! §5: credentials only where a page can't read another collection from the same
//! origin; attachments on the download host).

use crate::error::Error;
use crate::resolve::url::coll_id;

/// The host settings, from `Config`.
pub struct Hosts {
    /// Collection vhosts are `<id>.<domain>` and `<id>--<domain>` (lowercase).
    domain: String,
    /// The attachment-only download host (lowercase, no port).
    download_host: Option<String>,
    trust_all_content: bool,
}

/// What a request's Host decides.
pub struct Origin {
    /// The Host header without its port, lowercase (`None`: no Host, HTTP/1.0).
    pub host: Option<String>,
    /// The collection id of a collection vhost.
    pub vhost: Option<String>,
    /// Client credentials may be used here.
    pub creds_ok: bool,
    /// Files are sent as attachments (the download host).
    pub attachment: bool,
}

/// `host[:port]` → lowercase host.
pub fn strip_port(h: &str) -> String {
    let h = h.trim().to_ascii_lowercase();
    if h.starts_with('[') {
        return match h.find(']') {
            Some(i) => h[..=i].to_string(),
            None => h,
        };
    }
    match h.rsplit_once(':') {
        Some((a, p)) if p.bytes().all(|b| b.is_ascii_digit()) => a.to_string(),
        _ => h,
    }
}

impl Hosts {
    /// `download_host`: `None` means the host of `external_url`, `Some("")` none.
    pub fn new(
        domain: &str,
        download_host: Option<&str>,
        external_url: &str,
        trust_all_content: bool,
    ) -> Result<Hosts, Error> {
        let download_host = match download_host {
            Some("") => None,
            Some(h) => Some(strip_port(h)),
            None => {
                let rest = external_url
                    .split_once("://")
                    .map_or(external_url, |(_, r)| r);
                let host = rest.split('/').next().unwrap_or_default();
                (!host.is_empty()).then(|| strip_port(host))
            }
        };
        let domain = domain.trim_matches('.').to_ascii_lowercase();
        if domain.is_empty() {
            return Err(Error::Config("web domain is empty".into()));
        }
        Ok(Hosts {
            domain,
            download_host,
            trust_all_content,
        })
    }

    /// The collection id a host (without port) names as a collection vhost.
    pub fn vhost_id(&self, host: &str) -> Option<String> {
        let label = host
            .strip_suffix(self.domain.as_str())
            .and_then(|p| p.strip_suffix('.').or_else(|| p.strip_suffix("--")))?;
        if label.is_empty() || label.contains('.') {
            return None;
        }
        coll_id(label).map(|_| label.to_string())
    }

    /// What a request with this Host header (`host[:port]`) may do.
    pub fn origin(&self, host_header: Option<&str>) -> Origin {
        let host = host_header.map(strip_port).filter(|h| !h.is_empty());
        let vhost = host.as_deref().and_then(|h| self.vhost_id(h));
        let on_download = host.is_some() && host == self.download_host;
        Origin {
            creds_ok: vhost.is_some() || self.trust_all_content || on_download,
            attachment: vhost.is_none() && !self.trust_all_content && on_download,
            host,
            vhost,
        }
    }
}
