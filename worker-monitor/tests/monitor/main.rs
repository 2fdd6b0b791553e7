//! The monitor against the real PostgreSQL and Kafka, probing local fixture servers only
//! (loopback). Each test has its own database, topic and transactional.id.

// Test helpers may unwrap: a failure is the test's answer.
#![allow(clippy::unwrap_used)]

mod checks;
mod fixture;
mod helpers;
mod reprobe;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use entity::{FailureClass, Outcome, ResultEvent};
use helpers::{World, assert_no_duplicate_slots};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

pub(crate) const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn each_kind_of_target_yields_one_result_per_slot_with_the_right_outcome() {
    let world = World::new().await;
    let app = fixture::serve("127.0.0.1").await;
    let denied_app = fixture::serve("127.0.0.2").await;
    let closer = fixture::closer().await;
    let refused = fixture::refused();
    let tls = fixture::self_signed_tls().await;

    let cases: Vec<(String, Outcome)> = vec![
        (app.url("/status/200"), Outcome::Status(200)),
        (app.url("/status/404"), Outcome::Status(404)),
        (app.url("/status/500"), Outcome::Status(500)),
        (app.url("/redirect/3"), Outcome::Status(200)),
        (
            app.url("/redirect/9"),
            Outcome::Failure(FailureClass::RedirectLimit),
        ),
        (
            app.url("/loop"),
            Outcome::Failure(FailureClass::RedirectLimit),
        ),
        (
            app.url("/sleep/5000"),
            Outcome::Failure(FailureClass::Timeout),
        ),
        (
            format!("http://{refused}/"),
            Outcome::Failure(FailureClass::Connect),
        ),
        (
            format!("http://{closer}/"),
            Outcome::Failure(FailureClass::Connect),
        ),
        (
            format!("https://{}/", tls.addr),
            Outcome::Failure(FailureClass::Tls),
        ),
        (
            denied_app.url("/status/200"),
            Outcome::Failure(FailureClass::Denied),
        ),
        (
            app.url(&format!("/to?url={}", denied_app.url("/status/200"))),
            Outcome::Failure(FailureClass::Denied),
        ),
    ];
    let mut expected: HashMap<i32, Outcome> = HashMap::new();
    for (url, outcome) in &cases {
        expected.insert(world.add_target(url, 1).await, *outcome);
    }

    // A 2 s minute and a 1 s probe timeout; 127.0.0.2 is denied for this test.
    let config = world.config(&[
        "--minute",
        "2s",
        "--probe-timeout",
        "1s",
        "--deny",
        "127.0.0.2/32",
    ]);
    let shutdown = CancellationToken::new();
    let running = worker_monitor::start(config, shutdown.clone())
        .await
        .unwrap();

    let mut log = world.reader("read_committed");
    let ids: Vec<i32> = expected.keys().copied().collect();
    log.wait_for_each(WAIT, &ids, 2).await;
    running.shutdown();
    running.wait().await.unwrap();
    log.drain();

    assert_no_duplicate_slots(&log.events);
    for (id, outcome) in &expected {
        let events = log.of(*id);
        for e in &events {
            assert_eq!(e.outcome().unwrap(), *outcome, "{}", e.url);
            assert!(e.start_time >= e.scheduled_at, "{e:?}");
        }
        // One result per slot, the slots exactly one period (2 s) apart.
        let mut slots: Vec<_> = events.iter().map(|e| e.scheduled_at).collect();
        slots.sort();
        assert!(
            slots
                .windows(2)
                .all(|w| (w[1] - w[0]).num_milliseconds() == 2000),
            "{slots:?}"
        );
    }
    // The timeout is enforced: the slow target's probes took about a second, not five.
    let slow = expected
        .iter()
        .find(|(_, o)| **o == Outcome::Failure(FailureClass::Timeout))
        .map(|(id, _)| *id)
        .unwrap();
    assert!(
        log.of(slow)
            .iter()
            .all(|e| (900..2500).contains(&e.duration_ms))
    );
    world.db.drop().await;
}

#[tokio::test]
async fn targets_added_while_running_are_probed_in_their_first_period_and_paused_ones_stop() {
    let world = World::new().await;
    let app = fixture::serve("127.0.0.1").await;
    let config = world.config(&["--minute", "1s"]);
    let shutdown = CancellationToken::new();
    let running = worker_monitor::start(config, shutdown.clone())
        .await
        .unwrap();
    let mut log = world.reader("read_committed");

    let added_at = chrono::Utc::now();
    let a = world.add_target(&app.url("/status/200"), 1).await;
    let b = world.add_target(&app.url("/status/204"), 2).await;
    log.wait_for(WAIT, "a first result of the added target", |events| {
        events.iter().any(|e| e.target_id == a)
    })
    .await;
    // Found by the 200 ms refresh, then probed in its first 1 s period.
    let first = log.of(a)[0].scheduled_at;
    assert!(
        (first - added_at).num_milliseconds() <= 200 + 1000 + 500,
        "first slot {first}, added {added_at}"
    );

    world
        .db
        .exec(&format!(
            "UPDATE urltargets SET paused = true WHERE urltargets_pk = {a}"
        ))
        .await;
    let paused_at = chrono::Utc::now();
    // The other target goes on; once it has a slot well after the pause, look at the paused one.
    log.wait_for(
        WAIT,
        "the other target probed 3 s after the pause",
        |events| {
            events
                .iter()
                .any(|e| e.target_id == b && (e.scheduled_at - paused_at).num_milliseconds() > 3000)
        },
    )
    .await;
    let late: Vec<_> = log
        .of(a)
        .into_iter()
        .filter(|e| (e.scheduled_at - paused_at).num_milliseconds() > 1500)
        .collect();
    assert!(late.is_empty(), "paused target still probed: {late:?}");

    running.shutdown();
    running.wait().await.unwrap();
    world.db.drop().await;
}

/// A monitor process of this world, logs captured.
pub(crate) struct Process {
    child: tokio::process::Child,
    stderr: tokio::task::JoinHandle<String>,
}

/// Its log is captured for assertions; set PINGPIPE_TEST_SHOW_LOGS to see it instead.
fn spawn_monitor(world: &World, extra: &[&str]) -> Process {
    spawn_monitor_logging(world, extra, "info")
}

/// [`spawn_monitor`] logging at `level` (`RUST_LOG`).
pub(crate) fn spawn_monitor_logging(world: &World, extra: &[&str], level: &str) -> Process {
    let args = world.args(extra);
    let show = std::env::var_os("PINGPIPE_TEST_SHOW_LOGS").is_some();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pingpipe-monitor"))
        .args(&args[1..])
        .env("RUST_LOG", level)
        .stdout(Stdio::null())
        .stderr(if show {
            Stdio::inherit()
        } else {
            Stdio::piped()
        })
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pipe = child.stderr.take();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text).await;
        }
        text
    });
    Process { child, stderr }
}

impl Process {
    pub(crate) async fn exit(mut self) -> (std::process::ExitStatus, String) {
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the monitor did not exit in time")
            .unwrap();
        (status, self.stderr.await.unwrap())
    }

    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        let ok = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

#[tokio::test]
async fn second_instance_of_the_same_shard_fences_the_first_which_exits_non_zero() {
    let world = World::new().await;
    let app = fixture::serve("127.0.0.1").await;
    world.add_target(&app.url("/status/200"), 1).await;
    let mut log = world.reader("read_committed");

    let first = spawn_monitor(&world, &["--minute", "1s", "--shard", "0/1"]);
    log.wait_for(WAIT, "the first instance's results", |events| {
        !events.is_empty()
    })
    .await;
    let second = spawn_monitor(&world, &["--minute", "1s", "--shard", "0/1"]);

    let (status, stderr) = first.exit().await;
    assert!(!status.success(), "the zombie must exit non-zero");
    assert!(stderr.contains("fenced"), "no clear message: {stderr}");
    assert!(stderr.contains("shard-0-of-1"), "{stderr}");

    // The newer instance carries on.
    let before = log.events.len();
    log.wait_for(WAIT, "results of the second instance", |events| {
        events.len() > before + 2
    })
    .await;
    assert_no_duplicate_slots(&log.events);
    second.signal("-TERM");
    let (status, _) = second.exit().await;
    assert!(status.success());
    world.db.drop().await;
}

#[tokio::test]
async fn kill_9_mid_transaction_hides_that_batch_and_duplicates_nothing() {
    let world = World::new().await;
    let app = fixture::serve("127.0.0.1").await;
    for i in 0..5 {
        world
            .add_target(&app.url(&format!("/status/20{i}")), 1)
            .await;
    }
    let mut committed = world.reader("read_committed");
    let mut everything = world.reader("read_uncommitted");
    // Long transactions, so that the kill lands inside one.
    let flags = ["--minute", "1s", "--commit-interval", "3s"];
    let first = spawn_monitor(&world, &flags);

    committed
        .wait_for(WAIT, "a committed batch", |e| !e.is_empty())
        .await;
    // Records in the log beyond what is committed: a transaction is open with data in it.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        committed.drain();
        everything.drain();
        if everything.events.len() > committed.events.len() + 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no open transaction seen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.signal("-KILL");
    let _ = first.exit().await;

    // The restarted instance aborts the dead one's transaction and carries on.
    let second = spawn_monitor(&world, &flags);
    let before = committed.events.len();
    committed
        .wait_for(WAIT, "results after the restart", |e| {
            e.len() >= before + 10
        })
        .await;
    second.signal("-TERM");
    let (status, _) = second.exit().await;
    assert!(status.success());
    committed.drain();
    everything.drain();

    let aborted: Vec<&ResultEvent> = everything
        .events
        .iter()
        .filter(|e| !committed.events.contains(e))
        .collect();
    assert!(
        !aborted.is_empty(),
        "the kill should have left an aborted batch"
    );
    assert_no_duplicate_slots(&committed.events);
    world.db.drop().await;
}

#[tokio::test]
async fn sigterm_finishes_in_flight_probes_commits_them_and_exits_zero() {
    let world = World::new().await;
    let app = fixture::serve("127.0.0.1").await;
    for _ in 0..4 {
        // Distinct URLs (unique per frequency), each answering after 600 ms.
        let n = world
            .db
            .query_strings("SELECT count(*)::text FROM urltargets")
            .await[0]
            .clone();
        world
            .add_target(&app.url(&format!("/sleep/600?n={n}")), 1)
            .await;
    }
    let process = spawn_monitor(&world, &["--minute", "1s", "--probe-timeout", "900ms"]);
    let counters = app.counters.clone();
    let deadline = tokio::time::Instant::now() + WAIT;
    // Wait for a moment with probes in flight: started by the server, not yet answered.
    while counters.started.load(std::sync::atomic::Ordering::SeqCst)
        <= counters.finished.load(std::sync::atomic::Ordering::SeqCst)
        || counters.finished.load(std::sync::atomic::Ordering::SeqCst) < 4
    {
        assert!(tokio::time::Instant::now() < deadline, "no probe in flight");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    process.signal("-TERM");
    let (status, stderr) = process.exit().await;
    assert!(status.success(), "{stderr}");

    let started = counters.started.load(std::sync::atomic::Ordering::SeqCst);
    let mut log = world.reader("read_committed");
    log.wait_for(WAIT, "one committed result per request served", |events| {
        events.len() >= started
    })
    .await;
    assert_eq!(
        log.events.len(),
        started,
        "every probe the server saw is committed, once"
    );
    assert!(
        log.events
            .iter()
            .all(|e| e.outcome().unwrap() == Outcome::Status(200))
    );
    world.db.drop().await;
}

#[tokio::test]
async fn two_shards_probe_every_target_exactly_once_and_report_metrics() {
    let world = World::new().await;
    let app = fixture::serve("127.0.0.1").await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(
            world
                .add_target(&app.url(&format!("/status/200?i={i}")), 1)
                .await,
        );
    }
    let shutdown = CancellationToken::new();
    let first = worker_monitor::start(
        world.config(&["--minute", "1s", "--shard", "0/2"]),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let second = worker_monitor::start(
        world.config(&["--minute", "1s", "--shard", "1/2"]),
        shutdown.clone(),
    )
    .await
    .unwrap();
    assert_ne!(first.transactional_id, second.transactional_id);

    let mut log = world.reader("read_committed");
    log.wait_for_each(WAIT, &ids, 3).await;

    let client = reqwest::Client::new();
    let get = |path: &str| {
        client
            .get(format!("http://{}{path}", first.http_addr))
            .send()
    };
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    for name in [
        "pingpipe_monitor_probes_total{outcome=\"2xx\",verdict=\"up\"}",
        "pingpipe_monitor_schedule_lag_seconds_bucket",
        "pingpipe_monitor_transactions_total{result=\"committed\"}",
        "pingpipe_monitor_publish_latency_seconds_bucket",
        "pingpipe_monitor_probes_in_flight",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }

    shutdown.cancel();
    first.wait().await.unwrap();
    second.wait().await.unwrap();
    log.drain();
    // Both shards ran side by side: a target probed by both would show a slot twice.
    assert_no_duplicate_slots(&log.events);
    world.db.drop().await;
}

/// A monitor that was only idle (no result for longer than the transaction timeout) and then
/// finds its transactional.id taken over is a zombie, not a survivor of a broker outage: it
/// stops, and the instance that took over keeps publishing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_zombie_is_fenced_not_mistaken_for_a_broker_outage() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use worker_monitor::publisher::{Pending, PublishError, Publisher, PublisherSettings};

    let world = World::new().await;
    let settings = PublisherSettings {
        kafka: entity::kafka::ClientSettings::plaintext(&entity::testing::bootstrap_servers()),
        topic: world.topic.clone(),
        transactional_id: entity::testing::unique("idle-zombie"),
        commit_interval: Duration::from_millis(100),
        max_batch: 100,
        transaction_timeout: Duration::from_secs(10),
        init_timeout: Duration::from_secs(30),
        linger: Duration::from_millis(5),
        member: None,
        shards_topic: None,
        recreate_after_outage: true,
    };
    let result = |id: i32| {
        let now = chrono::Utc::now();
        Pending::new(&ResultEvent::new(
            id,
            "http://127.0.0.1/",
            entity::Frequency::OneMinute,
            now,
            now,
            1,
            Outcome::Status(200),
        ))
    };
    let start = || {
        let settings = settings.clone();
        async move {
            let publisher = Publisher::connect(
                settings,
                Arc::new(AtomicBool::new(false)),
                CancellationToken::new(),
            )
            .await
            .unwrap();
            let (tx, rx) = tokio::sync::mpsc::channel(10);
            (tx, tokio::spawn(publisher.run(rx)))
        }
    };
    let mut log = world.reader("read_committed");
    let (old, old_task) = start().await;
    old.send(result(1)).await.unwrap();
    log.wait_for(WAIT, "the first instance's result", |e| e.len() == 1)
        .await;
    // Idle for longer than the transaction timeout: the situation of the question.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let (new, new_task) = start().await;
    new.send(result(2)).await.unwrap();
    log.wait_for(WAIT, "the second instance's result", |e| e.len() == 2)
        .await;
    // The old one wakes up with a result: fenced, it stops instead of fencing the new one.
    old.send(result(3)).await.unwrap();
    let err = tokio::time::timeout(WAIT, old_task)
        .await
        .expect("the zombie did not stop")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err,
            PublishError::Fenced { .. } | PublishError::Fatal { .. }
        ),
        "{err}"
    );
    new.send(result(4)).await.unwrap();
    log.wait_for(WAIT, "the second instance's next result", |e| {
        e.iter().any(|r| r.target_id == 4)
    })
    .await;
    drop(new);
    new_task.await.unwrap().unwrap();
    assert!(
        log.events.iter().all(|e| e.target_id != 3),
        "the zombie's result was committed"
    );
    world.db.drop().await;
}
