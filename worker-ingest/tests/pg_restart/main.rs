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

/// The tests here stop the one PostgreSQL every test uses: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// 3,000 events streaming to a running worker; `fault` strikes once 300 rows are stored.
/// Afterwards every committed event is stored exactly once, nothing is parked, and the worker
/// (never restarted) is ready again.
async fn survives(fault: impl AsyncFnOnce(&worker_ingest::Running)) {
    let _serial = SERIAL.lock().await;
    let world = World::with_targets(20).await;
    let all = events(&world.targets, 0, 3000);
    let running = worker_ingest::start(world.config(&[]), CancellationToken::new())
        .await
        .unwrap();
    let stream = helpers::stream(world.topic.clone(), &all, 50, Duration::from_millis(50));
    // Mid-stream: some rows stored, more coming.
    let deadline = tokio::time::Instant::now() + WAIT;
    while world.count("monitor_results").await < 300 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no progress before the fault"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fault(&running).await;
    stream.await.unwrap();
    world.wait_for_rows("monitor_results", 3000).await;
    assert_eq!(world.stored().await, expected(&all));
    assert_eq!(world.count("rejected_records").await, 0);
    wait_for_readyz(&running, 200).await;
    running.shutdown();
    running.wait().await.unwrap();
    world.db.drop().await;
}

async fn wait_for_readyz(running: &worker_ingest::Running, status: u16) {
    helpers::wait_for_status(running.http_addr, "/readyz", status, WAIT, String::new).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_stream_loses_nothing_and_needs_no_worker_restart() {
    if !helpers::is_local("postgres") {
        return;
    }
    survives(async |_| helpers::restart_local("postgres").await).await;
}

/// PostgreSQL away for 30 s while results stream: the worker says it is not ready, its writers
/// retry (nothing is parked as if the data were bad), and when the database is back everything
/// committed meanwhile is stored exactly once, without restarting the worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_for_30_s_parks_nothing_and_loses_nothing() {
    if !helpers::is_local("postgres") {
        return;
    }
    survives(async |running| {
        // The database stays away for 30 s, not a blink: many retries, the stream goes on.
        let back_at = tokio::time::Instant::now() + Duration::from_secs(30);
        helpers::local("postgres", "down").await;
        wait_for_readyz(running, 503).await;
        tokio::time::sleep_until(back_at).await;
        helpers::local("postgres", "up").await;
    })
    .await;
}
