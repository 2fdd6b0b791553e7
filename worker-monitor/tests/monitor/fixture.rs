//! Local HTTP(S) servers for probes to hit, all on loopback: an axum app with the statuses,
//! redirects and delays the tests need, a listener that closes connections without answering,
//! a port nobody listens on, `openssl s_server` with a self-signed certificate, and the app
//! over HTTPS with certificates from a test CA made with rcgen.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};

/// Requests the app has started and finished answering, and when each request to `/flaky/{name}`
/// and `/down/{name}` came, by name.
#[derive(Debug, Default)]
pub struct Counters {
    pub started: AtomicUsize,
    pub finished: AtomicUsize,
    pub seen: std::sync::Mutex<std::collections::HashMap<String, Vec<DateTime<Utc>>>>,
}

pub struct Fixture {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
}

impl Fixture {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// When the requests to `/flaky/{name}` or `/down/{name}` came, in order.
    pub fn seen(&self, name: &str) -> Vec<DateTime<Utc>> {
        let seen = self.counters.seen.lock().unwrap();
        seen.get(name).cloned().unwrap_or_default()
    }
}

/// Serves the app on `ip`, port 0.
pub async fn serve(ip: &str) -> Fixture {
    let counters = Arc::new(Counters::default());
    let app = Router::new()
        .route("/status/{code}", get(status))
        .route("/redirect/{n}", get(redirect))
        .route("/loop", get(|| async { redirect_to("/loop") }))
        .route("/to", get(to))
        .route("/sleep/{ms}", get(sleep))
        .route("/flaky/{name}", get(flaky))
        .route("/down/{name}", get(down))
        .route("/health/up", get(|| async { health(true) }))
        .route("/health/down", get(|| async { health(false) }))
        .route("/text/ok", get(|| async { "All good" }))
        .route(
            "/text/error",
            get(|| async { "500 Internal Error: the database is gone" }),
        )
        .route("/token", post(token).head(token))
        .route("/auth", get(auth))
        .route("/echo", get(echo))
        .route(
            "/see-other",
            post(|uri: axum::http::Uri| async move {
                (StatusCode::SEE_OTHER, [(header::LOCATION, uri.to_string())])
            })
            .get(|| async { "seen" }),
        )
        .route(
            "/again",
            post(|uri: axum::http::Uri| async move {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, uri.to_string())],
                )
            }),
        )
        .with_state(counters.clone());
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Fixture { addr, counters }
}

/// A health endpoint in the style of Spring Boot's: status 200 either way, the truth in the body.
fn health(db_ok: bool) -> Response {
    let body = format!(
        r#"{{"status":"UP","checks":[{{"name":"db","ok":{db_ok}}},{{"name":"cache","ok":true}}]}}"#
    );
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The bearer token `/token` wants, and the body it wants with it.
pub const TOKEN: &str = "Bearer pingpipe-fixture-s3cret-7c41";
pub const TOKEN_BODY: &str = r#"{"ping":true}"#;

/// `/token`: 200 for a POST with [`TOKEN`] and [`TOKEN_BODY`], 401 otherwise.
async fn token(
    method: axum::http::Method,
    headers: axum::http::HeaderMap,
    body: String,
) -> StatusCode {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v == TOKEN);
    if method == axum::http::Method::POST && authorized && body == TOKEN_BODY {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

/// `/auth`: 200 for a request with [`TOKEN`], 401 otherwise.
async fn auth(headers: axum::http::HeaderMap) -> StatusCode {
    if headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v == TOKEN)
    {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

// `/see-other` answers a POST with a 303 to its own URL (then GET: 200); `/again` answers a
// POST with a 307 to its own URL, a loop.

/// `/echo`: the request's Authorization header, in the body (as httpbin and debug pages do).
async fn echo(headers: axum::http::HeaderMap) -> String {
    let auth = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    format!("you sent Authorization: {auth}")
}

/// A test certificate authority: its certificate (PEM, for a target's CA bundle) and what
/// signs the servers' certificates.
pub struct TestCa {
    pub pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Pingpipe Test CA");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Pingpipe");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A certificate for 127.0.0.1 that expires `days` and a half days from now.
    fn leaf(
        &self,
        days: i64,
    ) -> (
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ) {
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "fixture.pingpipe.test");
        // Half a day past the whole days, so "days left" is `days` whenever the test runs.
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::hours(days * 24 + 12);
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        (vec![cert.der().clone()], key)
    }
}

/// The fixture app over HTTPS on 127.0.0.1, with a certificate from `ca` that expires in
/// `days` days.
pub async fn serve_https(ca: &TestCa, days: i64) -> Fixture {
    let (chain, key) = ca.leaf(days);
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = TlsListener {
        listener,
        acceptor: tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)),
    };
    let counters = Arc::new(Counters::default());
    let app = Router::new()
        .route("/status/{code}", get(status))
        .with_state(counters.clone());
    tokio::spawn(async move { axum::serve(tls, app).await.unwrap() });
    Fixture { addr, counters }
}

/// Accepts TCP connections and completes their TLS handshake (failed handshakes are dropped).
struct TlsListener {
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.listener.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

fn redirect_to(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

async fn status(State(c): State<Arc<Counters>>, Path(code): Path<u16>) -> StatusCode {
    c.started.fetch_add(1, Ordering::SeqCst);
    c.finished.fetch_add(1, Ordering::SeqCst);
    StatusCode::from_u16(code).unwrap()
}

/// `/redirect/n` redirects n times, then answers 200.
async fn redirect(Path(n): Path<u32>) -> Response {
    if n == 0 {
        StatusCode::OK.into_response()
    } else {
        redirect_to(&format!("/redirect/{}", n - 1))
    }
}

/// `/to?url=…` redirects to any URL.
async fn to(Query(q): Query<std::collections::HashMap<String, String>>) -> Response {
    redirect_to(&q["url"])
}

/// `/sleep/ms` answers 200 after that many milliseconds.
async fn sleep(State(c): State<Arc<Counters>>, Path(ms): Path<u64>) -> StatusCode {
    c.started.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    c.finished.fetch_add(1, Ordering::SeqCst);
    StatusCode::OK
}

/// Notes a request to `name`; returns how many there have been, this one included.
fn note(c: &Counters, name: String) -> usize {
    let mut seen = c.seen.lock().unwrap();
    let times = seen.entry(name).or_default();
    times.push(Utc::now());
    times.len()
}

/// `/flaky/{name}`: 503 for its 1st, 3rd, 5th … request, 200 for the others (a re-probe after
/// each failure passes).
async fn flaky(State(c): State<Arc<Counters>>, Path(name): Path<String>) -> StatusCode {
    if note(&c, name) % 2 == 1 {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

/// `/down/{name}`: 503, always.
async fn down(State(c): State<Arc<Counters>>, Path(name): Path<String>) -> StatusCode {
    note(&c, name);
    StatusCode::SERVICE_UNAVAILABLE
}

/// A listener that accepts connections and closes them without a byte of response.
pub async fn closer() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            drop(stream);
        }
    });
    addr
}

/// A loopback port with nobody listening (connections are refused).
pub fn refused() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// `openssl s_server` with a fresh self-signed certificate; killed when dropped.
pub struct SelfSignedTls {
    pub addr: SocketAddr,
    _child: tokio::process::Child,
    _dir: TempDir,
}

pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn self_signed_tls() -> SelfSignedTls {
    let dir = std::env::temp_dir().join(format!("pingpipe-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let addr = refused();
    let child = tokio::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(addr.to_string())
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "openssl s_server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    SelfSignedTls {
        addr,
        _child: child,
        _dir: TempDir(dir),
    }
}
