//! The broker away for longer than the transaction timeout under a running monitor: the monitor
//! keeps running (an outage is not a fence), is not ready meanwhile, publishes again when the
//! broker is back, and no (target, slot) is published twice; SIGTERM during an outage exits
//! within the shutdown deadline and says how many results it dropped. A test binary of its own,
//! because it stops the local Kafka of `make test` (cargo runs test binaries one at a time).

// Test helpers may unwrap: a failure is the test's answer.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "../monitor/fixture.rs"]
mod fixture;
#[allow(dead_code)]
#[path = "../monitor/helpers.rs"]
mod helpers;

use std::process::Stdio;
use std::time::{Duration, Instant};

use entity::testing::{Process, free_addr, wait_for_status};
use helpers::World;

/// How long the broker stays away: three times the monitor's transaction timeout (10 s).
const OUTAGE: Duration = Duration::from_secs(30);
/// A little longer than the transaction timeout.
const SHORT_OUTAGE: Duration = Duration::from_secs(12);
const WAIT: Duration = Duration::from_secs(90);

/// Runs `scripts/kafka.sh <action>` of the checkout being tested.
fn kafka(action: &str) {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let status = std::process::Command::new("bash")
        .args([&format!("{dir}/../scripts/kafka.sh"), action])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "kafka.sh {action} failed");
}

/// Brings the broker back however the test ends, for the tests that follow.
struct BrokerBack;

impl Drop for BrokerBack {
    fn drop(&mut self) {
        kafka("up");
    }
}

/// A monitor process with a 1 s minute, its stderr kept and its `/readyz` at hand.
struct Monitor {
    process: Process,
    addr: std::net::SocketAddr,
}

impl Monitor {
    fn spawn(world: &World) -> Monitor {
        let addr = free_addr();
        let listen = addr.to_string();
        let args = world.args(&["--listen", listen.as_str(), "--minute", "1s"]);
        let process = Process::spawn(env!("CARGO_BIN_EXE_pingpipe-monitor"), &args[1..]);
        Monitor { process, addr }
    }

    fn log(&self) -> String {
        self.process.log()
    }

    async fn wait_ready(&self, want: u16) {
        wait_for_status(self.addr, "/readyz", want, WAIT, || self.log()).await;
    }

    fn running(&mut self) -> bool {
        self.process.running()
    }
}

/// Stops the broker for `length` under the running monitor, which must say it is not ready,
/// keep running, and — once the broker is back — publish results of later slots again, none
/// of them twice.
async fn broker_away(monitor: &mut Monitor, world: &World, length: Duration) {
    tokio::task::spawn_blocking(|| kafka("down")).await.unwrap();
    let stopped = Instant::now();
    monitor.wait_ready(503).await;
    tokio::time::sleep(length.saturating_sub(stopped.elapsed())).await;
    assert!(
        monitor.running(),
        "the monitor stopped during the outage:\n{}",
        monitor.log()
    );
    tokio::task::spawn_blocking(|| kafka("up")).await.unwrap();
    let back = chrono::Utc::now();
    let mut log = world.reader("read_committed");
    log.wait_for(WAIT, "results after the outage", |events| {
        events.iter().filter(|e| e.scheduled_at > back).count() >= 10
    })
    .await;
    assert!(monitor.running(), "{}", monitor.log());
    helpers::assert_no_duplicate_slots(&log.events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_is_survived_and_sigterm_during_one_exits_within_the_deadline() {
    if std::env::var("PINGPIPE_EXTERNAL_KAFKA").map_or(true, |v| v != "0") {
        entity::testing::skip(
            &entity::testing::current_test(),
            "PINGPIPE_EXTERNAL_KAFKA is not 0, so this Kafka is not ours to stop",
        );
        return;
    }
    let world = World::new().await;
    let app = fixture::serve("127.0.0.1").await;
    for i in 0..5 {
        world
            .add_target(&app.url(&format!("/status/200?n={i}")), 1)
            .await;
    }
    let mut monitor = Monitor::spawn(&world);
    let mut log = world.reader("read_committed");
    log.wait_for(WAIT, "results before the outage", |e| e.len() >= 10)
        .await;
    monitor.wait_ready(200).await;

    // The broker goes away for three transaction timeouts.
    let _back = BrokerBack;
    broker_away(&mut monitor, &world, OUTAGE).await;
    monitor.wait_ready(200).await;
    // The outage was felt by the publisher: depending on when the broker's abort of the timed
    // out transaction meets librdkafka, the monitor either aborts and sends the batch again, or
    // gets a fatal error and, knowing it for an outage, makes a new producer. (Which one ran
    // is printed below.)
    let said = monitor.log();
    assert!(
        said.contains("recreating the producer") || said.contains("Aborting the transaction"),
        "{said}"
    );
    // Away again, a little longer than the transaction timeout (a slow broker restart): the
    // transaction open when it left is older than the timeout when it is back, so the fatal
    // error that may follow is an outage too, not a fence.
    broker_away(&mut monitor, &world, SHORT_OUTAGE).await;

    // Again away, and the monitor is asked to stop meanwhile: it exits within its shutdown
    // timeout (10 s by default) and says what it dropped.
    tokio::task::spawn_blocking(|| kafka("down")).await.unwrap();
    monitor.wait_ready(503).await;
    let asked = Instant::now();
    monitor.process.signal("-TERM");
    let status = monitor.process.exit(Duration::from_secs(30)).await;
    let took = asked.elapsed();
    assert!(
        took <= Duration::from_secs(11),
        "took {took:?} to stop (deadline 10 s):\n{}",
        monitor.log()
    );
    assert!(status.success(), "{status}:\n{}", monitor.log());
    let said = monitor.log();
    assert!(said.contains("dropped"), "{said}");
    // What it went through, for whoever reads the test's output.
    for line in said
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
    {
        println!("{line}");
    }
    drop(_back);
    world.db.drop().await;
}
