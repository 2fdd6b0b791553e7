//! The notification worker's configuration: one `clap` struct, every option also an environment
//! variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use entity::config::DatabaseArgs;

/// Pingpipe's notification worker: delivers the state changes the ingest worker queued (the
/// outbox) to webhooks, Slack, Discord, Teams, ntfy, Telegram, e-mail and PagerDuty — grouped
/// in storms, retried with backoff, every attempt logged. Run as many as you like.
#[derive(Debug, Clone, Parser)]
#[command(version, about, long_about = None)]
pub struct Config {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Length of a "minute" (shorter in tests): reminders come every `remind_every_minutes` of
    /// these.
    #[arg(long, env = "PINGPIPE_MINUTE", default_value = "60s")]
    pub minute: humantime::Duration,

    /// The dashboard's address as people reach it: messages link to a target's page there.
    #[arg(
        long,
        env = "PINGPIPE_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: String,

    /// Storm control: a channel gets at most one message per this much time; the changes of
    /// the meantime are grouped into the next ("12 targets: 12 down"). The first change of a
    /// quiet channel goes out at once. 0s sends every change on its own.
    #[arg(long, env = "PINGPIPE_NOTIFY_GROUP_WINDOW", default_value = "30s")]
    pub group_window: humantime::Duration,

    /// Longest one attempt may take (connect, send, answer).
    #[arg(long, env = "PINGPIPE_NOTIFY_TIMEOUT", default_value = "10s")]
    pub timeout: humantime::Duration,

    /// Messages sent at once by this instance.
    #[arg(long, env = "PINGPIPE_NOTIFY_CONCURRENCY", default_value_t = 64)]
    pub concurrency: usize,

    /// Wait before the second attempt; it doubles per attempt (with jitter), up to
    /// PINGPIPE_NOTIFY_RETRY_MAX. A receiver's Retry-After is honoured when longer.
    #[arg(long, env = "PINGPIPE_NOTIFY_RETRY_FIRST", default_value = "5s")]
    pub retry_first: humantime::Duration,

    /// Longest wait between two attempts.
    #[arg(long, env = "PINGPIPE_NOTIFY_RETRY_MAX", default_value = "15m")]
    pub retry_max: humantime::Duration,

    /// How long a message is retried (timeouts, 5xx, 429) before it is marked failed.
    #[arg(long, env = "PINGPIPE_NOTIFY_RETRY_FOR", default_value = "24h")]
    pub retry_for: humantime::Duration,

    /// How often the outbox is looked at for work.
    #[arg(long, env = "PINGPIPE_NOTIFY_POLL", default_value = "500ms")]
    pub poll: humantime::Duration,

    /// Address for /healthz, /readyz and /metrics (port 0 picks a free port).
    #[arg(long, env = "PINGPIPE_NOTIFY_ADDR", default_value = "127.0.0.1:9103")]
    pub listen: SocketAddr,

    /// Log as JSON lines instead of readable text.
    #[arg(long, env = "PINGPIPE_LOG_JSON", default_value_t = false)]
    pub log_json: bool,

    /// Test hook: the margin a claim's lease adds to the attempt's timeout (see `lease`).
    #[arg(long, hide = true, default_value = "15s")]
    pub lease_margin: humantime::Duration,
}

impl Config {
    /// How long a claimed delivery stays with this instance: the attempt's timeout and a
    /// margin to record its outcome. An instance that dies leaves it due again after this.
    pub fn lease(&self) -> Duration {
        Duration::from(self.timeout) + Duration::from(self.lease_margin)
    }
}
