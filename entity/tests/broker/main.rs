//! The real Kafka broker does what Pingpipe relies on: transactions hide aborted records from
//! `read_committed` consumers, and a second producer with the same `transactional.id` fences the
//! first. Uses `KAFKA_BOOTSTRAP_SERVERS`; every test has its own topic, group and id. The
//! producer and consumer calls block, which a test may do.

// Test helpers may unwrap: a failure is the test's answer (clippy's test exemption covers only #[test] fns).
#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use entity::testing::*;
use entity::{FailureClass, Frequency, Outcome, ResultEvent};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer;

fn event(target_id: i32, outcome: Outcome) -> ResultEvent {
    let slot = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    ResultEvent::new(
        target_id,
        format!("http://127.0.0.1/{target_id}"),
        Frequency::OneMinute,
        slot,
        slot,
        12,
        outcome,
    )
}

#[tokio::test]
async fn read_committed_consumer_sees_committed_records_and_never_aborted_ones() {
    let topic = create_topic(1).await;
    let producer = transactional_producer(&unique("pingpipe-test-txn"));
    let committed = event(1, Outcome::Status(200));
    let aborted = event(2, Outcome::Status(500));
    let committed_later = event(3, Outcome::Failure(FailureClass::Timeout));

    producer.begin_transaction().unwrap();
    send(&producer, &topic, &committed.key(), &committed.encode());
    producer.commit_transaction(TIMEOUT).unwrap();

    // Flushed before the abort, so the aborted record really is in the log.
    producer.begin_transaction().unwrap();
    send(&producer, &topic, &aborted.key(), &aborted.encode());
    producer.flush(TIMEOUT).unwrap();
    producer.abort_transaction(TIMEOUT).unwrap();

    producer.begin_transaction().unwrap();
    send(
        &producer,
        &topic,
        &committed_later.key(),
        &committed_later.encode(),
    );
    producer.commit_transaction(TIMEOUT).unwrap();

    let last_seen = |values: &[Vec<u8>]| values.last() == Some(&committed_later.encode());

    // Read uncommitted, the aborted record is there: the isolation level is what hides it.
    let uncommitted = read_until(&consumer(&topic, "read_uncommitted"), last_seen);
    assert!(uncommitted.contains(&aborted.encode()));

    let seen: Vec<ResultEvent> = read_until(&consumer(&topic, "read_committed"), last_seen)
        .iter()
        .map(|bytes| ResultEvent::decode(bytes).unwrap())
        .collect();
    assert_eq!(seen, vec![committed, committed_later]);
}

#[tokio::test]
async fn second_producer_with_same_transactional_id_fences_the_first() {
    let topic = create_topic(1).await;
    let transactional_id = unique("pingpipe-test-txn");
    let first = transactional_producer(&transactional_id);
    let before = event(1, Outcome::Status(200));
    first.begin_transaction().unwrap();
    send(&first, &topic, &before.key(), &before.encode());
    first.commit_transaction(TIMEOUT).unwrap();

    let second = transactional_producer(&transactional_id);

    let zombie = event(2, Outcome::Status(200));
    let zombie_result = first.begin_transaction().and_then(|()| {
        send(&first, &topic, &zombie.key(), &zombie.encode());
        first.commit_transaction(TIMEOUT)
    });
    let err = zombie_result.expect_err("the first producer must be fenced");
    let KafkaError::Transaction(ref txn_err) = err else {
        panic!("expected a transaction error, got {err}");
    };
    assert!(txn_err.is_fatal(), "fencing must be fatal: {err}");
    assert!(
        matches!(
            txn_err.code(),
            RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced
        ),
        "expected a fencing error, got {err}"
    );

    // The newer instance carries on, and nothing of the zombie's transaction is visible.
    let after = event(3, Outcome::Status(204));
    second.begin_transaction().unwrap();
    send(&second, &topic, &after.key(), &after.encode());
    second.commit_transaction(TIMEOUT).unwrap();
    let seen = read_until(&consumer(&topic, "read_committed"), |values| {
        values.last() == Some(&after.encode())
    });
    assert_eq!(seen, vec![before.encode(), after.encode()]);
}
