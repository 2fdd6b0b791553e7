//! The monitor: probes every active target of its shard on schedule and publishes each result
//! to Kafka inside transactions.
//!
//! ```text
//! targets (PostgreSQL, re-read every 2 s) → scheduler → bounded job queue → probe workers
//!                                                                  → results → transactional publisher → Kafka
//! ```
//!
//! Guarantees: every slot of every active target yields exactly one result or is counted as
//! missed; a result reaches Kafka in a committed transaction or not at all; a second instance
//! with the same instance name and shard fences this one, which then stops with an error.

pub mod config;
pub mod guard;
pub mod http;
pub mod metric_names;
pub mod probe;
pub mod publisher;
pub mod scheduler;
pub mod targets;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use entity::ResultEvent;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;
use guard::DenyList;
use http::Readiness;
use metric_names as m;
use probe::{ProbeSettings, Prober};
use publisher::{Pending, PublishError, Publisher, PublisherSettings};
use scheduler::{Job, TargetSet};

/// Why the monitor could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("cannot serve health and metrics on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid database configuration: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("the monitor task panicked")]
    Panicked,
}

/// A started monitor.
pub struct Running {
    /// Where /healthz, /readyz and /metrics are served.
    pub http_addr: SocketAddr,
    /// The producer's transactional.id.
    pub transactional_id: String,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), MonitorError>>,
}

impl Running {
    /// Asks the monitor to stop: no new slots, in-flight probes finish, the last batch commits.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the monitor has stopped, by request or by a fatal error.
    pub async fn wait(self) -> Result<(), MonitorError> {
        self.task.await.map_err(|_| MonitorError::Panicked)?
    }
}

/// Starts the monitor: serves health and metrics, initialises the producer (waiting for the
/// broker if need be), then schedules and probes until `shutdown` is cancelled.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, MonitorError> {
    let readiness = Arc::new(Readiness::default());
    let _recorder = entity::service::metrics_handle();
    telemetry::describe_metrics();
    let ready = readiness.clone();
    let (http_addr, _server) = entity::service::serve_ops(
        config.listen,
        Arc::new(move || ready.is_ready()),
        shutdown.clone(),
    )
    .await
    .map_err(|source| MonitorError::Listen {
        addr: config.listen,
        source,
    })?;

    let db = config.database.connect_lazy(2).await?;

    let prober = Prober::new(ProbeSettings {
        timeout: config.probe_timeout(),
        max_redirects: config.max_redirects,
        body_cap_bytes: config.body_cap_bytes,
        deny: Arc::new(DenyList::new(&config.deny, config.deny_private)),
    })?;

    let transactional_id = config.transactional_id();
    let settings = PublisherSettings {
        bootstrap_servers: config.kafka.kafka_bootstrap_servers.clone(),
        topic: config.kafka.topic.clone(),
        transactional_id: transactional_id.clone(),
        commit_interval: config.commit_interval.into(),
        max_batch: 10_000,
    };
    tracing::info!(
        transactional_id,
        shard = ?config.shard,
        minute = ?config.minute(),
        probe_timeout = ?config.probe_timeout(),
        concurrency = config.concurrency,
        %http_addr,
        "Starting the monitor."
    );

    let task_shutdown = shutdown.clone();
    let task = tokio::spawn(async move {
        let publisher = Publisher::connect(settings, &task_shutdown).await;
        let publisher = match publisher {
            Ok(p) => p,
            Err(PublishError::Cancelled) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        readiness.producer_ready.store(true, Ordering::Relaxed);
        run_pipeline(config, db, prober, publisher, readiness, task_shutdown).await
    });
    Ok(Running {
        http_addr,
        transactional_id,
        shutdown,
        task,
    })
}

async fn run_pipeline(
    config: Config,
    db: sea_orm::DatabaseConnection,
    prober: Prober,
    publisher: Publisher,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
) -> Result<(), MonitorError> {
    // Scheduling stops on shutdown, or when publishing fails for good.
    let stop = shutdown.child_token();
    let (targets_tx, targets_rx) = watch::channel(TargetSet::default());
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>(config.concurrency.max(1));
    let (results_tx, results_rx) = mpsc::channel::<Pending>(config.concurrency.max(1) * 2);

    let tracker = TaskTracker::new();
    tracker.spawn(targets::refresh(
        db,
        config.shard,
        config.targets_refresh.into(),
        targets_tx,
        readiness,
        stop.clone(),
    ));
    tracker.spawn(scheduler::run(
        config.minute(),
        targets_rx,
        jobs_tx,
        stop.clone(),
    ));
    let jobs_rx = Arc::new(Mutex::new(jobs_rx));
    for _ in 0..config.concurrency.max(1) {
        tracker.spawn(probe_worker(
            jobs_rx.clone(),
            prober.clone(),
            results_tx.clone(),
            stop.clone(),
        ));
    }
    drop(results_tx);
    tracker.close();

    // The publisher ends when every worker has dropped its sender (after shutdown), or on a
    // fatal error, which then stops everything else.
    let published = publisher.run(results_rx).await;
    stop.cancel();
    tracker.wait().await;
    match published {
        Ok(()) => {
            tracing::info!("Monitor stopped; every finished probe was committed.");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Takes due jobs from the shared queue and probes them, one at a time, until stopped.
async fn probe_worker(
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    prober: Prober,
    results: mpsc::Sender<Pending>,
    stop: CancellationToken,
) {
    loop {
        let job = {
            let mut queue = jobs.lock().await;
            tokio::select! {
                () = stop.cancelled() => None,
                job = queue.recv() => job,
            }
        };
        let Some(job) = job else { return };
        let lag_ms = chrono::Utc::now().timestamp_millis() - job.slot_ms;
        if lag_ms > job.period_ms {
            metrics::counter!(m::MONITOR_MISSED_SLOTS, "reason" => "stale").increment(1);
            continue;
        }
        metrics::histogram!(m::MONITOR_SCHEDULE_LAG).record(lag_ms.max(0) as f64 / 1000.0);
        let in_flight = metrics::gauge!(m::MONITOR_IN_FLIGHT);
        in_flight.increment(1.0);
        let result = prober.probe(&job.target.url).await;
        in_flight.decrement(1.0);
        metrics::counter!(m::MONITOR_PROBES, "outcome" => outcome_label(result.outcome))
            .increment(1);
        let event = ResultEvent::new(
            job.target.id,
            job.target.url.as_ref(),
            job.target.frequency,
            job.scheduled_at(),
            result.start_time,
            result.duration_ms,
            result.outcome,
        );
        if results.send(Pending::new(&event)).await.is_err() {
            return;
        }
    }
}

fn outcome_label(outcome: entity::Outcome) -> &'static str {
    match outcome {
        entity::Outcome::Status(s) if s < 200 => "1xx",
        entity::Outcome::Status(s) if s < 300 => "2xx",
        entity::Outcome::Status(s) if s < 400 => "3xx",
        entity::Outcome::Status(s) if s < 500 => "4xx",
        entity::Outcome::Status(_) => "5xx",
        entity::Outcome::Failure(class) => class.as_str(),
    }
}
