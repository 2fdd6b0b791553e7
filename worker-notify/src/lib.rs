//! Pingpipe's notification worker: delivers the state changes the ingest worker queued in the
//! outbox (`notifications`, written in the transaction that decided each change) to the
//! channels people chose.
//!
//! ```text
//! notifications ──group (per channel, storm window)──> deliveries ──claim (SKIP LOCKED, lease)──>
//!     send (timeout) ──> delivered | retry (backoff + jitter, Retry-After) | failed (4xx)
//!                        └──────── every attempt in notification_attempts ────────┘
//! ```
//!
//! Any number of instances share the work (see [`store`] for what each statement guarantees).
//! A message is sent at least once and carries the same id on every attempt (`webhook-id`,
//! `Message-ID`, PagerDuty's `dedup_key`), so a receiver can tell a redelivery after a crash.
//! Every task (the sender, the grouper, the health and metrics server) runs under one
//! supervisor: when one fails, panics or ends unasked, the others are stopped and the process
//! exits non-zero, saying which task and why.

pub mod channel;
pub mod config;
pub mod email;
pub mod message;
pub mod metric_names;
pub mod send;
pub mod signing;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use plumbing::{Backoff, OpsServer, Supervisor};
use sea_orm::DatabaseConnection;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::Config;
use metric_names as m;
use send::Sender;
use store::Outcome;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot serve health and metrics on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Database(#[from] sea_orm::DbErr),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("PINGPIPE_PUBLIC_URL: {0}")]
    PublicUrl(String),
    #[error(transparent)]
    Stopped(#[from] plumbing::Stopped),
}

/// A started notification worker.
pub struct Running {
    pub http_addr: SocketAddr,
    shutdown: CancellationToken,
    supervisor: Option<Supervisor>,
}

impl Running {
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the worker has stopped: `Ok` when asked to, otherwise which task failed.
    pub async fn wait(mut self) -> Result<(), NotifyError> {
        match self.supervisor.take() {
            Some(supervisor) => Ok(supervisor.wait().await?),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// What the tasks share.
struct Shared {
    db: DatabaseConnection,
    sender: Sender,
    config: Config,
    ready: AtomicBool,
}

pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, NotifyError> {
    let _recorder = plumbing::metrics_handle();
    m::describe();
    channel::check_url("url", &config.public_url).map_err(|e| NotifyError::PublicUrl(e.message))?;
    // The attempts in flight get their timeout to finish, and their outcomes a moment to be
    // recorded.
    let grace = Duration::from(config.timeout) + Duration::from_secs(5);
    let mut supervisor = Supervisor::new(shutdown.clone(), grace);
    let db = plumbing::database::connect_lazy(&config.database, 4).await?;
    let shared = Arc::new(Shared {
        sender: Sender::new(config.timeout.into(), &config.public_url)?,
        ready: AtomicBool::new(db.ping().await.is_ok()),
        db,
        config,
    });
    let ready = shared.clone();
    let listen_error = |source| NotifyError::Listen {
        addr: shared.config.listen,
        source,
    };
    let ops = OpsServer::bind(
        shared.config.listen,
        Arc::new(move || ready.ready.load(Ordering::Relaxed)),
    )
    .await
    .map_err(listen_error)?;
    let http_addr = ops.local_addr().map_err(listen_error)?;
    supervisor.spawn("health and metrics server", ops.serve(shutdown.clone()));
    supervisor.spawn("grouper", group_loop(shared.clone(), shutdown.clone()));
    supervisor.spawn("sender", send_loop(shared.clone(), shutdown.clone()));
    tracing::info!(
        %http_addr,
        concurrency = shared.config.concurrency,
        group_window = %shared.config.group_window,
        "Starting the notification worker."
    );
    Ok(Running {
        http_addr,
        shutdown,
        supervisor: Some(supervisor),
    })
}

/// Groups waiting notifications into deliveries every poll, and queues reminders every few
/// seconds (a tenth of a minute, at most 10 s) along with dropping orphans. PostgreSQL unavailable: retried with backoff.
async fn group_loop(shared: Arc<Shared>, cancel: CancellationToken) -> anyhow::Result<()> {
    let config = &shared.config;
    let poll = Duration::from(config.poll).max(Duration::from_millis(10));
    let minute = Duration::from(config.minute);
    let remind_every = (minute / 10).clamp(Duration::from_millis(100), Duration::from_secs(10));
    let mut last_reminders: Option<Instant> = None;
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    while !cancel.is_cancelled() {
        let round = async {
            let grouped = store::group(
                &shared.db,
                config.group_window.into(),
                config.retry_for.into(),
            )
            .await?;
            let mut reminders = 0;
            if last_reminders.is_none_or(|at| at.elapsed() >= remind_every) {
                reminders = states::outbox::remind(&shared.db, Utc::now(), minute).await?;
                // Not every round: orphans are rare (a channel removed mid-batch), waiting rows
                // may be many during a storm.
                store::drop_orphans(&shared.db).await?;
                last_reminders = Some(Instant::now());
            }
            Ok::<_, sea_orm::DbErr>((grouped, reminders))
        };
        match round.await {
            Ok((grouped, reminders)) => {
                shared.ready.store(true, Ordering::Relaxed);
                backoff.reset();
                metrics::counter!(m::GROUPED_DELIVERIES).increment(grouped.deliveries);
                metrics::counter!(m::GROUPED_NOTIFICATIONS).increment(grouped.notifications);
                metrics::counter!(m::REMINDERS).increment(reminders);
                if grouped.deliveries > 0 {
                    tracing::debug!(
                        deliveries = grouped.deliveries,
                        notifications = grouped.notifications,
                        "Grouped notifications into messages."
                    );
                }
                // More may be waiting (PagerDuty's events, a round's limits): at once again.
                if grouped.deliveries > 0 {
                    continue;
                }
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    () = cancel.cancelled() => {}
                }
            }
            Err(e) => {
                shared.ready.store(false, Ordering::Relaxed);
                metrics::counter!(m::DB_ERRORS).increment(1);
                tracing::warn!(error = %e, "Cannot group notifications; retrying.");
                if !backoff.wait(&cancel).await {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Claims due deliveries (as many as there are free places), sends each in its own task, and
/// records the outcomes in batches. On shutdown it claims nothing more, lets the attempts in
/// flight finish (each within its timeout) and records them.
async fn send_loop(shared: Arc<Shared>, cancel: CancellationToken) -> anyhow::Result<()> {
    let config = &shared.config;
    let concurrency = config.concurrency.max(1);
    let poll = Duration::from(config.poll).max(Duration::from_millis(10));
    let mut in_flight: JoinSet<Outcome> = JoinSet::new();
    let mut done: Vec<Outcome> = Vec::new();
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let mut idle_until = Instant::now();
    loop {
        while let Some(joined) = in_flight.try_join_next() {
            done.push(joined?);
        }
        if !done.is_empty() {
            match store::record(&shared.db, &done).await {
                Ok(()) => {
                    for o in done.drain(..) {
                        if o.status != "pending" {
                            metrics::counter!(m::DELIVERIES, "status" => o.status).increment(1);
                        }
                    }
                }
                Err(e) => {
                    // Kept and written with the next round; if this instance dies first, the
                    // leases end and the messages are sent again, with the same ids.
                    metrics::counter!(m::DB_ERRORS).increment(1);
                    tracing::warn!(error = %e, outcomes = done.len(), "Cannot record attempts; retrying.");
                    if cancel.is_cancelled() && in_flight.is_empty() {
                        break;
                    }
                    if !backoff.wait(&CancellationToken::new()).await {
                        break;
                    }
                    continue;
                }
            }
        }
        if cancel.is_cancelled() {
            if in_flight.is_empty() {
                break;
            }
        } else if in_flight.len() < concurrency && Instant::now() >= idle_until {
            let free = concurrency - in_flight.len();
            match store::claim(&shared.db, free, config.lease(), config.retry_for.into()).await {
                Ok(claimed) => {
                    shared.ready.store(true, Ordering::Relaxed);
                    backoff.reset();
                    if claimed.is_empty() {
                        idle_until = Instant::now() + poll;
                    }
                    for c in claimed {
                        in_flight.spawn(attempt(shared.clone(), c));
                    }
                    metrics::gauge!(m::IN_FLIGHT).set(in_flight.len() as f64);
                }
                Err(e) => {
                    shared.ready.store(false, Ordering::Relaxed);
                    metrics::counter!(m::DB_ERRORS).increment(1);
                    tracing::warn!(error = %e, "Cannot claim deliveries; retrying.");
                    idle_until = Instant::now() + backoff.next_delay();
                }
            }
        }
        let wait = idle_until.saturating_duration_since(Instant::now());
        tokio::select! {
            joined = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Some(joined) = joined {
                    done.push(joined?);
                }
            }
            () = tokio::time::sleep(wait), if in_flight.len() < concurrency && !cancel.is_cancelled() => {}
            () = cancel.cancelled(), if !cancel.is_cancelled() => {}
            // Cancelled meanwhile with nothing in flight: the loop's top ends it.
            else => {}
        }
        metrics::gauge!(m::IN_FLIGHT).set(in_flight.len() as f64);
    }
    Ok(())
}

/// One attempt: send, judge, decide what comes next.
async fn attempt(shared: Arc<Shared>, c: store::Claimed) -> Outcome {
    let config = &shared.config;
    let started = Instant::now();
    let sent = if c.message.changes.is_empty() && !c.message.test {
        send::Sent {
            verdict: send::Verdict::Failed,
            status: None,
            answer: None,
            error: Some("the changes of this message are gone".to_owned()),
            retry_after: None,
        }
    } else {
        shared.sender.send(&c.channel, &c.message).await
    };
    metrics::histogram!(m::SEND_SECONDS).record(started.elapsed().as_secs_f64());
    metrics::counter!(m::ATTEMPTS, "outcome" => sent.verdict.as_str()).increment(1);
    let wait = store::backoff(
        config.retry_first.into(),
        config.retry_max.into(),
        c.attempt,
        random_u32(),
    );
    let (status, retry_in) = store::next_step(&sent, wait, c.give_up_at, Utc::now());
    match status {
        "failed" => tracing::warn!(
            delivery_id = c.delivery,
            channel_id = c.channel.id,
            attempt = c.attempt,
            status = ?sent.status,
            answer = sent.answer.as_deref().unwrap_or(""),
            error = sent.error.as_deref().unwrap_or(""),
            "A message could not be delivered; marked failed."
        ),
        "pending" => tracing::info!(
            delivery_id = c.delivery,
            channel_id = c.channel.id,
            attempt = c.attempt,
            status = ?sent.status,
            error = sent.error.as_deref().unwrap_or(""),
            retry_in_ms = retry_in.as_millis() as u64,
            "A message will be tried again."
        ),
        _ => {}
    }
    Outcome {
        delivery: c.delivery,
        claim: c.claim,
        attempt: c.attempt,
        sent,
        status,
        retry_in,
    }
}

fn random_u32() -> u32 {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 4];
    // The system's generator does not fail on Linux; without it, no jitter.
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut bytes);
    u32::from_le_bytes(bytes)
}
