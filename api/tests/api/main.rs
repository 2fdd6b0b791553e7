//! The API against the real PostgreSQL, over HTTP as clients use it. Each test has its own
//! database and server.

// Test helpers may unwrap: a failure is the test's answer.
#![allow(clippy::unwrap_used)]

mod checks;
mod cost;
mod graphiql;
mod history;
mod limits;
mod list;
mod notifications;
mod states;
mod status;
mod websocket;

use clap::Parser;
use migration::testing::TestDb;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "test-token-4d1f-9a2c";

struct App {
    db: TestDb,
    base: String,
    client: reqwest::Client,
    shutdown: CancellationToken,
}

async fn spawn_app() -> App {
    spawn_app_with(&[]).await
}

async fn spawn_app_with(extra: &[&str]) -> App {
    let db = TestDb::migrated().await;
    let shutdown = CancellationToken::new();
    let base = serve(&db.url, &shutdown, extra).await;
    App {
        db,
        base,
        client: reqwest::Client::new(),
        shutdown,
    }
}

/// The dashboard's folder as committed (frontend/public's files), copied into a temporary folder
/// with a stand-in for GraphiQL's bundle, which `npm ci` would put in `vendor/`: the API's tests
/// serve the real pages without needing npm. Removed when dropped.
struct FrontendDir(std::path::PathBuf);

impl FrontendDir {
    fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("pingpipe-api-frontend-{}-{n}", std::process::id()));
        std::fs::create_dir_all(dir.join("vendor")).unwrap();
        for entry in std::fs::read_dir(Self::committed()).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
            }
        }
        std::fs::write(dir.join("vendor/graphiql.min.js"), "// stand-in\n").unwrap();
        FrontendDir(dir)
    }

    /// frontend/public in the checkout being tested.
    fn committed() -> std::path::PathBuf {
        std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap())
            .join("../frontend/public")
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for FrontendDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An API server on the database at `url` (port 0, both test tokens, pages of at most 50 unless
/// `extra` says otherwise) with
/// `extra` options; returns its base URL.
async fn serve(url: &str, shutdown: &CancellationToken, extra: &[&str]) -> String {
    let tokens = format!("{TOKEN},second-token-77e3b1");
    let mut args = vec![
        "pingpipe-api",
        "--database-url",
        url,
        "--listen",
        "127.0.0.1:0",
        "--api-tokens",
        &tokens,
    ];
    if !extra.contains(&"--max-page") {
        args.extend_from_slice(&["--max-page", "50"]);
    }
    args.extend_from_slice(extra);
    let running = api::start(api::Config::parse_from(args), shutdown.clone())
        .await
        .unwrap();
    let addr = format!("http://{}", running.addr);
    // The server's tasks live as long as their supervisor: it waits in the background until
    // the test's shutdown token stops them.
    tokio::spawn(running.wait());
    addr
}

/// The real `pingpipe-api` binary on `db` at a free loopback port, with a test token and
/// `extra` options; returns once it answers ready.
async fn spawn_binary(
    db: &TestDb,
    extra: &[&str],
) -> (entity::testing::Process, std::net::SocketAddr) {
    let addr = entity::testing::free_addr();
    let listen = addr.to_string();
    let mut args = vec![
        "--database-url",
        &db.url,
        "--listen",
        &listen,
        "--api-tokens",
        "binary-test-token-0123456789",
    ];
    args.extend_from_slice(extra);
    let args: Vec<String> = args.into_iter().map(String::from).collect();
    let api = entity::testing::Process::spawn(env!("CARGO_BIN_EXE_pingpipe-api"), &args);
    entity::testing::wait_for_status(
        addr,
        "/readyz",
        200,
        std::time::Duration::from_secs(30),
        || api.log(),
    )
    .await;
    (api, addr)
}

impl App {
    /// Posts a GraphQL request, with `token` as bearer token if given; returns the JSON body.
    async fn gql(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        self.gql_at(&self.base, query, variables, token).await
    }

    /// The same, to the server at `base` (another instance on this database).
    async fn gql_at(
        &self,
        base: &str,
        query: &str,
        variables: Value,
        token: Option<&str>,
    ) -> Value {
        let body = json!({"query": query, "variables": variables});
        self.post_at(base, &body, token).await
    }

    /// Posts a whole GraphQL request `body` (with `operationName`, say) to the server at `base`;
    /// returns the JSON answer.
    async fn post_at(&self, base: &str, body: &Value, token: Option<&str>) -> Value {
        let mut request = self.client.post(format!("{base}/graphql")).json(body);
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
    // The checkout being tested (cargo sets this when it runs the test), not the one the
    // binary was compiled in: clones sharing a target dir reuse each other's test binaries.
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let path = format!("{dir}/../schema.graphql");
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
            "INSERT INTO monitor_results (urltarget_fk, http_status, failure_class, start_time, duration, scheduled_at, outcome) VALUES
             ({id}, 200, NULL, '2026-11-26 12:00:01Z', 10, '2026-11-26 12:00:00Z', 'up'),
             ({id}, NULL, 'timeout', '2026-11-26 12:01:01Z', 5000, '2026-11-26 12:01:00Z', 'down')"
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
            Some("second-token-77e3b1"),
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
    let frontend = FrontendDir::new();
    let app = spawn_app_with(&["--frontend-dir", frontend.path()]).await;
    let get = |path: &str| app.client.get(format!("{}{path}", app.base)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while get("/readyz").await.unwrap().status() != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(get("/metrics").await.unwrap().status(), 200);

    // GraphiQL: our page, its scripts from this origin only, none inline.
    let response = get("/graphql").await.unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let page = response.text().await.unwrap();
    let ours = std::fs::read_to_string(FrontendDir::committed().join("graphiql.html")).unwrap();
    assert_eq!(
        page, ours,
        "GET /graphql serves frontend/public/graphiql.html"
    );
    let scripts: Vec<&str> = page.split("<script").skip(1).collect();
    assert!(
        scripts.len() >= 4,
        "React, ReactDOM, graphql-ws, GraphiQL, ours"
    );
    for script in scripts {
        let (tag, rest) = script.split_once('>').unwrap();
        let Some((_, src)) = tag.split_once("src=\"") else {
            panic!("a script without src: <script{script}");
        };
        let src = src.split('"').next().unwrap();
        assert!(
            !src.contains(':') && !src.starts_with("//"),
            "{src}: not this origin"
        );
        assert!(rest.starts_with("</script>"), "inline script after {src}");
    }
    // The policy: scripts and connections from this origin only; no host anywhere.
    let directive = |name: &str| {
        csp.split(';')
            .map(str::trim)
            .find(|d| d.split_whitespace().next() == Some(name))
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(directive("script-src"), "script-src 'self'", "{csp}");
    assert_eq!(directive("connect-src"), "connect-src 'self'", "{csp}");
    assert_eq!(directive("default-src"), "default-src 'self'", "{csp}");
    for word in ["unsafe-inline", "unsafe-eval", "unpkg", "http", "*"] {
        assert!(!csp.contains(word), "{word} in {csp}");
    }
    app.finish().await;
}

/// Writes a result (status 204, 17 ms) of each of `targets` in slot `minute` through the ingest
/// worker's own write path: rows and NOTIFY in one transaction, as live results come.
async fn write_results(app: &App, targets: &[&str], minute: i64) {
    let slot = chrono::DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap();
    let events: Vec<entity::ResultEvent> = targets
        .iter()
        .map(|target| {
            entity::ResultEvent::new(
                target.parse().unwrap(),
                "http://127.0.0.1:9/",
                entity::Frequency::OneMinute,
                slot,
                slot,
                17,
                entity::Outcome::Status(204),
            )
        })
        .collect();
    store_events(app, &events).await;
}

/// Stores `events` in one batch through the ingest worker's own write path (rows, states and
/// NOTIFY in one transaction, as live results come).
async fn store_events(app: &App, events: &[entity::ResultEvent]) {
    let store = worker_ingest::store::Store::new(
        app.db.conn.clone(),
        "api-test".into(),
        "t".into(),
        Default::default(),
        Default::default(),
    );
    let rows = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            (
                worker_ingest::store::Row::from(e),
                worker_ingest::store::Reject {
                    partition: 0,
                    offset: i as i64,
                    key: None,
                    payload: None,
                    reason: String::new(),
                },
            )
        })
        .collect();
    let batch = worker_ingest::store::Batch {
        rows,
        ..Default::default()
    };
    store.write(&batch).await.unwrap();
}

/// Compares two id lists, reporting the first difference rather than both lists.
fn assert_same_order(got: &[String], want: &[String]) {
    if let Some(i) = (0..got.len().max(want.len())).find(|i| got.get(*i) != want.get(*i)) {
        panic!(
            "lists differ at {i}: got {:?}, want {:?} (lengths {} and {})",
            &got[i.saturating_sub(2)..(i + 3).min(got.len())],
            &want[i.saturating_sub(2)..(i + 3).min(want.len())],
            got.len(),
            want.len()
        );
    }
}

/// Walks a results connection at `path` (e.g. ["target", "results"]) to the end; returns ids.
async fn walk(app: &App, query: &str, variables: Value, path: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = Value::Null;
    loop {
        let mut vars = variables.clone();
        vars["after"] = after.clone();
        let body = app.gql(query, vars, None).await;
        let mut page = &body["data"];
        for key in path {
            page = &page[*key];
        }
        assert!(page.is_object(), "{body}");
        ids.extend(
            page["edges"]
                .as_array()
                .unwrap()
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
async fn ten_thousand_results_page_newest_first_without_gap_or_repeat() {
    let app = spawn_app().await;
    // Two targets at 1 minute, one at 5: 5,000 + 5,000 results at 1 minute, 300 at 5.
    app.db
        .exec(
            "INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency) VALUES
                (1, 'http://127.0.0.1/a', 1), (2, 'http://127.0.0.1/b', 1), (3, 'http://127.0.0.1/c', 5);
             INSERT INTO monitor_results (urltarget_fk, http_status, failure_class, start_time, duration, scheduled_at, outcome)
             SELECT t, CASE WHEN i % 10 = 0 THEN NULL ELSE 200 END, CASE WHEN i % 10 = 0 THEN 'timeout' END,
                    '2026-11-01'::timestamptz + i * interval '1 minute', i % 100,
                    '2026-11-01'::timestamptz + i * interval '1 minute',
                    CASE WHEN i % 10 = 0 THEN 'down' ELSE 'up' END
             FROM generate_series(0, 4999) i, (VALUES (1), (2)) t(t);
             INSERT INTO monitor_results (urltarget_fk, http_status, start_time, duration, scheduled_at, outcome)
             SELECT 3, 200, '2026-11-01'::timestamptz + i * interval '5 minutes', 7,
                    '2026-11-01'::timestamptz + i * interval '5 minutes', 'up'
             FROM generate_series(0, 299) i",
        )
        .await;

    let by_frequency = walk(
        &app,
        "query($after: String) { results(frequency: 1, first: 50, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }",
        json!({}),
        &["results"],
    )
    .await;
    assert_eq!(by_frequency.len(), 10_000);
    assert_same_order(
        &by_frequency,
        &app.db.query_strings("SELECT monitor_results_pk::text AS id FROM view_1m ORDER BY scheduled_at DESC, monitor_results_pk DESC").await,
    );

    let one_target = walk(
        &app,
        "query($after: String) { target(id: \"2\") { results(first: 50, after: $after, since: \"2026-11-02T00:00:00Z\") { edges { node { id } } pageInfo { hasNextPage endCursor } } } }",
        json!({}),
        &["target", "results"],
    )
    .await;
    assert_same_order(
        &one_target,
        &app.db.query_strings("SELECT monitor_results_pk::text AS id FROM monitor_results WHERE urltarget_fk = 2 AND scheduled_at >= '2026-11-02Z' ORDER BY scheduled_at DESC").await
    );

    let fives = app
        .gql("{ results(frequency: 5, first: 3, targetId: \"3\") { edges { node { durationMs target { url } } } } }", json!({}), None)
        .await;
    assert_eq!(
        fives["data"]["results"]["edges"].as_array().unwrap().len(),
        3
    );
    assert_eq!(
        fives["data"]["results"]["edges"][0]["node"]["target"]["url"],
        "http://127.0.0.1/c"
    );
    let (code, message) = error(
        &app.gql(
            "{ results(frequency: 3) { edges { cursor } } }",
            json!({}),
            None,
        )
        .await,
    );
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("1, 2, 5, 10, 20 or 30"), "{message}");
    app.finish().await;
}

#[tokio::test]
async fn stats_are_computed_over_the_period() {
    let app = spawn_app().await;
    app.db
        .exec(
            "INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency) VALUES (1, 'http://127.0.0.1/a', 1);
             INSERT INTO monitor_results (urltarget_fk, http_status, failure_class, start_time, duration, scheduled_at, outcome)
             SELECT 1, CASE WHEN i <= 90 THEN 200 WHEN i <= 95 THEN 503 END, CASE WHEN i > 95 THEN 'connect' END,
                    '2026-11-01'::timestamptz + i * interval '1 minute', i,
                    '2026-11-01'::timestamptz + i * interval '1 minute',
                    CASE WHEN i <= 90 THEN 'up' ELSE 'down' END
             FROM generate_series(1, 100) i",
        )
        .await;
    let body = app
        .gql(
            "{ target(id: \"1\") { all: stats(since: \"2026-11-01T00:00:00Z\", until: \"2026-11-02T00:00:00Z\") {
                                       checks up down uptimeRatio p50DurationMs p95DurationMs p99DurationMs }
                                  late: stats(since: \"2026-11-01T01:31:00Z\") { checks up } } }",
            json!({}),
            None,
        )
        .await;
    let all = &body["data"]["target"]["all"];
    assert_eq!(all["checks"], 100);
    assert_eq!(all["up"], 90);
    assert_eq!(all["down"], 10);
    assert_eq!(all["uptimeRatio"], 0.9);
    assert_eq!(all["p50DurationMs"], 50.5);
    assert!((all["p95DurationMs"].as_f64().unwrap() - 95.05).abs() < 1e-9);
    // From minute 91 on: 10 checks, of which 91..=95 got 503 and 96..=100 no response.
    assert_eq!(
        body["data"]["target"]["late"],
        json!({"checks": 10, "up": 0})
    );
    app.finish().await;
}

#[tokio::test]
async fn apply_targets_makes_the_stored_set_equal_the_list_and_is_idempotent() {
    let app = spawn_app().await;
    app.add("https://old.example.test/", 5).await;
    app.add("https://keep.example.test/", 1).await;
    let apply = "mutation($t: [TargetInput!]!, $prune: Boolean! = false) { applyTargets(targets: $t, prune: $prune) {
        added { url frequency } changed { url paused } removed { url } unchanged { url } } }";
    let list = json!([
        {"url": "https://keep.example.test/", "frequency": 1, "paused": true},
        {"url": "https://new.example.test/", "frequency": 10},
    ]);
    let first = app
        .gql(apply, json!({"t": list, "prune": true}), Some(TOKEN))
        .await;
    assert_eq!(
        first["data"]["applyTargets"],
        json!({"added": [{"url": "https://new.example.test/", "frequency": 10}],
               "changed": [{"url": "https://keep.example.test/", "paused": true}],
               "removed": [{"url": "https://old.example.test/"}],
               "unchanged": []})
    );
    let second = app
        .gql(apply, json!({"t": list, "prune": true}), Some(TOKEN))
        .await;
    assert_eq!(
        second["data"]["applyTargets"],
        json!({"added": [], "changed": [], "removed": [],
               "unchanged": [{"url": "https://keep.example.test/"}, {"url": "https://new.example.test/"}]})
    );
    let stored = app
        .db
        .query_strings("SELECT urltarget || ' ' || monitor_frequency || ' ' || paused FROM urltargets ORDER BY 1")
        .await;
    assert_eq!(
        stored,
        [
            "https://keep.example.test/ 1 true",
            "https://new.example.test/ 10 false"
        ]
    );

    // Without prune nothing is removed; one bad entry refuses the whole list.
    let bad = json!([{"url": "https://x.example.test/", "frequency": 1}, {"url": "nope", "frequency": 1}]);
    let (code, message) = error(&app.gql(apply, json!({"t": bad}), Some(TOKEN)).await);
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("targets[1]"), "{message}");
    let (code, _) = error(&app.gql(apply, json!({"t": list}), None).await);
    assert_eq!(code, "UNAUTHENTICATED");
    assert_eq!(
        app.db
            .query_strings("SELECT urltarget FROM urltargets")
            .await
            .len(),
        2
    );
    app.finish().await;
}

#[tokio::test]
async fn subscription_receives_a_result_written_by_the_ingest_path() {
    use futures_util::StreamExt;

    let app = spawn_app().await;
    let id = app.add("http://127.0.0.1/live", 1).await["data"]["addTarget"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app.add("http://127.0.0.1/other", 1).await["data"]["addTarget"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut ws = websocket::connect(&app.base).await;
    websocket::send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {"query":
            format!("subscription {{ results(targetId: \"{id}\") {{ httpStatus durationMs target {{ url }} }} }}")}}),
    )
    .await;

    // The ingest worker's own write path: rows + NOTIFY in one transaction. Results of the other
    // target go out too and must be filtered away. Keep writing (a new slot each time) until the
    // subscription, registered asynchronously, sees one.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut minute = 0i64;
    let received = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no result arrived on the subscription"
        );
        minute += 1;
        write_results(&app, &[&other, &id], minute).await;
        if let Ok(Some(message)) =
            tokio::time::timeout(std::time::Duration::from_millis(500), ws.next()).await
        {
            break message.unwrap();
        }
    };
    let message: Value = serde_json::from_str(received.to_text().unwrap()).unwrap();
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(
        message["payload"]["data"]["results"],
        json!({"httpStatus": 204, "durationMs": 17, "target": {"url": "http://127.0.0.1/live"}})
    );
    app.finish().await;
}

#[tokio::test]
async fn cors_allows_only_configured_origins_and_introspection_can_be_switched_off() {
    let app = spawn_app_with(&[
        "--cors-origins",
        "https://status.example.test",
        "--introspection",
        "false",
    ])
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.base))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .send()
    };
    let allowed = preflight("https://status.example.test").await.unwrap();
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .unwrap(),
        "https://status.example.test"
    );
    let refused = preflight("https://evil.example.test").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let body = app
        .gql("{ __schema { types { name } } }", json!({}), None)
        .await;
    // Switched off, introspection answers nothing (with it on, this lists every type).
    assert!(body["data"]["__schema"].is_null(), "{body}");
    // Ordinary queries still work.
    assert_eq!(
        app.gql("{ frequencies }", json!({}), None).await["data"]["frequencies"][0],
        1
    );
    app.finish().await;
}

#[tokio::test]
async fn the_read_cache_reuses_answers_until_a_change_is_announced() {
    // An hour-long TTL: only announced changes can make an answer fresh again here.
    let app = spawn_app_with(&["--read-cache-ttl", "1h"]).await;
    let urls = "{ targets(first: 50) { nodes { url } } }";
    let list = |body: Value| -> Vec<String> {
        body["data"]["targets"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["url"].as_str().unwrap().to_owned())
            .collect()
    };
    let by_hand = |n: usize| {
        format!(
            "INSERT INTO urltargets (urltarget, monitor_frequency) VALUES ('http://127.0.0.1/by-hand-{n}', 1)"
        )
    };

    // A row written by hand (no announcement) is not seen by a repeated query: the answer is
    // reused. (Until the server's LISTEN is up nothing is cached, hence the loop.)
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut n = 0;
    let cached = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "answers were never reused"
        );
        let before = list(app.gql(urls, json!({}), None).await);
        n += 1;
        app.db.exec(&by_hand(n)).await;
        let after = list(app.gql(urls, json!({}), None).await);
        if after == before {
            break after;
        }
    };
    assert_eq!(cached.len(), n - 1);
    // A mutation without a token changes nothing, so it does not empty the cache either.
    let refused = app
        .gql(
            "mutation { removeTarget(id: \"1\") { id } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(error(&refused).0, "UNAUTHENTICATED");
    assert_eq!(list(app.gql(urls, json!({}), None).await), cached);

    // The ingest worker's NOTIFY for new results makes every answer outdated.
    let target: i32 = app
        .db
        .query_strings("SELECT min(urltargets_pk)::text FROM urltargets")
        .await[0]
        .parse()
        .unwrap();
    let slot = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let store = worker_ingest::store::Store::new(
        app.db.conn.clone(),
        "cache-test".into(),
        "t".into(),
        Default::default(),
        Default::default(),
    );
    store
        .write(&worker_ingest::store::Batch {
            rows: vec![(
                worker_ingest::store::Row::from(&entity::ResultEvent::new(
                    target,
                    "http://127.0.0.1:9/",
                    entity::Frequency::OneMinute,
                    slot,
                    slot,
                    5,
                    entity::Outcome::Status(200),
                )),
                worker_ingest::store::Reject {
                    partition: 0,
                    offset: 0,
                    key: None,
                    payload: None,
                    reason: String::new(),
                },
            )],
            ..Default::default()
        })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while list(app.gql(urls, json!({}), None).await).len() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the NOTIFY did not refresh the answer"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // A mutation through this instance is seen by the very next read.
    let _ = list(app.gql(urls, json!({}), None).await);
    app.add("http://127.0.0.1/added", 5).await;
    assert!(
        list(app.gql(urls, json!({}), None).await).contains(&"http://127.0.0.1/added".to_owned())
    );

    // Errors are not kept: a target that was missing is found once it exists.
    let missing = "{ target(id: \"4242\") { url } }";
    assert_eq!(
        error(&app.gql(missing, json!({}), None).await).0,
        "NOT_FOUND"
    );
    app.db
        .exec("INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency) VALUES (4242, 'http://127.0.0.1/4242', 1)")
        .await;
    assert_eq!(
        app.gql(missing, json!({}), None).await["data"]["target"]["url"],
        "http://127.0.0.1/4242"
    );

    // Another instance hears of this one's mutations (NOTIFY) and drops its answers too.
    let other = serve(&app.db.url, &app.shutdown, &["--read-cache-ttl", "1h"]).await;
    let read_other = || async { list(app.gql_at(&other, urls, json!({}), None).await) };
    // Waits until the other instance lists `url`; only an announcement can make it (TTL 1 h).
    let other_lists = |url: &'static str, why: &'static str| async move {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !read_other().await.contains(&url.to_owned()) {
            assert!(tokio::time::Instant::now() < deadline, "{why}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // Wait until the other instance reuses answers (its LISTEN is up).
        assert!(
            tokio::time::Instant::now() < deadline,
            "the other instance never cached"
        );
        let before = read_other().await;
        n += 1;
        app.db.exec(&by_hand(n)).await;
        if read_other().await == before {
            break;
        }
    }
    app.add("http://127.0.0.1/added-elsewhere", 5).await;
    other_lists(
        "http://127.0.0.1/added-elsewhere",
        "the other instance kept a stale answer",
    )
    .await;

    // An instance that caches nothing itself still announces its mutations.
    let uncached = serve(&app.db.url, &app.shutdown, &["--read-cache-entries", "0"]).await;
    let added = app
        .gql_at(
            &uncached,
            "mutation { addTarget(url: \"http://127.0.0.1/uncached\", frequency: 5) { id } }",
            json!({}),
            Some(TOKEN),
        )
        .await;
    assert!(added["errors"].is_null(), "{added}");
    other_lists(
        "http://127.0.0.1/uncached",
        "a mutation through an instance without a cache was not announced",
    )
    .await;
    app.finish().await;
}
