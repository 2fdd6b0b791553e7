//! `pingpipe-ingest`: consumes committed results from Kafka and stores each exactly once in
//! PostgreSQL. Only its configuration exists so far: the worker itself is issue #4.

use clap::Parser;

/// Pingpipe's ingest worker: stores every committed result in PostgreSQL exactly once.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Config {
    /// PostgreSQL connection URL (results and consumer positions are written to it).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,

    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    kafka_bootstrap_servers: String,

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
