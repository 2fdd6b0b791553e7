//! States and incidents (#13, started) decided by the real ingest worker in the batch's
//! transaction, from results published through real Kafka transactions.

use chrono::{TimeZone, Utc};
use entity::{FailureClass, Frequency, Outcome, ResultEvent};
use tokio_util::sync::CancellationToken;

use crate::helpers::World;

/// A result of `target` in minute `slot` (of 2026-11-30 12:00 UTC): passing or a timeout.
fn result(target: i32, slot: i64, up: bool) -> ResultEvent {
    let at =
        Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap() + chrono::Duration::minutes(slot);
    let outcome = if up {
        Outcome::Status(200)
    } else {
        Outcome::Failure(FailureClass::Timeout)
    };
    ResultEvent::new(
        target,
        "http://127.0.0.1/",
        Frequency::OneMinute,
        at,
        at,
        5,
        outcome,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_in_a_row_open_one_incident_and_passes_resolve_it_while_flapping_opens_none() {
    let world = World::with_targets(2).await;
    let [steady, flapping] = world.targets[..] else {
        unreachable!()
    };
    // Up twice, down five times, up three times; the other fails two slots of every three.
    let pattern = [
        true, true, false, false, false, false, false, true, true, true,
    ];
    let mut events: Vec<ResultEvent> = Vec::new();
    for (slot, up) in pattern.iter().enumerate() {
        events.push(result(steady, slot as i64, *up));
    }
    for slot in 0..30 {
        events.push(result(flapping, slot, slot % 3 == 2));
    }
    // In several transactions, some results of a slot repeated (a monitor's retry after a
    // commit it could not confirm): repeats decide nothing.
    for chunk in events.chunks(7) {
        world.publish(chunk, true).await;
    }
    world.publish(&events[3..6], true).await;

    let running = worker_ingest::start(world.config(&[]), CancellationToken::new())
        .await
        .unwrap();
    world.wait_for_rows("monitor_results", events.len()).await;
    let incidents = world
        .db
        .query_strings(
            "SELECT urltarget_fk || ' ' || to_char(opened_at AT TIME ZONE 'UTC', 'HH24:MI') || ' ' \
             || to_char(confirmed_at AT TIME ZONE 'UTC', 'HH24:MI') || ' ' \
             || coalesce(to_char(resolved_at AT TIME ZONE 'UTC', 'HH24:MI'), 'open') || ' ' \
             || coalesce(cause, '-') \
             FROM incidents ORDER BY incident_pk",
        )
        .await;
    assert_eq!(incidents, [format!("{steady} 12:02 12:04 12:07 timeout")]);
    let opened_by_first_failure = world
        .db
        .query_strings(&format!(
            "SELECT count(*)::text FROM incidents i JOIN monitor_results r \
               ON r.monitor_results_pk = i.opened_by AND r.scheduled_at = i.opened_at \
             JOIN monitor_results c ON c.monitor_results_pk = i.closed_by AND c.scheduled_at = i.resolved_at \
             WHERE i.urltarget_fk = {steady}"
        ))
        .await;
    assert_eq!(opened_by_first_failure, ["1"]);
    let states = world
        .db
        .query_strings(
            "SELECT urltarget_fk || ' ' || state || ' ' || to_char(last_slot AT TIME ZONE 'UTC', 'HH24:MI') \
             FROM target_states ORDER BY urltarget_fk",
        )
        .await;
    assert_eq!(
        states,
        [
            format!("{steady} up 12:09"),
            // Slot 29 passed; slots 27 and 28 failed before it.
            format!("{flapping} up 12:29"),
        ]
    );
    running.shutdown();
    running.wait().await.unwrap();
    world.db.drop().await;
}
