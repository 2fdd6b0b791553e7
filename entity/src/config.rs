//! Configuration groups that several binaries share, flattened into each binary's own `clap`
//! struct so the same option has the same name, variable and help everywhere.

use clap::Args;

/// Where PostgreSQL is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection URL, e.g. postgres://user:password@127.0.0.1:5432/pingpipe.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

/// Where Kafka is, and the topic the results travel on.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub kafka_bootstrap_servers: String,

    /// Topic of the probe results (the monitor publishes to it, the ingest worker reads it).
    #[arg(long, env = "PINGPIPE_RESULTS_TOPIC", default_value = crate::topics::RESULTS_TOPIC)]
    pub topic: String,
}
