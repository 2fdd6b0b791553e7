//! A target's state and its incidents, decided from its results in slot order (#13).
//!
//! Pure and deterministic: the ingest worker feeds each target's new results to the target's
//! [`Tracker`] inside the batch's transaction, and a rebuild feeds the stored results of a
//! period to a fresh one — the same results give the same decisions.
//!
//! The rules (thresholds per target, see [`Thresholds`]):
//! - DOWN is confirmed after `failures_before_down` consecutive DOWN results, DEGRADED after as
//!   many consecutive results that are not UP (a DOWN result counts toward DEGRADED too, so a
//!   target alternating between DOWN and DEGRADED is DEGRADED, never UP); UP again after
//!   `successes_before_up` consecutive UP results; leaving DOWN takes `successes_before_up`
//!   passing results (UP or DEGRADED), and the state then is the last one's;
//! - while DOWN results are being counted the state shows PENDING, since the first of them;
//! - confirming DOWN opens an incident, opened at the first failing slot and confirmed at the
//!   slot that reached the threshold, caused by the first failing result; leaving DOWN resolves
//!   it at the first passing slot;
//! - a result inside a maintenance window shows MAINTENANCE and counts for nothing: no incident
//!   opens, an open one stays open, and counting starts again after the window;
//! - with no result for two periods the ingest worker marks the target UNKNOWN; its next result
//!   brings the state back as it was (nothing is decided from a gap);
//! - before its first result a target is UNKNOWN; its first passing result makes it UP or
//!   DEGRADED at once, while DOWN is confirmed by the threshold as always.
//!
//! Order: results are applied in the order they arrived (live, the order of the target's
//! partition; a rebuild, the order of their keys, which the ingest worker assigns in that same
//! order), each only when its slot is after every slot that arrived before it — a result that
//! arrives after a later slot (a probe that outlived the next one) or again (a replay) is
//! ignored by both, so the state never moves backwards.

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
    /// No result yet, or none for two periods.
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

    /// The state [`State::as_str`] names.
    pub fn parse(text: &str) -> Option<State> {
        [
            State::Up,
            State::Degraded,
            State::Pending,
            State::Down,
            State::Paused,
            State::Maintenance,
            State::Unknown,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
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
    /// The slot falls inside a maintenance window that covers the target.
    pub in_maintenance: bool,
}

/// A change of what people see, as announced on [`crate::channels::STATES`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    pub target: i32,
    pub from: State,
    pub to: State,
    /// When the new state began (a slot).
    pub since: DateTime<Utc>,
}

/// A run of consecutive results of one kind, and how it began. The count stops at the largest
/// threshold (no run needs more), so a target that keeps passing stops changing its tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub count: u32,
    pub first_slot: DateTime<Utc>,
    pub first_result: i64,
    pub first_cause: Option<String>,
}

impl Run {
    fn extend(run: &mut Option<Run>, o: &Observation, cap: u32) {
        match run {
            Some(r) => r.count = (r.count + 1).min(cap.max(r.count)),
            None => {
                *run = Some(Run {
                    count: 1,
                    first_slot: o.slot,
                    first_result: o.result_id,
                    first_cause: o.cause.clone(),
                })
            }
        }
    }

    fn reached(run: &Option<Run>, needed: u32) -> bool {
        run.as_ref().is_some_and(|r| r.count >= needed.max(1))
    }
}

/// The runs a tracker counts: DOWN results, results that are not UP (DOWN or DEGRADED: a DOWN
/// result counts toward DEGRADED too), passing results (UP or DEGRADED) and UP results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runs {
    pub down: Option<Run>,
    pub not_up: Option<Run>,
    pub passing: Option<Run>,
    pub up: Option<Run>,
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
    /// The state people see changed (`since`: when the new state began, a slot).
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

/// A target's state between results (stored per target as JSON; see the module's rules). Every
/// field has a default, so a tracker stored by an older build still reads (a field added later
/// starts empty, one removed is ignored) and [`Tracker::restore`] never stops a target for its
/// stored form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tracker {
    /// The confirmed state: UNKNOWN before the first result, then UP, DEGRADED or DOWN (what
    /// people see may differ: see [`Tracker::shown`]).
    pub state: State,
    pub since: Option<DateTime<Utc>>,
    pub runs: Runs,
    pub incident: Option<Incident>,
    /// Set while results arrive inside a maintenance window: the first such slot.
    pub maintenance_since: Option<DateTime<Utc>>,
    /// Set when results stopped arriving (the ingest worker's sweep): the first missing slot.
    pub unknown_since: Option<DateTime<Utc>>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            state: State::Unknown,
            since: None,
            runs: Runs::default(),
            incident: None,
            maintenance_since: None,
            unknown_since: None,
        }
    }
}

impl Tracker {
    /// A stored tracker, or — when its JSON is not one (damaged, or from a build that shaped it
    /// differently) — a fresh one and why, for the caller to log: a target starts over rather
    /// than stopping its partition.
    pub fn restore(json: &str) -> (Tracker, Option<String>) {
        match serde_json::from_str(json) {
            Ok(tracker) => (tracker, None),
            Err(e) => (Tracker::default(), Some(e.to_string())),
        }
    }

    /// The state people see: UNKNOWN while results are missing, MAINTENANCE inside a window,
    /// PENDING while DOWN results are being counted, the confirmed state otherwise.
    pub fn shown(&self) -> State {
        if self.unknown_since.is_some() {
            State::Unknown
        } else if self.maintenance_since.is_some() {
            State::Maintenance
        } else if self.runs.down.is_some() && self.state != State::Down {
            State::Pending
        } else {
            self.state
        }
    }

    /// Since when the shown state holds (a slot).
    pub fn shown_since(&self) -> Option<DateTime<Utc>> {
        match self.shown() {
            State::Unknown if self.unknown_since.is_some() => self.unknown_since,
            State::Maintenance => self.maintenance_since,
            State::Pending => self.runs.down.as_ref().map(|run| run.first_slot),
            _ => self.since,
        }
    }

    /// No result since `since` (the first missing slot): UNKNOWN until the next one, which
    /// brings back the state as it was (the runs are kept, nothing is decided from the gap).
    pub fn mark_unknown(&mut self, since: DateTime<Utc>) -> Option<Decision> {
        let from = self.shown();
        if self.unknown_since.is_some() {
            return None;
        }
        self.unknown_since = Some(since);
        Some(Decision::Changed {
            from,
            to: State::Unknown,
            since,
        })
    }

    /// Applies the results of one target in the order they arrived, each only when its slot is
    /// after every slot applied before it (`last_slot`: the latest slot among the target's
    /// results that arrived earlier); a late or repeated result decides nothing. The decisions,
    /// each with the result that made it.
    pub fn apply_in_order<'a>(
        &mut self,
        t: Thresholds,
        mut last_slot: Option<DateTime<Utc>>,
        observations: impl IntoIterator<Item = &'a Observation>,
    ) -> Vec<(i64, Decision)> {
        let mut decisions = Vec::new();
        for o in observations {
            if last_slot.is_some_and(|last| o.slot <= last) {
                continue;
            }
            last_slot = Some(o.slot);
            decisions.extend(self.apply(t, o).into_iter().map(|d| (o.result_id, d)));
        }
        decisions
    }

    /// The runs `observations` leave behind (applied in order, each after the last slot), counted
    /// as [`Tracker::apply`] counts them but without deciding anything or dropping a run: what a
    /// replay that starts in the middle of a target's history continues from, whatever state
    /// it restores.
    pub fn counted_runs(t: Thresholds, observations: &[Observation]) -> Runs {
        let mut tracker = Tracker::default();
        let mut last: Option<DateTime<Utc>> = None;
        for o in observations {
            if last.is_some_and(|l| o.slot <= l) {
                continue;
            }
            last = Some(o.slot);
            if o.in_maintenance {
                tracker.runs = Runs::default();
            } else {
                tracker.count(t, o);
            }
        }
        tracker.runs
    }

    /// Applies one result (the caller keeps slot order: see [`Tracker::apply_in_order`]); what
    /// it decided: the change people see first, then the incident opened or resolved.
    pub fn apply(&mut self, t: Thresholds, o: &Observation) -> Vec<Decision> {
        let before = self.shown();
        self.unknown_since = None;
        let mut decisions = Vec::new();
        if o.in_maintenance {
            // Nothing counts inside a window; the confirmed state (and an open incident) waits.
            self.runs = Runs::default();
            self.maintenance_since.get_or_insert(o.slot);
        } else {
            self.maintenance_since = None;
            self.count(t, o);
            self.decide(t, o, &mut decisions);
            self.forget_unused_runs();
        }
        let after = self.shown();
        if after != before {
            let since = self.shown_since().unwrap_or(o.slot);
            decisions.insert(
                0,
                Decision::Changed {
                    from: before,
                    to: after,
                    since,
                },
            );
        }
        decisions
    }

    /// Drops the runs the confirmed state never consults (UP: the passing and UP runs; DOWN:
    /// the DOWN and not-UP runs; DEGRADED: the not-UP and passing runs; a new target: all but
    /// the DOWN run): they decide nothing, and a target that keeps its state then keeps its
    /// tracker unchanged from its first result on, so nothing is written for it.
    fn forget_unused_runs(&mut self) {
        let runs = &mut self.runs;
        match self.state {
            State::Up => (runs.passing, runs.up) = (None, None),
            State::Down => (runs.down, runs.not_up) = (None, None),
            State::Degraded => (runs.not_up, runs.passing) = (None, None),
            State::Unknown => (runs.not_up, runs.passing, runs.up) = (None, None, None),
            State::Pending | State::Paused | State::Maintenance => {}
        }
    }

    fn count(&mut self, t: Thresholds, o: &Observation) {
        let cap = t.failures_before_down.max(t.successes_before_up).max(1);
        let runs = &mut self.runs;
        match o.verdict {
            Verdict::Down => {
                Run::extend(&mut runs.down, o, cap);
                Run::extend(&mut runs.not_up, o, cap);
                (runs.passing, runs.up) = (None, None);
            }
            Verdict::Degraded => {
                Run::extend(&mut runs.not_up, o, cap);
                Run::extend(&mut runs.passing, o, cap);
                (runs.down, runs.up) = (None, None);
            }
            Verdict::Up => {
                Run::extend(&mut runs.passing, o, cap);
                Run::extend(&mut runs.up, o, cap);
                (runs.down, runs.not_up) = (None, None);
            }
        }
    }

    fn decide(&mut self, t: Thresholds, o: &Observation, decisions: &mut Vec<Decision>) {
        let (fail, pass) = (t.failures_before_down, t.successes_before_up);
        let first = |run: &Option<Run>| run.clone().expect("a reached run exists");
        match self.state {
            State::Down if Run::reached(&self.runs.passing, pass) => {
                let run = first(&self.runs.passing);
                (self.state, self.since) = (State::of(o.verdict), Some(run.first_slot));
                if let Some(mut incident) = self.incident.take() {
                    incident.resolved_at = Some(run.first_slot);
                    incident.closed_by = Some(run.first_result);
                    decisions.push(Decision::Resolved(incident));
                }
            }
            State::Down => {}
            _ if Run::reached(&self.runs.down, fail) => {
                let run = first(&self.runs.down);
                (self.state, self.since) = (State::Down, Some(run.first_slot));
                let incident = Incident {
                    opened_at: run.first_slot,
                    confirmed_at: o.slot,
                    cause: run.first_cause,
                    opened_by: run.first_result,
                    resolved_at: None,
                    closed_by: None,
                };
                self.incident = Some(incident.clone());
                decisions.push(Decision::Opened(incident));
            }
            // A new target's first passing result: no run to wait for.
            State::Unknown if o.verdict != Verdict::Down => {
                (self.state, self.since) = (State::of(o.verdict), Some(o.slot));
            }
            State::Up if Run::reached(&self.runs.not_up, fail) => {
                let run = first(&self.runs.not_up);
                (self.state, self.since) = (State::Degraded, Some(run.first_slot));
            }
            State::Degraded if Run::reached(&self.runs.up, pass) => {
                let run = first(&self.runs.up);
                (self.state, self.since) = (State::Up, Some(run.first_slot));
            }
            _ => {}
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
            in_maintenance: false,
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
        let down: Vec<Observation> = (0..3).map(|n| obs(n, D)).collect();
        tracker.apply_in_order(t, None, &down);
        assert_eq!(tracker.state, State::Down);
        let before = tracker.clone();
        // Slot 2 again, then slot 1 late: after slot 2 arrived, neither counts.
        let late = [obs(2, U), obs(1, U)];
        assert!(tracker.apply_in_order(t, Some(slot(2)), &late).is_empty());
        // In one batch: slot 5 arrives before slot 4, which is then ignored.
        let batch = [obs(5, U), obs(4, U)];
        let decided = tracker.apply_in_order(t, Some(slot(2)), &batch);
        assert_eq!(tracker, {
            let mut expected = before.clone();
            expected.apply(t, &obs(5, U));
            expected
        });
        assert!(decided.iter().all(|(id, _)| *id == 1005), "{decided:?}");
    }

    #[test]
    fn a_steady_target_keeps_its_tracker_unchanged_from_its_first_result() {
        let t = Thresholds::default();
        for verdict in [U, G, D] {
            let mut tracker = Tracker::default();
            // Down needs its threshold first; UP and DEGRADED hold from the first result.
            let settle = if verdict == D { 3 } else { 1 };
            for n in 0..settle {
                tracker.apply(t, &obs(n, verdict));
            }
            let steady = tracker.clone();
            for n in settle..50 {
                assert!(tracker.apply(t, &obs(n, verdict)).is_empty(), "{verdict:?}");
            }
            assert_eq!(tracker, steady, "{verdict:?}");
            assert_eq!(tracker.runs, Runs::default(), "{verdict:?}");
        }
    }

    #[test]
    fn unknown_comes_back_to_the_state_it_was_without_an_incident() {
        let t = Thresholds::default();
        let (mut tracker, _) = run(&[U, U]);
        assert_eq!(
            tracker.mark_unknown(slot(2)),
            Some(Decision::Changed {
                from: State::Up,
                to: State::Unknown,
                since: slot(2)
            })
        );
        assert_eq!(tracker.mark_unknown(slot(3)), None, "marked once");
        assert_eq!(
            (tracker.shown(), tracker.shown_since()),
            (State::Unknown, Some(slot(2)))
        );
        let back = tracker.apply(t, &obs(6, U));
        assert_eq!(
            back,
            [Decision::Changed {
                from: State::Unknown,
                to: State::Up,
                since: slot(0)
            }]
        );
        // Failing before and after the gap: still counted as one run.
        let (mut tracker, _) = run(&[U, D, D]);
        tracker.mark_unknown(slot(3));
        let decided = tracker.apply(t, &obs(7, D));
        assert!(matches!(decided[1], Decision::Opened(ref i) if i.opened_at == slot(1)));
    }

    #[test]
    fn nothing_counts_inside_a_window_and_an_open_incident_stays_open() {
        let t = Thresholds::default();
        let inside = |n: i64, v: Verdict| Observation {
            in_maintenance: true,
            ..obs(n, v)
        };
        let (mut tracker, _) = run(&[U, D, D]);
        let mut decided = Vec::new();
        for n in 3..10 {
            decided.extend(tracker.apply(t, &inside(n, D)));
        }
        assert_eq!(
            decided,
            [Decision::Changed {
                from: State::Pending,
                to: State::Maintenance,
                since: slot(3)
            }]
        );
        // After the window the count starts again: two failures are PENDING, not DOWN.
        tracker.apply(t, &obs(10, D));
        tracker.apply(t, &obs(11, D));
        assert_eq!(tracker.shown(), State::Pending);
        assert_eq!(tracker.shown_since(), Some(slot(10)));
        // Down before the window: the incident stays open through it and after it.
        let (mut tracker, _) = run(&[D, D, D]);
        tracker.apply(t, &inside(3, U));
        tracker.apply(t, &inside(4, U));
        assert_eq!(tracker.shown(), State::Maintenance);
        assert!(tracker.incident.is_some());
        tracker.apply(t, &obs(5, U));
        assert_eq!(tracker.shown(), State::Down);
        let resolved = tracker.apply(t, &obs(6, U));
        assert!(matches!(resolved[1], Decision::Resolved(ref i) if i.resolved_at == Some(slot(5))));
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
        let all: Vec<Observation> = verdicts
            .iter()
            .enumerate()
            .map(|(n, v)| obs(n as i64, *v))
            .collect();
        let mut n = 0;
        while n < all.len() {
            // Batches of 1 to 4 results, each preceded by a replay of the previous two.
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = 1 + (x >> 40) as usize % 4;
            let end = (n + len).min(all.len());
            let last = n.checked_sub(1).map(|i| all[i].slot);
            let batch = all[n.saturating_sub(2)..end].iter();
            for (id, d) in live.apply_in_order(t, last, batch) {
                live_decisions.push((id - 1000, d));
            }
            n = end;
        }
        assert_eq!(live, rebuilt);
        assert_eq!(live_decisions, all_at_once);
        assert!(!incidents(&all_at_once).is_empty());
    }

    #[test]
    fn down_counts_toward_degraded_and_pending_shows_since_the_first_failure() {
        let (tracker, decisions) = run(&[U, D, D, G, D, D, G, D, D, G]);
        assert_eq!(tracker.state, State::Degraded, "{decisions:?}");
        assert_eq!(tracker.since, Some(slot(1)));
        assert!(incidents(&decisions).is_empty());
        let (tracker, decisions) = run(&[U, U, D, D]);
        assert_eq!(tracker.shown(), State::Pending);
        assert_eq!(tracker.shown_since(), Some(slot(2)));
        assert!(decisions.iter().any(|(n, d)| *n == 2
            && *d
                == Decision::Changed {
                    from: State::Up,
                    to: State::Pending,
                    since: slot(2)
                }));
        // Back from PENDING: UP as it was, since it was.
        let (tracker, decisions) = run(&[U, U, D, U]);
        assert_eq!((tracker.shown(), tracker.since), (State::Up, Some(slot(0))));
        assert!(decisions.iter().any(|(n, d)| *n == 3
            && *d
                == Decision::Changed {
                    from: State::Pending,
                    to: State::Up,
                    since: slot(0)
                }));
    }

    #[test]
    fn a_replay_from_the_middle_continues_the_runs_whatever_state_it_restores() {
        // Down, then one pass before the period starts: restored DOWN with its incident and the
        // pass counted, the next pass resolves it at the first one, as live.
        let t = Thresholds::default();
        let (live, _) = run(&[D, D, D, U]);
        let before: Vec<Observation> = [D, D, D, U]
            .iter()
            .enumerate()
            .map(|(n, v)| obs(n as i64, *v))
            .collect();
        let mut replay = Tracker {
            state: State::Down,
            since: Some(slot(0)),
            incident: live.incident.clone(),
            runs: Tracker::counted_runs(t, &before),
            ..Tracker::default()
        };
        let resolved = replay.apply(t, &obs(4, U));
        assert!(
            resolved
                .iter()
                .any(|d| matches!(d, Decision::Resolved(i) if i.resolved_at == Some(slot(3)))),
            "{resolved:?}"
        );
    }

    #[test]
    fn stored_trackers_read_back_and_a_damaged_one_starts_over() {
        let (tracker, _) = run(&[U, D, D, D]);
        let json = serde_json::to_string(&tracker).unwrap();
        assert_eq!(Tracker::restore(&json), (tracker, None));
        // An older form without `runs`: read, with empty runs.
        let older = r#"{"state":"DOWN","since":"2026-11-30T12:01:00Z","last_slot":"2026-11-30T12:03:00Z","incident":null}"#;
        let (tracker, why) = Tracker::restore(older);
        assert_eq!(
            (tracker.state, tracker.runs, why),
            (State::Down, Runs::default(), None)
        );
        let (tracker, why) = Tracker::restore(r#"{"state":"SIDEWAYS"}"#);
        assert_eq!(tracker, Tracker::default());
        assert!(why.unwrap().contains("SIDEWAYS"));
    }
}
