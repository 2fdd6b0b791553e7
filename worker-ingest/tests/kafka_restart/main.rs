//! The Kafka broker restarted under a running ingest worker: the worker resumes by itself, and
//! what was committed before and after the restart is stored exactly once. A test binary of its
//! own, because it restarts the local broker of `make test` (cargo runs test binaries one after
//! another, so no other test sees it).

// Test helpers may unwrap: a failure is the test's answer.
#![allow(clippy::unwrap_used)]

#[path = "../ingest/helpers.rs"]
mod helpers;

use helpers::{World, events, expected};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broker_restart_the_worker_resumes_by_itself_exactly_once() {
    if !helpers::is_local("kafka") {
        return;
    }
    let world = World::with_targets(20).await;
    let before = events(&world.targets, 0, 3000);
    let after = events(&world.targets, 150, 1000);
    let running = worker_ingest::start(world.config(&[]), CancellationToken::new())
        .await
        .unwrap();
    world.publish(&before, true).await;
    world.wait_for_rows("monitor_results", 3000).await;
    helpers::restart_local("kafka").await;
    world.publish(&after, true).await;
    world.wait_for_rows("monitor_results", 4000).await;
    let all: Vec<_> = before.into_iter().chain(after).collect();
    assert_eq!(world.stored().await, expected(&all));
    assert_eq!(world.count("rejected_records").await, 0);
    running.shutdown();
    running.wait().await.unwrap();
    world.db.drop().await;
}
