//! The ingest worker's configuration: one `clap` struct, every option also an environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use entity::config::{DatabaseArgs, KafkaArgs, StateArgs};

/// Pingpipe's ingest worker: reads committed results from Kafka (read_committed) and stores each
/// exactly once in PostgreSQL, together with the consumer's position.
#[derive(Debug, Clone, Parser)]
#[command(version, about, long_about = None)]
pub struct Config {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub states: StateArgs,

    /// Length of a "minute" of the targets' frequencies, as the monitor is told (shorter in
    /// tests): a target's period is its frequency times this.
    #[arg(long, env = "PINGPIPE_MINUTE", default_value = "60s")]
    pub minute: humantime::Duration,

    /// A target without a result for two of its periods plus this is UNKNOWN (the margin covers
    /// probes in flight and batches on their way). Only partitions this worker has caught up
    /// with are watched.
    #[arg(long, env = "PINGPIPE_UNKNOWN_GRACE", default_value = "30s")]
    pub unknown_grace: humantime::Duration,

    /// Kafka consumer group; instances of one group split the partitions.
    #[arg(long, env = "PINGPIPE_INGEST_GROUP", default_value = "pingpipe-ingest")]
    pub group: String,

    /// Stable name of this instance (Kafka static membership, `group.instance.id`): a restarted
    /// instance takes its partitions back at once instead of after the session timeout.
    #[arg(long, env = "PINGPIPE_INGEST_INSTANCE")]
    pub instance: Option<String>,

    /// Most records written in one PostgreSQL transaction.
    #[arg(long, env = "PINGPIPE_INGEST_BATCH_MAX", default_value_t = 5000)]
    pub batch_max: usize,

    /// Longest a record waits for its batch to be written.
    #[arg(long, env = "PINGPIPE_INGEST_BATCH_WAIT", default_value = "200ms")]
    pub batch_wait: humantime::Duration,

    /// Batches written at once, each by its own PostgreSQL connection (each writer owns the
    /// partitions whose number modulo this is its index, so a partition's batches stay in order).
    #[arg(long, env = "PINGPIPE_INGEST_WRITERS", default_value_t = 2)]
    pub writers: usize,

    /// Kafka session timeout: how long a silent instance keeps its partitions.
    #[arg(long, env = "PINGPIPE_INGEST_SESSION_TIMEOUT", default_value = "10s")]
    pub session_timeout: humantime::Duration,

    /// Length of the time partitions of `monitor_results` made from now on (1h to 366d; by
    /// `scheduled_at`, aligned to UTC midnight). Existing partitions keep their length.
    #[arg(long, env = "PINGPIPE_PARTITION_INTERVAL", default_value = "1d", value_parser = partition_interval)]
    pub partition_interval: humantime::Duration,

    /// How far ahead of now partitions are made (on top of those made on demand).
    #[arg(long, env = "PINGPIPE_PARTITIONS_AHEAD", default_value = "2d")]
    pub partitions_ahead: humantime::Duration,

    /// Raw results older than this are removed, a whole partition at a time (a partition goes
    /// once its last slot is this old). `0s` keeps them forever. Rollups are kept forever.
    #[arg(long, env = "PINGPIPE_RESULTS_RETENTION", default_value = "30d")]
    pub results_retention: humantime::Duration,

    /// Parked records (`rejected_records`) older than this are removed. `0s` keeps them.
    #[arg(long, env = "PINGPIPE_REJECTED_RETENTION", default_value = "90d")]
    pub rejected_retention: humantime::Duration,

    /// Finished notification deliveries (with their attempts and notifications) older than
    /// this are removed. `0s` keeps them.
    #[arg(long, env = "PINGPIPE_DELIVERY_RETENTION", default_value = "90d")]
    pub delivery_retention: humantime::Duration,

    /// How often maintenance runs: partitions made ahead, expired ones dropped, ended days'
    /// rollups closed, old parked records and delivery logs removed.
    #[arg(long, env = "PINGPIPE_MAINTENANCE_EVERY", default_value = "5m")]
    pub maintenance_every: humantime::Duration,

    /// Address for /healthz, /readyz and /metrics (port 0 picks a free port).
    #[arg(long, env = "PINGPIPE_INGEST_ADDR", default_value = "127.0.0.1:9102")]
    pub listen: SocketAddr,

    /// Log as JSON lines instead of readable text.
    #[arg(long, env = "PINGPIPE_LOG_JSON", default_value_t = false)]
    pub log_json: bool,

    /// Benchmark hook: store results without deciding states (to measure what deciding costs).
    #[arg(long, hide = true)]
    pub no_states: bool,

    /// Benchmark hook: store results without rollups (to measure what they cost).
    #[arg(long, hide = true)]
    pub no_rollups: bool,

    /// Test hook: the first writer panics after storing this many batches.
    #[arg(long, hide = true)]
    pub panic_writer_after: Option<u64>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Operator commands; without one the worker runs.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Sets stored positions of this group on the topic to the log's start or end, e.g. after
    /// the topic was recreated or the broker lost data (the worker then reports "ahead of the
    /// log's end" and is not ready). By default only the partitions that are ahead. Running
    /// workers pick the new positions up.
    ResetPositions {
        /// Where to: `earliest` re-reads what the log still holds (a result stored already is
        /// skipped as a repeat), `latest` skips to its end.
        #[arg(long, value_enum, default_value = "earliest")]
        to: ResetTo,
        /// Only this partition (default: the partitions whose stored position is ahead of
        /// their log's end).
        #[arg(long, conflicts_with = "all")]
        partition: Option<i32>,
        /// Every partition of the topic, ahead or not.
        #[arg(long)]
        all: bool,
    },
    /// Recomputes target states and incidents from the stored results, with the thresholds as
    /// they are now (e.g. after changing them): what the worker would have decided had they been
    /// so all along. Incidents of the period are replaced; safe while the worker runs.
    RebuildStates {
        /// Start of the period (RFC 3339, e.g. 2026-11-01T00:00:00Z): incidents opened from
        /// then on are recomputed, one still open then is resolved again from the results. By
        /// default every stored result.
        #[arg(long)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Only these targets (repeatable; default all).
        #[arg(long = "target")]
        targets: Vec<i32>,
    },
    /// Recomputes the hourly and daily rollups of a period from the raw results (widened to
    /// whole hours), e.g. after results were edited by hand. Refused for a period whose raw
    /// results retention has dropped. Safe while the worker runs.
    RebuildRollups {
        /// Start of the period (RFC 3339).
        #[arg(long)]
        since: chrono::DateTime<chrono::Utc>,
        /// End of the period (RFC 3339; default now).
        #[arg(long)]
        until: Option<chrono::DateTime<chrono::Utc>>,
    },
}

fn partition_interval(text: &str) -> Result<humantime::Duration, String> {
    let d: humantime::Duration = text.parse().map_err(|e| format!("{e}"))?;
    let secs = Duration::from(d).as_secs();
    if !(3600..=366 * 86_400).contains(&secs) || secs % 3600 != 0 {
        return Err(format!(
            "a partition covers whole hours, 1h to 366d, not {text}"
        ));
    }
    Ok(d)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResetTo {
    Earliest,
    Latest,
}

impl Config {
    pub fn batch_wait(&self) -> Duration {
        self.batch_wait.into()
    }

    /// How often the partitions this worker owns are watched for targets without results: half
    /// a minute, between 250 ms and 30 s (UNKNOWN waits two periods and the grace anyway; each
    /// watch looks up every watched target's latest result).
    pub fn sweep_every(&self) -> Duration {
        (Duration::from(self.minute) / 2).clamp(Duration::from_millis(250), Duration::from_secs(30))
    }

    pub fn maintenance_policy(&self) -> crate::maintenance::Policy {
        let kept = |d: humantime::Duration| Some(Duration::from(d)).filter(|d| !d.is_zero());
        crate::maintenance::Policy {
            ahead: self.partitions_ahead.into(),
            results: kept(self.results_retention),
            rejected: kept(self.rejected_retention),
            deliveries: kept(self.delivery_retention),
            every: Duration::from(self.maintenance_every).max(Duration::from_millis(100)),
        }
    }

    pub fn state_policy(&self) -> crate::store::StatePolicy {
        crate::store::StatePolicy {
            enabled: !self.no_states,
            defaults: self.states.thresholds(),
            silence: states::Silence {
                minute: self.minute.into(),
                grace: self.unknown_grace.into(),
            },
        }
    }
}
