//! What users and operators do to a running ingest worker: edit targets while results stream,
//! kill it, feed it records PostgreSQL cannot store, start it twice under one name, lose the
//! log under its positions. Each test fails on the code before issue #10.

use std::time::Duration;

use chrono::TimeZone;
use tokio_util::sync::CancellationToken;

use crate::helpers::{self, WAIT, World, events, expected, spawn_ingest};

/// Runs `sql`, again while PostgreSQL ends it as a deadlock (at most ten times). An UPDATE or
/// DELETE of targets locks its rows in the order it scans them, a batch locks its targets
/// FOR KEY SHARE in its own: PostgreSQL may end a deadlock by aborting either. The batch is
/// retried by the worker; a person (or script) whose statement was aborted runs it again.
async fn run_again_after_deadlocks(db: &sea_orm::DatabaseConnection, sql: &str) {
    let mut tries = 0;
    while let Err(e) = sea_orm::ConnectionTrait::execute_unprepared(db, sql).await {
        tries += 1;
        assert!(
            e.to_string().contains("deadlock detected") && tries < 10,
            "{e}"
        );
    }
}

/// Pauses and resumes the first third of `targets`, renames the second third, round after
/// round, until `stop`: what users do every day (each UPDATE moves the row in the heap).
fn edit_targets(world: &World, stop: CancellationToken) -> tokio::task::JoinHandle<u32> {
    let url = world.db.url.clone();
    let third = world.targets.len() / 3;
    let paused: Vec<String> = world.targets[..third].iter().map(i32::to_string).collect();
    let renamed: Vec<String> = world.targets[third..2 * third]
        .iter()
        .map(i32::to_string)
        .collect();
    tokio::spawn(async move {
        let db = sea_orm::Database::connect(url).await.unwrap();
        let mut rounds = 0u32;
        while !stop.is_cancelled() {
            rounds += 1;
            let (paused, renamed) = (paused.join(","), renamed.join(","));
            for sql in [
                format!("UPDATE urltargets SET paused = true WHERE urltargets_pk IN ({paused})"),
                format!("UPDATE urltargets SET paused = false WHERE urltargets_pk IN ({paused})"),
                format!(
                    "UPDATE urltargets SET urltarget = 'http://127.0.0.1/renamed/' || urltargets_pk || '/{rounds}' \
                     WHERE urltargets_pk IN ({renamed})"
                ),
            ] {
                run_again_after_deadlocks(&db, &sql).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        rounds
    })
}

/// Removes `targets`, a few at a time every 40 ms, until all are gone.
fn remove_targets(world: &World, targets: Vec<i32>) -> tokio::task::JoinHandle<()> {
    let url = world.db.url.clone();
    tokio::spawn(async move {
        let db = sea_orm::Database::connect(url).await.unwrap();
        for group in targets.chunks(5) {
            let ids: Vec<String> = group.iter().map(i32::to_string).collect();
            let sql = format!(
                "DELETE FROM urltargets WHERE urltargets_pk IN ({})",
                ids.join(",")
            );
            run_again_after_deadlocks(&db, &sql).await;
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_removed_while_results_stream_leave_no_result_behind() {
    // The worker locks a batch's targets itself and skips the results' own target check
    // (migration 19): a removal racing the batches must still leave no result of a removed
    // target, park the later ones as such, and store every result of the others.
    let world = World::with_targets(300).await;
    let all = events(&world.targets, 0, 9_000);
    let (removed, kept) = world.targets.split_at(150);
    let producer = helpers::stream(world.topic.clone(), &all, 100, Duration::from_millis(20));
    let proc = spawn_ingest(&world.args(&["--batch-max", "300"])[1..]);
    let deadline = tokio::time::Instant::now() + WAIT;
    while world.count("monitor_results").await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no progress:\n{}",
            proc.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let remover = remove_targets(&world, removed.to_vec());
    producer.await.unwrap();
    remover.await.unwrap();
    let committed = helpers::committed_events(&world.topic, all.len()).await;
    assert_eq!(committed.len(), all.len());
    // The removals are over: the kept targets' results are all stored, nothing else is.
    let expected_kept = expected(
        &all.iter()
            .filter(|e| kept.contains(&e.target_id))
            .cloned()
            .collect::<Vec<_>>(),
    );
    world
        .wait_for_rows("monitor_results", expected_kept.len())
        .await;
    assert_eq!(world.stored().await, expected_kept, "{}", proc.log());
    assert_eq!(
        world
            .count("monitor_results r WHERE NOT EXISTS (SELECT 1 FROM urltargets t WHERE t.urltargets_pk = r.urltarget_fk)")
            .await,
        0
    );
    let removed_list: Vec<String> = removed.iter().map(i32::to_string).collect();
    let parked = world.count("rejected_records").await;
    assert_eq!(
        world
            .count("rejected_records WHERE reason LIKE 'target % does not exist (removed?)'")
            .await,
        parked,
        "only results of removed targets are parked"
    );
    assert!(
        parked > 0,
        "results arrived after their target was removed: {}",
        removed_list.join(",")
    );
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_of_paused_resumed_and_renamed_targets_are_all_stored_through_three_kills() {
    let world = World::with_targets(500).await;
    let all = events(&world.targets, 0, 15_000);
    let stop_editing = CancellationToken::new();
    let editor = edit_targets(&world, stop_editing.clone());
    // Targets edited before the stream starts, too (the case no test covered).
    while world
        .count("urltargets WHERE urltarget LIKE '%/renamed/%'")
        .await
        == 0
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let producer = helpers::stream(world.topic.clone(), &all, 100, Duration::from_millis(25));
    let args = world.args(&["--instance", "edit-test", "--batch-max", "500"]);
    for delay_ms in [300u64, 800, 500] {
        let before = world.count("monitor_results").await;
        let mut proc = spawn_ingest(&args[1..]);
        let deadline = tokio::time::Instant::now() + WAIT;
        while world.count("monitor_results").await == before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no progress:\n{}",
                proc.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        proc.child.start_kill().unwrap(); // SIGKILL
        proc.child.wait().await.unwrap();
    }
    let proc = spawn_ingest(&args[1..]);
    producer.await.unwrap();
    world.wait_for_rows("monitor_results", all.len()).await;
    stop_editing.cancel();
    assert!(
        editor.await.unwrap() > 1,
        "targets were edited while results streamed"
    );
    // Every committed event is a row, and no row is parked.
    let committed = helpers::committed_events(&world.topic, all.len()).await;
    assert_eq!(committed.len(), all.len());
    assert_eq!(world.stored().await, committed);
    assert_eq!(world.count("rejected_records").await, 0, "{}", proc.log());
    world.db.drop().await;
}

/// The two records of issue #10 that stopped ingestion: a failure class that is a NUL, and a
/// slot in year -5000. With a third (a NUL in the URL), among 1,000 records of one batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_postgres_cannot_store_are_parked_and_the_partition_keeps_flowing() {
    let world = World::with_targets(10).await;
    let good = events(&world.targets, 0, 997);
    let template: serde_json::Value = serde_json::from_slice(&good[0].encode()).unwrap();
    let mut nul_class = template.clone();
    nul_class["http_status"] = serde_json::Value::Null;
    nul_class["failure_class"] = "\u{0}".into();
    let mut ancient = template.clone();
    ancient["scheduled_at"] = "-5000-01-01T00:00:00Z".into();
    let mut nul_url = template.clone();
    nul_url["url"] = "http://127.0.0.1/\u{0}".into();
    let bad: Vec<Vec<u8>> = [nul_class, ancient, nul_url]
        .iter()
        .map(|v| serde_json::to_vec(v).unwrap())
        .collect();
    // All to one partition (one key), bad ones in the middle of the good ones.
    let key = good[0].key();
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, e) in good.iter().enumerate() {
        if i % 300 == 150 {
            records.push((key.clone(), bad[i / 300].clone()));
        }
        records.push((key.clone(), e.encode()));
    }
    assert_eq!(records.len(), 1000);
    world.publish_raw(records, true).await;

    let running = worker_ingest::start(world.config(&[]), CancellationToken::new())
        .await
        .unwrap();
    world.wait_for_rows("monitor_results", 997).await;
    world.wait_for_rows("rejected_records", 3).await;
    assert_eq!(world.stored().await, expected(&good));
    let reasons = world
        .db
        .query_strings("SELECT reason FROM rejected_records ORDER BY kafka_offset")
        .await;
    assert!(reasons[0].contains("unknown variant"), "{reasons:?}");
    assert!(reasons[1].contains("scheduled_at"), "{reasons:?}");
    assert!(reasons[2].contains("NUL"), "{reasons:?}");
    // The raw bytes are kept as they came.
    let kept = world
        .db
        .query_strings("SELECT encode(payload, 'hex') FROM rejected_records ORDER BY kafka_offset")
        .await;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(kept, bad.iter().map(|b| hex(b)).collect::<Vec<_>>());
    // The partition flows on, and the worker says it is ready.
    let more = events(&world.targets, 1000, 10);
    world.publish(&more, true).await;
    world.wait_for_rows("monitor_results", 1007).await;
    assert_eq!(
        helpers::http_status(running.http_addr, "/readyz").await,
        Some(200)
    );
    running.shutdown();
    running.wait().await.unwrap();
    world.db.drop().await;
}

/// Rows the decoder would refuse, written straight through the store: PostgreSQL refuses them
/// inside a batch of 1,000, and the store finds them by splitting the batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_postgres_refuses_are_found_in_the_batch_and_parked_with_its_reason() {
    use worker_ingest::store::Batch;
    let world = World::with_targets(5).await;
    let store = world.store();
    let all = events(&world.targets, 0, 1000);
    let mut rows: Vec<_> = all
        .iter()
        .enumerate()
        .map(|(i, e)| helpers::entry(e, 0, i as i64))
        .collect();
    rows[10].0.failure_class = Some("\u{0}".into());
    rows[500].0.scheduled_at = chrono::Utc.with_ymd_and_hms(-5000, 1, 1, 0, 0, 0).unwrap();
    rows[999].0.failure_class = Some("not a class".into()); // the CHECK constraint
    assert_eq!(store.position(0).await.unwrap(), 0);
    let batch = Batch {
        rows,
        rejects: Vec::new(),
        positions: [(0, (0, 1000))].into(),
        ..Default::default()
    };
    let written = store.write(&batch).await.unwrap();
    assert_eq!((written.inserted, written.rejected), (997, 3));
    assert_eq!(store.position(0).await.unwrap(), 1000);
    let parked = world
        .db
        .query_strings(
            "SELECT kafka_offset || ' ' || reason FROM rejected_records ORDER BY kafka_offset",
        )
        .await;
    assert_eq!(parked.len(), 3);
    assert!(
        parked[0].starts_with("10 refused by PostgreSQL"),
        "{parked:?}"
    );
    assert!(parked[0].contains("SQLSTATE 22"), "{parked:?}");
    assert!(
        parked[1].starts_with("500 refused by PostgreSQL"),
        "{parked:?}"
    );
    assert!(
        parked[2].starts_with("999 refused by PostgreSQL"),
        "{parked:?}"
    );
    assert!(parked[2].contains("SQLSTATE 23514"), "{parked:?}");
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_with_the_same_name_makes_one_exit_non_zero_and_say_why() {
    let world = World::with_targets(2).await;
    world.publish(&events(&world.targets, 0, 10), true).await;
    let args = world.args(&["--instance", "twin"]);
    let mut first = spawn_ingest(&args[1..]);
    world.wait_for_rows("monitor_results", 10).await;
    let mut second = spawn_ingest(&args[1..]);
    // One of them is fenced by the group coordinator and stops; the other keeps running.
    let deadline = tokio::time::Instant::now() + WAIT;
    let (mut stopped, mut running) = loop {
        if first.child.try_wait().unwrap().is_some() {
            break (first, second);
        }
        if second.child.try_wait().unwrap().is_some() {
            break (second, first);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "both still running:\n{}\n---\n{}",
            first.log(),
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let status = stopped.exit(WAIT).await;
    assert!(!status.success(), "{status}");
    stopped
        .wait_for_log(&["PINGPIPE_INGEST_INSTANCE", "consumer loop"], WAIT)
        .await;
    assert!(running.child.try_wait().unwrap().is_none());
    running.child.start_kill().unwrap();
    running.child.wait().await.unwrap();
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_panics_makes_the_process_exit_non_zero() {
    let world = World::with_targets(2).await;
    world.publish(&events(&world.targets, 0, 10), true).await;
    let args = world.args(&["--panic-writer-after", "1", "--writers", "1"]);
    let mut proc = spawn_ingest(&args[1..]);
    let status = proc.exit(WAIT).await;
    assert!(!status.success(), "{status}");
    proc.wait_for_log(&["writer 0", "panicked", "test hook"], WAIT)
        .await;
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_ahead_of_the_log_is_reported_until_reset_and_then_flows() {
    let world = World::with_targets(3).await;
    let all = events(&world.targets, 0, 30);
    world.publish(&all, true).await;
    // As if the topic had been recreated under positions stored before.
    for partition in 0..3 {
        world
            .db
            .exec(&format!(
                "INSERT INTO consumer_positions (group_id, topic, partition, next_offset) \
                 VALUES ('{}', '{}', {partition}, {})",
                world.group,
                world.topic,
                if partition == 1 { 5000 } else { 0 }
            ))
            .await;
    }
    let addr = helpers::free_addr();
    let mut args = world.args(&[]);
    let listen = args.iter().position(|a| a == "--listen").unwrap();
    args[listen + 1] = addr.to_string();
    let mut proc = spawn_ingest(&args[1..]);
    let ahead_line = format!("topic {} partition 1", world.topic);
    proc.wait_for_log(
        &["ERROR", &ahead_line, "reset-positions --partition 1"],
        WAIT,
    )
    .await;
    assert_eq!(helpers::http_status(addr, "/readyz").await, Some(503));
    // Which targets' results went to partition 1 (the record key decides): those wait.
    let topic = world.topic.clone();
    let partition_of: std::collections::HashMap<i32, i32> =
        tokio::task::spawn_blocking(move || {
            use rdkafka::consumer::Consumer;
            use rdkafka::message::Message;
            let consumer = entity::testing::consumer(&topic, "read_committed");
            let mut seen = std::collections::HashMap::new();
            let deadline = std::time::Instant::now() + WAIT;
            let mut n = 0;
            while n < 30 && std::time::Instant::now() < deadline {
                if let Some(m) = consumer.poll(Duration::from_millis(200)) {
                    let m = m.unwrap();
                    let key: i32 = std::str::from_utf8(m.key().unwrap())
                        .unwrap()
                        .parse()
                        .unwrap();
                    seen.insert(key, m.partition());
                    n += 1;
                }
            }
            consumer.unsubscribe();
            seen
        })
        .await
        .unwrap();
    let waiting: Vec<i32> = world
        .targets
        .iter()
        .copied()
        .filter(|t| partition_of[t] == 1)
        .collect();
    assert!(!waiting.is_empty(), "{partition_of:?}");
    let flowing: Vec<_> = all
        .iter()
        .filter(|e| !waiting.contains(&e.target_id))
        .cloned()
        .collect();
    world.wait_for_rows("monitor_results", flowing.len()).await;
    let stored = flowing.len();
    // The new log grows past the old position: that must not clear the alarm by itself.
    let more = events(&waiting[..1], 100, 5100);
    world.publish(&more, true).await;
    let reported = proc.log().matches(&ahead_line).count();
    let deadline = tokio::time::Instant::now() + WAIT;
    while proc.log().matches(&ahead_line).count() < reported + 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reported again:\n{}",
            proc.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(helpers::http_status(addr, "/readyz").await, Some(503));
    assert_eq!(world.count("monitor_results").await, stored);
    // The operator's command, as the log gave it, then it flows again without a restart.
    let mut reset_args = args[1..].to_vec();
    reset_args
        .extend(["reset-positions", "--partition", "1", "--to", "earliest"].map(String::from));
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_pingpipe-ingest"))
        .args(&reset_args)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("partition 1: position 5000 -> 0"), "{said}");
    assert!(
        !said.contains("partition 0") && !said.contains("partition 2"),
        "{said}"
    );
    let mut everything = all.clone();
    everything.extend(more);
    world
        .wait_for_rows("monitor_results", everything.len())
        .await;
    assert_eq!(world.stored().await, expected(&everything));
    helpers::wait_for_status(addr, "/readyz", 200, WAIT, || proc.log()).await;
    // Without --partition or --all the command touches only partitions that are ahead: now
    // there are none, and it says so instead of rewinding healthy partitions.
    let mut default_args = args[1..].to_vec();
    default_args.push("reset-positions".into());
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_pingpipe-ingest"))
        .args(&default_args)
        .output()
        .await
        .unwrap();
    assert!(!output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no stored position is ahead"),
        "{output:?}"
    );
    assert_eq!(world.count("monitor_results").await, everything.len());
    proc.child.start_kill().unwrap();
    proc.exit(WAIT).await;
    world.db.drop().await;
}
