//! `pingpipe-api`: the GraphQL API. See `--help`.

use api::Config;
use clap::Parser;
use entity::service;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    if config.print_schema {
        print!("{}", api::graphql::sdl());
        return Ok(());
    }
    service::init_logging(config.log_json);
    let shutdown = CancellationToken::new();
    let running = api::start(config, shutdown.clone()).await?;
    tokio::spawn(async move {
        service::shutdown_signal().await;
        tracing::info!("Shutdown requested; finishing open requests.");
        shutdown.cancel();
    });
    running.wait().await?;
    tracing::info!("API stopped.");
    Ok(())
}
