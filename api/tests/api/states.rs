//! Target states, incidents and thresholds over GraphQL (#13): what the ingest worker decided
//! (results written through its store), as clients read and change it.

use serde_json::{Value, json};

use crate::websocket::{connect, next, send};
use crate::{App, TOKEN, spawn_app};

/// Writes one result per (target, minute, up) through the ingest worker's store, in one batch,
/// so its states are decided as they are live.
async fn write(app: &App, results: &[(i32, i64, bool)]) {
    let events: Vec<entity::ResultEvent> = results
        .iter()
        .map(|(target, minute, up)| {
            let slot = slot(*minute);
            let outcome = if *up {
                entity::Outcome::Status(200)
            } else {
                entity::Outcome::Status(503)
            };
            entity::ResultEvent::new(
                *target,
                "https://states.example.test/",
                entity::Frequency::OneMinute,
                slot,
                slot,
                20,
                outcome,
            )
        })
        .collect();
    crate::store_events(app, &events).await;
}

fn slot(minute: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap()
}

fn at(minute: i64) -> String {
    // As the API writes times.
    slot(minute).to_rfc3339()
}

async fn add(app: &App, url: &str, thresholds: Value) -> i32 {
    add_with(app, url, thresholds, &[]).await
}

/// Adds a target every minute with `thresholds` (null: none of its own) and `tags`.
async fn add_with(app: &App, url: &str, thresholds: Value, tags: &[&str]) -> i32 {
    let answer = app
        .gql(
            "mutation($url: String!, $t: ThresholdsInput, $tags: [String!]!) { addTarget(url: $url, frequency: 1, thresholds: $t, tags: $tags) { id } }",
            json!({"url": url, "t": thresholds, "tags": tags}),
            Some(TOKEN),
        )
        .await;
    answer["data"]["addTarget"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .parse()
        .unwrap()
}

const TARGET: &str = "state stateSince thresholds { failuresBeforeDown successesBeforeUp ownFailuresBeforeDown ownSuccessesBeforeUp } \
                      incidents { state cause openedAt confirmedAt resolvedAt open durationSeconds openedByResultId closedByResultId target { id } }";

#[tokio::test]
async fn a_target_shows_its_state_and_incidents_as_decided_with_its_own_thresholds() {
    let app = spawn_app().await;
    let default = add(&app, "https://default.example.test/", Value::Null).await;
    let strict = add(
        &app,
        "https://strict.example.test/",
        json!({"failuresBeforeDown": 1}),
    )
    .await;
    let fresh = add(&app, "https://fresh.example.test/", Value::Null).await;
    // Both: up, then three failures, then two passes.
    for (minute, up) in [
        (0, true),
        (1, false),
        (2, false),
        (3, false),
        (4, true),
        (5, true),
    ] {
        write(&app, &[(default, minute, up), (strict, minute, up)]).await;
    }
    // One more failure each: PENDING for the default, DOWN at once for the strict one.
    write(&app, &[(default, 6, false), (strict, 6, false)]).await;

    let answer = app
        .gql(
            &format!(
                "query($a: ID!, $b: ID!, $c: ID!) {{ a: target(id: $a) {{ {TARGET} }} b: target(id: $b) {{ {TARGET} }} c: target(id: $c) {{ {TARGET} }} }}"
            ),
            json!({"a": default.to_string(), "b": strict.to_string(), "c": fresh.to_string()}),
            None,
        )
        .await;
    assert!(answer["errors"].is_null(), "{answer}");
    let a = &answer["data"]["a"];
    assert_eq!(a["state"], "PENDING");
    assert_eq!(a["stateSince"], at(6));
    assert_eq!(
        a["thresholds"],
        json!({"failuresBeforeDown": 3, "successesBeforeUp": 2, "ownFailuresBeforeDown": null, "ownSuccessesBeforeUp": null})
    );
    let incidents = a["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{a}");
    assert_eq!(incidents[0]["state"], "DOWN");
    assert_eq!(incidents[0]["cause"], "status 503");
    assert_eq!(incidents[0]["openedAt"], at(1));
    assert_eq!(incidents[0]["confirmedAt"], at(3));
    assert_eq!(incidents[0]["resolvedAt"], at(4));
    assert_eq!(incidents[0]["open"], false);
    assert_eq!(incidents[0]["durationSeconds"], 180);
    assert_eq!(incidents[0]["target"]["id"], default.to_string());

    let b = &answer["data"]["b"];
    assert_eq!(b["state"], "DOWN");
    assert_eq!(b["stateSince"], at(6));
    assert_eq!(b["thresholds"]["failuresBeforeDown"], 1);
    assert_eq!(b["thresholds"]["ownFailuresBeforeDown"], 1);
    let incidents = b["incidents"].as_array().unwrap();
    // Newest first: the open one (opened and confirmed at minute 6), then minutes 1 to 4.
    assert_eq!(incidents.len(), 2, "{b}");
    assert_eq!(
        (
            &incidents[0]["openedAt"],
            &incidents[0]["confirmedAt"],
            incidents[0]["open"].as_bool()
        ),
        (&json!(at(6)), &json!(at(6)), Some(true))
    );
    assert!(incidents[0]["closedByResultId"].is_null());
    assert_eq!(incidents[1]["confirmedAt"], at(1));

    let c = &answer["data"]["c"];
    assert_eq!(
        (&c["state"], &c["stateSince"]),
        (&json!("UNKNOWN"), &Value::Null)
    );

    // Paused: PAUSED, whatever was decided before.
    let paused = app
        .gql(
            "mutation($id: ID!) { updateTarget(id: $id, paused: true) { state stateSince } }",
            json!({"id": strict.to_string()}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        paused["data"]["updateTarget"],
        json!({"state": "PAUSED", "stateSince": null})
    );

    // All incidents, open first by asking for them, then the history, paged with a cursor.
    let open = app
        .gql(
            "{ incidents(open: true) { edges { node { target { url } openedAt } } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        open["data"]["incidents"]["edges"],
        json!([{"node": {"target": {"url": "https://strict.example.test/"}, "openedAt": at(6)}}])
    );
    let page = |after: Value| {
        app.gql(
            "query($after: String) { incidents(first: 2, after: $after, open: false) { edges { node { target { id } openedAt } } pageInfo { hasNextPage endCursor } } }",
            json!({"after": after}),
            None,
        )
    };
    let first = page(Value::Null).await;
    let connection = &first["data"]["incidents"];
    assert_eq!(connection["edges"].as_array().unwrap().len(), 2, "{first}");
    assert_eq!(connection["pageInfo"]["hasNextPage"], false);
    let of_target = app
        .gql(
            "query($t: ID!) { incidents(targetId: $t, since: \"2027-01-15T08:04:00Z\") { edges { node { openedAt } } } }",
            json!({"t": strict.to_string()}),
            None,
        )
        .await;
    // Overlapping the period from minute 4 on: the open one only (the first ended at minute 4).
    assert_eq!(at(4), "2027-01-15T08:04:00+00:00");
    assert_eq!(
        of_target["data"]["incidents"]["edges"],
        json!([{"node": {"openedAt": at(6)}}])
    );
    let bad = app
        .gql(
            "{ incidents(after: \"rs1.2\") { edges { cursor } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    app.shutdown.cancel();
    app.db.drop().await;
}

#[tokio::test]
async fn thresholds_out_of_range_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let id = add(&app, "https://thresholds.example.test/", Value::Null).await;
    for (query, variables, field) in [
        (
            "mutation { addTarget(url: \"https://a.example.test/\", frequency: 1, thresholds: {failuresBeforeDown: 0}) { id } }",
            json!({}),
            "thresholds.failuresBeforeDown: must be between 1 and 100, not 0",
        ),
        (
            "mutation($id: ID!) { updateTarget(id: $id, thresholds: {successesBeforeUp: 101}) { id } }",
            json!({"id": id.to_string()}),
            "thresholds.successesBeforeUp: must be between 1 and 100, not 101",
        ),
        (
            "mutation { applyTargets(targets: [{url: \"https://b.example.test/\", frequency: 1, thresholds: {successesBeforeUp: -1}}]) { added { id } } }",
            json!({}),
            "targets[0]: thresholds.successesBeforeUp: must be between 1 and 100, not -1",
        ),
    ] {
        let answer = app.gql(query, variables, Some(TOKEN)).await;
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{answer}"
        );
        assert_eq!(answer["errors"][0]["message"], field, "{answer}");
    }
    // Set, then back to the default with null; apply says the same list is unchanged.
    let set = app
        .gql(
            "mutation($id: ID!) { updateTarget(id: $id, thresholds: {failuresBeforeDown: 5, successesBeforeUp: 4}) { thresholds { failuresBeforeDown successesBeforeUp } } }",
            json!({"id": id.to_string()}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        set["data"]["updateTarget"]["thresholds"],
        json!({"failuresBeforeDown": 5, "successesBeforeUp": 4})
    );
    let reset = app
        .gql(
            "mutation($id: ID!) { updateTarget(id: $id, thresholds: {failuresBeforeDown: null}) { thresholds { failuresBeforeDown successesBeforeUp } } }",
            json!({"id": id.to_string()}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        reset["data"]["updateTarget"]["thresholds"],
        json!({"failuresBeforeDown": 3, "successesBeforeUp": 4})
    );
    let list = "mutation { applyTargets(targets: [{url: \"https://thresholds.example.test/\", frequency: 1, thresholds: {successesBeforeUp: 4}}]) { changed { id } unchanged { id } } }";
    let applied = app.gql(list, json!({}), Some(TOKEN)).await;
    assert_eq!(
        applied["data"]["applyTargets"],
        json!({"changed": [], "unchanged": [{"id": id.to_string()}]})
    );
    let strict = "mutation { applyTargets(targets: [{url: \"https://thresholds.example.test/\", frequency: 1}]) { changed { thresholds { ownSuccessesBeforeUp } } } }";
    let applied = app.gql(strict, json!({}), Some(TOKEN)).await;
    assert_eq!(
        applied["data"]["applyTargets"]["changed"],
        json!([{"thresholds": {"ownSuccessesBeforeUp": null}}])
    );
    app.shutdown.cancel();
    app.db.drop().await;
}

#[tokio::test]
async fn rebuild_states_recomputes_incidents_with_new_thresholds_for_token_holders() {
    let app = spawn_app().await;
    let id = add(&app, "https://rebuild.example.test/", Value::Null).await;
    // Two failures in a row, twice: no incident with the default threshold of 3.
    for (minute, up) in [
        (0, true),
        (1, false),
        (2, false),
        (3, true),
        (4, false),
        (5, false),
        (6, true),
        (7, true),
    ] {
        write(&app, &[(id, minute, up)]).await;
    }
    let incidents =
        "query($id: ID!) { target(id: $id) { state incidents { openedAt resolvedAt } } }";
    let before = app
        .gql(incidents, json!({"id": id.to_string()}), None)
        .await;
    assert_eq!(before["data"]["target"]["incidents"], json!([]));
    let rebuild = "mutation($ids: [ID!]) { rebuildStates(targetIds: $ids) { targets results incidents written removed } }";
    let refused = app
        .gql(rebuild, json!({"ids": [id.to_string()]}), None)
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    app.gql(
        "mutation($id: ID!) { updateTarget(id: $id, thresholds: {failuresBeforeDown: 2, successesBeforeUp: 1}) { id } }",
        json!({"id": id.to_string()}),
        Some(TOKEN),
    )
    .await;
    let report = app
        .gql(rebuild, json!({"ids": [id.to_string()]}), Some(TOKEN))
        .await;
    assert_eq!(
        report["data"]["rebuildStates"],
        json!({"targets": 1, "results": 8, "incidents": 2, "written": 2, "removed": 0}),
        "{report}"
    );
    let after = app
        .gql(incidents, json!({"id": id.to_string()}), None)
        .await;
    assert_eq!(
        after["data"]["target"]["incidents"],
        json!([
            {"openedAt": at(4), "resolvedAt": at(6)},
            {"openedAt": at(1), "resolvedAt": at(3)},
        ])
    );
    // The same again: nothing to write.
    let again = app
        .gql(rebuild, json!({"ids": [id.to_string()]}), Some(TOKEN))
        .await;
    assert_eq!(again["data"]["rebuildStates"]["written"], 0);
    let bad = app
        .gql(
            "mutation { rebuildStates(since: \"-5000-01-01T00:00:00Z\") { targets } }",
            json!({}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{bad}"
    );
    app.shutdown.cancel();
    app.db.drop().await;
}

#[tokio::test]
async fn state_changes_reach_a_subscription_as_they_are_decided() {
    let app = spawn_app().await;
    let watched = add(&app, "https://watched.example.test/", Value::Null).await;
    let other = add(&app, "https://other.example.test/", Value::Null).await;
    let mut ws = connect(&app.base).await;
    send(
        &mut ws,
        json!({"id": "s", "type": "subscribe", "payload": {"query": "subscription($t: ID) { stateChanges(targetId: $t) { target { id url } from to since } }", "variables": {"t": watched.to_string()}}}),
    )
    .await;
    // The subscription is live once a change reaches it: until then, every write changes the
    // watched target's state (up, failing, up, …).
    let mut minute = 0;
    let first = loop {
        let up = minute % 2 == 0;
        write(&app, &[(other, minute, up), (watched, minute, up)]).await;
        minute += 1;
        if let Ok(message) =
            tokio::time::timeout(std::time::Duration::from_millis(500), next(&mut ws)).await
        {
            break message;
        }
        assert!(minute < 40, "no state change arrived");
    };
    let change = &first["payload"]["data"]["stateChanges"];
    assert_eq!(change["target"]["id"], watched.to_string(), "{first}");
    assert_eq!(change["since"], at(minute - 1), "{first}");
    // Up again, and whatever that announces read.
    for _ in 0..2 {
        write(&app, &[(other, minute, true), (watched, minute, true)]).await;
        minute += 1;
    }
    while tokio::time::timeout(std::time::Duration::from_millis(500), next(&mut ws))
        .await
        .is_ok()
    {}
    // Three failures: PENDING, then DOWN (the other target's changes are not sent).
    for _ in 0..3 {
        write(&app, &[(other, minute, false), (watched, minute, false)]).await;
        minute += 1;
    }
    let pending = next(&mut ws).await;
    let down = next(&mut ws).await;
    let first_failure = at(minute - 3);
    assert_eq!(
        pending["payload"]["data"]["stateChanges"],
        json!({"target": {"id": watched.to_string(), "url": "https://watched.example.test/"}, "from": "UP", "to": "PENDING", "since": first_failure})
    );
    assert_eq!(
        down["payload"]["data"]["stateChanges"]["to"], "DOWN",
        "{down}"
    );
    assert_eq!(
        down["payload"]["data"]["stateChanges"]["since"],
        first_failure
    );
    // Paused and resumed: PAUSED, then the state decided before.
    for (paused, from, to) in [(true, "DOWN", "PAUSED"), (false, "PAUSED", "DOWN")] {
        app.gql(
            "mutation($id: ID!, $p: Boolean) { updateTarget(id: $id, paused: $p) { id } }",
            json!({"id": watched.to_string(), "p": paused}),
            Some(TOKEN),
        )
        .await;
        let change = next(&mut ws).await;
        let change = &change["payload"]["data"]["stateChanges"];
        assert_eq!(
            (&change["from"], &change["to"]),
            (&json!(from), &json!(to)),
            "{change}"
        );
    }
    app.shutdown.cancel();
    app.db.drop().await;
}

/// Writes one result per (target, slot, up) through the ingest worker's store, in one batch.
async fn write_at(app: &App, results: &[(i32, chrono::DateTime<chrono::Utc>, bool)]) {
    let minutes: Vec<(i32, i64, bool)> = results
        .iter()
        .map(|(t, at, up)| (*t, (at.timestamp() - 1_800_000_000) / 60, *up))
        .collect();
    write(app, &minutes).await;
}

fn utc(s: &str) -> chrono::DateTime<chrono::Utc> {
    s.parse().unwrap()
}

async fn add_tagged(app: &App, url: &str, tags: &[&str]) -> i32 {
    add_with(app, url, Value::Null, tags).await
}

const WINDOW: &str = "id name from until cron timeZone durationMinutes allTargets targetIds tags";

#[tokio::test]
async fn a_daily_window_across_the_march_change_opens_once_a_day_and_hides_failures_inside_it() {
    let app = spawn_app().await;
    let prod = add_tagged(
        &app,
        "https://prod.example.test/",
        &["env:prod", "team:payments"],
    )
    .await;
    let staging = add_tagged(&app, "https://staging.example.test/", &["env:staging"]).await;
    let added = app
        .gql(
            &format!("mutation($w: MaintenanceWindowInput!) {{ addMaintenanceWindow(window: $w) {{ {WINDOW} occurrences(since: \"2027-03-26T00:00:00Z\", until: \"2027-04-01T00:00:00Z\") {{ start end }} }} }}"),
            json!({"w": {"name": "nightly", "cron": "30 2 * * *", "timeZone": "Europe/Berlin", "durationMinutes": 10, "tags": ["env:prod"]}}),
            Some(TOKEN),
        )
        .await;
    let window = &added["data"]["addMaintenanceWindow"];
    assert_eq!(window["cron"], "30 2 * * *", "{added}");
    assert_eq!(window["tags"], json!(["env:prod"]));
    // Once a day, at 02:30 Berlin time: 01:30Z in winter time, 01:30Z on the day of the change
    // (02:30 does not exist; it is 03:30 summer time then), 00:30Z in summer time.
    let starts: Vec<&str> = window["occurrences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["start"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "2027-03-26T01:30:00+00:00",
            "2027-03-27T01:30:00+00:00",
            "2027-03-28T01:30:00+00:00",
            "2027-03-29T00:30:00+00:00",
            "2027-03-30T00:30:00+00:00",
            "2027-03-31T00:30:00+00:00",
        ]
    );
    assert_eq!(window["occurrences"][2]["end"], "2027-03-28T01:40:00+00:00");

    // On the day of the change both fail from 01:30Z to 01:39Z, inside the window: the tagged
    // target opens no incident and its uptime leaves those slots out; the other one is down.
    let mut results = Vec::new();
    for minute in 25..45 {
        let at = utc("2027-03-28T01:00:00Z") + chrono::TimeDelta::minutes(minute);
        let up = !(30..40).contains(&minute);
        results.push((prod, at, up));
        results.push((staging, at, up));
    }
    let state = "query($id: ID!) { target(id: $id) { state stateSince } }";
    for (n, chunk) in results.chunks(2).enumerate() {
        write_at(&app, chunk).await;
        if n == 35 - 25 {
            // Inside the window.
            let inside = app.gql(state, json!({"id": prod.to_string()}), None).await;
            assert_eq!(
                inside["data"]["target"],
                json!({"state": "MAINTENANCE", "stateSince": "2027-03-28T01:30:00+00:00"})
            );
        }
    }
    let read = "query($id: ID!) { target(id: $id) { state incidents { openedAt } stats(since: \"2027-03-28T01:25:00Z\", until: \"2027-03-28T01:45:00Z\") { checks up down uptimeRatio } } }";
    let prod_now = app.gql(read, json!({"id": prod.to_string()}), None).await;
    assert_eq!(
        prod_now["data"]["target"],
        json!({"state": "UP", "incidents": [], "stats": {"checks": 10, "up": 10, "down": 0, "uptimeRatio": 1.0}}),
        "{prod_now}"
    );
    let staging_now = app
        .gql(read, json!({"id": staging.to_string()}), None)
        .await;
    assert_eq!(
        staging_now["data"]["target"]["incidents"],
        json!([{"openedAt": "2027-03-28T01:30:00+00:00"}])
    );
    assert_eq!(staging_now["data"]["target"]["stats"]["checks"], 20);

    // A window added afterwards corrects past figures (the incident stays: it was decided).
    app.gql(
        "mutation($w: MaintenanceWindowInput!) { addMaintenanceWindow(window: $w) { id } }",
        json!({"w": {"name": "staging move", "from": "2027-03-28T01:30:00Z", "until": "2027-03-28T01:40:00Z", "targetIds": [staging.to_string()]}}),
        Some(TOKEN),
    )
    .await;
    let staging_after = app
        .gql(read, json!({"id": staging.to_string()}), None)
        .await;
    assert_eq!(
        staging_after["data"]["target"]["stats"],
        json!({"checks": 10, "up": 10, "down": 0, "uptimeRatio": 1.0}),
        "{staging_after}"
    );
    assert_eq!(
        staging_after["data"]["target"]["incidents"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Filters by tag.
    let tagged = app
        .gql("{ targets(tag: \"env:*\") { edges { node { url } } } prod: targets(tag: \"team:payments\") { edges { node { url } } } }", json!({}), None)
        .await;
    assert_eq!(
        tagged["data"]["targets"]["edges"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        tagged["data"]["prod"]["edges"],
        json!([{"node": {"url": "https://prod.example.test/"}}])
    );
    let incidents = app
        .gql("{ a: incidents(tag: \"env:staging\") { edges { node { target { id } } } } b: incidents(tag: \"env:prod\") { edges { node { id } } } }", json!({}), None)
        .await;
    assert_eq!(incidents["data"]["a"]["edges"].as_array().unwrap().len(), 1);
    assert_eq!(incidents["data"]["b"]["edges"], json!([]));
    app.shutdown.cancel();
    app.db.drop().await;
}

#[tokio::test]
async fn bad_windows_tags_and_tag_filters_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let add = "mutation($w: MaintenanceWindowInput!) { addMaintenanceWindow(window: $w) { id } }";
    for (window, says) in [
        (
            json!({"name": "w", "cron": "30 25 * * *", "timeZone": "UTC", "durationMinutes": 5, "allTargets": true}),
            "cron: ",
        ),
        (
            json!({"name": "w", "cron": "30 2 * * SUN", "timeZone": "Europe/Atlantis", "durationMinutes": 5, "allTargets": true}),
            "timeZone: ",
        ),
        (
            json!({"name": "w", "from": "2027-01-02T00:00:00Z", "until": "2027-01-01T00:00:00Z", "allTargets": true}),
            "until: ",
        ),
        (
            json!({"name": "w", "cron": "@daily", "timeZone": "UTC", "durationMinutes": 5, "allTargets": true}),
            "cron: ",
        ),
        (
            json!({"name": "w", "cron": "0 2 * * *", "timeZone": "UTC", "durationMinutes": 0, "allTargets": true}),
            "durationMinutes: ",
        ),
        (
            json!({"name": "w", "cron": "0 2 * * *", "timeZone": "UTC", "durationMinutes": 5, "tags": ["team:pay*"]}),
            "tags: ",
        ),
        (
            json!({"name": "w", "cron": "0 2 * * *", "timeZone": "UTC", "durationMinutes": 5}),
            "targetIds: ",
        ),
    ] {
        let answer = app.gql(add, json!({"w": window}), Some(TOKEN)).await;
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{answer}"
        );
        let message = answer["errors"][0]["message"].as_str().unwrap();
        assert!(message.starts_with(says), "{says} {message}");
    }
    for (query, says) in [
        ("{ targets(tag: \"a:b:c\") { edges { cursor } } }", "tag: "),
        ("{ incidents(tag: \"*\") { edges { cursor } } }", "tag: "),
    ] {
        let answer = app.gql(query, json!({}), None).await;
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{answer}"
        );
        assert!(
            answer["errors"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with(says),
            "{answer}"
        );
    }
    let bad_tag = app
        .gql(
            "mutation { addTarget(url: \"https://t.example.test/\", frequency: 1, tags: [\"Env:Prod\"]) { id } }",
            json!({}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(bad_tag["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert!(
        bad_tag["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("tags: "),
        "{bad_tag}"
    );

    // Declarative: the same list twice changes nothing; a rename is an add and (pruned) a
    // removal; update and remove by id.
    let apply = "mutation($ws: [MaintenanceWindowInput!]!, $prune: Boolean) { applyMaintenanceWindows(windows: $ws, prune: $prune) { added { name } changed { name } removed { name } unchanged { name } } }";
    let list = json!([
        {"name": "nightly", "cron": "0 3 * * *", "timeZone": "UTC", "durationMinutes": 30, "allTargets": true},
        {"name": "move", "from": "2027-02-01T10:00:00Z", "until": "2027-02-01T12:00:00Z", "tags": ["env:prod"]},
    ]);
    let first = app
        .gql(apply, json!({"ws": list, "prune": true}), Some(TOKEN))
        .await;
    assert_eq!(
        first["data"]["applyMaintenanceWindows"],
        json!({"added": [{"name": "nightly"}, {"name": "move"}], "changed": [], "removed": [], "unchanged": []}),
        "{first}"
    );
    let again = app
        .gql(apply, json!({"ws": list, "prune": true}), Some(TOKEN))
        .await;
    assert_eq!(
        again["data"]["applyMaintenanceWindows"],
        json!({"added": [], "changed": [], "removed": [], "unchanged": [{"name": "nightly"}, {"name": "move"}]})
    );
    let shorter = json!([{"name": "nightly", "cron": "0 3 * * *", "timeZone": "UTC", "durationMinutes": 45, "allTargets": true}]);
    let pruned = app
        .gql(apply, json!({"ws": shorter, "prune": true}), Some(TOKEN))
        .await;
    assert_eq!(
        pruned["data"]["applyMaintenanceWindows"],
        json!({"added": [], "changed": [{"name": "nightly"}], "removed": [{"name": "move"}], "unchanged": []})
    );
    let listed = app
        .gql(
            &format!("{{ maintenanceWindows {{ {WINDOW} }} }}"),
            json!({}),
            None,
        )
        .await;
    let id = listed["data"]["maintenanceWindows"][0]["id"].clone();
    assert_eq!(
        listed["data"]["maintenanceWindows"][0]["durationMinutes"],
        45
    );
    let updated = app
        .gql(
            "mutation($id: ID!, $w: MaintenanceWindowInput!) { updateMaintenanceWindow(id: $id, window: $w) { name timeZone } }",
            json!({"id": id, "w": {"name": "nightly", "cron": "0 3 * * *", "timeZone": "Asia/Tokyo", "durationMinutes": 45, "allTargets": true}}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        updated["data"]["updateMaintenanceWindow"],
        json!({"name": "nightly", "timeZone": "Asia/Tokyo"})
    );
    let unauthorized = app
        .gql(
            "mutation($id: ID!) { removeMaintenanceWindow(id: $id) { id } }",
            json!({"id": id}),
            None,
        )
        .await;
    assert_eq!(
        unauthorized["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    let removed = app
        .gql(
            "mutation($id: ID!) { removeMaintenanceWindow(id: $id) { name } }",
            json!({"id": id}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        removed["data"]["removeMaintenanceWindow"]["name"],
        "nightly"
    );
    let gone = app
        .gql(
            "mutation($id: ID!) { removeMaintenanceWindow(id: $id) { name } }",
            json!({"id": id}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(gone["errors"][0]["extensions"]["code"], "NOT_FOUND");
    app.shutdown.cancel();
    app.db.drop().await;
}
