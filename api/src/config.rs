//! The API's configuration: one `clap` struct, every option also an environment variable.

use std::net::SocketAddr;

use clap::Parser;
use entity::config::{DatabaseArgs, StateArgs};

/// Pingpipe's GraphQL API: register URLs to watch and read their results.
#[derive(Debug, Clone, Parser)]
#[command(version, about, long_about = None)]
pub struct Config {
    #[command(flatten)]
    pub database: DatabaseArgs,

    // The thresholds shown for targets without their own, and used by `rebuildStates`.
    #[command(flatten)]
    pub states: StateArgs,

    /// Address to listen on: GraphQL at /graphql, health at /healthz and /readyz, /metrics.
    #[arg(long, env = "PINGPIPE_API_ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Comma-separated bearer tokens allowed to run mutations. Never logged. With none,
    /// every mutation is refused.
    #[arg(
        long,
        env = "PINGPIPE_API_TOKENS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub api_tokens: Vec<String>,

    /// Serve GraphiQL at GET /graphql.
    #[arg(long, env = "PINGPIPE_API_GRAPHIQL", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphiql: bool,

    /// Answer introspection queries.
    #[arg(long, env = "PINGPIPE_API_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,

    /// Answers of read-only queries kept for reuse until something changes (0 turns the read
    /// cache off). Changes are announced by NOTIFY from the ingest worker and from every
    /// mutation, on any API instance.
    #[arg(long, env = "PINGPIPE_API_READ_CACHE_ENTRIES", default_value_t = 1024)]
    pub read_cache_entries: usize,

    /// Longest a cached answer is reused even without a change announced (bounds what a write
    /// made outside Pingpipe, by hand in SQL, can leave stale).
    #[arg(long, env = "PINGPIPE_API_READ_CACHE_TTL", default_value = "1s")]
    pub read_cache_ttl: humantime::Duration,

    /// How long a status page's data is reused (and proxies are told they may keep it): a page,
    /// state or setting changed drops it at once, new results show after at most this long.
    /// `0s` computes every request.
    #[arg(long, env = "PINGPIPE_STATUS_CACHE_TTL", default_value = "10s")]
    pub status_cache_ttl: humantime::Duration,

    /// Largest page a connection returns (`first`).
    #[arg(long, env = "PINGPIPE_API_MAX_PAGE", default_value_t = 500)]
    pub max_page: usize,

    /// Most a query may cost: every field counts 1 and what a connection (`targets`,
    /// `results`) selects counts `first` times, so 50 targets with 30 results each cost about
    /// 3,900. Dearer queries are refused before they run (QUERY_TOO_COMPLEX, with the cost).
    #[arg(long, env = "PINGPIPE_API_MAX_COST", default_value_t = 50_000)]
    pub max_cost: u64,

    /// Most fields that read or write the database (`target`, `targets`, `results`,
    /// `latestResult`, `stats`, mutations) one query may hold, each alias counted; the nodes of
    /// a page share one statement per field, so the dashboard's pages need 3 or 4.
    #[arg(long, env = "PINGPIPE_API_MAX_STATEMENTS", default_value_t = 50)]
    pub max_statements: u64,

    /// Open WebSocket connections (/graphql/ws) one instance accepts; further upgrades get 503.
    #[arg(long, env = "PINGPIPE_API_WS_MAX_CONNECTIONS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub ws_max_connections: u32,

    /// Operations one WebSocket connection may run at once (1 to 100,000): subscriptions for
    /// as long as they last, queries while they run.
    #[arg(long, env = "PINGPIPE_API_WS_MAX_SUBSCRIPTIONS", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub ws_max_subscriptions: u32,

    /// Largest WebSocket message accepted; a larger one closes its connection.
    #[arg(long, env = "PINGPIPE_API_WS_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub ws_max_message_bytes: usize,

    /// Longest a query or mutation may run, over HTTP or the WebSocket (then a TIMEOUT error);
    /// an HTTP request still unanswered a second later gets 408 (humantime, e.g. 10s).
    #[arg(long, env = "PINGPIPE_API_REQUEST_TIMEOUT", default_value = "10s")]
    pub request_timeout: humantime::Duration,

    /// Longest one SQL statement of the API may run before PostgreSQL cancels it (the request
    /// then fails with INTERNAL); keeps a costly request from holding the database.
    #[arg(long, env = "PINGPIPE_API_STATEMENT_TIMEOUT", default_value = "5s")]
    pub statement_timeout: humantime::Duration,

    /// Origins allowed to call the API from a browser (CORS), comma-separated, e.g.
    /// https://status.example.com. None: only same-origin pages (the dashboard at /).
    #[arg(long, env = "PINGPIPE_API_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Folder of the dashboard served at /.
    #[arg(
        long,
        env = "PINGPIPE_API_FRONTEND_DIR",
        default_value = "frontend/public"
    )]
    pub frontend_dir: std::path::PathBuf,

    /// The dashboard's address as people reach it: test messages (`testChannel`) link there.
    /// The notification worker reads the same variable for its messages' links.
    #[arg(
        long,
        env = "PINGPIPE_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: String,

    /// Print the GraphQL schema (SDL) and exit.
    #[arg(long)]
    pub print_schema: bool,

    /// Log as JSON lines instead of readable text.
    #[arg(long, env = "PINGPIPE_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}
