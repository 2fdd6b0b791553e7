//! The monitor's metric descriptions; logs, the recorder and the endpoint are
//! `plumbing`'s, shared by every binary.

use crate::metric_names as m;

/// Registers the help text of every monitor metric.
pub fn describe_metrics() {
    metrics::describe_counter!(
        m::MONITOR_PROBES,
        "Probes finished, by outcome (status class or failure class) and verdict (up, degraded, down)."
    );
    metrics::describe_histogram!(
        m::MONITOR_SCHEDULE_LAG,
        metrics::Unit::Seconds,
        "From a slot to its probe's start."
    );
    metrics::describe_gauge!(m::MONITOR_IN_FLIGHT, "Probes running now.");
    metrics::describe_counter!(
        m::MONITOR_MISSED_SLOTS,
        "Slots that got no probe, by reason."
    );
    metrics::describe_counter!(
        m::MONITOR_REPROBES,
        "Second attempts of re-probed slots, by recovered (true: the second attempt was not down)."
    );
    metrics::describe_counter!(
        m::MONITOR_REPROBES_SKIPPED,
        "Down probes of re-probing targets published without a second attempt, by reason (no_time, late, shutdown)."
    );
    metrics::describe_gauge!(m::MONITOR_TARGETS, "Active targets of this shard.");
    metrics::describe_counter!(m::MONITOR_TRANSACTIONS, "Kafka transactions, by result.");
    metrics::describe_counter!(m::MONITOR_PUBLISHED, "Results committed to Kafka.");
    metrics::describe_counter!(
        m::MONITOR_DROPPED,
        "Results never published, by reason (refused: the producer refused the record; shutdown: Kafka had not taken it when the shutdown deadline passed; fenced: the producer was fenced with them uncommitted; shard_lost: their shard had been taken from this member; handover: their shard was handed over before they were ready; unstarted: the shard's producer never started)."
    );
    metrics::describe_counter!(
        m::MONITOR_PRODUCER_RESTARTS,
        "Producers recreated after a broker outage outlived the transaction timeout."
    );
    metrics::describe_counter!(
        m::MONITOR_CLOCK_STEPS,
        "Wall-clock steps the scheduler noticed, by direction."
    );
    metrics::describe_histogram!(
        m::MONITOR_PUBLISH_LATENCY,
        metrics::Unit::Seconds,
        "From a probe's end to the commit of its transaction."
    );
    metrics::describe_counter!(
        m::MONITOR_TARGET_REFRESH_ERRORS,
        "Failed reads of the target list."
    );
    metrics::describe_gauge!(
        m::MONITOR_SHARDS_OWNED,
        "Group mode: shards this member owns now."
    );
    metrics::describe_counter!(
        m::MONITOR_REBALANCES,
        "Group mode: rebalance callbacks, by event (assigned, revoked, lost)."
    );
    metrics::describe_histogram!(
        m::MONITOR_HANDOVER_GAP,
        metrics::Unit::Seconds,
        "Group mode: from the previous owner's release of a shard to this member's start."
    );
    metrics::describe_counter!(
        m::MONITOR_TAKEOVERS,
        "Group mode: shards received from an owner that never released them."
    );
    metrics::describe_counter!(
        m::MONITOR_SLOTS_PROBED_TWICE,
        "Group mode: results of slots probed for a shard another member had taken over (never committed)."
    );
}
