//! `migration`: applies, reverts and lists Pingpipe's database migrations.

use anyhow::Context;
use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::Database;

/// Applies, reverts and lists Pingpipe's database migrations.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// PostgreSQL connection URL, e.g. postgres://user:password@127.0.0.1:5432/pingpipe.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply pending migrations (all of them unless --steps is given).
    Up {
        /// Apply at most this many.
        #[arg(long)]
        steps: Option<u32>,
    },
    /// Revert applied migrations, newest first.
    Down {
        /// How many to revert.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List every migration and whether it is applied.
    Status,
    /// Revert every applied migration.
    Reset,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr, plain when not on a terminal; `RUST_LOG` picks the level.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    plumbing::database::readable_files(&cli.database_url)?;
    let db = Database::connect(&cli.database_url)
        .await
        .context("connecting to PostgreSQL (DATABASE_URL)")?;
    match cli.command {
        Command::Up { steps } => {
            let pending = Migrator::get_pending_migrations(&db).await?.len();
            Migrator::up(&db, steps)
                .await
                .context("applying migrations")?;
            let still = Migrator::get_pending_migrations(&db).await?.len();
            let total = Migrator::migrations().len();
            println!(
                "applied {} migration(s); {} of {total} applied, {still} pending",
                pending - still,
                total - still
            );
        }
        Command::Down { steps } => Migrator::down(&db, Some(steps))
            .await
            .context("reverting migrations")?,
        Command::Reset => Migrator::reset(&db).await.context("reverting migrations")?,
        Command::Status => {
            let applied = Migrator::get_applied_migrations(&db).await?;
            for m in Migrator::migrations() {
                let state = if applied.iter().any(|a| a.name() == m.name()) {
                    "applied"
                } else {
                    "pending"
                };
                println!("{state:8} {}", m.name());
            }
        }
    }
    Ok(())
}
