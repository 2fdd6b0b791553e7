//! The ingest worker: reads committed results from Kafka and stores each exactly once in
//! PostgreSQL, with the consumer's position in the same transaction.
//!
//! ```text
//! Kafka (read_committed) → consumer thread → batch → one PostgreSQL transaction:
//!     rows (unnest, ON CONFLICT DO NOTHING) + rejects + guarded positions + pg_notify
//! ```
//!
//! Every task (the consumer loop, each writer, the health and metrics server) runs under one
//! supervisor: when one fails, panics or ends unasked, the others are stopped and the process
//! exits non-zero, saying which task and why.

pub mod config;
pub mod consumer;
pub mod maintenance;
pub mod metric_names;
pub mod partitions;
pub mod reset;
pub mod rollups;
pub mod store;
pub mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use entity::kafka::{ClientSettings, check_access_async};
use plumbing::{OpsServer, Supervisor};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::Config;
use consumer::{ConsumeError, Loop, Progress};
use store::Store;
use writer::Writer;

/// Full batches waiting for each writer. Pausing partitions is costly (librdkafka drops what it
/// prefetched for them and fetches it again on resume): with one waiting batch the loop paused so
/// often that a 1M-record backlog drained at 37k rows/s; with four, at 80k. Memory stays bounded:
/// at most this many batches of `batch_max` records per writer.
const QUEUED_BATCHES: usize = 4;

/// How long the tasks have to finish once stopping: the last batches get one attempt each.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Consume(#[from] ConsumeError),
    #[error("cannot serve health and metrics on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Database(#[from] sea_orm::DbErr),
    #[error(transparent)]
    KafkaConfig(#[from] entity::config::KafkaConfigError),
    #[error(transparent)]
    Stopped(#[from] plumbing::Stopped),
}

/// A started ingest worker.
pub struct Running {
    pub http_addr: SocketAddr,
    pub progress: Arc<Progress>,
    shutdown: CancellationToken,
    supervisor: Option<Supervisor>,
}

impl Running {
    /// Asks the worker to stop: the batch in hand gets one attempt, then the consumer leaves.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Rows inserted so far by this instance.
    pub fn rows_written(&self) -> u64 {
        self.progress.rows_written.load(Ordering::Relaxed)
    }

    /// Waits until the worker has stopped: `Ok` when asked to, otherwise which task failed.
    pub async fn wait(mut self) -> Result<(), IngestError> {
        match self.supervisor.take() {
            Some(supervisor) => Ok(supervisor.wait().await?),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    /// The consumer loop runs on the blocking pool, which a runtime waits for when it shuts down:
    /// a `Running` dropped without `shutdown()` (a failing test, say) still stops it.
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, IngestError> {
    let kafka = ClientSettings::new(&config.kafka)?;
    let _recorder = plumbing::metrics_handle();
    metric_names::describe();
    let progress = Arc::new(Progress::default());
    let mut supervisor = Supervisor::new(shutdown.clone(), SHUTDOWN_GRACE);
    let ready = progress.clone();
    let listen_error = |source| IngestError::Listen {
        addr: config.listen,
        source,
    };
    let ops = OpsServer::bind(config.listen, Arc::new(move || ready.is_ready()))
        .await
        .map_err(listen_error)?;
    let http_addr = ops.local_addr().map_err(listen_error)?;
    supervisor.spawn("health and metrics server", ops.serve(shutdown.clone()));

    // One connection per writer, one for position lookups, one for maintenance, one spare.
    let writers = config.writers.max(1);
    let db = plumbing::database::connect_lazy(&config.database, writers as u32 + 3).await?;
    if db.ping().await.is_ok() {
        progress.database_ok.store(true, Ordering::Relaxed);
    }
    let consumer = consumer::create_consumer(&config, &kafka)?;
    {
        // Brokers that refuse this client (TLS, SASL, ACLs) stop the worker with their reason.
        let (topics, stop) = (vec![config.kafka.topic.clone()], shutdown.clone());
        supervisor.spawn("Kafka access check", async move {
            let watch = stop.clone();
            check_access_async(kafka, topics, move || watch.is_cancelled()).await?;
            stop.cancelled().await;
            Ok(())
        });
    }
    tracing::info!(group = config.group, topic = config.kafka.topic, %http_addr, "Starting the ingest worker.");

    let partitions = partitions::Partitions::new(config.partition_interval.into());
    supervisor.spawn(
        "maintenance",
        maintenance::run(
            db.clone(),
            partitions.clone(),
            config.maintenance_policy(),
            shutdown.clone(),
        ),
    );
    let store = Store::new(
        db,
        config.group.clone(),
        config.kafka.topic.clone(),
        config.state_policy(),
        partitions,
    );
    let store = if config.no_rollups {
        store.without_rollups()
    } else {
        store
    };
    let (report_tx, reports) = std::sync::mpsc::channel();
    let mut queues = Vec::with_capacity(writers);
    for index in 0..writers {
        let (queue, batches) = mpsc::channel(QUEUED_BATCHES);
        queues.push(queue);
        let writer = Writer {
            store: store.clone(),
            batches,
            reports: report_tx.clone(),
            progress: progress.clone(),
            stop: shutdown.clone(),
            panic_after: config.panic_writer_after.filter(|_| index == 0),
        };
        supervisor.spawn(format!("writer {index}"), writer.run());
    }
    drop(report_tx);
    let worker = Loop {
        consumer,
        queues,
        reports,
        store,
        runtime: tokio::runtime::Handle::current(),
        topic: config.kafka.topic.clone(),
        batch_max: config.batch_max.max(1),
        batch_wait: config.batch_wait(),
        sweep_every: config.sweep_every(),
        progress: progress.clone(),
        stop: shutdown.clone(),
        lookup_backoff: std::cell::RefCell::new(plumbing::Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(1),
        )),
    };
    supervisor.spawn_blocking("consumer loop", move || worker.run());
    Ok(Running {
        http_addr,
        progress,
        shutdown,
        supervisor: Some(supervisor),
    })
}
