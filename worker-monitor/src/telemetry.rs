//! Logs and metrics: `tracing` to stderr (readable, or JSON lines when asked) filtered by
//! `RUST_LOG`, and one process-wide Prometheus recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::metric_names as m;

/// Installs the log subscriber; later calls (tests) are ignored.
pub fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _already_set = if json {
        builder.json().try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

/// The process's metrics recorder, installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let latency_buckets = [
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets(&latency_buckets)
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first, which this crate never does.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(m::MONITOR_PROBES, "Probes finished, by outcome.");
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
    metrics::describe_gauge!(m::MONITOR_TARGETS, "Active targets of this shard.");
    metrics::describe_counter!(m::MONITOR_TRANSACTIONS, "Kafka transactions, by result.");
    metrics::describe_counter!(m::MONITOR_PUBLISHED, "Results committed to Kafka.");
    metrics::describe_histogram!(
        m::MONITOR_PUBLISH_LATENCY,
        metrics::Unit::Seconds,
        "From a probe's end to the commit of its transaction."
    );
    metrics::describe_counter!(
        m::MONITOR_TARGET_REFRESH_ERRORS,
        "Failed reads of the target list."
    );
}
