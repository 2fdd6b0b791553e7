//! Delivery through crashes and beside other instances: the real `pingpipe-notify` killed with
//! SIGKILL in the middle of sends, and two instances sharing one outbox.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use entity::testing::Process;
use serde_json::json;

use crate::helpers::{Received, Receiver, WAIT, World, ok};

/// Every PagerDuty event the receiver got: dedup_key → the message ids it came with.
fn ids_by_key(requests: &[Received]) -> HashMap<String, HashSet<String>> {
    let mut keys: HashMap<String, HashSet<String>> = HashMap::new();
    for r in requests {
        let key = r.json()["dedup_key"].as_str().unwrap().to_owned();
        keys.entry(key)
            .or_default()
            .insert(r.header("x-pingpipe-message-id").to_owned());
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_changes_through_five_sigkills_are_all_delivered_with_stable_ids() {
    let world = World::new().await;
    // A slow receiver (100 ms an answer), so that kills land in the middle of sends.
    let receiver = Receiver::start(ok(), Duration::from_millis(100)).await;
    // PagerDuty: each change is its own message (keyed by its incident).
    let channel = world
        .channel(
            "pagerduty",
            json!({"url": receiver.url("/pd")}),
            json!({"routing_key": "K"}),
        )
        .await;
    world.queue(channel, 1, 200, "down").await;
    // And 20 webhook channels with 5 changes each: grouped messages under the same kills.
    for k in 0..20 {
        let hook = world
            .channel("webhook", json!({"url": receiver.url("/hook")}), json!({}))
            .await;
        world.queue(hook, 1000 + 5 * k, 5, "down").await;
    }
    let args = world.args(&["--concurrency", "8"]);
    let binary = env!("CARGO_BIN_EXE_pingpipe-notify");
    for kill in 1..=5 {
        let mut worker = Process::spawn(binary, &args[1..]);
        let before = receiver.requests().len();
        // Kill it once it is well into sending (some answered, more in flight).
        receiver
            .wait_until(WAIT, "sends before the kill", |r| r.len() >= before + 12)
            .await;
        worker.signal("-KILL");
        let status = worker.exit(Duration::from_secs(10)).await;
        assert!(!status.success(), "kill {kill}: {status:?}");
    }
    let mut worker = Process::spawn(binary, &args[1..]);
    world.wait_until_settled(Duration::from_secs(120)).await;
    worker.signal("-TERM");
    assert!(
        worker.exit(Duration::from_secs(20)).await.success(),
        "{}",
        worker.log()
    );

    // Every change delivered; one seen twice came with the same id both times.
    assert_eq!(world.statuses().await, ["delivered 220"]);
    let all = receiver.requests();
    let (hooks, requests): (Vec<Received>, Vec<Received>) =
        all.into_iter().partition(|r| r.path == "/hook");
    let mut bodies: HashMap<String, HashSet<String>> = HashMap::new();
    let mut targets = HashSet::new();
    for r in &hooks {
        let data = r.json()["data"].clone();
        for c in data["changes"].as_array().unwrap() {
            targets.insert(c["target_id"].as_i64().unwrap());
        }
        bodies
            .entry(r.header("webhook-id").to_owned())
            .or_default()
            .insert(data.to_string());
    }
    assert_eq!(targets.len(), 100, "every grouped change delivered");
    assert_eq!(bodies.len(), 20, "one message per webhook channel");
    for (id, seen) in &bodies {
        assert_eq!(seen.len(), 1, "{id} came with different contents: {seen:?}");
    }
    let keys = ids_by_key(&requests);
    assert_eq!(keys.len(), 200);
    for (key, ids) in &keys {
        assert_eq!(ids.len(), 1, "{key} came with ids {ids:?}");
    }
    // The kills interrupted sends: some were redelivered, and the log says so.
    let redelivered = requests.len() - keys.len() + hooks.len() - bodies.len();
    let interrupted: usize = world
        .one("SELECT count(*)::text FROM notification_attempts WHERE outcome = 'interrupted'")
        .await
        .parse()
        .unwrap();
    assert!(interrupted > 0, "no attempt was interrupted by five kills");
    assert!(
        redelivered <= interrupted,
        "{redelivered} redelivered, {interrupted} interrupted"
    );
    assert_eq!(
        world
            .one("SELECT count(*)::text FROM notification_attempts WHERE outcome IS NULL")
            .await,
        "0"
    );
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_never_send_a_change_twice() {
    let world = World::new().await;
    let receiver = Receiver::start(ok(), Duration::from_millis(20)).await;
    let pd = world
        .channel(
            "pagerduty",
            json!({"url": receiver.url("/pd")}),
            json!({"routing_key": "K"}),
        )
        .await;
    world.queue(pd, 1, 300, "down").await;
    // And 20 webhook channels with a storm each: grouped by whichever instance gets there.
    let mut hooks = Vec::new();
    for _ in 0..20 {
        let hook = world
            .channel("webhook", json!({"url": receiver.url("/hook")}), json!({}))
            .await;
        world.queue(hook, 1, 10, "down").await;
        hooks.push(hook);
    }
    let (one, _a) = world.start(&["--concurrency", "4"]).await;
    let (two, _b) = world.start(&["--concurrency", "4"]).await;
    world.wait_until_settled(WAIT).await;
    one.shutdown();
    two.shutdown();
    one.wait().await.unwrap();
    two.wait().await.unwrap();

    assert_eq!(world.statuses().await, ["delivered 320"]);
    let requests = receiver.requests();
    let pd_requests: Vec<Received> = requests
        .iter()
        .filter(|r| r.path == "/pd/v2/enqueue")
        .cloned()
        .collect();
    assert_eq!(pd_requests.len(), 300, "each change once");
    assert_eq!(ids_by_key(&pd_requests).len(), 300);
    let hook_requests: Vec<&Received> = requests.iter().filter(|r| r.path == "/hook").collect();
    assert_eq!(hook_requests.len(), 20, "one message per webhook channel");
    let ids: HashSet<&str> = requests
        .iter()
        .map(|r| r.header("x-pingpipe-message-id"))
        .collect();
    assert_eq!(ids.len(), 320);
    for r in hook_requests {
        assert_eq!(r.json()["data"]["changes"].as_array().unwrap().len(), 10);
    }
    world.db.drop().await;
}
