//! Test helpers: a monitor configured for one test (its own database, topic and instance name),
//! targets inserted in SQL, and the results read back from Kafka.

use std::time::Duration;

use clap::Parser;
use entity::ResultEvent;
use entity::testing::{bootstrap_servers, consumer, create_topic, unique};
use migration::testing::TestDb;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::Message;
use worker_monitor::Config;

/// Everything one test needs: a migrated database and a fresh topic.
pub struct World {
    pub db: TestDb,
    pub topic: String,
    pub instance: String,
}

impl World {
    pub async fn new() -> World {
        World {
            db: TestDb::migrated().await,
            topic: create_topic(3).await,
            instance: unique("test"),
        }
    }

    /// The command-line arguments of a monitor for this world, plus `extra` (which wins over
    /// the test defaults for the same flag).
    pub fn args(&self, extra: &[&str]) -> Vec<String> {
        let servers = bootstrap_servers();
        let defaults = [
            ("--database-url", self.db.url.as_str()),
            ("--kafka-bootstrap-servers", servers.as_str()),
            ("--topic", self.topic.as_str()),
            ("--instance", self.instance.as_str()),
            // Fixed mode: these tests are about probing and publishing (tests/group is about
            // group mode).
            ("--shard", "0/1"),
            ("--listen", "127.0.0.1:0"),
            ("--targets-refresh", "200ms"),
            ("--commit-interval", "200ms"),
        ];
        let mut args = vec!["pingpipe-monitor".to_owned()];
        for (flag, value) in defaults {
            if !extra.contains(&flag) {
                args.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    pub fn config(&self, extra: &[&str]) -> Config {
        Config::parse_from(self.args(extra))
    }

    /// Inserts a target and returns its id.
    pub async fn add_target(&self, url: &str, frequency: i32) -> i32 {
        let ids = self
            .db
            .query_strings(&format!(
                "INSERT INTO urltargets (urltarget, monitor_frequency) VALUES ('{url}', {frequency}) \
                 RETURNING urltargets_pk::text"
            ))
            .await;
        ids[0].parse().unwrap()
    }

    /// Reads this world's topic with the given isolation level.
    pub fn reader(&self, isolation_level: &str) -> EventLog {
        EventLog {
            consumer: consumer(&self.topic, isolation_level),
            events: Vec::new(),
        }
    }
}

/// Every result read so far from one consumer.
pub struct EventLog {
    consumer: BaseConsumer,
    pub events: Vec<ResultEvent>,
}

impl EventLog {
    /// Reads what has arrived, without blocking.
    pub fn drain(&mut self) {
        while let Some(message) = self.consumer.poll(Duration::ZERO) {
            let message = message.unwrap();
            let event = ResultEvent::decode(message.payload().unwrap()).unwrap();
            self.events.push(event);
        }
    }

    /// Reads until `done` holds for the events so far; panics after `within`.
    pub async fn wait_for(
        &mut self,
        within: Duration,
        what: &str,
        done: impl Fn(&[ResultEvent]) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            self.drain();
            if done(&self.events) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {within:?} waiting for {what}; got {} events: {:#?}",
                self.events.len(),
                self.events.iter().rev().take(5).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reads until every target of `ids` has `n` results or more; panics after `within`.
    pub async fn wait_for_each(&mut self, within: Duration, ids: &[i32], n: usize) {
        let what = format!("{n} results of every target");
        self.wait_for(within, &what, |events| {
            ids.iter()
                .all(|id| events.iter().filter(|e| e.target_id == *id).count() >= n)
        })
        .await;
    }

    pub fn of(&self, target_id: i32) -> Vec<&ResultEvent> {
        self.events
            .iter()
            .filter(|e| e.target_id == target_id)
            .collect()
    }
}

/// Fails if any (target, slot) appears twice.
pub fn assert_no_duplicate_slots(events: &[ResultEvent]) {
    let mut seen = std::collections::HashSet::new();
    for e in events {
        assert!(
            seen.insert((e.target_id, e.scheduled_at)),
            "slot {} of target {} published twice",
            e.scheduled_at,
            e.target_id
        );
    }
}
