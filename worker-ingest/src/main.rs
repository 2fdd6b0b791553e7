//! `pingpipe-ingest`: consumes committed results from Kafka and stores each exactly once in
//! PostgreSQL. Only its configuration exists so far: the worker itself is issue #4.

use clap::Parser;

/// Pingpipe's ingest worker: stores every committed result in PostgreSQL exactly once.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Config {
    #[command(flatten)]
    database: entity::config::DatabaseArgs,

    #[command(flatten)]
    kafka: entity::config::KafkaArgs,

    /// Kafka consumer group id.
    #[arg(long, env = "PINGPIPE_INGEST_GROUP", default_value = "pingpipe-ingest")]
    group_id: String,
}

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    anyhow::bail!(
        "the ingest worker is not built yet (issue #4); its group would be {}",
        config.group_id
    )
}
