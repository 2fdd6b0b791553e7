//! `pingpipe-ingest`: stores every committed result in PostgreSQL exactly once. See `--help`.

use std::process::ExitCode;

use clap::Parser;
use worker_ingest::Config;
use worker_ingest::config::Command;

fn main() -> ExitCode {
    let config = Config::parse();
    plumbing::init_logging(config.log_json);
    plumbing::run("pingpipe-ingest", |shutdown| async move {
        match config.command.clone() {
            Some(Command::ResetPositions { to, partition }) => {
                let done = worker_ingest::reset::reset_positions(&config, to, partition).await?;
                for (partition, old, new) in done {
                    let old = old.map_or("none".to_owned(), |o| o.to_string());
                    println!(
                        "{} partition {partition}: position {old} -> {new}",
                        config.kafka.topic
                    );
                }
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
