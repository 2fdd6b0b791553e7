//! Result events of both schema versions: a version 1 record as the prototype or an older monitor
//! wrote it (produced here with kcat, outside any Rust code of ours) and a version 2 record with
//! a check's every field; an incoherent version 2 record is parked with the reason. A re-probed
//! result keeps its first attempt.

use entity::assertion::Failure;
use entity::event::{CheckReport, FirstAttempt};
use entity::{Outcome, ResultEvent, Timings, TlsDetails, Verdict};
use tokio_util::sync::CancellationToken;

use crate::helpers::{World, events};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_1_and_version_2_events_are_stored_with_every_field() {
    let world = World::with_targets(3).await;
    let [v1_target, v2_target, bad_target] = world.targets[..] else {
        unreachable!()
    };
    // Version 1, as the prototype wrote it: a 503 is down, a 200 up.
    let records: Vec<(String, String)> = [("12:00", 503), ("12:01", 200)]
        .into_iter()
        .map(|(slot, status)| {
            let value = format!(
                r#"{{"schema_version":1,"target_id":{v1_target},"url":"http://127.0.0.1/0","frequency":1,"scheduled_at":"2026-11-26T{slot}:00Z","start_time":"2026-11-26T{slot}:01Z","duration_ms":42,"http_status":{status},"failure_class":null}}"#
            );
            (v1_target.to_string(), value)
        })
        .collect();
    entity::testing::kcat_produce(&world.topic, &records);
    // Version 2: a 200 whose body failed an assertion, over HTTPS, every phase timed.
    let base = events(&[v2_target], 0, 1).remove(0);
    let not_after = chrono::DateTime::parse_from_rfc3339("2026-12-03T00:00:00Z")
        .unwrap()
        .to_utc();
    let v2 = ResultEvent::new(
        v2_target,
        "https://127.0.0.1/health",
        base.frequency,
        base.scheduled_at,
        base.start_time,
        30,
        Outcome::Status(200),
    )
    .with_check(
        Verdict::Up,
        CheckReport {
            failures: vec![Failure {
                index: 1,
                expected: "BODY_TEXT NOT_CONTAINS Error".into(),
                found: "500 Internal Error".into(),
            }],
            timings: Timings {
                dns_ms: Some(1),
                connect_ms: Some(2),
                tls_ms: Some(5),
                ttfb_ms: Some(10),
                transfer_ms: Some(3),
            },
            tls: Some(TlsDetails {
                tls_version: "TLSv1.3".into(),
                cert_not_after: not_after,
                cert_issuer: "CN=Test CA".into(),
                cert_subject: "CN=fixture".into(),
            }),
        },
    );
    // A version 2 event saying "up" with a failure class: refused, parked.
    let mut bad = events(&[bad_target], 0, 1).remove(0);
    bad.http_status = None;
    bad.failure_class = Some(entity::FailureClass::Timeout);
    bad.outcome = Some(Verdict::Up);
    world.publish(&[v2, bad], true).await;

    let running = worker_ingest::start(world.config(&[]), CancellationToken::new())
        .await
        .unwrap();
    world.wait_for_rows("monitor_results", 3).await;
    world.wait_for_rows("rejected_records", 1).await;
    assert_eq!(
        world
            .db
            .query_strings(&format!(
                "SELECT http_status || ' ' || outcome || ' ' || coalesce(failure_class, '-') || ' ' \
                 || coalesce(dns_ms::text, 'null') || ' ' || coalesce(tls_version, 'null') \
                 FROM view_1m WHERE urltarget_fk = {v1_target} ORDER BY scheduled_at"
            ))
            .await,
        ["503 down - null null", "200 up - null null"]
    );
    assert_eq!(
        world
            .db
            .query_strings(&format!(
                "SELECT concat_ws(' ', http_status, outcome, failure_class, \
                        assertion_failures->0->>'found', assertion_failures->0->>'index', \
                        dns_ms, connect_ms, tls_ms, ttfb_ms, transfer_ms, tls_version, \
                        to_char(cert_not_after AT TIME ZONE 'UTC', 'YYYY-MM-DD'), cert_issuer, cert_subject) \
                 FROM view_1m WHERE urltarget_fk = {v2_target}"
            ))
            .await,
        ["200 down assertion 500 Internal Error 1 1 2 5 10 3 TLSv1.3 2026-12-03 CN=Test CA CN=fixture"]
    );
    let reason = world
        .db
        .query_strings("SELECT reason FROM rejected_records")
        .await;
    assert!(
        reason[0].contains("contradicts failure_class timeout"),
        "{reason:?}"
    );
    running.shutdown();
    running.wait().await.unwrap();
    world.db.drop().await;
}

/// A re-probed slot (#13): the second attempt is the row, the first is kept in `first_attempt`
/// (and shown by the views); a single attempt keeps it NULL; an incoherent first attempt is
/// parked with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reprobed_result_is_stored_with_its_first_attempt() {
    let world = World::with_targets(3).await;
    let [reprobed, single, bad_target] = world.targets[..] else {
        unreachable!()
    };
    let first = events(&[reprobed], 0, 1).remove(0);
    let first = ResultEvent::new(
        reprobed,
        first.url.clone(),
        first.frequency,
        first.scheduled_at,
        first.start_time,
        12,
        Outcome::Failure(entity::FailureClass::Connect),
    );
    let second = ResultEvent::new(
        reprobed,
        first.url.clone(),
        first.frequency,
        first.scheduled_at,
        first.start_time + chrono::Duration::seconds(2),
        30,
        Outcome::Status(200),
    )
    .with_first_attempt(FirstAttempt::of(&first));
    let once = events(&[single], 0, 1).remove(0);
    let mut bad = events(&[bad_target], 0, 1).remove(0);
    bad.first_attempt = Some(FirstAttempt {
        outcome: Verdict::Up,
        ..FirstAttempt::of(&first)
    });
    world.publish(&[second, once, bad], true).await;

    let running = worker_ingest::start(world.config(&[]), CancellationToken::new())
        .await
        .unwrap();
    world.wait_for_rows("monitor_results", 2).await;
    world.wait_for_rows("rejected_records", 1).await;
    assert_eq!(
        world
            .db
            .query_strings(&format!(
                "SELECT concat_ws(' ', http_status, outcome, duration, \
                        first_attempt->>'outcome', first_attempt->>'failure_class', \
                        coalesce(first_attempt->>'http_status', 'null'), \
                        first_attempt->>'duration_ms', \
                        ((first_attempt->>'start_time')::timestamptz = start_time - interval '2 s')::text) \
                 FROM view_1m WHERE urltarget_fk = {reprobed}"
            ))
            .await,
        ["200 up 30 down connect null 12 true"]
    );
    assert_eq!(
        world
            .db
            .query_strings(&format!(
                "SELECT (first_attempt IS NULL)::text FROM monitor_results WHERE urltarget_fk = {single}"
            ))
            .await,
        ["true"]
    );
    let reason = world
        .db
        .query_strings("SELECT reason FROM rejected_records")
        .await;
    assert!(
        reason[0].contains("first_attempt: outcome up contradicts failure_class connect"),
        "{reason:?}"
    );
    running.shutdown();
    running.wait().await.unwrap();
    world.db.drop().await;
}
