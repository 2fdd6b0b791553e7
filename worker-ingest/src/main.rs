//! `pingpipe-ingest`: stores every committed result in PostgreSQL exactly once. See `--help`.

use std::process::ExitCode;

use clap::Parser;
use worker_ingest::Config;
use worker_ingest::config::Command;
use worker_ingest::reset::Which;

fn main() -> ExitCode {
    let config = Config::parse();
    plumbing::init_logging(config.log_json);
    plumbing::run("pingpipe-ingest", |shutdown| async move {
        match config.command.clone() {
            Some(Command::ResetPositions { to, partition, all }) => {
                let which = match (partition, all) {
                    (Some(p), _) => Which::One(p),
                    (None, true) => Which::All,
                    (None, false) => Which::Ahead,
                };
                let done = worker_ingest::reset::reset_positions(&config, to, which).await?;
                for (partition, old, new) in done {
                    let old = old.map_or("none".to_owned(), |o| o.to_string());
                    println!(
                        "{} partition {partition}: position {old} -> {new}",
                        config.kafka.topic
                    );
                }
                Ok(())
            }
            Some(Command::RebuildStates { since, targets }) => {
                let db = plumbing::database::connect_lazy(&config.database, 2).await?;
                let targets = (!targets.is_empty()).then_some(targets.as_slice());
                let rebuilt =
                    states::rebuild(&db, since, targets, config.states.thresholds()).await?;
                println!(
                    "rebuilt {} targets from {} results: {} incidents ({} written, {} removed), \
                     {} states changed",
                    rebuilt.targets,
                    rebuilt.results,
                    rebuilt.incidents,
                    rebuilt.written,
                    rebuilt.removed,
                    rebuilt.changes.len()
                );
                Ok(())
            }
            Some(Command::RebuildRollups { since, until }) => {
                let db = plumbing::database::connect_lazy(&config.database, 2).await?;
                let until = until.unwrap_or_else(chrono::Utc::now);
                let rebuilt = worker_ingest::rollups::rebuild(&db, since, until).await?;
                println!(
                    "rebuilt the rollups of {since} to {until}: {} hourly rollups from {} \
                     results, {} closed days made again",
                    rebuilt.hours, rebuilt.results, rebuilt.days
                );
                Ok(())
            }
            None => {
                let running = worker_ingest::start(config, shutdown).await?;
                running.wait().await?;
                Ok(())
            }
        }
    })
}
