//! keep-api in this process on 127.0.0.1:0 (RocksDB in a temp dir): the API a crate's
//! own service (keepstore, keep-web) is tested against.

use std::time::Duration;

use actix_web::{App, HttpServer};
use keep_format::{BlobSigner, SigningKey};

use crate::api::Api;

/// How the in-process API is configured; [`Default`] suits most tests.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// The blob-signing key, shared with the keepstores under test.
    pub signing_key: String,
    /// How long a signature lives.
    pub signature_ttl: Duration,
    /// The bare system root token (admin), shared with the keepstores under test.
    pub system_root_token: String,
    pub management_token: String,
    pub keepstore_urls: Vec<String>,
    pub web_url: String,
}

impl Default for ApiSettings {
    fn default() -> ApiSettings {
        ApiSettings {
            signing_key: "test-signing-key".into(),
            signature_ttl: Duration::from_secs(3600),
            system_root_token: "rootsecret0123456789".into(),
            management_token: "management-token".into(),
            keepstore_urls: Vec::new(),
            web_url: "http://127.0.0.1:9002".into(),
        }
    }
}

impl ApiSettings {
    /// The signer the API uses, for signing locators in a test.
    pub fn signer(&self) -> BlobSigner {
        BlobSigner::new(
            SigningKey::new(self.signing_key.as_str()),
            self.signature_ttl,
        )
    }
}

/// A running in-process API. Derefs to its [`Api`] client (whose `admin` is the token
/// the first start made); stops when dropped.
pub struct ApiServer {
    pub client: Api,
    /// The API itself, for what a test checks from the inside.
    pub api: keep_api::Api,
    pub settings: ApiSettings,
    pub dir: tempfile::TempDir,
    handle: actix_web::dev::ServerHandle,
}

impl ApiServer {
    /// Opens the API on a fresh RocksDB, bootstraps it and serves it on 127.0.0.1:0.
    /// Needs a Tokio runtime (`#[tokio::test]`).
    pub async fn start(settings: ApiSettings) -> ApiServer {
        let dir = crate::temp_dir();
        let config = keep_api::Config {
            cluster_id: "zzzzz".into(),
            db_path: dir.path().join("db"),
            signer: settings.signer(),
            system_root_token: settings.system_root_token.clone(),
            management_token: settings.management_token.clone(),
            keepstore_urls: settings.keepstore_urls.clone(),
            web_url: settings.web_url.clone(),
            default_replication: 1,
        };
        let (api, admin) = tokio::task::spawn_blocking(move || {
            let api = keep_api::Api::open(config).expect("open keep-api");
            let admin = api.bootstrap().expect("bootstrap keep-api");
            (api, admin)
        })
        .await
        .expect("keep-api start-up thread");
        let admin = match admin {
            Some(t) => t.expose(),
            None => settings.system_root_token.clone(),
        };
        let served = api.clone();
        let server = HttpServer::new(move || {
            let api = served.clone();
            App::new().configure(move |c| api.configure(c))
        })
        .workers(2)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("bind 127.0.0.1:0");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        ApiServer {
            client: Api::new(&format!("http://{addr}"), &admin),
            api,
            settings,
            dir,
            handle,
        }
    }
}

impl std::ops::Deref for ApiServer {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.client
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        // stop without waiting: the runtime goes away with the test
        drop(self.handle.stop(false));
    }
}
