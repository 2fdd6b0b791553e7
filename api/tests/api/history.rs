//! Long periods (#16): `Target.stats` over more than 48 hours and `Target.series` with buckets of
//! an hour or more read rollups; what they answer equals a computation from the raw rows (counts
//! exactly, percentiles in the same histogram bucket), and stays the same when retention drops
//! the raw rows under it.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use entity::rollup::bucket_of;
use serde_json::{Value, json};
use worker_ingest::maintenance::{self, Policy};
use worker_ingest::partitions::Partitions;

use crate::{App, spawn_app_with};

const STATS: &str = "query($id: ID!, $since: DateTime, $until: DateTime) {
    target(id: $id) { stats(since: $since, until: $until) {
        checks up degraded down uptimeRatio p50DurationMs p95DurationMs p99DurationMs } } }";

const SERIES: &str = "query($id: ID!, $since: DateTime!, $until: DateTime, $buckets: Int!) {
    target(id: $id) { series(since: $since, until: $until, buckets: $buckets) {
        source bucketSeconds points { at checks failures minMs avgMs maxMs p95Ms } } } }";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().into()
}

/// Ten days (2026-11-10 to 11-20) of results every 5 minutes for three targets, in daily
/// partitions, rolled up as the ingest worker would (hours closed, days closed).
async fn history(extra: &[&str]) -> App {
    let app = spawn_app_with(extra).await;
    app.db
        .exec(
            "SELECT monitor_results_drop_partition(name) FROM result_partitions;
             DELETE FROM result_retention;
             INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency) VALUES
                 (1, 'http://127.0.0.1/a', 5), (2, 'http://127.0.0.1/b', 5), (3, 'http://127.0.0.1/c', 5)",
        )
        .await;
    app.db
        .cover(
            "timestamptz '2026-11-01 00:00Z'",
            "now() + interval '1 day'",
            "1 day",
        )
        .await;
    app.db
        .exec(
            "INSERT INTO monitor_results (urltarget_fk, http_status, failure_class, start_time, duration, scheduled_at, outcome)
             SELECT t, CASE WHEN i % 11 = 0 THEN NULL ELSE 200 END, CASE WHEN i % 11 = 0 THEN 'timeout' END,
                    s, (i * 7919 + t * 31) % 2500, s,
                    CASE WHEN i % 11 = 0 THEN 'down' WHEN i % 6 = 0 THEN 'degraded' ELSE 'up' END
               FROM generate_series(0, 10 * 288 - 1) i, (VALUES (1), (2), (3)) v(t),
                    LATERAL (SELECT timestamptz '2026-11-10 00:00Z' + i * interval '5 minutes') x(s)",
        )
        .await;
    worker_ingest::rollups::rebuild(&app.db.conn, at("2026-11-01T00:00:00Z"), Utc::now())
        .await
        .unwrap();
    worker_ingest::rollups::close_days(&app.db.conn)
        .await
        .unwrap();
    app
}

/// checks, up (up or degraded), degraded, down and the exact nearest-rank p95 of target 1's raw
/// results in [since, until), outside [skip_from, skip_until).
async fn raw_figures(
    app: &App,
    since: &str,
    until: &str,
    skip: Option<(&str, &str)>,
) -> (i64, i64, i64, i64, i32) {
    let skip = skip.map_or("false".to_owned(), |(f, u)| {
        format!("scheduled_at >= '{f}' AND scheduled_at < '{u}'")
    });
    let row = app
        .db
        .query_strings(&format!(
            "SELECT concat_ws(' ', count(*), count(*) FILTER (WHERE outcome <> 'down'),
                    count(*) FILTER (WHERE outcome = 'degraded'), count(*) FILTER (WHERE outcome = 'down'),
                    percentile_disc(0.95) WITHIN GROUP (ORDER BY duration))
               FROM monitor_results
              WHERE urltarget_fk = 1 AND scheduled_at >= '{since}' AND scheduled_at < '{until}'
                AND NOT ({skip})"
        ))
        .await;
    let n: Vec<i64> = row[0].split(' ').map(|v| v.parse().unwrap()).collect();
    (n[0], n[1], n[2], n[3], n[4] as i32)
}

fn figures(stats: &Value) -> (i64, i64, i64, i64) {
    (
        stats["checks"].as_i64().unwrap(),
        stats["up"].as_i64().unwrap(),
        stats["degraded"].as_i64().unwrap(),
        stats["down"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn long_period_stats_from_rollups_equal_the_raw_results_and_survive_retention() {
    let app = history(&["--read-cache-entries", "0"]).await;
    let stats = |since: &'static str, until: &'static str| {
        let app = &app;
        async move {
            let body = app
                .gql(
                    STATS,
                    json!({"id": "1", "since": since, "until": until}),
                    None,
                )
                .await;
            assert!(body["errors"].is_null(), "{body}");
            body["data"]["target"]["stats"].clone()
        }
    };

    // Nine days and a bit, starting and ending inside hours: rollups for the closed days and
    // hours, raw results for the two partial hours.
    let (since, until) = ("2026-11-10T05:17:00Z", "2026-11-19T13:43:00Z");
    let long = stats(since, until).await;
    let (checks, up, degraded, down, p95) = raw_figures(&app, since, until, None).await;
    assert_eq!(figures(&long), (checks, up, degraded, down));
    assert!(checks > 2000, "{checks}");
    let sketch = long["p95DurationMs"].as_f64().unwrap();
    assert_eq!(
        bucket_of(sketch.ceil() as i32),
        bucket_of(p95),
        "p95 {sketch} vs exact {p95}"
    );

    // Without a period: the whole history, from the rollups too.
    let body = app.gql(STATS, json!({"id": "1"}), None).await;
    let (checks, up, degraded, down, _) =
        raw_figures(&app, "2000-01-01T00:00:00Z", "3000-01-01T00:00:00Z", None).await;
    assert_eq!(
        figures(&body["data"]["target"]["stats"]),
        (checks, up, degraded, down)
    );
    assert_eq!(checks, 2880);

    // A maintenance window inside the period leaves its results out, as for raw stats.
    app.db
        .exec(
            "INSERT INTO maintenance_windows (name, starts_at, ends_at, all_targets)
             VALUES ('move', '2026-11-12 10:20Z', '2026-11-12 13:40Z', true)",
        )
        .await;
    let windowed = stats(since, until).await;
    let (checks, up, degraded, down, _) = raw_figures(
        &app,
        since,
        until,
        Some(("2026-11-12T10:20:00Z", "2026-11-12T13:40:00Z")),
    )
    .await;
    assert_eq!(figures(&windowed), (checks, up, degraded, down));
    assert!(checks < figures(&long).0);

    // Short periods stay exact (raw): the whole answer equals raw_figures.
    let short = stats("2026-11-15T00:00:00Z", "2026-11-16T00:00:00Z").await;
    let (checks, up, degraded, down, p95) =
        raw_figures(&app, "2026-11-15T00:00:00Z", "2026-11-16T00:00:00Z", None).await;
    assert_eq!(figures(&short), (checks, up, degraded, down));
    assert!(short["p95DurationMs"].as_f64().unwrap() <= p95 as f64 + 1.0);

    // Retention drops the partitions before 2026-11-15; the answers for periods of whole hours
    // are the same, over the retained period and over the whole history.
    app.db.exec("DELETE FROM maintenance_windows").await;
    let whole = ("2026-11-10T00:00:00Z", "2026-11-20T00:00:00Z");
    let retained = ("2026-11-16T00:00:00Z", "2026-11-20T00:00:00Z");
    let before = (
        stats(whole.0, whole.1).await,
        stats(retained.0, retained.1).await,
    );
    let series_vars = json!({"id": "2", "since": whole.0, "until": whole.1, "buckets": 10});
    let series_before = app.gql(SERIES, series_vars.clone(), None).await;
    let round = maintenance::run_once(
        &app.db.conn,
        &Partitions::default(),
        &Policy {
            ahead: Duration::from_secs(86_400),
            results: Some(Duration::from_secs(15 * 86_400)),
            rejected: None,
            deliveries: None,
            every: Duration::from_secs(60),
        },
        Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap(),
    )
    .await
    .unwrap();
    assert!(
        round.partitions_dropped.len() >= 5,
        "{:?}",
        round.partitions_dropped
    );
    assert_eq!(
        app.db
            .query_strings(
                "SELECT count(*)::text FROM monitor_results WHERE scheduled_at < '2026-11-15'"
            )
            .await,
        ["0"]
    );
    let after = (
        stats(whole.0, whole.1).await,
        stats(retained.0, retained.1).await,
    );
    assert_eq!(after, before);
    assert_eq!(app.gql(SERIES, series_vars, None).await, series_before);
    app.db.drop().await;
}

#[tokio::test]
async fn series_give_at_most_the_buckets_asked_from_raw_results_or_rollups() {
    let app = history(&["--read-cache-entries", "0"]).await;
    let series = |vars: Value| {
        let app = &app;
        async move { app.gql(SERIES, vars, None).await }
    };

    // Two hours in 12 buckets: ten minutes each, from raw results (exact p95).
    let raw = series(json!({"id": "1", "since": "2026-11-12T08:00:00Z",
                            "until": "2026-11-12T10:00:00Z", "buckets": 12}))
    .await;
    let s = &raw["data"]["target"]["series"];
    assert_eq!(
        (s["source"].as_str(), s["bucketSeconds"].as_i64()),
        (Some("RAW"), Some(600))
    );
    let points = s["points"].as_array().unwrap();
    assert_eq!(points.len(), 12);
    let expected = app
        .db
        .query_strings(
            "SELECT concat_ws(' ', count(*), count(*) FILTER (WHERE outcome = 'down'), min(duration), max(duration))
               FROM monitor_results
              WHERE urltarget_fk = 1 AND scheduled_at >= '2026-11-12 08:00Z' AND scheduled_at < '2026-11-12 10:00Z'
              GROUP BY date_bin('10 minutes', scheduled_at, timestamptz '2026-11-12 08:00Z') ORDER BY 1",
        )
        .await;
    let mut got: Vec<String> = points
        .iter()
        .map(|p| {
            format!(
                "{} {} {} {}",
                p["checks"], p["failures"], p["minMs"], p["maxMs"]
            )
        })
        .collect();
    got.sort();
    let mut expected = expected;
    expected.sort();
    assert_eq!(got, expected);

    // Seven days in 7 buckets: a day each, from hourly rollups; counts, min, max and mean exact,
    // p95 in the bucket of the exact one.
    let rolled = series(json!({"id": "3", "since": "2026-11-11T00:00:00Z",
                               "until": "2026-11-18T00:00:00Z", "buckets": 7}))
    .await;
    let s = &rolled["data"]["target"]["series"];
    assert_eq!(
        (s["source"].as_str(), s["bucketSeconds"].as_i64()),
        (Some("ROLLUPS"), Some(86_400))
    );
    let points = s["points"].as_array().unwrap();
    assert_eq!(points.len(), 7);
    let exact = app
        .db
        .query_strings(
            "SELECT concat_ws(' ', day, n, down, mn, mx, mean, p95) FROM (
                 SELECT date_bin('1 day', scheduled_at, timestamptz '2000-01-01Z') AS day, count(*) AS n,
                        count(*) FILTER (WHERE outcome = 'down') AS down, min(duration) AS mn,
                        max(duration) AS mx, round(avg(duration), 3) AS mean,
                        percentile_disc(0.95) WITHIN GROUP (ORDER BY duration) AS p95
                   FROM monitor_results
                  WHERE urltarget_fk = 3 AND scheduled_at >= '2026-11-11' AND scheduled_at < '2026-11-18'
                  GROUP BY 1) d ORDER BY day",
        )
        .await;
    for (point, exact) in points.iter().zip(&exact) {
        // The day's start (two words), checks, failures, min, max, mean, p95.
        let e: Vec<&str> = exact.split(' ').collect();
        assert_eq!(
            format!(
                "{} {} {} {}",
                point["checks"], point["failures"], point["minMs"], point["maxMs"]
            ),
            e[2..6].join(" "),
            "{exact}"
        );
        let avg: f64 = e[6].parse().unwrap();
        assert!(
            (point["avgMs"].as_f64().unwrap() - avg).abs() < 0.001,
            "{exact}"
        );
        let p95: i32 = e[7].parse().unwrap();
        assert_eq!(
            bucket_of(point["p95Ms"].as_f64().unwrap().ceil() as i32),
            bucket_of(p95),
            "{point} vs {exact}"
        );
    }

    // What a series refuses.
    for (vars, says) in [
        (
            json!({"id": "1", "since": "2026-11-12T08:00:00Z", "buckets": 0}),
            "buckets",
        ),
        (
            json!({"id": "1", "since": "2026-11-12T08:00:00Z", "buckets": 1001}),
            "buckets",
        ),
        (
            json!({"id": "1", "since": "2026-11-12T08:00:00Z", "until": "2026-11-12T08:00:00Z", "buckets": 5}),
            "until must be after since",
        ),
    ] {
        let body = series(vars).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(says),
            "{body}"
        );
    }
    app.db.drop().await;
}
