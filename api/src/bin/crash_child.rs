//! The server process of the crash test (`tests/crash.rs`): not a tool. It opens the
//! API on a data directory, writes the admin token (first start) and its port there,
//! serves until killed.
//!
//! `keep-api-crash-child <dir> <blob signing key> <system root token> <management token>`

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use actix_web::{App, HttpServer};
use keep_api::{Api, Config};
use keep_format::{BlobSigner, SigningKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, key, root, mgmt] = args.as_slice() else {
        return Err(
            "usage: keep-api-crash-child <dir> <signing key> <root token> <management token>"
                .into(),
        );
    };
    let dir = PathBuf::from(dir);
    let cfg = Config {
        cluster_id: "zzzzz".into(),
        db_path: dir.join("db"),
        signer: BlobSigner::new(SigningKey::new(key.as_str()), Duration::from_secs(3600)),
        system_root_token: root.clone(),
        management_token: mgmt.clone(),
        keepstore_urls: vec!["http://127.0.0.1:25107".into()],
        web_url: "http://127.0.0.1:9002".into(),
        default_replication: 1,
    };
    let api = Api::open(cfg)?;
    if let Some(t) = api.bootstrap()? {
        std::fs::write(dir.join("admin-token"), t.expose())?;
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let server = HttpServer::new(move || {
            let a = api.clone();
            App::new().configure(move |c| a.configure(c))
        })
        .workers(2)
        .bind(("127.0.0.1", 0))?;
        let addr = server.addrs()[0];
        std::fs::write(dir.join("port.tmp"), addr.port().to_string())?;
        std::fs::rename(dir.join("port.tmp"), dir.join("port"))?;
        server.run().await?;
        Ok(())
    })
}
