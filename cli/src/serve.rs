//! `keep serve`: every service in one process (or one of them with `--only`).
//!
//! [`run`] is [`start`] (bind every listener, open each service, start its HTTP server
//! through the one builder, [`http_server`]), then waiting for a signal, then
//! [`Running::stop`]. Each service's HTTP server takes the same settings,
//! [`ServerSettings`] (`[api.server]`, `[keepstore.server]`, `[web.server]` in the
//! config file; see `serve/http.rs`): how long a client may take to send a request head
//! or the next bytes of a body, how long an idle connection is kept, and how many
//! connections a worker holds.

use std::net::TcpListener;
use std::path::PathBuf;

use actix_web::dev::{Server, ServerHandle};
use keep_format::BlobSigner;

use crate::config::Config;
use crate::error::CliError;

mod http;

pub use http::{http_server, ServerSection, ServerSettings};

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

fn url_of(l: &TcpListener) -> String {
    match l.local_addr() {
        Ok(a) => format!("http://{a}"),
        Err(_) => "http://?".into(),
    }
}

/// Raises this process's open-file limit to its hard limit: every connection is a file,
/// and a default soft limit of 1024 would refuse clients long before `max_connections`.
fn raise_open_files() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) != 0 {
                tracing::debug!("could not raise the open-file limit");
            }
        }
    }
}

/// The services `keep serve` started: their URLs, and their servers until [`Running::stop`].
#[derive(Default)]
pub struct Running {
    /// The URL each started service listens on.
    pub api_url: Option<String>,
    pub keepstore_url: Option<String>,
    pub web_url: Option<String>,
    data_dir: PathBuf,
    /// What `keep serve` prints once ready (where the admin token is, …).
    notes: Vec<String>,
    handles: Vec<ServerHandle>,
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    fn add(&mut self, server: Server) {
        self.handles.push(server.handle());
        self.servers.push(tokio::spawn(server));
    }

    /// Stops accepting, lets in-flight requests finish (at most 30 s), and returns when
    /// every server has stopped (and dropped its service).
    pub async fn stop(self) {
        for h in &self.handles {
            h.stop(true).await;
        }
        for s in self.servers {
            let _ = s.await;
        }
    }

    fn print_ready(&self) {
        println!("keep serve: data in {}", self.data_dir.display());
        for (name, url) in [
            ("keepstore", &self.keepstore_url),
            ("api", &self.api_url),
            ("keep-web", &self.web_url),
        ] {
            if let Some(u) = url {
                println!("  {name}  {u}");
            }
        }
        for n in &self.notes {
            println!("{n}");
        }
        if self.api_url.is_some() {
            println!("  try: keep put <directory>   (then open the keep-web URL in a browser)");
        }
        println!("keep serve: ready (Ctrl-C or SIGTERM stops it; in-flight requests finish first)");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
    }
}

pub async fn run(args: ServeArgs) -> Result<(), CliError> {
    let running = start(&args).await?;
    running.print_ready();
    wait_for_shutdown().await;
    tracing::info!("shutting down: draining in-flight requests");
    running.stop().await;
    Ok(())
}

/// Each service's listener (bound before any service starts, so that every URL is
/// known first: the API tells clients where keepstore and keep-web are even on port 0).
struct Listeners {
    keepstore: Option<TcpListener>,
    api: Option<TcpListener>,
    web: Option<TcpListener>,
}

/// The URL of each service as the others reach it.
struct Urls {
    keepstore: String,
    api: String,
    web: String,
}

impl Listeners {
    fn bind(cfg: &Config, only: Option<Only>) -> Result<Listeners, CliError> {
        let runs = |s: Only| only.is_none() || only == Some(s);
        let bind_if = |s: Only, addr: std::net::SocketAddr, what: &'static str| {
            runs(s).then(|| bind(addr, what)).transpose()
        };
        Ok(Listeners {
            keepstore: bind_if(Only::Keepstore, cfg.keepstore_listen, "keepstore")?,
            api: bind_if(Only::Api, cfg.api_listen, "the API server")?,
            web: bind_if(Only::Web, cfg.web_listen, "keep-web")?,
        })
    }

    fn urls(&self, cfg: &Config) -> Urls {
        let url = |external: &Option<String>, l: &Option<TcpListener>, listen| {
            external
                .clone()
                .or_else(|| l.as_ref().map(url_of))
                .unwrap_or_else(|| format!("http://{listen}"))
        };
        Urls {
            keepstore: url(
                &cfg.keepstore_external_url,
                &self.keepstore,
                cfg.keepstore_listen,
            ),
            api: url(&cfg.api_external_url, &self.api, cfg.api_listen),
            web: url(&cfg.web_external_url, &self.web, cfg.web_listen),
        }
    }
}

/// Starts the services `args` asks for and returns once all of them listen.
pub async fn start(args: &ServeArgs) -> Result<Running, CliError> {
    raise_open_files();
    let cfg = Config::load(&args.data, args.config.as_deref())?;
    let signer = BlobSigner::new(cfg.signing_key(), cfg.blob_signature_ttl);
    let listeners = Listeners::bind(&cfg, args.only)?;
    let urls = listeners.urls(&cfg);
    let mut running = Running {
        data_dir: cfg.data_dir.clone(),
        ..Running::default()
    };
    let mut anonymous_token = configured_anonymous_token(&cfg)?;

    let mut local_blocks: Option<std::sync::Arc<dyn keep_web::LocalBlocks>> = None;
    if let Some(l) = listeners.keepstore {
        local_blocks = Some(start_keepstore(&cfg, &signer, &urls, l, &mut running).await?);
    }
    if let Some(l) = listeners.api {
        let web_too = listeners.web.is_some();
        let anon = start_api(&cfg, &signer, &urls, l, web_too, &mut running).await?;
        anonymous_token = anonymous_token.or(anon);
        // GC and replication run where the API and a keepstore run together
        if local_blocks.is_some() {
            crate::balance::spawn_periodic(&cfg, urls.api.clone());
        }
    }
    if let Some(l) = listeners.web {
        // in one process keep-web talks to its own keepstore; alone, it asks the API
        let keepstores = match local_blocks.is_some() {
            true => vec![urls.keepstore.clone()],
            false => Vec::new(),
        };
        let web_cfg = keep_web::Config {
            api_url: urls.api.clone(),
            keepstore_urls: keepstores,
            domain: cfg.web_domain.clone(),
            download_host: cfg.web_download_host.clone(),
            trust_all_content: cfg.web_trust_all_content,
            anonymous_token,
            management_token: cfg.management_token.clone(),
            external_url: urls.web.clone(),
        };
        start_web(&cfg, web_cfg, local_blocks, l, &mut running)?;
    }
    Ok(running)
}

/// `[web] anonymous_token`, parsed.
fn configured_anonymous_token(cfg: &Config) -> Result<Option<keep_format::Token>, CliError> {
    let Some(t) = &cfg.web_anonymous_token else {
        return Ok(None);
    };
    t.parse::<keep_format::Token>().map(Some).map_err(|e| {
        CliError::new(
            "reading [web] anonymous_token",
            e.to_string(),
            "use a token printed by `keep token create --user <anonymous user uuid>`",
        )
    })
}

async fn start_keepstore(
    cfg: &Config,
    signer: &BlobSigner,
    urls: &Urls,
    listener: TcpListener,
    running: &mut Running,
) -> Result<std::sync::Arc<dyn keep_web::LocalBlocks>, CliError> {
    let ks = keepstore::Keepstore::start(cfg.keepstore_config(signer.clone(), &urls.api))
        .await
        .map_err(|e| {
            CliError::new(
                "starting keepstore",
                e.to_string(),
                "check the [keepstore] volumes",
            )
        })?;
    running.keepstore_url = Some(url_of(&listener));
    let app_ks = ks.clone();
    running.add(http_server(
        "keepstore",
        listener,
        &cfg.keepstore_server,
        move |c| app_ks.configure(c),
    )?);
    tokio::spawn(ks.clone().run_sweeper());
    Ok(std::sync::Arc::new(InProcess(ks)))
}

/// Opens the API (creating the admin user on first start) and starts its server; the
/// anonymous token for keep-web when keep-web runs here too and none is configured.
async fn start_api(
    cfg: &Config,
    signer: &BlobSigner,
    urls: &Urls,
    listener: TcpListener,
    web_too: bool,
    running: &mut Running,
) -> Result<Option<keep_format::Token>, CliError> {
    let api = keep_api::Api::open(keep_api::Config {
        cluster_id: cfg.cluster_id.clone(),
        db_path: cfg.data_dir.join("db"),
        signer: signer.clone(),
        system_root_token: cfg.system_root_token.clone(),
        management_token: cfg.management_token.clone(),
        keepstore_urls: cfg.keepstores_or(&urls.keepstore),
        web_url: urls.web.clone(),
        default_replication: cfg.default_replication,
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
    bootstrap_admin(&api, cfg, &urls.api, &mut running.notes)?;
    let anonymous = match web_too && cfg.web_anonymous_token.is_none() {
        true => Some(anonymous_token_for(&api, &cfg.data_dir)?),
        false => None,
    };
    running.api_url = Some(url_of(&listener));
    running.add(http_server("api", listener, &cfg.api_server, move |c| {
        api.configure(c)
    })?);
    Ok(anonymous)
}

/// On first start: the admin user, its token in `DIR/admin-token` and the client
/// settings file. Says where the token is either way.
fn bootstrap_admin(
    api: &keep_api::Api,
    cfg: &Config,
    api_url: &str,
    notes: &mut Vec<String>,
) -> Result<(), CliError> {
    let fail =
        |e: keep_api::Error| CliError::new("creating the admin user", e.to_string(), "see the log");
    let file = cfg.data_dir.join("admin-token");
    if let Some(admin) = api.bootstrap().map_err(fail)? {
        crate::config::write_private(&file, format!("{}\n", admin.expose()).as_bytes())?;
        notes.push(format!("  admin token  {}", file.display()));
        match crate::settings::write(api_url, &admin) {
            Ok(p) => notes.push(format!("  client settings  {}", p.display())),
            Err(e) => tracing::warn!("not writing the client settings: {e}"),
        }
    } else {
        notes.push(format!("  admin token  {}", file.display()));
    }
    Ok(())
}

fn start_web(
    cfg: &Config,
    web_cfg: keep_web::Config,
    local_blocks: Option<std::sync::Arc<dyn keep_web::LocalBlocks>>,
    listener: TcpListener,
    running: &mut Running,
) -> Result<(), CliError> {
    let kw = keep_web::KeepWeb::with_local_blocks(web_cfg, local_blocks).map_err(|e| {
        CliError::new(
            "starting keep-web",
            e.to_string(),
            "check the [web] section",
        )
    })?;
    running.web_url = Some(url_of(&listener));
    running.add(http_server(
        "keep-web",
        listener,
        &cfg.web_server,
        move |c| kw.configure(c),
    )?);
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
