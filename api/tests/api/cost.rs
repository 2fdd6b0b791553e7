//! What a query may cost, counted from outside: the statements the real `pingpipe-api` sends
//! (its `/metrics`), for pages of different sizes, and queries whose pages multiply refused
//! before any statement is sent.

use std::net::SocketAddr;
use std::time::Duration;

use migration::testing::TestDb;
use serde_json::{Value, json};

/// The dashboard's overview query (frontend/public/app.js), for a page of `$first` targets.
const DASHBOARD_PAGE: &str = "query Targets($first: Int) {
  targets(first: $first) {
    nodes { id url frequency paused
      latestResult { id httpStatus up failureClass durationMs scheduledAt startTime }
      results(first: 30) { nodes { durationMs } }
      stats { checks uptimeRatio }
    }
    pageInfo { hasNextPage endCursor }
  }
}";

/// `pingpipe_api_sql_statements_total` from the API's /metrics (0 before the first).
async fn statements(addr: SocketAddr) -> u64 {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("pingpipe_api_sql_statements_total "))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Posts a query; an answer that takes over 10 s (a server busy expanding what it should have
/// refused) fails the test.
async fn post(addr: SocketAddr, query: &str, variables: Value) -> Value {
    reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .timeout(Duration::from_secs(10))
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The statements one request costs: the counter's change across it (nothing else runs: the
/// read cache is off and the readiness check's ping is not a statement).
async fn statements_of(addr: SocketAddr, query: &str, variables: Value) -> (u64, Value) {
    let before = statements(addr).await;
    let answer = post(addr, query, variables).await;
    (statements(addr).await - before, answer)
}

#[tokio::test]
async fn a_page_costs_the_same_statements_whatever_its_size_and_a_multiplying_query_none() {
    let db = TestDb::migrated().await;
    // 60 targets with 40 results each.
    db.exec(
        "INSERT INTO urltargets (urltarget, monitor_frequency)
         SELECT 'http://127.0.0.1/' || i, 1 FROM generate_series(1, 60) i",
    )
    .await;
    db.exec(
        "INSERT INTO monitor_results (urltarget_fk, http_status, start_time, duration, scheduled_at, outcome)
         SELECT t.urltargets_pk, 200, s, 10 + n, s, 'up'
         FROM urltargets t, generate_series(1, 40) n,
              LATERAL (SELECT timestamptz '2026-11-30 00:00Z' + n * interval '1 minute') AS x(s)",
    )
    .await;
    // As the ingest worker would have: the closed hours rolled up (`stats` without a period
    // reads them).
    worker_ingest::rollups::rebuild(
        &db.conn,
        chrono::DateTime::parse_from_rfc3339("2026-11-30T00:00:00Z")
            .unwrap()
            .into(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let (mut api, addr) = crate::spawn_binary(&db, &["--read-cache-entries", "0"]).await;

    let mut counts = Vec::new();
    for first in [5, 20, 50] {
        let (count, answer) = statements_of(addr, DASHBOARD_PAGE, json!({"first": first})).await;
        assert!(answer["errors"].is_null(), "{answer}");
        let nodes = answer["data"]["targets"]["nodes"].as_array().unwrap();
        // The page is whole: every target with its newest result and its 30 latest.
        assert_eq!(nodes.len(), first);
        for node in nodes {
            assert_eq!(node["latestResult"]["durationMs"], 50, "{node}");
            assert_eq!(node["results"]["nodes"].as_array().unwrap().len(), 30);
            assert_eq!(node["stats"]["checks"], 40);
        }
        counts.push(count);
    }
    // The targets, their latest results, their result pages, the maintenance windows (left out
    // of uptime) and their stats: five statements, not one per target.
    assert_eq!(
        counts,
        [5, 5, 5],
        "statements for pages of 5, 20, 50 targets"
    );

    // The report: 50 results, each with its target.
    let (count, answer) = statements_of(
        addr,
        "{ results(frequency: 1, first: 50) { nodes { id target { id url } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        answer["data"]["results"]["nodes"].as_array().unwrap().len(),
        50
    );
    assert_eq!(count, 2, "{answer}");

    // 500 targets × 500 results × their target: refused with its cost, before any SQL.
    let (count, answer) = statements_of(
        addr,
        "{ targets(first: 500) { nodes { results(first: 500) { nodes { target { url } } } } } }",
        json!({}),
    )
    .await;
    let error = &answer["errors"][0];
    assert_eq!(error["extensions"]["code"], "QUERY_TOO_COMPLEX", "{answer}");
    let cost = error["extensions"]["cost"].as_u64().unwrap();
    assert!(cost > 500 * 500 * 2, "{answer}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains(&cost.to_string())
    );
    assert_eq!(count, 0, "statements sent for a refused query");
    // The same through variables, and with `first` left to its default of 50 inside.
    let (count, answer) = statements_of(
        addr,
        "query($n: Int) { targets(first: $n) { nodes { results { nodes { target { results { nodes { id } } } } } } } }",
        json!({"n": 500}),
    )
    .await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX",
        "{answer}"
    );
    assert_eq!(count, 0);
    // A first too large to multiply cannot overflow the count into a small one.
    let huge = "{ targets(first: 2147483647) { nodes { results(first: 2147483647) { nodes { target { results(first: 2147483647) { nodes { id } } } } } } } }";
    let (count, answer) = statements_of(addr, huge, json!({})).await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX",
        "{answer}"
    );
    assert_eq!(count, 0);
    // Documents that make async-graphql walk every expansion before validating them, each
    // refused before that, with the code that says why.
    // Fragments f0 … f{levels}: each `body` with NEXT naming the one below, the last `last`.
    let fragments = |levels: usize, body: &str, last: &str| {
        let mut document: String = (0..levels)
            .map(|level| {
                let body = body.replace("NEXT", &format!("f{}", level + 1));
                format!("fragment f{level} on Query {{ {body} }}\n")
            })
            .collect();
        document.push_str(&format!("fragment f{levels} on Query {{ {last} }}\n"));
        document
    };
    let doubling = |levels: usize, body: &str, last: &str| {
        "{ ...f0 }\n".to_owned() + &fragments(levels, body, last)
    };
    let mut many_operations = fragments(12, "...NEXT ...NEXT", "frequencies");
    for op in 0..40 {
        many_operations.push_str(&format!("query q{op} {{ ...f0 }}\n"));
    }
    let cases = [
        // Doubling (2^30), plain: within async-graphql's recursion limit of 32.
        (
            doubling(30, "...NEXT ...NEXT", "frequencies"),
            "QUERY_TOO_COMPLEX",
        ),
        // Doubling under @skip: what a skipped branch selects counts too.
        (
            doubling(
                14,
                "...NEXT ... on Query @skip(if: true) { ...NEXT }",
                "targets(first: 1) { nodes { id } }",
            ),
            "QUERY_TOO_COMPLEX",
        ),
        // Doubling down to a fragment that does not exist (costless until spreads counted).
        (
            doubling(31, "...NEXT ...NEXT", "...nope"),
            "QUERY_TOO_COMPLEX",
        ),
        // 40 operations over one doubling fragment: every operation is checked.
        (many_operations, "QUERY_TOO_COMPLEX"),
        // Directives weigh what they hold, at every expansion.
        (
            doubling(
                8,
                "...NEXT ...NEXT",
                &format!("frequencies {}", "@skip(if: false) ".repeat(400)),
            ),
            "QUERY_TOO_COMPLEX",
        ),
        // A chain of 3,000 fragments: too deep, not followed to its end.
        (doubling(3000, "...NEXT", "frequencies"), "QUERY_TOO_DEEP"),
        // One field with many arguments, spread twice through 31 fragments (async-graphql's
        // validation compares arguments pairwise at every fragment level).
        (
            doubling(
                31,
                "...NEXT",
                &format!(
                    "a: frequencies({args}) a: frequencies({args})",
                    args = (0..2000).map(|i| format!("x{i}: 0 ")).collect::<String>()
                ),
            ),
            "QUERY_TOO_COMPLEX",
        ),
        // A fragment costed where it is shallow, spread again 33 levels down.
        (
            format!(
                "{{ ...leaf {}...leaf {}}} fragment leaf on Query {{ __typename }}",
                "... on Query { ".repeat(32),
                "} ".repeat(32)
            ),
            "QUERY_TOO_DEEP",
        ),
        // 6,000 operations over one fragment of 4,000 fields: the walk stops once the budget
        // is spent instead of walking the fragment 6,000 times.
        (
            {
                let fields: String = (0..4000).map(|i| format!("a{i}: frequencies ")).collect();
                let operations: String = (0..6000)
                    .map(|i| format!("query q{i} {{ ...f }}\n"))
                    .collect();
                format!("{operations}fragment f on Query {{ {fields} }}")
            },
            "QUERY_TOO_COMPLEX",
        ),
        // A fragment nobody spreads.
        (
            "{ frequencies } fragment x on Query { frequencies }".to_owned(),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        // The schema six times over, by aliases.
        (
            format!(
                "{{ {} }}",
                (0..6)
                    .map(|i| format!("s{i}: __schema {{ types {{ name }} }} "))
                    .collect::<String>()
            ),
            "QUERY_TOO_COMPLEX",
        ),
    ];
    // Documents whose errors async-graphql would multiply: one error, or refused before.
    let repeats = "a: frequencies ".repeat(3000);
    let (count, answer) = statements_of(
        addr,
        &format!("{{ ... on Query {{ a: target(id: 1) {{ id }} {repeats} }} }}"),
        json!({}),
    )
    .await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{answer}"
    );
    assert_eq!(answer["errors"].as_array().unwrap().len(), 1, "{answer}");
    assert_eq!(count, 0);
    let uses = vec!["$v"; 5000].join(" ");
    let wide_variable = json!({"v": vec![0; 20_000]});
    let with_variables = [
        // A variable copied into every place it is used weighs its value each time.
        (
            format!("{{ frequencies @skip(if: [{uses}]) }}"),
            wide_variable,
            "QUERY_TOO_COMPLEX",
        ),
        // A long name, repeated in every message about it.
        (
            format!("query {} {{ frequencies }}", "q".repeat(5000)),
            json!({}),
            "QUERY_TOO_COMPLEX",
        ),
        // Brackets nested deeper than the parser should go.
        (
            format!(
                "{{ frequencies(x: {}0{}) }}",
                "[".repeat(100),
                "]".repeat(100)
            ),
            json!({}),
            "QUERY_TOO_DEEP",
        ),
    ];
    let cases = cases
        .into_iter()
        .map(|(document, code)| (document, json!({}), code));
    for (document, variables, code) in cases.chain(with_variables) {
        let (count, answer) = statements_of(addr, &document, variables).await;
        assert_eq!(
            answer["errors"][0]["extensions"]["code"],
            code,
            "{}…: {answer}",
            &document[..document.len().min(120)]
        );
        assert_eq!(count, 0);
    }
    // Each alias runs its own statement: 60 of them are over the default 50.
    let aliases: String = (1..=60)
        .map(|i| format!("t{i}: target(id: {i}) {{ id }} "))
        .collect();
    let (count, answer) = statements_of(addr, &format!("{{ {aliases} }}"), json!({})).await;
    let error = &answer["errors"][0];
    assert_eq!(error["extensions"]["code"], "QUERY_TOO_COMPLEX", "{answer}");
    assert_eq!(error["extensions"]["statements"], 60, "{answer}");
    assert_eq!(count, 0);
    // 50 are allowed, and run 50 statements.
    let aliases: String = (1..=50)
        .map(|i| format!("t{i}: target(id: {i}) {{ id }} "))
        .collect();
    let (count, answer) = statements_of(addr, &format!("{{ {aliases} }}"), json!({})).await;
    assert!(answer["errors"].is_null(), "{answer}");
    assert_eq!(count, 50);
    assert!(api.running(), "{}", api.log());
    db.drop().await;
}
