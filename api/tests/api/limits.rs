//! Limits tried from outside, the way an attacker on the machine or a web page would: against
//! the real `pingpipe-api` process, with raw HTTP (like curl), watching its memory.

use std::time::Duration;

use entity::testing::Process;
use migration::testing::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The API's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// POSTs `size` bytes of `content_type` to /graphql, announced with Content-Length or sent in
/// chunks without one; returns the status line's code. The body is written while the answer
/// is read, as a client that does not wait for permission would.
async fn post(addr: std::net::SocketAddr, content_type: &str, size: usize, chunked: bool) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let length = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {size}")
    };
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n{length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        // What the body holds does not matter: it must be refused for its size alone.
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0;
        while sent < size {
            let ok = if chunked {
                let framed = [
                    format!("{:x}\r\n", chunk.len()).into_bytes(),
                    chunk.clone(),
                    b"\r\n".to_vec(),
                ]
                .concat();
                write.write_all(&framed).await
            } else {
                write.write_all(&chunk).await
            };
            if ok.is_err() {
                break; // The server closed: it has answered already.
            }
            sent += chunk.len();
        }
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let status = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let n = read.read(&mut buf).await.unwrap_or(0);
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer);
            if let Some(code) = text
                .split_whitespace()
                .nth(1)
                .filter(|_| text.contains("\r\n"))
            {
                return code.parse::<u16>().unwrap();
            }
            assert!(n > 0, "connection closed without an answer");
        }
    })
    .await
    .expect("no answer within 30 s");
    writer.abort();
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_refused_with_413_before_they_are_read() {
    let db = TestDb::migrated().await;
    let (mut api, addr) = crate::spawn_binary(&db, &[]).await;
    let pid = api.child.id().unwrap();
    // A request within the limit works (and warms the server up before memory is measured).
    let answer = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .json(&serde_json::json!({"query": "{ frequencies }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let before = rss_kib(pid);
    const TEN_MB: usize = 10 * 1024 * 1024;
    for (content_type, chunked) in [
        ("application/json", false),
        ("text/plain", false),
        ("application/json", true),
        ("text/plain", true),
    ] {
        let status = post(addr, content_type, TEN_MB, chunked).await;
        assert_eq!(status, 413, "{content_type}, chunked {chunked}");
    }
    let after = rss_kib(pid);
    assert!(
        after < before + 30 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    assert!(api.running(), "{}", api.log());
    db.drop().await;
}

/// A WebSocket upgrade as a browser sends it from `origin` (None: a non-browser client);
/// returns the HTTP status of the answer (101 when the socket opened).
async fn ws_upgrade(base: &str, origin: Option<&str>) -> u16 {
    // An upgrade that succeeds was answered 101 (the client checks it).
    crate::websocket::open_from(base, origin)
        .await
        .map_or_else(|status| status, |_| 101)
}

#[tokio::test]
async fn a_websocket_from_a_foreign_origin_is_refused_and_the_dashboards_opens() {
    let app = crate::spawn_app_with(&["--cors-origins", "http://dashboard.test:3000"]).await;
    assert_eq!(
        ws_upgrade(&app.base, Some("http://evil.example")).await,
        403
    );
    assert_eq!(ws_upgrade(&app.base, Some("null")).await, 403);
    // The dashboard, served by the API itself: the same origin.
    assert_eq!(ws_upgrade(&app.base, Some(&app.base)).await, 101);
    // An origin of the allow-list, and a client that is not a browser (no Origin).
    assert_eq!(
        ws_upgrade(&app.base, Some("http://dashboard.test:3000")).await,
        101
    );
    assert_eq!(ws_upgrade(&app.base, None).await, 101);
    app.finish().await;
}

#[tokio::test]
async fn a_token_shorter_than_16_characters_stops_the_api_at_start() {
    let args: Vec<String> = [
        "--database-url",
        "postgres://nobody@127.0.0.1:1/none",
        "--listen",
        "127.0.0.1:0",
        "--api-tokens",
        "a-long-enough-token-1,guessable",
    ]
    .map(String::from)
    .to_vec();
    let mut api = Process::spawn(env!("CARGO_BIN_EXE_pingpipe-api"), &args);
    let status = api.exit(Duration::from_secs(30)).await;
    assert!(!status.success(), "{status}");
    let said = api.log();
    assert!(said.contains("shorter than 16 characters"), "{said}");
    assert!(!said.contains("guessable"), "the token was shown: {said}");
}

/// Input PostgreSQL cannot store, or that would leak, is the caller's error with a code and a
/// message naming what is wrong; nothing is stored, nothing is INTERNAL.
#[tokio::test]
async fn hostile_input_is_bad_user_input_naming_the_field() {
    let app = crate::spawn_app().await;
    let code = |answer: &serde_json::Value| {
        answer["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let message = |answer: &serde_json::Value| {
        answer["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    // Credentials in the URL.
    let answer = app.add("http://user:pw@127.0.0.1/", 1).await;
    assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
    assert!(message(&answer).contains("password"), "{answer}");
    // A URL within 1,024 characters that normalising takes past them (spaces become %20).
    let long = format!("http://127.0.0.1/{}", "x y".repeat(300));
    assert!(long.len() <= 1024);
    let answer = app.add(&long, 1).await;
    assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
    assert!(message(&answer).contains("normalised"), "{answer}");
    // Dates PostgreSQL cannot compare, in every place that takes one.
    for (query, name) in [
        (
            r#"{ results(frequency: 1, since: "-5000-01-01T00:00:00Z") { edges { cursor } } }"#,
            "since",
        ),
        (
            r#"{ results(frequency: 1, until: "+200000-01-01T00:00:00Z") { edges { cursor } } }"#,
            "until",
        ),
    ] {
        let answer = app.gql(query, serde_json::json!({}), None).await;
        assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
        assert!(message(&answer).starts_with(name), "{answer}");
    }
    let id = app.add("http://127.0.0.1/a_b", 1).await["data"]["addTarget"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = app
        .gql(
            r#"query($id: ID!) { target(id: $id) { stats(since: "-5000-01-01T00:00:00Z") { checks } } }"#,
            serde_json::json!({"id": id}),
            None,
        )
        .await;
    assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
    // `search` is literal: `_` and `%` match only themselves; and it has a length cap.
    app.add("http://127.0.0.1/axb", 1).await;
    let found = |answer: serde_json::Value| -> Vec<String> {
        answer["data"]["targets"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["url"].as_str().unwrap().to_owned())
            .collect()
    };
    let search = "query($s: String!) { targets(search: $s) { edges { node { url } } } }";
    assert_eq!(
        found(app.gql(search, serde_json::json!({"s": "a_b"}), None).await),
        ["http://127.0.0.1/a_b"]
    );
    assert!(found(app.gql(search, serde_json::json!({"s": "%"}), None).await).is_empty());
    let answer = app
        .gql(search, serde_json::json!({"s": "x".repeat(1025)}), None)
        .await;
    assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
    let answer = app
        .gql(search, serde_json::json!({"s": "a\u{0}b"}), None)
        .await;
    assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("NUL"),
        "{answer}"
    );
    // Nothing of the refused input was stored.
    let stored = app
        .gql(
            "{ targets { edges { node { url } } } }",
            serde_json::json!({}),
            None,
        )
        .await;
    assert_eq!(
        stored["data"]["targets"]["edges"].as_array().unwrap().len(),
        2
    );
    app.finish().await;
}

#[tokio::test]
async fn apply_targets_refuses_more_than_5000_entries_and_applies_5000() {
    let app = crate::spawn_app().await;
    let apply = "mutation($t: [TargetInput!]!) { applyTargets(targets: $t) { added { id } } }";
    let list = |n: usize| -> serde_json::Value {
        (0..n)
            .map(|i| serde_json::json!({"url": format!("http://127.0.0.1/{i}"), "frequency": 5}))
            .collect()
    };
    let answer = app
        .gql(
            apply,
            serde_json::json!({"t": list(5001)}),
            Some(crate::TOKEN),
        )
        .await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{answer}"
    );
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 5000"),
        "{answer}"
    );
    // The limit itself is accepted (and, with hash lookups, quickly).
    let answer = app
        .gql(
            apply,
            serde_json::json!({"t": list(5000)}),
            Some(crate::TOKEN),
        )
        .await;
    assert_eq!(
        answer["data"]["applyTargets"]["added"]
            .as_array()
            .map(Vec::len),
        Some(5000),
        "{answer}"
    );
    app.finish().await;
}

/// The API's connections carry `statement_timeout`: a statement running longer is cancelled by
/// PostgreSQL instead of holding the database.
#[tokio::test]
async fn the_apis_statements_are_cancelled_after_the_statement_timeout() {
    use sea_orm::ConnectionTrait;
    let db = TestDb::migrated().await;
    let args = entity::config::DatabaseArgs {
        database_url: db.url.clone(),
    };
    let pool = plumbing::database::connect_lazy_with_timeout(&args, 1, Duration::from_millis(200))
        .await
        .unwrap();
    let shown = pool
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SHOW statement_timeout",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<String>(0)
        .unwrap();
    assert_eq!(shown, "200ms");
    let err = pool
        .execute_unprepared("SELECT pg_sleep(2)")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("statement timeout"), "{err}");
    drop(pool);
    db.drop().await;
}

/// Every response — the dashboard's files, GraphiQL's page, the API's answers, errors, the
/// operations endpoint — carries the security headers; no policy allows inline script.
#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let frontend = crate::FrontendDir::new();
    let app = crate::spawn_app_with(&["--frontend-dir", frontend.path()]).await;
    let client = reqwest::Client::new();
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/app.js"),
        ("GET", "/no-such-file"),
        ("POST", "/graphql"),
        ("GET", "/healthz"),
        ("GET", "/graphql"),
    ] {
        let request = match method {
            "POST" => client
                .post(format!("{}{path}", app.base))
                .json(&serde_json::json!({"query": "{ frequencies }"})),
            _ => client.get(format!("{}{path}", app.base)),
        };
        let response = request.send().await.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        let csp = header("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self';"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
    }
    app.finish().await;
}

/// graphql-js's `getIntrospectionQuery()` (v16, default options), as GraphiQL, Apollo,
/// graphql-codegen, Postman and Insomnia send it; graphql-core's `get_introspection_query()`
/// is the same query. Its `TypeRef` nests `ofType` deeper than data queries may go.
const INTROSPECTION_QUERY: &str = r#"
    query IntrospectionQuery {
      __schema {
        queryType { name }
        mutationType { name }
        subscriptionType { name }
        types { ...FullType }
        directives { name description locations args { ...InputValue } }
      }
    }
    fragment FullType on __Type {
      kind name description
      fields(includeDeprecated: true) {
        name description
        args { ...InputValue }
        type { ...TypeRef }
        isDeprecated deprecationReason
      }
      inputFields { ...InputValue }
      interfaces { ...TypeRef }
      enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
      possibleTypes { ...TypeRef }
    }
    fragment InputValue on __InputValue {
      name description
      type { ...TypeRef }
      defaultValue
    }
    fragment TypeRef on __Type {
      kind name
      ofType { kind name ofType { kind name ofType { kind name ofType { kind name
        ofType { kind name ofType { kind name ofType { kind name ofType { kind name
          ofType { kind name } } } } } } } } }
    }
"#;

#[tokio::test]
async fn the_standard_introspection_query_returns_the_whole_schema() {
    let app = crate::spawn_app().await;
    for operation in [None, Some("IntrospectionQuery")] {
        let mut body = serde_json::json!({"query": INTROSPECTION_QUERY});
        if let Some(name) = operation {
            body["operationName"] = name.into();
        }
        let answer = app.post_at(&app.base, &body, None).await;
        assert!(answer["errors"].is_null(), "{answer}");
        let schema = &answer["data"]["__schema"];
        assert_eq!(schema["queryType"]["name"], "Query");
        assert_eq!(schema["mutationType"]["name"], "Mutation");
        let names: std::collections::BTreeSet<String> = schema["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        // Every type of the committed schema, as the client will build it from this answer.
        let committed = std::fs::read_to_string(format!(
            "{}/../schema.graphql",
            std::env::var("CARGO_MANIFEST_DIR").unwrap()
        ))
        .unwrap();
        for line in committed.lines() {
            let mut words = line.split_whitespace();
            if let (
                Some("type" | "enum" | "input" | "scalar" | "interface" | "union"),
                Some(name),
            ) = (words.next(), words.next())
            {
                assert!(names.contains(name), "{name} missing from {names:?}");
            }
        }
        // Field by field, for one type.
        let target = schema["types"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "Target")
            .unwrap();
        let fields: Vec<&str> = target["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&"latestResult") && fields.contains(&"stats"),
            "{fields:?}"
        );
    }
    // Data queries keep their depth limit, and every refusal has a code.
    let code = |answer: &serde_json::Value| answer["errors"][0]["extensions"]["code"].clone();
    let mut deep = String::from("id");
    for _ in 0..6 {
        deep = format!("latestResult {{ target {{ {deep} }} }}");
    }
    let cases = [
        (
            format!("{{ targets {{ edges {{ node {{ {deep} }} }} }} }}"),
            "QUERY_TOO_DEEP",
        ),
        (
            "{ targets(first: 500) { nodes { results(first: 500) { nodes { id } } } } }".into(),
            "QUERY_TOO_COMPLEX",
        ),
        ("{ frequencies".into(), "GRAPHQL_PARSE_FAILED"),
        ("{ nope }".into(), "GRAPHQL_VALIDATION_FAILED"),
        // Introspection that nests its lists deeper than graphql-js allows (2) grows
        // exponentially: refused, as is the same through a fragment.
        (
            "{ __type(name: \"Target\") { fields { type { fields { type { fields { type { fields { name } } } } } } } } }".into(),
            "QUERY_TOO_DEEP",
        ),
        (
            "{ __schema { types { ...T } } } fragment T on __Type { fields { type { interfaces { possibleTypes { fields { name } } } } } }".into(),
            "QUERY_TOO_DEEP",
        ),
        // An introspection query cannot smuggle data: mixed roots go through the limits.
        (
            format!("{{ __typename targets {{ edges {{ node {{ {deep} }} }} }} }}"),
            "QUERY_TOO_DEEP",
        ),
    ];
    for (query, expected) in cases {
        let answer = app.gql(&query, serde_json::json!({}), None).await;
        assert_eq!(code(&answer), expected, "{query}: {answer}");
    }
    // Not GraphQL at all: 400, and still an error with a code.
    let response = reqwest::Client::new()
        .post(format!("{}/graphql", app.base))
        .header("content-type", "application/json")
        .body("{\"query\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(code(&answer), "BAD_REQUEST", "{answer}");
    app.finish().await;
}
