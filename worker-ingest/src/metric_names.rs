//! Metric names, in one place. Served in Prometheus format at `/metrics`.

/// Result rows inserted.
pub const INGEST_ROWS: &str = "pingpipe_ingest_rows_written_total";
/// Records per written batch.
pub const INGEST_BATCH_SIZE: &str = "pingpipe_ingest_batch_size";
/// Seconds one batch's PostgreSQL transaction took.
pub const INGEST_COMMIT_LATENCY: &str = "pingpipe_ingest_commit_seconds";
/// Records behind the partition's end, by `partition`.
pub const INGEST_LAG: &str = "pingpipe_ingest_lag_records";
/// 1 while a partition's stored position is ahead of its log's end (needs an operator).
pub const INGEST_POSITION_AHEAD: &str = "pingpipe_ingest_position_ahead";
/// Records parked in `rejected_records`, by `reason` kind.
pub const INGEST_REJECTS: &str = "pingpipe_ingest_rejected_total";
/// Rows already stored for their (target, slot), skipped.
pub const INGEST_CONFLICTS: &str = "pingpipe_ingest_conflicts_total";
/// Failed batch writes that will be retried.
pub const INGEST_RETRIES: &str = "pingpipe_ingest_write_retries_total";
/// Changes of a target's state, by the state it changed `to`.
pub const STATE_CHANGES: &str = "pingpipe_ingest_state_changes_total";
/// Incidents opened / resolved.
pub const INCIDENTS_OPENED: &str = "pingpipe_ingest_incidents_opened_total";
pub const INCIDENTS_RESOLVED: &str = "pingpipe_ingest_incidents_resolved_total";
/// Incidents decided again that were stored already (should stay 0).
pub const INCIDENTS_REPEATED: &str = "pingpipe_ingest_incidents_repeated_total";
/// Batches whose state decisions PostgreSQL refused (their results are stored; rebuild).
pub const DECISIONS_FAILED: &str = "pingpipe_ingest_state_decisions_failed_total";
/// Notifications written to the outbox.
pub const NOTIFICATIONS_QUEUED: &str = "pingpipe_ingest_notifications_queued_total";

/// Partitions of monitor_results made (ahead of time or for a slot none covered).
pub const PARTITIONS_CREATED: &str = "pingpipe_ingest_partitions_created_total";
/// Expired partitions of monitor_results dropped by retention.
pub const PARTITIONS_DROPPED: &str = "pingpipe_ingest_partitions_dropped_total";
/// Hours closed (their hourly rollups made from the stored rows).
pub const HOURS_CLOSED: &str = "pingpipe_ingest_rollup_hours_closed_total";
/// Days closed (their daily rollups made from the hourly ones).
pub const DAYS_CLOSED: &str = "pingpipe_ingest_rollup_days_closed_total";
/// Rows removed by retention, by `table` (rejected_records, notification_deliveries).
pub const ROWS_EXPIRED: &str = "pingpipe_ingest_rows_expired_total";
/// Maintenance rounds that failed (retried at the next round), and the time of the last one
/// that succeeded.
pub const MAINTENANCE_FAILURES: &str = "pingpipe_ingest_maintenance_failures_total";
pub const MAINTENANCE_LAST_SUCCESS: &str =
    "pingpipe_ingest_maintenance_last_success_timestamp_seconds";

pub fn describe() {
    metrics::describe_counter!(PARTITIONS_CREATED, "Partitions of monitor_results made.");
    metrics::describe_counter!(
        PARTITIONS_DROPPED,
        "Expired partitions of monitor_results dropped."
    );
    metrics::describe_counter!(HOURS_CLOSED, "Hours whose hourly rollups were made.");
    metrics::describe_counter!(DAYS_CLOSED, "Days whose daily rollups were made.");
    metrics::describe_counter!(ROWS_EXPIRED, "Rows removed by retention, by table.");
    metrics::describe_counter!(MAINTENANCE_FAILURES, "Maintenance rounds that failed.");
    metrics::describe_gauge!(
        MAINTENANCE_LAST_SUCCESS,
        "Unix time of the last maintenance round that succeeded."
    );
    metrics::describe_counter!(STATE_CHANGES, "Changes of a target's state.");
    metrics::describe_counter!(INCIDENTS_OPENED, "Incidents opened.");
    metrics::describe_counter!(INCIDENTS_RESOLVED, "Incidents resolved.");
    metrics::describe_counter!(
        INCIDENTS_REPEATED,
        "Incidents decided again that were stored already (should stay 0)."
    );
    metrics::describe_counter!(
        DECISIONS_FAILED,
        "Batches whose state decisions PostgreSQL refused (results stored; run rebuild-states)."
    );
    metrics::describe_counter!(
        NOTIFICATIONS_QUEUED,
        "Notifications written to the outbox (one per state change and channel that hears it)."
    );
    metrics::describe_counter!(INGEST_ROWS, "Result rows inserted.");
    metrics::describe_histogram!(INGEST_BATCH_SIZE, "Records per written batch.");
    metrics::describe_histogram!(
        INGEST_COMMIT_LATENCY,
        metrics::Unit::Seconds,
        "Duration of one batch's PostgreSQL transaction."
    );
    metrics::describe_gauge!(INGEST_LAG, "Records behind the partition's end.");
    metrics::describe_gauge!(
        INGEST_POSITION_AHEAD,
        "1 while the partition's stored position is ahead of its log's end (reset needed)."
    );
    metrics::describe_counter!(INGEST_REJECTS, "Records parked in rejected_records.");
    metrics::describe_counter!(INGEST_CONFLICTS, "Rows already stored for their slot.");
    metrics::describe_counter!(INGEST_RETRIES, "Failed batch writes, retried.");
}
