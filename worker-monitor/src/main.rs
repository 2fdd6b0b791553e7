//! `pingpipe-monitor`: probes every target on schedule and publishes the results through Kafka
//! transactions. See `--help`.

use clap::Parser;
use entity::service;
use tokio_util::sync::CancellationToken;
use worker_monitor::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    service::init_logging(config.log_json);
    let shutdown = CancellationToken::new();
    let running = worker_monitor::start(config, shutdown.clone()).await?;
    tokio::spawn(async move {
        service::shutdown_signal().await;
        tracing::info!("Shutdown requested; finishing in-flight probes.");
        shutdown.cancel();
    });
    if let Err(e) = running.wait().await {
        tracing::error!(error = %e, "Monitor stopped.");
        return Err(e.into());
    }
    Ok(())
}
