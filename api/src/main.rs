//! `pingpipe-api`: the GraphQL API and the dashboard. Only its configuration exists so far: the
//! server itself is issue #5, and this binary refuses to pretend otherwise.

use clap::Parser;

/// Pingpipe's GraphQL API: register URLs to watch and read their results.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Config {
    #[command(flatten)]
    database: entity::config::DatabaseArgs,

    /// Address to listen on for GraphQL (/graphql), the dashboard (/), health and metrics.
    #[arg(long, env = "PINGPIPE_API_ADDR", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,

    /// Comma-separated bearer tokens allowed to run mutations. Never logged.
    #[arg(
        long,
        env = "PINGPIPE_API_TOKENS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    api_tokens: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    anyhow::bail!(
        "the API server is not built yet (issue #5); it would listen on {}",
        config.listen
    )
}
