//! The migrations against the real PostgreSQL: the original schema with its names, everything
//! added on top enforced by the database, and up → down → up leaving the same schema.

// Test helpers may unwrap: a failure is the test's answer (clippy's test exemption covers only #[test] fns).
#![allow(clippy::unwrap_used)]

use migration::testing::{TEST_DATA_FROM, TestDb};
use migration::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::ConnectionTrait;

/// Every column, constraint, index, view and sequence of the public schema, as sorted text.
const SCHEMA_FINGERPRINT: &str = "
SELECT item FROM (
    SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' null=' || is_nullable
           || ' default=' || coalesce(column_default, '-') AS item
      FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL
    SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL
    SELECT 'view ' || viewname || ' ' || definition FROM pg_views WHERE schemaname = 'public'
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL
    SELECT 'function ' || proname || ' ' || md5(prosrc) FROM pg_proc WHERE pronamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'sequence ' || sequencename || ' ' || data_type FROM pg_sequences WHERE schemaname = 'public'
) items
WHERE item NOT LIKE '%seaql_migrations%'
ORDER BY item";

const VIEWS: [&str; 6] = [
    "view_10m", "view_1m", "view_20m", "view_2m", "view_30m", "view_5m",
];

async fn columns(db: &TestDb, relation: &str) -> Vec<String> {
    db.query_strings(&format!(
        "SELECT column_name || ' ' || data_type || ' ' || is_nullable FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name = '{relation}' ORDER BY ordinal_position"
    ))
    .await
}

async fn exec(db: &TestDb, sql: &str) -> Result<(), String> {
    db.conn
        .execute_unprepared(sql)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn original_migration_creates_the_original_schema_with_its_names() {
    let db = TestDb::new().await;
    Migrator::up(&db.conn, Some(1)).await.unwrap();

    assert_eq!(
        db.query_strings(
            "SELECT sequencename::text FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1"
        )
        .await,
        ["monitor_results_seq", "urltargets_seq"]
    );
    assert_eq!(
        columns(&db, "urltargets").await,
        [
            "urltargets_pk integer NO",
            "urltarget character varying NO",
            "monitor_frequency integer NO"
        ]
    );
    assert_eq!(
        columns(&db, "monitor_results").await,
        [
            "monitor_results_pk integer NO",
            "http_status integer NO",
            "start_time timestamp with time zone NO",
            "duration integer NO",
            "urltarget_fk integer NO"
        ]
    );
    assert_eq!(
        db.query_strings(
            "SELECT viewname::text FROM pg_views WHERE schemaname = 'public' ORDER BY 1"
        )
        .await,
        VIEWS
    );
    for view in VIEWS {
        assert_eq!(
            columns(&db, view).await,
            [
                "monitor_results_pk integer YES",
                "urltarget character varying YES",
                "http_status integer YES",
                "start_time timestamp with time zone YES",
                "duration integer YES"
            ],
            "{view}"
        );
    }

    let err = exec(
        &db,
        "INSERT INTO urltargets (urltarget, monitor_frequency) VALUES ('http://127.0.0.1/', 3)",
    )
    .await
    .unwrap_err();
    assert!(err.contains("check constraint"), "{err}");
    let long_url = format!("http://127.0.0.1/{}", "a".repeat(1010));
    let err = exec(
        &db,
        &format!("INSERT INTO urltargets (urltarget, monitor_frequency) VALUES ('{long_url}', 1)"),
    )
    .await
    .unwrap_err();
    assert!(err.contains("too long"), "{err}");
    db.drop().await;
}

#[tokio::test]
async fn full_schema_enforces_what_the_pipeline_relies_on() {
    let db = TestDb::migrated().await;

    exec(
        &db,
        "INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency) VALUES
            (1, 'http://127.0.0.1/a', 5), (2, 'http://127.0.0.1/b', 1), (3, 'http://127.0.0.1/a', 1);
         SELECT setval('urltargets_seq', 3)",
    )
    .await
    .unwrap();
    let err = exec(
        &db,
        "INSERT INTO urltargets (urltarget, monitor_frequency) VALUES ('http://127.0.0.1/a', 5)",
    )
    .await
    .unwrap_err();
    assert!(err.contains("urltargets_url_frequency_key"), "{err}");
    assert_eq!(
        db.query_strings("SELECT paused::text || ' ' || (created_at > now() - interval '1 hour')::text FROM urltargets WHERE urltargets_pk = 1").await,
        ["false true"]
    );

    // A response, a failure without one, and a key beyond the int4 range.
    exec(
        &db,
        "INSERT INTO monitor_results (monitor_results_pk, http_status, failure_class, start_time, duration, urltarget_fk, scheduled_at, outcome) VALUES
            (1, 200, NULL, '2026-11-26 12:00:01Z', 15, 1, '2026-11-26 12:00:00Z', 'up'),
            (3000000000, NULL, 'timeout', '2026-11-26 12:05:01Z', 5000, 1, '2026-11-26 12:05:00Z', 'down'),
            (2, 404, NULL, '2026-11-26 12:00:02Z', 7, 2, '2026-11-26 12:00:00Z', 'down')",
    )
    .await
    .unwrap();

    let insert_as = |status: &str, class: &str, slot: &str, outcome: &str, extra: (&str, &str)| {
        format!(
            "INSERT INTO monitor_results (http_status, failure_class, start_time, duration, urltarget_fk, scheduled_at, outcome{}) \
             VALUES ({status}, {class}, now(), 1, 1, '{slot}', '{outcome}'{})",
            extra.0, extra.1
        )
    };
    let insert =
        |status: &str, class: &str, slot: &str| insert_as(status, class, slot, "down", ("", ""));
    let err = exec(&db, &insert("200", "'dns'", "2026-11-26 13:00:00Z"))
        .await
        .unwrap_err();
    assert!(err.contains("monitor_results_outcome_check"), "{err}");
    let err = exec(&db, &insert("NULL", "NULL", "2026-11-26 13:00:00Z"))
        .await
        .unwrap_err();
    assert!(err.contains("monitor_results_outcome_check"), "{err}");
    let err = exec(&db, &insert("NULL", "'flaky'", "2026-11-26 13:00:00Z"))
        .await
        .unwrap_err();
    assert!(err.contains("monitor_results_failure_class_check"), "{err}");
    let err = exec(&db, &insert("200", "NULL", "2026-11-26 12:00:00Z"))
        .await
        .unwrap_err();
    // Reported by the partition's index of the key (monitor_results_target_slot_key).
    assert!(
        err.contains("duplicate key") && err.contains("_urltarget_fk_scheduled_at_key"),
        "{err}"
    );

    // A failed assertion is the one failure stored with its response, and a failure is down.
    let failures = (
        ", assertion_failures",
        r#", '[{"index":0,"expected":"x","found":"y"}]'"#,
    );
    exec(
        &db,
        &insert_as(
            "200",
            "'assertion'",
            "2026-11-26 13:30:00Z",
            "down",
            failures,
        ),
    )
    .await
    .unwrap();
    for (status, class, outcome, extra, constraint) in [
        (
            "NULL",
            "'assertion'",
            "down",
            ("", ""),
            "monitor_results_outcome_check",
        ),
        (
            "200",
            "'assertion'",
            "up",
            ("", ""),
            "monitor_results_verdict_check",
        ),
        (
            "NULL",
            "'timeout'",
            "degraded",
            ("", ""),
            "monitor_results_verdict_check",
        ),
        (
            "200",
            "NULL",
            "sideways",
            ("", ""),
            "monitor_results_verdict_check",
        ),
        (
            "200",
            "NULL",
            "up",
            (", ttfb_ms", ", -1"),
            "monitor_results_timings_check",
        ),
        (
            "200",
            "NULL",
            "up",
            (", assertion_failures", ", '{}'"),
            "monitor_results_assertion_failures_check",
        ),
        (
            "200",
            "NULL",
            "up",
            (", first_attempt", ", '[]'"),
            "monitor_results_first_attempt_check",
        ),
    ] {
        let err = exec(
            &db,
            &insert_as(status, class, "2026-11-26 13:40:00Z", outcome, extra),
        )
        .await
        .unwrap_err();
        assert!(err.contains(constraint), "{constraint}: {err}");
    }
    exec(
        &db,
        "DELETE FROM monitor_results WHERE scheduled_at = '2026-11-26 13:30:00Z'",
    )
    .await
    .unwrap();
    // Targets: the method is one of three, and the lists are lists.
    for (column, value, constraint) in [
        ("method", "'PUT'", "urltargets_method_check"),
        ("assertions", "'{}'", "urltargets_assertions_check"),
        (
            "request_headers",
            "'\"x\"'",
            "urltargets_request_headers_check",
        ),
        (
            "degraded_after_ms",
            "0",
            "urltargets_degraded_after_ms_check",
        ),
    ] {
        let err = exec(
            &db,
            &format!("UPDATE urltargets SET {column} = {value} WHERE urltargets_pk = 1"),
        )
        .await
        .unwrap_err();
        assert!(err.contains(constraint), "{constraint}: {err}");
    }

    // Targets do not re-probe unless asked; a re-probed result's first attempt shows in the
    // views.
    assert_eq!(
        db.query_strings("SELECT DISTINCT reprobe::text FROM urltargets")
            .await,
        ["false"]
    );
    exec(
        &db,
        &insert_as(
            "200",
            "NULL",
            "2026-11-26 13:50:00Z",
            "up",
            (
                ", first_attempt",
                r#", '{"outcome":"down","failure_class":"timeout","http_status":null}'"#,
            ),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        db.query_strings(
            "SELECT first_attempt->>'failure_class' FROM view_5m WHERE first_attempt IS NOT NULL"
        )
        .await,
        ["timeout"]
    );
    exec(
        &db,
        "DELETE FROM monitor_results WHERE scheduled_at = '2026-11-26 13:50:00Z'",
    )
    .await
    .unwrap();

    // Each view shows the results of its frequency's targets only, failure class included.
    assert_eq!(
        db.query_strings(
            "SELECT monitor_results_pk || ' ' || urltarget || ' ' || coalesce(http_status::text, '-') || ' ' \
             || coalesce(failure_class, '-') || ' ' || duration || ' ' || urltarget_fk \
             FROM view_5m ORDER BY start_time"
        )
        .await,
        [
            "1 http://127.0.0.1/a 200 - 15 1",
            "3000000000 http://127.0.0.1/a - timeout 5000 1"
        ]
    );
    assert_eq!(
        db.query_strings("SELECT monitor_results_pk::text FROM view_1m")
            .await,
        ["2"]
    );
    assert!(
        db.query_strings("SELECT urltarget FROM view_30m")
            .await
            .is_empty()
    );

    // The API's reads have their indexes.
    let indexes = db
        .query_strings("SELECT indexname::text FROM pg_indexes WHERE tablename = 'monitor_results'")
        .await;
    for index in [
        "monitor_results_target_slot_key",
        "monitor_results_time_idx",
    ] {
        assert!(
            indexes.iter().any(|i| i == index),
            "{index} missing: {indexes:?}"
        );
    }

    // A result names a target that exists: one missing target fails the whole statement, and
    // moving a result to a missing target fails too.
    let err = exec(
        &db,
        "INSERT INTO monitor_results (http_status, start_time, duration, urltarget_fk, scheduled_at, outcome) VALUES
            (200, now(), 1, 2, '2026-11-26 14:00:00Z', 'up'), (200, now(), 1, 99, '2026-11-26 14:00:00Z', 'up')",
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("names target 99, which does not exist"),
        "{err}"
    );
    let err = exec(
        &db,
        "UPDATE monitor_results SET urltarget_fk = 98 WHERE monitor_results_pk = 2",
    )
    .await
    .unwrap_err();
    assert!(err.contains("names target 98"), "{err}");
    // A writer that has locked its targets itself (the ingest worker) skips the check by
    // naming its own transaction; a value left in the session names no later transaction, so
    // the next one is checked again (one string: one connection).
    let missing = "INSERT INTO monitor_results (http_status, start_time, duration, urltarget_fk, \
                   scheduled_at, outcome) VALUES (200, now(), 1, 95, '2026-11-26 14:00:00Z', 'up')";
    exec(
        &db,
        &format!(
            "BEGIN; SELECT set_config('pingpipe.targets_locked', pg_current_xact_id()::text, true); \
             {missing}; DELETE FROM monitor_results WHERE urltarget_fk = 95; COMMIT"
        ),
    )
    .await
    .unwrap();
    let err = exec(
        &db,
        &format!(
            "BEGIN; SELECT set_config('pingpipe.targets_locked', pg_current_xact_id()::text, false); \
             COMMIT; {missing}"
        ),
    )
    .await
    .unwrap_err();
    assert!(err.contains("names target 95"), "{err}");
    let err = exec(
        &db,
        &format!("SET pingpipe.targets_locked = 'on'; {missing}"),
    )
    .await
    .unwrap_err();
    assert!(err.contains("names target 95"), "{err}");
    let err = exec(
        &db,
        "UPDATE urltargets SET urltargets_pk = 97 WHERE urltargets_pk = 2",
    )
    .await
    .unwrap_err();
    assert!(err.contains("its key cannot change"), "{err}");
    exec(
        &db,
        "UPDATE urltargets SET urltargets_pk = 96 WHERE urltargets_pk = 3",
    )
    .await
    .unwrap();
    assert_eq!(
        db.query_strings("SELECT count(*)::text FROM monitor_results")
            .await,
        ["3"]
    );

    // Removing a target removes its results, and only its.
    exec(&db, "DELETE FROM urltargets WHERE urltargets_pk = 1")
        .await
        .unwrap();
    assert_eq!(
        db.query_strings("SELECT monitor_results_pk::text FROM monitor_results")
            .await,
        ["2"]
    );

    // Ingest bookkeeping: one position per (group, topic, partition), one reject per record.
    exec(
        &db,
        "INSERT INTO consumer_positions (group_id, topic, partition, next_offset) VALUES ('g', 't', 0, 42);
         INSERT INTO rejected_records (topic, partition, kafka_offset, record_key, payload, reason)
             VALUES ('t', 0, 7, '\\x3432', '\\xff00', 'not a result event')",
    )
    .await
    .unwrap();
    let err = exec(
        &db,
        "INSERT INTO consumer_positions (group_id, topic, partition, next_offset) VALUES ('g', 't', 0, 43)",
    )
    .await
    .unwrap_err();
    assert!(err.contains("consumer_positions_pkey"), "{err}");
    let err = exec(
        &db,
        "INSERT INTO rejected_records (topic, partition, kafka_offset, reason) VALUES ('t', 0, 7, 'again')",
    )
    .await
    .unwrap_err();
    assert!(err.contains("rejected_records_record_key"), "{err}");
    db.drop().await;
}

#[tokio::test]
async fn migrations_go_up_down_and_up_again_with_data_present() {
    let db = TestDb::new().await;
    Migrator::up(&db.conn, None).await.unwrap();
    let first_schema = db.query_strings(SCHEMA_FINGERPRINT).await;
    assert!(first_schema.len() > 40, "{first_schema:#?}");
    db.cover(TEST_DATA_FROM, "now()", "1 day").await;
    assert!(
        Migrator::get_pending_migrations(&db.conn)
            .await
            .unwrap()
            .is_empty()
    );

    // Rows of every kind, so each `down` meets data, including what the older schema cannot hold.
    exec(
        &db,
        "INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency) VALUES (1, 'http://127.0.0.1/', 2);
         INSERT INTO monitor_results (http_status, failure_class, start_time, duration, urltarget_fk, scheduled_at, outcome, assertion_failures) VALUES
             (200, NULL, now(), 3, 1, '2026-11-26 12:00:00Z', 'up', NULL),
             (NULL, 'connect', now(), 1, 1, '2026-11-26 12:02:00Z', 'down', NULL),
             (503, 'assertion', now(), 1, 1, '2026-11-26 12:04:00Z', 'down', '[{\"index\":0,\"expected\":\"x\",\"found\":\"y\"}]');
         INSERT INTO consumer_positions (group_id, topic, partition, next_offset) VALUES ('g', 't', 0, 1);
         INSERT INTO rejected_records (topic, partition, kafka_offset, reason) VALUES ('t', 0, 0, 'bad');
         UPDATE urltargets SET failures_before_down = 5, successes_before_up = 1, reprobe = true, tags = '[\"env:prod\"]';
         INSERT INTO maintenance_windows (name, cron, time_zone, duration_seconds, tag_filters) VALUES ('nightly', '30 2 * * *', 'Europe/Berlin', 3600, '[\"env:*\"]');
         INSERT INTO maintenance_windows (name, starts_at, ends_at, all_targets) VALUES ('move', '2026-11-26 12:00Z', '2026-11-26 14:00Z', true);
         INSERT INTO monitor_results (http_status, failure_class, start_time, duration, urltarget_fk, scheduled_at, outcome, first_attempt) VALUES
             (200, NULL, now(), 2, 1, '2026-11-26 12:06:00Z', 'up', '{\"outcome\":\"down\",\"failure_class\":\"connect\",\"http_status\":null,\"duration_ms\":1,\"start_time\":\"2026-11-26T12:06:00Z\"}');
         INSERT INTO target_states (urltarget_fk, state, state_since, kafka_partition, tracker) VALUES (1, 'down', '2026-11-26 12:02:00Z', 0, '{\"state\":\"DOWN\"}');
         INSERT INTO incidents (urltarget_fk, cause, opened_at, confirmed_at, opened_by) VALUES (1, 'connect', '2026-11-26 12:02:00Z', '2026-11-26 12:04:00Z', 2);
         INSERT INTO notification_channels (channel_pk, name, kind, settings, secrets) VALUES (1, 'ops', 'webhook', '{\"url\":\"http://127.0.0.1:9/\"}', '{\"signing_key\":\"whsec_x\"}');
         INSERT INTO notification_routes (name, channel_fk, tag_filters, events, remind_every_minutes) VALUES ('prod', 1, '[\"env:prod\"]', '[\"down\", \"recovered\"]', 60);
         INSERT INTO notification_deliveries (delivery_pk, channel_fk, sequence_key, give_up_at, attempts, status) VALUES (1, 1, '1', now() + interval '1 day', 1, 'delivered');
         INSERT INTO notifications (channel_fk, route_fk, urltarget_fk, url, event, from_state, to_state, since, cause, incident_fk, delivery_fk) VALUES (1, 1, 1, 'http://127.0.0.1/', 'down', 'up', 'down', '2026-11-26 12:02:00Z', 'connect', 1, 1);
         INSERT INTO notification_attempts (delivery_fk, number, finished_at, outcome, http_status, answer) VALUES (1, 1, now(), 'delivered', 200, 'ok');
         INSERT INTO status_pages (slug, title, public, target_ids, display_names) VALUES ('acme', 'Acme', true, '[1]', '{\"1\": \"Website\"}')"
    )
    .await
    .unwrap();

    // Down one step at a time: each `down` must work on the schema the later ones left.
    let total = Migrator::migrations().len();
    for remaining in (0..total).rev() {
        Migrator::down(&db.conn, Some(1)).await.unwrap();
        assert_eq!(
            Migrator::get_applied_migrations(&db.conn)
                .await
                .unwrap()
                .len(),
            remaining
        );
    }
    assert_eq!(
        db.query_strings(SCHEMA_FINGERPRINT).await,
        Vec::<String>::new(),
        "down must leave nothing behind"
    );

    Migrator::up(&db.conn, None).await.unwrap();
    assert_eq!(db.query_strings(SCHEMA_FINGERPRINT).await, first_schema);
    db.drop().await;
}

/// What the foreign key guaranteed under concurrency still holds: a target removed while a
/// result for it is being inserted waits for that insert, and then removes its result too.
#[tokio::test]
async fn removing_a_target_during_an_insert_leaves_no_orphan() {
    use sea_orm_migration::sea_orm::TransactionTrait;
    use std::time::{Duration, Instant};

    let db = TestDb::migrated().await;
    exec(
        &db,
        "INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency) VALUES (1, 'http://127.0.0.1/', 1)",
    )
    .await
    .unwrap();

    let inserting = db.conn.begin().await.unwrap();
    inserting
        .execute_unprepared(
            "INSERT INTO monitor_results (http_status, start_time, duration, urltarget_fk, scheduled_at, outcome)
             VALUES (200, now(), 1, 1, '2026-11-26 12:00:00Z', 'up')",
        )
        .await
        .unwrap();
    let remover = db.conn.clone();
    let removing = tokio::spawn(async move {
        remover
            .execute_unprepared("DELETE FROM urltargets WHERE urltargets_pk = 1")
            .await
            .map(|r| r.rows_affected())
    });

    // The removal must wait on the inserting transaction's lock.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = db
            .query_strings(
                "SELECT count(*)::text FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'
                   AND query LIKE 'DELETE FROM urltargets%'",
            )
            .await;
        if waiting == ["1"] {
            break;
        }
        assert!(
            !removing.is_finished(),
            "the removal did not wait for the insert"
        );
        assert!(
            Instant::now() < deadline,
            "the removal never started waiting"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    inserting.commit().await.unwrap();
    assert_eq!(removing.await.unwrap().unwrap(), 1);
    assert_eq!(
        db.query_strings("SELECT count(*)::text FROM monitor_results")
            .await,
        ["0"]
    );

    // And an insert for a target that is gone fails instead of leaving an orphan.
    let err = exec(
        &db,
        "INSERT INTO monitor_results (http_status, start_time, duration, urltarget_fk, scheduled_at, outcome)
         VALUES (200, now(), 1, 1, '2026-11-26 12:01:00Z', 'up')",
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("names target 1, which does not exist"),
        "{err}"
    );
    db.drop().await;
}

/// Results stored before outcomes existed get the one they had: up for a 2xx or 3xx status,
/// down for any other status and for a failure.
#[tokio::test]
async fn checks_migration_gives_earlier_results_their_outcome() {
    let db = TestDb::new().await;
    let before_checks = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261130_000009_checks")
        .unwrap() as u32;
    Migrator::up(&db.conn, Some(before_checks)).await.unwrap();
    exec(
        &db,
        "INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency) VALUES (1, 'http://127.0.0.1/', 1);
         INSERT INTO monitor_results (http_status, failure_class, start_time, duration, urltarget_fk, scheduled_at) VALUES
             (200, NULL, now(), 3, 1, '2026-11-26 12:00:00Z'),
             (302, NULL, now(), 3, 1, '2026-11-26 12:01:00Z'),
             (500, NULL, now(), 3, 1, '2026-11-26 12:02:00Z'),
             (NULL, 'timeout', now(), 3, 1, '2026-11-26 12:03:00Z')",
    )
    .await
    .unwrap();
    Migrator::up(&db.conn, None).await.unwrap();
    assert_eq!(
        db.query_strings(
            "SELECT coalesce(http_status::text, failure_class) || ' ' || outcome FROM view_1m ORDER BY scheduled_at"
        )
        .await,
        ["200 up", "302 up", "500 down", "timeout down"]
    );
    assert_eq!(
        db.query_strings(
            "SELECT method || ' ' || tls_verify || ' ' || assertions::text || ' ' || request_headers::text FROM urltargets"
        )
        .await,
        ["GET true [] []"]
    );
    db.drop().await;
}

/// The rows of `monitor_results` (every column) in slot order, as text.
async fn all_results(db: &TestDb) -> Vec<String> {
    db.query_strings("SELECT r::text FROM monitor_results r ORDER BY urltarget_fk, scheduled_at")
        .await
}

/// The hourly rollups computed from the raw rows, and as stored, as text.
const HOURLY_FROM_RAW: &str = "
SELECT urltarget_fk || ' ' || hour || ' '
       || count(*) FILTER (WHERE outcome = 'up') || ' ' || count(*) FILTER (WHERE outcome = 'degraded')
       || ' ' || count(*) FILTER (WHERE outcome = 'down') || ' ' || min(duration) || ' '
       || sum(duration) || ' ' || max(duration)
  FROM (SELECT *, date_bin('1 hour', scheduled_at, timestamptz '2000-01-01Z') AS hour
          FROM monitor_results) r
 GROUP BY urltarget_fk, hour ORDER BY 1";
const HOURLY_STORED: &str = "
SELECT urltarget_fk || ' ' || bucket_at || ' ' || up || ' ' || degraded || ' ' || down || ' '
       || duration_min || ' ' || duration_sum || ' ' || duration_max
  FROM result_rollups_hourly ORDER BY 1";

/// Partitioning a table that holds results keeps every one of them (in a partition of its
/// day), rolls them up, and `down` gives them back in a plain table; up again, the same.
#[tokio::test]
async fn partitioning_keeps_every_result_and_rolls_them_up_both_ways() {
    let db = TestDb::new().await;
    let before = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261130_000015_time_partitions")
        .unwrap() as u32;
    Migrator::up(&db.conn, Some(before)).await.unwrap();
    // Three days of results every 10 minutes for two targets, and some from an hour ago.
    exec(
        &db,
        "INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency) VALUES
             (1, 'http://127.0.0.1/a', 10), (2, 'http://127.0.0.1/b', 10);
         INSERT INTO monitor_results (http_status, failure_class, start_time, duration, urltarget_fk, scheduled_at, outcome)
         SELECT CASE WHEN i % 7 = 0 THEN NULL ELSE 200 END, CASE WHEN i % 7 = 0 THEN 'connect' END,
                s, (i * 37) % 3000, t, s,
                CASE WHEN i % 7 = 0 THEN 'down' WHEN i % 5 = 0 THEN 'degraded' ELSE 'up' END
           FROM generate_series(0, 431) i, (VALUES (1), (2)) v(t),
                LATERAL (SELECT timestamptz '2026-11-20 00:00Z' + i * interval '10 minutes') x(s);
         INSERT INTO monitor_results (http_status, start_time, duration, urltarget_fk, scheduled_at, outcome)
         SELECT 200, now(), 5, 1, date_bin('1 minute', now() - interval '1 hour', timestamptz '2000-01-01Z'), 'up'",
    )
    .await
    .unwrap();
    let rows = all_results(&db).await;
    assert_eq!(rows.len(), 865);

    Migrator::up(&db.conn, None).await.unwrap();
    assert_eq!(all_results(&db).await, rows, "every result kept as it was");
    let partitions = db
        .query_strings(
            "SELECT name || ' ' || from_at || ' ' || until_at FROM result_partitions ORDER BY from_at",
        )
        .await;
    assert!(partitions.len() >= 4, "{partitions:?}");
    assert!(
        partitions[0].starts_with("monitor_results_20261120t000000 2026-11-20 00:00:00+00"),
        "{partitions:?}"
    );
    // Each row sits in the partition of its day.
    assert_eq!(
        db.query_strings(
            "SELECT count(*)::text FROM monitor_results r JOIN result_partitions p
                 ON p.name = r.tableoid::regclass::text
                 OR 'pingpipe_partitions.' || p.name = r.tableoid::regclass::text
              WHERE r.scheduled_at >= p.from_at AND r.scheduled_at < p.until_at"
        )
        .await,
        ["865"]
    );
    assert_eq!(
        db.query_strings(HOURLY_STORED).await,
        db.query_strings(HOURLY_FROM_RAW).await
    );
    // The three ended days are closed, each with a daily rollup per target summing its hours.
    assert_eq!(
        db.query_strings(
            "SELECT d.urltarget_fk || ' ' || d.bucket_at || ' ' || (d.up + d.degraded + d.down)
               FROM result_rollups_daily d ORDER BY 1"
        )
        .await,
        [
            "1 2026-11-20 00:00:00+00 144",
            "1 2026-11-21 00:00:00+00 144",
            "1 2026-11-22 00:00:00+00 144",
            "2 2026-11-20 00:00:00+00 144",
            "2 2026-11-21 00:00:00+00 144",
            "2 2026-11-22 00:00:00+00 144",
        ]
    );
    // A slot without a partition is refused by PostgreSQL (the ingest worker makes one first).
    let refused = exec(
        &db,
        "INSERT INTO monitor_results (http_status, start_time, duration, urltarget_fk, scheduled_at, outcome)
         VALUES (200, now(), 1, 1, '2031-01-01 00:00Z', 'up')",
    )
    .await
    .unwrap_err();
    assert!(refused.contains("no partition"), "{refused}");

    // Down to before the partitioning (and what came after it).
    let after = Migrator::migrations().len() as u32 - before;
    Migrator::down(&db.conn, Some(after)).await.unwrap();
    assert_eq!(
        db.query_strings("SELECT relkind::text FROM pg_class WHERE relname = 'monitor_results'")
            .await,
        ["r"],
        "a plain table again"
    );
    assert_eq!(all_results(&db).await, rows);
    Migrator::up(&db.conn, None).await.unwrap();
    assert_eq!(all_results(&db).await, rows);
    assert_eq!(
        db.query_strings(HOURLY_STORED).await,
        db.query_strings(HOURLY_FROM_RAW).await
    );
    db.drop().await;
}
