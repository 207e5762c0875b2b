//! The `keep` command. `main.rs` only calls [`main`].

pub mod access_log;
pub mod config;
pub mod error;
pub mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::CliError;

/// Keep: content-addressed collections. `keep serve` runs the service; the other
/// commands talk to it.
#[derive(Debug, Parser)]
#[command(name = "keep", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API, keepstore and keep-web in one process.
    #[command(
        after_help = "Examples:\n  keep serve                      # ./keep-data, default ports\n  keep serve --data /srv/keep --config /etc/keep.toml\n  keep serve --only keepstore --config keep.toml"
    )]
    Serve(serve::ServeArgs),
}

fn init_logging() {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_env("KEEP_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if std::env::var("KEEP_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(args) => {
            init_logging();
            serve::run(args).await
        }
    }
}

/// Parses arguments, runs the command, maps errors to `keep: …` on stderr and an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keep: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.code)
        }
    }
}
