//! Notification benchmark: `make bench-notify` (or `cargo bench -p worker-notify --bench notify`).
//!
//! Runs the real `pingpipe-notify` binary (release build) against the real PostgreSQL and a
//! fake webhook receiver on loopback (in this process, answering 200 after `--latency` ms),
//! with N queued messages (10,000), each one change, signed:
//! 1. spread over 100 webhook channels (each channel's messages go out in order, so at most one
//!    per channel is in flight), with the default concurrency (64);
//! 2. one PagerDuty channel with N incidents (no order between them), queued in the outbox as
//!    the ingest worker leaves them: grouped (one delivery each), claimed and sent;
//! 3. the one-at-a-time sender: scenario 1 with `--concurrency 1`.
//!
//! For each: deliveries/s from the worker's start to the last one recorded delivered, and the
//! worker's peak RSS. Options (after `--`): --messages N (10000), --latency MS (5).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use entity::testing::Process;
use migration::testing::TestDb;

const KEY: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A receiver answering 200 after `latency`; counts requests.
async fn receiver(latency: Duration) -> (String, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let counted = count.clone();
    let app = axum::Router::new().fallback(move || {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(latency).await;
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, count)
}

/// Queues `messages` deliveries of one change each: over `channels` webhook channels, or one
/// PagerDuty channel when `channels` is 0.
async fn queue(db: &TestDb, base: &str, messages: usize, channels: usize) {
    db.exec(
        "TRUNCATE notification_attempts, notifications, notification_deliveries, \
         notification_channels CASCADE",
    )
    .await;
    if channels == 0 {
        db.exec(&format!(
            "INSERT INTO notification_channels (channel_pk, name, kind, settings, secrets) \
             VALUES (1, 'pd', 'pagerduty', '{{\"url\": \"{base}/pd\"}}', \
                     '{{\"routing_key\": \"K\"}}')"
        ))
        .await;
    } else {
        db.exec(&format!(
            "INSERT INTO notification_channels (channel_pk, name, kind, settings, secrets) \
             SELECT c, 'hook-' || c, 'webhook', '{{\"url\": \"{base}/hook\"}}', \
                    '{{\"signing_key\": \"{KEY}\"}}' \
             FROM generate_series(1, {channels}) AS c"
        ))
        .await;
    }
    let spread = channels.max(1);
    let key = if channels == 0 {
        "'1:' || i"
    } else {
        "((i % {spread}) + 1)::text"
    }
    .replace("{spread}", &spread.to_string());
    // PagerDuty's changes wait in the outbox, as the ingest worker leaves them: the worker
    // groups them (one delivery each) and sends them — the whole path. The webhooks' are
    // deliveries already (grouping would make one message per channel of them).
    let delivery = if channels == 0 { "NULL" } else { "i" };
    if channels > 0 {
        db.exec(&format!(
            "INSERT INTO notification_deliveries (delivery_pk, channel_fk, sequence_key, \
                 give_up_at) \
             SELECT i, (i % {spread}) + 1, {key}, now() + interval '1 day' \
             FROM generate_series(1, {messages}) AS i"
        ))
        .await;
    }
    db.exec(&format!(
        "INSERT INTO notifications (channel_fk, urltarget_fk, url, event, from_state, to_state, \
             since, cause, incident_fk, delivery_fk) \
         SELECT (i % {spread}) + 1, i, 'https://site.example/' || i, 'down', 'up', 'down', \
                now(), 'timeout', i, {delivery} \
         FROM generate_series(1, {messages}) AS i"
    ))
    .await;
}

/// Runs the worker until every delivery is delivered: (deliveries/s, peak RSS in MiB).
async fn drain(db: &TestDb, messages: usize, concurrency: usize) -> (f64, f64) {
    let args: Vec<String> = [
        "--database-url",
        &db.url,
        "--listen",
        "127.0.0.1:0",
        "--group-window",
        "0s",
        "--poll",
        "100ms",
        "--concurrency",
        &concurrency.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let started = Instant::now();
    let mut worker = Process::spawn(env!("CARGO_BIN_EXE_pingpipe-notify"), &args);
    let pid = worker.child.id().unwrap();
    let mut peak = 0f64;
    let deadline = started + Duration::from_secs(600);
    loop {
        peak = peak.max(entity::testing::peak_rss_mib(pid));
        let delivered: usize = db
            .query_strings(
                "SELECT count(*)::text FROM notification_deliveries WHERE status = 'delivered'",
            )
            .await[0]
            .parse()
            .unwrap();
        if delivered >= messages {
            break;
        }
        assert!(worker.running(), "the worker stopped:\n{}", worker.log());
        assert!(
            Instant::now() < deadline,
            "{delivered} of {messages} after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    peak = peak.max(entity::testing::peak_rss_mib(pid));
    worker.signal("-TERM");
    assert!(worker.exit(Duration::from_secs(30)).await.success());
    (messages as f64 / elapsed, peak)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let option = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().expect("a number"))
    };
    let messages = option("--messages", 10_000) as usize;
    let latency = Duration::from_millis(option("--latency", 5));
    let db = TestDb::migrated().await;
    let (base, received) = receiver(latency).await;
    println!(
        "pingpipe-notify (release) on {} CPUs, {messages} queued messages of one change, \
         fake receiver on loopback answering 200 after {latency:?}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    queue(&db, &base, messages, 100).await;
    let (rate, rss) = drain(&db, messages, 64).await;
    println!(
        "webhooks, 100 channels (in order per channel), concurrency 64: {rate:.0} deliveries/s, \
         peak RSS {rss:.0} MiB"
    );

    queue(&db, &base, messages, 0).await;
    let (pd_rate, pd_rss) = drain(&db, messages, 64).await;
    println!(
        "PagerDuty, one channel, {messages} incidents from the outbox (grouped, claimed, sent), \
         concurrency 64: {pd_rate:.0} deliveries/s, peak RSS {pd_rss:.0} MiB"
    );

    let baseline = (messages / 10).max(100);
    queue(&db, &base, baseline, 100).await;
    let (one_rate, one_rss) = drain(&db, baseline, 1).await;
    println!(
        "baseline, one at a time (concurrency 1), {baseline} messages: {one_rate:.0} \
         deliveries/s, peak RSS {one_rss:.0} MiB"
    );
    println!(
        "→ {:.1}× the one-at-a-time sender; {} requests received in all",
        rate / one_rate,
        received.load(Ordering::Relaxed)
    );
    db.drop().await;
}
