//! `pingpipe-api`: the GraphQL API. See `--help`.

use std::process::ExitCode;

use api::Config;
use clap::Parser;

fn main() -> ExitCode {
    let config = Config::parse();
    if config.print_schema {
        print!("{}", api::graphql::sdl());
        return ExitCode::SUCCESS;
    }
    plumbing::init_logging(config.log_json);
    plumbing::run("pingpipe-api", |shutdown| async move {
        let running = api::start(config, shutdown).await?;
        running.wait().await
    })
}
