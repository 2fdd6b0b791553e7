//! The operations endpoint: `/healthz` (the process answers), `/readyz` (targets loaded and the
//! producer initialised) and `/metrics` (Prometheus text).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

/// What `/readyz` reports, set by the parts as they come up.
#[derive(Debug, Default)]
pub struct Readiness {
    pub targets_loaded: AtomicBool,
    pub producer_ready: AtomicBool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.targets_loaded.load(Ordering::Relaxed) && self.producer_ready.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct AppState {
    readiness: Arc<Readiness>,
    metrics: PrometheusHandle,
}

/// Binds `addr` and serves until `cancel`; returns the bound address and the server task.
pub async fn serve(
    addr: SocketAddr,
    readiness: Arc<Readiness>,
    metrics: PrometheusHandle,
    cancel: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(AppState { readiness, metrics });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await
    });
    Ok((bound, task))
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

async fn render_metrics(State(state): State<AppState>) -> String {
    state.metrics.render()
}
