//! When each target is probed: once per period of its frequency, at a stable offset inside the
//! period derived from its id (so load spreads evenly, as Prometheus spreads its scrapes), on
//! slots aligned to the wall clock (so a restart does not shift them).
//!
//! The scheduler only decides; it never waits on a probe. Due slots go into a bounded queue that
//! a fixed pool of probe workers drains, so a hanging target delays nobody's slot, not even its
//! own next one, and memory and sockets stay bounded whatever the targets do. A slot that finds
//! the queue full, or that waited in it longer than a period, is counted as missed.
//!
//! The wall clock can be stepped (NTP, an operator). Forward: the slots skipped over are counted
//! as missed and each target gets only its latest due slot, never a burst of old ones. Backward:
//! the schedule is computed again from the new time, so probing goes on at once instead of
//! waiting for the clock to catch up; a slot that comes round a second time is stored once (the
//! unique (target, slot) key) and its repeat counted by the ingest worker. Both are logged and
//! counted (`pingpipe_monitor_clock_steps_total`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{Frequency, ResultEvent};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::check::Check;
use crate::metric_names as m;

/// A target as the monitor sees it.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: i32,
    pub url: Arc<str>,
    pub frequency: Frequency,
    /// Rebuilt only when its stored columns change, so the same check is the same `Arc`.
    pub check: Arc<Check>,
    /// Group mode: when this member started the target's shard (ms since the epoch; 0 in fixed
    /// mode). A target of a shard started less than a period ago gets the first slot after
    /// that moment, even if the list reached the scheduler a little later.
    pub since_ms: i64,
}

impl PartialEq for Target {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.url == other.url
            && self.frequency == other.frequency
            && Arc::ptr_eq(&self.check, &other.check)
            && self.since_ms == other.since_ms
    }
}

impl Eq for Target {}

/// The active targets of this shard, by id.
pub type TargetSet = Arc<HashMap<i32, Target>>;

/// One due slot of one target, waiting for a probe worker.
#[derive(Debug, Clone)]
pub struct Job {
    pub target: Target,
    /// The slot, in milliseconds since the Unix epoch.
    pub slot_ms: i64,
    /// The period of the target's frequency, in milliseconds.
    pub period_ms: i64,
    /// A re-probe (see `reprobe`): the slot's first attempt, published as the slot's result
    /// if the second cannot be made.
    pub first_attempt: Option<Box<ResultEvent>>,
}

impl Job {
    pub fn scheduled_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.slot_ms).unwrap_or_default()
    }
}

/// The period of `frequency` when a minute lasts `minute`, in milliseconds (at least 1).
pub fn period_ms(frequency: Frequency, minute: Duration) -> i64 {
    let minute_ms = i64::try_from(minute.as_millis()).unwrap_or(i64::MAX / 64);
    (i64::from(frequency.minutes()) * minute_ms).max(1)
}

/// The target's stable offset inside its period: a hash of its id, the same on every restart
/// and every machine, spread evenly over the period.
pub fn slot_offset_ms(target_id: i32, period_ms: i64) -> i64 {
    // Fibonacci hashing: consecutive ids land far apart.
    let hashed = (u64::from(target_id as u32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let period = u64::try_from(period_ms).unwrap_or(1).max(1);
    // Fold the well-mixed high bits onto the period.
    i64::try_from(((u128::from(hashed) * u128::from(period)) >> 64) as u64).unwrap_or(0)
}

/// The first slot of the target strictly after `now_ms`.
pub fn next_slot_after(target_id: i32, period_ms: i64, now_ms: i64) -> i64 {
    let offset = slot_offset_ms(target_id, period_ms);
    let k = (now_ms - offset).div_euclid(period_ms) + 1;
    k * period_ms + offset
}

struct Entry {
    target: Target,
    period_ms: i64,
    /// Bumped when the schedule changes, so heap entries of the old schedule are ignored.
    generation: u64,
}

/// The scheduler's state: the targets and a min-heap of (next slot, generation, id).
pub struct Scheduler {
    minute: Duration,
    entries: HashMap<i32, Entry>,
    heap: BinaryHeap<Reverse<(i64, u64, i32)>>,
    next_generation: u64,
}

impl Scheduler {
    pub fn new(minute: Duration) -> Scheduler {
        Scheduler {
            minute,
            entries: HashMap::new(),
            heap: BinaryHeap::new(),
            next_generation: 0,
        }
    }

    /// Makes the schedule match `targets`: new targets get their next slot, removed ones are
    /// forgotten, a changed frequency reschedules, a changed URL applies from the next slot.
    pub fn apply(&mut self, targets: &HashMap<i32, Target>, now_ms: i64) {
        self.entries.retain(|id, _| targets.contains_key(id));
        for (id, target) in targets {
            let period_ms = period_ms(target.frequency, self.minute);
            match self.entries.get_mut(id) {
                Some(entry) if entry.period_ms == period_ms => entry.target = target.clone(),
                _ => {
                    self.next_generation += 1;
                    let generation = self.next_generation;
                    self.entries.insert(
                        *id,
                        Entry {
                            target: target.clone(),
                            period_ms,
                            generation,
                        },
                    );
                    // Just received: the first slot after the shard's start, not after now.
                    let from = if (0..period_ms).contains(&(now_ms - target.since_ms)) {
                        target.since_ms
                    } else {
                        now_ms
                    };
                    let slot = next_slot_after(*id, period_ms, from);
                    self.heap.push(Reverse((slot, generation, *id)));
                }
            }
        }
        // Drop stale heap entries once they outnumber the live ones, so churn cannot grow it.
        if self.heap.len() > 2 * self.entries.len() + 1024 {
            let entries = &self.entries;
            self.heap
                .retain(|Reverse((_, g, id))| entries.get(id).is_some_and(|e| e.generation == *g));
        }
    }

    /// The next slot in milliseconds since the epoch, if any target is scheduled.
    pub fn next_due_ms(&mut self) -> Option<i64> {
        while let Some(Reverse((slot, generation, id))) = self.heap.peek().copied() {
            if self
                .entries
                .get(&id)
                .is_some_and(|e| e.generation == generation)
            {
                return Some(slot);
            }
            self.heap.pop();
        }
        None
    }

    /// Every job due at `now_ms`, each target's following slot scheduled.
    pub fn take_due(&mut self, now_ms: i64) -> Vec<Job> {
        let mut due = Vec::new();
        while let Some(Reverse((slot, generation, id))) = self.heap.peek().copied() {
            if slot > now_ms {
                break;
            }
            self.heap.pop();
            let Some(entry) = self.entries.get(&id).filter(|e| e.generation == generation) else {
                continue;
            };
            // More than a period late (the clock jumped forward, the process was stopped):
            // only the latest due slot is probed, the ones before it are missed.
            let skipped = (now_ms - slot) / entry.period_ms;
            if skipped > 0 {
                metrics::counter!(m::MONITOR_MISSED_SLOTS, "reason" => "clock_jump")
                    .increment(skipped as u64);
            }
            let slot = slot + skipped * entry.period_ms;
            due.push(Job {
                target: entry.target.clone(),
                slot_ms: slot,
                period_ms: entry.period_ms,
                first_attempt: None,
            });
            // The next slot follows from this one, not from the clock: no drift.
            let next = slot + entry.period_ms;
            self.heap.push(Reverse((next, generation, id)));
        }
        due
    }

    /// Computes every target's next slot again from `now_ms` (after the clock went back).
    pub fn restart_from(&mut self, now_ms: i64) {
        self.heap.clear();
        for (id, entry) in &mut self.entries {
            self.next_generation += 1;
            entry.generation = self.next_generation;
            let slot = next_slot_after(*id, entry.period_ms, now_ms);
            self.heap.push(Reverse((slot, entry.generation, *id)));
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A wall-clock step larger than this (against the monotonic clock) is treated as a step.
const CLOCK_STEP_MS: i64 = 1000;

/// Runs the schedule until cancelled: waits until `producer_up` says the producer can publish,
/// then follows target changes and hands due jobs to the queue.
pub async fn run(
    minute: Duration,
    mut targets: watch::Receiver<TargetSet>,
    mut producer_up: watch::Receiver<bool>,
    jobs: mpsc::Sender<Job>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    tokio::select! {
        () = cancel.cancelled() => return Ok(()),
        up = producer_up.wait_for(|up| *up) => {
            if up.is_err() {
                return Ok(()); // The publisher ended before it was up; it says why.
            }
        }
    }
    let mut scheduler = Scheduler::new(minute);
    scheduler.apply(&targets.borrow_and_update(), now_ms());
    let mut clock = (now_ms(), std::time::Instant::now());
    loop {
        metrics::gauge!(m::MONITOR_TARGETS).set(scheduler.len() as f64);
        // Never sleep longer than a second: the wall clock may be stepped meanwhile.
        let wait_ms = scheduler
            .next_due_ms()
            .map_or(1000, |due| (due - now_ms()).clamp(0, 1000));
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            changed = targets.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                scheduler.apply(&targets.borrow_and_update(), now_ms());
            }
            () = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => {
                let now = now_ms();
                let step = (now - clock.0) - clock.1.elapsed().as_millis() as i64;
                if step < -CLOCK_STEP_MS {
                    metrics::counter!(m::MONITOR_CLOCK_STEPS, "direction" => "backward").increment(1);
                    tracing::warn!(step_ms = step, "The wall clock went back; scheduling again from the new time (slots that come round again are stored once).");
                    scheduler.restart_from(now);
                } else if step > CLOCK_STEP_MS {
                    metrics::counter!(m::MONITOR_CLOCK_STEPS, "direction" => "forward").increment(1);
                    tracing::warn!(step_ms = step, "The wall clock jumped forward; the slots skipped over are counted as missed.");
                }
                clock = (now, std::time::Instant::now());
                for job in scheduler.take_due(now) {
                    if let Err(mpsc::error::TrySendError::Full(job)) = jobs.try_send(job) {
                        metrics::counter!(m::MONITOR_MISSED_SLOTS, "reason" => "queue_full").increment(1);
                        tracing::debug!(target_id = job.target.id, "Probe queue full; slot missed.");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn target(id: i32, frequency: Frequency) -> Target {
        static PLAIN: std::sync::OnceLock<Arc<Check>> = std::sync::OnceLock::new();
        let check =
            PLAIN.get_or_init(|| Arc::new(crate::check::CheckBuilder::new().unwrap().plain()));
        Target {
            id,
            url: Arc::from(format!("http://127.0.0.1/{id}")),
            frequency,
            check: check.clone(),
            since_ms: 0,
        }
    }

    #[test]
    fn offsets_are_stable_and_spread_over_the_period() {
        let period = period_ms(Frequency::OneMinute, MINUTE);
        assert_eq!(slot_offset_ms(42, period), slot_offset_ms(42, period));
        // 6,000 consecutive ids over 60 one-second buckets: each bucket gets 100 ± 30%.
        let mut buckets = [0u32; 60];
        for id in 1..=6000 {
            let offset = slot_offset_ms(id, period);
            assert!((0..period).contains(&offset));
            buckets[(offset / 1000) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|b| (70..=130).contains(b)),
            "{buckets:?}"
        );
    }

    #[test]
    fn slots_are_aligned_to_the_wall_clock() {
        let period = period_ms(Frequency::FiveMinutes, MINUTE);
        let now = 1_800_000_000_123;
        let slot = next_slot_after(7, period, now);
        assert!(slot > now && slot <= now + period);
        assert_eq!(slot.rem_euclid(period), slot_offset_ms(7, period));
        // A restart a little later computes the same slot.
        assert_eq!(next_slot_after(7, period, now + 1_000), slot);
    }

    #[test]
    fn each_target_is_due_once_per_period_without_drift() {
        let mut scheduler = Scheduler::new(Duration::from_millis(100));
        let targets: HashMap<i32, Target> = (1..=50)
            .map(|id| (id, target(id, Frequency::TwoMinutes)))
            .collect();
        let start = 1_000_000;
        scheduler.apply(&targets, start);
        let mut slots: HashMap<i32, Vec<i64>> = HashMap::new();
        // Ten periods of 200 ms, looked at every 7 ms.
        for now in (start..start + 2_000).step_by(7) {
            for job in scheduler.take_due(now) {
                assert!(job.slot_ms <= now && now - job.slot_ms < 7);
                slots.entry(job.target.id).or_default().push(job.slot_ms);
            }
        }
        assert_eq!(slots.len(), 50);
        for (id, s) in slots {
            assert!((9..=10).contains(&s.len()), "{id}: {s:?}");
            assert!(s.windows(2).all(|w| w[1] - w[0] == 200), "{id}: {s:?}");
        }
    }

    #[test]
    fn a_forward_clock_jump_yields_one_latest_slot_per_target_not_a_burst() {
        let mut scheduler = Scheduler::new(Duration::from_millis(100));
        let targets: HashMap<i32, Target> = (1..=20)
            .map(|id| (id, target(id, Frequency::OneMinute)))
            .collect();
        scheduler.apply(&targets, 0);
        assert_eq!(scheduler.take_due(0).len(), 0);
        // An hour's worth of periods later in one step.
        let later = 100 * 3600;
        let jobs = scheduler.take_due(later);
        assert_eq!(jobs.len(), 20);
        for job in &jobs {
            assert!(later - job.slot_ms < 100, "{job:?}");
        }
        // And the schedule goes on from there, one slot per period.
        assert!(scheduler.take_due(later).is_empty());
        assert_eq!(scheduler.take_due(later + 100).len(), 20);
    }

    #[test]
    fn after_the_clock_goes_back_probing_goes_on_from_the_new_time() {
        let mut scheduler = Scheduler::new(Duration::from_millis(100));
        let targets: HashMap<i32, Target> = (1..=20)
            .map(|id| (id, target(id, Frequency::OneMinute)))
            .collect();
        let hour = 100 * 3600;
        scheduler.apply(&targets, hour);
        assert_eq!(scheduler.take_due(hour + 100).len(), 20);
        // Back by an hour: without rescheduling nothing would be due for an hour.
        assert!(scheduler.take_due(200).is_empty());
        scheduler.restart_from(100);
        let jobs = scheduler.take_due(200);
        assert_eq!(jobs.len(), 20);
        assert!(jobs.iter().all(|j| (100..=200).contains(&j.slot_ms)));
    }

    #[test]
    fn removed_and_rescheduled_targets_take_effect() {
        let mut scheduler = Scheduler::new(Duration::from_millis(100));
        let mut targets: HashMap<i32, Target> = [
            (1, target(1, Frequency::OneMinute)),
            (2, target(2, Frequency::OneMinute)),
        ]
        .into();
        scheduler.apply(&targets, 0);
        targets.remove(&2);
        targets.insert(1, target(1, Frequency::ThirtyMinutes));
        scheduler.apply(&targets, 0);
        let jobs = scheduler.take_due(100 * 30 * 2);
        assert!(jobs.iter().all(|j| j.target.id == 1 && j.period_ms == 3000));
        assert!(!jobs.is_empty());
        assert_eq!(scheduler.len(), 1);
    }
}
