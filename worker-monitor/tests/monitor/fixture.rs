//! Local HTTP(S) servers for probes to hit, all on loopback: an axum app with the statuses,
//! redirects and delays the tests need, a listener that closes connections without answering,
//! a port nobody listens on, and `openssl s_server` with a self-signed certificate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Requests the app has started and finished answering.
#[derive(Debug, Default)]
pub struct Counters {
    pub started: AtomicUsize,
    pub finished: AtomicUsize,
}

pub struct Fixture {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
}

impl Fixture {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
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
        .with_state(counters.clone());
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Fixture { addr, counters }
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
