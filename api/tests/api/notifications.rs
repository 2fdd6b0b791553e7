//! Notifications over GraphQL (#14): channels (secrets write-only), routes, test messages to a
//! fake receiver on the loopback interface, the delivery log and redeliveries.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::{App, TOKEN, error, spawn_app, spawn_app_with};

/// What a fake receiver got, and what it answers.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    answer: Arc<Mutex<(u16, String)>>,
}

impl Receiver {
    /// A receiver on 127.0.0.1 answering 200 "ok"; returns it and its URL.
    async fn start() -> (Receiver, String) {
        let receiver = Receiver {
            answer: Arc::new(Mutex::new((200, "ok".to_owned()))),
            ..Receiver::default()
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn answer(&self, status: u16, body: &str) {
        *self.answer.lock().unwrap() = (status, body.to_owned());
    }

    fn last(&self) -> (HeaderMap, Bytes) {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    receiver.seen.lock().unwrap().push((headers, body));
    let (status, body) = receiver.answer.lock().unwrap().clone();
    (StatusCode::from_u16(status).unwrap(), body)
}

const CHANNEL: &str = "id name kind enabled url topic chatId smtpHost smtpPort smtpSecurity from to username secretsSet template createdAt updatedAt routes { id name }";
const ROUTE: &str = "id name channel { id name } allTargets targetIds tags events remindEveryMinutes silenceInMaintenance enabled createdAt";
const DELIVERY: &str = "id messageId channel { id name kind } status test attempts createdAt finishedAt nextAttemptAt giveUpAt lastStatus lastAnswer lastError summary
    changes { targetId url event from to since cause incidentId reminder }
    attemptLog { number startedAt finishedAt outcome httpStatus answer error retryAfterMs }";

const SIGNING_KEY: &str = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LWJ5dGVzLTAxMjM0NTY3";

async fn create(app: &App, input: Value) -> Value {
    app.gql(
        &format!("mutation($i: ChannelInput!) {{ createChannel(input: $i) {{ {CHANNEL} }} }}"),
        json!({ "i": input }),
        Some(TOKEN),
    )
    .await
}

async fn create_id(app: &App, input: Value) -> String {
    let answer = create(app, input).await;
    answer["data"]["createChannel"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_owned()
}

async fn test_channel(app: &App, id: &str) -> Value {
    let answer = app
        .gql(
            &format!("mutation($id: ID!) {{ testChannel(id: $id) {{ delivered status answer error delivery {{ {DELIVERY} }} }} }}"),
            json!({ "id": id }),
            Some(TOKEN),
        )
        .await;
    assert!(answer["errors"].is_null(), "{answer}");
    answer["data"]["testChannel"].clone()
}

#[tokio::test]
async fn channels_of_every_kind_are_created_and_their_secrets_never_come_back() {
    let app = spawn_app().await;
    let secrets = [
        "http://127.0.0.1:9/services/T0/B0/SLACK-SECRET-PATH",
        "https://discord.test/api/webhooks/1/DISCORD-SECRET-PATH",
        "https://teams.test/workflows/TEAMS-SECRET-PATH",
        SIGNING_KEY,
        "NTFY-SECRET-TOKEN",
        "123456:TELEGRAM-SECRET-TOKEN",
        "SMTP-SECRET-PASSWORD",
        "PAGERDUTY-SECRET-ROUTING-KEY",
    ];
    let inputs = [
        json!({"name": "hook", "kind": "webhook", "url": "https://example.test/hook", "signingKey": secrets[3]}),
        json!({"name": "slack", "kind": "SLACK", "url": secrets[0]}),
        json!({"name": "discord", "kind": "discord", "url": secrets[1]}),
        json!({"name": "teams", "kind": "Teams", "url": secrets[2]}),
        json!({"name": "ntfy", "kind": "ntfy", "topic": "pingpipe-alerts", "token": secrets[4]}),
        json!({"name": "telegram", "kind": "telegram", "chatId": "-1001234", "token": secrets[5]}),
        json!({"name": "mail", "kind": "email", "smtpHost": "127.0.0.1", "smtpPort": 2525, "smtpSecurity": "NONE",
               "from": "Pingpipe <pingpipe@example.test>", "to": ["ops@example.test", "Dev <dev@example.test>"],
               "username": "pingpipe", "password": secrets[6], "template": "{{ summary }}"}),
        json!({"name": "pagerduty", "kind": "pagerduty", "routingKey": secrets[7], "enabled": false}),
    ];
    let mut answers = Vec::new();
    for input in &inputs {
        let answer = create(&app, input.clone()).await;
        assert!(answer["errors"].is_null(), "{input}: {answer}");
        answers.push(answer["data"]["createChannel"].clone());
    }
    let kinds: Vec<&str> = answers
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "WEBHOOK",
            "SLACK",
            "DISCORD",
            "TEAMS",
            "NTFY",
            "TELEGRAM",
            "EMAIL",
            "PAGERDUTY"
        ]
    );
    assert_eq!(answers[0]["url"], "https://example.test/hook");
    assert_eq!(answers[0]["secretsSet"], json!(["signingKey"]));
    // Slack's URL is a secret: only its origin shows.
    assert_eq!(answers[1]["url"], "http://127.0.0.1:9/…");
    assert_eq!(answers[1]["secretsSet"], json!(["url"]));
    assert_eq!(answers[4]["topic"], "pingpipe-alerts");
    assert_eq!(answers[5]["chatId"], "-1001234");
    assert_eq!(
        answers[6],
        json!({"id": answers[6]["id"], "name": "mail", "kind": "EMAIL", "enabled": true, "url": null,
               "topic": null, "chatId": null, "smtpHost": "127.0.0.1", "smtpPort": 2525,
               "smtpSecurity": "NONE", "from": "Pingpipe <pingpipe@example.test>",
               "to": ["ops@example.test", "Dev <dev@example.test>"], "username": "pingpipe",
               "secretsSet": ["password"], "template": "{{ summary }}",
               "createdAt": answers[6]["createdAt"], "updatedAt": answers[6]["updatedAt"],
               "routes": []})
    );
    assert_eq!(answers[7]["enabled"], false);
    assert_eq!(answers[7]["secretsSet"], json!(["routingKey"]));

    // A route on one of them, and a test message to a channel that cannot be reached (the
    // delivery log shows its error): every field of every answer, none with a secret.
    let route = app
        .gql(
            &format!("mutation($i: RouteInput!) {{ createRoute(input: $i) {{ {ROUTE} }} }}"),
            json!({"i": {"name": "all to slack", "channelId": answers[1]["id"], "allTargets": true}}),
            Some(TOKEN),
        )
        .await;
    assert!(route["errors"].is_null(), "{route}");
    test_channel(&app, answers[1]["id"].as_str().unwrap()).await;
    let everything = app
        .gql(
            &format!(
                "{{ channels {{ {CHANNEL} }} routes {{ {ROUTE} }} deliveries {{ edges {{ node {{ {DELIVERY} }} }} }} }}"
            ),
            json!({}),
            Some(TOKEN),
        )
        .await;
    assert!(everything["errors"].is_null(), "{everything}");
    assert_eq!(everything["data"]["channels"].as_array().unwrap().len(), 8);
    assert_eq!(
        everything["data"]["channels"][1]["routes"][0]["name"],
        "all to slack"
    );
    let text = format!("{everything}{route}{}", json!(answers));
    for secret in secrets {
        let telling = secret.rsplit('/').next().unwrap();
        assert!(
            !text.contains(telling),
            "{telling} was returned: {everything}"
        );
    }
    app.finish().await;
}

#[tokio::test]
async fn bad_channels_are_refused_naming_the_field_and_nothing_is_stored() {
    let app = spawn_app().await;
    for (input, field) in [
        (
            json!({"name": "x", "kind": "webhook", "url": "ftp://example.test/hook"}),
            "url: ",
        ),
        (
            json!({"name": "x", "kind": "slack", "url": "ftp://hooks.slack.test/x"}),
            "url: ",
        ),
        (
            json!({"name": "x", "kind": "sms", "url": "https://example.test/"}),
            "kind: ",
        ),
        (
            json!({"name": "x", "kind": "webhook", "url": "https://example.test/", "template": "{% for c in changes %}"}),
            "template: ",
        ),
        (
            json!({"name": "x", "kind": "email", "smtpHost": "127.0.0.1", "from": "pingpipe@example.test", "to": ["not an address"]}),
            "to: ",
        ),
        (
            json!({"name": "x", "kind": "email", "smtpHost": "127.0.0.1", "from": "nobody", "to": ["ops@example.test"]}),
            "from: ",
        ),
        (
            json!({"name": "x", "kind": "webhook", "url": "https://example.test/", "signingKey": "not-a-key"}),
            "signingKey: ",
        ),
        (
            json!({"name": " x", "kind": "webhook", "url": "https://example.test/"}),
            "name: ",
        ),
        (
            json!({"name": "x", "kind": "email", "smtpHost": "127.0.0.1", "smtpPort": 70000, "from": "a@example.test", "to": ["b@example.test"]}),
            "smtpPort: ",
        ),
    ] {
        let (code, message) = error(&create(&app, input.clone()).await);
        assert_eq!(code, "BAD_USER_INPUT", "{input}");
        assert!(message.starts_with(field), "{input}: {message}");
    }
    assert!(
        app.db
            .query_strings("SELECT name FROM notification_channels")
            .await
            .is_empty()
    );
    create_id(
        &app,
        json!({"name": "x", "kind": "webhook", "url": "https://example.test/"}),
    )
    .await;
    let (code, message) = error(
        &create(
            &app,
            json!({"name": "x", "kind": "webhook", "url": "https://example.test/2"}),
        )
        .await,
    );
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.starts_with("name: "), "{message}");
    app.finish().await;
}

#[tokio::test]
async fn test_channel_returns_the_receivers_answer_and_logs_it_as_a_delivery() {
    let app = spawn_app().await;
    let (receiver, url) = Receiver::start().await;
    let id = create_id(&app, json!({"name": "hook", "kind": "webhook", "url": url})).await;

    receiver.answer(400, "no such hook");
    let refused = test_channel(&app, &id).await;
    assert_eq!(refused["delivered"], false);
    assert_eq!(refused["status"], 400);
    assert_eq!(refused["answer"], "no such hook");
    assert_eq!(refused["delivery"]["status"], "FAILED");
    assert_eq!(refused["delivery"]["test"], true);
    assert_eq!(refused["delivery"]["attempts"], 1);
    assert_eq!(refused["delivery"]["summary"], "Test message from Pingpipe");
    let (headers, body) = receiver.last();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["type"], "pingpipe.test");
    assert_eq!(
        headers["webhook-id"].to_str().unwrap(),
        refused["delivery"]["messageId"].as_str().unwrap()
    );

    receiver.answer(200, "thanks");
    let delivered = test_channel(&app, &id).await;
    assert_eq!(delivered["delivered"], true);
    assert_eq!(delivered["status"], 200);
    assert_eq!(delivered["answer"], "thanks");
    assert_eq!(delivered["error"], Value::Null);
    assert_eq!(receiver.count(), 2);

    let log = app
        .gql(
            &format!("{{ deliveries {{ edges {{ node {{ {DELIVERY} }} }} }} }}"),
            json!({}),
            Some(TOKEN),
        )
        .await;
    let nodes: Vec<&Value> = log["data"]["deliveries"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{log}"))
        .iter()
        .map(|e| &e["node"])
        .collect();
    assert_eq!(nodes.len(), 2);
    // Newest first.
    assert_eq!(nodes[0]["id"], delivered["delivery"]["id"]);
    assert_eq!(nodes[0]["status"], "DELIVERED");
    assert_eq!(nodes[0]["lastStatus"], 200);
    assert_eq!(nodes[0]["lastAnswer"], "thanks");
    assert_eq!(nodes[0]["channel"]["name"], "hook");
    assert_eq!(nodes[0]["nextAttemptAt"], Value::Null);
    assert!(nodes[0]["finishedAt"].is_string());
    assert_eq!(nodes[1]["status"], "FAILED");
    let attempt = &nodes[1]["attemptLog"];
    assert_eq!(attempt.as_array().unwrap().len(), 1, "{attempt}");
    assert_eq!(attempt[0]["number"], 1);
    assert_eq!(attempt[0]["outcome"], "FAILED");
    assert_eq!(attempt[0]["httpStatus"], 400);
    assert_eq!(attempt[0]["answer"], "no such hook");
    assert!(attempt[0]["finishedAt"].is_string());

    // A receiver that is not there: an error, no status.
    let gone = create_id(
        &app,
        json!({"name": "gone", "kind": "webhook", "url": "http://127.0.0.1:9/hook"}),
    )
    .await;
    let unreachable = test_channel(&app, &gone).await;
    assert_eq!(unreachable["delivered"], false);
    assert_eq!(unreachable["status"], Value::Null);
    assert!(
        unreachable["error"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{unreachable}"
    );
    assert_eq!(unreachable["delivery"]["lastError"], unreachable["error"]);
    // The worker never picks a test message up again.
    assert_eq!(
        app.db
            .query_strings(
                "SELECT count(*)::text FROM notification_deliveries WHERE status = 'pending'"
            )
            .await,
        ["0"]
    );
    // A test is not sent again by redeliver (testChannel sends a new one).
    let (code, message) = error(
        &app.gql(
            "mutation($id: ID!) { redeliver(deliveryId: $id) { id } }",
            json!({"id": refused["delivery"]["id"]}),
            Some(TOKEN),
        )
        .await,
    );
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.starts_with("deliveryId: "), "{message}");
    let (code, _) = error(
        &app.gql(
            "mutation { testChannel(id: \"4242\") { delivered } }",
            json!({}),
            Some(TOKEN),
        )
        .await,
    );
    assert_eq!(code, "NOT_FOUND");
    app.finish().await;
}

#[tokio::test]
async fn update_channel_without_secrets_keeps_them_and_a_new_kind_drops_them() {
    let app = spawn_app().await;
    let (receiver, url) = Receiver::start().await;
    let id = create_id(
        &app,
        json!({"name": "signed", "kind": "webhook", "url": url, "signingKey": SIGNING_KEY}),
    )
    .await;
    let updated = app
        .gql(
            &format!("mutation($id: ID!, $i: ChannelInput!) {{ updateChannel(id: $id, input: $i) {{ {CHANNEL} }} }}"),
            json!({"id": id, "i": {"name": "signed, renamed", "kind": "webhook", "url": url, "signingKey": ""}}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        updated["data"]["updateChannel"]["name"], "signed, renamed",
        "{updated}"
    );
    assert_eq!(
        updated["data"]["updateChannel"]["secretsSet"],
        json!(["signingKey"])
    );

    // The key is still the one given at first: the receiver can verify the signature.
    let tested = test_channel(&app, &id).await;
    assert_eq!(tested["delivered"], true, "{tested}");
    let (headers, body) = receiver.last();
    let header = |name: &str| headers[name].to_str().unwrap().to_owned();
    let key = worker_notify::signing::SigningKey::parse(SIGNING_KEY).unwrap();
    assert!(key.verify(
        &header("webhook-id"),
        header("webhook-timestamp").parse().unwrap(),
        &body,
        &header("webhook-signature"),
    ));
    let other = worker_notify::signing::SigningKey::generate();
    assert!(!other.verify(
        &header("webhook-id"),
        header("webhook-timestamp").parse().unwrap(),
        &body,
        &header("webhook-signature"),
    ));

    // Another kind has nothing to do with the webhook's key: it is dropped.
    let slack = app
        .gql(
            "mutation($id: ID!, $i: ChannelInput!) { updateChannel(id: $id, input: $i) { kind secretsSet url } }",
            json!({"id": id, "i": {"name": "now slack", "kind": "slack", "url": "https://hooks.slack.test/services/X"}}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        slack["data"]["updateChannel"],
        json!({"kind": "SLACK", "secretsSet": ["url"], "url": "https://hooks.slack.test/…"}),
        "{slack}"
    );
    // An update that leaves out a required secret of the kind, where none is stored, is refused.
    let (code, message) = error(
        &app.gql(
            "mutation($id: ID!, $i: ChannelInput!) { updateChannel(id: $id, input: $i) { id } }",
            json!({"id": id, "i": {"name": "now pagerduty", "kind": "pagerduty"}}),
            Some(TOKEN),
        )
        .await,
    );
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.starts_with("routingKey: "), "{message}");
    app.finish().await;
}

#[tokio::test]
async fn routes_are_created_changed_and_removed_and_bad_ones_name_the_field() {
    let app = spawn_app().await;
    let channel = create_id(
        &app,
        json!({"name": "hook", "kind": "webhook", "url": "https://example.test/"}),
    )
    .await;
    let app_ref = &app;
    let add = move |input: Value| async move {
        app_ref
            .gql(
                &format!("mutation($i: RouteInput!) {{ createRoute(input: $i) {{ {ROUTE} }} }}"),
                json!({ "i": input }),
                Some(TOKEN),
            )
            .await
    };
    let added = add(json!({"name": "team a", "channelId": channel, "tags": ["team:a"]})).await;
    let route = &added["data"]["createRoute"];
    assert_eq!(route["events"], json!(["DOWN", "RECOVERED"]), "{added}");
    assert_eq!(route["tags"], json!(["team:a"]));
    assert_eq!(route["allTargets"], false);
    assert_eq!(route["silenceInMaintenance"], true);
    assert_eq!(route["enabled"], true);
    assert_eq!(route["remindEveryMinutes"], Value::Null);
    assert_eq!(route["channel"]["name"], "hook");
    let id = route["id"].as_str().unwrap().to_owned();
    // Stored as the ingest worker reads it.
    assert_eq!(
        app.db
            .query_strings(
                "SELECT events::text || ' ' || tag_filters::text FROM notification_routes"
            )
            .await,
        [r#"["down", "recovered"] ["team:a"]"#]
    );

    for (input, field) in [
        (
            json!({"name": "r", "channelId": channel, "allTargets": true, "tags": ["a"]}),
            "targetIds: ",
        ),
        (json!({"name": "r", "channelId": channel}), "targetIds: "),
        (
            json!({"name": "r", "channelId": channel, "allTargets": true, "events": ["REMINDER"]}),
            "events: ",
        ),
        (
            json!({"name": "r", "channelId": channel, "allTargets": true, "events": []}),
            "events: ",
        ),
        (
            json!({"name": "r", "channelId": channel, "allTargets": true, "remindEveryMinutes": 0}),
            "remindEveryMinutes: ",
        ),
        (
            json!({"name": "r", "channelId": channel, "allTargets": true, "remindEveryMinutes": 10081}),
            "remindEveryMinutes: ",
        ),
        (
            json!({"name": "r", "channelId": "4242", "allTargets": true}),
            "channelId: ",
        ),
        (
            json!({"name": "team a", "channelId": channel, "allTargets": true}),
            "name: ",
        ),
    ] {
        let (code, message) = error(&add(input.clone()).await);
        assert_eq!(code, "BAD_USER_INPUT", "{input}");
        assert!(message.starts_with(field), "{input}: {message}");
    }

    let changed = app
        .gql(
            &format!("mutation($id: ID!, $i: RouteInput!) {{ updateRoute(id: $id, input: $i) {{ {ROUTE} }} }}"),
            json!({"id": id, "i": {"name": "team a", "channelId": channel, "targetIds": ["7", "3"],
                   "events": ["DOWN", "DEGRADED", "CERTIFICATE_EXPIRING"], "remindEveryMinutes": 60,
                   "silenceInMaintenance": false, "enabled": false}}),
            Some(TOKEN),
        )
        .await;
    let route = &changed["data"]["updateRoute"];
    assert_eq!(route["targetIds"], json!(["3", "7"]), "{changed}");
    assert_eq!(route["tags"], json!([]));
    assert_eq!(
        route["events"],
        json!(["DOWN", "DEGRADED", "CERTIFICATE_EXPIRING"])
    );
    assert_eq!(route["remindEveryMinutes"], 60);
    assert_eq!(route["silenceInMaintenance"], false);
    assert_eq!(route["enabled"], false);

    let listed = app
        .gql(
            "{ routes { name } channels { routes { name } } }",
            json!({}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        listed["data"],
        json!({"routes": [{"name": "team a"}], "channels": [{"routes": [{"name": "team a"}]}]})
    );
    let removed = app
        .gql(
            "mutation($id: ID!) { deleteRoute(id: $id) { name channel { name } } }",
            json!({"id": id}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        removed["data"]["deleteRoute"],
        json!({"name": "team a", "channel": {"name": "hook"}})
    );
    let (code, _) = error(
        &app.gql(
            "mutation($id: ID!) { deleteRoute(id: $id) { name } }",
            json!({"id": id}),
            Some(TOKEN),
        )
        .await,
    );
    assert_eq!(code, "NOT_FOUND");
    // Removing a channel removes its routes.
    add(json!({"name": "again", "channelId": channel, "allTargets": true})).await;
    let gone = app
        .gql(
            "mutation($id: ID!) { deleteChannel(id: $id) { name } }",
            json!({"id": channel}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(gone["data"]["deleteChannel"]["name"], "hook");
    assert!(
        app.db
            .query_strings("SELECT name FROM notification_routes")
            .await
            .is_empty()
    );
    app.finish().await;
}

/// Two channels and 25 deliveries (some made at the same instant), as the worker leaves them;
/// the first delivery carries two changes.
async fn seed_deliveries(app: &App) {
    app.db
        .exec(
            "INSERT INTO notification_channels (channel_pk, name, kind, settings) VALUES
                 (1, 'one', 'webhook', '{\"url\": \"https://one.example.test/\"}'),
                 (2, 'two', 'webhook', '{\"url\": \"https://two.example.test/\"}');
             INSERT INTO notification_deliveries (delivery_pk, channel_fk, sequence_key, status,
                     give_up_at, attempts, created_at, finished_at, last_status, last_answer)
             SELECT i, 1 + i % 2, (1 + i % 2)::text, (ARRAY['pending', 'delivered', 'failed'])[1 + i % 3],
                    '2026-12-02Z', 1, '2026-12-01Z'::timestamptz + (i / 2) * interval '1 second',
                    CASE WHEN i % 3 <> 0 THEN '2026-12-01Z'::timestamptz + i * interval '1 second' END,
                    CASE WHEN i % 3 = 2 THEN 410 WHEN i % 3 = 1 THEN 200 END,
                    CASE WHEN i % 3 = 2 THEN 'gone' END
             FROM generate_series(1, 25) i;
             INSERT INTO notifications (channel_fk, urltarget_fk, url, event, from_state, to_state,
                     since, cause, incident_fk, delivery_fk) VALUES
                 (2, 7, 'https://shop.example.test/', 'down', 'up', 'down', '2026-12-01Z', 'timeout', 9, 1),
                 (2, 8, 'https://api.example.test/', 'down', 'up', 'down', '2026-12-01Z', 'HTTP 503', 10, 1);
             INSERT INTO notification_attempts (delivery_fk, number, started_at, finished_at,
                     outcome, http_status, answer, retry_after_ms) VALUES
                 (2, 1, '2026-12-01Z', '2026-12-01Z', 'retry', 429, 'slow down', 5000),
                 (2, 2, '2026-12-01Z', '2026-12-01Z', 'failed', 410, 'gone', NULL)",
        )
        .await;
}

/// Every page of `deliveries` with `arguments` (`first: 4` at a time): the ids in order.
async fn walk(app: &App, arguments: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = Value::Null;
    loop {
        let answer = app
            .gql(
                &format!("query($after: String) {{ deliveries(first: 4, after: $after{arguments}) {{ edges {{ node {{ id }} }} pageInfo {{ hasNextPage endCursor }} }} }}"),
                json!({"after": after}),
                Some(TOKEN),
            )
            .await;
        let page = &answer["data"]["deliveries"];
        let edges = page["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"));
        ids.extend(
            edges
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_owned()),
        );
        if page["pageInfo"]["hasNextPage"] == false {
            return ids;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

#[tokio::test]
async fn deliveries_page_newest_first_by_status_and_channel() {
    let app = spawn_app_with(&["--max-page", "500"]).await;
    seed_deliveries(&app).await;
    let db = &app.db;
    let expected = move |filter: &str| {
        let sql = format!(
            "SELECT delivery_pk::text FROM notification_deliveries {filter} \
             ORDER BY created_at DESC, delivery_pk DESC"
        );
        async move { db.query_strings(&sql).await }
    };
    let all = walk(&app, "").await;
    assert_eq!(all.len(), 25);
    assert_eq!(all, expected("").await);
    assert_eq!(
        walk(&app, ", status: FAILED").await,
        expected("WHERE status = 'failed'").await
    );
    assert_eq!(
        walk(&app, ", channelId: \"2\"").await,
        expected("WHERE channel_fk = 2").await
    );
    assert_eq!(
        walk(&app, ", channelId: \"2\", status: PENDING").await,
        expected("WHERE channel_fk = 2 AND status = 'pending'").await
    );

    let one = app
        .gql(
            &format!("{{ deliveries(first: 1, channelId: \"2\", status: DELIVERED) {{ edges {{ node {{ {DELIVERY} }} }} }} }}"),
            json!({}),
            Some(TOKEN),
        )
        .await;
    let node = &one["data"]["deliveries"]["edges"][0]["node"];
    assert_eq!(node["status"], "DELIVERED", "{one}");
    let first = app
        .gql(
            &format!("{{ deliveries(first: 50, channelId: \"2\") {{ nodes {{ {DELIVERY} }} }} }}"),
            json!({}),
            Some(TOKEN),
        )
        .await;
    let nodes = first["data"]["deliveries"]["nodes"].as_array().unwrap();
    let grouped = nodes.iter().find(|n| n["id"] == "1").unwrap();
    assert_eq!(grouped["summary"], "2 targets: 2 down");
    assert_eq!(
        grouped["changes"][0],
        json!({"targetId": "7", "url": "https://shop.example.test/", "event": "DOWN", "from": "up",
               "to": "down", "since": "2026-12-01T00:00:00+00:00", "cause": "timeout",
               "incidentId": "9", "reminder": 0})
    );
    assert_eq!(grouped["status"], "DELIVERED");
    let retried = app
        .gql(
            "{ deliveries(first: 50, channelId: \"1\") { nodes { id status nextAttemptAt attemptLog { number outcome httpStatus answer retryAfterMs } } } }",
            json!({}),
            Some(TOKEN),
        )
        .await;
    let retried = retried["data"]["deliveries"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "2")
        .unwrap()
        .clone();
    assert_eq!(
        retried["attemptLog"],
        json!([{"number": 1, "outcome": "RETRY", "httpStatus": 429, "answer": "slow down", "retryAfterMs": 5000},
               {"number": 2, "outcome": "FAILED", "httpStatus": 410, "answer": "gone", "retryAfterMs": null}])
    );

    // 200 a page at most, whatever PINGPIPE_API_MAX_PAGE allows; a bad cursor is refused.
    let full = app
        .gql(
            "{ deliveries(first: 200) { edges { cursor } } }",
            json!({}),
            Some(TOKEN),
        )
        .await;
    assert!(full["errors"].is_null(), "{full}");
    for query in [
        "{ deliveries(first: 201) { edges { cursor } } }",
        "{ deliveries(first: -1) { edges { cursor } } }",
        "{ deliveries(after: \"garbage\") { edges { cursor } } }",
        "{ deliveries(channelId: \"x\") { edges { cursor } } }",
    ] {
        let (code, message) = error(&app.gql(query, json!({}), Some(TOKEN)).await);
        assert_eq!(code, "BAD_USER_INPUT", "{query}: {message}");
    }
    let (_, message) = error(
        &app.gql(
            "{ deliveries(first: 201) { edges { cursor } } }",
            json!({}),
            Some(TOKEN),
        )
        .await,
    );
    assert!(message.contains("between 0 and 200"), "{message}");
    app.finish().await;
}

#[tokio::test]
async fn redeliver_makes_a_finished_delivery_pending_again_with_the_same_message_id() {
    let app = spawn_app().await;
    seed_deliveries(&app).await;
    let fields = "id messageId status finishedAt nextAttemptAt giveUpAt attempts";
    let app_ref = &app;
    let redeliver = move |id: &'static str| async move {
        app_ref
            .gql(
                &format!("mutation($id: ID!) {{ redeliver(deliveryId: $id) {{ {fields} }} }}"),
                json!({ "id": id }),
                Some(TOKEN),
            )
            .await
    };
    // 2 failed (410), 1 delivered, 3 pending.
    let before = app
        .db
        .query_strings("SELECT message_id::text FROM notification_deliveries WHERE delivery_pk = 2")
        .await;
    let answer = redeliver("2").await;
    let again = &answer["data"]["redeliver"];
    assert_eq!(again["status"], "PENDING", "{answer}");
    assert_eq!(again["messageId"], before[0].as_str());
    assert_eq!(again["finishedAt"], Value::Null);
    assert_eq!(again["attempts"], 1);
    let next: chrono::DateTime<chrono::Utc> =
        again["nextAttemptAt"].as_str().unwrap().parse().unwrap();
    let give_up: chrono::DateTime<chrono::Utc> =
        again["giveUpAt"].as_str().unwrap().parse().unwrap();
    let now = chrono::Utc::now();
    assert!((now - next).num_seconds().abs() < 60, "{next}");
    assert!(give_up > now + chrono::TimeDelta::hours(23), "{give_up}");
    // Due now: the worker's claim would take it.
    assert_eq!(
        app.db
            .query_strings("SELECT (status = 'pending' AND due_at <= now() AND claim IS NULL)::text FROM notification_deliveries WHERE delivery_pk = 2")
            .await,
        ["true"]
    );

    let delivered = redeliver("1").await;
    assert_eq!(delivered["data"]["redeliver"]["status"], "PENDING");
    // A pending one is left as it is.
    let pending = app
        .db
        .query_strings("SELECT due_at::text FROM notification_deliveries WHERE delivery_pk = 3")
        .await;
    let answer = redeliver("3").await;
    assert_eq!(answer["data"]["redeliver"]["status"], "PENDING");
    assert_eq!(
        app.db
            .query_strings("SELECT due_at::text FROM notification_deliveries WHERE delivery_pk = 3")
            .await,
        pending
    );
    let (code, _) = error(&redeliver("4242").await);
    assert_eq!(code, "NOT_FOUND");
    let (code, message) = error(&redeliver("nope").await);
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.starts_with("deliveryId: "), "{message}");
    app.finish().await;
}

#[tokio::test]
async fn apply_channels_creates_updates_prunes_and_keeps_secrets() {
    let app = spawn_app().await;
    let old = create_id(
        &app,
        json!({"name": "old", "kind": "webhook", "url": "https://old.example.test/"}),
    )
    .await;
    let apply = "mutation($c: [ChannelInput!]!, $prune: Boolean! = false) { applyChannels(channels: $c, prune: $prune) { added { name } changed { name url } removed { name } unchanged { name secretsSet } } }";
    let list = json!([
        {"name": "pager", "kind": "pagerduty", "routingKey": "R0UTING"},
        {"name": "old", "kind": "webhook", "url": "https://old.example.test/v2"},
    ]);
    let first = app.gql(apply, json!({"c": list}), Some(TOKEN)).await;
    assert_eq!(
        first["data"]["applyChannels"],
        json!({"added": [{"name": "pager"}], "changed": [{"name": "old", "url": "https://old.example.test/v2"}],
               "removed": [], "unchanged": []}),
        "{first}"
    );
    // Again, without the secret: it is kept, so nothing changes.
    let without_secret = json!([
        {"name": "pager", "kind": "pagerduty"},
        {"name": "old", "kind": "webhook", "url": "https://old.example.test/v2"},
    ]);
    let second = app
        .gql(apply, json!({"c": without_secret}), Some(TOKEN))
        .await;
    assert_eq!(
        second["data"]["applyChannels"],
        json!({"added": [], "changed": [], "removed": [],
               "unchanged": [{"name": "old", "secretsSet": []}, {"name": "pager", "secretsSet": ["routingKey"]}]}),
        "{second}"
    );
    let pruned = app
        .gql(
            apply,
            json!({"c": [{"name": "pager", "kind": "pagerduty"}], "prune": true}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        pruned["data"]["applyChannels"],
        json!({"added": [], "changed": [], "removed": [{"name": "old"}],
               "unchanged": [{"name": "pager", "secretsSet": ["routingKey"]}]})
    );
    assert!(
        app.db
            .query_strings(&format!(
                "SELECT name FROM notification_channels WHERE channel_pk = {old}"
            ))
            .await
            .is_empty()
    );
    // One bad entry refuses the whole list, naming it.
    let bad = json!([{"name": "new", "kind": "webhook", "url": "https://new.example.test/"},
                     {"name": "worse", "kind": "webhook", "url": "ftp://x.example.test/"}]);
    let (code, message) = error(&app.gql(apply, json!({"c": bad}), Some(TOKEN)).await);
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.starts_with("channels[1]: url: "), "{message}");
    let twice = json!([{"name": "new", "kind": "webhook", "url": "https://new.example.test/"},
                       {"name": "new", "kind": "webhook", "url": "https://new.example.test/"}]);
    let (_, message) = error(&app.gql(apply, json!({"c": twice}), Some(TOKEN)).await);
    assert!(message.contains("listed twice"), "{message}");
    assert_eq!(
        app.db
            .query_strings("SELECT name FROM notification_channels")
            .await,
        ["pager"]
    );
    app.finish().await;
}

#[tokio::test]
async fn notification_writes_and_reads_need_a_token() {
    let app = spawn_app().await;
    let channel = create_id(
        &app,
        json!({"name": "hook", "kind": "webhook", "url": "https://example.test/"}),
    )
    .await;
    let input = json!({"name": "x", "kind": "webhook", "url": "https://example.test/"});
    for (query, variables) in [
        (
            "mutation($i: ChannelInput!) { createChannel(input: $i) { id } }",
            json!({"i": input}),
        ),
        (
            "mutation($id: ID!, $i: ChannelInput!) { updateChannel(id: $id, input: $i) { id } }",
            json!({"id": channel, "i": input}),
        ),
        (
            "mutation($id: ID!) { deleteChannel(id: $id) { id } }",
            json!({"id": channel}),
        ),
        (
            "mutation($c: [ChannelInput!]!) { applyChannels(channels: $c, prune: true) { removed { id } } }",
            json!({"c": []}),
        ),
        (
            "mutation($id: ID!) { createRoute(input: {name: \"r\", channelId: $id, allTargets: true}) { id } }",
            json!({"id": channel}),
        ),
        (
            "mutation($id: ID!) { testChannel(id: $id) { delivered } }",
            json!({"id": channel}),
        ),
        (
            "mutation { redeliver(deliveryId: \"1\") { id } }",
            json!({}),
        ),
        ("{ channels { id } }", json!({})),
        ("{ routes { id } }", json!({})),
        ("{ deliveries { edges { cursor } } }", json!({})),
    ] {
        for token in [None, Some("wrong-token-0123456789")] {
            let (code, _) = error(&app.gql(query, variables.clone(), token).await);
            assert_eq!(code, "UNAUTHENTICATED", "{query} {token:?}");
        }
    }
    assert_eq!(
        app.db
            .query_strings("SELECT name FROM notification_channels")
            .await,
        ["hook"]
    );
    assert!(
        app.db
            .query_strings("SELECT 1::text FROM notification_deliveries")
            .await
            .is_empty()
    );
    app.finish().await;
}

#[tokio::test]
async fn stored_secrets_never_follow_a_channel_to_a_new_destination_and_bad_texts_are_refused() {
    let app = spawn_app().await;
    let (receiver, url) = Receiver::start().await;
    let id = create_id(
        &app,
        json!({"name": "pd", "kind": "webhook", "url": url, "signingKey": SIGNING_KEY}),
    )
    .await;
    let update = |input: Value| {
        let app = &app;
        let id = id.clone();
        async move {
            app.gql(
                "mutation($id: ID!, $i: ChannelInput!) { updateChannel(id: $id, input: $i) { url secretsSet } }",
                json!({"id": id, "i": input}),
                Some(TOKEN),
            )
            .await
        }
    };
    // Elsewhere without the key again: refused, naming the key, and nothing changed.
    let (code, message) = error(
        &update(json!({"name": "pd", "kind": "webhook", "url": "http://127.0.0.1:9/elsewhere"}))
            .await,
    );
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(
        message.starts_with("signingKey: give it again"),
        "{message}"
    );
    let tested = test_channel(&app, &id).await;
    assert_eq!(tested["delivered"], true, "{tested}");
    assert_eq!(
        receiver.count(),
        1,
        "the test still went to the first server"
    );
    // With the key given again it may move.
    let moved = update(json!({"name": "pd", "kind": "webhook", "url": "http://127.0.0.1:9/elsewhere", "signingKey": SIGNING_KEY}))
    .await;
    assert_eq!(
        moved["data"]["updateChannel"]["url"], "http://127.0.0.1:9/elsewhere",
        "{moved}"
    );

    // Texts PostgreSQL cannot store, credentials in a shown URL, and the shown form of a secret
    // URL given back: each refused naming its field, never INTERNAL.
    for (input, field) in [
        (
            json!({"name": "a", "kind": "pagerduty", "routingKey": "ab\u{0}cd"}),
            "routingKey",
        ),
        (
            json!({"name": "b", "kind": "telegram", "token": "1:x", "chatId": "-1\u{0}"}),
            "chatId",
        ),
        (
            json!({"name": "c", "kind": "webhook", "url": "https://user:pw@hooks.example.test/"}),
            "url",
        ),
        (
            json!({"name": "d", "kind": "slack", "url": "https://hooks.slack.test/…"}),
            "url",
        ),
        (
            json!({"name": "e", "kind": "webhook", "url": url, "template": "a\u{0}b"}),
            "template",
        ),
        (
            json!({"name": "f", "kind": "ntfy", "topic": "t", "token": "x".repeat(3000)}),
            "token",
        ),
    ] {
        let (code, message) = error(&create(&app, input.clone()).await);
        assert_eq!(code, "BAD_USER_INPUT", "{input}: {message}");
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{input}: {message}"
        );
    }

    // A receiver answering a NUL: the test is still logged, the answer kept without it.
    let (echo, echo_url) = Receiver::start().await;
    echo.answer(200, "ok\u{0}fine");
    let hook = create_id(
        &app,
        json!({"name": "nul", "kind": "webhook", "url": echo_url}),
    )
    .await;
    let tested = test_channel(&app, &hook).await;
    assert_eq!(tested["delivered"], true, "{tested}");
    assert_eq!(
        tested["delivery"]["lastAnswer"], "ok\u{FFFD}fine",
        "{tested}"
    );
    app.finish().await;
}
