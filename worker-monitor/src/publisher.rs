//! Publishing results through Kafka transactions.
//!
//! One transactional producer per process, its `transactional.id` stable across restarts
//! (instance + shard). Records are sent as they arrive inside an open transaction, which is
//! committed at least every `commit_interval` — many records per transaction, never one. Error
//! handling follows librdkafka's transactional API: a retriable error retries the same call; an
//! abortable one aborts and re-sends the whole batch in a new transaction; a fatal one (above all
//! being fenced by a newer instance with the same id) stops the process.
//!
//! The transactional calls block, so they run on the blocking pool; `&mut self` on every
//! transactional method makes "one open transaction at a time" a compile-time rule.

use std::sync::Arc;
use std::time::{Duration, Instant};

use entity::ResultEvent;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metric_names as m;

type KafkaProducer = ThreadedProducer<DefaultProducerContext>;

/// Timeout of each blocking transactional call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait between attempts after an error.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A result waiting to be published.
#[derive(Debug, Clone)]
pub struct Pending {
    pub key: String,
    pub payload: Vec<u8>,
    /// When its probe finished, for the publish-latency histogram.
    pub finished: Instant,
}

impl Pending {
    pub fn new(event: &ResultEvent) -> Pending {
        Pending {
            key: event.key(),
            payload: event.encode(),
            finished: Instant::now(),
        }
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

/// How the producer is set up.
#[derive(Debug, Clone)]
pub struct PublisherSettings {
    pub bootstrap_servers: String,
    pub topic: String,
    pub transactional_id: String,
    pub commit_interval: Duration,
    /// Most records in one transaction.
    pub max_batch: usize,
}

/// The transactional producer and the batch it is working on.
pub struct Publisher {
    producer: Arc<KafkaProducer>,
    settings: PublisherSettings,
}

enum Failure {
    Retry,
    Abort,
    Fatal(PublishError),
}

impl Publisher {
    /// Creates the producer and runs `init_transactions`, retrying while the broker is not
    /// reachable. A previous instance's unfinished transaction is aborted by this call.
    pub async fn connect(
        settings: PublisherSettings,
        cancel: &CancellationToken,
    ) -> Result<Publisher, PublishError> {
        let producer: KafkaProducer = ClientConfig::new()
            .set("bootstrap.servers", &settings.bootstrap_servers)
            .set("transactional.id", &settings.transactional_id)
            // A crashed instance's open transaction blocks read_committed readers until this
            // expires (or until the next instance's init_transactions aborts it).
            .set("transaction.timeout.ms", "10000")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .create()
            .map_err(PublishError::Create)?;
        let mut publisher = Publisher {
            producer: Arc::new(producer),
            settings,
        };
        let mut attempt = 0u32;
        loop {
            match publisher.call(|p| p.init_transactions(CALL_TIMEOUT)).await {
                Ok(()) => return Ok(publisher),
                Err(e) => match publisher.sort(e) {
                    Failure::Fatal(err) => return Err(err),
                    Failure::Retry | Failure::Abort => {
                        attempt += 1;
                        tokio::select! {
                            () = cancel.cancelled() => return Err(PublishError::Cancelled),
                            () = tokio::time::sleep(backoff(attempt)) => {}
                        }
                    }
                },
            }
        }
    }

    /// Publishes everything `results` yields until it closes, then commits what is left.
    pub async fn run(mut self, mut results: mpsc::Receiver<Pending>) -> Result<(), PublishError> {
        while let Some(first) = results.recv().await {
            let deadline = tokio::time::Instant::now() + self.settings.commit_interval;
            let mut batch = vec![first];
            self.begin_and_send(&batch).await?;
            while batch.len() < self.settings.max_batch {
                match tokio::time::timeout_at(deadline, results.recv()).await {
                    Ok(Some(next)) => {
                        self.enqueue(&next).await;
                        batch.push(next);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            self.commit(&batch).await?;
        }
        Ok(())
    }

    /// Runs a blocking producer call on the blocking pool.
    async fn call<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&KafkaProducer) -> Result<T, KafkaError> + Send + 'static,
    ) -> Result<T, KafkaError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || f(&producer))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
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
        if fenced {
            Failure::Fatal(PublishError::Fenced {
                transactional_id,
                source: err,
            })
        } else if fatal {
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
            Failure::Abort
        }
    }

    /// Puts one record into the producer's queue, waiting while the queue is full.
    async fn enqueue(&mut self, item: &Pending) {
        loop {
            let record = BaseRecord::to(&self.settings.topic)
                .key(&item.key)
                .payload(&item.payload);
            match self.producer.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                // Any other enqueue error resurfaces at commit, which aborts and redoes.
                Err((e, _)) => {
                    tracing::warn!(error = %e, key = item.key, "Record not enqueued.");
                    return;
                }
            }
        }
    }

    /// Begins a transaction and enqueues the batch in it.
    async fn begin_and_send(&mut self, batch: &[Pending]) -> Result<(), PublishError> {
        let mut attempt = 0u32;
        loop {
            match self.call(|p| p.begin_transaction()).await {
                Ok(()) => break,
                Err(e) => match self.sort(e) {
                    Failure::Fatal(err) => return Err(err),
                    Failure::Retry | Failure::Abort => {
                        attempt += 1;
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                },
            }
        }
        for item in batch {
            self.enqueue(item).await;
        }
        Ok(())
    }

    /// Commits the open transaction holding `batch`; on an abortable error aborts it and
    /// redoes the batch in a new one, until it is committed or a fatal error stops us.
    async fn commit(&mut self, batch: &[Pending]) -> Result<(), PublishError> {
        let mut attempt = 0u32;
        loop {
            let err = match self.call(|p| p.commit_transaction(CALL_TIMEOUT)).await {
                Ok(()) => {
                    metrics::counter!(m::MONITOR_TRANSACTIONS, "result" => "committed")
                        .increment(1);
                    metrics::counter!(m::MONITOR_PUBLISHED).increment(batch.len() as u64);
                    let histogram = metrics::histogram!(m::MONITOR_PUBLISH_LATENCY);
                    for item in batch {
                        histogram.record(item.finished.elapsed().as_secs_f64());
                    }
                    return Ok(());
                }
                Err(e) => e,
            };
            attempt += 1;
            match self.sort(err) {
                Failure::Fatal(e) => return Err(e),
                Failure::Retry => tokio::time::sleep(backoff(attempt)).await,
                Failure::Abort => {
                    tracing::warn!(
                        records = batch.len(),
                        attempt,
                        "Aborting the transaction; the batch will be sent again."
                    );
                    self.abort().await?;
                    metrics::counter!(m::MONITOR_TRANSACTIONS, "result" => "aborted").increment(1);
                    tokio::time::sleep(backoff(attempt)).await;
                    self.begin_and_send(batch).await?;
                }
            }
        }
    }

    async fn abort(&mut self) -> Result<(), PublishError> {
        let mut attempt = 0u32;
        loop {
            match self.call(|p| p.abort_transaction(CALL_TIMEOUT)).await {
                Ok(()) => return Ok(()),
                Err(e) => match self.sort(e) {
                    Failure::Fatal(err) => return Err(err),
                    Failure::Retry | Failure::Abort => {
                        attempt += 1;
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                },
            }
        }
    }
}

/// 100 ms, doubling, at most [`MAX_BACKOFF`].
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100)
        .saturating_mul(1 << attempt.min(10))
        .min(MAX_BACKOFF)
}

/// Error-injection tests on librdkafka's mock cluster. It proves nothing about delivery
/// guarantees (it neither fences zombies nor hides aborted records); the real broker's tests do
/// that. Here it only makes the broker answer with the errors we want to see handled.
#[cfg(test)]
mod tests {
    use super::*;
    use entity::{Frequency, Outcome};
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
        let settings = PublisherSettings {
            bootstrap_servers: mock.bootstrap_servers(),
            topic: "results".into(),
            transactional_id: "test".into(),
            commit_interval: Duration::from_millis(100),
            max_batch: 100,
        };
        let publisher = Publisher::connect(settings, &CancellationToken::new()).await?;
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
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
        );
        publish(&mock, pending(3)).await.unwrap();
        let mut keys = stored_keys(&mock);
        keys.sort();
        assert_eq!(keys, ["1", "2", "3"]);
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
