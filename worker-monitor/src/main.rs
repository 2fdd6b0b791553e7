//! `pingpipe-monitor`: probes every target on schedule and publishes the results through Kafka
//! transactions. Only its configuration exists so far: the worker itself is issue #3.

use clap::Parser;

/// Pingpipe's monitor: probes every active target on schedule, publishes each result to Kafka.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Config {
    /// PostgreSQL connection URL (targets are read from it).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,

    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    kafka_bootstrap_servers: String,

    /// Length of a "minute" (humantime, e.g. 60s, 1s): scales every schedule for tests and demos.
    #[arg(long, env = "PINGPIPE_MINUTE", default_value = "60s")]
    minute: humantime::Duration,
}

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    anyhow::bail!(
        "the monitor is not built yet (issue #3); its minute would be {:?}",
        *config.minute
    )
}
