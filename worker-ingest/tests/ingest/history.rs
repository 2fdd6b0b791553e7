//! History at scale (#16): results for slots no partition covers are stored, not parked;
//! retention drops whole expired partitions and nothing else; rollups count every stored row
//! exactly once (repeats, late results for a closed day) and long-period figures read from them
//! equal a computation from the raw rows; a rebuild recomputes them and refuses a period whose
//! raw rows are gone.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use entity::rollup;
use tokio_util::sync::CancellationToken;
use worker_ingest::maintenance::{self, Policy};
use worker_ingest::partitions::Partitions;
use worker_ingest::store::Batch;

use crate::helpers::{World, entry, events};

/// Per (target, hour): the outcome counts, duration min/sum/max and the histogram, computed
/// from the raw rows.
fn hourly_from_raw() -> String {
    format!(
        "SELECT concat_ws(' ', urltarget_fk, hour, up, degraded, down, mn, sm, mx, {cols}) FROM (
           SELECT urltarget_fk, date_bin('1 hour', scheduled_at, timestamptz '2000-01-01Z') AS hour,
                  count(*) FILTER (WHERE outcome = 'up') AS up,
                  count(*) FILTER (WHERE outcome = 'degraded') AS degraded,
                  count(*) FILTER (WHERE outcome = 'down') AS down,
                  min(duration) AS mn, sum(duration) AS sm, max(duration) AS mx, {counts}
             FROM monitor_results GROUP BY 1, 2) r ORDER BY 1",
        cols = rollup::bucket_columns(),
        counts = rollup::bucket_counts_sql("duration"),
    )
}

fn stored(table: &str) -> String {
    format!(
        "SELECT concat_ws(' ', urltarget_fk, bucket_at, up, degraded, down, duration_min, \
                duration_sum, duration_max, {cols}) FROM {table} ORDER BY 1",
        cols = rollup::bucket_columns(),
    )
}

/// The same per (target, UTC day).
fn daily_from_raw() -> String {
    hourly_from_raw().replace("'1 hour'", "'1 day'")
}

fn policy(results: Option<Duration>) -> Policy {
    Policy {
        ahead: Duration::from_secs(2 * 86_400),
        results,
        // With a results retention, the others' defaults; without, nothing is removed.
        rejected: results.map(|_| Duration::from_secs(90 * 86_400)),
        deliveries: results.map(|_| Duration::from_secs(90 * 86_400)),
        every: Duration::from_secs(60),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_for_slots_without_a_partition_are_stored_not_parked() {
    let world = World::with_targets(2).await;
    // Slots far before and after every partition the database has, and one in the usual range.
    let mut all = events(&world.targets, 0, 4);
    let far = |mut e: entity::ResultEvent, at: chrono::DateTime<Utc>| {
        e.start_time = at + (e.start_time - e.scheduled_at);
        e.scheduled_at = at;
        e
    };
    all.push(far(
        all[0].clone(),
        Utc.with_ymd_and_hms(2019, 3, 1, 10, 0, 0).unwrap(),
    ));
    all.push(far(
        all[1].clone(),
        Utc.with_ymd_and_hms(2031, 6, 1, 23, 59, 0).unwrap(),
    ));
    world.publish(&all, true).await;
    let running = worker_ingest::start(world.config(&[]), CancellationToken::new())
        .await
        .unwrap();
    world.wait_for_rows("monitor_results", 6).await;
    assert_eq!(world.stored().await, crate::helpers::expected(&all));
    assert_eq!(world.count("rejected_records").await, 0);
    // Each in a partition of its day (the default length), made for it.
    let partitions = world
        .db
        .query_strings(
            "SELECT from_at || ' ' || until_at FROM result_partitions \
             WHERE from_at < '2020-01-01' OR from_at > '2031-01-01' ORDER BY from_at",
        )
        .await;
    assert_eq!(
        partitions,
        [
            "2019-03-01 00:00:00+00 2019-03-02 00:00:00+00",
            "2031-06-01 00:00:00+00 2031-06-02 00:00:00+00"
        ]
    );
    running.shutdown();
    running.wait().await.unwrap();

    // A partition dropped behind a store's back (another worker's retention, a person): the
    // store's next batch for that day finds it missing, makes it again and stores its row.
    let store = world.store();
    let day = Utc.with_ymd_and_hms(2031, 6, 1, 0, 0, 0).unwrap();
    let batch = |minute: i64, offset: i64| Batch {
        rows: vec![entry(
            &far(all[2].clone(), day + chrono::Duration::minutes(minute)),
            0,
            offset,
        )],
        ..Default::default()
    };
    store.write(&batch(1, 100)).await.unwrap();
    world
        .db
        .exec(
            "SELECT monitor_results_drop_partition(name) FROM result_partitions \
             WHERE from_at = '2031-06-01 00:00Z'",
        )
        .await;
    let written = store.write(&batch(2, 101)).await.unwrap();
    assert_eq!(written.inserted, 1);
    assert_eq!(
        world
            .db
            .query_strings(
                "SELECT count(*)::text FROM monitor_results WHERE scheduled_at >= '2031-06-01'"
            )
            .await,
        ["1"],
        "the dropped partition's rows went with it; the new row is stored"
    );
    assert_eq!(world.count("rejected_records").await, 0);
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_count_each_stored_row_once_repeats_and_late_results_included() {
    let world = World::with_targets(3).await;
    // Three hours of slots every minute on 2026-11-01, crossing into 2026-11-02 for one hour.
    let first = events(&world.targets, 22 * 60, 3 * 3 * 60);
    world.publish(&first, true).await;
    let running = worker_ingest::start(
        world.config(&["--maintenance-every", "500ms"]),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    world.wait_for_rows("monitor_results", first.len()).await;
    // Both days ended long ago: maintenance closes them (daily rollups from the hourly ones).
    let deadline = std::time::Instant::now() + crate::WAIT;
    while world.count("rollup_days").await < 2 {
        assert!(std::time::Instant::now() < deadline, "days never closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every first result again (repeats), then late results for the closed days: on each
    // partition the late ones come after the repeats, so once they are stored the repeats
    // have been read (and skipped).
    let late = events(&world.targets, 20 * 60, 3 * 60);
    world.publish(&first, true).await;
    world.publish(&late, true).await;
    world
        .wait_for_rows("monitor_results", first.len() + late.len())
        .await;
    running.shutdown();
    running.wait().await.unwrap();

    assert_eq!(
        world
            .db
            .query_strings(&stored("result_rollups_hourly"))
            .await,
        world.db.query_strings(&hourly_from_raw()).await
    );
    let daily = world
        .db
        .query_strings(&stored("result_rollups_daily"))
        .await;
    assert_eq!(daily, world.db.query_strings(&daily_from_raw()).await);
    assert_eq!(daily.len(), 6, "two days of three targets: {daily:#?}");
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_expired_partitions_and_nothing_else_and_rollups_keep_the_figures() {
    let world = World::with_targets(3).await;
    let db = &world.db;
    // 40 days of results every 20 minutes for three targets, up to the last hour, each day in
    // a partition of its own (the test database's longer ones replaced while still empty);
    // parked records and deliveries old and new.
    db.exec(
        "SELECT monitor_results_drop_partition(name) FROM result_partitions; \
         DELETE FROM result_retention",
    )
    .await;
    db.cover(
        "date_bin('1 day', now() - interval '40 days', timestamptz '2000-01-01Z')",
        "now()",
        "1 day",
    )
    .await;
    db.exec(
        "INSERT INTO monitor_results (urltarget_fk, http_status, failure_class, start_time, duration, scheduled_at, outcome)
         SELECT t.urltargets_pk, CASE WHEN i % 9 = 0 THEN NULL ELSE 200 END,
                CASE WHEN i % 9 = 0 THEN 'timeout' END, s, (i * 53 + t.urltargets_pk) % 4000, s,
                CASE WHEN i % 9 = 0 THEN 'down' WHEN i % 4 = 0 THEN 'degraded' ELSE 'up' END
           FROM urltargets t, generate_series(1, 40 * 72) i,
                LATERAL (SELECT date_bin('20 minutes', now() - interval '1 hour', timestamptz '2000-01-01Z')
                                - i * interval '20 minutes') x(s);
         INSERT INTO rejected_records (topic, partition, kafka_offset, reason, received_at) VALUES
             ('t', 0, 1, 'old', now() - interval '91 days'), ('t', 0, 2, 'new', now() - interval '89 days');
         INSERT INTO notification_channels (channel_pk, name, kind) VALUES (1, 'c', 'webhook');
         INSERT INTO notification_deliveries (channel_fk, sequence_key, give_up_at, status, created_at, finished_at) VALUES
             (1, 'old-delivered', now(), 'delivered', now() - interval '100 days', now() - interval '95 days'),
             (1, 'old-failed', now(), 'failed', now() - interval '100 days', now() - interval '99 days'),
             (1, 'old-pending', now(), 'pending', now() - interval '100 days', NULL),
             (1, 'new-delivered', now(), 'delivered', now() - interval '10 days', now() - interval '10 days')",
    )
    .await;
    // Rollups of everything (the rows were not ingested), then the ended days closed.
    let rebuilt = worker_ingest::rollups::rebuild(
        &db.conn,
        Utc::now() - chrono::Duration::days(45),
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(rebuilt.results, 3 * 40 * 72);
    let partitions = Partitions::default();
    let keep_all = maintenance::run_once(&db.conn, &partitions, &policy(None), Utc::now())
        .await
        .unwrap();
    assert!(
        keep_all.days_closed >= 39,
        "days closed: {}",
        keep_all.days_closed
    );
    assert!(keep_all.partitions_dropped.is_empty());
    let daily_before = db.query_strings(&daily_from_raw()).await;
    let total_before = db
        .query_strings(
            "SELECT concat_ws(' ', count(*), count(*) FILTER (WHERE outcome <> 'down'), sum(duration)) \
             FROM monitor_results",
        )
        .await;
    let retained_query = "SELECT r::text FROM monitor_results r \
         WHERE scheduled_at >= (SELECT min(from_at) FROM result_partitions \
                                 WHERE until_at > now() - interval '30 days') \
         ORDER BY urltarget_fk, scheduled_at";
    let retained_before = db.query_strings(retained_query).await;
    let expired = db
        .query_strings(
            "SELECT name FROM result_partitions WHERE until_at <= now() - interval '30 days' \
             ORDER BY from_at",
        )
        .await;
    let closed_days = world.count("rollup_days").await;

    let round = maintenance::run_once(
        &db.conn,
        &partitions,
        &policy(Some(Duration::from_secs(30 * 86_400))),
        Utc::now(),
    )
    .await
    .unwrap();

    // Exactly the partitions wholly older than 30 days went; every row of the others stayed.
    assert_eq!(round.partitions_dropped, expired);
    assert!((10..=11).contains(&expired.len()), "{expired:?}");
    assert_eq!(
        db.query_strings(
            "SELECT (min(from_at) <= now() - interval '30 days' \
                     AND min(from_at) + interval '1 day' > now() - interval '30 days')::text \
             FROM result_partitions"
        )
        .await,
        ["true"]
    );
    assert_eq!(db.query_strings(retained_query).await, retained_before);
    assert_eq!(
        db.query_strings("SELECT count(*)::text FROM monitor_results WHERE scheduled_at < (SELECT min(from_at) FROM result_partitions)")
            .await,
        ["0"]
    );
    // The long-period figures, from the rollups, still equal those computed from the raw rows
    // before retention: per day, and over all 40 days.
    let daily_after = db.query_strings(&stored("result_rollups_daily")).await;
    assert_eq!(daily_after.len(), 3 * closed_days);
    for day in &daily_after {
        assert!(
            daily_before.contains(day),
            "{day} is not what the raw rows said"
        );
    }
    let from_rollups = db
        .query_strings(
            "SELECT concat_ws(' ', sum(up + degraded + down), sum(up + degraded), sum(duration_sum)) FROM (
                 SELECT up, degraded, down, duration_sum FROM result_rollups_daily
                 UNION ALL
                 SELECT up, degraded, down, duration_sum FROM result_rollups_hourly h
                  WHERE NOT EXISTS (SELECT 1 FROM rollup_days d
                                     WHERE h.bucket_at >= d.day AND h.bucket_at < d.day + interval '1 day')
             ) r",
        )
        .await;
    assert_eq!(from_rollups, total_before);

    // Parked records and deliveries: only those past their own retention went.
    assert_eq!(
        db.query_strings("SELECT reason FROM rejected_records")
            .await,
        ["new"]
    );
    assert_eq!(
        db.query_strings("SELECT sequence_key FROM notification_deliveries ORDER BY 1")
            .await,
        ["new-delivered", "old-pending"]
    );
    assert_eq!((round.rejected_removed, round.deliveries_removed), (1, 2));

    // Rebuilding from raw rows that retention dropped is refused; after the cutoff it works.
    let refused = worker_ingest::rollups::rebuild(
        &db.conn,
        Utc::now() - chrono::Duration::days(35),
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(
        refused.to_string().contains("dropped by retention"),
        "{refused}"
    );
    world.db.drop().await;
}

/// An hour's rows are rolled up when it closes, while batches keep storing rows for it: those
/// stored before the closing are in what it reads, those after are added by their batch — the
/// hour's rollups equal its rows, repeats and all, whatever the interleaving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_an_hour_while_batches_store_its_rows_counts_each_row_once() {
    use worker_ingest::rollups;
    let world = World::with_targets(20).await;
    let db = &world.db;
    // An hour after the migration's watermark (so still open), far from the real clock.
    let watermark: chrono::DateTime<Utc> = db
        .query_strings("SELECT closed_until::text || '00' FROM rollup_watermark")
        .await[0]
        .parse::<chrono::DateTime<chrono::FixedOffset>>()
        .map(Into::into)
        .unwrap_or_else(|_| Utc::now());
    let hour = rollups::hour_of(watermark) + chrono::Duration::hours(3);
    db.cover(
        &format!("timestamptz '{}'", hour.to_rfc3339()),
        &format!(
            "timestamptz '{}'",
            (hour + chrono::Duration::hours(1)).to_rfc3339()
        ),
        "1 day",
    )
    .await;
    let store = world.store();
    let mut slot_events = events(&world.targets, 0, 20 * 60);
    for e in &mut slot_events {
        let offset = e.scheduled_at - Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        e.start_time = hour + offset + (e.start_time - e.scheduled_at);
        e.scheduled_at = hour + offset;
    }
    let writer = {
        let store = store.clone();
        let slot_events = slot_events.clone();
        tokio::spawn(async move {
            for (n, chunk) in slot_events.chunks(20).enumerate() {
                // Every batch also repeats the first row of the previous one.
                let mut rows: Vec<_> = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, e)| entry(e, 0, (n * 21 + i) as i64))
                    .collect();
                if n > 0 {
                    rows.push(entry(&slot_events[(n - 1) * 20], 0, (n * 21 + 20) as i64));
                }
                store
                    .write(&Batch {
                        rows,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
            }
        })
    };
    // Close the hour (as if its end were long past) while the writer is half-way.
    while world.count("monitor_results").await < 600 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let closed = rollups::close_hours(
        &db.conn,
        hour + chrono::Duration::hours(1) + rollups::CLOSE_HOUR_AFTER,
    )
    .await
    .unwrap();
    assert_eq!(
        closed, 1,
        "one hour with rows closed (the empty ones skipped)"
    );
    writer.await.unwrap();
    assert_eq!(world.count("monitor_results").await, 1200);
    let hour_sql = format!("bucket_at = '{}'", hour.to_rfc3339());
    let stored_hour = db
        .query_strings(&stored("result_rollups_hourly").replace(
            "FROM result_rollups_hourly",
            &format!("FROM result_rollups_hourly WHERE {hour_sql}"),
        ))
        .await;
    let raw_hour: Vec<String> = db
        .query_strings(&hourly_from_raw())
        .await
        .into_iter()
        .filter(|r| r.contains(&hour.format("%Y-%m-%d %H:00:00+00").to_string()))
        .collect();
    assert_eq!(stored_hour.len(), 20, "{stored_hour:#?}");
    assert_eq!(stored_hour, raw_hour);
    assert_eq!(
        db.query_strings(&format!(
            "SELECT sum(up + degraded + down)::text FROM result_rollups_hourly WHERE {hour_sql}"
        ))
        .await,
        ["1200"]
    );
    world.db.drop().await;
}
