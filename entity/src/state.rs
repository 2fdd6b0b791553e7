//! A target's state and its incidents, decided from its results in slot order (#13, started).
//!
//! Pure and deterministic: the ingest worker feeds each target's new results, in slot order, to
//! the target's [`Tracker`] inside the batch's transaction, and a rebuild feeds the stored
//! results of a period to a fresh one — the same results give the same decisions. A result for
//! a slot at or before the last one applied (late, or repeated by a replay) changes nothing.
//!
//! The rules (thresholds per target, see [`Thresholds`]):
//! - a state other than the current one is confirmed after enough consecutive results of it:
//!   DOWN and DEGRADED after `failures_before_down`, UP after `successes_before_up`; leaving DOWN
//!   takes `successes_before_up` passing results (UP or DEGRADED), and the state then is the last
//!   one's;
//! - while DOWN results are being counted the state shows PENDING (failing, not yet confirmed);
//! - confirming DOWN opens an incident, opened at the first failing slot and confirmed at the
//!   slot that reached the threshold, caused by the first failing result; leaving DOWN resolves
//!   it at the first passing slot;
//! - before its first result a target is UNKNOWN; its first passing result makes it UP or
//!   DEGRADED at once, while DOWN is confirmed by the threshold as always.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Verdict;

/// What a target is, as people see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Up,
    Degraded,
    /// Failing, not yet confirmed down.
    Pending,
    Down,
    Paused,
    Maintenance,
    /// No result yet (or, once the ingest worker watches for it, none for two periods).
    Unknown,
}

impl State {
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Degraded => "degraded",
            State::Pending => "pending",
            State::Down => "down",
            State::Paused => "paused",
            State::Maintenance => "maintenance",
            State::Unknown => "unknown",
        }
    }

    fn of(verdict: Verdict) -> State {
        match verdict {
            Verdict::Up => State::Up,
            Verdict::Degraded => State::Degraded,
            Verdict::Down => State::Down,
        }
    }
}

/// How many consecutive results confirm a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Consecutive DOWN (or DEGRADED) results before the state is DOWN (or DEGRADED). At least 1.
    pub failures_before_down: u32,
    /// Consecutive passing results before a DOWN (or DEGRADED) target is UP again. At least 1.
    pub successes_before_up: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            failures_before_down: 3,
            successes_before_up: 2,
        }
    }
}

/// One stored result, as the tracker reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub slot: DateTime<Utc>,
    pub verdict: Verdict,
    /// Why it failed (a failure class, or the failed assertion); `None` when it passed.
    pub cause: Option<String>,
    /// `monitor_results_pk`.
    pub result_id: i64,
}

/// The start of a run of results that may become a state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Streak {
    /// The state the run would confirm (for a run leaving DOWN: UP, standing for "passing").
    pub toward: State,
    pub count: u32,
    pub first_slot: DateTime<Utc>,
    pub first_result: i64,
    pub first_cause: Option<String>,
}

/// A DOWN incident, open or resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// The first failing slot.
    pub opened_at: DateTime<Utc>,
    /// The slot whose result reached the threshold.
    pub confirmed_at: DateTime<Utc>,
    pub cause: Option<String>,
    pub opened_by: i64,
    /// The first passing slot of the run that ended it.
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_by: Option<i64>,
}

/// What applying a result decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The state changed (`since`: when the new state began, a slot).
    Changed {
        from: State,
        to: State,
        since: DateTime<Utc>,
    },
    /// DOWN was confirmed: a new incident.
    Opened(Incident),
    /// DOWN ended: the incident, now resolved.
    Resolved(Incident),
}

/// A target's state between results (stored per target; see the module's rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracker {
    /// The confirmed state (never PENDING: see [`Tracker::shown`]).
    pub state: State,
    pub since: Option<DateTime<Utc>>,
    pub last_slot: Option<DateTime<Utc>>,
    pub streak: Option<Streak>,
    pub incident: Option<Incident>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            state: State::Unknown,
            since: None,
            last_slot: None,
            streak: None,
            incident: None,
        }
    }
}

impl Tracker {
    /// The state people see: PENDING while failures are being counted.
    pub fn shown(&self) -> State {
        match &self.streak {
            Some(s) if s.toward == State::Down && self.state != State::Down => State::Pending,
            _ => self.state,
        }
    }

    /// Applies one result; what it decided, in order. A result for a slot at or before the last
    /// one applied decides nothing.
    pub fn apply(&mut self, t: Thresholds, o: &Observation) -> Vec<Decision> {
        if self.last_slot.is_some_and(|last| o.slot <= last) {
            return Vec::new();
        }
        self.last_slot = Some(o.slot);
        let shown_before = self.shown();
        let mut decisions = Vec::new();
        let seen = State::of(o.verdict);
        // Leaving DOWN counts passing results alike; otherwise each state counts its own.
        let toward = match (self.state, seen) {
            (State::Down, State::Up | State::Degraded) => State::Up,
            (_, seen) => seen,
        };
        if toward == self.state {
            self.streak = None;
        } else if self.state == State::Unknown && toward != State::Down {
            // A first passing result of a new target: no run to wait for.
            self.streak = None;
            self.set(seen, o.slot, shown_before, &mut decisions);
        } else {
            let streak = match self.streak.take() {
                Some(mut s) if s.toward == toward => {
                    s.count += 1;
                    s
                }
                _ => Streak {
                    toward,
                    count: 1,
                    first_slot: o.slot,
                    first_result: o.result_id,
                    first_cause: o.cause.clone(),
                },
            };
            let needed = match toward {
                State::Down | State::Degraded => t.failures_before_down,
                _ => t.successes_before_up,
            }
            .max(1);
            if streak.count >= needed {
                self.confirm(streak, seen, o, shown_before, &mut decisions);
            } else {
                self.streak = Some(streak);
            }
        }
        // PENDING begins and ends without a confirmed change: announce it too.
        let shown_after = self.shown();
        if shown_after != shown_before
            && !decisions
                .iter()
                .any(|d| matches!(d, Decision::Changed { .. }))
        {
            decisions.push(Decision::Changed {
                from: shown_before,
                to: shown_after,
                since: o.slot,
            });
        }
        decisions
    }

    fn confirm(
        &mut self,
        streak: Streak,
        seen: State,
        o: &Observation,
        from: State,
        decisions: &mut Vec<Decision>,
    ) {
        if streak.toward == State::Down {
            let incident = Incident {
                opened_at: streak.first_slot,
                confirmed_at: o.slot,
                cause: streak.first_cause.clone(),
                opened_by: streak.first_result,
                resolved_at: None,
                closed_by: None,
            };
            self.set(State::Down, streak.first_slot, from, decisions);
            self.incident = Some(incident.clone());
            decisions.push(Decision::Opened(incident));
        } else if self.state == State::Down {
            // Back from DOWN: the state of the last passing result, since the first one.
            self.set(seen, streak.first_slot, from, decisions);
            if let Some(mut incident) = self.incident.take() {
                incident.resolved_at = Some(streak.first_slot);
                incident.closed_by = Some(streak.first_result);
                decisions.push(Decision::Resolved(incident));
            }
        } else {
            self.set(streak.toward, streak.first_slot, from, decisions);
        }
    }

    fn set(&mut self, to: State, since: DateTime<Utc>, from: State, decisions: &mut Vec<Decision>) {
        self.state = to;
        self.since = Some(since);
        self.streak = None;
        if from != to {
            decisions.push(Decision::Changed { from, to, since });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn slot(n: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap() + chrono::Duration::minutes(n)
    }

    fn obs(n: i64, verdict: Verdict) -> Observation {
        Observation {
            slot: slot(n),
            verdict,
            cause: (verdict == Verdict::Down).then(|| "timeout".to_owned()),
            result_id: 1000 + n,
        }
    }

    /// Applies `verdicts` (slot 0, 1, …) to a fresh tracker; every decision with its slot.
    fn run(verdicts: &[Verdict]) -> (Tracker, Vec<(i64, Decision)>) {
        let mut tracker = Tracker::default();
        let mut all = Vec::new();
        for (n, v) in verdicts.iter().enumerate() {
            let n = n as i64;
            for d in tracker.apply(Thresholds::default(), &obs(n, *v)) {
                all.push((n, d));
            }
        }
        (tracker, all)
    }

    fn incidents(decisions: &[(i64, Decision)]) -> Vec<&Decision> {
        decisions
            .iter()
            .map(|(_, d)| d)
            .filter(|d| matches!(d, Decision::Opened(_) | Decision::Resolved(_)))
            .collect()
    }

    use Verdict::{Degraded as G, Down as D, Up as U};

    #[test]
    fn failing_two_slots_of_every_three_never_opens_an_incident() {
        let pattern: Vec<Verdict> = (0..30).map(|i| if i % 3 == 2 { U } else { D }).collect();
        let (tracker, decisions) = run(&pattern);
        assert!(incidents(&decisions).is_empty(), "{decisions:?}");
        assert_ne!(tracker.state, State::Down);
        // It is seen failing, though.
        assert!(decisions.iter().any(|(_, d)| matches!(
            d,
            Decision::Changed {
                to: State::Pending,
                ..
            }
        )));
    }

    #[test]
    fn five_failures_open_one_incident_at_the_first_and_two_passes_resolve_it() {
        let (tracker, decisions) = run(&[U, U, D, D, D, D, D, U, U, U]);
        let found = incidents(&decisions);
        assert_eq!(found.len(), 2, "{decisions:?}");
        let Decision::Opened(opened) = found[0] else {
            panic!("{found:?}")
        };
        assert_eq!(opened.opened_at, slot(2));
        assert_eq!(opened.confirmed_at, slot(4));
        assert_eq!(opened.opened_by, 1002);
        assert_eq!(opened.cause.as_deref(), Some("timeout"));
        let Decision::Resolved(resolved) = found[1] else {
            panic!("{found:?}")
        };
        // Resolved when the second pass (slot 8) confirmed it, as of the first (slot 7).
        assert_eq!(resolved.resolved_at, Some(slot(7)));
        assert_eq!(resolved.closed_by, Some(1007));
        assert!(
            decisions
                .iter()
                .any(|(n, d)| *n == 8 && matches!(d, Decision::Resolved(_)))
        );
        assert_eq!((tracker.state, tracker.since), (State::Up, Some(slot(7))));
        let states: Vec<(i64, State, State)> = decisions
            .iter()
            .filter_map(|(n, d)| match d {
                Decision::Changed { from, to, .. } => Some((*n, *from, *to)),
                _ => None,
            })
            .collect();
        assert_eq!(
            states,
            [
                (0, State::Unknown, State::Up),
                (2, State::Up, State::Pending),
                (4, State::Pending, State::Down),
                (8, State::Down, State::Up),
            ]
        );
    }

    #[test]
    fn late_and_repeated_results_change_nothing() {
        let mut tracker = Tracker::default();
        let t = Thresholds::default();
        for n in 0..3 {
            tracker.apply(t, &obs(n, D));
        }
        assert_eq!(tracker.state, State::Down);
        let before = tracker.clone();
        assert!(tracker.apply(t, &obs(2, U)).is_empty());
        assert!(tracker.apply(t, &obs(1, U)).is_empty());
        assert_eq!(tracker, before);
    }

    #[test]
    fn degraded_is_counted_like_down_and_leaving_down_counts_any_pass() {
        let (tracker, _) = run(&[U, G, G, G]);
        assert_eq!(
            (tracker.state, tracker.since),
            (State::Degraded, Some(slot(1)))
        );
        let (tracker, _) = run(&[U, G, U, G]);
        assert_eq!(tracker.state, State::Up);
        // Down, then a degraded and an up pass: back, as the last one says.
        let (tracker, decisions) = run(&[D, D, D, G, U]);
        assert_eq!(tracker.state, State::Up);
        assert_eq!(incidents(&decisions).len(), 2);
    }

    #[test]
    fn a_new_target_that_fails_from_the_start_is_pending_then_down() {
        let (tracker, decisions) = run(&[D, D]);
        assert_eq!(tracker.shown(), State::Pending);
        assert!(incidents(&decisions).is_empty());
        let (tracker, _) = run(&[D, D, D]);
        assert_eq!(tracker.shown(), State::Down);
    }

    #[test]
    fn the_same_results_in_any_batching_decide_the_same() {
        // What a rebuild does (all at once) and what live batches do (one at a time, with
        // repeats from replays) agree.
        // Runs of each verdict, of pseudo-random lengths 1 to 6.
        let mut x: u64 = 42;
        let mut verdicts: Vec<Verdict> = Vec::new();
        while verdicts.len() < 300 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let v = [U, U, G, D][(x >> 33) as usize % 4];
            let len = 1 + (x >> 40) as usize % 6;
            verdicts.extend(std::iter::repeat_n(v, len));
        }
        let (rebuilt, all_at_once) = run(&verdicts);
        let mut live = Tracker::default();
        let mut live_decisions = Vec::new();
        let t = Thresholds::default();
        for (n, v) in verdicts.iter().enumerate() {
            let n = n as i64;
            // A replay repeats the previous two results before each new one.
            for back in [n - 2, n - 1] {
                if back >= 0 {
                    assert!(
                        live.apply(t, &obs(back, verdicts[back as usize]))
                            .is_empty()
                    );
                }
            }
            for d in live.apply(t, &obs(n, *v)) {
                live_decisions.push((n, d));
            }
        }
        assert_eq!(live, rebuilt);
        assert_eq!(live_decisions, all_at_once);
        assert!(!incidents(&all_at_once).is_empty());
    }
}
