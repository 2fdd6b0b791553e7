//! Monitor benchmark: `make bench-monitor` (or `cargo bench -p worker-monitor --bench monitor`).
//!
//! Runs the real `pingpipe-monitor` binary (release build) against the real PostgreSQL and Kafka,
//! with N targets at the 1-minute frequency on local fixture servers (loopback only, spread over
//! 127.0.0.1–127.0.0.8 so that closed connections do not exhaust one address's ports). Each
//! scenario measures one full period: sustained probes/s, schedule lag (start − slot) p50/p99/max,
//! missed and duplicated slots, the monitor's CPU and peak RSS, and the latency from a probe's end
//! to its record being readable by a `read_committed` consumer. Scenarios: all targets healthy,
//! then 5% of them hanging until the probe timeout.
//!
//! Baseline in the same run: the original design, one loop per frequency that wakes and probes
//! all its targets at once through a thread pool (here the same prober, `--baseline-pool` workers).
//!
//! Then group mode (#15): `--group-targets` targets at 1/min for one monitor in fixed mode, one
//! in group mode and three in group mode, one period each in steady state; one of the three is
//! then SIGKILLed and the run reports how long until every shard is owned again and the slots
//! missed meanwhile.
//!
//! Options (after `--`): --targets N (50000), --minute D (60s), --probe-timeout D (10s),
//! --baseline-pool N (32), --group-targets N (60000), --only probe|group.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use chrono::Utc;
use entity::ResultEvent;
use entity::testing::{bootstrap_servers, consumer, create_topic, unique};
use migration::testing::TestDb;
use rdkafka::message::{Headers, Message};
use worker_monitor::check::CheckBuilder;
use worker_monitor::guard::DenyList;
use worker_monitor::probe::{ProbeSettings, Prober};

const ADDRESSES: u8 = 8;

struct Args {
    targets: usize,
    minute: Duration,
    probe_timeout: Duration,
    baseline_pool: usize,
    /// Targets of the group-mode runs (#15).
    group_targets: usize,
    /// `all`, `probe` (the single-process runs) or `group`.
    only: String,
}

fn parse_args() -> Args {
    let mut args = Args {
        targets: 50_000,
        minute: Duration::from_secs(60),
        probe_timeout: Duration::from_secs(10),
        baseline_pool: 32,
        group_targets: 60_000,
        only: "all".to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--targets" => args.targets = value().parse().unwrap(),
            "--minute" => args.minute = humantime::parse_duration(&value()).unwrap(),
            "--probe-timeout" => args.probe_timeout = humantime::parse_duration(&value()).unwrap(),
            "--baseline-pool" => args.baseline_pool = value().parse().unwrap(),
            "--group-targets" => args.group_targets = value().parse().unwrap(),
            "--only" => args.only = value(),
            _ => {} // cargo bench passes --bench
        }
    }
    args
}

/// Fixture servers on 127.0.0.1..=8: `/ok` answers at once, `/hang` never does.
async fn fixtures(started: Arc<AtomicUsize>) -> Vec<String> {
    let mut bases = Vec::new();
    for i in 1..=ADDRESSES {
        let started = started.clone();
        let app = Router::new()
            .route(
                "/ok",
                get(move || {
                    started.fetch_add(1, Ordering::Relaxed);
                    async { "ok" }
                }),
            )
            .route("/json20k", get(|| async { json_20k() }))
            .route(
                "/hang",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "late"
                }),
            );
        let listener = tokio::net::TcpListener::bind((format!("127.0.0.{i}"), 0))
            .await
            .unwrap();
        bases.push(format!("http://{}", listener.local_addr().unwrap()));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    }
    bases
}

/// A health document of about 20 KB: the database check among 200 others.
fn json_20k() -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let mut checks: Vec<String> = (0..200)
        .map(|i| {
            format!(r#"{{"name":"service-{i:03}","ok":true,"latency_ms":{i},"note":"nominal"}}"#)
        })
        .collect();
    checks.insert(
        150,
        r#"{"name":"db","ok":true,"latency_ms":3,"note":"primary"}"#.to_owned(),
    );
    let body = format!(r#"{{"status":"UP","checks":[{}]}}"#, checks.join(","));
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
}

/// What the targets of one run are given: the path they probe and their assertions (JSON).
struct Scenario {
    label: &'static str,
    path: &'static str,
    hanging_percent: usize,
    assertions: Option<&'static str>,
}

/// A JSONPath (RFC 9535 filter) and a regular expression on the 20 KB body.
const ASSERTIONS: &str = r#"[{"source":"BODY_JSON","property":"$.checks[?@.name=='db'].ok","comparison":"EQUALS","value":"true"},{"source":"BODY_TEXT","comparison":"MATCHES","value":"\"status\"\\s*:\\s*\"UP\""}]"#;

fn urls(bases: &[String], n: usize, hanging_percent: usize, ok_path: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let path = if i % 100 < hanging_percent {
                "hang"
            } else {
                ok_path
            };
            format!("{}/{path}?t={i}", bases[i % bases.len()])
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// CPU seconds and peak RSS (MiB) of a process, from /proc.
fn proc_usage(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
    let ticks: f64 = fields[11].parse::<f64>().ok()? + fields[12].parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm_kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks / 100.0, hwm_kib / 1024.0))
}

/// A committed record as the benchmark's reader saw it: when, and from which member.
struct Seen {
    event: ResultEvent,
    at: chrono::DateTime<Utc>,
    member: String,
}

/// Reads the committed records of a topic as they become visible, in a thread of its own.
struct Reader {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Seen>>,
}

impl Reader {
    fn start(topic: &str) -> Reader {
        let topic = topic.to_owned();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let c = consumer(&topic, "read_committed");
            let mut seen = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                    let member = m.headers().and_then(|h| {
                        h.iter()
                            .find(|h| h.key == worker_monitor::publisher::MEMBER_HEADER)
                            .and_then(|h| h.value)
                            .map(|v| String::from_utf8_lossy(v).into_owned())
                    });
                    seen.push(Seen {
                        event: ResultEvent::decode(m.payload().unwrap()).unwrap(),
                        at: Utc::now(),
                        member: member.unwrap_or_default(),
                    });
                }
            }
            seen
        });
        Reader { stop, thread }
    }

    /// Stops reading; everything read.
    fn finish(self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

struct Figures {
    label: String,
    probes_per_s: f64,
    lag_ms: Vec<f64>,
    missed: usize,
    duplicated: usize,
    cpu_percent: f64,
    peak_rss_mib: f64,
    commit_latency_ms: Vec<f64>,
    /// Results in the period whose outcome was up.
    up: usize,
}

async fn run_monitor(args: &Args, bases: &[String], scenario: &Scenario) -> Figures {
    let db = TestDb::migrated().await;
    let topic = create_topic(6).await;
    let list = urls(bases, args.targets, scenario.hanging_percent, scenario.path);
    // One statement for all targets.
    let quoted: Vec<String> = list.iter().map(|u| format!("'{u}'")).collect();
    let assertions = scenario.assertions.unwrap_or("[]").replace('\'', "''");
    db.exec(&format!(
        "INSERT INTO urltargets (urltarget, monitor_frequency, assertions) \
         SELECT u, 1, '{assertions}'::jsonb FROM unnest(ARRAY[{}]) u",
        quoted.join(",")
    ))
    .await;

    let reader = Reader::start(&topic);

    let period = args.minute;
    let instance = unique("bench");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pingpipe-monitor"))
        .args([
            "--database-url",
            &db.url,
            "--kafka-bootstrap-servers",
            &bootstrap_servers(),
        ])
        .args([
            "--topic",
            &topic,
            "--instance",
            &instance,
            "--listen",
            "127.0.0.1:0",
            // One process, one producer: the figures of earlier runs (group mode below).
            "--shard",
            "0/1",
        ])
        .args(["--minute", &humantime::format_duration(period).to_string()])
        .args([
            "--probe-timeout",
            &humantime::format_duration(args.probe_timeout).to_string(),
        ])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let started = Utc::now();
    // Measure one full period, after two seconds to load the targets.
    let window_start = started + chrono::Duration::seconds(2);
    let window_end = window_start + chrono::Duration::from_std(period).unwrap();
    let cpu_start = proc_usage(pid).map_or(0.0, |u| u.0);
    let mut cpu_at_window = (cpu_start, Instant::now());
    let mut peak_rss = 0.0f64;
    let finish = window_end
        + chrono::Duration::from_std(args.probe_timeout).unwrap()
        + chrono::Duration::seconds(3);
    while Utc::now() < finish {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some((cpu, rss)) = proc_usage(pid) {
            peak_rss = peak_rss.max(rss);
            if Utc::now() < window_start {
                cpu_at_window = (cpu, Instant::now());
            }
        }
    }
    let (cpu_end, _) = proc_usage(pid).unwrap_or((0.0, 0.0));
    let cpu_percent = 100.0 * (cpu_end - cpu_at_window.0) / cpu_at_window.1.elapsed().as_secs_f64();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(60), child.wait()).await;
    let seen: Vec<(ResultEvent, chrono::DateTime<Utc>)> = reader
        .finish()
        .into_iter()
        .map(|s| (s.event, s.at))
        .collect();
    db.drop().await;

    let in_window: Vec<&(ResultEvent, chrono::DateTime<Utc>)> = seen
        .iter()
        .filter(|(e, _)| e.scheduled_at >= window_start && e.scheduled_at < window_end)
        .collect();
    let mut per_target: HashMap<i32, usize> = HashMap::new();
    for (e, _) in &in_window {
        *per_target.entry(e.target_id).or_default() += 1;
    }
    let missed = args.targets - per_target.len();
    let duplicated = per_target.values().filter(|n| **n > 1).count();
    let mut lag_ms: Vec<f64> = in_window
        .iter()
        .map(|(e, _)| {
            (e.start_time - e.scheduled_at)
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1000.0
        })
        .collect();
    lag_ms.sort_by(f64::total_cmp);
    let mut commit_latency_ms: Vec<f64> = in_window
        .iter()
        .map(|(e, seen_at)| {
            let finished = e.start_time + chrono::Duration::milliseconds(i64::from(e.duration_ms));
            (*seen_at - finished).num_microseconds().unwrap_or(0) as f64 / 1000.0
        })
        .collect();
    commit_latency_ms.sort_by(f64::total_cmp);
    let up = in_window
        .iter()
        .filter(|(e, _)| e.verdict() == entity::Verdict::Up)
        .count();
    Figures {
        label: format!("pingpipe, {}", scenario.label),
        up,
        probes_per_s: in_window.len() as f64 / period.as_secs_f64(),
        lag_ms,
        missed,
        duplicated,
        cpu_percent,
        peak_rss_mib: peak_rss,
        commit_latency_ms,
    }
}

/// The original design: at the top of the minute, every target of the frequency goes to a
/// thread pool at once. Runs one tick, for at most one period.
async fn run_baseline(
    args: &Args,
    bases: &[String],
    hanging_percent: usize,
    started: Arc<AtomicUsize>,
) -> (Figures, usize) {
    let prober = Prober::new(ProbeSettings {
        timeout: args.probe_timeout,
        max_redirects: 5,
        body_cap_bytes: 1 << 20,
        deny: Arc::new(DenyList::new(&[], false, false)),
    });
    let check = Arc::new(CheckBuilder::new().unwrap().plain());
    let list = Arc::new(urls(bases, args.targets, hanging_percent, "ok"));
    let next = Arc::new(AtomicUsize::new(0));
    let tick = Instant::now();
    let deadline = tick + args.minute;
    let mut workers = Vec::new();
    for _ in 0..args.baseline_pool {
        let (prober, list, next, check) =
            (prober.clone(), list.clone(), next.clone(), check.clone());
        workers.push(tokio::spawn(async move {
            let mut lags = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= list.len() || Instant::now() >= deadline {
                    return lags;
                }
                lags.push(tick.elapsed().as_secs_f64() * 1000.0);
                prober.probe(&list[i], &check).await;
            }
        }));
    }
    // The busiest second at the fixture servers.
    let mut peak_burst = 0usize;
    let mut last = started.load(Ordering::Relaxed);
    while workers.iter().any(|w| !w.is_finished()) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = started.load(Ordering::Relaxed);
        peak_burst = peak_burst.max(now - last);
        last = now;
    }
    let mut lag_ms: Vec<f64> = Vec::new();
    for w in workers {
        lag_ms.extend(w.await.unwrap());
    }
    lag_ms.sort_by(f64::total_cmp);
    let probed = lag_ms.len();
    (
        Figures {
            label: format!(
                "baseline (pool {}), {hanging_percent}% hanging",
                args.baseline_pool
            ),
            probes_per_s: probed as f64 / tick.elapsed().as_secs_f64(),
            lag_ms,
            missed: args.targets - probed,
            duplicated: 0,
            cpu_percent: f64::NAN,
            peak_rss_mib: f64::NAN,
            commit_latency_ms: Vec::new(),
            up: probed,
        },
        peak_burst,
    )
}

fn print(f: &Figures, extra: &str) {
    let lag = &f.lag_ms;
    println!(
        "{:<34} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>7} {:>5} {:>7.1} {:>8.1} {:>10.1} {extra}",
        f.label,
        f.probes_per_s,
        percentile(lag, 50.0),
        percentile(lag, 99.0),
        lag.last().copied().unwrap_or(f64::NAN),
        f.missed,
        f.duplicated,
        f.cpu_percent,
        f.peak_rss_mib,
        percentile(&f.commit_latency_ms, 99.0),
    );
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let started = Arc::new(AtomicUsize::new(0));
    let bases = fixtures(started.clone()).await;
    println!(
        "monitor benchmark: {} targets at 1/min, minute = {:?}, probe timeout {:?}, {} cores",
        args.targets,
        args.minute,
        args.probe_timeout,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9} {:>7} {:>5} {:>7} {:>8} {:>10}",
        "run",
        "probes/s",
        "lag p50",
        "lag p99",
        "lag max",
        "missed",
        "dup",
        "cpu %",
        "rss MiB",
        "commit p99"
    );
    if args.only != "group" {
        probe_runs(&args, &bases, started.clone()).await;
    }
    if args.only != "probe" {
        group_runs(&args, &bases).await;
    }
}

async fn probe_runs(args: &Args, bases: &[String], started: Arc<AtomicUsize>) {
    let args = &args;
    for hanging in [0, 5] {
        let scenario = Scenario {
            label: if hanging == 0 {
                "healthy"
            } else {
                "5% hanging"
            },
            path: "ok",
            hanging_percent: hanging,
            assertions: None,
        };
        let ours = run_monitor(args, bases, &scenario).await;
        print(&ours, &format!("up {}", ours.up));
        let (baseline, burst) = run_baseline(args, bases, hanging, started.clone()).await;
        print(&baseline, &format!("peak burst {burst} probes/s"));
    }
    // Checks (#12): the same 20 KB JSON body without assertions (the body is not read) and with
    // a JSONPath and a regular expression (read up to the cap, parsed, matched).
    for (label, assertions) in [
        ("20 KB JSON, no assertions", None),
        ("20 KB JSON, JSONPath + regex", Some(ASSERTIONS)),
    ] {
        let scenario = Scenario {
            label,
            path: "json20k",
            hanging_percent: 0,
            assertions,
        };
        let ours = run_monitor(args, bases, &scenario).await;
        print(&ours, &format!("up {}", ours.up));
    }
    println!(
        "(lags and latencies in ms; cpu % of one core; missed = targets without a result in the measured period)"
    );
}

/// The shards a monitor owns, from its /metrics (None while it does not answer).
async fn shards_owned(addr: std::net::SocketAddr) -> Option<u32> {
    entity::testing::metric(addr, "pingpipe_monitor_shards_owned")
        .await
        .map(|v| v as u32)
}

async fn total_owned(addrs: &[std::net::SocketAddr]) -> u32 {
    let mut total = 0;
    for addr in addrs {
        total += shards_owned(*addr).await.unwrap_or(0);
    }
    total
}

/// Group mode (#15): `monitors` processes of one instance share `--group-targets` targets at
/// 1/min. One full period is measured in steady state; then, with `kill`, the first monitor is
/// SIGKILLed and the run reports how long until the others own every shard again, and how many
/// slots of the targets got no result from the kill until a period after that.
/// With `fixed`, one monitor in fixed mode (`--shard 0/1`, one producer) under the same load:
/// the cost of a producer per shard, measured beside it.
async fn run_group(args: &Args, bases: &[String], monitors: usize, kill: bool, fixed: bool) {
    let db = TestDb::migrated().await;
    let topic = create_topic(6).await;
    let n = args.group_targets;
    let list = urls(bases, n, 0, "ok");
    let quoted: Vec<String> = list.iter().map(|u| format!("'{u}'")).collect();
    db.exec(&format!(
        "INSERT INTO urltargets (urltarget, monitor_frequency) \
         SELECT u, 1 FROM unnest(ARRAY[{}]) u",
        quoted.join(",")
    ))
    .await;
    let ids: Vec<i32> = db
        .query_strings("SELECT urltargets_pk::text FROM urltargets")
        .await
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();

    let reader = Reader::start(&topic);

    let instance = unique("bench-group");
    let shards_topic = unique("pingpipe.bench-shards");
    let period = args.minute;
    let mut children = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..monitors {
        let addr = entity::testing::free_addr();
        let mode: &[&str] = if fixed { &["--shard", "0/1"] } else { &[] };
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pingpipe-monitor"))
            .args(mode)
            .args(["--database-url", &db.url])
            .args(["--kafka-bootstrap-servers", &bootstrap_servers()])
            .args(["--topic", &topic, "--instance", &instance])
            .args(["--shards-topic", &shards_topic])
            .args(["--member", &format!("bench-{i}")])
            .args(["--listen", &addr.to_string()])
            .args(["--minute", &humantime::format_duration(period).to_string()])
            .args([
                "--probe-timeout",
                &humantime::format_duration(args.probe_timeout).to_string(),
            ])
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        children.push(child);
        addrs.push(addr);
    }
    // Every shard owned, and spread evenly (cooperative-sticky: within one of each other).
    let deadline = Instant::now() + Duration::from_secs(120);
    let owned = loop {
        let mut owned = Vec::new();
        for addr in &addrs {
            owned.push(shards_owned(*addr).await.unwrap_or(0));
        }
        let spread = owned.iter().max().unwrap_or(&0) - owned.iter().min().unwrap_or(&0);
        if fixed || (owned.iter().sum::<u32>() == 64 && spread <= 1) {
            break owned;
        }
        assert!(
            Instant::now() < deadline,
            "the monitors never shared every shard: {owned:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let window_start = Utc::now() + chrono::Duration::seconds(2);
    let window_end = window_start + chrono::Duration::from_std(period).unwrap();
    let pids: Vec<u32> = children.iter().map(|c| c.id().unwrap()).collect();
    let cpu_start: f64 = pids
        .iter()
        .filter_map(|p| proc_usage(*p))
        .map(|u| u.0)
        .sum();
    let cpu_clock = Instant::now();
    let mut peak_rss = 0.0f64;
    let steady_end = window_end + chrono::Duration::from_std(args.probe_timeout).unwrap();
    while Utc::now() < steady_end {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let rss: f64 = pids
            .iter()
            .filter_map(|p| proc_usage(*p))
            .map(|u| u.1)
            .sum();
        peak_rss = peak_rss.max(rss);
    }
    let cpu_end: f64 = pids
        .iter()
        .filter_map(|p| proc_usage(*p))
        .map(|u| u.0)
        .sum();
    let cpu_percent = 100.0 * (cpu_end - cpu_start) / cpu_clock.elapsed().as_secs_f64();

    let mut kill_report = None;
    if kill {
        let killed_at = Utc::now();
        std::process::Command::new("kill")
            .args(["-KILL", &pids[0].to_string()])
            .status()
            .unwrap();
        let _ = children[0].wait().await;
        let survivors = &addrs[1..];
        let clock = Instant::now();
        while total_owned(survivors).await != 64 {
            assert!(
                clock.elapsed() < Duration::from_secs(120),
                "the survivors never owned every shard"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let covered = clock.elapsed();
        let covered_at = killed_at + chrono::Duration::from_std(covered).unwrap();
        // Every target's slots from the kill to a period after full coverage: which got no
        // result.
        let until = covered_at + chrono::Duration::from_std(period).unwrap();
        let wait_until = until
            + chrono::Duration::from_std(args.probe_timeout).unwrap()
            + chrono::Duration::seconds(2);
        while Utc::now() < wait_until {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        kill_report = Some((killed_at, covered, until));
    }
    let alive = usize::from(kill);
    for (pid, child) in pids.iter().zip(children.iter_mut()).skip(alive) {
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(60), child.wait()).await;
    }
    let (seen, members): (Vec<ResultEvent>, Vec<String>) = reader
        .finish()
        .into_iter()
        .map(|s| (s.event, s.member))
        .unzip();
    db.drop().await;

    let in_window: Vec<&ResultEvent> = seen
        .iter()
        .filter(|e| e.scheduled_at >= window_start && e.scheduled_at < window_end)
        .collect();
    let mut per_target: HashMap<i32, usize> = HashMap::new();
    for e in &in_window {
        *per_target.entry(e.target_id).or_default() += 1;
    }
    let mut lag_ms: Vec<f64> = in_window
        .iter()
        .map(|e| {
            (e.start_time - e.scheduled_at)
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1000.0
        })
        .collect();
    lag_ms.sort_by(f64::total_cmp);
    let figures = Figures {
        label: if fixed {
            "1 monitor, fixed mode (--shard 0/1)".to_owned()
        } else {
            format!("{monitors} monitor(s), group mode")
        },
        probes_per_s: in_window.len() as f64 / period.as_secs_f64(),
        lag_ms,
        missed: n - per_target.len(),
        duplicated: per_target.values().filter(|n| **n > 1).count(),
        cpu_percent,
        peak_rss_mib: peak_rss,
        commit_latency_ms: Vec::new(),
        up: in_window.len(),
    };
    print(&figures, &format!("shards {owned:?}"));
    if let Some((killed_at, covered, until)) = kill_report {
        let period_ms = i64::try_from(period.as_millis()).unwrap();
        let from_ms = killed_at.timestamp_millis();
        let until_ms = until.timestamp_millis();
        let got: std::collections::HashSet<(i32, i64)> = seen
            .iter()
            .map(|e| (e.target_id, e.scheduled_at.timestamp_millis()))
            .collect();
        let mut expected = 0usize;
        let mut missed = 0usize;
        let mut counts: HashMap<(i32, i64), usize> = HashMap::new();
        for e in &seen {
            *counts
                .entry((e.target_id, e.scheduled_at.timestamp_millis()))
                .or_default() += 1;
        }
        let twice = counts.values().filter(|n| **n > 1).count();
        // The longest a target of the killed member (its last result before the kill was the
        // killed member's) waited, from the kill, for its next committed slot.
        let mut last_before: HashMap<i32, (i64, &str)> = HashMap::new();
        let mut next_after: HashMap<i32, i64> = HashMap::new();
        for (e, member) in seen.iter().zip(&members) {
            let slot = e.scheduled_at.timestamp_millis();
            if slot <= from_ms {
                let last = last_before.entry(e.target_id).or_insert((slot, member));
                if slot >= last.0 {
                    *last = (slot, member);
                }
            } else {
                let next = next_after.entry(e.target_id).or_insert(slot);
                *next = (*next).min(slot);
            }
        }
        let longest_wait_ms = last_before
            .iter()
            .filter(|(_, (_, member))| *member == "bench-0")
            .map(|(id, _)| next_after.get(id).copied().unwrap_or(until_ms) - from_ms)
            .max()
            .unwrap_or(0);
        for id in &ids {
            let mut slot = worker_monitor::scheduler::next_slot_after(*id, period_ms, from_ms - 1);
            while slot < until_ms {
                expected += 1;
                if !got.contains(&(*id, slot)) {
                    missed += 1;
                }
                slot += period_ms;
            }
        }
        println!(
            "  one of {monitors} SIGKILLed: every shard owned again after {:.1} s; every target \
             of the killed one probed again within {:.1} s of the kill; slots from the kill to a period later: \
             {missed} of {expected} missed ({:.2}%), {twice} committed twice",
            covered.as_secs_f64(),
            longest_wait_ms as f64 / 1000.0,
            100.0 * missed as f64 / expected.max(1) as f64
        );
    }
}

async fn group_runs(args: &Args, bases: &[String]) {
    println!(
        "group mode: {} targets at 1/min, 64 shards, session timeout 6 s",
        args.group_targets
    );
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9} {:>7} {:>5} {:>7} {:>8}",
        "run", "probes/s", "lag p50", "lag p99", "lag max", "missed", "dup", "cpu %", "rss MiB"
    );
    run_group(args, bases, 1, false, true).await;
    run_group(args, bases, 1, false, false).await;
    run_group(args, bases, 3, true, false).await;
}
