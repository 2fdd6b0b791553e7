//! `pingpipe-monitor`: probes every target on schedule and publishes the results through Kafka
//! transactions. See `--help`.

use clap::Parser;
use tokio_util::sync::CancellationToken;
use worker_monitor::{Config, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init_logging(config.log_json);
    let shutdown = CancellationToken::new();
    let running = worker_monitor::start(config, shutdown.clone()).await?;
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("Shutdown requested; finishing in-flight probes.");
        shutdown.cancel();
    });
    if let Err(e) = running.wait().await {
        tracing::error!(error = %e, "Monitor stopped.");
        return Err(e.into());
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "Cannot listen for Ctrl-C.");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "Cannot listen for SIGTERM.");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
