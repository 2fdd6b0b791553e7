//! `pingpipe-notify`: delivers queued state changes to the channels people chose. See `--help`.

use std::process::ExitCode;

use clap::Parser;
use worker_notify::Config;

fn main() -> ExitCode {
    let config = Config::parse();
    plumbing::init_logging(config.log_json);
    plumbing::run("pingpipe-notify", |shutdown| async move {
        let running = worker_notify::start(config, shutdown).await?;
        running.wait().await?;
        Ok(())
    })
}
