//! The monitor: probes every active target of its shard on schedule and publishes each result
//! to Kafka inside transactions.
//!
//! ```text
//! targets (PostgreSQL, re-read every 2 s) → scheduler → bounded job queue → probe workers
//!                                                                  → results → transactional publisher → Kafka
//!                                    DOWN, reprobe: timer (delay) → job queue ↲
//! ```
//!
//! Guarantees: every slot of every active target yields exactly one result or is counted as
//! missed; a result reaches Kafka in a committed transaction or not at all; a second instance
//! with the same instance name and shard fences this one, which then stops with an error.

pub mod check;
pub mod config;
pub mod group;
pub mod guard;
pub mod http;
pub mod metric_names;
pub mod probe;
pub mod publisher;
pub mod reprobe;
pub mod scheduler;
pub mod targets;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use entity::event::FirstAttempt;
use entity::kafka::{ClientSettings, check_access_async};
use entity::{ResultEvent, Verdict};
use plumbing::{OpsServer, Supervisor};
use tokio::sync::{Mutex, mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use config::Config;
use group::{GroupSettings, Manager, Ownership, Routes};
use guard::DenyList;
use http::Readiness;
use metric_names as m;
use probe::{ProbeSettings, Prober};
use publisher::{Pending, PublishError, Publisher, PublisherSettings};
use reprobe::Reprobes;
use scheduler::{Job, TargetSet};
use targets::Selection;

/// The producer's `transaction.timeout.ms`: a crashed instance's open transaction blocks
/// read_committed readers at most this long.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the monitor could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("cannot serve health and metrics on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Database(#[from] sea_orm::DbErr),
    #[error(transparent)]
    KafkaConfig(#[from] entity::config::KafkaConfigError),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot load the system's TLS trust store: {0}")]
    Tls(#[from] rustls::Error),
    #[error(transparent)]
    Stopped(#[from] plumbing::Stopped),
}

/// What this monitor probes: a fixed share, or whatever the group gives it (and which shards
/// that is now).
enum Mode {
    Fixed(config::Shard),
    Group(GroupSettings, Arc<Ownership>),
}

/// A started monitor.
pub struct Running {
    /// Where /healthz, /readyz and /metrics are served.
    pub http_addr: SocketAddr,
    /// The producer's transactional.id (fixed mode), or the consumer group (group mode).
    pub transactional_id: String,
    shutdown: CancellationToken,
    supervisor: Supervisor,
}

impl Running {
    /// Asks the monitor to stop: no new slots, in-flight probes finish, the last batch commits.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the monitor has stopped, by request or by a fatal error (which names the
    /// task that failed).
    pub async fn wait(self) -> Result<(), MonitorError> {
        Ok(self.supervisor.wait().await?)
    }
}

/// Starts the monitor: serves health and metrics, initialises the producer (waiting for the
/// broker if need be), then schedules and probes until `shutdown` is cancelled. Every task runs
/// under one supervisor: one that fails, panics or ends unasked stops the others.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, MonitorError> {
    let kafka = ClientSettings::new(&config.kafka)?;
    let readiness = Arc::new(Readiness::default());
    let _recorder = plumbing::metrics_handle();
    telemetry::describe_metrics();
    // At least a second: a zero timeout would make every shutdown a failure.
    let shutdown_timeout = Duration::from(config.shutdown_timeout).max(Duration::from_secs(1));
    let mut supervisor = Supervisor::new(shutdown.clone(), shutdown_timeout);
    let ready = readiness.clone();
    let listen_error = |source| MonitorError::Listen {
        addr: config.listen,
        source,
    };
    let ops = OpsServer::bind(config.listen, Arc::new(move || ready.is_ready()))
        .await
        .map_err(listen_error)?;
    let http_addr = ops.local_addr().map_err(listen_error)?;
    supervisor.spawn("health and metrics server", ops.serve(shutdown.clone()));

    let db = plumbing::database::connect_lazy(&config.database, 2).await?;
    {
        // Brokers that refuse this client (TLS, SASL, ACLs) stop the monitor with their reason.
        let mut topics = vec![config.kafka.topic.clone()];
        if config.shard.is_none() {
            topics.push(config.shards_topic.clone());
        }
        let (kafka, stop) = (kafka.clone(), shutdown.clone());
        supervisor.spawn("Kafka access check", async move {
            let watch = stop.clone();
            check_access_async(kafka, topics, move || watch.is_cancelled()).await?;
            stop.cancelled().await;
            Ok(())
        });
    }

    let checks = targets::Checks::new(check::CheckBuilder::new()?);
    let prober = Prober::new(ProbeSettings {
        timeout: config.probe_timeout(),
        max_redirects: config.max_redirects,
        body_cap_bytes: config.body_cap_bytes,
        deny: Arc::new(DenyList::new(
            &config.deny,
            config.deny_private,
            config.deny_loopback,
        )),
    });

    if config.shard.is_none()
        && Duration::from(config.heartbeat_interval) * 3 > Duration::from(config.session_timeout)
    {
        return Err(MonitorError::Config(format!(
            "PINGPIPE_MONITOR_HEARTBEAT_INTERVAL ({}) must be at most a third of \
             PINGPIPE_MONITOR_SESSION_TIMEOUT ({}), or a member loses its shards between two \
             heartbeats",
            config.heartbeat_interval, config.session_timeout
        )));
    }
    let mode = match config.shard {
        Some(shard) => Mode::Fixed(shard),
        None => Mode::Group(
            GroupSettings {
                instance: config.instance.clone(),
                member: config.member_name(),
                group_id: config.group_id(),
                shards_topic: config.shards_topic.clone(),
                shards: config.shards,
                session_timeout: config.session_timeout.into(),
                heartbeat_interval: config.heartbeat_interval.into(),
                // The shard's running probes (a re-probe makes two, with its delay between) and
                // the last commit.
                revoke_budget: config.probe_timeout() * 2
                    + Duration::from(config.reprobe_delay)
                    + Duration::from_secs(5),
            },
            Ownership::new(config.shards),
        ),
    };
    let transactional_id = match &mode {
        Mode::Fixed(shard) => config.transactional_id(*shard),
        Mode::Group(group, _) => group.group_id.clone(),
    };
    let settings = PublisherSettings {
        kafka: kafka.clone(),
        topic: config.kafka.topic.clone(),
        transactional_id: transactional_id.clone(),
        commit_interval: config.commit_interval.into(),
        max_batch: 10_000,
        transaction_timeout: TRANSACTION_TIMEOUT,
        init_timeout: publisher::CALL_TIMEOUT,
        linger: Duration::from_millis(5),
        member: None,
        shards_topic: None,
        recreate_after_outage: true,
    };
    tracing::info!(
        transactional_id,
        shard = ?config.shard,
        member = match &mode { Mode::Group(g, _) => g.member.as_str(), Mode::Fixed(_) => "" },
        minute = ?config.minute(),
        probe_timeout = ?config.probe_timeout(),
        reprobe_delay = ?Duration::from(config.reprobe_delay),
        concurrency = config.concurrency,
        %http_addr,
        "Starting the monitor."
    );

    // The publisher keeps trying after a shutdown request for most of the shutdown timeout
    // (the rest is for the process to wind down), then drops what is left and says how much.
    let give_up = CancellationToken::new();
    let give_up_probes = give_up.clone();
    // Cancelled when the publisher has ended: nothing is left to give up on.
    let published = CancellationToken::new();
    {
        let (shutdown, give_up, published) = (shutdown.clone(), give_up.clone(), published.clone());
        let budget = shutdown_timeout.mul_f64(0.8);
        supervisor.spawn("shutdown deadline", async move {
            shutdown.cancelled().await;
            tokio::select! {
                () = tokio::time::sleep(budget) => give_up.cancel(),
                () = published.cancelled() => {}
            }
            Ok(())
        });
    }

    let (targets_tx, targets_rx) = watch::channel(TargetSet::default());
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>(config.concurrency.max(1));
    let (results_tx, results_rx) = mpsc::channel::<Pending>(config.concurrency.max(1) * 2);
    // Scheduling starts once the producer can publish.
    let (producer_up, producer_up_rx) = watch::channel(false);
    let dropped = Arc::new(AtomicU64::new(0));
    let reprobes = Reprobes::new(
        config.reprobe_delay.into(),
        config.probe_timeout(),
        &jobs_tx,
        results_tx.clone(),
        shutdown.clone(),
        dropped.clone(),
    );

    let (selection, ownership) = match &mode {
        Mode::Fixed(shard) => (Selection::Fixed(*shard), None),
        Mode::Group(_, ownership) => (Selection::Group(ownership.clone()), Some(ownership.clone())),
    };
    if let Mode::Group(group, ownership) = &mode {
        // Group mode: a publisher per owned shard, started and stopped by the shard manager as
        // the group coordinator assigns and revokes; a router hands each result to its shard's.
        let routes = Routes::default();
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let manager = Manager {
            settings: group.clone(),
            publisher: PublisherSettings {
                member: Some(group.member.clone()),
                // A shard's producer carries a 64th of the results: it waits longer to fill a
                // request (the commit sends what is left), or every result would be a request.
                linger: Duration::from_millis(100),
                init_timeout: group.session_timeout,
                shards_topic: Some(group.shards_topic.clone()),
                recreate_after_outage: false,
                ..settings.clone()
            },
            transactional_id: {
                let config = config.clone();
                Arc::new(move |p| config.group_transactional_id(p))
            },
            ownership: ownership.clone(),
            routes: routes.clone(),
            give_up: give_up.clone(),
            ready: readiness.producer_ready.clone(),
        };
        {
            // Ended once every shard is handed over, on the way out: nothing left to give up on.
            let published = published.clone();
            supervisor.spawn("shard manager", async move {
                let _published = published.drop_guard();
                manager.run(commands_rx).await
            });
        }
        supervisor.spawn(
            "group membership",
            group::run_membership(
                kafka.clone(),
                group.clone(),
                commands_tx,
                readiness.producer_ready.clone(),
                shutdown.clone(),
            ),
        );
        supervisor.spawn(
            "result router",
            group::route(results_rx, routes, ownership.clone()),
        );
        let _ = producer_up.send(true);
    } else {
        let ready = readiness.clone();
        let stop = shutdown.clone();
        supervisor.spawn("publisher", async move {
            let _published = published.drop_guard();
            let publisher = {
                let connected = Publisher::connect(settings, ready.producer_ready.clone(), give_up);
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    connected = connected => connected,
                }
            };
            let publisher = match publisher {
                Ok(p) => p,
                Err(PublishError::Cancelled) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let _ = producer_up.send(true);
            publisher.run(results_rx).await?;
            tracing::info!("Every finished probe was committed or counted.");
            Ok(())
        });
    }
    supervisor.spawn(
        "target list refresh",
        targets::refresh(
            db,
            selection,
            config.targets_refresh.into(),
            targets_tx,
            readiness.clone(),
            checks,
            shutdown.clone(),
        ),
    );
    supervisor.spawn(
        "scheduler",
        scheduler::run(
            config.minute(),
            targets_rx,
            producer_up_rx,
            jobs_tx,
            shutdown.clone(),
        ),
    );
    let jobs_rx = Arc::new(Mutex::new(jobs_rx));
    let workers = config.concurrency.max(1);
    let stop = shutdown.clone();
    supervisor.spawn("probe workers", async move {
        let mut pool = tokio::task::JoinSet::new();
        for _ in 0..workers {
            pool.spawn(probe_worker(
                jobs_rx.clone(),
                prober.clone(),
                results_tx.clone(),
                reprobes.clone(),
                stop.clone(),
                give_up_probes.clone(),
                dropped.clone(),
                ownership.clone(),
            ));
        }
        drop(results_tx);
        while let Some(joined) = pool.join_next().await {
            if let Err(e) = joined {
                anyhow::bail!("a probe worker died: {e}");
            }
        }
        // A slot whose first attempt was DOWN still has its result: the re-probes waiting out
        // their delay publish their first attempt (they see the stop), then those already queued
        // for a second attempt no worker will make.
        reprobes.wait().await;
        let queued: Vec<Job> = {
            let mut queue = jobs_rx.lock().await;
            queue.close();
            std::iter::from_fn(|| queue.try_recv().ok()).collect()
        };
        for job in queued {
            reprobes.publish_first(job, "shutdown").await;
        }
        drop(reprobes);
        let dropped = dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            metrics::counter!(m::MONITOR_DROPPED, "reason" => "shutdown").increment(dropped);
            tracing::error!(
                dropped,
                "{dropped} results of probes running or finished while stopping were dropped \
                 (the publisher had stopped taking results)."
            );
        }
        Ok(())
    });
    Ok(Running {
        http_addr,
        transactional_id,
        shutdown,
        supervisor,
    })
}

/// Takes due jobs from the shared queue and probes them, one at a time, until stopped. A DOWN
/// probe of a target with `reprobe` goes to `reprobes` instead of being published, and comes
/// back as a job carrying it. In group mode (`ownership`), only slots of owned shards are probed.
#[allow(clippy::too_many_arguments)]
async fn probe_worker(
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    prober: Prober,
    results: mpsc::Sender<Pending>,
    reprobes: Reprobes,
    stop: CancellationToken,
    give_up: CancellationToken,
    dropped: Arc<AtomicU64>,
    ownership: Option<Arc<Ownership>>,
) {
    loop {
        let job = {
            let mut queue = jobs.lock().await;
            tokio::select! {
                // Once stopping, no new probe starts, however many jobs are queued.
                biased;
                () = stop.cancelled() => None,
                job = queue.recv() => job,
            }
        };
        let Some(mut job) = job else { return };
        let now_ms = chrono::Utc::now().timestamp_millis();
        if job.first_attempt.is_some() {
            // A second attempt that would run past the next slot is not made, nor one of a
            // shard handed over meanwhile.
            if now_ms > reprobes.latest_start_ms(&job) {
                reprobes.publish_first(job, "late").await;
                continue;
            }
            if ownership.as_ref().is_some_and(|o| !o.owns(job.target.id)) {
                reprobes.publish_first(job, "handover").await;
                continue;
            }
        } else {
            let lag_ms = now_ms - job.slot_ms;
            if lag_ms > job.period_ms {
                metrics::counter!(m::MONITOR_MISSED_SLOTS, "reason" => "stale").increment(1);
                continue;
            }
            // Group mode: no probe starts for a shard this member does not own (any more).
            if ownership
                .as_ref()
                .is_some_and(|o| !o.begin(job.target.id, job.slot_ms))
            {
                continue;
            }
            metrics::histogram!(m::MONITOR_SCHEDULE_LAG).record(lag_ms.max(0) as f64 / 1000.0);
        }
        let in_flight = metrics::gauge!(m::MONITOR_IN_FLIGHT);
        in_flight.increment(1.0);
        let result = tokio::select! {
            // A probe still running when the shutdown deadline passes has no result to give.
            () = give_up.cancelled() => None,
            result = prober.probe(&job.target.url, &job.target.check) => Some(result),
        };
        in_flight.decrement(1.0);
        let Some(result) = result else {
            dropped.fetch_add(1, Ordering::Relaxed);
            if let Some(ownership) = &ownership {
                ownership.done(job.target.id);
            }
            return;
        };
        metrics::counter!(
            m::MONITOR_PROBES,
            "outcome" => outcome_label(result.outcome),
            "verdict" => result.verdict.as_str()
        )
        .increment(1);
        let event = ResultEvent::new(
            job.target.id,
            job.target.url.as_ref(),
            job.target.frequency,
            job.scheduled_at(),
            result.start_time,
            result.duration_ms,
            result.outcome,
        )
        .with_check(result.verdict, result.report);
        let event = match job.first_attempt.take() {
            Some(first) => {
                let recovered = event.verdict() != Verdict::Down;
                metrics::counter!(
                    m::MONITOR_REPROBES,
                    "recovered" => if recovered { "true" } else { "false" }
                )
                .increment(1);
                event.with_first_attempt(FirstAttempt::of(&first))
            }
            // A check that cannot be used fails the same way every time: not tried again.
            None if event.verdict() == Verdict::Down
                && job.target.check.reprobe
                && job.target.check.broken.is_none() =>
            {
                match reprobes.start(job, event) {
                    Some(first) => first,
                    // Published with its second attempt, or by `reprobes` without one.
                    None => continue,
                }
            }
            None => event,
        };
        // Fails only once the publisher has stopped taking results (it gave up, or failed).
        if results.send(Pending::new(&event)).await.is_err() {
            dropped.fetch_add(1, Ordering::Relaxed);
            if let Some(ownership) = &ownership {
                ownership.done(event.target_id);
            }
            return;
        }
    }
}

fn outcome_label(outcome: entity::Outcome) -> &'static str {
    match outcome {
        entity::Outcome::Status(s) if s < 200 => "1xx",
        entity::Outcome::Status(s) if s < 300 => "2xx",
        entity::Outcome::Status(s) if s < 400 => "3xx",
        entity::Outcome::Status(s) if s < 500 => "4xx",
        entity::Outcome::Status(_) => "5xx",
        entity::Outcome::Failure(class) => class.as_str(),
    }
}
