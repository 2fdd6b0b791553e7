//! The ingest worker against the real Kafka and PostgreSQL. Each test has its own database,
//! topic and consumer group.

// Test helpers may unwrap: a failure is the test's answer.
#![allow(clippy::unwrap_used)]

mod helpers;
mod history;
mod notifications;
mod robustness;
mod states;
mod versions;

use std::process::Stdio;
use std::time::Duration;

use helpers::{WAIT, World, events, expected};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_become_exactly_ten_thousand_rows() {
    let world = World::with_targets(20).await;
    let all = events(&world.targets, 0, 10_000);
    for chunk in all.chunks(1000) {
        world.publish(chunk, true).await;
    }
    let running = worker_ingest::start(world.config(&[]), CancellationToken::new())
        .await
        .unwrap();
    world.wait_for_rows("monitor_results", 10_000).await;
    assert_eq!(world.stored().await, expected(&all));
    assert_eq!(world.count("rejected_records").await, 0);
    // The positions stored with the rows cover the whole topic.
    let stored: i64 = world
        .db
        .query_strings("SELECT sum(next_offset)::text FROM consumer_positions")
        .await[0]
        .parse()
        .unwrap();
    assert!(stored >= 10_000, "{stored}");
    assert_eq!(running.rows_written(), 10_000);
    running.shutdown();
    running.wait().await.unwrap();
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_are_parked_with_their_bytes_and_good_ones_flow() {
    let world = World::with_targets(1).await;
    let good = events(&world.targets, 0, 2);
    let mut unknown_version: serde_json::Value = serde_json::from_slice(&good[0].encode()).unwrap();
    unknown_version["schema_version"] = 99.into();
    let mut missing_field: serde_json::Value = serde_json::from_slice(&good[0].encode()).unwrap();
    missing_field.as_object_mut().unwrap().remove("start_time");
    let mut unknown_target = good[0].clone();
    unknown_target.target_id = 987_654;
    let poison: Vec<(String, Vec<u8>, &str)> = vec![
        (
            "1".into(),
            b"\xff\xfe not json".to_vec(),
            "not a result event",
        ),
        (
            "1".into(),
            serde_json::to_vec(&unknown_version).unwrap(),
            "unknown schema_version 99",
        ),
        (
            "1".into(),
            serde_json::to_vec(&missing_field).unwrap(),
            "missing field `start_time`",
        ),
        (
            unknown_target.key(),
            unknown_target.encode(),
            "target 987654 does not exist",
        ),
    ];
    let mut records = vec![(good[0].key(), good[0].encode())];
    records.extend(poison.iter().map(|(k, v, _)| (k.clone(), v.clone())));
    records.push((good[1].key(), good[1].encode()));
    world.publish_raw(records, true).await;

    let running = worker_ingest::start(world.config(&[]), CancellationToken::new())
        .await
        .unwrap();
    world.wait_for_rows("rejected_records", poison.len()).await;
    world.wait_for_rows("monitor_results", 2).await;
    assert_eq!(world.stored().await, expected(&good));
    for (_, bytes, reason) in &poison {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let found = world
            .db
            .query_strings(&format!(
                "SELECT reason || ' @' || partition || ':' || kafka_offset FROM rejected_records \
                 WHERE payload = '\\x{hex}'::bytea AND topic = '{}'",
                world.topic
            ))
            .await;
        assert_eq!(found.len(), 1, "{reason}: {found:?}");
        assert!(found[0].contains(reason), "{found:?} should say {reason}");
    }
    running.shutdown();
    running.wait().await.unwrap();
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_transactions_never_reach_the_table() {
    let world = World::with_targets(5).await;
    let committed = events(&world.targets, 0, 50);
    let aborted = events(&world.targets, 100, 50);
    let committed_later = events(&world.targets, 200, 50);
    world.publish(&committed, true).await;
    world.publish(&aborted, false).await;
    world.publish(&committed_later, true).await;

    let running = worker_ingest::start(world.config(&[]), CancellationToken::new())
        .await
        .unwrap();
    // The later commit is behind the aborted records in every partition's log.
    world.wait_for_rows("monitor_results", 100).await;
    let mut both = committed.clone();
    both.extend(committed_later);
    assert_eq!(world.stored().await, expected(&both));
    running.shutdown();
    running.wait().await.unwrap();
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_in_one_group_split_the_partitions_and_the_total_is_exact() {
    let world = World::with_targets(30).await;
    let shutdown = CancellationToken::new();
    let first = worker_ingest::start(world.config(&[]), shutdown.clone())
        .await
        .unwrap();
    let second = worker_ingest::start(world.config(&[]), shutdown.clone())
        .await
        .unwrap();
    let all = events(&world.targets, 0, 3000);
    // A steady stream, so records keep coming after the group has settled on two members.
    helpers::stream(world.topic.clone(), &all, 100, Duration::from_millis(100))
        .await
        .unwrap();
    world.wait_for_rows("monitor_results", 3000).await;
    assert_eq!(world.stored().await, expected(&all));
    let (a, b) = (first.rows_written(), second.rows_written());
    assert_eq!(a + b, 3000);
    assert!(a > 0 && b > 0, "one instance did all the work: {a} / {b}");
    shutdown.cancel();
    first.wait().await.unwrap();
    second.wait().await.unwrap();
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_committed_batch_is_announced_with_notify() {
    let world = World::with_targets(3).await;
    let mut listener = sqlx::postgres::PgListener::connect(&world.db.url)
        .await
        .unwrap();
    listener.listen(entity::channels::RESULTS).await.unwrap();
    let running = worker_ingest::start(world.config(&[]), CancellationToken::new())
        .await
        .unwrap();
    let batch = events(&world.targets, 0, 30);
    world.publish(&batch, true).await;

    let mut announced: Vec<i64> = Vec::new();
    while announced.len() < 30 {
        let note = tokio::time::timeout(WAIT, listener.recv())
            .await
            .unwrap()
            .unwrap();
        announced.extend(
            note.payload()
                .split(',')
                .map(|id| id.parse::<i64>().unwrap()),
        );
    }
    announced.sort();
    let mut ids: Vec<i64> = world
        .db
        .query_strings("SELECT monitor_results_pk::text FROM monitor_results")
        .await
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    ids.sort();
    assert_eq!(announced, ids);
    running.shutdown();
    running.wait().await.unwrap();
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_neither_loses_nor_duplicates() {
    let world = World::with_targets(25).await;
    let all = events(&world.targets, 0, 5000);
    // The stream: 100 committed transactions of 50 events, one every 60 ms.
    let producer = helpers::stream(world.topic.clone(), &all, 50, Duration::from_millis(60));
    let spawn = || {
        let args = world.args(&["--instance", "crash-test", "--batch-max", "200"]);
        tokio::process::Command::new(env!("CARGO_BIN_EXE_pingpipe-ingest"))
            .args(&args[1..])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    // Kill moments spread over 150–1,200 ms after each start (a fixed, varied sequence).
    for delay_ms in [150u64, 900, 400, 1200, 650, 300] {
        let before = world.count("monitor_results").await;
        let mut child = spawn();
        // Wait for progress first, so each kill lands in the middle of real work.
        let deadline = tokio::time::Instant::now() + WAIT;
        while world.count("monitor_results").await == before && !producer.is_finished() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no progress after a restart"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
    producer.await.unwrap();
    let mut last = spawn();
    world.wait_for_rows("monitor_results", 5000).await;
    assert_eq!(world.stored().await, expected(&all));
    assert_eq!(world.count("rejected_records").await, 0);
    last.start_kill().unwrap();
    last.wait().await.unwrap();
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_with_exit_zero() {
    let world = World::with_targets(2).await;
    world.publish(&events(&world.targets, 0, 10), true).await;
    let args = world.args(&[]);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pingpipe-ingest"))
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    world.wait_for_rows("monitor_results", 10).await;
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_partition_writes_nothing_and_a_repeated_slot_is_a_conflict() {
    use worker_ingest::store::{Batch, StoreError};
    let world = World::with_targets(1).await;
    let old_owner = world.store();
    let new_owner = world.store();
    let batch = |from: i64, to: i64, minute: i64| Batch {
        rows: vec![helpers::entry(
            &events(&world.targets, minute as usize, 1)[0],
            0,
            from,
        )],
        rejects: Vec::new(),
        positions: [(0, (from, to))].into(),
        ..Default::default()
    };
    // Both saw position 0; the new owner stores offsets 0..10 first.
    assert_eq!(old_owner.position(0).await.unwrap(), 0);
    assert_eq!(new_owner.position(0).await.unwrap(), 0);
    new_owner.write(&batch(0, 10, 0)).await.unwrap();
    // The old owner's batch, based on position 0, is refused whole.
    let err = old_owner.write(&batch(0, 5, 1)).await.unwrap_err();
    assert!(matches!(err, StoreError::PartitionLost(0)), "{err}");
    assert_eq!(world.count("monitor_results").await, 1);
    assert_eq!(new_owner.position(0).await.unwrap(), 10);

    // A slot published twice (the second copy in a later batch) is a counted conflict, and
    // the rest of its batch is stored.
    let mut repeat = batch(10, 12, 0);
    repeat.rows.extend(batch(11, 12, 2).rows);
    let written = new_owner.write(&repeat).await.unwrap();
    assert_eq!((written.inserted, written.conflicts), (1, 1));
    assert_eq!(world.count("monitor_results").await, 2);
    assert_eq!(new_owner.position(0).await.unwrap(), 12);
    world.db.drop().await;
}
