//! Re-probes (#13) through the real monitor: a target with `reprobe` whose probe is DOWN is probed
//! once more within the same slot and the slot's result is the second attempt, with the first in
//! `first_attempt`; a target without it is probed once; a delay that would run past the next slot
//! is shortened, and no re-probe is made when nothing fits. What the loopback sites saw is
//! compared with what the results on the real Kafka topic say.

use chrono::{DateTime, Utc};
use entity::{FailureClass, ResultEvent, Verdict};
use tokio_util::sync::CancellationToken;

use crate::WAIT;
use crate::fixture::{self, Fixture};
use crate::helpers::{EventLog, World, assert_no_duplicate_slots};

/// A target of frequency 1 at `path` of `app`, re-probing if `reprobe`.
async fn target(world: &World, app: &Fixture, path: &str, reprobe: bool) -> i32 {
    let id = world.add_target(&app.url(path), 1).await;
    world
        .db
        .exec(&format!(
            "UPDATE urltargets SET reprobe = {reprobe} WHERE urltargets_pk = {id}"
        ))
        .await;
    id
}

/// How many of `seen` fall in the slot of `e`, a period of `period_ms` from `scheduled_at`.
fn in_slot(seen: &[DateTime<Utc>], e: &ResultEvent, period_ms: i64) -> usize {
    seen.iter()
        .filter(|t| {
            let offset = (**t - e.scheduled_at).num_milliseconds();
            (0..period_ms).contains(&offset)
        })
        .count()
}

/// Runs a monitor with `flags` until every target of `ids` has `n` results; returns them (as
/// read before the shutdown, so each slot's requests are over) and the monitor's metrics.
async fn run(world: &World, flags: &[&str], ids: &[i32], n: usize) -> (EventLog, String) {
    let shutdown = CancellationToken::new();
    let running = worker_monitor::start(world.config(flags), shutdown.clone())
        .await
        .unwrap();
    let mut log = world.reader("read_committed");
    log.wait_for_each(WAIT, ids, n).await;
    let metrics = reqwest::get(format!("http://{}/metrics", running.http_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    running.shutdown();
    running.wait().await.unwrap();
    assert_no_duplicate_slots(&log.events);
    (log, metrics)
}

#[tokio::test]
async fn a_down_probe_is_tried_again_in_its_slot_only_for_targets_with_reprobe() {
    let world = World::new().await;
    let app = fixture::serve("127.0.0.1").await;
    let recovers = target(&world, &app, "/flaky/recovers", true).await;
    let stays_down = target(&world, &app, "/down/stays-down", true).await;
    let once = target(&world, &app, "/flaky/once", false).await;

    // A 3 s period, a 1 s timeout and a 300 ms delay: room for both attempts in every slot.
    let flags = [
        "--minute",
        "3s",
        "--probe-timeout",
        "1s",
        "--reprobe-delay",
        "300ms",
    ];
    let (log, metrics) = run(&world, &flags, &[recovers, stays_down, once], 2).await;
    let period = 3000;

    // The site failed the first request of each slot and passed the second: up, the first
    // attempt down, both attempts inside the slot and the delay apart.
    let seen = app.seen("recovers");
    for e in log.of(recovers) {
        assert_eq!(e.verdict(), Verdict::Up, "{e:?}");
        assert_eq!(e.http_status, Some(200), "{e:?}");
        let first = e.first_attempt.as_ref().expect("a first attempt");
        assert_eq!(first.outcome, Verdict::Down, "{e:?}");
        assert_eq!(
            (first.http_status, first.failure_class),
            (Some(503), None),
            "{e:?}"
        );
        let apart = (e.start_time - first.start_time).num_milliseconds();
        assert!((300..period).contains(&apart), "{apart} ms apart: {e:?}");
        assert!(first.start_time >= e.scheduled_at, "{e:?}");
        assert_eq!(in_slot(&seen, e, period), 2, "{e:?}: {seen:?}");
    }
    // Failed both times: down, with the first attempt.
    let seen = app.seen("stays-down");
    for e in log.of(stays_down) {
        assert_eq!(e.verdict(), Verdict::Down, "{e:?}");
        assert_eq!(e.http_status, Some(503), "{e:?}");
        let first = e.first_attempt.as_ref().expect("a first attempt");
        assert_eq!(
            (first.outcome, first.http_status),
            (Verdict::Down, Some(503))
        );
        assert_eq!(in_slot(&seen, e, period), 2, "{e:?}: {seen:?}");
    }
    // Without reprobe: one request per slot, and the site's failures are the results.
    let seen = app.seen("once");
    let verdicts: Vec<Verdict> = log.of(once).iter().map(|e| e.verdict()).collect();
    assert!(verdicts.contains(&Verdict::Down), "{verdicts:?}");
    for e in log.of(once) {
        assert_eq!(e.first_attempt, None, "{e:?}");
        assert_eq!(in_slot(&seen, e, period), 1, "{e:?}: {seen:?}");
    }

    for name in [
        "pingpipe_monitor_reprobes_total{recovered=\"true\"}",
        "pingpipe_monitor_reprobes_total{recovered=\"false\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    world.db.drop().await;
}

#[tokio::test]
async fn a_delay_that_would_run_past_the_next_slot_is_shortened() {
    let world = World::new().await;
    let app = fixture::serve("127.0.0.1").await;
    let id = target(&world, &app, "/flaky/shortened", true).await;

    // A 2 s period and a 1 s timeout: a re-probe must start within the slot's first second,
    // far sooner than the 5 s asked for.
    let flags = [
        "--minute",
        "2s",
        "--probe-timeout",
        "1s",
        "--reprobe-delay",
        "5s",
    ];
    let (log, _) = run(&world, &flags, &[id], 2).await;
    let seen = app.seen("shortened");
    for e in log.of(id) {
        assert_eq!(e.verdict(), Verdict::Up, "{e:?}");
        let first = e.first_attempt.as_ref().expect("a first attempt");
        assert_eq!(first.outcome, Verdict::Down, "{e:?}");
        let started = (e.start_time - e.scheduled_at).num_milliseconds();
        assert!((0..=1000).contains(&started), "{started} ms into the slot");
        assert_eq!(in_slot(&seen, e, 2000), 2, "{e:?}: {seen:?}");
    }
    world.db.drop().await;
}

#[tokio::test]
async fn no_reprobe_is_made_when_the_timeout_leaves_no_room_in_the_period() {
    let world = World::new().await;
    let app = fixture::serve("127.0.0.1").await;
    let id = target(&world, &app, "/flaky/no-room", true).await;

    // A probe may take longer than the 1 s period: a second attempt could never end in time.
    let flags = ["--minute", "1s", "--probe-timeout", "1500ms"];
    let (log, metrics) = run(&world, &flags, &[id], 3).await;
    let seen = app.seen("no-room");
    let events = log.of(id);
    // One request per slot, so the site alternates and so do the results.
    assert!(
        events.iter().any(|e| e.verdict() == Verdict::Down),
        "{events:?}"
    );
    for e in &events {
        assert_eq!(e.first_attempt, None, "{e:?}");
        assert_eq!(e.failure_class, None::<FailureClass>, "{e:?}");
        assert_eq!(in_slot(&seen, e, 1000), 1, "{e:?}: {seen:?}");
    }
    let skipped = "pingpipe_monitor_reprobes_skipped_total{reason=\"no_time\"}";
    assert!(metrics.contains(skipped), "{skipped} missing:\n{metrics}");
    world.db.drop().await;
}
