//! Re-probes (#13), as Uptime Kuma's retries: when a probe of a target whose check has `reprobe`
//! is DOWN, the target is probed once more a short delay later, within the same slot, and the
//! slot's result is the second attempt with the first summarised in it (`first_attempt`).
//!
//! Waiting costs no probe worker. Probes run on a fixed pool of workers (the concurrency limit),
//! so a worker asleep for the delay would be one probe fewer for everybody: with 50,000 targets
//! and a site-wide outage, thousands of workers would sit idle while slots are missed. Instead,
//! the worker that found the DOWN hands the slot to a timer task (a sleeping tokio task is a few
//! hundred bytes) and takes its next job; when the delay is over, the timer task puts the
//! re-probe on the shared job queue, so the second attempt runs on the same bounded pool as
//! every other probe.
//!
//! The second attempt must end before the target's next slot: it starts at the latest at the next
//! slot less the probe timeout. The delay is shortened to fit (aiming [`START_MARGIN`] before
//! that latest start, for the queue and a worker to take the job), and there is no re-probe when
//! even no delay would fit. Whatever prevents a second attempt — no time, a queue full until the
//! latest start, a shutdown — the first attempt is published as the slot's result, so a slot
//! still yields exactly one result, and the reason is counted
//! (`pingpipe_monitor_reprobes_skipped_total`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use entity::ResultEvent;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metric_names as m;
use crate::publisher::Pending;
use crate::scheduler::Job;

/// How long before its latest start a shortened re-probe is queued: time for a worker to take it
/// (a worker finding it past its latest start does not probe).
pub const START_MARGIN: Duration = Duration::from_millis(100);

/// When the second attempt is made, decided as the first ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// After this long: the configured delay, or less to fit before the next slot.
    After(Duration),
    /// Not at all: even started at once, it could run past the next slot.
    NoTime,
}

/// The plan at `now_ms` for a second attempt that must start by `latest_start_ms`: `delay` when
/// it leaves [`START_MARGIN`] before the latest start, less when it does not, none past it.
pub fn plan(delay: Duration, latest_start_ms: i64, now_ms: i64) -> Plan {
    match u64::try_from(latest_start_ms - now_ms) {
        Ok(room) => {
            let room = Duration::from_millis(room).saturating_sub(START_MARGIN);
            Plan::After(delay.min(room))
        }
        Err(_) => Plan::NoTime,
    }
}

/// Counts a DOWN slot of a re-probing target that got no second attempt.
fn skipped(reason: &'static str) {
    metrics::counter!(m::MONITOR_REPROBES_SKIPPED, "reason" => reason).increment(1);
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Hands DOWN slots of re-probing targets back to the probe workers once their delay is over;
/// cheap to clone.
#[derive(Clone)]
pub struct Reprobes {
    delay: Duration,
    timeout_ms: i64,
    /// The probe queue; weak, so that it still closes when the scheduler ends.
    jobs: mpsc::WeakSender<Job>,
    results: mpsc::Sender<Pending>,
    waiting: TaskTracker,
    stop: CancellationToken,
    dropped: Arc<AtomicU64>,
}

impl Reprobes {
    /// Re-probes after `delay` into `jobs`, for probes that time out after `timeout`; a first
    /// attempt that gets no second goes to `results` (counted in `dropped` if the publisher has
    /// stopped taking them). Once `stop` is cancelled, no second attempt is made.
    pub fn new(
        delay: Duration,
        timeout: Duration,
        jobs: &mpsc::Sender<Job>,
        results: mpsc::Sender<Pending>,
        stop: CancellationToken,
        dropped: Arc<AtomicU64>,
    ) -> Reprobes {
        Reprobes {
            delay,
            timeout_ms: i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX / 4),
            jobs: jobs.downgrade(),
            results,
            waiting: TaskTracker::new(),
            stop,
            dropped,
        }
    }

    /// The latest start of `job`'s second attempt: its probe must end by the next slot.
    pub fn latest_start_ms(&self, job: &Job) -> i64 {
        job.slot_ms + job.period_ms - self.timeout_ms
    }

    /// After `job`'s first attempt came out DOWN as `first`: waits out the delay on a timer task,
    /// then queues the second attempt. Gives `first` back, for the caller to publish as the
    /// slot's result, when no second attempt can be made.
    pub fn start(&self, mut job: Job, first: ResultEvent) -> Option<ResultEvent> {
        if self.stop.is_cancelled() {
            skipped("shutdown");
            return Some(first);
        }
        let latest_start_ms = self.latest_start_ms(&job);
        let Plan::After(delay) = plan(self.delay, latest_start_ms, now_ms()) else {
            skipped("no_time");
            tracing::debug!(
                target_id = job.target.id,
                "No time left in the slot for a re-probe."
            );
            return Some(first);
        };
        job.first_attempt = Some(Box::new(first));
        let this = self.clone();
        self.waiting
            .spawn(async move { this.wait_and_queue(job, delay, latest_start_ms).await });
        None
    }

    async fn wait_and_queue(self, job: Job, delay: Duration, latest_start_ms: i64) {
        tokio::select! {
            biased;
            () = self.stop.cancelled() => return self.publish_first(job, "shutdown").await,
            () = tokio::time::sleep(delay) => {}
        }
        let Some(queue) = self.jobs.upgrade() else {
            return self.publish_first(job, "shutdown").await;
        };
        // A place in the queue is waited for only as long as the second attempt could still
        // start; the job moves into the queue only with a place reserved, so it is never lost.
        let room = Duration::from_millis(u64::try_from(latest_start_ms - now_ms()).unwrap_or(0));
        let reserved = tokio::select! {
            biased;
            () = self.stop.cancelled() => return self.publish_first(job, "shutdown").await,
            reserved = tokio::time::timeout(room, queue.reserve()) => reserved,
        };
        match reserved {
            Ok(Ok(permit)) => permit.send(job),
            Ok(Err(_closed)) => self.publish_first(job, "shutdown").await,
            Err(_elapsed) => self.publish_first(job, "late").await,
        }
    }

    /// Publishes the first attempt of the re-probe `job` as its slot's result: no second attempt
    /// will be made, for `reason`.
    pub async fn publish_first(&self, job: Job, reason: &'static str) {
        let Some(first) = job.first_attempt else {
            return;
        };
        skipped(reason);
        // Fails only once the publisher has stopped taking results (it gave up, or failed).
        if self.results.send(Pending::new(&first)).await.is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every re-probe waiting out its delay has been queued or, once stopping, has
    /// published its first attempt.
    pub async fn wait(&self) {
        self.waiting.close();
        self.waiting.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: Duration = Duration::from_secs(2);

    #[test]
    fn the_delay_is_kept_when_it_fits_shortened_when_not_and_dropped_past_the_slot() {
        // A 60 s period and a 10 s timeout: the second attempt starts by second 50 of the slot.
        let latest_start = 50_000;
        assert_eq!(plan(DELAY, latest_start, 1_000), Plan::After(DELAY));
        assert_eq!(plan(DELAY, latest_start, 47_900), Plan::After(DELAY));
        // Shortened, queued the margin before the latest start.
        assert_eq!(
            plan(DELAY, latest_start, 49_500),
            Plan::After(Duration::from_millis(400))
        );
        assert_eq!(
            plan(DELAY, latest_start, 49_950),
            Plan::After(Duration::ZERO)
        );
        assert_eq!(
            plan(DELAY, latest_start, 50_000),
            Plan::After(Duration::ZERO)
        );
        assert_eq!(plan(DELAY, latest_start, 50_001), Plan::NoTime);
        // A period shorter than the timeout: never.
        assert_eq!(plan(DELAY, -500, 0), Plan::NoTime);
    }
}
