//! `pingpipe-monitor`: probes every target on schedule and publishes the results through Kafka
//! transactions. Only its configuration exists so far: the worker itself is issue #3.

use clap::Parser;

/// Pingpipe's monitor: probes every active target on schedule, publishes each result to Kafka.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Config {
    #[command(flatten)]
    database: entity::config::DatabaseArgs,

    #[command(flatten)]
    kafka: entity::config::KafkaArgs,

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
