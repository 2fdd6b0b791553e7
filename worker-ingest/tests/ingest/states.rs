//! Target states and incidents (#13), decided by the ingest worker: from a real monitor probing
//! loopback sites that fail in patterns, through Kafka, into PostgreSQL; through SIGKILLs; and
//! against a rebuild of the same results.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State as AxumState};
use axum::http::StatusCode;
use chrono::{DateTime, TimeZone, Utc};
use clap::Parser;
use entity::state::{Decision, Observation, StateChange, Thresholds, Tracker};
use entity::testing::unique;
use entity::{FailureClass, Frequency, Outcome, ResultEvent, Verdict};
use tokio_util::sync::CancellationToken;

use crate::helpers::{self, WAIT, World};

/// A loopback site whose paths answer by a pattern over their request count: `up(name, n)`
/// says whether the n-th request (from 0) to `/name` gets a 200 (else a 503).
pub(crate) struct Site {
    base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub(crate) type Pattern = fn(&str, usize) -> bool;
type Counts = Arc<Mutex<HashMap<String, usize>>>;

impl Site {
    pub(crate) async fn start(pattern: Pattern) -> Site {
        let counts: Counts = Arc::default();
        let app = Router::new()
            .route(
                "/{name}",
                axum::routing::get(
                    |AxumState((counts, pattern)): AxumState<(Counts, Pattern)>,
                     Path(name): Path<String>| async move {
                        let n = {
                            let mut counts = counts.lock().unwrap();
                            let count = counts.entry(name.clone()).or_default();
                            *count += 1;
                            *count - 1
                        };
                        if pattern(&name, n) {
                            StatusCode::OK
                        } else {
                            StatusCode::SERVICE_UNAVAILABLE
                        }
                    },
                ),
            )
            .with_state((counts, pattern));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Site { base, _stop: stop }
    }

    pub(crate) fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }
}

impl World {
    pub(crate) async fn add_target(&self, url: &str) -> i32 {
        self.db
            .query_strings(&format!(
                "INSERT INTO urltargets (urltarget, monitor_frequency) VALUES ('{url}', 1) \
                 RETURNING urltargets_pk::text"
            ))
            .await[0]
            .parse()
            .unwrap()
    }

    pub(crate) fn monitor_config(&self, instance: &str) -> worker_monitor::Config {
        worker_monitor::Config::parse_from([
            "pingpipe-monitor",
            "--database-url",
            &self.db.url,
            "--kafka-bootstrap-servers",
            &entity::testing::bootstrap_servers(),
            "--topic",
            &self.topic,
            "--instance",
            instance,
            "--shard",
            "0/1",
            "--listen",
            "127.0.0.1:0",
            "--minute",
            "1s",
            "--probe-timeout",
            "800ms",
            "--targets-refresh",
            "200ms",
            "--commit-interval",
            "200ms",
        ])
    }

    async fn results_of(&self, target: i32) -> usize {
        self.db
            .query_strings(&format!(
                "SELECT count(*)::text FROM monitor_results WHERE urltarget_fk = {target}"
            ))
            .await[0]
            .parse()
            .unwrap()
    }

    /// Waits until every target of `targets` has at least `n` results stored.
    async fn wait_for_results(&self, targets: &[i32], n: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        for target in targets {
            loop {
                let stored = self.results_of(*target).await;
                if stored >= n {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "target {target} has {stored} results after {WAIT:?}, expected {n}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    async fn state_of(&self, target: i32) -> Option<String> {
        self.db
            .query_strings(&format!(
                "SELECT state FROM target_states WHERE urltarget_fk = {target}"
            ))
            .await
            .pop()
    }

    pub(crate) async fn wait_for_state(&self, target: i32, state: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let now = self.state_of(target).await;
            if now.as_deref() == Some(state) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "target {target} is {now:?} after {WAIT:?}, expected {state}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every incident, as comparable text: target, opened, confirmed, resolved, the results
    /// that opened and closed it, cause (times in ms since the epoch).
    async fn incidents(&self) -> Vec<String> {
        self.db
            .query_strings(
                "SELECT concat_ws(' ', urltarget_fk, state, \
                     (extract(epoch FROM opened_at) * 1000)::bigint, \
                     (extract(epoch FROM confirmed_at) * 1000)::bigint, \
                     coalesce((extract(epoch FROM resolved_at) * 1000)::bigint::text, 'open'), \
                     opened_by, coalesce(closed_by::text, '-'), coalesce(cause, '-')) \
                 FROM incidents ORDER BY urltarget_fk, opened_at",
            )
            .await
    }

    /// Every target's state row, as comparable text.
    async fn states(&self) -> Vec<String> {
        self.db
            .query_strings(
                "SELECT concat_ws(' ', urltarget_fk, state, state_since, tracker::text) \
                 FROM target_states ORDER BY urltarget_fk",
            )
            .await
    }

    /// One target's stored results, by slot: (result key, slot, outcome).
    async fn slots_of(&self, target: i32) -> Vec<(i64, DateTime<Utc>, String)> {
        self.db
            .query_strings(&format!(
                "SELECT monitor_results_pk || ' ' || (extract(epoch FROM scheduled_at) * 1000)::bigint \
                 || ' ' || outcome FROM monitor_results WHERE urltarget_fk = {target} \
                 ORDER BY scheduled_at"
            ))
            .await
            .iter()
            .map(|line| {
                let parts: Vec<&str> = line.split(' ').collect();
                let ms: i64 = parts[1].parse().unwrap();
                (
                    parts[0].parse().unwrap(),
                    Utc.timestamp_millis_opt(ms).unwrap(),
                    parts[2].to_owned(),
                )
            })
            .collect()
    }
}

impl World {
    /// Waits until the stored positions reach the end of every partition of the topic (past
    /// the last transaction's commit marker, which no consumer reads).
    async fn wait_until_caught_up(&self) {
        let topic = self.topic.clone();
        let ends: Vec<i64> = tokio::task::spawn_blocking(move || {
            use rdkafka::consumer::Consumer;
            let consumer = entity::testing::consumer(&topic, "read_committed");
            (0..3)
                .map(|p| {
                    consumer
                        .fetch_watermarks(&topic, p, Duration::from_secs(10))
                        .unwrap()
                        .1
                })
                .collect()
        })
        .await
        .unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let positions = self
                .db
                .query_strings(
                    "SELECT partition || ' ' || next_offset FROM consumer_positions ORDER BY 1",
                )
                .await;
            let behind = (0..3).any(|p| {
                let stored = positions
                    .iter()
                    .find_map(|line| line.strip_prefix(&format!("{p} ")))
                    .map_or(0, |n| n.parse::<i64>().unwrap());
                ends[p as usize] > 0 && ends[p as usize] - stored > 1
            });
            if !behind {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{positions:?} vs {ends:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Listens for the state changes PostgreSQL announces.
async fn listen(world: &World) -> sqlx::postgres::PgListener {
    let mut listener = sqlx::postgres::PgListener::connect(&world.db.url)
        .await
        .unwrap();
    listener.listen(entity::channels::STATES).await.unwrap();
    listener
}

/// The changes announced so far for `target` (waiting up to 100 ms for more).
async fn changes_of(listener: &mut sqlx::postgres::PgListener, seen: &mut Vec<StateChange>) {
    while let Ok(Ok(Some(n))) =
        tokio::time::timeout(Duration::from_millis(100), listener.try_recv()).await
    {
        let changes = entity::channels::parse_states(n.payload()).unwrap();
        seen.extend(changes);
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_failing_two_slots_of_three_opens_nothing_and_five_in_a_row_open_one_incident() {
    let world = World::with_targets(0).await;
    let site = Site::start(|name, n| match name {
        "flap" => n % 3 == 2,
        "five" => !(2..7).contains(&n),
        _ => true,
    })
    .await;
    let flap = world.add_target(&site.url("flap")).await;
    let five = world.add_target(&site.url("five")).await;
    let mut listener = listen(&world).await;
    let stop = CancellationToken::new();
    let ingest = worker_ingest::start(world.config(&["--minute", "1s"]), stop.clone())
        .await
        .unwrap();
    let monitor = worker_monitor::start(world.monitor_config(&unique("states")), stop.clone())
        .await
        .unwrap();
    // Five: up, up, five failures, then up: resolved after the second up (the 9th result).
    world.wait_for_results(&[flap, five], 15).await;
    monitor.shutdown();
    monitor.wait().await.unwrap();
    ingest.shutdown();
    ingest.wait().await.unwrap();

    // The flapping site never failed three times in a row: no incident, never DOWN.
    let slots = world.slots_of(flap).await;
    let outcomes: String = slots.iter().map(|s| &s.2[..1]).collect();
    assert!(outcomes.contains("dd"), "{outcomes}");
    assert!(!outcomes.contains("ddd"), "{outcomes}");
    let incidents = world.incidents().await;
    assert!(
        !incidents.iter().any(|i| i.starts_with(&format!("{flap} "))),
        "{incidents:?}"
    );
    assert_ne!(world.state_of(flap).await.as_deref(), Some("down"));

    // Five failures in a row: one incident, opened at the first failing slot, confirmed at the
    // third, resolved at the first passing one, after the second.
    let slots = world.slots_of(five).await;
    let outcomes: String = slots.iter().map(|s| &s.2[..1]).collect();
    assert!(outcomes.starts_with("uudddddu"), "{outcomes}");
    let (first_fail, third_fail, first_pass) = (&slots[2], &slots[4], &slots[7]);
    assert_eq!(
        incidents,
        [format!(
            "{five} down {} {} {} {} {} status 503",
            ms(first_fail.1),
            ms(third_fail.1),
            ms(first_pass.1),
            first_fail.0,
            first_pass.0
        )]
    );
    assert_eq!(world.state_of(five).await.as_deref(), Some("up"));

    // Each change was announced once, in order: the five's story, as people saw it.
    let mut seen = Vec::new();
    changes_of(&mut listener, &mut seen).await;
    let story: Vec<String> = seen
        .iter()
        .filter(|c| c.target == five)
        .map(|c| format!("{}>{} {}", c.from.as_str(), c.to.as_str(), ms(c.since)))
        .collect();
    assert_eq!(
        story,
        [
            format!("unknown>up {}", ms(slots[0].1)),
            format!("up>pending {}", ms(first_fail.1)),
            format!("pending>down {}", ms(first_fail.1)),
            format!("down>up {}", ms(first_pass.1)),
        ]
    );
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_stopped_for_three_periods_makes_its_targets_unknown_and_back_without_an_incident()
 {
    let world = World::with_targets(0).await;
    let site = Site::start(|_, _| true).await;
    let target = world.add_target(&site.url("steady")).await;
    let mut listener = listen(&world).await;
    let stop = CancellationToken::new();
    let ingest = worker_ingest::start(
        world.config(&["--minute", "1s", "--unknown-grace", "1s"]),
        stop.clone(),
    )
    .await
    .unwrap();
    let instance = unique("unknown");
    // Its own token: stopping it leaves the ingest worker running.
    let monitor = worker_monitor::start(world.monitor_config(&instance), CancellationToken::new())
        .await
        .unwrap();
    world.wait_for_state(target, "up").await;
    monitor.shutdown();
    monitor.wait().await.unwrap();
    // The ingest worker restarts too, once it has stored everything: with nothing left to read,
    // it still watches.
    world.wait_until_caught_up().await;
    ingest.shutdown();
    ingest.wait().await.unwrap();
    let stop = CancellationToken::new();
    let ingest = worker_ingest::start(
        world.config(&["--minute", "1s", "--unknown-grace", "1s"]),
        stop.clone(),
    )
    .await
    .unwrap();
    // No result for two periods (plus the grace): UNKNOWN, since the first missing slot.
    world.wait_for_state(target, "unknown").await;
    let last = world.slots_of(target).await.last().unwrap().1;
    let since = world
        .db
        .query_strings(&format!(
            "SELECT (extract(epoch FROM state_since) * 1000)::bigint::text FROM target_states \
             WHERE urltarget_fk = {target}"
        ))
        .await;
    assert_eq!(since, [(ms(last) + 1000).to_string()]);
    // Stopped for longer than three periods before it comes back.
    let stopped_at = tokio::time::Instant::now();
    while tokio::time::Instant::now() < stopped_at + Duration::from_secs(3) {
        assert_eq!(world.state_of(target).await.as_deref(), Some("unknown"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let results_before = world.results_of(target).await;
    let monitor = worker_monitor::start(world.monitor_config(&instance), CancellationToken::new())
        .await
        .unwrap();
    world.wait_for_state(target, "up").await;
    assert!(world.results_of(target).await > results_before);
    monitor.shutdown();
    monitor.wait().await.unwrap();
    ingest.shutdown();
    ingest.wait().await.unwrap();
    assert_eq!(world.incidents().await, Vec::<String>::new());
    let mut seen = Vec::new();
    changes_of(&mut listener, &mut seen).await;
    let story: Vec<String> = seen
        .iter()
        .filter(|c| c.target == target)
        .map(|c| format!("{}>{}", c.from.as_str(), c.to.as_str()))
        .take(3)
        .collect();
    assert_eq!(story, ["unknown>up", "up>unknown", "unknown>up"]);
    world.db.drop().await;
}

/// `slots` results per target, each target flapping through runs of pseudo-random verdicts and
/// lengths (1 to 6), slot-major (every target's slot n before any slot n + 1).
fn flapping(targets: &[i32], slots: usize) -> Vec<ResultEvent> {
    let base = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let mut x: u64 = 7;
    let mut verdicts: Vec<Vec<Verdict>> = Vec::new();
    for _ in targets {
        let mut mine = Vec::new();
        while mine.len() < slots {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let v =
                [Verdict::Up, Verdict::Up, Verdict::Down, Verdict::Down][(x >> 33) as usize % 4];
            let len = 1 + (x >> 40) as usize % 6;
            mine.extend(std::iter::repeat_n(v, len));
        }
        verdicts.push(mine);
    }
    let mut events = Vec::new();
    for n in 0..slots {
        for (target, mine) in targets.iter().zip(&verdicts) {
            let slot = base + chrono::Duration::minutes(n as i64);
            let outcome = match mine[n] {
                Verdict::Down if n % 2 == 0 => Outcome::Failure(FailureClass::Timeout),
                Verdict::Down => Outcome::Status(503),
                _ => Outcome::Status(200),
            };
            events.push(ResultEvent::new(
                *target,
                format!("http://127.0.0.1/{target}"),
                Frequency::OneMinute,
                slot,
                slot,
                5,
                outcome,
            ));
        }
    }
    events
}

/// What the tracker decides from `events` in the order given (each target's results as they
/// arrive), as the same text as `World::incidents` without the result keys, which the database
/// assigns.
fn model_incidents(events: &[ResultEvent], thresholds: Thresholds) -> Vec<String> {
    let mut trackers: HashMap<i32, (Tracker, Option<DateTime<Utc>>)> = HashMap::new();
    let mut opened: Vec<(i32, entity::state::Incident)> = Vec::new();
    for (n, e) in events.iter().enumerate() {
        let (tracker, last) = trackers.entry(e.target_id).or_default();
        let cause = match (e.failure_class, e.http_status) {
            (Some(class), _) => Some(class.as_str().to_owned()),
            (None, Some(status)) => Some(format!("status {status}")),
            (None, None) => None,
        };
        let o = Observation {
            slot: e.scheduled_at,
            verdict: e.verdict(),
            cause: (e.verdict() == Verdict::Down).then_some(cause).flatten(),
            result_id: n as i64,
            in_maintenance: false,
        };
        for (_, d) in tracker.apply_in_order(thresholds, *last, [&o]) {
            match d {
                Decision::Opened(i) => opened.push((e.target_id, i)),
                Decision::Resolved(i) => {
                    let found = opened
                        .iter_mut()
                        .find(|(t, o)| *t == e.target_id && o.opened_at == i.opened_at)
                        .unwrap();
                    found.1 = i;
                }
                Decision::Changed { .. } => {}
            }
        }
        *last = Some(last.map_or(e.scheduled_at, |l| l.max(e.scheduled_at)));
    }
    let mut out: Vec<String> = opened
        .iter()
        .map(|(t, i)| {
            format!(
                "{t} down {} {} {} {}",
                ms(i.opened_at),
                ms(i.confirmed_at),
                i.resolved_at.map_or("open".into(), |r| ms(r).to_string()),
                i.cause.clone().unwrap_or("-".into())
            )
        })
        .collect();
    out.sort();
    out
}

/// The incidents' text without the result keys (fields 5 and 6).
fn without_keys(incidents: &[String]) -> Vec<String> {
    let mut out: Vec<String> = incidents
        .iter()
        .map(|i| {
            let f: Vec<&str> = i.splitn(8, ' ').collect();
            [f[0], f[1], f[2], f[3], f[4], f[7]].join(" ")
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_through_five_sigkills_equal_the_model_and_a_rebuild() {
    let world = World::with_targets(20).await;
    let mut all = flapping(&world.targets, 200);
    // A replay repeats some results, and a few arrive after a later slot (a probe that
    // outlived the next one): neither may move a state backwards or count twice.
    let repeats: Vec<ResultEvent> = all.iter().step_by(97).cloned().collect();
    all.extend(repeats);
    let late = all.remove(20 * 50 + 3);
    all.insert(20 * 52, late);
    let producer = helpers::stream(world.topic.clone(), &all, 50, Duration::from_millis(50));
    let spawn = || {
        let args = world.args(&["--instance", "states-crash", "--batch-max", "150"]);
        helpers::spawn_ingest(&args[1..])
    };
    for delay_ms in [150u64, 700, 400, 1000, 250] {
        let before = world.count("monitor_results").await;
        let mut process = spawn();
        let deadline = tokio::time::Instant::now() + WAIT;
        while world.count("monitor_results").await == before && !producer.is_finished() {
            assert!(tokio::time::Instant::now() < deadline, "no progress");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        process.child.start_kill().unwrap();
        process.child.wait().await.unwrap();
    }
    producer.await.unwrap();
    let mut last = spawn();
    world.wait_for_rows("monitor_results", 20 * 200).await;
    // The last batch's decisions are committed with its rows: nothing more to wait for.
    last.child.start_kill().unwrap();
    last.child.wait().await.unwrap();

    // The order the ingest worker saw: each partition's records in log order. A target's
    // records are on one partition, so per target that is the order published.
    let live = world.incidents().await;
    assert_eq!(
        without_keys(&live),
        model_incidents(&all, Thresholds::default())
    );
    assert!(
        live.len() >= 20,
        "the flapping opened too few incidents: {live:?}"
    );
    let live_states = world.states().await;
    assert_eq!(live_states.len(), 20);

    // A rebuild of the same results, by the operator's command: the same incidents (keys and
    // all) and the same states.
    let rebuild = |extra: &[&str]| {
        let mut args = world.args(&[]);
        args.push("rebuild-states".into());
        args.extend(extra.iter().map(|s| s.to_string()));
        std::process::Command::new(env!("CARGO_BIN_EXE_pingpipe-ingest"))
            .args(&args[1..])
            .output()
            .unwrap()
    };
    let out = rebuild(&[]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("{} incidents (0 written, 0 removed)", live.len())),
        "{said}"
    );
    assert_eq!(world.incidents().await, live);
    assert_eq!(world.states().await, live_states);

    // Thresholds changed for one target: a rebuild from a point in its history recomputes its
    // incidents from then on with them, and leaves the others as they were.
    let target = world.targets[3];
    world
        .db
        .query_strings(&format!(
            "UPDATE urltargets SET failures_before_down = 1 WHERE urltargets_pk = {target} \
             RETURNING ''"
        ))
        .await;
    let since = Utc.with_ymd_and_hms(2026, 11, 1, 1, 0, 0).unwrap();
    let out = rebuild(&[
        "--since",
        &since.to_rfc3339(),
        "--target",
        &target.to_string(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let mine: Vec<ResultEvent> = all
        .iter()
        .filter(|e| e.target_id == target)
        .cloned()
        .collect();
    let model = model_incidents(&mine, Thresholds::default());
    let now: Vec<String> = without_keys(&world.incidents().await)
        .into_iter()
        .filter(|i| i.starts_with(&format!("{target} ")))
        .collect();
    let field = |i: &String, n: usize| i.split(' ').nth(n).unwrap().parse::<i64>().ok();
    // Before `since`: as decided live (what had ended by then is kept as it was).
    for i in &model {
        if field(i, 4).is_some_and(|resolved| resolved < ms(since)) {
            assert!(now.contains(i), "{i} kept: {now:?}");
        }
    }
    // From then on: one failure is enough, so each incident is confirmed where it opened, and
    // there are more of them than the live thresholds made.
    let recomputed: Vec<&String> = now
        .iter()
        .filter(|i| field(i, 2).unwrap() >= ms(since))
        .collect();
    let live_after = model
        .iter()
        .filter(|i| field(i, 2).unwrap() >= ms(since))
        .count();
    assert!(recomputed.len() > live_after, "{recomputed:?} vs {model:?}");
    for i in &recomputed {
        assert_eq!(
            field(i, 2),
            field(i, 3),
            "confirmed at its first failure: {i}"
        );
    }
    // The other targets' incidents are untouched.
    let others = |list: &[String]| -> Vec<String> {
        list.iter()
            .filter(|i| !i.starts_with(&format!("{target} ")))
            .cloned()
            .collect()
    };
    assert_eq!(others(&world.incidents().await), others(&live));
    world.db.drop().await;
}

#[tokio::test]
async fn the_watch_for_missing_results_counts_from_a_resume_not_from_the_last_result() {
    let world = World::with_targets(2).await;
    let (old, resumed) = (world.targets[0], world.targets[1]);
    // Both last had a result an hour ago; the second was resumed a moment ago (the API records
    // when it resumes a target).
    let slot = chrono::DateTime::from_timestamp(Utc::now().timestamp() - 3600, 0).unwrap();
    let rows = [old, resumed]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let event = ResultEvent::new(
                *t,
                format!("http://127.0.0.1/{t}"),
                Frequency::OneMinute,
                slot,
                slot,
                5,
                Outcome::Status(200),
            );
            helpers::entry(&event, 0, i as i64)
        })
        .collect();
    let store = world.store();
    assert_eq!(store.position(0).await.unwrap(), 0);
    let batch = worker_ingest::store::Batch {
        rows,
        positions: [(0, (0, 2))].into(),
        ..Default::default()
    };
    store.write(&batch).await.unwrap();
    world
        .db
        .query_strings(&format!(
            "UPDATE urltargets SET resumed_at = now() WHERE urltargets_pk = {resumed} \
             RETURNING ''"
        ))
        .await;
    let silence = states::Silence {
        minute: Duration::from_secs(60),
        grace: Duration::from_secs(30),
    };
    let changes = states::sweep(&world.db.conn, &[0], Utc::now(), silence)
        .await
        .unwrap();
    assert_eq!(
        changes.iter().map(|c| c.target).collect::<Vec<_>>(),
        [old],
        "{changes:?}"
    );
    assert_eq!(changes[0].since, slot + chrono::TimeDelta::minutes(1));
    assert_eq!(world.state_of(resumed).await.as_deref(), Some("up"));
    assert_eq!(world.state_of(old).await.as_deref(), Some("unknown"));
    // Marked once: a second sweep finds nothing more.
    let again = states::sweep(&world.db.conn, &[0], Utc::now(), silence)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    world.db.drop().await;
}
