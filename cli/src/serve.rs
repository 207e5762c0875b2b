//! `keep serve`: every service in one process (or one of them with `--only`).

use std::net::TcpListener;
use std::path::PathBuf;

use actix_web::middleware::from_fn;
use actix_web::{dev::ServerHandle, App, HttpServer};
use keep_format::BlobSigner;

use crate::access_log;
use crate::config::Config;
use crate::error::CliError;

/// Which services `keep serve` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    Api,
    Keepstore,
    Web,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Directory for blocks, the database and generated secrets.
    #[arg(long, default_value = "./keep-data", value_name = "DIR")]
    pub data: PathBuf,
    /// TOML config file (every key is optional; see doc/admin.md).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run only this service.
    #[arg(long, value_enum)]
    pub only: Option<Only>,
}

fn bind(addr: std::net::SocketAddr, what: &str) -> Result<TcpListener, CliError> {
    TcpListener::bind(addr).map_err(|e| {
        CliError::new(
            format!("starting {what} on {addr}"),
            e.to_string(),
            "stop whatever uses that port, or set another `listen` in the config file",
        )
    })
}

/// TCP_NODELAY on every accepted connection: a response whose headers and body leave
/// in separate writes (every streamed body) otherwise waits out the client's delayed
/// ACK, 40 ms per request on a kept-alive connection.
fn no_delay(conn: &dyn std::any::Any, _: &mut actix_web::dev::Extensions) {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
    }
}

fn url_of(l: &TcpListener) -> String {
    match l.local_addr() {
        Ok(a) => format!("http://{a}"),
        Err(_) => "http://?".into(),
    }
}

pub async fn run(args: ServeArgs) -> Result<(), CliError> {
    let cfg = Config::load(&args.data, args.config.as_deref())?;
    let runs = |s: Only| args.only.is_none() || args.only == Some(s);
    let signer = BlobSigner::new(cfg.signing_key(), cfg.blob_signature_ttl);
    let mut handles: Vec<ServerHandle> = Vec::new();
    let mut servers = Vec::new();
    let mut lines = Vec::new();

    // Bind every listener first: each service's URL is known before any starts, so the
    // API can tell clients where keepstore and keep-web are even on port 0.
    let ks_listener = match runs(Only::Keepstore) {
        true => Some(bind(cfg.keepstore_listen, "keepstore")?),
        false => None,
    };
    let api_listener = match runs(Only::Api) {
        true => Some(bind(cfg.api_listen, "the API server")?),
        false => None,
    };
    let web_listener = match runs(Only::Web) {
        true => Some(bind(cfg.web_listen, "keep-web")?),
        false => None,
    };
    let keepstore_url = cfg
        .keepstore_external_url
        .clone()
        .or_else(|| ks_listener.as_ref().map(url_of))
        .unwrap_or_else(|| format!("http://{}", cfg.keepstore_listen));
    let api_url = cfg
        .api_external_url
        .clone()
        .or_else(|| api_listener.as_ref().map(url_of))
        .unwrap_or_else(|| format!("http://{}", cfg.api_listen));
    let web_url = cfg
        .web_external_url
        .clone()
        .or_else(|| web_listener.as_ref().map(url_of))
        .unwrap_or_else(|| format!("http://{}", cfg.web_listen));
    let mut anonymous_token = match &cfg.web_anonymous_token {
        Some(t) => Some(t.parse::<keep_format::Token>().map_err(|e| {
            CliError::new(
                "reading [web] anonymous_token",
                e.to_string(),
                "use a token printed by `keep token create --user <anonymous user uuid>`",
            )
        })?),
        None => None,
    };
    let mut notes = Vec::new();
    let mut local_blocks: Option<std::sync::Arc<dyn keep_web::LocalBlocks>> = None;

    if let Some(listener) = ks_listener {
        let ks = keepstore::Keepstore::start(cfg.keepstore_config(signer.clone(), &api_url))
            .await
            .map_err(|e| {
                CliError::new(
                    "starting keepstore",
                    e.to_string(),
                    "check the [keepstore] volumes",
                )
            })?;
        local_blocks = Some(std::sync::Arc::new(InProcess(ks.clone())));
        lines.push(format!("  keepstore  {}", url_of(&listener)));
        let app_ks = ks.clone();
        let server = HttpServer::new(move || {
            let ks = app_ks.clone();
            App::new()
                .wrap(from_fn(|req, next| access_log::log("keepstore", req, next)))
                .configure(move |c| ks.configure(c))
        })
        .on_connect(no_delay)
        .listen(listener)
        .map_err(|e| CliError::new("starting keepstore", e.to_string(), ""))?
        .disable_signals()
        .shutdown_timeout(30)
        .run();
        handles.push(server.handle());
        servers.push(tokio::spawn(server));
        tokio::spawn(ks.run_sweeper());
    }

    if let Some(listener) = api_listener {
        let api = keep_api::Api::open(keep_api::Config {
            cluster_id: cfg.cluster_id.clone(),
            db_path: cfg.data_dir.join("db"),
            signer: signer.clone(),
            system_root_token: cfg.system_root_token.clone(),
            management_token: cfg.management_token.clone(),
            keepstore_urls: vec![keepstore_url.clone()],
            web_url: web_url.clone(),
        })
        .map_err(|e| {
            CliError::new(
                "starting the API server",
                e.to_string(),
                format!(
                    "is another keep serve using {}? stop it, or use another --data",
                    cfg.data_dir.display()
                ),
            )
        })?;
        let fail = |e: keep_api::Error| {
            CliError::new("creating the admin user", e.to_string(), "see the log")
        };
        if let Some(admin) = api.bootstrap().map_err(fail)? {
            let file = cfg.data_dir.join("admin-token");
            crate::config::write_private(&file, format!("{}\n", admin.expose()).as_bytes())?;
            notes.push(format!("  admin token  {}", file.display()));
            match crate::settings::write(&api_url, &admin) {
                Ok(p) => notes.push(format!("  client settings  {}", p.display())),
                Err(e) => tracing::warn!("not writing the client settings: {e}"),
            }
        } else {
            notes.push(format!(
                "  admin token  {}",
                cfg.data_dir.join("admin-token").display()
            ));
        }
        if anonymous_token.is_none() && runs(Only::Web) {
            anonymous_token = Some(anonymous_token_for(&api, &cfg.data_dir)?);
        }
        lines.push(format!("  api  {}", url_of(&listener)));
        let app_api = api.clone();
        let server = HttpServer::new(move || {
            let api = app_api.clone();
            App::new()
                .wrap(from_fn(|req, next| access_log::log("api", req, next)))
                .configure(move |c| api.configure(c))
        })
        .on_connect(no_delay)
        .listen(listener)
        .map_err(|e| CliError::new("starting the API server", e.to_string(), ""))?
        .disable_signals()
        .shutdown_timeout(30)
        .run();
        handles.push(server.handle());
        servers.push(tokio::spawn(server));
        if runs(Only::Keepstore) {
            crate::balance::spawn_periodic(&cfg, api_url.clone());
        }
    }

    if let Some(listener) = web_listener {
        let web_cfg = keep_web::Config {
            api_url: api_url.clone(),
            // in one process keep-web talks to its own keepstore; alone, it asks the API
            keepstore_urls: match runs(Only::Keepstore) {
                true => vec![keepstore_url.clone()],
                false => Vec::new(),
            },
            domain: cfg.web_domain.clone(),
            download_host: cfg.web_download_host.clone(),
            trust_all_content: cfg.web_trust_all_content,
            anonymous_token,
            management_token: cfg.management_token.clone(),
            external_url: web_url.clone(),
        };
        let kw =
            keep_web::KeepWeb::with_local_blocks(web_cfg, local_blocks.take()).map_err(|e| {
                CliError::new(
                    "starting keep-web",
                    e.to_string(),
                    "check the [web] section",
                )
            })?;
        lines.push(format!("  keep-web  {}", url_of(&listener)));
        let server = HttpServer::new(move || {
            let kw = kw.clone();
            App::new()
                .wrap(from_fn(|req, next| access_log::log("keep-web", req, next)))
                .configure(move |c| kw.configure(c))
        })
        .on_connect(no_delay)
        .listen(listener)
        .map_err(|e| CliError::new("starting keep-web", e.to_string(), ""))?
        .disable_signals()
        .shutdown_timeout(30)
        .run();
        handles.push(server.handle());
        servers.push(tokio::spawn(server));
    }

    println!("keep serve: data in {}", cfg.data_dir.display());
    for l in &lines {
        println!("{l}");
    }
    for n in &notes {
        println!("{n}");
    }
    if runs(Only::Api) {
        println!("  try: keep put <directory>   (then open the keep-web URL in a browser)");
    }
    println!("keep serve: ready (Ctrl-C or SIGTERM stops it; in-flight requests finish first)");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    wait_for_shutdown().await;
    tracing::info!("shutting down: draining in-flight requests");
    for h in &handles {
        h.stop(true).await;
    }
    for s in servers {
        let _ = s.await;
    }
    Ok(())
}

/// keep-web reads and writes the blocks of its own process's keepstore without HTTP:
/// the same signature check and verified reads, the same atomic writes, two socket
/// copies and an HTTP parse fewer.
struct InProcess(keepstore::Keepstore);

impl keep_web::LocalBlocks for InProcess {
    fn slice(
        &self,
        locator: &keep_format::Locator,
        token: &keep_format::Token,
        off: u64,
        len: u64,
    ) -> futures_util::future::BoxFuture<
        'static,
        Result<Option<keep_web::SliceStream>, keep_web::Error>,
    > {
        use futures_util::{FutureExt, StreamExt, TryStreamExt};
        let (ks, locator, token) = (self.0.clone(), locator.clone(), token.clone());
        async move {
            match ks.read_slice(&locator, &token, off, len).await {
                Ok(st) => Ok(Some(
                    st.map_err(|e| keep_web::Error::Upstream(format!("reading a block: {e}")))
                        .boxed(),
                )),
                Err(keepstore::Error::NotFound(_)) => Ok(None),
                Err(e) => Err(keep_web::Error::Upstream(format!(
                    "keepstore (in process): {e}"
                ))),
            }
        }
        .boxed()
    }

    fn store(
        &self,
        data: bytes::Bytes,
        token: &keep_format::Token,
    ) -> futures_util::future::BoxFuture<
        'static,
        Result<Option<keep_format::Locator>, keep_web::Error>,
    > {
        use futures_util::FutureExt;
        let (ks, token) = (self.0.clone(), token.clone());
        async move {
            match ks.store(data, &token).await {
                Ok(l) => Ok(Some(l)),
                Err(e @ keepstore::Error::Full(_)) => Err(keep_web::Error::InsufficientStorage(
                    format!("keepstore (in process): {e}"),
                )),
                Err(e) => Err(keep_web::Error::Upstream(format!(
                    "keepstore (in process): {e}"
                ))),
            }
        }
        .boxed()
    }
}

/// keep-web's token for the anonymous user: made once, kept in `DIR/anonymous-token`
/// (mode 0600) so that restarts don't pile up tokens.
fn anonymous_token_for(
    api: &keep_api::Api,
    data_dir: &std::path::Path,
) -> Result<keep_format::Token, CliError> {
    let file = data_dir.join("anonymous-token");
    if let Ok(text) = std::fs::read_to_string(&file) {
        if let Ok(t) = text.trim().parse::<keep_format::Token>() {
            return Ok(t);
        }
    }
    let t = api
        .create_token(api.anonymous_user_uuid(), None, None)
        .map_err(|e| {
            CliError::new(
                "creating keep-web's anonymous token",
                e.to_string(),
                "see the log",
            )
        })?;
    crate::config::write_private(&file, format!("{}\n", t.expose()).as_bytes())?;
    Ok(t)
}

async fn wait_for_shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // without signal handlers, run until killed
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
