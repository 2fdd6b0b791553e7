//! Ingest benchmark: `make bench-ingest` (or `cargo bench -p worker-ingest --bench ingest`).
//!
//! Runs the real `pingpipe-ingest` binary (release build) against the real Kafka and PostgreSQL,
//! with events for T targets (50,000): F% of them (10) flap — four failing slots in a row of
//! every twenty, an incident opened and resolved each time — and the others fail one slot in
//! fifty (PENDING and back):
//! 1. backlog: the topic is filled with N events (1,000,000), then drained three times into
//!    fresh databases — storing only (`--no-states --no-rollups`), deciding states without
//!    rollups (`--no-rollups`), and as deployed (states and rollups, creating every target's
//!    state) — and each time N more events (later slots) drained into the same database (every
//!    target has its state and rollups, as in a running deployment): rows/s into PostgreSQL,
//!    the worker's peak RSS and CPU time while it drains (and the machine's, all cores), the
//!    states and incidents decided;
//! 2. steady: 2,000 events/s for 20 s — from the producer's commit to the row being committed in
//!    PostgreSQL (seen through the worker's NOTIFY), p50/p99;
//! 3. baseline, the original design: one INSERT and one commit per record, reading the same topic.
//!
//! Options (after `--`): --events N (1000000), --targets T (50000), --flapping F (10),
//! --steady-seconds S (20), --baseline-seconds S (20).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use entity::testing::{
    bootstrap_servers, consumer, create_topic, send, transactional_producer, unique,
};
use entity::{FailureClass, Frequency, Outcome, ResultEvent};
use migration::testing::TestDb;
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use sea_orm::{ConnectionTrait, DbBackend, Statement};

static TARGETS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
/// Percent of the targets that flap (the rest are steady).
static FLAPPING: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

fn targets() -> usize {
    *TARGETS.get().unwrap_or(&50_000)
}

/// The first slot: the next hour, so every result falls in an hour still open (as in steady
/// operation; rows of closed hours are added to their rollups one by one, see the README).
fn base() -> chrono::DateTime<Utc> {
    static BASE: std::sync::OnceLock<chrono::DateTime<Utc>> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| worker_ingest::rollups::hour_of(Utc::now()) + chrono::Duration::hours(1))
}

fn event(i: usize) -> ResultEvent {
    let base = base();
    let target = (i % targets()) as i32 + 1;
    let slot_index = i / targets();
    let slot = base + chrono::Duration::minutes(slot_index as i64);
    // A flapping target fails four slots in a row of every twenty (one incident opened and
    // resolved every twenty minutes); the others fail one slot in fifty (PENDING and back).
    let phase = slot_index + target as usize;
    let flapping = (target as usize % 100) < *FLAPPING.get().unwrap_or(&10);
    let failing = if flapping {
        phase % 20 < 4
    } else {
        phase.is_multiple_of(50)
    };
    let outcome = if failing {
        Outcome::Failure(FailureClass::Timeout)
    } else {
        Outcome::Status(200)
    };
    ResultEvent::new(
        target,
        format!("http://127.0.0.1/{target}"),
        Frequency::OneMinute,
        slot,
        slot,
        42,
        outcome,
    )
}

/// Rows the worker reports written, from its /metrics (cheap, unlike count(*) on a big table).
fn rows_written(addr: std::net::SocketAddr) -> usize {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    let _ = stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text.lines()
        .find(|l| l.starts_with("pingpipe_ingest_rows_written_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as usize)
}

fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(((p / 100.0) * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)]
}

async fn database_with_targets() -> TestDb {
    let db = TestDb::migrated().await;
    db.exec(&format!(
        "INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency) \
         SELECT i, 'http://127.0.0.1/' || i, 1 FROM generate_series(1, {}) i",
        targets()
    ))
    .await;
    db
}

#[tokio::main]
async fn main() {
    let mut n = 1_000_000usize;
    let mut steady_seconds = 20u64;
    let mut baseline_seconds = 20u64;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--events" => n = args.next().unwrap().parse().unwrap(),
            "--targets" => TARGETS.set(args.next().unwrap().parse().unwrap()).unwrap(),
            "--flapping" => FLAPPING.set(args.next().unwrap().parse().unwrap()).unwrap(),
            "--steady-seconds" => steady_seconds = args.next().unwrap().parse().unwrap(),
            "--baseline-seconds" => baseline_seconds = args.next().unwrap().parse().unwrap(),
            _ => {}
        }
    }
    println!(
        "ingest benchmark: {n} events backlog over {} targets ({}% flapping), 6 partitions, {} cores",
        targets(),
        FLAPPING.get().unwrap_or(&10),
        std::thread::available_parallelism().map_or(0, |c| c.get())
    );

    let plain_db = database_with_targets().await;
    let no_rollups_db = database_with_targets().await;
    let db = database_with_targets().await;
    let topic = create_topic(6).await;

    // 1. Fill the topic.
    let fill_started = Instant::now();
    fill(&topic, 0..n).await;
    println!(
        "filled the topic in {:.1} s",
        fill_started.elapsed().as_secs_f64()
    );

    // 2. Drain it with the real worker: first without deciding states, then with them.
    // Each database drains two backlogs: the first into empty tables (with states, every
    // target's state is created), the next n events (later slots, a second topic) into tables
    // that hold the first (every target has its state, as in a running deployment).
    let warm_topic = create_topic(6).await;
    fill(&warm_topic, n..2 * n).await;
    let plain = ["--no-states", "--no-rollups"];
    let (cold_plain, _, child) = drain(&plain_db, &topic, n, &plain).await;
    stop(child).await;
    let (plain_rate, plain_rss, child) = drain(&plain_db, &warm_topic, n, &plain).await;
    stop(child).await;
    plain_db.drop().await;
    let (cold_no_rollups, _, child) = drain(&no_rollups_db, &topic, n, &["--no-rollups"]).await;
    stop(child).await;
    let (no_rollups_rate, no_rollups_rss, child) =
        drain(&no_rollups_db, &warm_topic, n, &["--no-rollups"]).await;
    stop(child).await;
    no_rollups_db.drop().await;
    let (cold_rate, cold_rss, cold_child) = drain(&db, &topic, n, &[]).await;
    stop(cold_child).await;
    let (drain_rate, peak_rss, child) = drain(&db, &warm_topic, n, &[]).await;
    let topic = warm_topic;
    let pid = child.id().unwrap();
    let changes = db
        .conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT (SELECT count(*) FROM incidents), count(*) FROM target_states",
        ))
        .await
        .unwrap()
        .unwrap();
    let (incidents, with_state): (i64, i64) = (
        changes.try_get_by_index(0).unwrap(),
        changes.try_get_by_index(1).unwrap(),
    );
    println!(
        "states: {with_state} targets with a state, {incidents} incidents; first backlog \
         {cold_rate:.0} rows/s with states and rollups vs {cold_no_rollups:.0} without rollups \
         ({:.0}%) vs {cold_plain:.0} storing only ({:.0}%); second backlog {drain_rate:.0} rows/s \
         with states and rollups vs {no_rollups_rate:.0} without rollups ({:.0}%) vs \
         {plain_rate:.0} storing only ({:.0}%); peak RSS {peak_rss:.0} ({cold_rss:.0}) vs \
         {no_rollups_rss:.0} vs {plain_rss:.0} MiB",
        100.0 * cold_rate / cold_no_rollups,
        100.0 * cold_rate / cold_plain,
        100.0 * drain_rate / no_rollups_rate,
        100.0 * drain_rate / plain_rate
    );

    // 3. Steady load: 2,000 events/s as 10 transactions a second; commit → row committed.
    let mut listener = sqlx::postgres::PgListener::connect(&db.url).await.unwrap();
    listener.listen(entity::channels::RESULTS).await.unwrap();
    let seen = tokio::spawn(async move {
        let mut seen: Vec<(i64, Instant)> = Vec::new();
        while let Ok(Ok(note)) = tokio::time::timeout(Duration::from_secs(5), listener.recv()).await
        {
            let at = Instant::now();
            seen.extend(
                note.payload()
                    .split(',')
                    .map(|id| (id.parse::<i64>().unwrap(), at)),
            );
        }
        seen
    });
    let steady_first = (2 * n / targets() + 10) * targets(); // slots after the backlogs'
    let per_txn = 200usize;
    let txns = (steady_seconds * 10) as usize;
    let commits: Vec<(usize, Instant)> = {
        let topic = topic.clone();
        tokio::task::spawn_blocking(move || {
            let producer = transactional_producer(&unique("bench-steady"));
            let tick = Instant::now();
            let mut commits = Vec::new();
            for t in 0..txns {
                let due = tick + Duration::from_millis(100 * t as u64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                producer.begin_transaction().unwrap();
                for k in 0..per_txn {
                    let e = event(steady_first + t * per_txn + k);
                    send(&producer, &topic, &e.key(), &e.encode());
                }
                producer
                    .commit_transaction(Duration::from_secs(30))
                    .unwrap();
                commits.push((t, Instant::now()));
            }
            commits
        })
        .await
        .unwrap()
    };
    let seen = seen.await.unwrap();
    // Which transaction each row came from: its slot says.
    let slots: HashMap<i64, usize> = db
        .conn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT monitor_results_pk, urltarget_fk, (extract(epoch FROM scheduled_at) / 60)::bigint FROM monitor_results",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| {
            let id: i64 = row.try_get_by_index(0).unwrap();
            let target: i32 = row.try_get_by_index(1).unwrap();
            let minute: i64 = row.try_get_by_index(2).unwrap();
            let base_minute = base().timestamp() / 60;
            let i = (minute - base_minute) as usize * targets() + (target as usize - 1);
            (id, i)
        })
        .collect();
    let commit_at: HashMap<usize, Instant> = commits.into_iter().collect();
    let mut latencies: Vec<f64> = seen
        .iter()
        .filter_map(|(id, at)| {
            let i = *slots.get(id)?;
            let t = i.checked_sub(steady_first)? / per_txn;
            let committed = commit_at.get(&t)?;
            Some(at.saturating_duration_since(*committed).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    println!(
        "steady 2,000 events/s for {steady_seconds} s: {} rows; producer commit → row committed p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; peak RSS {:.0} MiB",
        latencies.len(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN),
        entity::testing::peak_rss_mib(pid)
    );
    stop(child).await;

    // Closing the hours the backlogs and the steady load filled (as maintenance does after
    // each hour's end): their rows rolled up in one statement per hour.
    let closing = Instant::now();
    let hours = worker_ingest::rollups::close_hours(&db.conn, base() + chrono::Duration::hours(4))
        .await
        .unwrap();
    let closed = db
        .conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*), coalesce(sum(up + degraded + down), 0)::bigint FROM result_rollups_hourly",
        ))
        .await
        .unwrap()
        .unwrap();
    let (rollups, counted): (i64, i64) = (
        closed.try_get_by_index(0).unwrap(),
        closed.try_get_by_index(1).unwrap(),
    );
    println!(
        "closing {hours} hours: {counted} results into {rollups} hourly rollups in {:.1} s \
         ({:.0} rows/s)",
        closing.elapsed().as_secs_f64(),
        counted as f64 / closing.elapsed().as_secs_f64()
    );

    // 4. Baseline: the original design's consumer, one INSERT and one commit per record.
    let baseline_db = database_with_targets().await;
    baseline_db
        .cover(
            &format!("timestamptz '{}'", base().to_rfc3339()),
            &format!(
                "timestamptz '{}'",
                (base() + chrono::Duration::hours(4)).to_rfc3339()
            ),
            "1 day",
        )
        .await;
    let base_topic = topic.clone();
    let deadline = Duration::from_secs(baseline_seconds);
    let reader = tokio::task::spawn_blocking(move || {
        let c = consumer(&base_topic, "read_committed");
        let mut events = Vec::new();
        let start = Instant::now();
        while events.len() < 200_000 && start.elapsed() < Duration::from_secs(30) {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                events.push(ResultEvent::decode(m.payload().unwrap()).unwrap());
            }
        }
        events
    });
    let pending = reader.await.unwrap();
    let start = Instant::now();
    let mut inserted = 0usize;
    for e in &pending {
        if start.elapsed() >= deadline {
            break;
        }
        baseline_db
            .conn
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO monitor_results (urltarget_fk, http_status, failure_class, start_time, duration, scheduled_at, outcome) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [
                    e.target_id.into(),
                    e.http_status.into(),
                    e.failure_class.map(|c| c.as_str().to_owned()).into(),
                    e.start_time.into(),
                    e.duration_ms.into(),
                    e.scheduled_at.into(),
                    e.verdict().as_str().into(),
                ],
            ))
            .await
            .unwrap();
        inserted += 1;
    }
    let baseline_rate = inserted as f64 / start.elapsed().as_secs_f64();
    println!(
        "baseline (one INSERT + commit per record): {inserted} rows in {:.1} s = {baseline_rate:.0} rows/s",
        start.elapsed().as_secs_f64()
    );
    println!("pingpipe / baseline: {:.1}x", drain_rate / baseline_rate);
    baseline_db.drop().await;
    db.drop().await;
}

/// Drains `topic` (n events) into `db` with the real worker (and `extra` options); its rate
/// (rows/s from its first row), its peak RSS, and the running worker.
async fn drain(
    db: &TestDb,
    topic: &str,
    n: usize,
    extra: &[&str],
) -> (f64, f64, tokio::process::Child) {
    let group = unique("bench-ingest");
    let ops = free_port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pingpipe-ingest"))
        .args([
            "--database-url",
            &db.url,
            "--kafka-bootstrap-servers",
            &bootstrap_servers(),
        ])
        .args([
            "--topic",
            topic,
            "--group",
            &group,
            "--listen",
            &ops.to_string(),
        ])
        .args(extra)
        // The events' slots are in the past: the watch for missing results would mark every
        // target UNKNOWN between results. It is not part of these figures.
        .args(["--unknown-grace", "100000h"])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let machine_before = machine_cpu();
    let started = Instant::now();
    let mut first_row: Option<Instant> = None;
    let mut peak_rss = 0f64;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak_rss = peak_rss.max(entity::testing::peak_rss_mib(pid));
        let c = rows_written(ops);
        if c > 0 && first_row.is_none() {
            first_row = Some(Instant::now());
        }
        if c >= n {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "drain did not finish"
        );
    }
    let total = started.elapsed().as_secs_f64();
    let from_first_row = first_row
        .map_or(total, |t| t.elapsed().as_secs_f64())
        .max(0.001);
    let drain_rate = n as f64 / from_first_row;
    let (worker_cpu, machine) = (cpu_seconds(pid), machine_cpu().since(&machine_before));
    println!(
        "backlog drain {extra:?}: {n} rows in {total:.1} s from the worker's start, \
         {from_first_row:.1} s from its first row = {drain_rate:.0} rows/s; peak RSS {peak_rss:.0} MiB; \
         CPU: the worker {worker_cpu:.1} s, the machine {:.1} s busy of {:.1} s ({:.0}%)",
        machine.0,
        machine.1,
        100.0 * machine.0 / machine.1.max(0.001)
    );
    (drain_rate, peak_rss, child)
}

/// CPU seconds (user and system) process `pid` has used, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / clock_ticks()
}

/// Clock ticks a second (`getconf CLK_TCK`; 100 on Linux unless configured otherwise).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The machine's CPU time so far, busy and total, in seconds (all cores), from `/proc/stat`.
struct MachineCpu {
    busy: f64,
    total: f64,
}

impl MachineCpu {
    /// Busy and total seconds between `before` and this reading.
    fn since(&self, before: &MachineCpu) -> (f64, f64) {
        (self.busy - before.busy, self.total - before.total)
    }
}

fn machine_cpu() -> MachineCpu {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: f64 = ticks.iter().take(8).sum();
    // idle and iowait are the 4th and 5th.
    let idle = ticks.get(3).unwrap_or(&0.0) + ticks.get(4).unwrap_or(&0.0);
    let hz = clock_ticks();
    MachineCpu {
        busy: (total - idle) / hz,
        total: total / hz,
    }
}

/// SIGTERM, and wait for the worker to exit.
async fn stop(mut child: tokio::process::Child) {
    let pid = child.id().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let _ = child.wait().await;
}

/// Fills `topic` with the events `range`, in committed transactions of 20,000.
async fn fill(topic: &str, range: std::ops::Range<usize>) {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let producer = transactional_producer(&unique("bench-fill"));
        for chunk in range.collect::<Vec<_>>().chunks(20_000) {
            producer.begin_transaction().unwrap();
            for i in chunk {
                let e = event(*i);
                loop {
                    match producer.send(
                        rdkafka::producer::BaseRecord::to(&topic)
                            .key(&e.key())
                            .payload(&e.encode()),
                    ) {
                        Ok(()) => break,
                        Err((_, _)) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            }
            producer
                .commit_transaction(Duration::from_secs(120))
                .unwrap();
        }
    })
    .await
    .unwrap();
}
