//! Checks (#12) through the API: a target's check is stored and read back as given (header
//! values excepted: they go in and never come out, not in an answer, an error or the binary's
//! log), every bad entry is refused naming it with nothing stored, and results show their
//! outcome, failed assertions, phases and certificate, with statistics over them.

use serde_json::{Value, json};

use crate::{App, TOKEN, error, spawn_app};

/// Everything a check shows.
const CHECK: &str = "check { assertions { source property comparison value } degradedAfterMs \
                     method headerNames body tlsVerify caBundle reprobe }";

fn add_query() -> String {
    format!(
        "mutation($url: String!, $check: CheckInput) {{ addTarget(url: $url, frequency: 5, \
         check: $check) {{ id url {CHECK} }} }}"
    )
}

fn update_query() -> String {
    format!(
        "mutation($id: ID!, $check: CheckInput) {{ updateTarget(id: $id, check: $check) \
         {{ id {CHECK} }} }}"
    )
}

fn apply_query() -> String {
    format!(
        "mutation($t: [TargetInput!]!) {{ applyTargets(targets: $t) {{ added {{ url {CHECK} }} \
         changed {{ url {CHECK} }} removed {{ url }} unchanged {{ url {CHECK} }} }} }}"
    )
}

/// The stored targets, every column, as text: what "nothing changed" compares.
async fn stored(app: &App) -> Vec<String> {
    app.db
        .query_strings("SELECT row_to_json(t)::text FROM urltargets t ORDER BY urltargets_pk")
        .await
}

async fn add(app: &App, url: &str, check: Value) -> Value {
    app.gql(
        &add_query(),
        json!({"url": url, "check": check}),
        Some(TOKEN),
    )
    .await
}

#[tokio::test]
async fn checks_round_trip_through_add_update_and_apply() {
    let app = spawn_app().await;
    let check = json!({
        "assertions": [
            {"source": "STATUS", "comparison": "IN_RANGE", "value": "200-299"},
            {"source": "BODY_JSON", "property": "$.checks[?@.name=='db'].ok", "comparison": "EQUALS", "value": "true"},
            {"source": "HEADER", "property": "content-type", "comparison": "CONTAINS", "value": "json"},
            {"source": "BODY_TEXT", "comparison": "NOT_EMPTY"}
        ],
        "degradedAfterMs": 300,
        "method": "POST",
        "headers": [{"name": "Authorization", "value": "Bearer abc"}, {"name": "X-Probe", "value": "1"}],
        "body": "{\"ping\":true}",
        "tlsVerify": false,
        "caBundle": null,
        "reprobe": true
    });
    let added = add(&app, "https://api.example.test/health", check.clone()).await;
    let target = &added["data"]["addTarget"];
    let id = target["id"].as_str().unwrap().to_owned();
    let mut shown = check.clone();
    shown["headerNames"] = json!(["Authorization", "X-Probe"]);
    shown.as_object_mut().unwrap().remove("headers");
    // Assertions come back with every field, null where none was given.
    for a in shown["assertions"].as_array_mut().unwrap() {
        for field in ["property", "value"] {
            a.as_object_mut()
                .unwrap()
                .entry(field)
                .or_insert(Value::Null);
        }
    }
    assert_eq!(target["check"], shown, "{added}");
    let read = app
        .gql(
            &format!("query($id: ID!) {{ target(id: $id) {{ {CHECK} }} }}"),
            json!({"id": id}),
            None,
        )
        .await;
    assert_eq!(read["data"]["target"]["check"], shown);
    assert_eq!(
        app.db
            .query_strings("SELECT reprobe::text FROM urltargets")
            .await,
        ["true"]
    );

    // Omitted fields stay; given ones change.
    let update = |check: Value| {
        let (app, id) = (&app, id.clone());
        async move {
            app.gql(
                &update_query(),
                json!({"id": id, "check": check}),
                Some(TOKEN),
            )
            .await
        }
    };
    let body = update(json!({"degradedAfterMs": 500})).await;
    shown["degradedAfterMs"] = json!(500);
    assert_eq!(body["data"]["updateTarget"]["check"], shown, "{body}");
    // Null resets: method to GET (with the body cleared), assertions and headers to [],
    // tlsVerify to true, reprobe to false.
    let body = update(json!({
        "assertions": null, "degradedAfterMs": null, "method": null, "headers": null,
        "body": null, "tlsVerify": null, "caBundle": null, "reprobe": null
    }))
    .await;
    let default = json!({"assertions": [], "degradedAfterMs": null, "method": "GET",
                         "headerNames": [], "body": null, "tlsVerify": true, "caBundle": null,
                         "reprobe": false});
    assert_eq!(body["data"]["updateTarget"]["check"], default, "{body}");
    assert_eq!(
        app.db
            .query_strings("SELECT request_headers::text FROM urltargets")
            .await,
        ["[]"]
    );

    // applyTargets: the entry's check replaces the stored one; the same list twice changes
    // nothing, a header given without value included.
    let list = json!([{
        "url": "https://api.example.test/health", "frequency": 5,
        "check": {"method": "HEAD", "headers": [{"name": "Authorization", "value": "Bearer xyz"}],
                  "reprobe": true,
                  "assertions": [{"source": "RESPONSE_TIME_MS", "comparison": "LESS_THAN", "value": "800"}]}
    }, {"url": "https://other.example.test/", "frequency": 1}]);
    let first = app
        .gql(&apply_query(), json!({"t": list}), Some(TOKEN))
        .await;
    let report = &first["data"]["applyTargets"];
    assert_eq!(report["changed"][0]["check"]["method"], "HEAD", "{first}");
    assert_eq!(report["changed"][0]["check"]["reprobe"], true, "{first}");
    assert_eq!(
        report["changed"][0]["check"]["headerNames"],
        json!(["Authorization"])
    );
    assert_eq!(report["added"][0]["check"], default);
    let second = app
        .gql(&apply_query(), json!({"t": list}), Some(TOKEN))
        .await;
    assert_eq!(
        second["data"]["applyTargets"]["unchanged"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{second}"
    );
    let mut without_value = list.clone();
    without_value[0]["check"]["headers"] = json!([{"name": "authorization"}]);
    let third = app
        .gql(&apply_query(), json!({"t": without_value}), Some(TOKEN))
        .await;
    // The name's case is the list's: a change, the value kept.
    assert_eq!(
        third["data"]["applyTargets"]["changed"][0]["check"]["headerNames"],
        json!(["authorization"]),
        "{third}"
    );
    let mut lower = list.clone();
    lower[0]["check"]["headers"] = json!([{"name": "authorization", "value": null}]);
    let fourth = app
        .gql(&apply_query(), json!({"t": lower}), Some(TOKEN))
        .await;
    assert_eq!(
        fourth["data"]["applyTargets"]["unchanged"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{fourth}"
    );
    assert_eq!(
        app.db
            .query_strings(
                "SELECT request_headers::text FROM urltargets WHERE urltarget LIKE '%api.%'"
            )
            .await,
        [r#"[{"name": "authorization", "value": "Bearer xyz"}]"#]
    );
    // An entry without a check gets the default one back.
    let plain = json!([{"url": "https://api.example.test/health", "frequency": 5}]);
    let fifth = app
        .gql(&apply_query(), json!({"t": plain}), Some(TOKEN))
        .await;
    assert_eq!(
        fifth["data"]["applyTargets"]["changed"][0]["check"], default,
        "{fifth}"
    );

    // A CA bundle must hold certificates; null clears it.
    let body = update(json!({"caBundle": "not a certificate"})).await;
    let (code, message) = error(&body);
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(
        message.starts_with("check.caBundle: ") && message.contains("no PEM certificate"),
        "{message}"
    );
    let body = update(json!({"caBundle": null, "tlsVerify": false})).await;
    assert_eq!(
        body["data"]["updateTarget"]["check"]["caBundle"],
        Value::Null
    );
    assert_eq!(body["data"]["updateTarget"]["check"]["tlsVerify"], false);
    app.finish().await;
}

/// A check with one good assertion and then `bad`.
fn second_assertion(bad: Value) -> Value {
    json!({"assertions": [{"source": "STATUS", "comparison": "EQUALS", "value": "200"}, bad]})
}

/// Bad checks, with what their refusal must say.
fn bad_checks() -> Vec<(Value, &'static str)> {
    let many: Vec<Value> = (0..21)
        .map(|_| json!({"source": "STATUS", "comparison": "EQUALS", "value": "200"}))
        .collect();
    vec![
        (
            second_assertion(
                json!({"source": "BODY_JSON", "property": "$[", "comparison": "EQUALS", "value": "1"}),
            ),
            "check.assertions: assertion 1 (BODY_JSON EQUALS): \"$[\" is not a JSONPath",
        ),
        (
            second_assertion(json!({"source": "BODY_TEXT", "comparison": "MATCHES", "value": "("})),
            "check.assertions: assertion 1 (BODY_TEXT MATCHES): \"(\" is not a usable regular expression",
        ),
        (
            second_assertion(json!({"source": "STATUS", "comparison": "CONTAINS", "value": "2"})),
            "check.assertions: assertion 1 (STATUS CONTAINS): CONTAINS cannot be used with STATUS",
        ),
        (
            second_assertion(
                json!({"source": "RESPONSE_TIME_MS", "comparison": "IN_RANGE", "value": "5-1"}),
            ),
            "check.assertions: assertion 1 (RESPONSE_TIME_MS IN_RANGE): \"5-1\" is not a range",
        ),
        (
            second_assertion(json!({"source": "HEADER", "comparison": "NOT_EMPTY"})),
            "check.assertions: assertion 1 (HEADER NOT_EMPTY): HEADER needs the header's name",
        ),
        (
            json!({"assertions": many}),
            "check.assertions: at most 20 assertions per target, got 21",
        ),
        (
            json!({"headers": [{"name": "X-Ok", "value": "1"}, {"name": "X Token", "value": "v"}]}),
            "check.headers: header 1 (\"X Token\"): a name is",
        ),
        (
            json!({"headers": [{"name": "X-Token", "value": "v\r\nHost: evil.test"}]}),
            "check.headers: header 0 (X-Token): the value has a control character",
        ),
        (
            json!({"headers": [{"name": "Content-Length", "value": "5"}]}),
            "check.headers: header 0 (Content-Length): set by the probe itself",
        ),
        (
            json!({"body": "{}"}),
            "check.body: a body is sent with POST only, not GET",
        ),
        (
            json!({"method": "HEAD", "body": "{}"}),
            "check.body: a body is sent with POST only, not HEAD",
        ),
        (
            json!({"degradedAfterMs": 0}),
            "check.degradedAfterMs: degradedAfterMs must be 1..=86400000, got 0",
        ),
        (
            json!({"caBundle": "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"}),
            "check.caBundle: ",
        ),
        // What PostgreSQL could not store, or a check that could never be judged.
        (
            second_assertion(
                json!({"source": "BODY_TEXT", "comparison": "CONTAINS", "value": "a\u{0}b"}),
            ),
            "check.assertions: assertion 1 (BODY_TEXT CONTAINS): a property or value contains a NUL character",
        ),
        (
            json!({"caBundle": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n\u{0}"}),
            "check.caBundle: the CA bundle contains a NUL character",
        ),
        (
            json!({"method": "HEAD", "assertions": [{"source": "BODY_TEXT", "comparison": "NOT_CONTAINS", "value": "Error"}]}),
            "check.assertions: assertion 0 (BODY_TEXT): a HEAD response has no body to check",
        ),
        (
            json!({"headers": [{"name": "Host", "value": "elsewhere.example.test"}]}),
            "check.headers: header 0 (Host): set by the probe itself",
        ),
        (
            json!({"headers": [{"name": "X-A", "value": "1"}, {"name": "x-a", "value": "2"}]}),
            "check.headers: header 1 (x-a): given twice",
        ),
        (
            json!({"headers": [{"name": "X-Unknown"}]}),
            "check.headers: header 0 (\"X-Unknown\") has no value, and this target stores none",
        ),
    ]
}

#[tokio::test]
async fn bad_checks_are_refused_naming_the_entry_and_nothing_is_stored() {
    let app = spawn_app().await;
    let good = json!({"degradedAfterMs": 250, "headers": [{"name": "X-Key", "value": "k"}]});
    let added = add(&app, "https://kept.example.test/", good.clone()).await;
    let id = added["data"]["addTarget"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = stored(&app).await;
    assert_eq!(before.len(), 1, "{added}");
    for (check, says) in bad_checks() {
        // addTarget
        let body = add(&app, "https://new.example.test/", check.clone()).await;
        let (code, message) = error(&body);
        assert_eq!(code, "BAD_USER_INPUT", "{check}: {body}");
        assert!(
            message.starts_with(says),
            "{message} should start with {says}"
        );
        // updateTarget
        let body = app
            .gql(
                &update_query(),
                json!({"id": id, "check": check}),
                Some(TOKEN),
            )
            .await;
        let (code, message) = error(&body);
        assert_eq!(code, "BAD_USER_INPUT", "{check}: {body}");
        assert!(
            message.starts_with(says),
            "{message} should start with {says}"
        );
        // applyTargets: the entry is named, and the good entries before it are not stored
        // either.
        let list = json!([
            {"url": "https://kept.example.test/", "frequency": 5, "check": good},
            {"url": "https://first.example.test/", "frequency": 1},
            {"url": "https://new.example.test/", "frequency": 2, "check": check},
        ]);
        let body = app
            .gql(&apply_query(), json!({"t": list}), Some(TOKEN))
            .await;
        let (code, message) = error(&body);
        assert_eq!(code, "BAD_USER_INPUT", "{check}: {body}");
        let named = format!("targets[2] (https://new.example.test/): {says}");
        assert!(
            message.starts_with(&named),
            "{message} should start with {named}"
        );
        assert!(body["data"].is_null(), "{body}");
        assert_eq!(stored(&app).await, before, "after {check}");
    }
    app.finish().await;
}

/// A header value no answer or log line may hold.
const SECRET: &str = "Bearer s3cret-7f41c9e2-only-in-the-database";

#[tokio::test]
async fn header_values_appear_in_no_answer_error_or_log_line() {
    let db = migration::testing::TestDb::migrated().await;
    let (api, addr) = crate::spawn_binary(&db, &[]).await;
    let client = reqwest::Client::new();
    let gql = |query: String, variables: Value| {
        let client = client.clone();
        async move {
            let answer = client
                .post(format!("http://{addr}/graphql"))
                .bearer_auth("binary-test-token-0123456789")
                .json(&json!({"query": query, "variables": variables}))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            let text = answer.text().await.unwrap();
            assert!(
                !text.contains("s3cret"),
                "an answer holds the secret: {text}"
            );
            serde_json::from_str::<Value>(&text).unwrap()
        }
    };
    let headers =
        json!([{"name": "Authorization", "value": SECRET}, {"name": "X-Probe", "value": "1"}]);
    let added = gql(
        add_query(),
        json!({"url": "https://secret.example.test/", "check": {"headers": headers}}),
    )
    .await;
    let id = added["data"]["addTarget"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        added["data"]["addTarget"]["check"]["headerNames"],
        json!(["Authorization", "X-Probe"])
    );
    gql(
        format!("query($id: ID!) {{ target(id: $id) {{ {CHECK} latestResult {{ id }} }} }}"),
        json!({"id": id}),
    )
    .await;
    gql(
        format!(
            "{{ targets(first: 10) {{ edges {{ node {{ url {CHECK} stats {{ checks }} }} }} }} }}"
        ),
        json!({}),
    )
    .await;
    // An error caused by another field of the same input, and one by the header itself.
    for check in [
        json!({"headers": headers, "degradedAfterMs": 0}),
        json!({"headers": headers, "body": "x"}),
        json!({"headers": [{"name": "Authorization", "value": format!("{SECRET}\r\nX: y")}]}),
        json!({"headers": [{"name": "Bad Name", "value": SECRET}]}),
        json!({"headers": [{"name": "X-Nope"}], "assertions": [{"source": "STATUS", "comparison": "EQUALS", "value": "200"}]}),
    ] {
        for (query, variables) in [
            (
                add_query(),
                json!({"url": "https://other.example.test/", "check": check}),
            ),
            (update_query(), json!({"id": id, "check": check})),
            (
                apply_query(),
                json!({"t": [{"url": "https://secret.example.test/", "frequency": 5, "check": check}]}),
            ),
        ] {
            let body = gql(query, variables).await;
            assert_eq!(error(&body).0, "BAD_USER_INPUT", "{body}");
        }
    }
    // A value left out keeps the stored one; a name the target does not store is refused.
    let kept = gql(
        update_query(),
        json!({"id": id, "check": {"headers": [{"name": "authorization", "value": null}], "method": "POST", "body": "{}"}}),
    )
    .await;
    assert_eq!(
        kept["data"]["updateTarget"]["check"]["headerNames"],
        json!(["authorization"]),
        "{kept}"
    );
    let stored_headers = db
        .query_strings("SELECT request_headers::text FROM urltargets")
        .await;
    assert_eq!(
        stored_headers,
        [format!(
            r#"[{{"name": "authorization", "value": "{SECRET}"}}]"#
        )]
    );
    let missing = gql(
        update_query(),
        json!({"id": id, "check": {"headers": [{"name": "X-Probe"}]}}),
    )
    .await;
    let (code, message) = error(&missing);
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(
        message.contains("header 0 (\"X-Probe\") has no value"),
        "{message}"
    );
    // The report of a declarative list, added and unchanged.
    let list = json!([
        {"url": "https://secret.example.test/", "frequency": 5,
         "check": {"headers": [{"name": "authorization"}], "method": "POST", "body": "{}"}},
        {"url": "https://fresh.example.test/", "frequency": 5,
         "check": {"headers": [{"name": "X-Api-Key", "value": SECRET}]}},
    ]);
    let report = gql(apply_query(), json!({"t": list})).await;
    assert_eq!(
        report["data"]["applyTargets"]["unchanged"][0]["check"]["headerNames"],
        json!(["authorization"]),
        "{report}"
    );
    assert_eq!(
        report["data"]["applyTargets"]["added"][0]["check"]["headerNames"],
        json!(["X-Api-Key"])
    );
    let log = api.log();
    assert!(log.contains("Serving the API"), "{log}");
    assert!(!log.contains("s3cret"), "the log holds the secret:\n{log}");
    drop(api);
    db.drop().await;
}

/// A result of target 1 in slot `minute` through the ingest worker's write path.
fn event(
    minute: i64,
    outcome: entity::Outcome,
    verdict: entity::Verdict,
    report: entity::event::CheckReport,
) -> entity::ResultEvent {
    let slot = chrono::DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap();
    entity::ResultEvent::new(
        1,
        "https://results.example.test/",
        entity::Frequency::OneMinute,
        slot,
        slot,
        120,
        outcome,
    )
    .with_check(verdict, report)
}

async fn write(app: &App, events: &[entity::ResultEvent]) {
    crate::store_events(app, events).await;
}

const RESULT: &str = "httpStatus up outcome failureClass assertionFailures { index expected found } \
                      dnsMs connectMs tlsMs ttfbMs transferMs \
                      tls { version certNotAfter certIssuer certSubject certExpiresInDays }";

#[tokio::test]
async fn results_show_outcome_failed_assertions_phases_and_certificate() {
    let app = spawn_app().await;
    app.db
        .exec("INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency) VALUES (1, 'https://results.example.test/', 1)")
        .await;
    let not_after = chrono::Utc::now() + chrono::Duration::days(3) + chrono::Duration::hours(1);
    let not_after = chrono::DateTime::from_timestamp(not_after.timestamp(), 0).unwrap();
    let tls = entity::TlsDetails {
        tls_version: "TLSv1.3".into(),
        cert_not_after: not_after,
        cert_issuer: "CN=Test CA, O=Pingpipe".into(),
        cert_subject: "CN=results.example.test".into(),
    };
    let timings = entity::Timings {
        dns_ms: Some(3),
        connect_ms: Some(5),
        tls_ms: Some(20),
        ttfb_ms: Some(40),
        transfer_ms: Some(2),
    };
    let failure = entity::assertion::Failure {
        index: 1,
        expected: "CERT_EXPIRES_IN_DAYS GREATER_THAN 14".into(),
        found: "3 days".into(),
    };
    write(
        &app,
        &[
            // Minute 1: a 200 that failed an assertion.
            event(
                1,
                entity::Outcome::Status(200),
                entity::Verdict::Up,
                entity::event::CheckReport {
                    failures: vec![failure],
                    timings,
                    tls: Some(tls.clone()),
                },
            ),
            // Minute 2: passed, but slow.
            event(
                2,
                entity::Outcome::Status(200),
                entity::Verdict::Degraded,
                entity::event::CheckReport {
                    failures: vec![],
                    timings,
                    tls: Some(tls),
                },
            ),
            // Minute 3: no connection: DNS reached, the rest not.
            event(
                3,
                entity::Outcome::Failure(entity::FailureClass::Connect),
                entity::Verdict::Down,
                entity::event::CheckReport {
                    failures: vec![],
                    timings: entity::Timings {
                        dns_ms: Some(4),
                        ..entity::Timings::default()
                    },
                    tls: None,
                },
            ),
        ],
    )
    .await;
    let body = app
        .gql(
            &format!(
                "{{ target(id: \"1\") {{ results(first: 10) {{ edges {{ node {{ {RESULT} }} }} }} }}
                   results(frequency: 1, first: 10) {{ edges {{ node {{ {RESULT} }} }} }} }}"
            ),
            json!({}),
            None,
        )
        .await;
    let nodes: Vec<&Value> = body["data"]["target"]["results"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|e| &e["node"])
        .collect();
    let tls = json!({"version": "TLSv1.3", "certNotAfter": not_after.to_rfc3339(),
                     "certIssuer": "CN=Test CA, O=Pingpipe", "certSubject": "CN=results.example.test",
                     "certExpiresInDays": 3});
    assert_eq!(
        nodes,
        [
            &json!({"httpStatus": null, "up": false, "outcome": "DOWN", "failureClass": "CONNECT",
                    "assertionFailures": [], "dnsMs": 4, "connectMs": null, "tlsMs": null,
                    "ttfbMs": null, "transferMs": null, "tls": null}),
            &json!({"httpStatus": 200, "up": true, "outcome": "DEGRADED", "failureClass": null,
                    "assertionFailures": [], "dnsMs": 3, "connectMs": 5, "tlsMs": 20,
                    "ttfbMs": 40, "transferMs": 2, "tls": tls}),
            &json!({"httpStatus": 200, "up": false, "outcome": "DOWN", "failureClass": "ASSERTION",
                    "assertionFailures": [{"index": 1, "expected": "CERT_EXPIRES_IN_DAYS GREATER_THAN 14",
                                           "found": "3 days"}],
                    "dnsMs": 3, "connectMs": 5, "tlsMs": 20, "ttfbMs": 40, "transferMs": 2, "tls": tls}),
        ],
        "{body}"
    );
    // The frequency's view shows the same.
    let from_view: Vec<&Value> = body["data"]["results"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    assert_eq!(from_view, nodes);
    app.finish().await;
}

/// A re-probed slot (#13): the result is the second attempt and `firstAttempt` the first, by
/// target and from the frequency's view; a slot probed once has none.
#[tokio::test]
async fn a_reprobed_result_shows_its_first_attempt() {
    let app = spawn_app().await;
    app.db
        .exec("INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency, reprobe) VALUES (1, 'https://results.example.test/', 1, true)")
        .await;
    let plain = entity::event::CheckReport::default;
    let failed = event(
        1,
        entity::Outcome::Failure(entity::FailureClass::Connect),
        entity::Verdict::Down,
        plain(),
    );
    let mut second = event(
        1,
        entity::Outcome::Status(200),
        entity::Verdict::Up,
        plain(),
    )
    .with_first_attempt(entity::event::FirstAttempt::of(&failed));
    second.start_time = failed.start_time + chrono::Duration::seconds(2);
    let once = event(
        2,
        entity::Outcome::Status(200),
        entity::Verdict::Up,
        plain(),
    );
    write(&app, &[second, once]).await;

    let node = "outcome firstAttempt { outcome failureClass httpStatus durationMs startTime }";
    let body = app
        .gql(
            &format!(
                "{{ target(id: \"1\") {{ check {{ reprobe }} results(first: 10) {{ edges {{ node {{ {node} }} }} }} }}
                   results(frequency: 1, first: 10) {{ edges {{ node {{ {node} }} }} }} }}"
            ),
            json!({}),
            None,
        )
        .await;
    assert_eq!(body["data"]["target"]["check"]["reprobe"], true, "{body}");
    let first = json!({"outcome": "DOWN", "failureClass": "CONNECT", "httpStatus": null,
                       "durationMs": 120, "startTime": failed.start_time.to_rfc3339()});
    let expected = json!([
        {"node": {"outcome": "UP", "firstAttempt": null}},
        {"node": {"outcome": "UP", "firstAttempt": first}},
    ]);
    assert_eq!(
        body["data"]["target"]["results"]["edges"], expected,
        "{body}"
    );
    assert_eq!(body["data"]["results"]["edges"], expected, "{body}");
    app.finish().await;
}

#[tokio::test]
async fn stats_count_degraded_and_phase_percentiles() {
    let app = spawn_app().await;
    // Ten results: 1..=6 up, 7..=8 degraded, 9 a 200 that failed an assertion, 10 no
    // connection. DNS 10, 20 … 90 (not 10), connect 1 … 10, TLS never, TTFB 100 (not 10),
    // transfer 2, 4 … 16 (1..=8 only).
    app.db
        .exec(
            "INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency) VALUES (1, 'http://127.0.0.1/s', 1);
             INSERT INTO monitor_results (urltarget_fk, http_status, failure_class, start_time, duration,
                                          scheduled_at, outcome, assertion_failures, dns_ms, connect_ms,
                                          tls_ms, ttfb_ms, transfer_ms)
             SELECT 1, CASE WHEN i <= 9 THEN 200 END,
                    CASE WHEN i = 9 THEN 'assertion' WHEN i = 10 THEN 'connect' END,
                    '2026-12-01'::timestamptz + i * interval '1 minute', i * 10,
                    '2026-12-01'::timestamptz + i * interval '1 minute',
                    CASE WHEN i <= 6 THEN 'up' WHEN i <= 8 THEN 'degraded' ELSE 'down' END,
                    CASE WHEN i = 9 THEN '[{\"index\": 0, \"expected\": \"BODY_TEXT NOT_CONTAINS Error\", \"found\": \"Error\"}]'::jsonb END,
                    CASE WHEN i <= 9 THEN i * 10 END, i, NULL,
                    CASE WHEN i <= 9 THEN 100 END, CASE WHEN i <= 8 THEN i * 2 END
             FROM generate_series(1, 10) i",
        )
        .await;
    let body = app
        .gql(
            "{ target(id: \"1\") { stats(since: \"2026-12-01T00:00:00Z\", until: \"2026-12-01T01:00:00Z\") {
                                     checks up degraded down uptimeRatio phases { phase p50Ms p95Ms } }
                                  late: stats(since: \"2026-12-01T00:09:00Z\") { checks up degraded down } } }",
            json!({}),
            None,
        )
        .await;
    let stats = &body["data"]["target"]["stats"];
    assert_eq!(stats["checks"], 10, "{body}");
    assert_eq!(stats["up"], 8);
    assert_eq!(stats["degraded"], 2);
    assert_eq!(stats["down"], 2);
    assert_eq!(stats["uptimeRatio"], 0.8);
    // percentile_cont: p at (n - 1) × q between the sorted values, interpolated.
    let phases = stats["phases"].as_array().unwrap();
    let expected = [
        ("DNS", Some(50.0), Some(86.0)),
        ("CONNECT", Some(5.5), Some(9.55)),
        ("TLS", None, None),
        ("TTFB", Some(100.0), Some(100.0)),
        ("TRANSFER", Some(9.0), Some(15.3)),
    ];
    assert_eq!(phases.len(), 5, "{body}");
    for (got, (phase, p50, p95)) in phases.iter().zip(expected) {
        assert_eq!(got["phase"], phase, "{body}");
        for (field, want) in [("p50Ms", p50), ("p95Ms", p95)] {
            match want {
                Some(want) => assert!(
                    (got[field].as_f64().unwrap() - want).abs() < 1e-9,
                    "{phase} {field}: {got}"
                ),
                None => assert!(got[field].is_null(), "{phase} {field}: {got}"),
            }
        }
    }
    assert_eq!(
        body["data"]["target"]["late"],
        json!({"checks": 2, "up": 0, "degraded": 0, "down": 2})
    );
    // The assertion failure with status 200 is not up.
    let latest = app
        .gql(
            "{ target(id: \"1\") { results(first: 2) { edges { node { httpStatus up outcome failureClass } } } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        latest["data"]["target"]["results"]["edges"][1]["node"],
        json!({"httpStatus": 200, "up": false, "outcome": "DOWN", "failureClass": "ASSERTION"})
    );
    // A target without results: zero counts, the five phases without figures.
    app.db
        .exec("INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency) VALUES (2, 'http://127.0.0.1/e', 1)")
        .await;
    let empty = app
        .gql(
            "{ target(id: \"2\") { stats { checks degraded phases { phase p50Ms p95Ms } } } }",
            json!({}),
            None,
        )
        .await;
    let phases: Vec<Value> = ["DNS", "CONNECT", "TLS", "TTFB", "TRANSFER"]
        .iter()
        .map(|p| json!({"phase": p, "p50Ms": null, "p95Ms": null}))
        .collect();
    assert_eq!(
        empty["data"]["target"]["stats"],
        json!({"checks": 0, "degraded": 0, "phases": phases})
    );
    app.finish().await;
}

/// A version 1 record — as the prototype or an older monitor wrote it, produced here with kcat —
/// goes through the real ingest worker and reads back through GraphQL with the outcome derived
/// as before and none of version 2's fields.
#[tokio::test]
async fn a_version_1_record_produced_with_kcat_is_readable_through_graphql() {
    use clap::Parser;

    let app = spawn_app().await;
    let id = app.add("http://127.0.0.1:9/v1", 1).await["data"]["addTarget"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let topic = entity::testing::create_topic(1).await;
    let records: Vec<(String, String)> = [("12:00", 200), ("12:01", 503)]
        .into_iter()
        .map(|(slot, status)| {
            let value = format!(
                r#"{{"schema_version":1,"target_id":{id},"url":"http://127.0.0.1:9/v1","frequency":1,"scheduled_at":"2026-11-26T{slot}:00Z","start_time":"2026-11-26T{slot}:01Z","duration_ms":42,"http_status":{status},"failure_class":null}}"#
            );
            (id.clone(), value)
        })
        .collect();
    entity::testing::kcat_produce(&topic, &records);

    let stop = tokio_util::sync::CancellationToken::new();
    let config = worker_ingest::Config::parse_from([
        "pingpipe-ingest",
        "--database-url",
        &app.db.url,
        "--kafka-bootstrap-servers",
        &entity::testing::bootstrap_servers(),
        "--topic",
        &topic,
        "--group",
        &entity::testing::unique("api-v1"),
        "--listen",
        "127.0.0.1:0",
    ]);
    let ingest = worker_ingest::start(config, stop.clone()).await.unwrap();

    let query = "query($id: ID!) { target(id: $id) { results(first: 5) { nodes { httpStatus outcome up failureClass assertionFailures { index } dnsMs connectMs tlsMs ttfbMs transferMs tls { version } } } } }";
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let nodes = loop {
        let body = app.gql(query, json!({"id": id}), None).await;
        let nodes = body["data"]["target"]["results"]["nodes"].clone();
        if nodes.as_array().is_some_and(|n| n.len() == 2) {
            break nodes;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the two version 1 results never became readable: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let none = json!({"failureClass": null, "assertionFailures": [], "dnsMs": null, "connectMs": null, "tlsMs": null, "ttfbMs": null, "transferMs": null, "tls": null});
    let mut down = json!({"httpStatus": 503, "outcome": "DOWN", "up": false});
    let mut up = json!({"httpStatus": 200, "outcome": "UP", "up": true});
    for v in [&mut down, &mut up] {
        v.as_object_mut()
            .unwrap()
            .extend(none.as_object().unwrap().clone());
    }
    assert_eq!(nodes, json!([down, up]));
    ingest.shutdown();
    ingest.wait().await.unwrap();
    app.finish().await;
}

/// Stored header values never go to another origin: moving a target there needs the headers
/// again, with their values; a move within the origin keeps them.
#[tokio::test]
async fn moving_a_target_to_another_origin_needs_its_headers_again() {
    let app = spawn_app().await;
    let secret = json!({"headers": [{"name": "Authorization", "value": "Bearer kept-9f2e"}]});
    let added = add(&app, "https://a.example.test/health", secret).await;
    let id = added["data"]["addTarget"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let update = "mutation($id: ID!, $url: String, $check: CheckInput) { updateTarget(id: $id, url: $url, check: $check) { url check { headerNames } } }";
    let moved = |url: &str, check: Value| {
        app.gql(
            update,
            json!({"id": id, "url": url, "check": check}),
            Some(TOKEN),
        )
    };
    let before = stored(&app).await;
    for (url, check) in [
        ("https://evil.example.test/health", Value::Null),
        ("http://a.example.test/health", Value::Null),
        ("https://a.example.test:8443/health", Value::Null),
        (
            "https://evil.example.test/health",
            json!({"headers": [{"name": "Authorization"}]}),
        ),
    ] {
        let body = moved(url, check).await;
        let (code, message) = error(&body);
        assert_eq!(code, "BAD_USER_INPUT", "{url}: {body}");
        assert!(message.contains("moves to another origin"), "{message}");
        assert_eq!(stored(&app).await, before, "{url}");
    }
    // Trusting other certificates is the same as moving.
    for check in [
        json!({"tlsVerify": false}),
        json!({"caBundle": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
    ] {
        let body = moved("https://a.example.test/health", check.clone()).await;
        let (code, message) = error(&body);
        assert_eq!(code, "BAD_USER_INPUT", "{check}: {body}");
        assert!(message.contains("trusts other certificates"), "{message}");
        assert_eq!(stored(&app).await, before, "{check}");
    }
    // Within the origin the stored value stays.
    let body = moved("https://a.example.test/other", Value::Null).await;
    assert_eq!(
        body["data"]["updateTarget"]["check"]["headerNames"],
        json!(["Authorization"]),
        "{body}"
    );
    assert!(stored(&app).await[0].contains("kept-9f2e"));
    // Elsewhere with the value given again, or with no headers at all.
    let body = moved(
        "https://b.example.test/",
        json!({"headers": [{"name": "Authorization", "value": "Bearer new-1c7a"}]}),
    )
    .await;
    assert_eq!(
        body["data"]["updateTarget"]["url"], "https://b.example.test/",
        "{body}"
    );
    let body = moved("https://c.example.test/", json!({"headers": []})).await;
    assert_eq!(
        body["data"]["updateTarget"]["check"]["headerNames"],
        json!([]),
        "{body}"
    );
    app.finish().await;
}
