//! The consuming loop, on a thread of its own (librdkafka's poll and rebalance callbacks block).
//!
//! PostgreSQL, not Kafka, holds the truth about what is stored: the first record seen from a
//! newly assigned partition is compared with the position stored in `consumer_positions`, and
//! the consumer seeks there when they differ. Records are gathered into batches of at most
//! `batch_max` records or `batch_wait`, each written in one transaction with the new positions
//! (see `store.rs`). Only after that commit are offsets committed to Kafka, for lag tools.
//!
//! Failures: an undecodable record is parked (poison); a database error keeps the batch, pauses
//! the partitions and retries with capped backoff (transient), nothing moves meanwhile; a
//! partition found taken over is dropped from the batch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entity::ResultEvent;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metric_names as m;
use crate::store::{Batch, Reject, Row, Store, StoreError};

const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Hears about rebalances, which happen inside `poll`; the loop acts on them after it returns.
#[derive(Default)]
pub struct IngestContext {
    revoked: Mutex<Vec<i32>>,
}

impl ClientContext for IngestContext {}

impl ConsumerContext for IngestContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                tracing::info!(?partitions, "Partitions assigned.");
            }
            Rebalance::Revoke(tpl) => {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                tracing::info!(?partitions, "Partitions revoked.");
                if let Ok(mut revoked) = self.revoked.lock() {
                    revoked.extend(partitions);
                }
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "Rebalance error."),
        }
    }
}

impl IngestContext {
    fn take_revoked(&self) -> Vec<i32> {
        self.revoked
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

/// Counters the tests and the operations endpoint look at.
#[derive(Debug, Default)]
pub struct Progress {
    pub rows_written: AtomicU64,
    pub database_ok: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error("cannot create the Kafka consumer: {0}")]
    Create(rdkafka::error::KafkaError),
    #[error("cannot subscribe to {topic}: {source}")]
    Subscribe {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
}

pub fn create_consumer(config: &Config) -> Result<BaseConsumer<IngestContext>, ConsumeError> {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.kafka.kafka_bootstrap_servers)
        .set("group.id", &config.group)
        // Only records of committed transactions; aborted ones are never seen.
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Bound the prefetch (librdkafka's defaults allow ~64 MB and 100k records per
        // partition), so memory stays flat however large the backlog.
        .set("queued.max.messages.kbytes", "8192")
        .set("queued.min.messages", "20000")
        .set(
            "session.timeout.ms",
            config.session_timeout.as_millis().to_string(),
        );
    if let Some(instance) = &config.instance {
        client.set("group.instance.id", instance);
    }
    let consumer: BaseConsumer<IngestContext> = client
        .create_with_context(IngestContext::default())
        .map_err(ConsumeError::Create)?;
    consumer
        .subscribe(&[&config.topic])
        .map_err(|source| ConsumeError::Subscribe {
            topic: config.topic.clone(),
            source,
        })?;
    Ok(consumer)
}

/// Sorts one record into a row or a reject.
fn decode(message: &BorrowedMessage<'_>) -> Result<Row, Reject> {
    let reject = |reason: String| Reject {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
        reason,
    };
    let Some(payload) = message.payload() else {
        return Err(reject("empty record (no value)".into()));
    };
    let event = ResultEvent::decode(payload).map_err(|e| reject(e.to_string()))?;
    Ok(Row {
        target_id: event.target_id,
        http_status: event.http_status,
        failure_class: event.failure_class.map(|c| c.as_str().to_owned()),
        start_time: event.start_time,
        duration_ms: event.duration_ms,
        scheduled_at: event.scheduled_at,
    })
}

/// The record a row came from, kept to park the row if its target turns out to be gone.
fn origin(message: &BorrowedMessage<'_>) -> Reject {
    Reject {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
        reason: String::new(),
    }
}

pub struct Loop {
    pub consumer: BaseConsumer<IngestContext>,
    pub store: Store,
    pub runtime: Handle,
    pub topic: String,
    pub batch_max: usize,
    pub batch_wait: Duration,
    pub progress: Arc<Progress>,
    pub stop: CancellationToken,
}

impl Loop {
    /// Consumes until stopped. On stop the batch in hand gets one attempt, then is dropped
    /// (its records are read again next time: nothing of it was stored).
    pub fn run(self) {
        // Per partition we own: the offset of the next record to store.
        let mut next: HashMap<i32, i64> = HashMap::new();
        let mut batch = Batch::default();
        let mut batch_started: Option<Instant> = None;
        let mut last_lag = Instant::now();
        while !self.stop.is_cancelled() {
            let polled = self.consumer.poll(Duration::from_millis(20));
            self.forget_revoked(&mut next, &mut batch);
            match polled {
                Some(Ok(message)) => self.take(&message, &mut next, &mut batch, &mut batch_started),
                Some(Err(e)) => tracing::warn!(error = %e, "Kafka consumer error; carrying on."),
                None => {}
            }
            let due = batch_started.is_some_and(|t| t.elapsed() >= self.batch_wait);
            if batch.len() >= self.batch_max || (due && !batch.is_empty()) {
                self.write(&mut batch, &mut next);
                batch_started = None;
            }
            if last_lag.elapsed() >= Duration::from_secs(5) {
                self.report_lag(&next);
                last_lag = Instant::now();
            }
        }
        if !batch.is_empty() {
            match self.runtime.block_on(self.store.write(&batch)) {
                Ok(written) => {
                    self.account(&batch, written);
                    self.commit_to_kafka(&batch);
                    tracing::info!(records = batch.len(), "Last batch written before stopping.");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Last batch dropped on shutdown; it will be read again.")
                }
            }
        }
    }

    fn forget_revoked(&self, next: &mut HashMap<i32, i64>, batch: &mut Batch) {
        for partition in self.consumer.context().take_revoked() {
            next.remove(&partition);
            batch.drop_partition(partition);
        }
    }

    fn take(
        &self,
        message: &BorrowedMessage<'_>,
        next: &mut HashMap<i32, i64>,
        batch: &mut Batch,
        batch_started: &mut Option<Instant>,
    ) {
        let partition = message.partition();
        let offset = message.offset();
        let expected = match next.get(&partition) {
            Some(expected) => *expected,
            None => {
                let Some(stored) = self.stored_position(partition) else {
                    return;
                };
                next.insert(partition, stored);
                if offset != stored {
                    tracing::info!(
                        partition,
                        offset,
                        stored,
                        "Seeking to the position stored in PostgreSQL."
                    );
                    if let Err(e) = self.consumer.seek(
                        &self.topic,
                        partition,
                        Offset::Offset(stored),
                        Duration::from_secs(10),
                    ) {
                        tracing::warn!(partition, error = %e, "Seek failed; will retry.");
                        next.remove(&partition);
                    }
                    return;
                }
                stored
            }
        };
        if offset < expected {
            return; // Stored already (fetched before a seek took effect).
        }
        batch
            .positions
            .entry(partition)
            .and_modify(|(_, to)| *to = offset + 1)
            .or_insert((expected, offset + 1));
        next.insert(partition, offset + 1);
        match decode(message) {
            Ok(row) => batch.rows.push((row, origin(message))),
            Err(reject) => {
                tracing::warn!(
                    partition,
                    offset,
                    reason = reject.reason,
                    "Parking undecodable record."
                );
                batch.rejects.push(reject);
            }
        }
        batch_started.get_or_insert_with(Instant::now);
    }

    /// The stored position, or None (after logging) when the database cannot say now.
    fn stored_position(&self, partition: i32) -> Option<i64> {
        match self.runtime.block_on(self.store.position(partition)) {
            Ok(position) => Some(position),
            Err(e) => {
                tracing::warn!(partition, error = %e, "Cannot read the stored position; retrying.");
                self.progress.database_ok.store(false, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(500));
                // The partition stays uninitialised: the next record from it compares with the
                // stored position again and seeks back there, so this one is not lost.
                None
            }
        }
    }

    /// Writes the batch, retrying until it is stored, its partitions are gone, or we stop.
    fn write(&self, batch: &mut Batch, next: &mut HashMap<i32, i64>) {
        let mut attempt = 0u32;
        let mut paused = false;
        while !batch.is_empty() {
            let started = Instant::now();
            match self.runtime.block_on(self.store.write(batch)) {
                Ok(written) => {
                    metrics::histogram!(m::INGEST_COMMIT_LATENCY)
                        .record(started.elapsed().as_secs_f64());
                    self.progress.database_ok.store(true, Ordering::Relaxed);
                    self.account(batch, written);
                    self.commit_to_kafka(batch);
                    *batch = Batch::default();
                }
                Err(StoreError::PartitionLost(partition)) => {
                    tracing::warn!(partition, "Partition taken over; dropping its records.");
                    batch.drop_partition(partition);
                    next.remove(&partition);
                }
                Err(StoreError::Db(e)) => {
                    attempt += 1;
                    self.progress.database_ok.store(false, Ordering::Relaxed);
                    metrics::counter!(m::INGEST_RETRIES).increment(1);
                    let wait = Duration::from_millis(100)
                        .saturating_mul(1 << attempt.min(6))
                        .min(MAX_BACKOFF);
                    tracing::warn!(attempt, records = batch.len(), error = %e, ?wait, "Cannot write the batch; retrying, no position moves.");
                    if !paused && let Ok(assignment) = self.consumer.assignment() {
                        paused = self.consumer.pause(&assignment).is_ok();
                    }
                    // Keep serving the group while we wait (rebalances run inside poll).
                    let until = Instant::now() + wait;
                    while Instant::now() < until && !self.stop.is_cancelled() {
                        if let Some(Ok(m)) = self.consumer.poll(Duration::from_millis(50)) {
                            // Paused partitions deliver nothing; anything else is read again later.
                            let _ = self.consumer.seek(
                                &self.topic,
                                m.partition(),
                                Offset::Offset(m.offset()),
                                Duration::from_secs(1),
                            );
                        }
                        self.forget_revoked(next, batch);
                    }
                    if self.stop.is_cancelled() {
                        break;
                    }
                }
            }
        }
        if paused && let Ok(assignment) = self.consumer.assignment() {
            let _ = self.consumer.resume(&assignment);
        }
    }

    fn account(&self, batch: &Batch, written: crate::store::Written) {
        metrics::histogram!(m::INGEST_BATCH_SIZE).record(batch.len() as f64);
        metrics::counter!(m::INGEST_ROWS).increment(written.inserted);
        metrics::counter!(m::INGEST_CONFLICTS).increment(written.conflicts);
        metrics::counter!(m::INGEST_REJECTS).increment(written.rejected);
        self.progress
            .rows_written
            .fetch_add(written.inserted, Ordering::Relaxed);
    }

    /// Tells Kafka how far we are, for lag tools only: PostgreSQL has the real positions.
    fn commit_to_kafka(&self, batch: &Batch) {
        let mut tpl = TopicPartitionList::new();
        for (partition, (_, next)) in &batch.positions {
            let _ = tpl.add_partition_offset(&self.topic, *partition, Offset::Offset(*next));
        }
        if tpl.count() > 0
            && let Err(e) = self.consumer.commit(&tpl, CommitMode::Async)
        {
            tracing::debug!(error = %e, "Offset commit to Kafka failed (informational only).");
        }
    }

    fn report_lag(&self, next: &HashMap<i32, i64>) {
        for (partition, position) in next {
            if let Ok((_, high)) =
                self.consumer
                    .fetch_watermarks(&self.topic, *partition, Duration::from_secs(1))
            {
                metrics::gauge!(m::INGEST_LAG, "partition" => partition.to_string())
                    .set((high - position).max(0) as f64);
            }
        }
    }
}
