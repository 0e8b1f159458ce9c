//! The `mgpass` binary: command-line parsing and wiring only.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use mgpass_server::{
    app::{self, App},
    config::Config,
    crypto::keys,
    db,
    identity::service::BootstrapOutcome,
};

/// mgpass: identity, OAuth 2.0 / OpenID Connect, access control and loyalty on one port.
///
/// Configuration comes from the TOML file given with --config (or MGPASS_CONFIG), overridden by
/// MGPASS_* environment variables with `__` between nested keys (MGPASS_SERVER__LISTEN,
/// MGPASS_DATABASE__URL, ...). DATABASE_URL is accepted for the database URL. See
/// docs/configuration.md for every key.
#[derive(Parser)]
#[command(name = "mgpass", version, about, long_about)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, short, global = true, env = "MGPASS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC, grpc-web, REST and HTML on the configured address until SIGTERM.
    Serve {
        /// Apply pending database migrations before serving.
        #[arg(long)]
        migrate: bool,
        /// Also create the super admin when missing (as `mgpass bootstrap` does).
        #[arg(long)]
        bootstrap: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create the first super admin (bootstrap.admin_identifier) unless it exists. Without
    /// bootstrap.admin_password a random password is generated and printed once.
    Bootstrap,
    /// Manage token signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print the version and exit.
    Version,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a new signing key. It is published in the JWKS at once and starts signing after
    /// --lead-secs, so verifiers that cache the JWKS learn it first.
    Rotate {
        /// Seconds between publication and first signature.
        #[arg(long, default_value_t = 300)]
        lead_secs: i64,
    },
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

async fn bootstrap(app: &App) -> anyhow::Result<()> {
    let cfg = &app.config.bootstrap;
    match app.identity.bootstrap_admin(&cfg.admin_identifier, &cfg.admin_password).await? {
        BootstrapOutcome::Created { user_id, generated_password } => {
            tracing::info!(%user_id, identifier = %cfg.admin_identifier, "super admin created");
            if let Some(password) = generated_password {
                // Printed once, on standard output only, never logged.
                println!("super admin: {}", cfg.admin_identifier);
                println!("password:    {password}");
                println!("(shown once; set bootstrap.admin_password to choose it)");
            }
        }
        BootstrapOutcome::AlreadyPresent { user_id } => {
            tracing::info!(%user_id, identifier = %cfg.admin_identifier, "super admin already present");
        }
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Version = cli.command {
        println!("mgpass {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let config = Config::load(cli.config.as_deref())?;
    init_logging(&config.server.log_format);
    match cli.command {
        Command::Version => unreachable!(),
        Command::Migrate => {
            let applied = db::migrate(&config.database.url).await?;
            tracing::info!(count = applied.len(), versions = ?applied, "migrations applied");
        }
        Command::Bootstrap => {
            let app = App::build(config).await?;
            bootstrap(&app).await?;
        }
        Command::Keys { command: KeysCommand::Rotate { lead_secs } } => {
            let pool = db::pool(&config.database.url, 1)?;
            let kid = keys::create_key(&pool, lead_secs).await?;
            tracing::info!(%kid, lead_secs, "signing key created");
            println!("{kid}");
        }
        Command::Serve { migrate, bootstrap: with_bootstrap } => {
            if migrate {
                let applied = db::migrate(&config.database.url).await?;
                tracing::info!(count = applied.len(), "migrations applied");
            }
            let app = App::build(config).await?;
            if with_bootstrap {
                bootstrap(&app).await?;
            }
            app::serve(app).await?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mgpass: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
