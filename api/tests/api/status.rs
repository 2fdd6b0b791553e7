//! Status pages (#16) from outside: managed through GraphQL with a token, served at
//! `/status/<slug>` and `/status/<slug>.json` without one only when public, never showing a URL
//! the page hides; their bars, incidents and maintenance equal what is stored; their cache is
//! dropped when a page or a state changes, on every instance.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use crate::{App, TOKEN, error, serve, spawn_app_with};

const ADD: &str = "mutation($page: StatusPageInput!) { addStatusPage(page: $page) {
    id slug path title public showUrls targetIds tags names { targetId name } } }";
const UPDATE: &str = "mutation($id: ID!, $page: StatusPageInput!) {
    updateStatusPage(id: $id, page: $page) { id slug title public showUrls } }";

/// GET `path` on the API, with the token when `token`; (status, Cache-Control, body).
async fn get(app: &App, base: &str, path: &str, token: bool) -> (u16, String, String) {
    let mut request = app.client.get(format!("{base}{path}"));
    if token {
        request = request.bearer_auth(TOKEN);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, cache, response.text().await.unwrap())
}

async fn view(app: &App, slug: &str, token: bool) -> Value {
    let (status, _, body) = get(app, &app.base, &format!("/status/{slug}.json"), token).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// An API serving the committed dashboard folder (the status page's files).
async fn status_app(extra: &[&str]) -> App {
    let dir = crate::FrontendDir::committed();
    let mut args = vec!["--frontend-dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    spawn_app_with(&args).await
}

#[tokio::test]
async fn pages_need_a_token_to_manage_and_show_only_what_they_may() {
    let app = status_app(&[]).await;
    let mut ids = Vec::new();
    for path in ["secret-a", "secret-b", "secret-c"] {
        let added = app.add(&format!("http://127.0.0.1:9/{path}"), 5).await;
        ids.push(
            added["data"]["addTarget"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // The third target has no name: it is called by its place on the page, never by its id.
    let page = json!({
        "slug": "acme", "title": "Acme services", "description": "Our public services.",
        "targetIds": [ids[2], ids[0], ids[1]],
        "names": [{"targetId": ids[0], "name": "Website"}, {"targetId": ids[2], "name": "API"}],
    });

    // Without a token: nothing is changed or listed.
    let refused = app.gql(ADD, json!({"page": page}), None).await;
    assert_eq!(error(&refused).0, "UNAUTHENTICATED");
    let listed = app.gql("{ statusPages { slug } }", json!({}), None).await;
    assert_eq!(error(&listed).0, "UNAUTHENTICATED");
    let one = app
        .gql("{ statusPage(slug: \"acme\") { slug } }", json!({}), None)
        .await;
    assert_eq!(error(&one).0, "UNAUTHENTICATED");
    let bad = app
        .gql(
            "{ statusPage(slug: \"Acme Inc\") { slug } }",
            json!({}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(error(&bad).0, "BAD_USER_INPUT");

    // Bad pages are refused naming the field.
    for (change, field) in [
        (json!({"slug": "Acme Inc"}), "slug"),
        (json!({"slug": "acme.json"}), "slug"),
        (json!({"title": "  "}), "title"),
        (json!({"tags": ["env:prod"]}), "targetIds"),
        (json!({"targetIds": []}), "targetIds"),
        (json!({"targetIds": [ids[0], ids[0]]}), "targetIds"),
        (json!({"targetIds": ["999999"], "names": []}), "targetIds"),
        (
            json!({"targetIds": [], "tags": ["a:b:c"], "names": []}),
            "tags",
        ),
        (json!({"targetIds": [ids[0]]}), "names"),
    ] {
        let mut bad = page.clone();
        for (k, v) in change.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let answer = app.gql(ADD, json!({"page": bad}), Some(TOKEN)).await;
        let (code, message) = error(&answer);
        assert_eq!(code, "BAD_USER_INPUT", "{answer}");
        assert!(
            message.starts_with(&format!("{field}:")),
            "{field}: {message}"
        );
    }

    let added = app.gql(ADD, json!({"page": page}), Some(TOKEN)).await;
    let stored = &added["data"]["addStatusPage"];
    assert_eq!(stored["path"], "/status/acme", "{added}");
    assert_eq!(stored["public"], false);
    assert_eq!(stored["showUrls"], false);
    assert_eq!(stored["targetIds"], json!([ids[2], ids[0], ids[1]]));
    let page_id = stored["id"].as_str().unwrap().to_owned();
    let again = app.gql(ADD, json!({"page": page}), Some(TOKEN)).await;
    assert!(error(&again).1.contains("exists already"), "{again}");

    // Not public: the same 404 as a page that does not exist, unless the token is sent.
    let (status, cache, missing) = get(&app, &app.base, "/status/nothing-here.json", false).await;
    assert_eq!((status, cache.as_str()), (404, "no-store"));
    let (status, _, hidden) = get(&app, &app.base, "/status/acme.json", false).await;
    assert_eq!((status, hidden.as_str()), (404, missing.as_str()));
    let (status, cache, preview) = get(&app, &app.base, "/status/acme.json", true).await;
    assert_eq!(
        (status, cache.as_str()),
        (200, "private, no-store"),
        "{preview}"
    );

    // The page's targets in its order, by their names; no URL anywhere in the answer.
    let shown: Value = serde_json::from_str(&preview).unwrap();
    let names: Vec<&str> = shown["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["API", "Website", "Service 3"]);
    assert_eq!(
        ids[1], "2",
        "the unnamed target's id differs from its place"
    );
    for hidden in ["127.0.0.1", "secret", "http"] {
        assert!(!preview.contains(hidden), "{hidden} in {preview}");
    }
    assert_eq!(shown["title"], "Acme services");
    assert_eq!(shown["status"], "unknown");
    assert_eq!(shown["days"].as_array().unwrap().len(), 90);
    let generated: chrono::DateTime<Utc> =
        serde_json::from_value(shown["generatedAt"].clone()).unwrap();
    assert_eq!(
        shown["days"][89],
        generated.date_naive().to_string(),
        "the last bar is the day it was computed"
    );

    // Made public: shown without a token at once (no stale 404), cacheable by proxies.
    let mut made_public = page.clone();
    made_public["public"] = json!(true);
    let answer = app
        .gql(
            UPDATE,
            json!({"id": page_id, "page": made_public}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        answer["data"]["updateStatusPage"]["public"], true,
        "{answer}"
    );
    let (status, cache, body) = get(&app, &app.base, "/status/acme.json", false).await;
    assert_eq!(
        (status, cache.as_str()),
        (200, "public, max-age=10"),
        "{body}"
    );
    assert!(!body.contains("127.0.0.1"), "{body}");

    // The page itself, its script and style, all under /status/; nothing else there.
    let (status, _, html) = get(&app, &app.base, "/status/acme", false).await;
    assert_eq!(status, 200);
    assert!(html.contains("/status/page.js") && !html.contains("127.0.0.1"));
    let (status, _, script) = get(&app, &app.base, "/status/page.js", false).await;
    assert_eq!(status, 200);
    assert!(script.contains(".json"));
    assert_eq!(get(&app, &app.base, "/status/page.css", false).await.0, 200);
    assert_eq!(
        get(&app, &app.base, "/status/favicon.svg", false).await.0,
        200
    );
    for path in [
        "/status/Acme",
        "/status/index.html",
        "/status/..%2Fapi.js",
        "/status/acme.json.json",
        "/status/-x.json",
    ] {
        assert_eq!(get(&app, &app.base, path, false).await.0, 404, "{path}");
    }

    // Listed with the token; URLs shown once chosen.
    let listed = app
        .gql(
            "{ statusPages { slug public } statusPage(slug: \"acme\") { title names { targetId name } } }",
            json!({}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        listed["data"]["statusPages"],
        json!([{"slug": "acme", "public": true}])
    );
    assert_eq!(
        listed["data"]["statusPage"]["names"],
        json!([{"targetId": ids[0], "name": "Website"}, {"targetId": ids[2], "name": "API"}])
    );
    let mut with_urls = made_public.clone();
    with_urls["showUrls"] = json!(true);
    app.gql(
        UPDATE,
        json!({"id": page_id, "page": with_urls}),
        Some(TOKEN),
    )
    .await;
    let shown = view(&app, "acme", false).await;
    assert_eq!(shown["targets"][0]["url"], "http://127.0.0.1:9/secret-c");

    // A removed target leaves the page; a removed page answers 404.
    app.gql(
        "mutation($id: ID!) { removeTarget(id: $id) { id } }",
        json!({"id": ids[2]}),
        Some(TOKEN),
    )
    .await;
    let shown = view(&app, "acme", false).await;
    assert_eq!(shown["targets"].as_array().unwrap().len(), 2);
    // The page as read (the removed target still listed) can be saved back; a target that never
    // existed cannot be added.
    let answer = app
        .gql(
            UPDATE,
            json!({"id": page_id, "page": with_urls}),
            Some(TOKEN),
        )
        .await;
    assert!(answer["errors"].is_null(), "{answer}");
    let mut unknown = with_urls.clone();
    unknown["targetIds"] = json!([ids[2], ids[0], ids[1], "999999"]);
    let answer = app
        .gql(UPDATE, json!({"id": page_id, "page": unknown}), Some(TOKEN))
        .await;
    assert_eq!(error(&answer).1, "targetIds: no target 999999");
    let removed = app
        .gql(
            "mutation($id: ID!) { removeStatusPage(id: $id) { slug } }",
            json!({"id": page_id}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(removed["data"]["removeStatusPage"]["slug"], "acme");
    assert_eq!(
        get(&app, &app.base, "/status/acme.json", false).await.0,
        404
    );
    app.finish().await;
}

/// Five days of results every ten minutes for three targets (rolled up as the ingest worker
/// would: hours before this one closed, days closed), a maintenance window, incidents, states.
#[tokio::test]
async fn bars_incidents_and_maintenance_are_what_is_stored() {
    let app = status_app(&[]).await;
    let now = Utc::now();
    let today = entity::rollup::day_of(now);
    let window_from = today - TimeDelta::days(2) + TimeDelta::hours(10);
    app.db
        .exec(&format!(
            "INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency, tags) VALUES
                 (1, 'http://127.0.0.1:9/one', 5, '[\"env:test\"]'),
                 (2, 'http://127.0.0.1:9/two', 5, '[\"env:prod\", \"team:web\"]'),
                 (3, 'http://127.0.0.1:9/three', 5, '[\"env:prod\"]');
             SELECT setval('urltargets_seq', 3);
             INSERT INTO monitor_results (urltarget_fk, http_status, failure_class, start_time, duration, scheduled_at, outcome)
             SELECT t, CASE WHEN (i + t) % 13 = 0 THEN NULL ELSE 200 END,
                    CASE WHEN (i + t) % 13 = 0 THEN 'timeout' END, s, (i * 7919 + t * 31) % 900, s,
                    CASE WHEN (i + t) % 13 = 0 THEN 'down' WHEN i % 7 = 0 THEN 'degraded' ELSE 'up' END
               FROM generate_series(0, 5 * 144) i, (VALUES (1), (2), (3)) v(t),
                    LATERAL (SELECT timestamptz '{from}' + i * interval '10 minutes') x(s)
              WHERE s < now();
             INSERT INTO maintenance_windows (name, starts_at, ends_at, target_ids)
                 VALUES ('database move', '{window_from}', '{window_until}', '[3]'),
                        ('network upgrade', '{ahead_from}', '{ahead_until}', '[1]');
             INSERT INTO maintenance_windows (name, starts_at, ends_at, tag_filters)
                 VALUES ('web deploy', '{ahead_from}', '{ahead_until}', '[\"team:web\"]');
             INSERT INTO target_states (urltarget_fk, state, state_since) VALUES
                 (3, 'up', now() - interval '1 hour'), (2, 'down', now() - interval '5 minutes');
             INSERT INTO incidents (urltarget_fk, cause, opened_at, confirmed_at, resolved_at, opened_by, closed_by) VALUES
                 (2, 'HTTP 503 from http://127.0.0.1:9/two', now() - interval '5 minutes', now() - interval '4 minutes', NULL, 1, NULL),
                 (3, 'timeout', now() - interval '3 days', now() - interval '3 days', now() - interval '3 days' + interval '20 minutes', 1, 2),
                 (3, 'timeout', now() - interval '20 days', now() - interval '20 days', now() - interval '20 days' + interval '1 hour', 1, 2),
                 (1, 'timeout', now() - interval '1 day', now() - interval '1 day', NULL, 1, NULL)",
            from = (today - TimeDelta::days(4)).to_rfc3339(),
            window_until = (window_from + TimeDelta::hours(2)).to_rfc3339(),
            window_from = window_from.to_rfc3339(),
            ahead_from = (now + TimeDelta::days(1)).to_rfc3339(),
            ahead_until = (now + TimeDelta::days(1) + TimeDelta::hours(1)).to_rfc3339(),
        ))
        .await;
    worker_ingest::rollups::rebuild(&app.db.conn, today - TimeDelta::days(10), now)
        .await
        .unwrap();
    worker_ingest::rollups::close_days(&app.db.conn)
        .await
        .unwrap();
    let added = app
        .gql(
            ADD,
            json!({"page": {"slug": "prod", "title": "Production", "public": true,
                            "tags": ["env:prod"], "names": [{"targetId": "2", "name": "Shop"}]}}),
            Some(TOKEN),
        )
        .await;
    assert!(added["errors"].is_null(), "{added}");
    let shown = view(&app, "prod", false).await;

    // The tag's targets by id, named or called by their place; their states; the summary.
    let targets = shown["targets"].as_array().unwrap();
    let names: Vec<&str> = targets
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Shop", "Service 2"]);
    assert_eq!(targets[0]["state"], "down");
    assert_eq!(targets[1]["state"], "up");
    assert_eq!(shown["status"], "partial_outage");

    // Each target's 90 bars equal its raw results per UTC day, the window's left out.
    let days: Vec<String> = shown["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    for (i, target) in [2, 3].iter().enumerate() {
        let expected = app
            .db
            .query_strings(&format!(
                "SELECT concat_ws(' ', d, c, u, g, n) FROM (
                   SELECT (scheduled_at AT TIME ZONE 'UTC')::date AS d, count(*) AS c,
                          count(*) FILTER (WHERE outcome <> 'down') AS u,
                          count(*) FILTER (WHERE outcome = 'degraded') AS g,
                          count(*) FILTER (WHERE outcome = 'down') AS n
                     FROM monitor_results
                    WHERE urltarget_fk = {target} AND scheduled_at <= now()
                      AND NOT (urltarget_fk = 3 AND scheduled_at >= '{window_from}'
                               AND scheduled_at < '{window_until}')
                    GROUP BY 1) x ORDER BY d",
                window_from = window_from.to_rfc3339(),
                window_until = (window_from + TimeDelta::hours(2)).to_rfc3339(),
            ))
            .await;
        let bars = targets[i]["bars"].as_array().unwrap();
        assert_eq!(bars.len(), 90);
        let got: Vec<String> = bars
            .iter()
            .zip(&days)
            .filter(|(b, _)| b[0].as_i64().unwrap() > 0)
            .map(|(b, d)| format!("{d} {} {} {} {}", b[0], b[1], b[2], b[3]))
            .collect();
        assert_eq!(got, expected, "target {target}");
        assert_eq!(got.len(), 5, "five days of results");
        let (up, checks) = bars.iter().fold((0, 0), |(u, c), b| {
            (u + b[1].as_i64().unwrap(), c + b[0].as_i64().unwrap())
        });
        let uptime = targets[i]["uptime"].as_f64().unwrap();
        assert!((uptime - up as f64 / checks as f64).abs() < 1e-12);
    }

    // Incidents of the page's targets: open first, then resolved in the last 14 days; no
    // cause while URLs are hidden (a cause can name the URL).
    let incidents: Vec<(String, bool)> = shown["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert!(i.get("cause").is_none(), "{i}");
            (
                i["target"].as_str().unwrap().to_owned(),
                i["resolvedAt"].is_null(),
            )
        })
        .collect();
    assert_eq!(
        incidents,
        [("Shop".to_owned(), true), ("Service 2".to_owned(), false)]
    );

    // Upcoming maintenance of the page's targets only, naming those it covers.
    assert_eq!(
        shown["maintenance"],
        json!([{"name": "web deploy",
                "start": shown["maintenance"][0]["start"], "end": shown["maintenance"][0]["end"],
                "targets": ["Shop"]}])
    );
    let body = get(&app, &app.base, "/status/prod.json", false).await.2;
    assert!(!body.contains("127.0.0.1"), "{body}");
    app.finish().await;
}

/// Waits until the page's JSON satisfies `done`, with a deadline.
async fn until_view(app: &App, base: &str, slug: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _, body) = get(app, base, &format!("/status/{slug}.json"), false).await;
        if status == 200 {
            let value: Value = serde_json::from_str(&body).unwrap();
            if done(&value) {
                return value;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the status page never changed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until two reads of the page's data in a row give the same answer (the second from the
/// cache), with a deadline; returns it.
async fn cached_on(app: &App, base: &str, slug: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let read = || async {
        let (status, _, body) = get(app, base, &format!("/status/{slug}.json"), false).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    let mut last = read().await;
    loop {
        let next = read().await;
        if next["generatedAt"] == last["generatedAt"] {
            return next;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{base} never kept the page: {next}"
        );
        last = next;
    }
}

/// Waits until GET `path` answers `status`, with a deadline.
async fn until_status(app: &App, base: &str, path: &str, status: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while get(app, base, path, false).await.0 != status {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never answered {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_cache_is_dropped_when_a_page_or_a_state_changes_on_any_instance() {
    let app = status_app(&["--status-cache-ttl", "1h"]).await;
    let dir = crate::FrontendDir::committed();
    let other = serve(
        &app.db.url,
        &app.shutdown,
        &[
            "--frontend-dir",
            dir.to_str().unwrap(),
            "--status-cache-ttl",
            "1h",
        ],
    )
    .await;
    let id = app.add("http://127.0.0.1:9/x", 1).await["data"]["addTarget"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = json!({"slug": "cached", "title": "First", "public": true, "targetIds": [id]});
    let added = app.gql(ADD, json!({"page": page}), Some(TOKEN)).await;
    let page_id = added["data"]["addStatusPage"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Kept: the same answer twice (computed once), on both instances (each caches once its
    // LISTEN connection is up).
    cached_on(&app, &app.base, "cached").await;
    let first = cached_on(&app, &other, "cached").await;
    assert_eq!(first["title"], "First");

    // A state change announced by the ingest worker shows without waiting for the TTL (and
    // once it has, the other instance is listening).
    app.db
        .exec(&format!(
            "INSERT INTO target_states (urltarget_fk, state, state_since) VALUES ({id}, 'down', now())"
        ))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        app.db
            .exec(&format!("NOTIFY {}, '[]'", entity::channels::STATES))
            .await;
        let (_, _, body) = get(&app, &other, "/status/cached.json", false).await;
        if serde_json::from_str::<Value>(&body).unwrap()["targets"][0]["state"] == "down" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A change of the page made on one instance shows on both at once (the other learns of it
    // by the mutation's NOTIFY).
    cached_on(&app, &other, "cached").await;
    let mut renamed = page.clone();
    renamed["title"] = json!("Second");
    app.gql(UPDATE, json!({"id": page_id, "page": renamed}), Some(TOKEN))
        .await;
    assert_eq!(view(&app, "cached", false).await["title"], "Second");
    until_view(&app, &other, "cached", |v| v["title"] == "Second").await;

    // Made private, then moved to another slug: no longer served without a token, on either
    // instance, though both had it kept.
    cached_on(&app, &app.base, "cached").await;
    cached_on(&app, &other, "cached").await;
    let mut private = renamed.clone();
    private["public"] = json!(false);
    app.gql(UPDATE, json!({"id": page_id, "page": private}), Some(TOKEN))
        .await;
    assert_eq!(
        get(&app, &app.base, "/status/cached.json", false).await.0,
        404
    );
    until_status(&app, &other, "/status/cached.json", 404).await;
    let mut moved = renamed.clone();
    moved["slug"] = json!("moved");
    app.gql(UPDATE, json!({"id": page_id, "page": moved}), Some(TOKEN))
        .await;
    until_status(&app, &other, "/status/moved.json", 200).await;
    cached_on(&app, &app.base, "moved").await;
    cached_on(&app, &other, "moved").await;
    let mut moved_again = renamed.clone();
    moved_again["slug"] = json!("moved-again");
    app.gql(
        UPDATE,
        json!({"id": page_id, "page": moved_again}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(
        get(&app, &app.base, "/status/moved.json", false).await.0,
        404
    );
    until_status(&app, &other, "/status/moved.json", 404).await;
    app.finish().await;
}
