//! PostgreSQL restarted under a running ingest worker: nothing is lost, nothing doubles, and the
//! worker recovers by itself. A test binary of its own, because it restarts the local PostgreSQL
//! of `make test` (cargo runs test binaries one after another, so no other test sees it).

// Test helpers may unwrap: a failure is the test's answer.
#![allow(clippy::unwrap_used)]

#[path = "../ingest/helpers.rs"]
mod helpers;

use std::time::Duration;

use helpers::{WAIT, World, events, expected};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_stream_loses_nothing_and_needs_no_worker_restart() {
    if !helpers::is_local("postgres") {
        return;
    }
    let world = World::with_targets(20).await;
    let all = events(&world.targets, 0, 3000);
    let running = worker_ingest::start(world.config(&[]), CancellationToken::new())
        .await
        .unwrap();
    let stream = helpers::stream(world.topic.clone(), &all, 50, Duration::from_millis(50));
    // Mid-stream: some rows stored, more coming.
    let deadline = tokio::time::Instant::now() + WAIT;
    while world.count("monitor_results").await < 500 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no progress before the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    helpers::restart_local("postgres").await;
    stream.await.unwrap();
    world.wait_for_rows("monitor_results", 3000).await;
    assert_eq!(world.stored().await, expected(&all));
    assert_eq!(world.count("rejected_records").await, 0);
    running.shutdown();
    running.wait().await.unwrap();
    world.db.drop().await;
}
