//! Batch writers: async tasks that each own a fixed share of the partitions (partition mod
//! writers) and write that share's batches in order, so several PostgreSQL transactions run at
//! once while every partition's positions still advance one batch after the other.
//!
//! Records PostgreSQL refuses for their data are parked by the store (poison); any other
//! database error is transient: the writer retries the batch with capped backoff until it is
//! stored (no position moves meanwhile). A partition found taken over is dropped from the batch
//! and reported. A writer ends when its queue closes; the supervisor treats any other end (a
//! panic) as fatal for the process.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use plumbing::Backoff;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::consumer::Progress;
use crate::metric_names as m;
use crate::store::{Batch, Store, StoreError, Written};

/// After this many failed attempts in a row a person must look: the log says ERROR.
const ATTEMPTS_BEFORE_ERROR: u32 = 5;

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

/// One writer's share of the work.
pub struct Writer {
    pub store: Store,
    pub batches: mpsc::Receiver<Batch>,
    pub reports: std::sync::mpsc::Sender<Report>,
    pub progress: Arc<Progress>,
    /// Once cancelled, a failing batch is given up (it will be read again: nothing of it was
    /// stored) instead of retried.
    pub stop: CancellationToken,
    /// Test hook (`--panic-writer-after`): panic after storing this many batches.
    pub panic_after: Option<u64>,
}

impl Writer {
    /// Writes the batches it receives, in order, until the channel closes.
    pub async fn run(mut self) -> anyhow::Result<()> {
        let mut stored = 0u64;
        // Set when a batch failed after the shutdown request: the database is not answering,
        // so the batches still queued are not tried either (they will be read again).
        let mut giving_up = false;
        while let Some(mut batch) = self.batches.recv().await {
            if giving_up {
                tracing::warn!(
                    records = batch.len(),
                    "Batch dropped on shutdown; it will be read again."
                );
                continue;
            }
            let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
            while !batch.is_empty() {
                let started = Instant::now();
                match self.store.write(&batch).await {
                    Ok(written) => {
                        metrics::histogram!(m::INGEST_COMMIT_LATENCY)
                            .record(started.elapsed().as_secs_f64());
                        self.progress.database_ok.store(true, Ordering::Relaxed);
                        self.progress
                            .rows_written
                            .fetch_add(written.inserted, Ordering::Relaxed);
                        let positions =
                            batch.positions.iter().map(|(p, (_, n))| (*p, *n)).collect();
                        let _ = self.reports.send(Report::Stored {
                            positions,
                            records: batch.len(),
                            written,
                        });
                        break;
                    }
                    Err(StoreError::PartitionLost(partition)) => {
                        tracing::warn!(partition, "Partition taken over; dropping its records.");
                        batch.drop_partition(partition);
                        let _ = self.reports.send(Report::Lost(partition));
                    }
                    Err(StoreError::Db(e)) => {
                        self.progress.database_ok.store(false, Ordering::Relaxed);
                        // The watch for missing results was asked for when the batch was made:
                        // by the time a retry succeeds, results may be waiting behind it.
                        batch.sweep.clear();
                        batch.sweep_at = None;
                        metrics::counter!(m::INGEST_RETRIES).increment(1);
                        if self.stop.is_cancelled() {
                            tracing::warn!(records = batch.len(), error = %e, "Batch dropped on shutdown; it will be read again.");
                            giving_up = true;
                            break;
                        }
                        let attempt = backoff.attempt() + 1;
                        if attempt >= ATTEMPTS_BEFORE_ERROR {
                            tracing::error!(attempt, records = batch.len(), error = %e, "Still cannot write the batch; retrying, no position moves.");
                        } else {
                            tracing::warn!(attempt, records = batch.len(), error = %e, "Cannot write the batch; retrying, no position moves.");
                        }
                        backoff.wait(&self.stop).await;
                    }
                }
            }
            stored += 1;
            if self.panic_after.is_some_and(|n| stored >= n) {
                panic!("test hook: writer panics after {stored} batches (--panic-writer-after)");
            }
        }
        Ok(())
    }
}
