//! A target's state and its incidents, decided from its results in slot order (#13, started).
//!
//! Pure and deterministic: the ingest worker feeds each target's new results, in slot order, to
//! the target's [`Tracker`] inside the batch's transaction, and a rebuild feeds the stored
//! results of a period to a fresh one — the same results give the same decisions. A result for
//! a slot at or before the last one applied (late, or repeated by a replay) changes nothing.
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
//! - before its first result a target is UNKNOWN; its first passing result makes it UP or
//!   DEGRADED at once, while DOWN is confirmed by the threshold as always.
//!
//! Results are applied in the order they arrive, each after the last slot applied: live, the
//! order of the target's partition; a rebuild must feed them in that same order (by result key)
//! for the same decisions — a result that arrives after a later slot (a probe that outlived the
//! next one) is ignored by both.

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

/// What an incident says caused it: the failure class, or for a failed assertion which one
/// and what it expected (`assertion 1: BODY_TEXT NOT_CONTAINS Error`).
pub fn cause(
    failure_class: Option<&str>,
    failures: &[crate::assertion::Failure],
) -> Option<String> {
    match (failure_class, failures.first()) {
        (Some("assertion"), Some(first)) => {
            Some(format!("assertion {}: {}", first.index, first.expected))
        }
        (class, _) => class.map(str::to_owned),
    }
}

/// A run of consecutive results of one kind, and how it began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub count: u32,
    pub first_slot: DateTime<Utc>,
    pub first_result: i64,
    pub first_cause: Option<String>,
}

impl Run {
    fn extend(run: &mut Option<Run>, o: &Observation) {
        match run {
            Some(r) => r.count += 1,
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

/// A target's state between results (stored per target as JSON; see the module's rules). Every
/// field has a default, so a tracker stored by an older build still reads (a field added later
/// starts empty) and [`Tracker::restore`] never stops a target for its stored form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tracker {
    /// The confirmed state (never PENDING: see [`Tracker::shown`]).
    pub state: State,
    pub since: Option<DateTime<Utc>>,
    pub last_slot: Option<DateTime<Utc>>,
    pub runs: Runs,
    pub incident: Option<Incident>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            state: State::Unknown,
            since: None,
            last_slot: None,
            runs: Runs::default(),
            incident: None,
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

    /// The state people see: PENDING while DOWN results are being counted.
    pub fn shown(&self) -> State {
        match &self.runs.down {
            Some(_) if self.state != State::Down => State::Pending,
            _ => self.state,
        }
    }

    /// Since when the shown state holds: for PENDING, the first failing slot.
    pub fn shown_since(&self) -> Option<DateTime<Utc>> {
        match (&self.runs.down, self.shown()) {
            (Some(run), State::Pending) => Some(run.first_slot),
            _ => self.since,
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
        let runs = &mut self.runs;
        match o.verdict {
            Verdict::Down => {
                Run::extend(&mut runs.down, o);
                Run::extend(&mut runs.not_up, o);
                (runs.passing, runs.up) = (None, None);
            }
            Verdict::Degraded => {
                Run::extend(&mut runs.not_up, o);
                Run::extend(&mut runs.passing, o);
                (runs.down, runs.up) = (None, None);
            }
            Verdict::Up => {
                Run::extend(&mut runs.passing, o);
                Run::extend(&mut runs.up, o);
                (runs.down, runs.not_up) = (None, None);
            }
        }
        let mut decisions = Vec::new();
        let (fail, pass) = (t.failures_before_down, t.successes_before_up);
        match self.state {
            State::Down if Run::reached(&self.runs.passing, pass) => {
                let run = self.runs.passing.clone().expect("reached");
                self.set(
                    State::of(o.verdict),
                    run.first_slot,
                    shown_before,
                    &mut decisions,
                );
                if let Some(mut incident) = self.incident.take() {
                    incident.resolved_at = Some(run.first_slot);
                    incident.closed_by = Some(run.first_result);
                    decisions.push(Decision::Resolved(incident));
                }
            }
            State::Down => {}
            _ if Run::reached(&self.runs.down, fail) => {
                let run = self.runs.down.clone().expect("reached");
                self.set(State::Down, run.first_slot, shown_before, &mut decisions);
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
                self.set(State::of(o.verdict), o.slot, shown_before, &mut decisions);
            }
            State::Up if Run::reached(&self.runs.not_up, fail) => {
                let run = self.runs.not_up.clone().expect("reached");
                self.set(
                    State::Degraded,
                    run.first_slot,
                    shown_before,
                    &mut decisions,
                );
            }
            State::Degraded if Run::reached(&self.runs.up, pass) => {
                let run = self.runs.up.clone().expect("reached");
                self.set(State::Up, run.first_slot, shown_before, &mut decisions);
            }
            _ => {}
        }
        // PENDING begins and ends without a confirmed change: announce it too.
        let shown_after = self.shown();
        if shown_after != shown_before
            && !decisions
                .iter()
                .any(|d| matches!(d, Decision::Changed { .. }))
        {
            // Entering PENDING: since the first failing slot; leaving it: the confirmed state,
            // unchanged, since when it held.
            let since = self.shown_since();
            decisions.push(Decision::Changed {
                from: shown_before,
                to: shown_after,
                since: since.unwrap_or(o.slot),
            });
        }
        decisions
    }

    fn set(&mut self, to: State, since: DateTime<Utc>, from: State, decisions: &mut Vec<Decision>) {
        self.state = to;
        self.since = Some(since);
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

    #[test]
    fn an_incident_names_the_failed_assertion() {
        let failure = crate::assertion::Failure {
            index: 1,
            expected: "BODY_TEXT NOT_CONTAINS Error".into(),
            found: "500 Internal Error".into(),
        };
        assert_eq!(
            cause(Some("assertion"), &[failure]).as_deref(),
            Some("assertion 1: BODY_TEXT NOT_CONTAINS Error")
        );
        assert_eq!(cause(Some("timeout"), &[]).as_deref(), Some("timeout"));
        assert_eq!(cause(None, &[]), None);
    }
}
