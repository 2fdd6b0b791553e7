//! Metric names, in one place. Served in Prometheus format at `/metrics`.

/// Probes finished, by `outcome` (an HTTP status class like `2xx`, or a failure class) and
/// `verdict` (`up`, `degraded`, `down`: what the target's check made of it). Both attempts of a
/// re-probed slot count.
pub const MONITOR_PROBES: &str = "pingpipe_monitor_probes_total";
/// Seconds from a slot to its probe's start.
pub const MONITOR_SCHEDULE_LAG: &str = "pingpipe_monitor_schedule_lag_seconds";
/// Probes running now.
pub const MONITOR_IN_FLIGHT: &str = "pingpipe_monitor_probes_in_flight";
/// Slots that got no probe, by `reason` (`queue_full`, `stale`).
pub const MONITOR_MISSED_SLOTS: &str = "pingpipe_monitor_missed_slots_total";
/// Second attempts of re-probed slots (#13), by `recovered` (`true`: the second attempt was not
/// DOWN).
pub const MONITOR_REPROBES: &str = "pingpipe_monitor_reprobes_total";
/// DOWN probes of re-probing targets whose slot got no second attempt (the first was published),
/// by `reason` (`no_time`: the delay and the probe timeout would not end before the next slot;
/// `late`: the re-probe could not start in time; `shutdown`).
pub const MONITOR_REPROBES_SKIPPED: &str = "pingpipe_monitor_reprobes_skipped_total";
/// Active targets of this shard.
pub const MONITOR_TARGETS: &str = "pingpipe_monitor_targets";
/// Kafka transactions, by `result` (`committed`, `aborted`).
pub const MONITOR_TRANSACTIONS: &str = "pingpipe_monitor_transactions_total";
/// Results committed to Kafka.
pub const MONITOR_PUBLISHED: &str = "pingpipe_monitor_results_published_total";
pub const MONITOR_DROPPED: &str = "pingpipe_monitor_results_dropped_total";
pub const MONITOR_PRODUCER_RESTARTS: &str = "pingpipe_monitor_producer_restarts_total";
pub const MONITOR_CLOCK_STEPS: &str = "pingpipe_monitor_clock_steps_total";
/// Seconds from a probe's end to the commit of the transaction carrying it.
pub const MONITOR_PUBLISH_LATENCY: &str = "pingpipe_monitor_publish_latency_seconds";
/// Failed reads of the target list.
pub const MONITOR_TARGET_REFRESH_ERRORS: &str = "pingpipe_monitor_target_refresh_errors_total";
/// Group mode: shards this member owns (probes) now.
pub const MONITOR_SHARDS_OWNED: &str = "pingpipe_monitor_shards_owned";
/// Group mode: rebalance callbacks, by `event` (`assigned`, `revoked`, `lost`: the session
/// expired before the member could hand its shards over).
pub const MONITOR_REBALANCES: &str = "pingpipe_monitor_rebalances_total";
/// Group mode: seconds a shard this member received went without an owner, from its previous
/// owner's release marker to this member's start (graceful hand-overs).
pub const MONITOR_HANDOVER_GAP: &str = "pingpipe_monitor_handover_gap_seconds";
/// Group mode: shards this member received from an owner that never released them (it died,
/// froze or was cut off); their gap is bounded by the session timeout.
pub const MONITOR_TAKEOVERS: &str = "pingpipe_monitor_takeovers_total";
/// Group mode: results of slots this member probed for a shard another member had taken over
/// (it probes those slots too); none of them is committed.
pub const MONITOR_SLOTS_PROBED_TWICE: &str = "pingpipe_monitor_slots_probed_twice_total";
