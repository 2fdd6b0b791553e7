//! API benchmark: `make bench-api` (or `cargo bench -p api --bench api`).
//!
//! 10,000 targets and 10,000,000 results generated in SQL (`--results N` to change), the API in
//! this process (release build) over the real PostgreSQL, and a small HTTP/1.1 load generator
//! (keep-alive connections, loopback only). Measures p50/p99 and requests/s for: one target's
//! first page (`first: 100`), a page 1,000,000 rows deep (keyset cursor), `results(frequency: 1,
//! first: 100)`, the dashboard's page of 50 targets (latest result and 30 durations each), and
//! one target's 24-hour stats. Baselines in the same run: the deep page through `OFFSET`
//! pagination, and the dashboard page one node at a time (as before batching), timed in SQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use async_graphql::connection::CursorType;
use clap::Parser;
use migration::testing::TestDb;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const TARGETS: i64 = 10_000;

/// The dashboard's overview page (frontend/public/app.js): 50 targets, each with its latest
/// result and the durations of its last 30.
const DASHBOARD_PAGE: &str = "{ targets(first: 50) { nodes { id url frequency paused \
    latestResult { id httpStatus up failureClass durationMs scheduledAt startTime } \
    results(first: 30) { nodes { durationMs } } } pageInfo { hasNextPage endCursor } } }";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[(((p / 100.0) * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)]
}

/// The API in this process on `db`, pages of at most 100, with `extra` options.
async fn start_api(db: &TestDb, shutdown: &CancellationToken, extra: &[&str]) -> api::Running {
    let mut args = vec![
        "pingpipe-api",
        "--database-url",
        &db.url,
        "--listen",
        "127.0.0.1:0",
        "--max-page",
        "100",
    ];
    args.extend_from_slice(extra);
    api::start(api::Config::parse_from(args), shutdown.clone())
        .await
        .unwrap()
}

/// Prints one row: p50/p99 and requests/s at 1 and at 8 connections.
async fn measure(name: &str, url: &str, body: &Value) {
    let _ = load(url, body, 1, 50).await; // warm up
    let (one, one_rps) = load(url, body, 1, 500).await;
    let (eight, eight_rps) = load(url, body, 8, 4000).await;
    println!(
        "{name:<36} {:>9.2} {:>9.2} {:>12.0} {:>9.2} {:>9.2} {:>12.0}",
        percentile(&one, 50.0),
        percentile(&one, 99.0),
        one_rps,
        percentile(&eight, 50.0),
        percentile(&eight, 99.0),
        eight_rps
    );
}

/// Runs `requests` POSTs of `body` over `connections` keep-alive connections; returns sorted
/// latencies (ms) and requests/s.
async fn load(url: &str, body: &Value, connections: usize, requests: usize) -> (Vec<f64>, f64) {
    let started = Instant::now();
    let per = requests / connections;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (url, body) = (url.to_owned(), body.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut latencies = Vec::with_capacity(per);
            for _ in 0..per {
                let t = Instant::now();
                let response: Value = client
                    .post(&url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert!(response["errors"].is_null(), "{response}");
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let rps = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    (all, rps)
}

#[tokio::main]
async fn main() {
    let mut results: i64 = 10_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--results" {
            results = args.next().unwrap().parse().unwrap();
        }
    }
    let per_target = results / TARGETS;
    let db = TestDb::migrated().await;
    let generated = Instant::now();
    // Bulk load: the indexes are built after the rows, as for any bulk import (the target check
    // is one set-based trigger per statement either way).
    db.exec(&format!(
        "INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency)
             SELECT i, 'http://127.0.0.1/' || i, (ARRAY[1, 1, 1, 5, 10])[1 + i % 5] FROM generate_series(1, {TARGETS}) i;
         SELECT setval('urltargets_seq', {TARGETS});
         ALTER TABLE monitor_results DROP CONSTRAINT monitor_results_target_slot_key;
         DROP INDEX monitor_results_time_idx;
         INSERT INTO monitor_results (urltarget_fk, http_status, failure_class, start_time, duration, scheduled_at, outcome)
             SELECT t, CASE WHEN s % 50 = 0 THEN NULL ELSE 200 END, CASE WHEN s % 50 = 0 THEN 'timeout' END,
                    now() - s * interval '1 minute' + interval '1 second', (s * 7 + t) % 900,
                    now() - s * interval '1 minute', CASE WHEN s % 50 = 0 THEN 'down' ELSE 'up' END
             FROM generate_series(1, {TARGETS}) t, generate_series(1, {per_target}) s;
         ALTER TABLE monitor_results ADD CONSTRAINT monitor_results_target_slot_key UNIQUE (urltarget_fk, scheduled_at);
         CREATE INDEX monitor_results_time_idx ON monitor_results (scheduled_at DESC, monitor_results_pk DESC);
         ANALYZE"
    ))
    .await;
    println!(
        "api benchmark: {TARGETS} targets, {results} results (generated in {:.0} s), {} cores",
        generated.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let shutdown = CancellationToken::new();
    // Every query below runs for real; the read cache gets its own rows at the end.
    let running = start_api(&db, &shutdown, &["--read-cache-entries", "0"]).await;
    let url = format!("http://{}/graphql", running.addr);

    // The cursor 1,000,000 rows deep into view_1m, as the API would have handed it out.
    let depth = 1_000_000.min(results / 2);
    let row = db
        .query_strings(&format!(
            "SELECT (extract(epoch FROM scheduled_at) * 1000)::bigint || ' ' || monitor_results_pk
             FROM view_1m ORDER BY scheduled_at DESC, monitor_results_pk DESC OFFSET {} LIMIT 1",
            depth - 1
        ))
        .await
        .remove(0);
    let (millis, id) = row.split_once(' ').unwrap();
    let deep = api::graphql::types::ResultCursor(api::service::results::After {
        scheduled_at: chrono::DateTime::from_timestamp_millis(millis.parse().unwrap()).unwrap(),
        id: id.parse().unwrap(),
    })
    .encode_cursor();
    let page = "edges { node { id httpStatus failureClass durationMs scheduledAt } } pageInfo { hasNextPage endCursor }";
    let queries: Vec<(&str, Value)> = vec![
        (
            "one target, first page (100)",
            json!({"query": format!("{{ target(id: \"42\") {{ results(first: 100) {{ {page} }} }} }}")}),
        ),
        (
            "results(frequency: 1) 1M deep",
            json!({"query": format!("{{ results(frequency: 1, first: 100, after: \"{deep}\") {{ {page} }} }}")}),
        ),
        (
            "results(frequency: 1, first: 100)",
            json!({"query": format!("{{ results(frequency: 1, first: 100) {{ {page} }} }}")}),
        ),
        (
            "dashboard page (50 targets)",
            json!({"query": DASHBOARD_PAGE}),
        ),
        (
            "one target, 24 h stats",
            json!({"query": "{ target(id: \"42\") { stats(since: \"".to_owned() + &(chrono::Utc::now() - chrono::Duration::hours(24)).to_rfc3339() + "\") { checks up uptimeRatio p50DurationMs p95DurationMs p99DurationMs } } }"}),
        ),
    ];
    println!(
        "{:<36} {:>9} {:>9} {:>12} {:>9} {:>9} {:>12}",
        "query", "p50 ms", "p99 ms", "req/s", "p50 ms", "p99 ms", "req/s"
    );
    println!("{:<36} {:>32} {:>32}", "", "1 connection", "8 connections");
    for (name, body) in &queries {
        measure(name, &url, body).await;
    }

    // The same first page with the read cache on (the default): repeated reads between two
    // changes are answered from it. Nothing changes during the run, so this is its best case.
    let cached = start_api(&db, &shutdown, &[]).await;
    let cached_url = format!("http://{}/graphql", cached.addr);
    // Its LISTEN connection comes up asynchronously and until then nothing is cached: repeat
    // the page until /metrics counts a cache hit.
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        client
            .post(&cached_url)
            .json(&queries[0].1)
            .send()
            .await
            .unwrap();
        let metrics = client
            .get(format!("http://{}/metrics", cached.addr))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics
            .lines()
            .any(|l| l.starts_with(api::cache::HITS) && !l.ends_with(" 0"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the read cache never served a hit"
        );
    }
    measure(
        "first page (100), read cache on",
        &cached_url,
        &queries[0].1,
    )
    .await;
    // As in production, where the ingest worker commits a batch every ~200 ms at 50,000 targets
    // a minute and each commit outdates every cached answer.
    let changes = {
        let conn = db.conn.clone();
        tokio::spawn(async move {
            loop {
                let _ = conn
                    .execute_unprepared(&format!("NOTIFY {}", entity::channels::RESULTS))
                    .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    measure("  … and a change every 200 ms", &cached_url, &queries[0].1).await;
    changes.abort();

    // Baseline: the same deep page with OFFSET, straight in SQL (no HTTP, no GraphQL).
    let mut offset_ms = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        db.query_strings(&format!(
            "SELECT monitor_results_pk::text AS id FROM view_1m ORDER BY scheduled_at DESC, monitor_results_pk DESC OFFSET {depth} LIMIT 100"
        ))
        .await;
        offset_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    offset_ms.sort_by(f64::total_cmp);
    println!(
        "baseline: the {depth}-deep page by OFFSET in SQL alone: p50 {:.0} ms, max {:.0} ms (5 runs)",
        percentile(&offset_ms, 50.0),
        offset_ms.last().unwrap()
    );
    // Baseline: the dashboard page's reads one node at a time, as the API ran them before its
    // nested fields were batched (1 + 2 × 50 statements), in SQL alone (no HTTP, no GraphQL).
    let mut per_node_ms = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let ids = db
            .query_strings(
                "SELECT urltargets_pk::text FROM urltargets ORDER BY urltargets_pk LIMIT 51",
            )
            .await;
        for id in ids.iter().take(50) {
            db.query_strings(&format!(
                "SELECT monitor_results_pk::text FROM monitor_results WHERE urltarget_fk = {id} \
                 ORDER BY scheduled_at DESC LIMIT 1"
            ))
            .await;
            db.query_strings(&format!(
                "SELECT duration::text FROM monitor_results WHERE urltarget_fk = {id} \
                 ORDER BY scheduled_at DESC, monitor_results_pk DESC LIMIT 31"
            ))
            .await;
        }
        per_node_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    per_node_ms.sort_by(f64::total_cmp);
    println!(
        "baseline: the dashboard page one node at a time, 101 statements in SQL alone: p50 {:.2} ms, p99 {:.2} ms (50 runs, 1 connection)",
        percentile(&per_node_ms, 50.0),
        percentile(&per_node_ms, 99.0)
    );
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), running.wait()).await;
    db.drop().await;
}
