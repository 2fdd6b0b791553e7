//! The API against the real PostgreSQL, over HTTP as clients use it. Each test has its own
//! database and server.

// Test helpers may unwrap: a failure is the test's answer.
#![allow(clippy::unwrap_used)]

use clap::Parser;
use migration::testing::TestDb;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "test-token-4d1f";

struct App {
    db: TestDb,
    base: String,
    client: reqwest::Client,
    shutdown: CancellationToken,
}

async fn spawn_app() -> App {
    let db = TestDb::migrated().await;
    let config = api::Config::parse_from([
        "pingpipe-api",
        "--database-url",
        &db.url,
        "--listen",
        "127.0.0.1:0",
        "--api-tokens",
        &format!("{TOKEN},second-token"),
        "--max-page",
        "50",
    ]);
    let shutdown = CancellationToken::new();
    let running = api::start(config, shutdown.clone()).await.unwrap();
    App {
        db,
        base: format!("http://{}", running.addr),
        client: reqwest::Client::new(),
        shutdown,
    }
}

impl App {
    /// Posts a GraphQL request, with `token` as bearer token if given; returns the JSON body.
    async fn gql(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.base))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn add(&self, url: &str, frequency: i32) -> Value {
        self.gql(
            "mutation($url: String!, $f: Int!) { addTarget(url: $url, frequency: $f) { id url frequency paused createdAt } }",
            json!({"url": url, "f": frequency}),
            Some(TOKEN),
        )
        .await
    }

    async fn finish(self) {
        self.shutdown.cancel();
        self.db.drop().await;
    }
}

/// The `extensions.code` and message of the first error.
fn error(body: &Value) -> (String, String) {
    let e = &body["errors"][0];
    assert!(!e.is_null(), "expected an error, got {body}");
    (
        e["extensions"]["code"].as_str().unwrap_or("").to_owned(),
        e["message"].as_str().unwrap_or("").to_owned(),
    )
}

#[test]
fn schema_graphql_is_generated_from_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    let committed = std::fs::read_to_string(path).unwrap();
    assert!(
        committed == api::graphql::sdl(),
        "schema.graphql differs from the code: run `cargo run -p api --bin pingpipe-api -- \
         --database-url unused --print-schema > schema.graphql`"
    );
}

#[tokio::test]
async fn targets_can_be_added_read_changed_and_removed() {
    let app = spawn_app().await;
    let added = app.add("https://example.test/health", 5).await;
    let target = &added["data"]["addTarget"];
    assert_eq!(target["url"], "https://example.test/health");
    assert_eq!(target["frequency"], 5);
    assert_eq!(target["paused"], false);
    let id = target["id"].as_str().unwrap().to_owned();

    let read = app
        .gql("query($id: ID!) { target(id: $id) { url frequency latestResult { httpStatus } } frequencies }", json!({"id": id}), None)
        .await;
    assert_eq!(read["data"]["target"]["url"], "https://example.test/health");
    assert_eq!(read["data"]["target"]["latestResult"], Value::Null);
    assert_eq!(read["data"]["frequencies"], json!([1, 2, 5, 10, 20, 30]));

    let changed = app
        .gql(
            "mutation($id: ID!) { updateTarget(id: $id, frequency: 30, paused: true) { frequency paused url } }",
            json!({"id": id}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        changed["data"]["updateTarget"],
        json!({"frequency": 30, "paused": true, "url": "https://example.test/health"})
    );
    let stored = app
        .db
        .query_strings(&format!(
            "SELECT monitor_frequency || ' ' || paused FROM urltargets WHERE urltargets_pk = {id}"
        ))
        .await;
    assert_eq!(stored, ["30 true"]);

    let removed = app
        .gql(
            "mutation($id: ID!) { removeTarget(id: $id) { id } }",
            json!({"id": id}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(removed["data"]["removeTarget"]["id"], id.as_str());
    let gone = app
        .gql(
            "query($id: ID!) { target(id: $id) { url } }",
            json!({"id": id}),
            None,
        )
        .await;
    assert_eq!(error(&gone).0, "NOT_FOUND");
    app.finish().await;
}

#[tokio::test]
async fn latest_result_is_the_newest_slot() {
    let app = spawn_app().await;
    let id = app.add("http://127.0.0.1/x", 1).await["data"]["addTarget"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.db
        .exec(&format!(
            "INSERT INTO monitor_results (urltarget_fk, http_status, failure_class, start_time, duration, scheduled_at) VALUES
             ({id}, 200, NULL, '2026-11-26 12:00:01Z', 10, '2026-11-26 12:00:00Z'),
             ({id}, NULL, 'timeout', '2026-11-26 12:01:01Z', 5000, '2026-11-26 12:01:00Z')"
        ))
        .await;
    let body = app
        .gql(
            "query($id: ID!) { target(id: $id) { latestResult { httpStatus failureClass durationMs scheduledAt target { id } } } }",
            json!({"id": id}),
            None,
        )
        .await;
    assert_eq!(
        body["data"]["target"]["latestResult"],
        json!({"httpStatus": null, "failureClass": "TIMEOUT", "durationMs": 5000,
               "scheduledAt": "2026-11-26T12:01:00+00:00", "target": {"id": id}})
    );
    app.finish().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_with_a_code_and_changes_nothing() {
    let app = spawn_app().await;
    let long = format!("https://example.test/{}", "a".repeat(1100));
    for (url, frequency, says) in [
        ("not a url", 5, "not a valid URL"),
        ("ftp://example.test/", 5, "http or https"),
        (long.as_str(), 5, "at most 1024"),
        ("https://example.test/", 3, "1, 2, 5, 10, 20 or 30"),
    ] {
        let (code, message) = error(&app.add(url, frequency).await);
        assert_eq!(code, "BAD_USER_INPUT", "{url}");
        assert!(message.contains(says), "{url}: {message}");
    }
    assert!(
        app.db
            .query_strings("SELECT urltarget FROM urltargets")
            .await
            .is_empty()
    );

    app.add("https://example.test/", 5).await;
    let (code, message) = error(&app.add("https://example.test/", 5).await);
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("already monitored"), "{message}");
    // The same URL at another frequency is another target.
    assert!(app.add("https://example.test/", 10).await["errors"].is_null());

    for (id, expected) in [("99999", "NOT_FOUND"), ("nope", "BAD_USER_INPUT")] {
        let body = app
            .gql(
                "mutation($id: ID!) { updateTarget(id: $id, paused: true) { id } }",
                json!({"id": id}),
                Some(TOKEN),
            )
            .await;
        assert_eq!(error(&body).0, expected, "{id}");
    }
    // No SQL or internals reach the client.
    let body = app
        .gql(
            "{ targets(first: 10, after: \"garbage\") { edges { node { id } } } }",
            json!({}),
            None,
        )
        .await;
    let (code, message) = error(&body);
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(!message.to_lowercase().contains("sql"), "{message}");
    app.finish().await;
}

#[tokio::test]
async fn mutations_need_a_valid_token_and_reads_do_not() {
    let app = spawn_app().await;
    for token in [None, Some("wrong-token")] {
        let (code, _) = error(
            &app.gql(
                "mutation { addTarget(url: \"https://example.test/\", frequency: 1) { id } }",
                json!({}),
                token,
            )
            .await,
        );
        assert_eq!(code, "UNAUTHENTICATED", "{token:?}");
    }
    assert!(
        app.db
            .query_strings("SELECT urltarget FROM urltargets")
            .await
            .is_empty()
    );
    let body = app
        .gql(
            "mutation { addTarget(url: \"https://example.test/\", frequency: 1) { id } }",
            json!({}),
            Some("second-token"),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let read = app
        .gql("{ targets { edges { node { url } } } }", json!({}), None)
        .await;
    assert_eq!(
        read["data"]["targets"]["edges"][0]["node"]["url"],
        "https://example.test/"
    );
    app.finish().await;
}

#[tokio::test]
async fn targets_page_by_page_without_gap_or_repeat() {
    let app = spawn_app().await;
    app.db
        .exec("INSERT INTO urltargets (urltarget, monitor_frequency) SELECT 'http://127.0.0.1/' || i, CASE WHEN i % 2 = 0 THEN 1 ELSE 5 END FROM generate_series(1, 120) i")
        .await;
    let mut seen: Vec<String> = Vec::new();
    let mut after: Value = Value::Null;
    loop {
        let body = app
            .gql(
                "query($after: String) { targets(first: 50, after: $after) { edges { cursor node { url } } pageInfo { hasNextPage endCursor } } }",
                json!({"after": after}),
                None,
            )
            .await;
        let page = &body["data"]["targets"];
        seen.extend(
            page["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["url"].as_str().unwrap().to_owned()),
        );
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    let mut expected: Vec<String> = (1..=120).map(|i| format!("http://127.0.0.1/{i}")).collect();
    assert_eq!(seen, expected);
    expected.sort();

    let fives = app.gql("{ targets(first: 50, frequency: 5, search: \"/1\") { edges { node { url frequency } } } }", json!({}), None).await;
    let edges = fives["data"]["targets"]["edges"].as_array().unwrap();
    assert!(!edges.is_empty());
    assert!(
        edges
            .iter()
            .all(|e| e["node"]["frequency"] == 5
                && e["node"]["url"].as_str().unwrap().contains("/1"))
    );

    let (code, message) = error(
        &app.gql(
            "{ targets(first: 51) { edges { cursor } } }",
            json!({}),
            None,
        )
        .await,
    );
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("between 0 and 50"), "{message}");
    app.finish().await;
}

#[tokio::test]
async fn health_readiness_metrics_and_graphiql_are_served() {
    let app = spawn_app().await;
    let get = |path: &str| app.client.get(format!("{}{path}", app.base)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while get("/readyz").await.unwrap().status() != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(get("/metrics").await.unwrap().status(), 200);
    let page = get("/graphql").await.unwrap().text().await.unwrap();
    assert!(
        page.contains("graphiql"),
        "{}",
        &page[..page.len().min(200)]
    );
    app.finish().await;
}
