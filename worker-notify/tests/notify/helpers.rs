//! Test helpers: a database per test with channels and queued notifications written in SQL, a
//! fake receiver on loopback that records every request and answers as the test says, and the
//! notification worker (in-process, or the real binary for kill tests).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use clap::Parser;
use migration::testing::TestDb;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(60);

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// How a receiver answers: status, headers, body — from the request and how many requests
/// came to its path before it.
pub type Answer =
    Arc<dyn Fn(&Received, usize) -> (u16, Vec<(String, String)>, String) + Send + Sync>;

pub fn ok() -> Answer {
    Arc::new(|_, _| (200, vec![], "ok".to_owned()))
}

/// A fake receiver on 127.0.0.1: records every request, answers with `answer`, after `delay`.
pub struct Receiver {
    pub base: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    pub async fn start(answer: Answer, delay: Duration) -> Receiver {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let log = log.clone();
                let answer = answer.clone();
                async move {
                    let request = Received {
                        at: Instant::now(),
                        method: method.to_string(),
                        path: uri.path().to_owned(),
                        headers: headers
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                            .collect(),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    };
                    let before = {
                        let mut log = log.lock().unwrap();
                        let before = log.iter().filter(|r| r.path == request.path).count();
                        log.push(request.clone());
                        before
                    };
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let (status, headers, body) = answer(&request, before);
                    let mut response = axum::http::Response::builder()
                        .status(StatusCode::from_u16(status).unwrap());
                    for (k, v) in headers {
                        response = response.header(k, v);
                    }
                    response.body(axum::body::Body::from(body)).unwrap()
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Receiver {
            base,
            received,
            _stop: stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn to_path(&self, path: &str) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `done` holds for the requests so far; panics after `within`.
    pub async fn wait_until(
        &self,
        within: Duration,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) {
        let deadline = Instant::now() + within;
        loop {
            let requests = self.requests();
            if done(&requests) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; {} requests: {:#?}",
                requests.len(),
                requests.iter().rev().take(3).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A database with Pingpipe's schema, and SQL shortcuts for what the tests set up.
pub struct World {
    pub db: TestDb,
}

impl World {
    pub async fn new() -> World {
        World {
            db: TestDb::migrated().await,
        }
    }

    pub async fn one(&self, sql: &str) -> String {
        self.db
            .query_strings(sql)
            .await
            .pop()
            .unwrap_or_else(|| panic!("no row: {sql}"))
    }

    /// A channel; returns its id.
    pub async fn channel(
        &self,
        kind: &str,
        settings: serde_json::Value,
        secrets: serde_json::Value,
    ) -> i64 {
        self.one(&format!(
            "INSERT INTO notification_channels (name, kind, settings, secrets) \
             VALUES ('{kind}-' || gen_random_uuid(), '{kind}', '{settings}', '{secrets}') \
             RETURNING channel_pk::text"
        ))
        .await
        .parse()
        .unwrap()
    }

    /// `n` queued notifications for `channel`: targets `first..first+n` went down (or
    /// `event`), each its own change.
    pub async fn queue(&self, channel: i64, first: i32, n: i32, event: &str) {
        let (from, to) = match event {
            "recovered" => ("down", "up"),
            "degraded" => ("up", "degraded"),
            "unknown" => ("up", "unknown"),
            _ => ("up", "down"),
        };
        self.db
            .exec(&format!(
                "INSERT INTO notifications (channel_fk, urltarget_fk, url, event, from_state, \
                     to_state, since, cause, incident_fk) \
                 SELECT {channel}, t, 'https://site.example/' || t, '{event}', '{from}', '{to}', \
                        '2026-11-30 10:00:00Z', 'timeout', 1000 + t \
                 FROM generate_series({first}, {first} + {n} - 1) AS t"
            ))
            .await;
    }

    /// Deliveries by status: `status count` lines.
    pub async fn statuses(&self) -> Vec<String> {
        self.db
            .query_strings(
                "SELECT status || ' ' || count(*) FROM notification_deliveries \
                 GROUP BY status ORDER BY status",
            )
            .await
    }

    /// Waits until every delivery is closed (delivered or failed) and nothing waits to be
    /// grouped.
    pub async fn wait_until_settled(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let open = self
                .one(
                    "SELECT ((SELECT count(*) FROM notification_deliveries WHERE status = 'pending') \
                          + (SELECT count(*) FROM notifications WHERE delivery_fk IS NULL))::text",
                )
                .await;
            if open == "0" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{open} deliveries still open after {within:?}: {:?}",
                self.statuses().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Arguments for a notification worker of this world; `extra` (flag, value pairs) replaces
    /// the test defaults it names and adds the others.
    pub fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut pairs: Vec<(String, String)> = [
            ("--database-url", self.db.url.as_str()),
            ("--listen", "127.0.0.1:0"),
            ("--poll", "50ms"),
            ("--group-window", "0s"),
            ("--timeout", "2s"),
            ("--retry-first", "200ms"),
            ("--retry-max", "1s"),
            ("--lease-margin", "1s"),
            ("--public-url", "http://dash.test:8080"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for pair in extra.chunks(2) {
            let (flag, value) = (pair[0].to_owned(), pair[1].to_owned());
            match pairs.iter_mut().find(|(k, _)| *k == flag) {
                Some(existing) => existing.1 = value,
                None => pairs.push((flag, value)),
            }
        }
        std::iter::once("pingpipe-notify".to_owned())
            .chain(pairs.into_iter().flat_map(|(k, v)| [k, v]))
            .collect()
    }

    /// A notification worker in this process.
    pub async fn start(&self, extra: &[&str]) -> (worker_notify::Running, CancellationToken) {
        let stop = CancellationToken::new();
        let running = worker_notify::start(
            worker_notify::Config::parse_from(self.args(extra)),
            stop.clone(),
        )
        .await
        .unwrap();
        (running, stop)
    }
}
