//! The monitor's configuration: one `clap` struct, every option also an environment variable.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;
use entity::config::{DatabaseArgs, KafkaArgs};

use crate::guard::Cidr;

/// Pingpipe's monitor: probes every active target on schedule and publishes each result to Kafka
/// inside transactions.
#[derive(Debug, Clone, Parser)]
#[command(version, about, long_about = None)]
pub struct Config {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Name of this deployment. Every monitor of one deployment shares it: in group mode it
    /// names the consumer group (`pingpipe-monitor.<instance>`) and, with the shard, each
    /// shard's transactional.id (`pingpipe-monitor.<instance>.group-shard-<p>-of-<S>`); with
    /// `--shard` the producer's (`pingpipe-monitor.<instance>.shard-<i>-of-<n>`). A second
    /// producer with the same id fences the first.
    #[arg(long, env = "PINGPIPE_MONITOR_INSTANCE", default_value = "default")]
    pub instance: String,

    /// A fixed share of the targets, `i/n`: this process probes the targets whose id modulo n is
    /// i, and nothing takes over when it stops. Unset (the default): group mode, where every
    /// monitor of the instance shares the targets through Kafka's group coordinator.
    #[arg(long, env = "PINGPIPE_MONITOR_SHARD")]
    pub shard: Option<Shard>,

    /// Group mode: the number of shards S, the partition count of the shards topic. A target
    /// belongs to shard `shard_hash(id) mod S`; every monitor of an instance must agree on it.
    #[arg(
        long,
        env = "PINGPIPE_MONITOR_SHARDS",
        default_value_t = 64,
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    pub shards: u32,

    /// Group mode: the topic whose partitions stand for the shards (created with S partitions
    /// when missing; it carries only hand-over markers).
    #[arg(
        long,
        env = "PINGPIPE_MONITOR_SHARDS_TOPIC",
        default_value = entity::topics::MONITOR_SHARDS_TOPIC
    )]
    pub shards_topic: String,

    /// Group mode: how long the group coordinator waits without a heartbeat before it gives this
    /// member's shards to the others (and how long this member, cut off from the coordinator,
    /// keeps probing before it stops by itself). Shorter means faster failover and more
    /// spurious hand-overs on a slow network; the broker refuses less than its
    /// `group.min.session.timeout.ms` (6s by default).
    #[arg(long, env = "PINGPIPE_MONITOR_SESSION_TIMEOUT", default_value = "6s")]
    pub session_timeout: humantime::Duration,

    /// Group mode: how often the member heartbeats; a rebalance reaches the other members within
    /// one interval. Must be well below the session timeout.
    #[arg(
        long,
        env = "PINGPIPE_MONITOR_HEARTBEAT_INTERVAL",
        default_value = "250ms"
    )]
    pub heartbeat_interval: humantime::Duration,

    /// Group mode: this process's name in the group, in logs and on every record it publishes
    /// (header `pingpipe-member`). Default: `<hostname>-<pid>`.
    #[arg(long, env = "PINGPIPE_MONITOR_MEMBER")]
    pub member: Option<String>,

    /// Length of a "minute" (e.g. 60s, 1s, 500ms): scales every schedule for tests and demos.
    #[arg(long, env = "PINGPIPE_MINUTE", default_value = "60s")]
    pub minute: humantime::Duration,

    /// Most probes in flight at once; a slot that finds no free place in the queue is missed.
    #[arg(long, env = "PINGPIPE_MONITOR_CONCURRENCY", default_value_t = 2000)]
    pub concurrency: usize,

    /// Longest a probe may take, DNS to the response's head (or the last body byte read, when an
    /// assertion reads the body). Default: 10s, and never more than 80% of the shortest period
    /// (one "minute").
    #[arg(long, env = "PINGPIPE_PROBE_TIMEOUT")]
    pub probe_timeout: Option<humantime::Duration>,

    /// How long after a DOWN probe a target with `reprobe` is probed once more, within the same
    /// slot. Shortened so that the delay and the probe timeout end before the target's next slot;
    /// no re-probe when even no delay would (counted).
    #[arg(long, env = "PINGPIPE_PROBE_REPROBE_DELAY", default_value = "2s")]
    pub reprobe_delay: humantime::Duration,

    /// Redirects followed before a probe fails with `redirect_limit`.
    #[arg(long, env = "PINGPIPE_PROBE_MAX_REDIRECTS", default_value_t = 5)]
    pub max_redirects: usize,

    /// Most bytes of a response body read, when an assertion reads the body (else none are).
    #[arg(long, env = "PINGPIPE_PROBE_BODY_CAP_BYTES", default_value_t = 1024 * 1024)]
    pub body_cap_bytes: usize,

    /// Extra CIDRs never probed, comma-separated (e.g. 10.0.0.0/8,fd00::/8). Cloud metadata and
    /// link-local addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254) are always denied.
    #[arg(long, env = "PINGPIPE_PROBE_DENY", value_delimiter = ',')]
    pub deny: Vec<Cidr>,

    /// Also deny every private range (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7).
    #[arg(long, env = "PINGPIPE_PROBE_DENY_PRIVATE", default_value_t = false)]
    pub deny_private: bool,

    /// Also deny loopback (127.0.0.0/8, ::1): on in production, where nothing a probe may reach
    /// runs on the monitor's own host; off by default because the tests' sites are on loopback.
    #[arg(long, env = "PINGPIPE_PROBE_DENY_LOOPBACK", default_value_t = false)]
    pub deny_loopback: bool,

    /// Longest a Kafka transaction stays open before it is committed.
    #[arg(
        long,
        env = "PINGPIPE_MONITOR_COMMIT_INTERVAL",
        default_value = "500ms"
    )]
    pub commit_interval: humantime::Duration,

    /// How often the target list is re-read from PostgreSQL.
    #[arg(long, env = "PINGPIPE_MONITOR_TARGETS_REFRESH", default_value = "2s")]
    pub targets_refresh: humantime::Duration,

    /// Longest a shutdown takes: in-flight probes finish and the last results are committed
    /// within it; what Kafka has not taken by then (during a broker outage, say) is dropped and
    /// counted in the log.
    #[arg(long, env = "PINGPIPE_MONITOR_SHUTDOWN_TIMEOUT", default_value = "10s")]
    pub shutdown_timeout: humantime::Duration,

    /// Address for /healthz, /readyz and /metrics (port 0 picks a free port).
    #[arg(long, env = "PINGPIPE_MONITOR_ADDR", default_value = "127.0.0.1:9101")]
    pub listen: SocketAddr,

    /// Log as JSON lines instead of readable text.
    #[arg(long, env = "PINGPIPE_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

impl Config {
    /// The probe timeout in force: as configured, or 10 s capped at 80% of one "minute".
    pub fn probe_timeout(&self) -> Duration {
        self.probe_timeout
            .map(Into::into)
            .unwrap_or_else(|| Duration::from_secs(10).min(self.minute().mul_f64(0.8)))
    }

    pub fn minute(&self) -> Duration {
        self.minute.into()
    }

    /// The stable producer identity of this instance and fixed shard (`--shard`).
    pub fn transactional_id(&self, shard: Shard) -> String {
        format!(
            "pingpipe-monitor.{}.shard-{}-of-{}",
            self.instance, shard.index, shard.count
        )
    }

    /// Group mode: the stable producer identity of shard `p`, whoever owns it.
    pub fn group_transactional_id(&self, p: u32) -> String {
        format!(
            "pingpipe-monitor.{}.group-shard-{p}-of-{}",
            self.instance, self.shards
        )
    }

    /// Group mode: the consumer group of this instance's monitors.
    pub fn group_id(&self) -> String {
        format!("pingpipe-monitor.{}", self.instance)
    }

    /// Group mode: this member's name (`<hostname>-<pid>` unless configured).
    pub fn member_name(&self) -> String {
        self.member.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "monitor".to_owned());
            format!("{host}-{}", std::process::id())
        })
    }
}

/// One share of the targets: those whose id modulo `count` is `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub fn owns(&self, target_id: i32) -> bool {
        i64::from(target_id).rem_euclid(i64::from(self.count)) == i64::from(self.index)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("shard must be i/n with 0 <= i < n, got {s:?}");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_parses_and_splits_targets_exactly_once() {
        let shards: Vec<Shard> = (0..3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        for id in 1..1000 {
            assert_eq!(shards.iter().filter(|s| s.owns(id)).count(), 1, "{id}");
        }
        for bad in ["3/3", "1/0", "x/2", "1", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn probe_timeout_defaults_below_the_shortest_period() {
        let mut config = Config::parse_from(["pingpipe-monitor", "--database-url", "postgres://x"]);
        assert_eq!(config.probe_timeout(), Duration::from_secs(10));
        assert_eq!(Duration::from(config.reprobe_delay), Duration::from_secs(2));
        config.minute = "1s".parse().unwrap();
        assert_eq!(config.probe_timeout(), Duration::from_millis(800));
        config.probe_timeout = Some("250ms".parse().unwrap());
        assert_eq!(config.probe_timeout(), Duration::from_millis(250));
        assert_eq!(
            config.transactional_id("0/1".parse().unwrap()),
            "pingpipe-monitor.default.shard-0-of-1"
        );
        assert_eq!(config.shard, None, "group mode is the default");
        assert_eq!(
            config.group_transactional_id(5),
            "pingpipe-monitor.default.group-shard-5-of-64"
        );
    }
}
