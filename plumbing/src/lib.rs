//! What every Pingpipe binary runs besides its work: logs and metrics ([`telemetry`]), the
//! operations endpoint `/healthz` `/readyz` `/metrics` ([`ops`]), the shutdown signal
//! ([`signal`]), supervision of the process's tasks ([`supervise`]), retry with backoff
//! ([`backoff`]) and the database pool ([`database`]). `entity` holds the shared vocabulary,
//! without I/O; this crate the shared process plumbing.

pub mod backoff;
pub mod database;
pub mod ops;
pub mod signal;
pub mod supervise;
pub mod telemetry;

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use backoff::Backoff;
pub use ops::{OpsServer, ReadyCheck, ops_router};
pub use signal::shutdown_signal;
pub use supervise::{Stopped, Supervisor};
pub use telemetry::{init_logging, metrics_handle};

/// Runs a binary: a multi-thread runtime, Ctrl-C or SIGTERM cancels the token given to `body`,
/// and the exit code says whether `body` succeeded. Threads still blocked in a call when `body`
/// returns (a librdkafka call, say) get half a second, then the process exits anyway.
pub fn run<F, Fut>(name: &'static str, body: F) -> ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    let result = runtime.block_on(async {
        let signalled = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("Shutdown requested.");
            signalled.cancel();
        });
        body(shutdown).await
    });
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(()) => {
            tracing::info!("{name} stopped.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "{name} stopped with an error.");
            ExitCode::FAILURE
        }
    }
}
