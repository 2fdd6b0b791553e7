//! `pingpipe-monitor`: probes every target on schedule and publishes the results through Kafka
//! transactions. See `--help`.

use std::process::ExitCode;

use clap::Parser;
use worker_monitor::Config;

fn main() -> ExitCode {
    let config = Config::parse();
    plumbing::init_logging(config.log_json);
    plumbing::run("pingpipe-monitor", |shutdown| async move {
        let running = worker_monitor::start(config, shutdown).await?;
        running.wait().await?;
        Ok(())
    })
}
