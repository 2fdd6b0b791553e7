//! Publishing results through Kafka transactions.
//!
//! One transactional producer per process, its `transactional.id` stable across restarts
//! (instance + shard). Records are sent as they arrive inside an open transaction, which is
//! committed at least every `commit_interval` — many records per transaction, never one. Error
//! handling follows librdkafka's transactional API: a retriable error retries the same call; an
//! abortable one aborts and re-sends the whole batch in a new transaction; a fatal one stops the
//! process — above all being fenced by a newer instance with the same id, which makes this one
//! a zombie.
//!
//! A broker outage is not a fence. When the broker is gone for longer than the transaction
//! timeout, its coordinator aborts the open transaction and bumps the producer's epoch, and
//! librdkafka reports that as fenced or fatal once the broker is back. So a fatal error that
//! comes when the open transaction is older than the transaction timeout (the broker counts from
//! its start), or after calls have been failing or hanging for that long, recreates the producer
//! (same id: `init_transactions` aborts whatever was left open) and the batch is sent again. A
//! fatal error on a young transaction after a run of successes — however long the monitor was
//! idle before it — means another live instance took the id over, and this one stops. Either way a batch is committed once or not at all, and
//! the unique (target, slot) key stores a result once even if a batch were sent twice.
//!
//! A record the producer refuses locally (too large, say) is counted as dropped, never as
//! published. On shutdown the publisher keeps trying until the shutdown deadline, then drops
//! what Kafka has not taken and logs how many results that was.
//!
//! The transactional calls block, so they run on the blocking pool; `&mut self` on every
//! transactional method makes "one open transaction at a time" a compile-time rule.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use entity::ResultEvent;
use entity::kafka::ClientSettings;
use plumbing::Backoff;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metric_names as m;

/// A producer served by a thread of its own that polls it every 50 ms without blocking.
///
/// Not rust-rdkafka's `ThreadedProducer`: its thread polls with a 100 ms deadline whose last
/// millisecond is a busy loop (the remaining time rounds down to a 0 ms timeout), about 1% of a
/// core per producer — 40% of a core for the 64 producers of a monitor owning every shard,
/// measured idle. Delivery reports (which a commit's flush waits for) are served within 50 ms.
pub struct KafkaProducer {
    producer: Option<Arc<BaseProducer<DefaultProducerContext>>>,
    stop: Arc<AtomicBool>,
    poller: Option<std::thread::JoinHandle<()>>,
}

/// How often the producer's own thread serves its events.
const POLL_EVERY: Duration = Duration::from_millis(50);

impl KafkaProducer {
    fn new(producer: BaseProducer<DefaultProducerContext>) -> Result<KafkaProducer, PublishError> {
        let producer = Arc::new(producer);
        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let (producer, stop) = (producer.clone(), stop.clone());
            std::thread::Builder::new()
                .name("producer poll".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        producer.poll(Duration::ZERO);
                        std::thread::sleep(POLL_EVERY);
                    }
                })
                .map_err(|e| {
                    PublishError::Create(KafkaError::ClientCreation(format!(
                        "cannot start the producer's poll thread: {e}"
                    )))
                })?
        };
        Ok(KafkaProducer {
            producer: Some(producer),
            stop,
            poller: Some(poller),
        })
    }
}

impl std::ops::Deref for KafkaProducer {
    type Target = BaseProducer<DefaultProducerContext>;

    fn deref(&self) -> &Self::Target {
        self.producer.as_ref().expect("taken only by drop")
    }
}

impl Drop for KafkaProducer {
    /// Stops the poll thread, then lets the BaseProducer purge, flush (up to half a second) and
    /// close — on the blocking pool when dropped inside the runtime, never on an async thread
    /// (a monitor handing 32 shards over drops 32 producers at once).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let (poller, producer) = (self.poller.take(), self.producer.take());
        let close = move || {
            if let Some(poller) = poller {
                let _ = poller.join();
            }
            drop(producer);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(close)),
            Err(_) => close(),
        }
    }
}

/// The header naming the member that published a result (group mode).
pub const MEMBER_HEADER: &str = "pingpipe-member";

/// Timeout of each blocking transactional call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A transactional call taking longer than this means the broker is not answering: not ready.
const SLOW_CALL: Duration = Duration::from_secs(5);

/// A result waiting to be published (or, in group mode, a hand-over marker).
#[derive(Debug, Clone)]
pub struct Pending {
    pub key: String,
    pub payload: Vec<u8>,
    /// When its probe finished, for the publish-latency histogram.
    pub finished: Instant,
    /// The target whose slot this is (0 for a marker).
    pub target_id: i32,
    /// A hand-over marker for this partition of the shards topic, not a result.
    pub marker_partition: Option<i32>,
}

impl Pending {
    pub fn new(event: &ResultEvent) -> Pending {
        Pending {
            key: event.key(),
            payload: event.encode(),
            finished: Instant::now(),
            target_id: event.target_id,
            marker_partition: None,
        }
    }

    /// A hand-over marker for shard `partition`.
    pub fn marker(partition: i32, payload: Vec<u8>) -> Pending {
        Pending {
            key: format!("shard-{partition}"),
            payload,
            finished: Instant::now(),
            target_id: 0,
            marker_partition: Some(partition),
        }
    }

    fn is_result(&self) -> bool {
        self.marker_partition.is_none()
    }
}

/// Why publishing stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(
        "fenced: another producer with transactional.id {transactional_id:?} has started, so this \
         instance is a zombie and stops ({source})"
    )]
    Fenced {
        transactional_id: String,
        source: KafkaError,
    },
    #[error("fatal Kafka producer error for transactional.id {transactional_id:?}: {source}")]
    Fatal {
        transactional_id: String,
        source: KafkaError,
    },
    #[error("cannot create the Kafka producer: {0}")]
    Create(KafkaError),
    #[error("stopped before the producer was initialised")]
    Cancelled,
}

impl PublishError {
    /// What the brokers' refusal means when this error is one (TLS, SASL, ACLs): no retry
    /// changes it.
    pub fn refusal_hint(&self) -> Option<&'static str> {
        let source = match self {
            Self::Fenced { source, .. } | Self::Fatal { source, .. } | Self::Create(source) => {
                source
            }
            Self::Cancelled => return None,
        };
        entity::kafka::refusal_hint(source.rdkafka_error_code()?, &source.to_string())
    }
}

/// How the producer is set up.
#[derive(Debug, Clone)]
pub struct PublisherSettings {
    /// The brokers and how to reach them.
    pub kafka: ClientSettings,
    pub topic: String,
    pub transactional_id: String,
    pub commit_interval: Duration,
    /// Most records in one transaction.
    pub max_batch: usize,
    /// The producer's `transaction.timeout.ms`.
    pub transaction_timeout: Duration,
    /// Timeout of one `init_transactions` call (retried until it succeeds). In group mode no
    /// longer than the time a shard's start may take, so that an abandoned call cannot fence
    /// the shard's next owner long after.
    pub init_timeout: Duration,
    /// How long the producer waits to fill a request (`linger.ms`).
    pub linger: Duration,
    /// Sent as the `pingpipe-member` header of every result (group mode).
    pub member: Option<String>,
    /// Where hand-over markers go (group mode).
    pub shards_topic: Option<String>,
    /// After a broker outage that outlived the transaction timeout, make a new producer with the
    /// same id. Fixed mode only: in group mode a fatal error means the shard is lost, and a new
    /// producer would fence the member that took it over.
    pub recreate_after_outage: bool,
}

/// What stops one publishing step.
enum Halt {
    /// The shutdown deadline passed: drop what is left.
    GaveUp,
    Error(PublishError),
}

impl From<PublishError> for Halt {
    fn from(e: PublishError) -> Halt {
        Halt::Error(e)
    }
}

/// The transactional producer and the batch it is working on.
pub struct Publisher {
    producer: Arc<KafkaProducer>,
    settings: PublisherSettings,
    /// False while publishing fails or hangs (the monitor's `/readyz`).
    ready: Arc<AtomicBool>,
    /// Since when transactional calls have been failing or hanging (None after a success).
    failing_since: Option<Instant>,
    /// When the open transaction began (None when none is open).
    transaction_started: Option<Instant>,
    /// Cancelled when the shutdown deadline has passed: stop retrying.
    give_up: CancellationToken,
}

enum Failure {
    Retry,
    /// Abort the transaction and send the batch again; the error, for the log.
    Abort(KafkaError),
    Fatal(PublishError),
}

impl Publisher {
    /// Creates the producer and runs `init_transactions`, retrying while the broker is not
    /// reachable. A previous instance's unfinished transaction is aborted by this call.
    /// `give_up` ends the attempts (`Cancelled`) and, later, any retrying of [`Publisher::run`].
    pub async fn connect(
        settings: PublisherSettings,
        ready: Arc<AtomicBool>,
        give_up: CancellationToken,
    ) -> Result<Publisher, PublishError> {
        let producer = create(&settings)?;
        let mut publisher = Publisher {
            producer: Arc::new(producer),
            settings,
            ready,
            failing_since: None,
            transaction_started: None,
            give_up,
        };
        match publisher.init().await {
            Ok(()) => {
                publisher.succeeded();
                Ok(publisher)
            }
            Err(Halt::GaveUp) => Err(PublishError::Cancelled),
            Err(Halt::Error(e)) => Err(e),
        }
    }

    /// `init_transactions` until it succeeds.
    async fn init(&mut self) -> Result<(), Halt> {
        let mut backoff = backoff();
        loop {
            let timeout = self.settings.init_timeout;
            match self.call(move |p| p.init_transactions(timeout)).await? {
                Ok(()) => return Ok(()),
                Err(e) => match self.sort(e) {
                    Failure::Fatal(err) => return Err(err.into()),
                    Failure::Retry | Failure::Abort(_) => self.wait(&mut backoff).await?,
                },
            }
        }
    }

    /// Publishes everything `results` yields until it closes, then commits what is left.
    pub async fn run(mut self, mut results: mpsc::Receiver<Pending>) -> Result<(), PublishError> {
        while let Some(first) = results.recv().await {
            let deadline = tokio::time::Instant::now() + self.settings.commit_interval;
            let mut batch = vec![first];
            while batch.len() < self.settings.max_batch {
                match tokio::time::timeout_at(deadline, results.recv()).await {
                    Ok(Some(next)) => batch.push(next),
                    Ok(None) | Err(_) => break,
                }
            }
            match self.publish(&mut batch).await {
                Ok(()) => {}
                Err(Halt::Error(e)) => {
                    results.close();
                    let mut dropped = batch.iter().filter(|p| p.is_result()).count() as u64;
                    while let Ok(item) = results.try_recv() {
                        dropped += u64::from(item.is_result());
                    }
                    metrics::counter!(m::MONITOR_DROPPED, "reason" => "fenced").increment(dropped);
                    if self.settings.member.is_some() && matches!(e, PublishError::Fenced { .. }) {
                        // Group mode: the shard's new owner started, and probes these slots too.
                        metrics::counter!(m::MONITOR_SLOTS_PROBED_TWICE).increment(dropped);
                    }
                    return Err(e);
                }
                Err(Halt::GaveUp) => {
                    results.close();
                    let mut dropped = batch.len() as u64;
                    while results.try_recv().is_ok() {
                        dropped += 1;
                    }
                    metrics::counter!(m::MONITOR_DROPPED, "reason" => "shutdown")
                        .increment(dropped);
                    tracing::error!(
                        dropped,
                        transactional_id = self.settings.transactional_id,
                        "Gave up publishing (the shutdown deadline passed, or in group mode the \
                         shard was lost) while Kafka was not taking results; {dropped} results \
                         were dropped (their slots will have no result)."
                    );
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Commits `batch` in one transaction, whatever it takes short of a fatal error or the
    /// shutdown deadline. Records the producer refuses are taken out of it and counted.
    async fn publish(&mut self, batch: &mut Vec<Pending>) -> Result<(), Halt> {
        let mut backoff = backoff();
        'transaction: loop {
            if let Err(e) = self.call(|p| p.begin_transaction()).await? {
                match self.sort(e) {
                    Failure::Fatal(err) => self.recover(err).await?,
                    Failure::Retry | Failure::Abort(_) => self.wait(&mut backoff).await?,
                }
                continue 'transaction;
            }
            self.transaction_started = Some(Instant::now());
            if !self.enqueue(batch).await? {
                self.failing();
                // Why the transaction takes no more records: librdkafka keeps the error that
                // failed it and answers a call made in the wrong state with it (a transaction
                // still open answers "wrong state"). A refusal (no Write ACL on a topic) stops
                // here rather than being aborted and sent again for ever.
                if let Err(e) = self.call(|p| p.begin_transaction()).await?
                    && e.rdkafka_error_code() != Some(RDKafkaErrorCode::State)
                    && let Failure::Fatal(err) = self.sort(e)
                {
                    self.recover(err).await?;
                    continue 'transaction;
                }
                self.abort().await?;
                self.wait(&mut backoff).await?;
                continue 'transaction;
            }
            loop {
                let err = match self.call(|p| p.commit_transaction(CALL_TIMEOUT)).await? {
                    Ok(()) => {
                        self.succeeded();
                        metrics::counter!(m::MONITOR_TRANSACTIONS, "result" => "committed")
                            .increment(1);
                        let results = batch.iter().filter(|p| p.is_result());
                        metrics::counter!(m::MONITOR_PUBLISHED).increment(results.count() as u64);
                        let histogram = metrics::histogram!(m::MONITOR_PUBLISH_LATENCY);
                        for item in batch.iter().filter(|p| p.is_result()) {
                            histogram.record(item.finished.elapsed().as_secs_f64());
                        }
                        return Ok(());
                    }
                    Err(e) => e,
                };
                match self.sort(err) {
                    Failure::Retry => self.wait(&mut backoff).await?,
                    Failure::Abort(error) => {
                        tracing::warn!(
                            error = %error,
                            records = batch.len(),
                            attempt = backoff.attempt() + 1,
                            "Aborting the transaction; the batch will be sent again."
                        );
                        self.abort().await?;
                        metrics::counter!(m::MONITOR_TRANSACTIONS, "result" => "aborted")
                            .increment(1);
                        self.wait(&mut backoff).await?;
                        continue 'transaction;
                    }
                    Failure::Fatal(err) => {
                        self.recover(err).await?;
                        continue 'transaction;
                    }
                }
            }
        }
    }

    /// Aborts the open transaction (a fatal error meanwhile recreates the producer, which
    /// leaves nothing open either).
    async fn abort(&mut self) -> Result<(), Halt> {
        let mut backoff = backoff();
        loop {
            match self.call(|p| p.abort_transaction(CALL_TIMEOUT)).await? {
                Ok(()) => {
                    self.transaction_started = None;
                    return Ok(());
                }
                Err(e) => match self.sort(e) {
                    Failure::Fatal(err) => return self.recover(err).await,
                    Failure::Retry | Failure::Abort(_) => self.wait(&mut backoff).await?,
                },
            }
        }
    }

    /// After a fatal error: a new producer when calls had been failing for longer than the
    /// transaction timeout (the broker was away and has aborted our transaction), otherwise
    /// the error stands (another instance took our transactional.id over).
    async fn recover(&mut self, err: PublishError) -> Result<(), Halt> {
        let age = |t: Option<Instant>| t.map(|t| t.elapsed()).unwrap_or_default();
        let failing = age(self.failing_since);
        let transaction = age(self.transaction_started);
        if !self.settings.recreate_after_outage
            || failing.max(transaction) < self.settings.transaction_timeout
        {
            return Err(err.into());
        }
        tracing::warn!(
            error = %err,
            failing_for = ?failing,
            transaction_age = ?transaction,
            "The transaction outlived the transaction timeout while the broker was away, so the \
             broker has aborted it; recreating the producer (this is an outage, not a fence)."
        );
        metrics::counter!(m::MONITOR_PRODUCER_RESTARTS).increment(1);
        let old = std::mem::replace(&mut self.producer, Arc::new(create(&self.settings)?));
        self.transaction_started = None;
        // Dropping a producer flushes it (up to half a second): KafkaProducer's drop does that
        // on the blocking pool.
        drop(old);
        self.init().await?;
        self.succeeded();
        Ok(())
    }

    /// Puts the batch into the producer's queue, waiting while the queue is full. A record the
    /// producer refuses for itself (larger than `message.max.bytes`) would be refused again: it
    /// is taken out of the batch and counted as dropped. Any other refusal is about the
    /// transaction (it can no longer take records: abortable or fatal), so `false` is returned
    /// with the whole batch kept, and the caller aborts and sends it again.
    async fn enqueue(&mut self, batch: &mut Vec<Pending>) -> Result<bool, Halt> {
        let mut refused = 0u64;
        let mut kept = Vec::with_capacity(batch.len());
        let mut items = std::mem::take(batch).into_iter();
        let mut complete = true;
        while let Some(item) = items.next() {
            loop {
                let record = match (item.marker_partition, &self.settings.shards_topic) {
                    (Some(partition), Some(topic)) => BaseRecord::to(topic)
                        .partition(partition)
                        .key(&item.key)
                        .payload(&item.payload),
                    _ => {
                        let record = BaseRecord::to(&self.settings.topic)
                            .key(&item.key)
                            .payload(&item.payload);
                        match &self.settings.member {
                            Some(member) => record.headers(OwnedHeaders::new().insert(Header {
                                key: MEMBER_HEADER,
                                value: Some(member.as_bytes()),
                            })),
                            None => record,
                        }
                    }
                };
                match self.producer.send(record) {
                    Ok(()) => {
                        kept.push(item);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        if self.give_up.is_cancelled() {
                            kept.push(item);
                            kept.extend(items);
                            *batch = kept;
                            return Err(Halt::GaveUp);
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((
                        e @ KafkaError::MessageProduction(
                            RDKafkaErrorCode::MessageSizeTooLarge
                            | RDKafkaErrorCode::InvalidArgument,
                        ),
                        _,
                    )) => {
                        tracing::warn!(error = %e, key = item.key, bytes = item.payload.len(), "The producer refused a result; dropping it.");
                        refused += 1;
                        break;
                    }
                    Err((e, _)) => {
                        tracing::warn!(error = %e, "The transaction takes no more records; it will be aborted and the batch sent again.");
                        kept.push(item);
                        kept.extend(items.by_ref());
                        complete = false;
                        break;
                    }
                }
            }
        }
        *batch = kept;
        if refused > 0 {
            metrics::counter!(m::MONITOR_DROPPED, "reason" => "refused").increment(refused);
        }
        Ok(complete)
    }

    /// Runs a blocking producer call on the blocking pool; `GaveUp` once the shutdown deadline
    /// has passed (the call itself is left to time out on its thread). A call that hangs
    /// makes the monitor not ready until one succeeds.
    async fn call<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&KafkaProducer) -> Result<T, KafkaError> + Send + 'static,
    ) -> Result<Result<T, KafkaError>, Halt> {
        let producer = self.producer.clone();
        let started = Instant::now();
        let blocking = tokio::task::spawn_blocking(move || f(&producer));
        tokio::pin!(blocking);
        let slow = tokio::time::sleep(SLOW_CALL);
        tokio::pin!(slow);
        let mut marked = false;
        loop {
            tokio::select! {
                joined = &mut blocking => {
                    let result = joined.unwrap_or(Err(KafkaError::Canceled));
                    if result.is_err() {
                        self.failing();
                    }
                    return Ok(result);
                }
                () = &mut slow, if !marked => {
                    marked = true;
                    // The failure began when this call did.
                    self.failing_since.get_or_insert(started);
                    self.failing();
                }
                () = self.give_up.cancelled() => return Err(Halt::GaveUp),
            }
        }
    }

    fn succeeded(&mut self) {
        self.failing_since = None;
        self.transaction_started = None;
        self.ready.store(true, Ordering::Relaxed);
    }

    /// A call failed or hangs: not ready, and the run of failures has a start.
    fn failing(&mut self) {
        self.failing_since.get_or_insert_with(Instant::now);
        self.ready.store(false, Ordering::Relaxed);
    }

    /// Sleeps before the next attempt; `GaveUp` once the shutdown deadline has passed.
    async fn wait(&self, backoff: &mut Backoff) -> Result<(), Halt> {
        if backoff.wait(&self.give_up).await {
            Ok(())
        } else {
            Err(Halt::GaveUp)
        }
    }

    /// Sorts an error into retry, abort-and-redo, or stop.
    fn sort(&self, err: KafkaError) -> Failure {
        let (fatal, retriable, abortable, code) = match &err {
            KafkaError::Transaction(rd) => (
                rd.is_fatal(),
                rd.is_retriable(),
                rd.txn_requires_abort(),
                Some(rd.code()),
            ),
            other => (false, false, true, other.rdkafka_error_code()),
        };
        let transactional_id = self.settings.transactional_id.clone();
        let fenced = matches!(
            code,
            Some(
                RDKafkaErrorCode::Fenced
                    | RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::InvalidProducerEpoch
            )
        );
        // librdkafka makes some ACL refusals abortable, but no abort and retry changes them.
        let refused = code.is_some_and(entity::kafka::acl_refusal);
        if fenced {
            Failure::Fatal(PublishError::Fenced {
                transactional_id,
                source: err,
            })
        } else if fatal || refused {
            Failure::Fatal(PublishError::Fatal {
                transactional_id,
                source: err,
            })
        } else if retriable {
            tracing::warn!(error = %err, "Retriable Kafka error; retrying.");
            Failure::Retry
        } else {
            if !abortable {
                tracing::warn!(error = %err, "Unclassified Kafka error; aborting the transaction.");
            }
            Failure::Abort(err)
        }
    }
}

fn create(settings: &PublisherSettings) -> Result<KafkaProducer, PublishError> {
    settings
        .kafka
        .client_config()
        .set("transactional.id", &settings.transactional_id)
        // A crashed instance's open transaction blocks read_committed readers until this
        // expires (or until the next instance's init_transactions aborts it).
        .set(
            "transaction.timeout.ms",
            settings.transaction_timeout.as_millis().to_string(),
        )
        .set("linger.ms", settings.linger.as_millis().to_string())
        // Retries back off to a quarter of a second at most (librdkafka: a second): a new owner
        // of a shard retries init_transactions while the broker aborts the dead owner's
        // transaction, and every retry's wait is a wait with the shard unwatched.
        .set("retry.backoff.max.ms", "250")
        .set("compression.type", "lz4")
        .create()
        .map_err(PublishError::Create)
        .and_then(KafkaProducer::new)
}

/// 100 ms, doubling, at most 5 s.
fn backoff() -> Backoff {
    Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
}

/// Error-injection tests on librdkafka's mock cluster. It proves nothing about delivery
/// guarantees (it neither fences zombies nor hides aborted records); the real broker's tests do
/// that. Here it only makes the broker answer with the errors we want to see handled.
#[cfg(test)]
mod tests {
    use super::*;
    use entity::{Frequency, Outcome};
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::mocking::MockCluster;
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

    fn pending(n: i32) -> Vec<Pending> {
        (1..=n)
            .map(|id| {
                let now = chrono::Utc::now();
                Pending::new(&ResultEvent::new(
                    id,
                    "http://127.0.0.1/",
                    Frequency::OneMinute,
                    now,
                    now,
                    1,
                    Outcome::Status(200),
                ))
            })
            .collect()
    }

    async fn publish(
        mock: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
        items: Vec<Pending>,
    ) -> Result<(), PublishError> {
        publish_in_batches_of(mock, items, 100).await
    }

    async fn publish_in_batches_of(
        mock: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
        items: Vec<Pending>,
        max_batch: usize,
    ) -> Result<(), PublishError> {
        let settings = PublisherSettings {
            kafka: ClientSettings::plaintext(&mock.bootstrap_servers()),
            topic: "results".into(),
            transactional_id: "test".into(),
            commit_interval: Duration::from_millis(100),
            max_batch,
            transaction_timeout: Duration::from_secs(10),
            init_timeout: CALL_TIMEOUT,
            linger: Duration::from_millis(5),
            member: None,
            shards_topic: None,
            recreate_after_outage: true,
        };
        let ready = Arc::new(AtomicBool::new(false));
        let publisher = Publisher::connect(settings, ready, CancellationToken::new()).await?;
        let (tx, rx) = mpsc::channel(items.len());
        for item in items {
            tx.send(item).await.unwrap();
        }
        drop(tx);
        publisher.run(rx).await
    }

    fn stored_keys(
        mock: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
    ) -> Vec<String> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", mock.bootstrap_servers())
            .set("group.id", "check")
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        consumer.subscribe(&["results"]).unwrap();
        let mut keys = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => keys.push(String::from_utf8_lossy(m.key().unwrap()).into_owned()),
                _ if keys.len() >= 3 => break,
                _ => {}
            }
        }
        keys
    }

    #[tokio::test]
    async fn abortable_produce_error_aborts_and_sends_the_batch_again() {
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("results", 1, 1).unwrap();
        // The first produce request fails for good: the transaction can only be aborted.
        mock.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_RECORD],
        );
        publish(&mock, pending(3)).await.unwrap();
        let mut keys = stored_keys(&mock);
        keys.sort();
        assert_eq!(keys, ["1", "2", "3"]);
    }

    /// Publishes `records` in one batch while every `request` is refused for want of a topic
    /// ACL: the publisher must stop within `deadline` with the brokers' reason and a hint.
    async fn stops_on_a_topic_acl_refusal(
        request: RDKafkaApiKey,
        records: i32,
        deadline: Duration,
    ) {
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("results", 1, 1).unwrap();
        mock.request_errors(
            request,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 50],
        );
        let publishing = publish_in_batches_of(&mock, pending(records), records as usize);
        let error = tokio::time::timeout(deadline, publishing)
            .await
            .expect("stopped, not aborting and sending again")
            .expect_err("refused");
        assert!(error.refusal_hint().is_some(), "{error}");
        assert!(
            error.to_string().contains("Topic authorization failed"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_topic_the_acls_refuse_stops_the_publisher_with_the_reason_instead_of_retrying() {
        // Abortable for librdkafka, but no abort and retry gets past the brokers' ACLs.
        stops_on_a_topic_acl_refusal(RDKafkaApiKey::Produce, 3, Duration::from_secs(20)).await;
    }

    #[tokio::test]
    async fn a_topic_refused_while_a_batch_is_still_being_queued_stops_the_publisher_too() {
        // Adding the partition to the transaction is refused. A batch larger than the
        // producer's queue (100,000 records) cannot be queued whole before that answer: the
        // transaction fails while records are still going in, and the next send says only
        // "wrong state".
        stops_on_a_topic_acl_refusal(
            RDKafkaApiKey::AddPartitionsToTxn,
            120_000,
            Duration::from_secs(30),
        )
        .await;
    }

    #[tokio::test]
    async fn a_record_the_producer_refuses_is_dropped_and_counted_never_published() {
        let metrics = plumbing::metrics_handle();
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("results", 1, 1).unwrap();
        let mut items = pending(3);
        // Larger than the producer's message.max.bytes (1,000,000 by default): refused locally.
        items.insert(
            1,
            Pending {
                key: "99".into(),
                payload: vec![b'x'; 2_000_000],
                finished: Instant::now(),
                target_id: 99,
                marker_partition: None,
            },
        );
        publish(&mock, items).await.unwrap();
        let mut keys = stored_keys(&mock);
        keys.sort();
        assert_eq!(keys, ["1", "2", "3"]);
        let rendered = metrics.render();
        let line = |name: &str| {
            rendered
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("{name} missing from {rendered}"))
                .to_owned()
        };
        assert!(
            line(&format!("{}{{reason=\"refused\"}}", m::MONITOR_DROPPED)).ends_with(" 1"),
            "{rendered}"
        );
    }

    #[tokio::test]
    async fn fenced_producer_stops_with_an_error_that_says_so() {
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("results", 1, 1).unwrap();
        mock.request_errors(
            RDKafkaApiKey::EndTxn,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED],
        );
        let err = publish(&mock, pending(1)).await.unwrap_err();
        assert!(matches!(err, PublishError::Fenced { .. }), "{err}");
        assert!(err.to_string().contains("fenced"), "{err}");
    }
}
