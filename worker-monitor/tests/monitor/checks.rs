//! Checks (#12) through the real monitor binary: each assertion source against a fixture
//! response that passes and one that fails, degraded by time, POST with a secret header, TLS
//! trust by CA bundle or none, the certificate's expiry, and phase timings — read back from the
//! real Kafka topic as a consumer sees them.

use std::collections::HashMap;

use chrono::Utc;
use entity::{FailureClass, Outcome, ResultEvent, Verdict};
use serde_json::json;

use crate::fixture::{self, TOKEN, TOKEN_BODY, TestCa};
use crate::helpers::World;
use crate::{WAIT, spawn_monitor_logging};

/// One target and what its results must show.
struct Case {
    name: &'static str,
    url: String,
    /// `SET` clause for the target's check columns.
    set: String,
    outcome: Outcome,
    verdict: Verdict,
}

fn assertion(
    source: &str,
    property: Option<&str>,
    comparison: &str,
    value: Option<&str>,
) -> String {
    let mut a = json!({"source": source, "comparison": comparison});
    if let Some(p) = property {
        a["property"] = p.into();
    }
    if let Some(v) = value {
        a["value"] = v.into();
    }
    format!(
        "assertions = '{}'::jsonb",
        json!([a]).to_string().replace('\'', "''")
    )
}

#[tokio::test]
async fn assertions_degraded_headers_and_tls_are_judged_as_the_target_says() {
    let world = World::new().await;
    let app = fixture::serve("127.0.0.1").await;
    let elsewhere = fixture::serve("127.0.0.3").await;
    let ca = TestCa::new();
    let expiring = fixture::serve_https(&ca, 3).await;
    let lasting = fixture::serve_https(&ca, 90).await;
    let bundle = format!("ca_bundle = '{}'", ca.pem);
    let db_ok = assertion(
        "BODY_JSON",
        Some("$.checks[?@.name=='db'].ok"),
        "EQUALS",
        Some("true"),
    );
    let no_error = assertion("BODY_TEXT", None, "NOT_CONTAINS", Some("Error"));
    let json_type = assertion("HEADER", Some("content-type"), "CONTAINS", Some("json"));
    let status_2xx = assertion("STATUS", None, "IN_RANGE", Some("200-299"));
    // Thresholds far from a loopback answer's time (a loaded CI machine) and below the slow
    // fixture's 600 ms.
    let fast = assertion("RESPONSE_TIME_MS", None, "LESS_THAN", Some("550"));
    let cert_14 = assertion("CERT_EXPIRES_IN_DAYS", None, "GREATER_THAN", Some("14"));
    let token_headers = format!(
        "method = 'POST', request_body = '{TOKEN_BODY}', request_headers = '{}'::jsonb",
        json!([{"name": "Authorization", "value": TOKEN}])
    );
    let wrong_token = format!(
        "method = 'POST', request_body = '{TOKEN_BODY}', request_headers = '{}'::jsonb",
        json!([{"name": "Authorization", "value": "Bearer wrong"}])
    );
    let with_token = format!(
        "request_headers = '{}'::jsonb",
        json!([{"name": "Authorization", "value": TOKEN}])
    );
    let up = |s| (Outcome::Status(s), Verdict::Up);
    let failed = |s| (Outcome::Status(s), Verdict::Down);
    let https = |f: &fixture::Fixture| format!("https://{}/status/200", f.addr);
    let cases: Vec<(&str, String, String, (Outcome, Verdict))> = vec![
        ("json passes", app.url("/health/up"), db_ok.clone(), up(200)),
        ("json fails", app.url("/health/down"), db_ok, failed(200)),
        (
            "text passes",
            app.url("/text/ok"),
            no_error.clone(),
            up(200),
        ),
        ("text fails", app.url("/text/error"), no_error, failed(200)),
        (
            "header passes",
            app.url("/health/up"),
            json_type.clone(),
            up(200),
        ),
        ("header fails", app.url("/text/ok"), json_type, failed(200)),
        (
            "status passes",
            app.url("/status/204"),
            status_2xx.clone(),
            up(204),
        ),
        (
            "status fails",
            app.url("/status/503"),
            status_2xx,
            failed(503),
        ),
        ("time passes", app.url("/status/200"), fast.clone(), up(200)),
        ("time fails", app.url("/sleep/600"), fast, failed(200)),
        (
            "not degraded",
            app.url("/status/200"),
            "degraded_after_ms = 550".into(),
            up(200),
        ),
        (
            "degraded",
            app.url("/sleep/600"),
            "degraded_after_ms = 550".into(),
            (Outcome::Status(200), Verdict::Degraded),
        ),
        (
            "cert lasts",
            https(&lasting),
            format!("{cert_14}, {bundle}"),
            up(200),
        ),
        (
            "cert expiring",
            https(&expiring),
            format!("{cert_14}, {bundle}"),
            failed(200),
        ),
        (
            "unverified",
            https(&expiring),
            "tls_verify = false".into(),
            up(200),
        ),
        (
            "untrusted",
            https(&expiring),
            "tls_verify = true".into(),
            (Outcome::Failure(FailureClass::Tls), Verdict::Down),
        ),
        ("token", app.url("/token"), token_headers, up(200)),
        (
            "wrong token",
            app.url("/token"),
            wrong_token,
            (Outcome::Status(401), Verdict::Down),
        ),
        (
            "head",
            app.url("/status/200"),
            "method = 'HEAD'".into(),
            up(200),
        ),
        (
            "echoed secret",
            app.url("/echo"),
            format!(
                "{with_token}, {}",
                assertion("BODY_TEXT", None, "CONTAINS", Some("nope"))
            ),
            failed(200),
        ),
        (
            "same origin keeps headers",
            app.url("/to?url=/auth"),
            with_token.clone(),
            up(200),
        ),
        (
            "other origin gets none",
            app.url(&format!("/to?url={}", elsewhere.url("/auth"))),
            with_token.clone(),
            (Outcome::Status(401), Verdict::Down),
        ),
        (
            "post then see other",
            app.url("/see-other"),
            "method = 'POST', request_body = 'x'".into(),
            up(200),
        ),
        (
            "post looping by 307",
            app.url("/again"),
            "method = 'POST', request_body = 'x'".into(),
            (Outcome::Failure(FailureClass::RedirectLimit), Verdict::Down),
        ),
        (
            "by name",
            format!("http://localhost:{}/status/200", app.addr.port()),
            "method = 'GET'".into(),
            up(200),
        ),
    ];
    let mut expected: HashMap<i32, Case> = HashMap::new();
    for (i, (name, url, set, (outcome, verdict))) in cases.into_iter().enumerate() {
        // URLs are unique per frequency; the fixtures ignore the query.
        let url = if url.contains('?') {
            format!("{url}&case={i}")
        } else {
            format!("{url}?case={i}")
        };
        let id = world.add_target(&url, 1).await;
        world
            .db
            .exec(&format!(
                "UPDATE urltargets SET {set} WHERE urltargets_pk = {id}"
            ))
            .await;
        expected.insert(
            id,
            Case {
                name,
                url,
                set,
                outcome,
                verdict,
            },
        );
    }

    let monitor = spawn_monitor_logging(
        &world,
        &["--minute", "3s", "--probe-timeout", "2s"],
        "debug",
    );
    let mut log = world.reader("read_committed");
    let ids: Vec<i32> = expected.keys().copied().collect();
    log.wait_for_each(WAIT, &ids, 2).await;
    monitor.signal("-TERM");
    let (status, monitor_log) = monitor.exit().await;
    assert!(status.success(), "{monitor_log}");

    for (id, case) in &expected {
        for e in log.of(*id) {
            let what = format!("{} ({} with {}): {e:?}", case.name, case.url, case.set);
            assert_eq!(e.schema_version, 2, "{what}");
            let assertion_failed = case.verdict == Verdict::Down
                && matches!(case.outcome, Outcome::Status(_))
                && case.set.contains("assertions");
            assert_eq!(e.outcome().unwrap(), case.outcome, "{what}");
            assert_eq!(e.verdict(), case.verdict, "{what}");
            assert_eq!(
                e.failure_class == Some(FailureClass::Assertion),
                assertion_failed,
                "{what}"
            );
            assert_eq!(!e.assertion_failures.is_empty(), assertion_failed, "{what}");
            check_timings(e, &what);
        }
    }
    let first = |name: &str| {
        let (id, _) = expected.iter().find(|(_, c)| c.name == name).unwrap();
        log.of(*id)[0].clone()
    };
    // What failed says what was expected and what was found.
    let json_fails = first("json fails");
    assert_eq!(json_fails.assertion_failures[0].found, "false");
    assert!(
        json_fails.assertion_failures[0]
            .expected
            .contains("EQUALS true")
    );
    let text_fails = first("text fails");
    assert!(
        text_fails.assertion_failures[0]
            .found
            .contains("Internal Error")
    );
    assert!(
        first("header fails").assertion_failures[0]
            .found
            .contains("text/plain")
    );
    assert_eq!(first("status fails").assertion_failures[0].found, "503");
    // The certificate that expires in 3½ days: DOWN, its expiry shown.
    let expiring_cert = first("cert expiring");
    let hours_left = (expiring_cert.cert_not_after.unwrap() - Utc::now()).num_hours();
    assert!((80..=84).contains(&hours_left), "{expiring_cert:?}");
    assert!(
        expiring_cert.assertion_failures[0]
            .expected
            .contains("GREATER_THAN 14")
    );
    assert!(
        expiring_cert.assertion_failures[0].found == "3 days",
        "{expiring_cert:?}"
    );
    assert_eq!(expiring_cert.tls_version.as_deref(), Some("TLSv1.3"));
    assert!(
        expiring_cert
            .cert_subject
            .as_deref()
            .unwrap()
            .contains("fixture.pingpipe.test"),
        "{expiring_cert:?}"
    );
    assert!(
        expiring_cert
            .cert_issuer
            .as_deref()
            .unwrap()
            .contains("Pingpipe Test CA"),
        "{expiring_cert:?}"
    );
    // A server that echoes the request shows "[redacted]" where the header value was.
    let echoed = first("echoed secret");
    assert!(
        echoed.assertion_failures[0].found.contains("[redacted]"),
        "{echoed:?}"
    );
    // Unverified TLS still reports the certificate.
    assert!(first("unverified").cert_not_after.is_some());
    // A name is resolved (and timed); an IP literal is not.
    assert!(first("by name").dns_ms.is_some());
    assert!(first("json passes").dns_ms.is_none());

    // The secret header value is in no record and no log line.
    let raw = entity::testing::read_until(
        &entity::testing::consumer(&world.topic, "read_uncommitted"),
        |records| records.len() >= log.events.len(),
    );
    let secret = TOKEN.split(' ').nth(1).unwrap();
    for record in &raw {
        assert!(
            !String::from_utf8_lossy(record).contains(secret),
            "a Kafka record carries the header value"
        );
    }
    assert!(
        !monitor_log.contains(secret),
        "the monitor logged the header value"
    );
    assert!(
        monitor_log.contains("DEBUG") || monitor_log.contains("debug"),
        "the log was captured at debug level"
    );
    world.db.drop().await;
}

/// dns + connect + tls + ttfb + transfer ≤ duration (+1 ms rounding); TLS timed on HTTPS only.
fn check_timings(e: &ResultEvent, what: &str) {
    let t = e.timings();
    let sum: i32 = t.phases().iter().filter_map(|(_, v)| *v).sum();
    assert!(
        sum <= e.duration_ms + 1,
        "phases {sum} ms > duration: {what}"
    );
    if e.url.starts_with("https://") {
        assert!(t.tls_ms.is_some_and(|ms| ms > 0), "{what}");
        assert!(t.connect_ms.is_some(), "{what}");
    } else {
        assert_eq!(t.tls_ms, None, "{what}");
        assert!(
            e.tls_version.is_none() && e.cert_not_after.is_none(),
            "{what}"
        );
    }
    if matches!(e.outcome(), Ok(Outcome::Status(_))) {
        assert!(t.ttfb_ms.is_some(), "{what}");
    }
}
