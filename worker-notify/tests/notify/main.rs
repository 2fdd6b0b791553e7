//! The notification worker against the real PostgreSQL, with fake receivers on loopback that
//! speak the real services' formats, and a real SMTP server (aiosmtpd) for e-mail.

// Test helpers may unwrap: a failure is the test's answer.
#![allow(clippy::unwrap_used)]

mod helpers;
mod kills;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use entity::testing::Process;
use serde_json::json;
use worker_notify::signing::SigningKey;

use crate::helpers::{Receiver, WAIT, World, ok};

const KEY: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_channel_gets_its_services_payload() {
    let world = World::new().await;
    let receiver = Receiver::start(
        std::sync::Arc::new(|r: &helpers::Received, _| match r.path.as_str() {
            "/discord" => (204, vec![], String::new()),
            "/teams" => (202, vec![], String::new()),
            "/pd/v2/enqueue" => (
                202,
                vec![],
                r#"{"status":"success","message":"Event processed"}"#.to_owned(),
            ),
            _ => (200, vec![], "ok".to_owned()),
        }),
        Duration::ZERO,
    )
    .await;
    let channels = [
        (
            "webhook",
            json!({"url": receiver.url("/webhook")}),
            json!({"signing_key": KEY}),
        ),
        ("slack", json!({}), json!({"url": receiver.url("/slack")})),
        (
            "discord",
            json!({}),
            json!({"url": receiver.url("/discord")}),
        ),
        ("teams", json!({}), json!({"url": receiver.url("/teams")})),
        (
            "ntfy",
            json!({"url": receiver.url("/ntfy"), "topic": "ops-alerts"}),
            json!({"token": "tk_ntfy"}),
        ),
        (
            "telegram",
            json!({"url": receiver.url("/tg"), "chat_id": "-1001234"}),
            json!({"token": "123456:ABC-def"}),
        ),
        (
            "pagerduty",
            json!({"url": receiver.url("/pd")}),
            json!({"routing_key": "R0UT1NGKEY"}),
        ),
    ];
    for (kind, settings, secrets) in channels {
        let channel = world.channel(kind, settings, secrets).await;
        world.queue(channel, 7, 1, "down").await;
    }
    let (running, _stop) = world.start(&[]).await;
    receiver
        .wait_until(WAIT, "one message per channel", |r| r.len() >= 7)
        .await;
    world.wait_until_settled(WAIT).await;
    running.shutdown();
    running.wait().await.unwrap();
    assert_eq!(world.statuses().await, ["delivered 7"]);
    let by_path: HashMap<String, helpers::Received> = receiver
        .requests()
        .into_iter()
        .map(|r| (r.path.clone(), r))
        .collect();
    assert_eq!(by_path.len(), 7, "{:?}", by_path.keys());
    let message_ids: HashSet<&str> = by_path
        .values()
        .map(|r| r.header("x-pingpipe-message-id"))
        .collect();
    assert_eq!(message_ids.len(), 7, "each message has its own id");
    for r in by_path.values() {
        assert_eq!(r.method, "POST");
        assert_eq!(r.header("content-type"), "application/json");
    }

    // The generic webhook: Standard Webhooks headers and a signature that verifies.
    let hook = &by_path["/webhook"];
    let id = hook.header("webhook-id");
    assert_eq!(id, hook.header("x-pingpipe-message-id"));
    let timestamp: i64 = hook.header("webhook-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
    let key = SigningKey::parse(KEY).unwrap();
    assert!(key.verify(
        id,
        timestamp,
        hook.body.as_bytes(),
        hook.header("webhook-signature")
    ));
    assert!(!key.verify(
        id,
        timestamp + 1,
        hook.body.as_bytes(),
        hook.header("webhook-signature")
    ));
    let body = hook.json();
    assert_eq!(body["type"], "pingpipe.changes");
    assert_eq!(body["data"]["id"], id);
    assert_eq!(body["data"]["summary"], "DOWN: https://site.example/7");
    let change = &body["data"]["changes"][0];
    assert_eq!(change["target_id"], 7);
    assert_eq!(change["event"], "down");
    assert_eq!(change["from"], "up");
    assert_eq!(change["to"], "down");
    assert_eq!(change["cause"], "timeout");
    assert_eq!(change["link"], "http://dash.test:8080/#/targets/7");
    assert!(
        body["data"]["text"]
            .as_str()
            .unwrap()
            .contains("since 2026-11-30 10:00:00 UTC: timeout")
    );

    // The others: the whole body, as each service documents it.
    let text = "DOWN https://site.example/7 since 2026-11-30 10:00:00 UTC: timeout\n  \
                http://dash.test:8080/#/targets/7";
    let summary = "DOWN: https://site.example/7";
    assert_eq!(
        by_path["/slack"].json(),
        json!({"text": format!("*{summary}*\n{text}"), "unfurl_links": false})
    );
    let mut discord = by_path["/discord"].json();
    let created = discord["embeds"][0]["timestamp"].take();
    assert!(created.as_str().unwrap().ends_with('Z'), "{created}");
    assert_eq!(
        discord,
        json!({
            "username": "Pingpipe",
            "embeds": [{"title": summary, "description": text, "color": 0xd32f2f, "timestamp": null}],
            "allowed_mentions": {"parse": []},
        })
    );
    assert_eq!(
        by_path["/teams"].json(),
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {"type": "TextBlock", "text": summary, "weight": "Bolder", "size": "Medium", "wrap": true},
                        {"type": "TextBlock", "text": text, "wrap": true},
                    ],
                },
            }],
        })
    );
    // ntfy: JSON publishing to the server's root, with the token.
    assert_eq!(by_path["/ntfy/"].header("authorization"), "Bearer tk_ntfy");
    assert_eq!(
        by_path["/ntfy/"].json(),
        json!({
            "topic": "ops-alerts",
            "title": summary,
            "message": text,
            "priority": 5,
            "tags": ["rotating_light"],
            "click": "http://dash.test:8080/#/targets/7",
        })
    );
    // Telegram: the bot token in the path, the chat in the body.
    assert_eq!(
        by_path["/tg/bot123456:ABC-def/sendMessage"].json(),
        json!({
            "chat_id": "-1001234",
            "text": format!("{summary}\n\n{text}"),
            "link_preview_options": {"is_disabled": true},
        })
    );
    // PagerDuty Events v2: a trigger keyed by the incident.
    let pd = &by_path["/pd/v2/enqueue"];
    assert_eq!(
        pd.json(),
        json!({
            "routing_key": "R0UT1NGKEY",
            "event_action": "trigger",
            "dedup_key": "pingpipe-incident-1007",
            "payload": {
                "summary": "DOWN https://site.example/7 since 2026-11-30 10:00:00 UTC: timeout",
                "source": "https://site.example/7",
                "severity": "critical",
                "timestamp": "2026-11-30T10:00:00Z",
                "component": "https://site.example/7",
                "class": "timeout",
                "custom_details": {
                    "event": "down",
                    "from": "up",
                    "to": "down",
                    "since": "2026-11-30T10:00:00Z",
                    "cause": "timeout",
                    "message_id": pd.header("x-pingpipe-message-id"),
                },
            },
            "client": "Pingpipe",
            "client_url": "http://dash.test:8080/#/targets/7",
            "links": [{"href": "http://dash.test:8080/#/targets/7", "text": "The target in Pingpipe"}],
        })
    );
    // Every attempt is in the log, with the receiver's answer.
    let log = world
        .db
        .query_strings(
            "SELECT c.kind || ' ' || a.number || ' ' || a.outcome || ' ' || a.http_status \
             FROM notification_attempts a \
             JOIN notification_deliveries d ON d.delivery_pk = a.delivery_fk \
             JOIN notification_channels c ON c.channel_pk = d.channel_fk ORDER BY c.kind",
        )
        .await;
    assert_eq!(
        log,
        [
            "discord 1 delivered 204",
            "ntfy 1 delivered 200",
            "pagerduty 1 delivered 202",
            "slack 1 delivered 200",
            "teams 1 delivered 202",
            "telegram 1 delivered 200",
            "webhook 1 delivered 200",
        ]
    );
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_resolves_the_pagerduty_incident_the_down_triggered() {
    let world = World::new().await;
    let receiver = Receiver::start(ok(), Duration::ZERO).await;
    let channel = world
        .channel(
            "pagerduty",
            json!({"url": receiver.url("/pd")}),
            json!({"routing_key": "K"}),
        )
        .await;
    world.queue(channel, 3, 1, "down").await;
    world.queue(channel, 3, 1, "recovered").await;
    let (running, _stop) = world.start(&[]).await;
    receiver
        .wait_until(WAIT, "two events", |r| r.len() >= 2)
        .await;
    world.wait_until_settled(WAIT).await;
    running.shutdown();
    running.wait().await.unwrap();
    let events: Vec<(String, String)> = receiver
        .requests()
        .iter()
        .map(|r| {
            let j = r.json();
            (
                j["event_action"].as_str().unwrap().to_owned(),
                j["dedup_key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("trigger".to_owned(), "pingpipe-incident-1003".to_owned()),
            ("resolve".to_owned(), "pingpipe-incident-1003".to_owned()),
        ]
    );
    world.db.drop().await;
}

/// The Python that runs aiosmtpd (installed by `make test` into a virtual environment).
fn smtp_python() -> Option<String> {
    let python = std::env::var("PINGPIPE_PYTHON").ok()?;
    std::process::Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .status()
        .ok()?
        .success()
        .then_some(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_reaches_a_real_smtp_server_with_its_subject_and_message_id() {
    let Some(python) = smtp_python() else {
        entity::testing::skip(
            "an_email_reaches_a_real_smtp_server_with_its_subject_and_message_id",
            "PINGPIPE_PYTHON with aiosmtpd is not set (make test installs it)",
        );
        return;
    };
    let world = World::new().await;
    let maildir = std::env::temp_dir().join(entity::testing::unique("maildir"));
    let addr = entity::testing::free_addr();
    let mut smtp = entity::testing::Process::spawn(
        &python,
        &[
            "-m".into(),
            "aiosmtpd".into(),
            "-n".into(),
            "-l".into(),
            addr.to_string(),
            "-c".into(),
            "aiosmtpd.handlers.Mailbox".into(),
            maildir.display().to_string(),
        ],
    );
    // Ready when it accepts connections.
    let deadline = std::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(smtp.running(), "aiosmtpd stopped:\n{}", smtp.log());
        assert!(
            std::time::Instant::now() < deadline,
            "aiosmtpd never listened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let channel = world
        .channel(
            "email",
            json!({
                "smtp_host": addr.ip().to_string(),
                "smtp_port": addr.port(),
                "smtp_security": "none",
                "from": "Pingpipe <pingpipe@monitor.test>",
                "to": ["ops@team.test", "Oncall <oncall@team.test>"],
            }),
            json!({}),
        )
        .await;
    world.queue(channel, 40, 3, "down").await;
    let (running, _stop) = world.start(&[]).await;
    world.wait_until_settled(WAIT).await;
    running.shutdown();
    running.wait().await.unwrap();
    assert_eq!(world.statuses().await, ["delivered 1"]);
    let message_id = world
        .one("SELECT message_id::text FROM notification_deliveries")
        .await;

    // One e-mail (three changes grouped) in the Maildir, as the server received it.
    let new = maildir.join("new");
    let mails: Vec<String> = std::fs::read_dir(&new)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let mail = &mails[0];
    let header = |name: &str| {
        mail.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in:\n{mail}"))
            .to_owned()
    };
    assert_eq!(header("Subject"), "[Pingpipe] 3 targets: 3 down");
    assert_eq!(header("Message-ID"), format!("<{message_id}@monitor.test>"));
    assert_eq!(header("From"), "Pingpipe <pingpipe@monitor.test>");
    assert!(header("To").contains("ops@team.test"), "{mail}");
    assert!(header("To").contains("oncall@team.test"), "{mail}");
    assert!(
        mail.contains("DOWN https://site.example/41 since 2026-11-30 10:00:00 UTC: timeout"),
        "{mail}"
    );
    smtp.signal("-TERM");
    let _ = smtp.exit(Duration::from_secs(10)).await;
    let _ = std::fs::remove_dir_all(&maildir);
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_for_two_minutes_gets_the_message_once_after_it_recovers() {
    let world = World::new().await;
    let started = std::time::Instant::now();
    let receiver = Receiver::start(
        std::sync::Arc::new(move |_, _| {
            if started.elapsed() < Duration::from_secs(120) {
                (500, vec![], "down for maintenance".to_owned())
            } else {
                (200, vec![], "ok".to_owned())
            }
        }),
        Duration::ZERO,
    )
    .await;
    let channel = world
        .channel("webhook", json!({"url": receiver.url("/hook")}), json!({}))
        .await;
    world.queue(channel, 1, 1, "down").await;
    let (running, _stop) = world
        .start(&["--retry-first", "1s", "--retry-max", "40s"])
        .await;
    world.wait_until_settled(Duration::from_secs(240)).await;
    running.shutdown();
    running.wait().await.unwrap();
    assert_eq!(world.statuses().await, ["delivered 1"]);
    let requests = receiver.requests();
    // Delivered once: the one attempt after the receiver recovered is the last.
    let accepted: Vec<_> = requests
        .iter()
        .filter(|r| r.at.duration_since(started) >= Duration::from_secs(120))
        .collect();
    assert_eq!(accepted.len(), 1, "{} requests", requests.len());
    let ids: HashSet<&str> = requests.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 1, "every attempt carries the message's id");
    // Attempts logged, with growing intervals while the backoff is below its cap.
    let attempts = world
        .db
        .query_strings(
            "SELECT outcome || ' ' || coalesce(http_status::text, '-') || ' ' || \
                    (extract(epoch FROM started_at) * 1000)::bigint \
             FROM notification_attempts ORDER BY number",
        )
        .await;
    assert_eq!(attempts.len(), requests.len(), "{attempts:?}");
    assert!(attempts.len() >= 5, "{attempts:?}");
    let (last, retries) = attempts.split_last().unwrap();
    assert!(last.starts_with("delivered 200 "), "{attempts:?}");
    assert!(
        retries.iter().all(|a| a.starts_with("retry 500 ")),
        "{attempts:?}"
    );
    let times: Vec<i64> = attempts
        .iter()
        .map(|a| a.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    let gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Each wait is at least the longest the one before could be (equal jitter), give or take
    // the worker's poll (50 ms) and the time an attempt takes.
    for pair in gaps.windows(2).take(4) {
        assert!(pair[1] + 250 >= pair[0], "intervals must grow: {gaps:?}");
    }
    assert!(gaps[3] > gaps[0] * 3, "{gaps:?}");
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_waited_for_and_a_400_fails_at_once_with_the_answer() {
    let world = World::new().await;
    let receiver = Receiver::start(
        std::sync::Arc::new(
            |r: &helpers::Received, before| match (r.path.as_str(), before) {
                ("/busy", 0) => (
                    429,
                    vec![("retry-after".to_owned(), "5".to_owned())],
                    "slow down".to_owned(),
                ),
                ("/bad", _) => (400, vec![], r#"{"error":"invalid_payload"}"#.to_owned()),
                // PostgreSQL's text cannot hold a NUL: the answer is kept without it.
                ("/nul", _) => (200, vec![], "ok\0fine".to_owned()),
                _ => (200, vec![], "ok".to_owned()),
            },
        ),
        Duration::ZERO,
    )
    .await;
    let busy = world
        .channel("webhook", json!({"url": receiver.url("/busy")}), json!({}))
        .await;
    let bad = world
        .channel("slack", json!({}), json!({"url": receiver.url("/bad")}))
        .await;
    let nul = world
        .channel("webhook", json!({"url": receiver.url("/nul")}), json!({}))
        .await;
    world.queue(busy, 1, 1, "down").await;
    world.queue(bad, 2, 1, "down").await;
    world.queue(nul, 3, 1, "down").await;
    let (running, _stop) = world.start(&[]).await;
    world.wait_until_settled(WAIT).await;
    running.shutdown();
    running.wait().await.unwrap();

    let busy_requests = receiver.to_path("/busy");
    assert_eq!(busy_requests.len(), 2);
    let waited = busy_requests[1].at - busy_requests[0].at;
    assert!(waited >= Duration::from_secs(5), "waited {waited:?}");
    assert_eq!(
        world
            .db
            .query_strings(&format!(
                "SELECT a.outcome || ' ' || a.http_status || ' ' || coalesce(a.retry_after_ms::text, '-') \
                 FROM notification_attempts a JOIN notification_deliveries d \
                     ON d.delivery_pk = a.delivery_fk \
                 WHERE d.channel_fk = {busy} ORDER BY a.number"
            ))
            .await,
        ["retry 429 5000", "delivered 200 -"]
    );

    // The 400: failed after one attempt, the receiver's answer kept; the 429's five seconds
    // passed meanwhile without a second try.
    assert_eq!(receiver.to_path("/bad").len(), 1);
    assert_eq!(
        world
            .one(&format!(
                "SELECT status || ' ' || attempts || ' ' || last_status || ' ' || last_answer \
                 FROM notification_deliveries WHERE channel_fk = {bad}"
            ))
            .await,
        r#"failed 1 400 {"error":"invalid_payload"}"#
    );
    assert_eq!(
        world
            .one(&format!(
                "SELECT status || ' ' || attempts || ' ' || last_answer \
                 FROM notification_deliveries WHERE channel_fk = {nul}"
            ))
            .await,
        "delivered 1 ok\u{FFFD}fine"
    );
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_within_the_window_leave_as_one_message_and_reminders_follow_a_down_target() {
    let world = World::new().await;
    let receiver = Receiver::start(ok(), Duration::ZERO).await;
    let channel = world
        .channel("webhook", json!({"url": receiver.url("/hook")}), json!({}))
        .await;
    // A first change goes out at once; 50 more within the window leave together after it.
    world.queue(channel, 1, 1, "down").await;
    let (running, _stop) = world
        .start(&["--group-window", "3s", "--minute", "1s"])
        .await;
    receiver
        .wait_until(WAIT, "the first change", |r| !r.is_empty())
        .await;
    // When the channel was grouped (the window runs from there, not from the first send,
    // which a busy machine may delay).
    let grouped_at = || async {
        world
            .one(&format!(
                "SELECT (extract(epoch FROM last_grouped_at) * 1000000)::bigint::text \
                 FROM notification_channels WHERE channel_pk = {channel}"
            ))
            .await
            .parse::<i64>()
            .unwrap()
    };
    let first_grouped = grouped_at().await;
    world.queue(channel, 100, 50, "down").await;
    receiver
        .wait_until(WAIT, "the grouped changes", |r| r.len() >= 2)
        .await;
    let requests = receiver.requests();
    assert_eq!(
        requests[0].json()["data"]["changes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let grouped = requests[1].json();
    assert_eq!(grouped["data"]["changes"].as_array().unwrap().len(), 50);
    assert_eq!(grouped["data"]["summary"], "50 targets: 50 down");
    let waited_micros = grouped_at().await - first_grouped;
    assert!(
        waited_micros >= 3_000_000,
        "grouped again after {waited_micros} µs"
    );
    assert!(requests[1].at > requests[0].at);

    // Reminders: a route asking for one every minute (1 s here) while target 7 stays down.
    world
        .db
        .exec(&format!(
            "INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency) \
                 VALUES (7, 'https://down.example/', 1); \
             INSERT INTO target_states (urltarget_fk, state, state_since) \
                 VALUES (7, 'down', now() - interval '1500 milliseconds'); \
             INSERT INTO notification_routes (name, channel_fk, target_ids, events, \
                 remind_every_minutes) VALUES ('remind', {channel}, '[7]', '[\"down\"]', 1)"
        ))
        .await;
    receiver
        .wait_until(WAIT, "two reminders", |r| {
            r.iter()
                .filter(|r| r.body.contains("\"event\":\"reminder\""))
                .count()
                >= 2
        })
        .await;
    running.shutdown();
    running.wait().await.unwrap();
    let reminders: Vec<i64> = receiver
        .requests()
        .iter()
        .flat_map(|r| {
            r.json()["data"]["changes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["event"] == "reminder")
                .map(|c| c["reminder"].as_i64().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    // Numbered 1, 2, …: each once.
    let unique: HashSet<i64> = reminders.iter().copied().collect();
    assert_eq!(unique.len(), reminders.len(), "{reminders:?}");
    assert!(unique.contains(&1) && unique.contains(&2), "{reminders:?}");
    world.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_logs_and_answers_and_a_disabled_channel_waits() {
    let world = World::new().await;
    let receiver = Receiver::start(ok(), Duration::ZERO).await;
    // Telegram's bot token is in the URL's path; nothing listens at that port.
    let closed = entity::testing::free_addr();
    let telegram = world
        .channel(
            "telegram",
            json!({"url": format!("http://{closed}"), "chat_id": "42"}),
            json!({"token": "123456:SECRET-token"}),
        )
        .await;
    world.queue(telegram, 1, 1, "down").await;
    let paused = world
        .channel("webhook", json!({"url": receiver.url("/later")}), json!({}))
        .await;
    world
        .db
        .exec(&format!(
            "UPDATE notification_channels SET enabled = false WHERE channel_pk = {paused}"
        ))
        .await;
    world.queue(paused, 2, 1, "down").await;
    let args = world.args(&[]);
    let mut worker = Process::spawn(env!("CARGO_BIN_EXE_pingpipe-notify"), &args[1..]);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let retries: usize = world
            .one("SELECT count(*)::text FROM notification_attempts WHERE outcome = 'retry'")
            .await
            .parse()
            .unwrap();
        if retries >= 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", worker.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.wait_for_log(&["will be tried again"], WAIT).await;
    let errors = world
        .db
        .query_strings(
            "SELECT coalesce(error, '') || ' ' || coalesce(answer, '') FROM notification_attempts \
             UNION ALL SELECT coalesce(last_error, '') FROM notification_deliveries",
        )
        .await;
    assert!(errors.iter().all(|e| !e.contains("SECRET")), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("cannot connect")),
        "{errors:?}"
    );
    assert!(!worker.log().contains("SECRET"), "{}", worker.log());

    // The disabled channel's change waited meanwhile; enabled, it goes out.
    assert!(receiver.requests().is_empty());
    assert_eq!(
        world
            .one("SELECT count(*)::text FROM notifications WHERE delivery_fk IS NULL")
            .await,
        "1"
    );
    world
        .db
        .exec(&format!(
            "UPDATE notification_channels SET enabled = true WHERE channel_pk = {paused}"
        ))
        .await;
    receiver
        .wait_until(WAIT, "the waiting change", |r| r.len() == 1)
        .await;
    worker.signal("-TERM");
    assert!(worker.exit(Duration::from_secs(20)).await.success());
    assert!(!worker.log().contains("SECRET"));
    world.db.drop().await;
}
