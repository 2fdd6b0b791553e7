//! Kafka topic names and defaults, in one place so producers, consumers and scripts agree.

/// The topic carrying one [`crate::ResultEvent`] per probe, keyed by the target id as decimal text.
pub const RESULTS_TOPIC: &str = "pingpipe.results";

/// Partitions of [`RESULTS_TOPIC`] when the project's scripts create it (`PINGPIPE_RESULTS_PARTITIONS`).
pub const DEFAULT_RESULTS_PARTITIONS: i32 = 6;
