//! `pingpipe-ingest`: stores every committed result in PostgreSQL exactly once. See `--help`.

use clap::Parser;
use entity::service;
use tokio_util::sync::CancellationToken;
use worker_ingest::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    service::init_logging(config.log_json);
    let shutdown = CancellationToken::new();
    let running = worker_ingest::start(config, shutdown.clone()).await?;
    tokio::spawn(async move {
        service::shutdown_signal().await;
        tracing::info!("Shutdown requested; finishing the batch in hand.");
        shutdown.cancel();
    });
    running.wait().await?;
    tracing::info!("Ingest worker stopped.");
    Ok(())
}
