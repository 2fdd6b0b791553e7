//! API benchmark: `make bench-api` (or `cargo bench -p api --bench api`).
//!
//! 10,000 targets and 10,000,000 results generated in SQL (`--results N` to change), the API in
//! this process (release build) over the real PostgreSQL, and a small HTTP/1.1 load generator
//! (keep-alive connections, loopback only). Measures p50/p99 and requests/s for: one target's
//! first page (`first: 100`), a page 1,000,000 rows deep (keyset cursor), `results(frequency: 1,
//! first: 100)`, the dashboard's page of 50 targets (latest result and 30 durations each), and
//! one target's 24-hour stats. Baselines in the same run: the deep page through `OFFSET`
//! pagination, and the dashboard page one node at a time (as before batching), timed in SQL.
//!
//! Then history at scale (#16; `--skip-history` to leave it out): 50,000 targets
//! (`--history-targets`) with states, 30 days of hourly rollups for each (`--rollup-days`; the
//! closed days' daily rollups too) and 3 days of raw results at 1/min for 2,000 of them
//! (`--raw-targets`, `--raw-days`), generated in SQL, in daily partitions (`--history-only`: this
//! part alone). Autovacuum is off for the generated rollups (analysed once): the measurements
//! are of the queries, not of a vacuum of 36 million fresh rows running beside them. Measures the
//! dashboard's first page (50 targets sorted by state, each with its latest result and a 24-hour
//! sparkline series), the same by id, one target's series over 90 days and its stats over 30 —
//! with the baseline beside them: the sparkline as the dashboard drew it before (each target's
//! last 30 raw results), and the 30-day stats from raw rows.

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

/// Prints one row: p50/p99 and requests/s at 1 and at 8 connections; `body` is POSTed
/// (GraphQL), or without one the URL is fetched with GET and must answer 200.
async fn measure(name: &str, url: &str, body: Option<&Value>) {
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

/// The table's head, then a row per query (see [`measure`]).
async fn measure_all(url: &str, queries: &[(&str, Value)]) {
    println!(
        "{:<36} {:>9} {:>9} {:>12} {:>9} {:>9} {:>12}",
        "query", "p50 ms", "p99 ms", "req/s", "p50 ms", "p99 ms", "req/s"
    );
    println!("{:<36} {:>32} {:>32}", "", "1 connection", "8 connections");
    for (name, body) in queries {
        measure(name, url, Some(body)).await;
    }
}

/// Runs `requests` POSTs of `body` over `connections` keep-alive connections; returns sorted
/// latencies (ms) and requests/s.
async fn load(
    url: &str,
    body: Option<&Value>,
    connections: usize,
    requests: usize,
) -> (Vec<f64>, f64) {
    let started = Instant::now();
    let per = requests / connections;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (url, body) = (url.to_owned(), body.cloned());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut latencies = Vec::with_capacity(per);
            for _ in 0..per {
                let t = Instant::now();
                let request = match &body {
                    Some(body) => client.post(&url).json(body),
                    None => client.get(&url),
                };
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200, "{url}");
                let response: Value = response.json().await.unwrap();
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
    let mut history = History {
        targets: 50_000,
        rollup_days: 30,
        raw_targets: 2_000,
        raw_days: 3,
    };
    let mut skip_history = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap().parse::<i64>().unwrap();
        match flag.as_str() {
            "--results" => results = value(),
            "--history-targets" => history.targets = value(),
            "--rollup-days" => history.rollup_days = value(),
            "--raw-targets" => history.raw_targets = value(),
            "--raw-days" => history.raw_days = value(),
            "--skip-history" => skip_history = true,
            "--history-only" => {
                history_at_scale(&history).await;
                return;
            }
            _ => {}
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
    measure_all(&url, &queries).await;

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
        Some(&queries[0].1),
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
    measure(
        "  … and a change every 200 ms",
        &cached_url,
        Some(&queries[0].1),
    )
    .await;
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
    if !skip_history {
        history_at_scale(&history).await;
    }
}

/// The sizes of the history benchmark.
struct History {
    targets: i64,
    rollup_days: i64,
    raw_targets: i64,
    raw_days: i64,
}

/// The new dashboard's first page (frontend/public/app.js): 50 targets in the chosen order,
/// each with its state, its latest result and a 24-hour sparkline (hourly points).
fn dashboard_first_page(order: &str, since: &str) -> Value {
    json!({"query": format!(
        "{{ targets(first: 50, orderBy: {order}) {{ nodes {{ id url frequency paused state stateSince tags \
           latestResult {{ id httpStatus up outcome failureClass durationMs scheduledAt startTime }} \
           series(since: \"{since}\", buckets: 24) {{ points {{ at checks failures avgMs }} }} }} \
           pageInfo {{ hasNextPage endCursor }} }} }}"
    )})
}

/// The benchmark's status page: this many targets, this many days of bars.
const STATUS_TARGETS: i64 = 100;
const STATUS_DAYS: i64 = 90;

async fn history_at_scale(h: &History) {
    let db = TestDb::migrated().await;
    let generated = Instant::now();
    let hist_columns = entity::rollup::bucket_columns();
    // Durations spread over four buckets (10 + 30 + 15 + 5 = 60 checks an hour).
    let zeros = |skip: &[&str]| -> String {
        entity::rollup::column_names()
            .iter()
            .map(|c| {
                if skip.contains(&c.as_str()) {
                    "x".to_owned()
                } else {
                    "0".to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let hourly_hist = zeros(&["le_50", "le_100", "le_150", "le_200"])
        .replacen('x', "10", 1)
        .replacen('x', "30", 1)
        .replacen('x', "15", 1)
        .replacen('x', "5", 1);
    let daily_hist = zeros(&["le_50", "le_100", "le_150", "le_200"])
        .replacen('x', "240", 1)
        .replacen('x', "720", 1)
        .replacen('x', "360", 1)
        .replacen('x', "120", 1);
    let (targets, days, raw_targets, raw_days) =
        (h.targets, h.rollup_days, h.raw_targets, h.raw_days);
    // The `days` closed days before the watermark's day, with daily rollups for targets 1 to
    // `targets` (those it has not yet).
    let closed_days = |days: i64, targets: i64| {
        format!(
            "INSERT INTO rollup_days (day)
                 SELECT d FROM (SELECT date_bin('1 day', closed_until, timestamptz '2000-01-01Z') AS today FROM rollup_watermark) w,
                      generate_series(w.today - interval '{days} days', w.today - interval '1 day', interval '1 day') d
                 ON CONFLICT DO NOTHING;
             INSERT INTO result_rollups_daily (urltarget_fk, bucket_at, up, degraded, down, duration_min,
                                               duration_sum, duration_max, {hist_columns})
                 SELECT t, d.day, 1368, 24, 48, 20, 129600, 400, {daily_hist}
                 FROM rollup_days d, generate_series(1, {targets}) t
                 ON CONFLICT DO NOTHING"
        )
    };
    db.exec(&format!(
        "INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency, tags)
             SELECT i, 'http://127.0.0.1/h' || i, 1,
                    CASE WHEN i % 4 = 0 THEN '[\"env:prod\"]'::jsonb ELSE '[\"env:test\"]'::jsonb END
             FROM generate_series(1, {targets}) i;
         SELECT setval('urltargets_seq', {targets});
         INSERT INTO target_states (urltarget_fk, state, state_since)
             SELECT i, (ARRAY['up', 'up', 'up', 'up', 'degraded', 'down', 'pending', 'unknown'])[1 + i % 8],
                    now() - (i % 1000) * interval '1 minute'
             FROM generate_series(1, {targets}) i;
         SELECT monitor_results_drop_partition(name) FROM result_partitions;
         DELETE FROM result_retention;
         SELECT monitor_results_cover(t, interval '1 day')
             FROM generate_series(now() - interval '{raw_days} days' - interval '1 day', now() + interval '1 day',
                                  interval '1 hour') t;
         ALTER TABLE monitor_results DROP CONSTRAINT monitor_results_target_slot_key;
         DROP INDEX monitor_results_time_idx;
         INSERT INTO monitor_results (urltarget_fk, http_status, failure_class, start_time, duration, scheduled_at, outcome)
             SELECT t, CASE WHEN m % 50 = 0 THEN NULL ELSE 200 END, CASE WHEN m % 50 = 0 THEN 'timeout' END,
                    s, (m * 7 + t) % 900, s, CASE WHEN m % 50 = 0 THEN 'down' ELSE 'up' END
             FROM generate_series(1, {raw_targets}) t, generate_series(0, {raw_days} * 1440 - 1) m,
                  LATERAL (SELECT date_bin('1 minute', now(), timestamptz '2000-01-01Z') - m * interval '1 minute') x(s);
         ALTER TABLE monitor_results ADD CONSTRAINT monitor_results_target_slot_key UNIQUE (urltarget_fk, scheduled_at);
         CREATE INDEX monitor_results_time_idx ON monitor_results (scheduled_at DESC, monitor_results_pk DESC);
         ALTER TABLE result_rollups_hourly SET (autovacuum_enabled = false);
         ALTER TABLE result_rollups_hourly DROP CONSTRAINT result_rollups_hourly_pkey;
         DROP INDEX result_rollups_hourly_time_idx;
         ALTER TABLE result_rollups_hourly DROP CONSTRAINT result_rollups_hourly_urltarget_fk_fkey;
         -- Hour after hour, as closing the hours writes them (each hour's rows together).
         INSERT INTO result_rollups_hourly (urltarget_fk, bucket_at, up, degraded, down, duration_min,
                                            duration_sum, duration_max, {hist_columns})
             SELECT t, w.w - hr * interval '1 hour', 57, 1, 2, 20, 5400, 400, {hourly_hist}
             FROM (SELECT closed_until AS w FROM rollup_watermark) w,
                  generate_series({days} * 24, 1, -1) hr, generate_series(1, {targets}) t;
         ALTER TABLE result_rollups_hourly ADD CONSTRAINT result_rollups_hourly_pkey PRIMARY KEY (urltarget_fk, bucket_at);
         CREATE INDEX result_rollups_hourly_time_idx ON result_rollups_hourly (bucket_at);
         ALTER TABLE result_rollups_hourly ADD CONSTRAINT result_rollups_hourly_urltarget_fk_fkey
             FOREIGN KEY (urltarget_fk) REFERENCES urltargets (urltargets_pk) ON DELETE CASCADE;
         {closed_days};
         ANALYZE",
        closed_days = closed_days(days, targets)
    ))
    .await;
    // The status page: 100 targets with names, 90 days of daily rollups for them (60 more days
    // closed before the 30 above), an incident each in the last 14 days (every tenth still
    // open), and a weekly maintenance window on a quarter of them.
    db.exec(&format!(
        "{closed_days};
         INSERT INTO incidents (urltarget_fk, cause, opened_at, confirmed_at, resolved_at, opened_by, closed_by)
             SELECT t, 'timeout', now() - (t % 14) * interval '1 day' - interval '2 hours',
                    now() - (t % 14) * interval '1 day' - interval '2 hours',
                    CASE WHEN t % 10 = 0 THEN NULL ELSE now() - (t % 14) * interval '1 day' - interval '1 hour' END,
                    1, CASE WHEN t % 10 = 0 THEN NULL ELSE 2 END
             FROM generate_series(1, {STATUS_TARGETS}) t;
         INSERT INTO maintenance_windows (name, cron, time_zone, duration_seconds, tag_filters)
             VALUES ('weekly patching', '0 3 * * SUN', 'Europe/Berlin', 3600, '[\"env:prod\"]');
         INSERT INTO status_pages (slug, title, public, target_ids, display_names)
             SELECT 'bench', 'Bench services', true, jsonb_agg(t ORDER BY t),
                    jsonb_object_agg(t::text, 'Service number ' || t)
             FROM generate_series(1, {STATUS_TARGETS}) t;
         ANALYZE",
        closed_days = closed_days(STATUS_DAYS, STATUS_TARGETS)
    ))
    .await;
    // As a running deployment's tables are: vacuumed (the states' mirror rewrote every target
    // once) — not a vacuum of the fresh rows running beside the measurements.
    db.exec("VACUUM ANALYZE urltargets").await;
    db.exec("VACUUM ANALYZE target_states").await;
    println!(
        "\nhistory at scale: {targets} targets, {} hourly rollups ({days} days), {} raw results \
         ({raw_targets} targets × {raw_days} days at 1/min), generated in {:.0} s",
        targets * days * 24,
        raw_targets * raw_days * 1440,
        generated.elapsed().as_secs_f64()
    );
    let shutdown = CancellationToken::new();
    let running = start_api(
        &db,
        &shutdown,
        &["--read-cache-entries", "0", "--status-cache-ttl", "0s"],
    )
    .await;
    let url = format!("http://{}/graphql", running.addr);
    let now = chrono::Utc::now();
    let ago = |days: i64| (now - chrono::Duration::days(days)).to_rfc3339();
    let day = (now - chrono::Duration::hours(24)).to_rfc3339();
    let queries: Vec<(&str, Value)> = vec![
        (
            "dashboard first page, by state",
            dashboard_first_page("STATE", &day),
        ),
        (
            "dashboard first page, by id",
            dashboard_first_page("ID", &day),
        ),
        (
            "one target, series over 90 days",
            json!({"query": format!("{{ target(id: \"42\") {{ series(since: \"{}\", buckets: 90) {{ source points {{ at checks failures minMs avgMs maxMs p95Ms }} }} }} }}", ago(90))}),
        ),
        (
            "one target, stats over 30 days",
            json!({"query": format!("{{ target(id: \"42\") {{ stats(since: \"{}\") {{ checks up uptimeRatio p50DurationMs p95DurationMs p99DurationMs }} }} }}", ago(30))}),
        ),
    ];
    measure_all(&url, &queries).await;
    // The status page's data: its cache off here, then on (the default, 10 s).
    let status_url = format!("http://{}/status/bench.json", running.addr);
    measure("status page, 100 targets, 90 days", &status_url, None).await;
    let cached = start_api(
        &db,
        &shutdown,
        &["--read-cache-entries", "0", "--status-cache-ttl", "10s"],
    )
    .await;
    measure(
        "  … its cache on (10 s)",
        &format!("http://{}/status/bench.json", cached.addr),
        None,
    )
    .await;
    // Baselines, in SQL alone: the sparkline as drawn before (each of the page's targets' last
    // 30 raw results: the dashboard's `results(first: 30)`), and 30-day stats from raw rows.
    let mut sparkline_ms = Vec::new();
    let mut stats_ms = Vec::new();
    let mut bars_ms = Vec::new();
    for _ in 0..20 {
        // The status page's 9,000 bars from hourly rollups alone (no daily ones).
        let t = Instant::now();
        db.query_strings(&format!(
            "SELECT concat_ws(' ', urltarget_fk, d, u, c) FROM ( \
               SELECT urltarget_fk, date_bin('1 day', bucket_at, timestamptz '2000-01-01Z') AS d, \
                      sum(up + degraded) AS u, sum(up + degraded + down) AS c \
               FROM result_rollups_hourly WHERE urltarget_fk BETWEEN 1 AND {STATUS_TARGETS} \
                 AND bucket_at >= '{}' GROUP BY 1, 2) x",
            ago(STATUS_DAYS)
        ))
        .await;
        bars_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        db.query_strings(
            "SELECT r.duration::text FROM generate_series(1, 50) AS t(id) CROSS JOIN LATERAL ( \
               SELECT duration FROM monitor_results WHERE urltarget_fk = t.id \
               ORDER BY scheduled_at DESC, monitor_results_pk DESC LIMIT 31) r",
        )
        .await;
        sparkline_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        db.query_strings(&format!(
            "SELECT count(*)::text || percentile_cont(0.95) WITHIN GROUP (ORDER BY duration)::text \
             FROM monitor_results WHERE urltarget_fk = 42 AND scheduled_at >= '{}'",
            ago(30)
        ))
        .await;
        stats_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    sparkline_ms.sort_by(f64::total_cmp);
    stats_ms.sort_by(f64::total_cmp);
    bars_ms.sort_by(f64::total_cmp);
    println!(
        "baseline: the status page's {STATUS_TARGETS} × {STATUS_DAYS} bars from hourly rollups alone \
         ({days} days of them), SQL alone: p50 {:.2} ms, p99 {:.2} ms (20 runs)",
        percentile(&bars_ms, 50.0),
        percentile(&bars_ms, 99.0),
    );
    println!(
        "baseline: the page's 50 sparklines from raw rows (last 30 results each), SQL alone: p50 {:.2} ms, p99 {:.2} ms; \
         30-day stats of one target from its raw rows ({raw_days} days kept), SQL alone: p50 {:.2} ms, p99 {:.2} ms (20 runs)",
        percentile(&sparkline_ms, 50.0),
        percentile(&sparkline_ms, 99.0),
        percentile(&stats_ms, 50.0),
        percentile(&stats_ms, 99.0),
    );
    let size = db
        .query_strings(
            "SELECT pg_size_pretty(pg_total_relation_size('result_rollups_hourly')) || ' hourly, ' || \
                    pg_size_pretty(pg_total_relation_size('result_rollups_daily')) || ' daily'",
        )
        .await;
    println!("rollups on disk: {}", size[0]);
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), running.wait()).await;
    db.drop().await;
}
