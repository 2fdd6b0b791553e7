//! Test helpers: an ingest worker configured for one test (its own database, topic and group),
//! events published through real Kafka transactions, and waiting on the database. Shared by the
//! `ingest` and `pg_restart` test binaries, which each use a part of it.
#![allow(dead_code)]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use clap::Parser;
use entity::testing::{bootstrap_servers, create_topic, send, transactional_producer, unique};
use entity::{FailureClass, Frequency, Outcome, ResultEvent};
use migration::testing::TestDb;
use rdkafka::producer::Producer;
use worker_ingest::Config;

pub const WAIT: Duration = Duration::from_secs(60);

pub struct World {
    pub db: TestDb,
    pub topic: String,
    pub group: String,
    /// Ids of the targets inserted by `with_targets`.
    pub targets: Vec<i32>,
}

impl World {
    pub async fn with_targets(n: usize) -> World {
        let db = TestDb::migrated().await;
        let mut targets = Vec::new();
        for i in 0..n {
            let id = db
                .query_strings(&format!(
                    "INSERT INTO urltargets (urltarget, monitor_frequency) \
                     VALUES ('http://127.0.0.1/{i}', 1) RETURNING urltargets_pk::text"
                ))
                .await[0]
                .parse()
                .unwrap();
            targets.push(id);
        }
        World {
            db,
            topic: create_topic(3).await,
            group: unique("ingest-test"),
            targets,
        }
    }

    /// Command-line arguments for an ingest worker of this world, plus `extra`.
    pub fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "pingpipe-ingest".into(),
            "--database-url".into(),
            self.db.url.clone(),
            "--kafka-bootstrap-servers".into(),
            bootstrap_servers(),
            "--topic".into(),
            self.topic.clone(),
            "--group".into(),
            self.group.clone(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--session-timeout".into(),
            "6s".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    pub fn config(&self, extra: &[&str]) -> Config {
        Config::parse_from(self.args(extra))
    }

    /// The store of this world's group and topic, for writing batches by hand.
    pub fn store(&self) -> worker_ingest::store::Store {
        worker_ingest::store::Store::new(
            self.db.conn.clone(),
            self.group.clone(),
            self.topic.clone(),
            self.config(&[]).state_policy(),
            Default::default(),
        )
    }

    /// Publishes raw (key, value) records in one transaction, committed or aborted.
    pub async fn publish_raw(&self, records: Vec<(String, Vec<u8>)>, commit: bool) {
        publish_raw(self.topic.clone(), records, commit).await;
    }

    pub async fn publish(&self, events: &[ResultEvent], commit: bool) {
        let records = events.iter().map(|e| (e.key(), e.encode())).collect();
        self.publish_raw(records, commit).await;
    }
}

/// Publishes raw (key, value) records to `topic` in one transaction, committed or aborted.
pub async fn publish_raw(topic: String, records: Vec<(String, Vec<u8>)>, commit: bool) {
    tokio::task::spawn_blocking(move || {
        let producer = transactional_producer(&unique("ingest-test-txn"));
        producer.begin_transaction().unwrap();
        for (key, value) in &records {
            send(&producer, &topic, key, value);
        }
        if commit {
            producer.commit_transaction(WAIT).unwrap();
        } else {
            // Flushed first, so the aborted records really are in the log.
            producer.flush(WAIT).unwrap();
            producer.abort_transaction(WAIT).unwrap();
        }
    })
    .await
    .unwrap();
}

impl World {
    pub async fn count(&self, table: &str) -> usize {
        self.db
            .query_strings(&format!("SELECT count(*)::text FROM {table}"))
            .await[0]
            .parse()
            .unwrap()
    }

    /// Waits until `table` holds exactly `n` rows; panics after `WAIT` or if it holds more.
    pub async fn wait_for_rows(&self, table: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let count = self.count(table).await;
            assert!(count <= n, "{table} has {count} rows, more than {n}");
            if count == n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{table} has {count} rows after {WAIT:?}, expected {n}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The stored results as comparable text, sorted.
    pub async fn stored(&self) -> Vec<String> {
        let mut rows = self
            .db
            .query_strings(
                "SELECT urltarget_fk || ' ' || (extract(epoch FROM scheduled_at) * 1000)::bigint || ' ' \
                 || (extract(epoch FROM start_time) * 1000)::bigint || ' ' || duration || ' ' \
                 || coalesce(http_status::text, '-') || ' ' || coalesce(failure_class, '-') \
                 FROM monitor_results",
            )
            .await;
        rows.sort();
        rows
    }
}

/// Publishes `events` as committed transactions of `per_txn`, one every `pause`, from one
/// producer, in the background: a continuous stream.
pub fn stream(
    topic: String,
    events: &[ResultEvent],
    per_txn: usize,
    pause: Duration,
) -> tokio::task::JoinHandle<()> {
    let batches: Vec<Vec<ResultEvent>> = events.chunks(per_txn).map(<[_]>::to_vec).collect();
    tokio::task::spawn_blocking(move || {
        let producer = transactional_producer(&unique("ingest-test-stream"));
        for batch in batches {
            producer.begin_transaction().unwrap();
            for event in &batch {
                send(&producer, &topic, &event.key(), &event.encode());
            }
            producer.commit_transaction(WAIT).unwrap();
            std::thread::sleep(pause);
        }
    })
}

/// The same text for events, sorted (times as milliseconds since the epoch).
pub fn expected(events: &[ResultEvent]) -> Vec<String> {
    let ts = |t: DateTime<Utc>| t.timestamp_millis();
    let mut out: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {} {} {}",
                e.target_id,
                ts(e.scheduled_at),
                ts(e.start_time),
                e.duration_ms,
                e.http_status.map_or("-".into(), |s| s.to_string()),
                e.failure_class.map_or("-", |c| c.as_str())
            )
        })
        .collect();
    out.sort();
    out
}

/// `n` distinct events over `targets`, slots one minute apart from `first_slot` onwards.
pub fn events(targets: &[i32], first_slot: usize, n: usize) -> Vec<ResultEvent> {
    let base = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    (0..n)
        .map(|i| {
            let target = targets[i % targets.len()];
            let slot_index = first_slot + i / targets.len();
            let slot = base + chrono::Duration::minutes(slot_index as i64);
            let outcome = match i % 4 {
                0 => Outcome::Status(200),
                1 => Outcome::Status(503),
                2 => Outcome::Failure(FailureClass::Timeout),
                _ => Outcome::Failure(FailureClass::Tls),
            };
            ResultEvent::new(
                target,
                format!("http://127.0.0.1/{target}"),
                Frequency::OneMinute,
                slot,
                slot + chrono::Duration::milliseconds((i % 1000) as i64),
                (i % 5000) as i32,
                outcome,
            )
        })
        .collect()
}

/// Whether `make test` started this `service` (`postgres` or `kafka`) itself: only then may a
/// test restart it. Against an external one the restart tests skip, and `make test` counts them
/// as skipped (see `entity::testing::skip`).
pub fn is_local(service: &str) -> bool {
    let var = match service {
        "postgres" => "PINGPIPE_EXTERNAL_DATABASE",
        _ => "PINGPIPE_EXTERNAL_KAFKA",
    };
    let local = std::env::var(var).is_ok_and(|v| v == "0");
    if !local {
        entity::testing::skip(
            &entity::testing::current_test(),
            &format!("{var} is not 0, so this {service} is not ours to restart"),
        );
    }
    local
}

/// Runs `scripts/<service>.sh <action>` on the local PostgreSQL or Kafka of `make test`
/// (`service` is `postgres` or `kafka`; `action` is `restart`, `down` or `up`), in the
/// background: the restart tests' fault.
pub async fn local(service: &'static str, action: &'static str) {
    tokio::task::spawn_blocking(move || {
        // The checkout being tested (cargo sets this when it runs the test), not the one the
        // binary was compiled in: clones sharing a target dir reuse each other's test binaries.
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
        let script = format!("{dir}/../scripts/{service}.sh");
        let status = std::process::Command::new("bash")
            .args([&script, action])
            .status()
            .unwrap();
        assert!(status.success(), "{action} of the local {service} failed");
    })
    .await
    .unwrap();
}

/// Restarts the local PostgreSQL or Kafka of `make test`.
pub async fn restart_local(service: &'static str) {
    local(service, "restart").await;
}

// Not every test binary that includes this file uses each of them.
#[allow(unused_imports)]
pub use entity::testing::{Process, free_addr, http_status, wait_for_status};

/// A `pingpipe-ingest` process with `args` (without the program name), its stderr kept.
pub fn spawn_ingest(args: &[String]) -> Process {
    Process::spawn(env!("CARGO_BIN_EXE_pingpipe-ingest"), args)
}

/// Every committed record of `topic`, read back with a read_committed consumer until `n`
/// have arrived, as the same sorted text as [`expected`] (undecodable records are an error).
pub async fn committed_events(topic: &str, n: usize) -> Vec<String> {
    let topic = topic.to_owned();
    let values = tokio::task::spawn_blocking(move || {
        let consumer = entity::testing::consumer(&topic, "read_committed");
        entity::testing::read_until(&consumer, |v| v.len() >= n)
    })
    .await
    .unwrap();
    let events: Vec<ResultEvent> = values
        .iter()
        .map(|v| ResultEvent::decode(v).unwrap())
        .collect();
    expected(&events)
}

/// A batch entry for `event`, as if read at `partition`:`offset` (for writing through the store).
pub fn entry(
    event: &ResultEvent,
    partition: i32,
    offset: i64,
) -> (worker_ingest::store::Row, worker_ingest::store::Reject) {
    let origin = worker_ingest::store::Reject {
        partition,
        offset,
        key: Some(event.key().into_bytes()),
        payload: Some(event.encode()),
        reason: String::new(),
    };
    (worker_ingest::store::Row::from(event), origin)
}
