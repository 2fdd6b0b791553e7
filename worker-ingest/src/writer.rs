//! Batch writers: async tasks that each own a fixed share of the partitions (partition mod
//! writers) and write that share's batches in order, so several PostgreSQL transactions run at
//! once while every partition's positions still advance one batch after the other.
//!
//! A writer retries a failed batch with capped backoff until it is stored (no position moves
//! meanwhile); a partition found taken over is dropped from the batch and reported.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::consumer::Progress;
use crate::metric_names as m;
use crate::store::{Batch, Store, StoreError, Written};

const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a writer tells the consuming loop.
#[derive(Debug)]
pub enum Report {
    /// The batch is committed: these (partition, next offset) positions are stored.
    Stored {
        positions: Vec<(i32, i64)>,
        records: usize,
        written: Written,
    },
    /// This partition belongs to another consumer now.
    Lost(i32),
}

/// Writes the batches it receives, in order, until the channel closes. With `stop` cancelled a
/// failing batch is given up (it will be read again: nothing of it was stored).
pub async fn run(
    store: Store,
    mut batches: mpsc::Receiver<Batch>,
    reports: std::sync::mpsc::Sender<Report>,
    progress: Arc<Progress>,
    stop: CancellationToken,
) {
    while let Some(mut batch) = batches.recv().await {
        let mut attempt = 0u32;
        while !batch.is_empty() {
            let started = Instant::now();
            match store.write(&batch).await {
                Ok(written) => {
                    metrics::histogram!(m::INGEST_COMMIT_LATENCY)
                        .record(started.elapsed().as_secs_f64());
                    progress.database_ok.store(true, Ordering::Relaxed);
                    progress
                        .rows_written
                        .fetch_add(written.inserted, Ordering::Relaxed);
                    let positions = batch.positions.iter().map(|(p, (_, n))| (*p, *n)).collect();
                    let _ = reports.send(Report::Stored {
                        positions,
                        records: batch.len(),
                        written,
                    });
                    break;
                }
                Err(StoreError::PartitionLost(partition)) => {
                    tracing::warn!(partition, "Partition taken over; dropping its records.");
                    batch.drop_partition(partition);
                    let _ = reports.send(Report::Lost(partition));
                }
                Err(StoreError::Db(e)) => {
                    attempt += 1;
                    progress.database_ok.store(false, Ordering::Relaxed);
                    metrics::counter!(m::INGEST_RETRIES).increment(1);
                    if stop.is_cancelled() {
                        tracing::warn!(records = batch.len(), error = %e, "Batch dropped on shutdown; it will be read again.");
                        break;
                    }
                    let wait = Duration::from_millis(100)
                        .saturating_mul(1 << attempt.min(6))
                        .min(MAX_BACKOFF);
                    tracing::warn!(attempt, records = batch.len(), error = %e, ?wait, "Cannot write the batch; retrying, no position moves.");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = stop.cancelled() => {}
                    }
                }
            }
        }
    }
}
