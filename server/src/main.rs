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
    /// The loyalty points ledger.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Print the version and exit.
    Version,
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Check every invariant of the points ledger: each transaction's entries sum to zero, each
    /// balance equals the sum of its entries and is not negative, lots add up to balances, every
    /// award names its event and rule version. Prints each breach and exits non-zero on any.
    Verify,
    /// Expire now every lot past its expiry date (what the server's expiry job does every
    /// loyalty.expiry_interval_secs). Prints the lots and points expired.
    Expire,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List the signing keys and their state, newest first.
    ///
    /// Columns: kid, algorithm, created, activates (starts signing), retired, state. States:
    /// pending (published in the JWKS, not signing yet), active (signs new tokens), published
    /// (stopped signing; verifies its tokens until they expire), retired (out of the JWKS,
    /// private half erased).
    List,
    /// Create a new signing key now, whatever the schedule.
    ///
    /// Servers also rotate on their own every tokens.key_rotation_period_days. The new key is
    /// published in the JWKS at once and signs after --lead-secs, so verifiers that cache the
    /// JWKS learn it first; the previous key stays published until its last token has expired.
    /// Refuses to run when the stored keys do not open with the configured master key. Prints
    /// the new kid.
    Rotate {
        /// Seconds between publication and first signature [default: tokens.key_publish_lead_secs].
        /// 0 signs at once (e.g. to replace a compromised key); servers that have not reloaded
        /// the keys yet look a token's unknown key up on first sight.
        #[arg(long, value_parser = clap::value_parser!(u32))]
        lead_secs: Option<u32>,
    },
    /// Print a new random master key (base64 of 32 bytes) for secrets.master_key. Needs no
    /// configuration and touches no database.
    GenerateMaster,
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
    match cli.command {
        Command::Version => {
            println!("mgpass {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        Command::Keys { command: KeysCommand::GenerateMaster } => {
            println!("{}", mgpass_server::crypto::sealed::MasterKey::generate_base64());
            return Ok(());
        }
        _ => {}
    }
    let config = Config::load(cli.config.as_deref())?;
    init_logging(&config.server.log_format);
    match cli.command {
        Command::Version | Command::Keys { command: KeysCommand::GenerateMaster } => unreachable!(),
        Command::Migrate => {
            let applied = db::migrate(&config.database.url).await?;
            tracing::info!(count = applied.len(), versions = ?applied, "migrations applied");
        }
        Command::Bootstrap => {
            let app = App::build(config).await?;
            bootstrap(&app).await?;
        }
        Command::Keys { command: KeysCommand::Rotate { lead_secs } } => {
            let lead_secs = lead_secs.unwrap_or(config.tokens.key_publish_lead_secs);
            let pool = db::pool(&config.database.url, 1)?;
            let algorithm = mgpass_server::crypto::jwt::Alg::parse(&config.tokens.algorithm).expect("validated at load");
            let kid = keys::rotate(&pool, &config.master_key(), algorithm, i64::from(lead_secs)).await?;
            tracing::info!(%kid, lead_secs, "signing key created");
            println!("{kid}");
        }
        Command::Keys { command: KeysCommand::List } => {
            let pool = db::pool(&config.database.url, 1)?;
            let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
            let listed = keys::list(&pool).await?;
            println!("{:<18} {:<6} {:<20} {:<20} {:<20} STATE", "KID", "ALG", "CREATED", "ACTIVATES", "RETIRED");
            for k in listed {
                let retired = k.retired_at.map(time).unwrap_or_else(|| "-".into());
                println!(
                    "{:<18} {:<6} {:<20} {:<20} {:<20} {}",
                    k.kid, k.algorithm, time(k.created_at), time(k.activates_at), retired, k.state
                );
            }
        }
        Command::Ledger { command: LedgerCommand::Verify } => {
            let pool = db::pool(&config.database.url, 1)?;
            let mut conn = pool.get().await?;
            let breaches = mgpass_server::loyalty::ledger::verify::verify(&mut conn).await?;
            if breaches.is_empty() {
                println!("ledger verified: no breach");
            } else {
                for b in &breaches {
                    println!("BREACH [{}] {}", b.invariant, b.detail);
                }
                anyhow::bail!("{} ledger invariant breach(es)", breaches.len());
            }
        }
        Command::Ledger { command: LedgerCommand::Expire } => {
            let pool = db::pool(&config.database.url, 1)?;
            let run = mgpass_server::loyalty::ledger::expiry::run_once(&pool).await?;
            println!("expired {} lot(s), {} point(s)", run.lots, run.points);
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

/// Two glibc arenas are plenty for a tokio server and bound how much freed memory the allocator
/// can hold on to (see `crypto::password::spawn_memory_trimmer` for the rest).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> std::process::ExitCode {
    tune_allocator();
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime").block_on(async_main())
}

async fn async_main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mgpass: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
