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

/// The thresholds of targets that have none of their own (#13).
#[derive(Debug, Clone, Copy, Args)]
pub struct StateArgs {
    /// Consecutive failing results before a target is DOWN (an incident opens), or consecutive
    /// results that are not up before it is DEGRADED; 1 to 100.
    #[arg(
        long,
        env = "PINGPIPE_FAILURES_BEFORE_DOWN",
        default_value_t = 3,
        value_parser = clap::value_parser!(u32).range(1..=100)
    )]
    pub failures_before_down: u32,

    /// Consecutive passing results before a DOWN or DEGRADED target is UP again; 1 to 100.
    #[arg(
        long,
        env = "PINGPIPE_SUCCESSES_BEFORE_UP",
        default_value_t = 2,
        value_parser = clap::value_parser!(u32).range(1..=100)
    )]
    pub successes_before_up: u32,
}

impl StateArgs {
    pub fn thresholds(&self) -> crate::state::Thresholds {
        crate::state::Thresholds {
            failures_before_down: self.failures_before_down,
            successes_before_up: self.successes_before_up,
        }
    }
}
