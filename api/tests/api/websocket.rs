//! `/graphql/ws` tried from outside as a client would (graphql-transport-ws over a real socket):
//! its limits on connections, subscriptions and message size, and the same rules as HTTP for
//! depth, cost, time and error codes.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a graphql-transport-ws connection; Err(status) when the upgrade is refused.
async fn open(base: &str) -> Result<Stream, u16> {
    open_from(base, None).await
}

/// The same, as a browser on the page `origin` opens it (None: a client that is not a browser,
/// which sends no Origin).
pub(crate) async fn open_from(base: &str, origin: Option<&str>) -> Result<Stream, u16> {
    let mut request = format!("{}/graphql/ws", base.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("{e}"),
    }
}

/// Opens a connection and completes the protocol's handshake.
pub(crate) async fn connect(base: &str) -> Stream {
    let mut ws = open(base).await.expect("upgrade refused");
    send(&mut ws, json!({"type": "connection_init"})).await;
    assert_eq!(next(&mut ws).await["type"], "connection_ack");
    ws
}

pub(crate) async fn send(ws: &mut Stream, message: Value) {
    ws.send(Message::text(message.to_string())).await.unwrap();
}

/// The next protocol message (pings of the transport itself skipped), within 10 s.
pub(crate) async fn next(ws: &mut Stream) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no message within 10 s")
            .expect("connection closed")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// Whether the server closes `ws` within `within` (whatever it sends before).
async fn closed_within(ws: &mut Stream, within: Duration) -> bool {
    let closed = async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    };
    tokio::time::timeout(within, closed).await.is_ok()
}

/// The GraphQL errors of a `next` or `error` message (empty for other messages).
fn errors(message: &Value) -> Vec<Value> {
    match message["type"].as_str() {
        Some("next") => message["payload"]["errors"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        Some("error") => message["payload"].as_array().cloned().unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Sends `query` as operation `id` and returns the first answer for it (`next` or `error`).
async fn reply(ws: &mut Stream, id: &str, query: &str) -> Value {
    send(
        ws,
        json!({"id": id, "type": "subscribe", "payload": {"query": query}}),
    )
    .await;
    loop {
        let message = next(ws).await;
        if message["id"] == id && message["type"] != "complete" {
            return message;
        }
    }
}

/// Sends `query` as operation `id` and returns the first error answered for it.
async fn first_error(ws: &mut Stream, id: &str, query: &str) -> Value {
    let message = reply(ws, id, query).await;
    let errors = errors(&message);
    assert!(!errors.is_empty(), "no error for {id}: {message}");
    errors[0].clone()
}

const SUBSCRIBE: &str = "subscription { results { id } }";

async fn subscribe(ws: &mut Stream, id: &str) {
    send(
        ws,
        json!({"id": id, "type": "subscribe", "payload": {"query": SUBSCRIBE}}),
    )
    .await;
}

/// Writes results of `target` (a new slot each time) until each subscription of `ids` has
/// received one; fails on an error for any of them.
async fn results_reach(app: &crate::App, ws: &mut Stream, target: &str, ids: &[&str]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // A new slot each time, across calls: a slot already stored would not be announced again.
    static MINUTE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let mut waiting: Vec<&str> = ids.to_vec();
    while !waiting.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no result reached {waiting:?}"
        );
        let minute = MINUTE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        crate::write_results(app, &[target], minute).await;
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(300), ws.next()).await
        {
            let Message::Text(text) = message.unwrap() else {
                continue;
            };
            let message: Value = serde_json::from_str(&text).unwrap();
            let id = message["id"].as_str().unwrap_or_default();
            if waiting.contains(&id) {
                assert!(errors(&message).is_empty(), "{message}");
                waiting.retain(|w| *w != id);
            }
        }
    }
}

#[tokio::test]
async fn connections_subscriptions_and_messages_are_limited() {
    let app = crate::spawn_app_with(&[
        "--ws-max-connections",
        "3",
        "--ws-max-subscriptions",
        "2",
        "--ws-max-message-bytes",
        "4096",
    ])
    .await;
    let target = app.add("http://127.0.0.1/ws", 1).await["data"]["addTarget"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Three subscriptions on a connection that may hold two: one of them (whichever the server
    // reaches last) is refused with a clear error, the other two get results.
    let mut a = connect(&app.base).await;
    for id in ["1", "2", "3"] {
        subscribe(&mut a, id).await;
    }
    let (refused, error) = loop {
        let message = next(&mut a).await;
        if let Some(error) = errors(&message).first() {
            break (message["id"].as_str().unwrap().to_owned(), error.clone());
        }
    };
    assert_eq!(error["extensions"]["code"], "LIMIT_EXCEEDED", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("2 subscriptions (or queries)"),
        "{error}"
    );
    let live: Vec<&str> = ["1", "2", "3"]
        .into_iter()
        .filter(|id| *id != refused)
        .collect();
    results_reach(&app, &mut a, &target, &live).await;
    // Ending one frees its slot: a new one gets results, and the one after is refused again.
    send(&mut a, json!({"id": live[0], "type": "complete"})).await;
    subscribe(&mut a, "4").await;
    results_reach(&app, &mut a, &target, &["4", live[1]]).await;
    let error = first_error(&mut a, "5", SUBSCRIBE).await;
    assert_eq!(error["extensions"]["code"], "LIMIT_EXCEEDED", "{error}");

    // Three connections per instance: a fourth upgrade gets 503 until one closes.
    let b = connect(&app.base).await;
    let mut c = connect(&app.base).await;
    assert_eq!(open(&app.base).await.err(), Some(503));
    drop(b);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut d = loop {
        match open(&app.base).await {
            Ok(ws) => break ws,
            Err(503) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("a freed slot was not reused: {status}"),
        }
    };
    send(&mut d, json!({"type": "connection_init"})).await;
    assert_eq!(next(&mut d).await["type"], "connection_ack");

    // A message over 4 KiB closes its connection; the others carry on.
    let big = json!({"id": "9", "type": "subscribe",
                     "payload": {"query": format!("{{ frequencies }} # {}", "x".repeat(5000))}});
    send(&mut c, big).await;
    assert!(
        closed_within(&mut c, Duration::from_secs(10)).await,
        "the connection stayed open after 5 KB"
    );
    let error = first_error(&mut a, "6", "{ frequencies").await;
    assert_eq!(
        error["extensions"]["code"], "GRAPHQL_PARSE_FAILED",
        "{error}"
    );
    app.finish().await;
}

#[tokio::test]
async fn operations_over_the_socket_keep_the_depth_cost_and_code_rules() {
    let app = crate::spawn_app().await;
    let mut ws = connect(&app.base).await;
    let mut deep = String::from("id");
    for _ in 0..6 {
        deep = format!("latestResult {{ target {{ {deep} }} }}");
    }
    let cases = [
        (
            "{ targets(first: 500) { nodes { results(first: 500) { nodes { target { url } } } } } }",
            "QUERY_TOO_COMPLEX",
        ),
        (
            &format!("{{ targets {{ nodes {{ {deep} }} }} }}") as &str,
            "QUERY_TOO_DEEP",
        ),
        ("{ frequencies", "GRAPHQL_PARSE_FAILED"),
        ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ target(id: \"x\") { id } }", "BAD_USER_INPUT"),
        (
            "mutation { addTarget(url: \"http://127.0.0.1/\", frequency: 1) { id } }",
            "UNAUTHENTICATED",
        ),
        (
            "subscription { results(frequency: 3) { id } }",
            "BAD_USER_INPUT",
        ),
    ];
    for (i, (query, code)) in cases.iter().enumerate() {
        let error = first_error(&mut ws, &i.to_string(), query).await;
        assert_eq!(error["extensions"]["code"], *code, "{query}: {error}");
    }
    let error = first_error(&mut ws, "cost", cases[0].0).await;
    assert!(
        error["extensions"]["cost"].as_u64().unwrap() > 500 * 500,
        "{error}"
    );
    // A query within the rules is answered over the socket.
    let answer = reply(&mut ws, "ok", "{ frequencies }").await;
    assert_eq!(
        answer["payload"]["data"]["frequencies"],
        json!([1, 2, 5, 10, 20, 30])
    );
    app.finish().await;
}

/// A query over the socket has the HTTP request's time limit: one held up by a lock answers
/// TIMEOUT once it is reached, over the socket and over HTTP.
#[tokio::test]
async fn a_query_ends_with_timeout_at_the_request_timeout_over_the_socket_and_http() {
    use sqlx::Connection;
    let app =
        crate::spawn_app_with(&["--request-timeout", "1s", "--ws-max-subscriptions", "1"]).await;
    let mut holder = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("LOCK TABLE urltargets IN ACCESS EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let mut ws = connect(&app.base).await;
    let started = tokio::time::Instant::now();
    // The first waits on the lock (seen waiting in pg_stat_activity), holding the connection's
    // only slot: a second is refused, and the first ends at the time limit.
    let query = "{ targets { nodes { id } } }";
    send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {"query": query}}),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        // From another connection: in the holder's transaction pg_stat_activity would be a
        // snapshot taken at its first read.
        let waiting: i64 = app
            .db
            .query_strings(
                "SELECT count(*)::text FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'
                   AND query ILIKE '%urltargets%'",
            )
            .await[0]
            .parse()
            .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the query never waited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let error = first_error(&mut ws, "2", query).await;
    assert_eq!(error["extensions"]["code"], "LIMIT_EXCEEDED", "{error}");
    assert!(error["locations"].is_null(), "{error}");
    let error = loop {
        let message = next(&mut ws).await;
        if message["id"] == "1"
            && let Some(error) = errors(&message).first()
        {
            break error.clone();
        }
    };
    assert_eq!(error["extensions"]["code"], "TIMEOUT", "{error}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    // Over HTTP the same query gets the same GraphQL error (not a bare 408).
    let answer = app
        .gql("{ targets { nodes { id } } }", json!({}), None)
        .await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "TIMEOUT",
        "{answer}"
    );
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    // Once the lock is gone the same query is answered.
    let answer = reply(&mut ws, "3", "{ targets { nodes { id } } }").await;
    assert_eq!(
        answer["payload"]["data"]["targets"]["nodes"],
        json!([]),
        "{answer}"
    );
    app.finish().await;
}

/// A client that never sends `connection_init` loses its connection (and its slot) after 10 s.
#[tokio::test]
async fn a_connection_without_connection_init_is_closed() {
    let app = crate::spawn_app_with(&["--ws-max-connections", "1"]).await;
    let mut idle = open(&app.base).await.expect("upgrade refused");
    assert_eq!(open(&app.base).await.err(), Some(503));
    assert!(
        closed_within(&mut idle, Duration::from_secs(20)).await,
        "still open after 20 s"
    );
    // Its slot is free again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match open(&app.base).await {
            Ok(_) => break,
            Err(503) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("the slot was not freed: {status}"),
        }
    }
    app.finish().await;
}
