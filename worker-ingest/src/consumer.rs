//! The consuming loop, on a thread of its own (librdkafka's poll and rebalance callbacks block).
//!
//! PostgreSQL, not Kafka, holds the truth about what is stored: the first record seen from a
//! newly assigned partition is compared with the position stored in `consumer_positions`, and
//! the consumer seeks there when they differ. Records are gathered into batches of at most
//! `batch_max` records or `batch_wait`, one per writer (see `writer.rs`: each writer owns a share
//! of the partitions and writes its batches in order), each written in one transaction with the
//! new positions (see `store.rs`). Only after that commit are offsets committed to Kafka, for lag
//! tools.
//!
//! Failures: an undecodable record is parked (poison); a database error keeps the batch and the
//! writer retries with capped backoff (transient) while this loop pauses the writer's partitions
//! and keeps serving the group, nothing moves meanwhile; a partition found taken over is dropped.
//! A fatal librdkafka error (another instance with the same `group.instance.id`, say) ends the
//! loop with an error, which stops the process. A stored position ahead of the log's end (the
//! topic was recreated, the broker lost data) is never skipped silently: the partition waits,
//! `/readyz` says not ready, the log says ERROR until an operator resets the positions
//! (`pingpipe-ingest reset-positions`), which this loop notices.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entity::ResultEvent;
use entity::kafka::ClientSettings;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metric_names as m;
use crate::store::{Batch, Reject, Row, Store};
use crate::writer::Report;

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
    /// Partitions whose stored position is ahead of the log's end.
    pub positions_ahead: AtomicU64,
}

impl Progress {
    /// What `/readyz` says: the database answers and no position is ahead of its log.
    pub fn is_ready(&self) -> bool {
        self.database_ok.load(Ordering::Relaxed)
            && self.positions_ahead.load(Ordering::Relaxed) == 0
    }
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

pub fn create_consumer(
    config: &Config,
    kafka: &ClientSettings,
) -> Result<BaseConsumer<IngestContext>, ConsumeError> {
    let mut client = kafka.client_config();
    client
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
        // When that bound is reached librdkafka postpones the partition's next fetch by this
        // much (1 s by default; librdkafka CONFIGURATION.md, `fetch.queue.backoff.ms`): with a
        // backlog the writers then sat idle ~600 ms of each second (measured, 26k rows/s).
        .set("fetch.queue.backoff.ms", "10")
        // A fetch waits at most this long for new records (500 ms by default), which bounds
        // how late a freshly committed result is seen at steady load.
        .set("fetch.wait.max.ms", "100")
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
        .subscribe(&[&config.kafka.topic])
        .map_err(|source| ConsumeError::Subscribe {
            topic: config.kafka.topic.clone(),
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
    Ok(Row::from(&event))
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
    /// One queue per writer (a writer owns the partitions p with p mod writers = its index).
    pub queues: Vec<mpsc::Sender<Batch>>,
    pub reports: std::sync::mpsc::Receiver<Report>,
    pub store: Store,
    pub runtime: Handle,
    pub topic: String,
    pub batch_max: usize,
    pub batch_wait: Duration,
    /// How often the owned partitions are watched for targets without results.
    pub sweep_every: Duration,
    pub progress: Arc<Progress>,
    pub stop: CancellationToken,
    /// Between failed position lookups (up to 1 s: this thread also serves rebalances).
    pub lookup_backoff: std::cell::RefCell<plumbing::Backoff>,
}

/// The batch being gathered for one writer.
struct Pending {
    batch: Batch,
    started: Option<Instant>,
    queue: mpsc::Sender<Batch>,
    paused: Vec<i32>,
}

impl Loop {
    /// Consumes until stopped, then hands what it gathered to the writers and waits for them;
    /// an error when librdkafka reports a fatal error.
    pub fn run(mut self) -> anyhow::Result<()> {
        let mut pending: Vec<Pending> = std::mem::take(&mut self.queues)
            .into_iter()
            .map(|queue| Pending {
                batch: Batch::default(),
                started: None,
                queue,
                paused: Vec::new(),
            })
            .collect();
        anyhow::ensure!(!pending.is_empty(), "no writer to hand batches to");
        // Per partition we own: the offset of the next record to store.
        let mut next: HashMap<i32, i64> = HashMap::new();
        let mut ahead: HashMap<i32, i64> = HashMap::new();
        // Partitions read past the log's end as it was at the previous lag check: what they
        // still have to read is at most that old, so a target without a stored result is
        // missing, not on its way. Only these are watched (a partition just gained, or one
        // with a backlog, waits for a check that finds it caught up).
        let mut caught_up: HashSet<i32> = HashSet::new();
        let mut last_ends: HashMap<i32, i64> = HashMap::new();
        let mut last_lag = Instant::now();
        let mut last_sweep = Instant::now();
        let mut result = Ok(());
        while !self.stop.is_cancelled() {
            let polled = self.consumer.poll(Duration::from_millis(20));
            self.forget_revoked(
                &mut next,
                &mut ahead,
                &mut pending,
                (&mut caught_up, &mut last_ends),
            );
            self.handle_reports(&mut next, &mut pending);
            match polled {
                Some(Ok(message)) if ahead.contains_key(&message.partition()) => {
                    // Older than what is stored for this partition: nothing to do until reset.
                }
                Some(Ok(message)) => {
                    let slot = message.partition().rem_euclid(pending.len() as i32) as usize;
                    self.take(&message, &mut next, &mut pending[slot]);
                }
                Some(Err(e)) => {
                    // librdkafka raises a fatal error as an error event, then says what it was.
                    if let Some((code, reason)) = self.consumer.client().fatal_error() {
                        result = Err(fatal(code, &reason));
                        // Everything stops: the writers finish because of this, not by chance.
                        self.stop.cancel();
                        break;
                    }
                    // ACLs that do not let this consumer join its group or read its topic
                    // do not change by waiting: stop and say which.
                    if let Some(hint) = entity::kafka::consumer_refusal(&e) {
                        result = Err(anyhow::anyhow!(
                            "the Kafka brokers refuse this consumer (topic {:?}): {e}{hint}",
                            self.topic
                        ));
                        self.stop.cancel();
                        break;
                    }
                    tracing::warn!(error = %e, "Kafka consumer error; carrying on.");
                }
                None => {}
            }
            for p in &mut pending {
                self.hand_over(p, false);
            }
            if last_lag.elapsed() >= LAG_EVERY {
                self.check_positions(&mut next, &mut ahead, &mut caught_up, &mut last_ends);
                last_lag = Instant::now();
            }
            if last_sweep.elapsed() >= self.sweep_every {
                self.request_sweep(&next, &ahead, &caught_up, &mut pending);
                last_sweep = Instant::now();
            }
        }
        // Stopping: what was gathered gets one attempt; the writers end when their queues do.
        for p in &mut pending {
            self.hand_over(p, true);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for p in pending.iter_mut().filter(|p| !p.batch.is_empty()) {
            let batch = std::mem::take(&mut p.batch);
            let queue = p.queue.clone();
            let left = deadline.saturating_duration_since(Instant::now());
            let sent = self
                .runtime
                .block_on(async move { tokio::time::timeout(left, queue.send(batch)).await });
            if !matches!(sent, Ok(Ok(()))) {
                tracing::warn!("A batch was not written before stopping; it will be read again.");
            }
        }
        drop(pending);
        // The writers' last reports, for the offsets shown to lag tools; they end (and drop
        // their senders) once their queues are drained.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.reports.recv_timeout(left) {
                Ok(report) => self.handle_report(report, &mut next, &mut []),
                Err(_) => break,
            }
        }
        result
    }

    /// Gives the gathered batch to its writer when it is full or old enough (or `now`). When the
    /// writer is still busy its partitions are paused, so memory stays bounded, and resumed once
    /// it has taken the batch.
    fn hand_over(&self, p: &mut Pending, now: bool) {
        let due = p.started.is_some_and(|t| t.elapsed() >= self.batch_wait);
        if p.batch.is_empty() || !(now || due || p.batch.len() >= self.batch_max) {
            return;
        }
        match p.queue.try_reserve() {
            Ok(permit) => {
                permit.send(std::mem::take(&mut p.batch));
                p.started = None;
                if !p.paused.is_empty() {
                    self.set_paused(&p.paused, false);
                    p.paused.clear();
                }
            }
            Err(_) if p.batch.len() >= self.batch_max => {
                let more: Vec<i32> = p
                    .batch
                    .positions
                    .keys()
                    .copied()
                    .filter(|partition| !p.paused.contains(partition))
                    .collect();
                if !more.is_empty() {
                    self.set_paused(&more, true);
                    p.paused.extend(more);
                }
            }
            Err(_) => {}
        }
    }

    /// Asks each writer to watch its partitions (caught up, not ahead, not paused) for targets
    /// without results, with the next batch it gets — at once when it is free. A partition with
    /// nothing in the batch joins it at its current position, which the transaction guards like
    /// any other. A partition nothing was read from since it was assigned (its monitor is
    /// silent, say) is watched at its stored position when its log holds nothing more.
    fn request_sweep(
        &self,
        next: &HashMap<i32, i64>,
        ahead: &HashMap<i32, i64>,
        caught_up: &HashSet<i32>,
        pending: &mut [Pending],
    ) {
        let mut watched: Vec<(i32, i64)> = next
            .iter()
            .filter(|(partition, _)| {
                !ahead.contains_key(partition) && caught_up.contains(partition)
            })
            .map(|(partition, position)| (*partition, *position))
            .collect();
        watched.extend(self.idle_partitions(next, ahead));
        let writers = pending.len() as i32;
        for (index, p) in pending.iter_mut().enumerate() {
            let mine: Vec<(i32, i64)> = watched
                .iter()
                .filter(|(partition, _)| partition.rem_euclid(writers) as usize == index)
                .filter(|(partition, _)| !p.paused.contains(partition))
                .copied()
                .collect();
            if mine.is_empty() {
                continue;
            }
            for (partition, position) in &mine {
                p.batch
                    .positions
                    .entry(*partition)
                    .or_insert((*position, *position));
            }
            p.batch.sweep = mine.into_iter().map(|(partition, _)| partition).collect();
            p.batch.sweep_at = Some(chrono::Utc::now());
            p.batch.sweep.sort_unstable();
            self.hand_over(p, true);
        }
    }

    /// Assigned partitions nothing was read from yet whose log ends at their stored position
    /// (past the last transaction's commit marker, or a few aborted records), with that
    /// position.
    fn idle_partitions(
        &self,
        next: &HashMap<i32, i64>,
        ahead: &HashMap<i32, i64>,
    ) -> Vec<(i32, i64)> {
        let Ok(assignment) = self.consumer.assignment() else {
            return Vec::new();
        };
        let mut idle = Vec::new();
        for element in assignment.elements() {
            let partition = element.partition();
            if next.contains_key(&partition) || ahead.contains_key(&partition) {
                continue;
            }
            let Ok(stored) = self.runtime.block_on(self.store.position(partition)) else {
                continue;
            };
            let Ok((_, high)) =
                self.consumer
                    .fetch_watermarks(&self.topic, partition, Duration::from_secs(1))
            else {
                continue;
            };
            if stored <= high && high - stored <= IDLE_SLACK {
                idle.push((partition, stored));
            }
        }
        idle
    }

    fn set_paused(&self, partitions: &[i32], pause: bool) {
        let mut tpl = TopicPartitionList::new();
        for partition in partitions {
            tpl.add_partition(&self.topic, *partition);
        }
        let result = if pause {
            self.consumer.pause(&tpl)
        } else {
            self.consumer.resume(&tpl)
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, pause, "Pause/resume failed.");
        }
    }

    fn forget_revoked(
        &self,
        next: &mut HashMap<i32, i64>,
        ahead: &mut HashMap<i32, i64>,
        pending: &mut [Pending],
        (caught_up, last_ends): (&mut HashSet<i32>, &mut HashMap<i32, i64>),
    ) {
        for partition in self.consumer.context().take_revoked() {
            next.remove(&partition);
            caught_up.remove(&partition);
            last_ends.remove(&partition);
            if ahead.remove(&partition).is_some() {
                // Whoever owns it next finds it ahead again from the stored position.
                self.set_paused(&[partition], false);
                self.mark_ahead(partition, false, ahead.len());
            }
            for p in pending.iter_mut() {
                p.batch.drop_partition(partition);
                p.paused.retain(|x| *x != partition);
            }
        }
    }

    fn handle_reports(&self, next: &mut HashMap<i32, i64>, pending: &mut [Pending]) {
        while let Ok(report) = self.reports.try_recv() {
            self.handle_report(report, next, pending);
        }
    }

    fn handle_report(&self, report: Report, next: &mut HashMap<i32, i64>, pending: &mut [Pending]) {
        match report {
            Report::Stored {
                positions,
                records,
                written,
            } => {
                metrics::histogram!(m::INGEST_BATCH_SIZE).record(records as f64);
                metrics::counter!(m::INGEST_ROWS).increment(written.inserted);
                metrics::counter!(m::INGEST_CONFLICTS).increment(written.conflicts);
                metrics::counter!(m::INGEST_REJECTS).increment(written.rejected);
                metrics::counter!(m::STATE_CHANGES).increment(written.state_changes);
                metrics::counter!(m::INCIDENTS_OPENED).increment(written.incidents_opened);
                metrics::counter!(m::INCIDENTS_RESOLVED).increment(written.incidents_resolved);
                metrics::counter!(m::INCIDENTS_REPEATED).increment(written.incidents_repeated);
                metrics::counter!(m::DECISIONS_FAILED).increment(written.decisions_failed);
                metrics::counter!(m::NOTIFICATIONS_QUEUED).increment(written.notifications_queued);
                self.commit_to_kafka(&positions);
            }
            Report::Lost(partition) => {
                // What was gathered since is based on the lost position too.
                next.remove(&partition);
                for p in pending.iter_mut() {
                    p.batch.drop_partition(partition);
                }
            }
        }
    }

    fn take(
        &self,
        message: &BorrowedMessage<'_>,
        next: &mut HashMap<i32, i64>,
        pending: &mut Pending,
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
                    self.seek(partition, stored, next);
                    return;
                }
                stored
            }
        };
        if offset < expected {
            return; // Stored already (fetched before a seek took effect).
        }
        let batch = &mut pending.batch;
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
        pending.started.get_or_insert_with(Instant::now);
    }

    /// Moves `partition` to the stored position `stored`; when the seek fails the partition is
    /// forgotten, so its next record compares with the stored position (and seeks) again.
    fn seek(&self, partition: i32, stored: i64, next: &mut HashMap<i32, i64>) {
        match self.consumer.seek(
            &self.topic,
            partition,
            Offset::Offset(stored),
            Duration::from_secs(10),
        ) {
            Ok(()) => {
                next.insert(partition, stored);
            }
            Err(e) => {
                tracing::warn!(partition, error = %e, "Seek failed; the next record seeks again.");
                next.remove(&partition);
            }
        }
    }

    /// The stored position, or None (after logging) when the database cannot say now.
    fn stored_position(&self, partition: i32) -> Option<i64> {
        let mut backoff = self.lookup_backoff.borrow_mut();
        match self.runtime.block_on(self.store.position(partition)) {
            Ok(position) => {
                backoff.reset();
                Some(position)
            }
            Err(e) => {
                tracing::warn!(partition, attempt = backoff.attempt() + 1, error = %e, "Cannot read the stored position; retrying.");
                self.progress.database_ok.store(false, Ordering::Relaxed);
                // This thread also serves the group's rebalances: the wait stays short.
                std::thread::sleep(backoff.next_delay());
                // The partition stays uninitialised: the next record from it compares with the
                // stored position again and seeks back there, so this one is not lost.
                None
            }
        }
    }

    /// Tells Kafka how far we are, for lag tools only: PostgreSQL has the real positions.
    fn commit_to_kafka(&self, positions: &[(i32, i64)]) {
        let mut tpl = TopicPartitionList::new();
        for (partition, next) in positions {
            let _ = tpl.add_partition_offset(&self.topic, *partition, Offset::Offset(*next));
        }
        if tpl.count() > 0
            && let Err(e) = self.consumer.commit(&tpl, CommitMode::Async)
        {
            tracing::debug!(error = %e, "Offset commit to Kafka failed (informational only).");
        }
    }

    /// Every few seconds: the lag of each partition, and whether a position is ahead of its log.
    /// A position ahead (the topic was recreated, the broker lost data) means the records
    /// arriving are older than what is stored. That must not go unnoticed, nor clear itself
    /// when the new log grows past the old position: the partition is paused and reported until
    /// an operator resets its stored position; then it starts again from the new position.
    fn check_positions(
        &self,
        next: &mut HashMap<i32, i64>,
        ahead: &mut HashMap<i32, i64>,
        caught_up: &mut HashSet<i32>,
        last_ends: &mut HashMap<i32, i64>,
    ) {
        let flagged: Vec<(i32, i64)> = ahead.iter().map(|(p, n)| (*p, *n)).collect();
        for (partition, position) in flagged {
            self.check_reset(partition, position, next, ahead);
        }
        let partitions: Vec<(i32, i64)> = next
            .iter()
            .filter(|(p, _)| !ahead.contains_key(p))
            .map(|(p, n)| (*p, *n))
            .collect();
        for (partition, position) in partitions {
            let Ok((_, high)) =
                self.consumer
                    .fetch_watermarks(&self.topic, partition, Duration::from_secs(1))
            else {
                continue;
            };
            let lag = (high - position).max(0);
            metrics::gauge!(m::INGEST_LAG, "partition" => partition.to_string()).set(lag as f64);
            if last_ends
                .insert(partition, high)
                .is_some_and(|end| position >= end)
            {
                caught_up.insert(partition);
            } else {
                caught_up.remove(&partition);
            }
            if position > high {
                ahead.insert(partition, position);
                self.set_paused(&[partition], true);
                self.mark_ahead(partition, true, ahead.len());
                self.report_ahead(partition, position, Some(high));
            }
        }
    }

    /// For a partition found ahead: has an operator reset its stored position? Then it starts
    /// again from there; otherwise it is reported again.
    fn check_reset(
        &self,
        partition: i32,
        flagged: i64,
        next: &mut HashMap<i32, i64>,
        ahead: &mut HashMap<i32, i64>,
    ) {
        let stored = match self.runtime.block_on(self.store.position(partition)) {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(partition, error = %e, "Cannot re-read the stored position.");
                return;
            }
        };
        if stored == flagged {
            self.report_ahead(partition, flagged, None);
            return;
        }
        tracing::info!(
            partition,
            stored,
            "Stored position reset; starting from it."
        );
        // Seek now: the records before the log's end were read (and skipped) already.
        self.seek(partition, stored, next);
        ahead.remove(&partition);
        self.set_paused(&[partition], false);
        self.mark_ahead(partition, false, ahead.len());
    }

    fn report_ahead(&self, partition: i32, position: i64, log_end: Option<i64>) {
        tracing::error!(
            topic = self.topic,
            partition,
            stored_position = position,
            log_end,
            "The stored position of topic {} partition {partition} is {position}, ahead of the \
             log's end (topic recreated or broker data lost?): the partition waits, nothing of it \
             is stored until its position is reset with `pingpipe-ingest reset-positions --partition \
             {partition}`.",
            self.topic
        );
    }

    fn mark_ahead(&self, partition: i32, is_ahead: bool, count: usize) {
        metrics::gauge!(m::INGEST_POSITION_AHEAD, "partition" => partition.to_string())
            .set(if is_ahead { 1.0 } else { 0.0 });
        self.progress
            .positions_ahead
            .store(count as u64, Ordering::Relaxed);
    }
}

/// Records an idle partition's log may hold past its stored position and still count as read:
/// commit markers and aborted records, which a read_committed consumer never gets.
const IDLE_SLACK: i64 = 10;

/// How often lag and positions are checked against the broker.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// A fatal librdkafka error as the process reports it, with what it usually means.
fn fatal(code: rdkafka::types::RDKafkaErrorCode, reason: &str) -> anyhow::Error {
    let hint = match code {
        rdkafka::types::RDKafkaErrorCode::FencedInstanceId => {
            " (another ingest instance runs with the same PINGPIPE_INGEST_INSTANCE; each \
             instance needs its own name)"
        }
        _ => "",
    };
    anyhow::anyhow!("fatal Kafka consumer error {code:?}: {reason}{hint}")
}
