//! Notifications (#14) end to end: a real monitor probes loopback sites, results go through
//! Kafka, the ingest worker decides the states and queues notifications in the same
//! transaction, and the notification worker delivers them to fake receivers on loopback.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Uri};
use chrono::{DurationRound, TimeDelta, Utc};
use clap::Parser;
use entity::testing::unique;
use entity::{FailureClass, Frequency, Outcome, ResultEvent};
use tokio_util::sync::CancellationToken;

use crate::helpers::{WAIT, World};
use crate::states::Site;

const KEY: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// (path, headers, body) of every request.
type Log = Arc<Mutex<Vec<(String, HeaderMap, String)>>>;

/// A webhook receiver on loopback that answers 200 and keeps every request.
async fn receiver() -> (String, Log) {
    let log: Log = Arc::default();
    let kept = log.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let kept = kept.clone();
        async move {
            kept.lock().unwrap().push((
                uri.path().to_owned(),
                headers,
                String::from_utf8_lossy(&body).into_owned(),
            ));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, log)
}

/// The changes each path received: (path, target, event), one per change per message.
fn changes(log: &Log) -> Vec<(String, i64, String)> {
    let mut all = Vec::new();
    for (path, _, body) in log.lock().unwrap().iter() {
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        for c in json["data"]["changes"].as_array().unwrap() {
            all.push((
                path.clone(),
                c["target_id"].as_i64().unwrap(),
                c["event"].as_str().unwrap().to_owned(),
            ));
        }
    }
    all
}

impl World {
    async fn webhook_channel(&self, url: &str, signed: bool) -> i64 {
        let secrets = if signed {
            format!("{{\"signing_key\": \"{KEY}\"}}")
        } else {
            "{}".to_owned()
        };
        self.db
            .query_strings(&format!(
                "INSERT INTO notification_channels (name, kind, settings, secrets) \
                 VALUES ('{}', 'webhook', '{{\"url\": \"{url}\"}}', '{secrets}') \
                 RETURNING channel_pk::text",
                unique("channel")
            ))
            .await[0]
            .parse()
            .unwrap()
    }

    /// A route to `channel`: `scope` is `all_targets = true`, `target_ids = '[…]'` or
    /// `tag_filters = '[…]'`.
    async fn route(&self, channel: i64, scope: &str) {
        let (column, value) = scope.split_once(" = ").unwrap();
        self.db
            .exec(&format!(
                "INSERT INTO notification_routes (name, channel_fk, {column}) \
                 VALUES ('{}', {channel}, {value})",
                unique("route")
            ))
            .await;
    }

    /// Waits until nothing waits to be grouped or sent.
    async fn wait_until_notified(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let open = self
                .db
                .query_strings(
                    "SELECT ((SELECT count(*) FROM notification_deliveries \
                              WHERE status = 'pending') \
                           + (SELECT count(*) FROM notifications WHERE delivery_fk IS NULL))::text",
                )
                .await;
            if open == ["0"] {
                return;
            }
            if Instant::now() >= deadline {
                let rows = self
                    .db
                    .query_strings(
                        "SELECT concat_ws(' ', 'delivery', delivery_pk, channel_fk, status, \
                             attempts, due_at, last_status, last_error) \
                         FROM notification_deliveries UNION ALL \
                         SELECT concat_ws(' ', 'notification', notification_pk, channel_fk, \
                             event, delivery_fk) FROM notifications",
                    )
                    .await;
                panic!("{open:?} still open after {WAIT:?}: {rows:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn notify_config(&self, window: &str) -> worker_notify::Config {
        worker_notify::Config::parse_from([
            "pingpipe-notify",
            "--database-url",
            &self.db.url,
            "--listen",
            "127.0.0.1:0",
            "--poll",
            "100ms",
            "--group-window",
            window,
            "--public-url",
            "http://dash.test",
        ])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_going_down_and_back_is_told_once_per_matching_channel() {
    let world = World::with_targets(0).await;
    // Up twice, five failures, then up: DOWN at the third failure, UP after two passes.
    let site = Site::start(|name, n| name != "shop" || !(2..7).contains(&n)).await;
    let shop = world.add_target(&site.url("shop")).await;
    let other = world.add_target(&site.url("other")).await;
    world
        .db
        .exec(&format!(
            "UPDATE urltargets SET tags = '[\"team:pay\"]' WHERE urltargets_pk = {shop}"
        ))
        .await;
    let (base, log) = receiver().await;
    // A hears every target; B hears the shop through two routes (by tag and by id); C hears
    // another team's targets only.
    let a = world.webhook_channel(&format!("{base}/a"), true).await;
    let b = world.webhook_channel(&format!("{base}/b"), false).await;
    let c = world.webhook_channel(&format!("{base}/c"), false).await;
    world.route(a, "all_targets = true").await;
    world.route(b, "tag_filters = '[\"team:pay\"]'").await;
    world.route(b, &format!("target_ids = '[{shop}]'")).await;
    world.route(c, "tag_filters = '[\"team:ops\"]'").await;

    let stop = CancellationToken::new();
    let ingest = worker_ingest::start(world.config(&["--minute", "1s"]), stop.clone())
        .await
        .unwrap();
    let monitor = worker_monitor::start(world.monitor_config(&unique("notify")), stop.clone())
        .await
        .unwrap();
    // Its own token: stopping the monitor and the ingest worker (which share one) must leave it
    // running until it has sent what they queued.
    let notify = worker_notify::start(world.notify_config("1s"), CancellationToken::new())
        .await
        .unwrap();
    world.wait_for_state(shop, "down").await;
    world.wait_for_state(shop, "up").await;
    monitor.shutdown();
    monitor.wait().await.unwrap();
    ingest.shutdown();
    ingest.wait().await.unwrap();
    world.wait_until_notified().await;
    notify.shutdown();
    notify.wait().await.unwrap();

    // Exactly one "down" and one "recovered" per matching channel, nothing about the target
    // that stayed up, nothing on C.
    let mut got = changes(&log);
    got.sort();
    assert_eq!(
        got,
        [
            ("/a".to_owned(), i64::from(shop), "down".to_owned()),
            ("/a".to_owned(), i64::from(shop), "recovered".to_owned()),
            ("/b".to_owned(), i64::from(shop), "down".to_owned()),
            ("/b".to_owned(), i64::from(shop), "recovered".to_owned()),
        ],
        "other = {other}"
    );
    // A's messages are signed; they verify with the Standard Webhooks algorithm.
    let key = worker_notify::signing::SigningKey::parse(KEY).unwrap();
    for (path, headers, body) in log.lock().unwrap().iter() {
        let h = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_owned());
        if path == "/a" {
            let timestamp: i64 = h("webhook-timestamp").unwrap().parse().unwrap();
            assert!(key.verify(
                &h("webhook-id").unwrap(),
                timestamp,
                body.as_bytes(),
                &h("webhook-signature").unwrap()
            ));
        } else {
            assert_eq!(h("webhook-signature"), None);
        }
    }
    // The down names its cause and incident.
    let body: serde_json::Value = serde_json::from_str(
        &log.lock()
            .unwrap()
            .iter()
            .find(|(p, _, b)| p == "/a" && b.contains("\"event\":\"down\""))
            .unwrap()
            .2,
    )
    .unwrap();
    let change = &body["data"]["changes"][0];
    assert_eq!(change["cause"], "status 503");
    let incident = world
        .db
        .query_strings("SELECT incident_pk::text FROM incidents")
        .await;
    assert_eq!(incident, [change["incident_id"].to_string()]);
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_targets_down_within_ten_seconds_arrive_as_a_handful_of_messages() {
    let world = World::with_targets(1000).await;
    let (base, log) = receiver().await;
    let channel = world.webhook_channel(&format!("{base}/storm"), false).await;
    world.route(channel, "all_targets = true").await;
    // Routes and channels removed and added while the storm is decided (as `applyChannels` with
    // prune does): the batches deciding it must not fail for a route that just went.
    let mut churn = world.webhook_channel(&format!("{base}/churn"), false).await;
    world.route(churn, "all_targets = true").await;
    let stop = CancellationToken::new();
    let ingest = worker_ingest::start(world.config(&["--failures-before-down", "1"]), stop.clone())
        .await
        .unwrap();
    let notify = worker_notify::start(world.notify_config("5s"), stop.clone())
        .await
        .unwrap();
    let now = Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap();
    let event = |target: i32, slot, outcome| {
        ResultEvent::new(
            target,
            format!("http://127.0.0.1/{target}"),
            Frequency::OneMinute,
            slot,
            slot,
            5,
            outcome,
        )
    };
    // Every target up first (no event: a first result), then down, a hundred a second.
    let up: Vec<ResultEvent> = world
        .targets
        .iter()
        .map(|t| event(*t, now - TimeDelta::minutes(2), Outcome::Status(200)))
        .collect();
    world.publish(&up, true).await;
    let started = Instant::now();
    for (i, chunk) in world.targets.chunks(100).enumerate() {
        let down: Vec<ResultEvent> = chunk
            .iter()
            .map(|t| {
                event(
                    *t,
                    now - TimeDelta::minutes(1),
                    Outcome::Failure(FailureClass::Timeout),
                )
            })
            .collect();
        world.publish(&down, true).await;
        world
            .db
            .exec(&format!(
                "DELETE FROM notification_routes WHERE channel_fk = {churn}; \
                 DELETE FROM notification_channels WHERE channel_pk = {churn}"
            ))
            .await;
        churn = world.webhook_channel(&format!("{base}/churn"), false).await;
        world.route(churn, "all_targets = true").await;
        let next = Duration::from_secs(i as u64 + 1);
        tokio::time::sleep(next.saturating_sub(started.elapsed())).await;
    }
    assert!(started.elapsed() < Duration::from_secs(12));
    let deadline = Instant::now() + WAIT;
    while changes(&log).len() < 1000 {
        assert!(
            Instant::now() < deadline,
            "{} changes received",
            changes(&log).len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    world.wait_until_notified().await;
    ingest.shutdown();
    ingest.wait().await.unwrap();
    notify.shutdown();
    notify.wait().await.unwrap();

    // Every target's decision was stored (none left out of a batch), one incident each.
    assert_eq!(
        world
            .db
            .query_strings(
                "SELECT count(*)::text FROM target_states WHERE state = 'down' \
                 UNION ALL SELECT count(*)::text FROM incidents"
            )
            .await,
        ["1000", "1000"]
    );
    let got: Vec<(String, i64, String)> = changes(&log)
        .into_iter()
        .filter(|c| c.0 == "/storm")
        .collect();
    let targets: HashSet<i64> = got.iter().map(|c| c.1).collect();
    assert_eq!(got.len(), 1000, "each target's down once");
    assert_eq!(targets.len(), 1000);
    assert!(got.iter().all(|c| c.2 == "down"));
    // A handful of messages: the first at once, then one per 5 s window.
    let messages = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(path, _, _)| path == "/storm")
        .count();
    assert!((2..=5).contains(&messages), "{messages} messages");
    let summaries: HashMap<usize, String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(path, _, _)| path == "/storm")
        .enumerate()
        .map(|(i, (_, _, body))| {
            let json: serde_json::Value = serde_json::from_str(body).unwrap();
            (i, json["data"]["summary"].as_str().unwrap().to_owned())
        })
        .collect();
    assert!(
        summaries
            .values()
            .any(|s| s.ends_with(" down") && s.contains(" targets: ")),
        "{summaries:?}"
    );
    world.db.drop().await;
}
