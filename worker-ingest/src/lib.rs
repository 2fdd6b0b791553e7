//! The ingest worker: reads committed results from Kafka and stores each exactly once in
//! PostgreSQL, with the consumer's position in the same transaction.
//!
//! ```text
//! Kafka (read_committed) → consumer thread → batch → one PostgreSQL transaction:
//!     rows (unnest, ON CONFLICT DO NOTHING) + rejects + guarded positions + pg_notify
//! ```

pub mod config;
pub mod consumer;
pub mod metric_names;
pub mod store;
pub mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::Config;
use consumer::{ConsumeError, Loop, Progress};
use store::Store;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Consume(#[from] ConsumeError),
    #[error("cannot serve health and metrics on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid database configuration: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("the consumer thread panicked")]
    Panicked,
}

/// A started ingest worker.
pub struct Running {
    pub http_addr: SocketAddr,
    pub progress: Arc<Progress>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
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

    pub async fn wait(mut self) -> Result<(), IngestError> {
        (&mut self.task).await.map_err(|_| IngestError::Panicked)
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
    let _recorder = entity::service::metrics_handle();
    metric_names::describe();
    let progress = Arc::new(Progress::default());
    let ready = progress.clone();
    let (http_addr, _server) = entity::service::serve_ops(
        config.listen,
        Arc::new(move || ready.database_ok.load(Ordering::Relaxed)),
        shutdown.clone(),
    )
    .await
    .map_err(|source| IngestError::Listen {
        addr: config.listen,
        source,
    })?;

    // One connection per writer, one for position lookups, one spare.
    let db = config
        .database
        .connect_lazy(config.writers.max(1) as u32 + 2)
        .await?;
    if db.ping().await.is_ok() {
        progress.database_ok.store(true, Ordering::Relaxed);
    }
    let consumer = consumer::create_consumer(&config)?;
    tracing::info!(group = config.group, topic = config.kafka.topic, %http_addr, "Starting the ingest worker.");

    let worker = Loop {
        consumer,
        store: Store::new(db, config.group.clone(), config.kafka.topic.clone()),
        runtime: tokio::runtime::Handle::current(),
        topic: config.kafka.topic.clone(),
        batch_max: config.batch_max.max(1),
        batch_wait: config.batch_wait(),
        writers: config.writers.max(1),
        progress: progress.clone(),
        stop: shutdown.clone(),
    };
    let task = tokio::task::spawn_blocking(move || worker.run());
    Ok(Running {
        http_addr,
        progress,
        shutdown,
        task,
    })
}
