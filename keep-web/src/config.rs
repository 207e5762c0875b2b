//! What `keep serve` hands keep-web.

use keep_format::Token;

#[derive(Clone, Debug)]
pub struct Config {
    /// The API server, e.g. `http://127.0.0.1:8003`.
    pub api_url: String,
    /// Keepstore base URLs; empty: ask `GET {api_url}/arvados/v1/config`.
    pub keepstore_urls: Vec<String>,
    /// Collection vhosts are `<id>.<domain>` and `<id>--<domain>`.
    pub domain: String,
    /// The attachment-only download host (`host` or `host:port`; the port is ignored).
    /// `None`: the host of `external_url`. `Some("")`: none.
    pub download_host: Option<String>,
    /// Honour credentials on every host (only for trusted content).
    pub trust_all_content: bool,
    /// Tried last, and the only token used where credentials are not honoured.
    pub anonymous_token: Option<Token>,
    /// Bearer token for `/_health/ping` and `/metrics`; empty: those answer 404.
    pub management_token: String,
    /// keep-web's own URL as clients see it.
    pub external_url: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            api_url: "http://127.0.0.1:8003".into(),
            keepstore_urls: Vec::new(),
            domain: "localhost".into(),
            download_host: None,
            trust_all_content: false,
            anonymous_token: None,
            management_token: String::new(),
            external_url: "http://127.0.0.1:9002".into(),
        }
    }
}
