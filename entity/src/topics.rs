//! Kafka topic names and defaults, in one place so producers, consumers and scripts agree.

/// The topic carrying one [`crate::ResultEvent`] per probe, keyed by the target id as decimal text.
pub const RESULTS_TOPIC: &str = "pingpipe.results";

/// Partitions of [`RESULTS_TOPIC`] when the project's scripts create it (`PINGPIPE_RESULTS_PARTITIONS`).
pub const DEFAULT_RESULTS_PARTITIONS: i32 = 6;

/// The monitors' membership topic (group mode): partition p stands for shard p; it carries only
/// hand-over markers (`PINGPIPE_MONITOR_SHARDS_TOPIC`).
pub const MONITOR_SHARDS_TOPIC: &str = "pingpipe.monitor-shards";

/// Partitions of [`MONITOR_SHARDS_TOPIC`]: the number of shards (`PINGPIPE_MONITOR_SHARDS`).
pub const DEFAULT_MONITOR_SHARDS: i32 = 64;
