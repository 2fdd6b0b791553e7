//! The operations endpoint every binary serves: `/healthz`, `/readyz` and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::telemetry::metrics_handle;

/// Says whether the process is ready to do its work.
pub type ReadyCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// `/healthz`, `/readyz` and `/metrics`, to serve alone or merged into a bigger router.
pub fn ops_router<S: Clone + Send + Sync + 'static>(ready: ReadyCheck) -> Router<S> {
    let metrics = metrics_handle();
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready();
                async move {
                    if ready {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        )
}

/// A bound operations endpoint, to be served by [`OpsServer::serve`] (a supervised task).
pub struct OpsServer {
    listener: tokio::net::TcpListener,
    app: Router,
}

impl OpsServer {
    /// Binds `addr` (port 0 picks a free port); fails at once when the address is taken.
    pub async fn bind(addr: SocketAddr, ready: ReadyCheck) -> std::io::Result<OpsServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        Ok(OpsServer {
            listener,
            app: ops_router(ready),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `cancel`.
    pub async fn serve(self, cancel: CancellationToken) -> anyhow::Result<()> {
        axum::serve(self.listener, self.app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await?;
        Ok(())
    }
}
