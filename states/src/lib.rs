//! Target states and incidents in PostgreSQL (#13): the statements around the pure
//! [`entity::state::Tracker`], shared by the ingest worker (which decides, in the transaction
//! that stores the results and moves the consumer positions) and by a rebuild (the command and
//! the API's mutation).
//!
//! Guarantees:
//! - **once**: a decision is written in the transaction of the results that made it, so a
//!   crash, a kill or a replay repeats none and loses none; an incident is unique per
//!   (target, state, first failing slot), so even a bug could not store one twice;
//! - **one writer per target**: the ingest worker that owns the target's partition decides
//!   for it (the batch's positions are guarded first, so a consumer that lost the partition
//!   stops there); a rebuild takes [`STATES_LOCK`] exclusively per chunk, which every deciding
//!   batch takes shared, so the two wait for each other instead of interleaving — and a batch
//!   takes no lock per target;
//! - **the same from the same results**: live and rebuild feed the tracker the same results in
//!   the same order — by result key, which the ingest worker assigns in arrival order (one
//!   batch's rows go in with one `INSERT … SELECT FROM unnest`, in record order, from a
//!   sequence without a per-session cache) — each only when its slot is after every slot that
//!   arrived before it ([`LATE_SQL`] live, a running maximum in a rebuild).

pub mod outbox;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use entity::Verdict;
use entity::channels;
use entity::maintenance::{Schedule, Scope, Window};
use entity::state::{Decision, Incident, Observation, State, StateChange, Thresholds, Tracker};
use sea_orm::sea_query::{ArrayType, Value};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, Statement, TransactionTrait,
};

/// What caused a failing result, in SQL over `monitor_results` (alias `r`): its failure class
/// (`timeout`), its status when that was the failure (`status 503`), or for a failed assertion
/// which one and what it expected (`assertion 1: BODY_TEXT NOT_CONTAINS Error`).
pub const CAUSE_SQL: &str = "CASE WHEN r.failure_class = 'assertion' \
         AND jsonb_typeof(r.assertion_failures -> 0) = 'object' \
     THEN 'assertion ' || coalesce(r.assertion_failures -> 0 ->> 'index', '?') || ': ' \
          || coalesce(r.assertion_failures -> 0 ->> 'expected', '') \
     ELSE coalesce(r.failure_class, 'status ' || r.http_status) END";

/// Whether a result just inserted (alias `r`) is late: a result of its target stored before it
/// has its slot or a later one. Evaluated in the INSERT's `RETURNING`, whose snapshot does not
/// see the statement's own rows, so "before" is "by an earlier statement" — earlier batches and
/// earlier parts of this one. One index probe on (target, slot) that finds nothing for a result
/// in order, and no row to lock or write.
pub const LATE_SQL: &str = "EXISTS (SELECT 1 FROM monitor_results e \
     WHERE e.urltarget_fk = r.urltarget_fk AND e.scheduled_at >= r.scheduled_at)";

/// Taken shared by every batch that decides and exclusively by a rebuild's transaction: a
/// rebuild's chunk and live decisions never interleave, and a batch takes no lock per target.
pub const STATES_LOCK: i64 = 0x7069_6e67_7374_6174;

/// What deciding needs to know of a batch's target, read together with the target's lock (the
/// ingest worker's one statement per batch for its targets: [`TARGETS_SQL`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetRow {
    pub failures_before_down: Option<i32>,
    pub successes_before_up: Option<i32>,
    pub tags: Vec<String>,
    pub paused: bool,
    /// The stored tracker (None: no state yet).
    pub tracker: Option<String>,
    pub partition: Option<i32>,
}

/// The targets `$1` that exist, locked against removal until the transaction ends, with what
/// deciding needs (after [`lock_shared`], so a rebuild's work is seen whole or not at all).
/// The targets are the statement's only scan, as before states existed (their state comes from
/// subqueries): a join or an `ORDER BY` would change the order the rows are locked in, and a
/// bulk `UPDATE` of targets (which locks them in that same scan order) then deadlocked with a
/// batch (found by the test that edits targets while results stream).
///
/// The stored state comes from one subquery (one index probe a target, not two: 38.6 → 33.3 ms
/// for a batch of 5,000, the lock alone 11 ms), as `<partition> <tracker JSON>` text, the
/// partition empty when none is recorded (see [`TargetRow::from_row`]).
pub const TARGETS_SQL: &str = "SELECT t.urltargets_pk, t.failures_before_down, \
         t.successes_before_up, t.tags::text, t.paused, \
         (SELECT coalesce(s.kafka_partition::text, '') || ' ' || s.tracker::text \
            FROM target_states s WHERE s.urltarget_fk = t.urltargets_pk) \
     FROM urltargets t WHERE t.urltargets_pk = ANY($1) FOR KEY SHARE";

impl TargetRow {
    /// A row of [`TARGETS_SQL`]: the target's id and what it says.
    pub fn from_row(row: &QueryResult) -> Result<(i32, TargetRow), DbErr> {
        // `<partition> <tracker>` (see TARGETS_SQL; the columns' constraints make it so). Text
        // of any other shape is kept as the tracker: it then fails to parse, and the target
        // starts over, logged (see `read_tracker`), rather than the batch failing.
        let (partition, tracker) = match row.try_get_by_index::<Option<String>>(5)? {
            None => (None, None),
            Some(state) => {
                let split = state.split_once(' ').and_then(|(p, tracker)| match p {
                    "" => Some((None, tracker)),
                    p => p.parse::<i32>().ok().map(|p| (Some(p), tracker)),
                });
                match split {
                    Some((partition, tracker)) => (partition, Some(tracker.to_owned())),
                    None => (None, Some(state)),
                }
            }
        };
        Ok((
            row.try_get_by_index(0)?,
            TargetRow {
                failures_before_down: row.try_get_by_index(1)?,
                successes_before_up: row.try_get_by_index(2)?,
                tags: tags_of(&row.try_get_by_index::<String>(3)?),
                paused: row.try_get_by_index(4)?,
                tracker,
                partition,
            },
        ))
    }
}

/// Takes [`STATES_LOCK`] shared, for the transaction: before reading the trackers it decides
/// from (a rebuild's chunk takes it exclusively).
pub async fn lock_shared(txn: &impl ConnectionTrait) -> Result<(), DbErr> {
    txn.execute_raw(stmt(
        "SELECT pg_advisory_xact_lock_shared($1)",
        vec![STATES_LOCK.into()],
    ))
    .await?;
    Ok(())
}

/// A stored result, as the tracker needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: i64,
    pub target_id: i32,
    pub slot: DateTime<Utc>,
    pub verdict: Verdict,
    pub cause: Option<String>,
    /// A result of the target stored before this one has this slot or a later one (this one
    /// is late or repeated: it decides nothing).
    pub late: bool,
}

impl Stored {
    /// From a row of `id, target, slot, outcome, cause` (in that order), and `late` when the
    /// row has a sixth column saying so (see [`LATE_SQL`]).
    pub fn from_row(row: &QueryResult) -> Result<Stored, DbErr> {
        let outcome: String = row.try_get_by_index(3)?;
        Ok(Stored {
            late: row.try_get_by_index::<bool>(5).unwrap_or(false),
            id: row.try_get_by_index(0)?,
            target_id: row.try_get_by_index(1)?,
            slot: row.try_get_by_index(2)?,
            verdict: Verdict::parse(&outcome).ok_or_else(|| {
                DbErr::Custom(format!("unknown outcome {outcome:?} in a stored result"))
            })?,
            cause: row.try_get_by_index(4)?,
        })
    }

    fn observation(&self, in_maintenance: bool) -> Observation {
        Observation {
            slot: self.slot,
            verdict: self.verdict,
            cause: (self.verdict == Verdict::Down)
                .then(|| self.cause.clone())
                .flatten(),
            result_id: self.id,
            in_maintenance,
        }
    }
}

/// A maintenance window as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredWindow {
    pub id: i64,
    pub name: String,
    pub window: Window,
    pub created_at: DateTime<Utc>,
}

/// Most maintenance windows read (and stored: the API refuses more).
pub const MAX_WINDOWS: u64 = 1_000;

/// The maintenance windows, by id. One that does not read back as a valid window (changed by
/// hand in SQL) is skipped and logged: it covers nothing rather than stopping the ingest.
pub async fn load_windows(conn: &impl ConnectionTrait) -> Result<Vec<StoredWindow>, DbErr> {
    let rows = conn
        .query_all_raw(stmt(
            "SELECT window_pk, name, starts_at, ends_at, cron, time_zone, duration_seconds,                     all_targets, target_ids::text, tag_filters::text, created_at              FROM maintenance_windows ORDER BY window_pk LIMIT $1",
            vec![(MAX_WINDOWS as i64).into()],
        ))
        .await?;
    let mut windows = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.try_get_by_index(0)?;
        match window_of(row) {
            Ok(window) => windows.push(StoredWindow {
                id,
                name: row.try_get_by_index(1)?,
                window,
                created_at: row.try_get_by_index(10)?,
            }),
            Err(e) => tracing::error!(
                window_id = id,
                error = %e,
                "Maintenance window {id} is not valid as stored; it covers nothing."
            ),
        }
    }
    Ok(windows)
}

fn window_of(row: &QueryResult) -> Result<Window, String> {
    let get = |e: DbErr| e.to_string();
    let starts_at: Option<DateTime<Utc>> = row.try_get_by_index(2).map_err(get)?;
    let ends_at: Option<DateTime<Utc>> = row.try_get_by_index(3).map_err(get)?;
    let cron: Option<String> = row.try_get_by_index(4).map_err(get)?;
    let zone: Option<String> = row.try_get_by_index(5).map_err(get)?;
    let seconds: Option<i32> = row.try_get_by_index(6).map_err(get)?;
    let all: bool = row.try_get_by_index(7).map_err(get)?;
    let ids: String = row.try_get_by_index(8).map_err(get)?;
    let filters: String = row.try_get_by_index(9).map_err(get)?;
    let schedule = match (starts_at, ends_at, cron, zone, seconds) {
        (Some(from), Some(until), None, None, None) => Schedule::once(from, until),
        (None, None, Some(cron), Some(zone), Some(seconds)) => {
            Schedule::recurring(&cron, &zone, chrono::TimeDelta::seconds(i64::from(seconds)))
        }
        _ => return Err("neither one-off nor recurring".into()),
    }
    .map_err(|e| e.to_string())?;
    Window::new(schedule, scope_of(all, &ids, &filters)?).map_err(|e| e.to_string())
}

/// A scope as stored (maintenance windows, notification routes): all targets, or the target ids
/// and tag filters as JSON arrays, one of them not empty.
pub fn scope_of(all: bool, ids: &str, filters: &str) -> Result<Scope, String> {
    let ids: Vec<i32> = serde_json::from_str(ids).map_err(|e| e.to_string())?;
    let filters: Vec<String> = serde_json::from_str(filters).map_err(|e| e.to_string())?;
    if all {
        Ok(Scope::All)
    } else if !ids.is_empty() {
        Scope::targets(ids).map_err(|e| e.to_string())
    } else {
        Scope::tags(&filters).map_err(|e| e.to_string())
    }
}

/// Which targets are in maintenance when, over one period: each window's occurrences are
/// computed once, then every slot is a lookup.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    windows: Vec<(Scope, Vec<Interval>)>,
}

/// [start, end).
type Interval = (DateTime<Utc>, DateTime<Utc>);

impl Coverage {
    /// The occurrences of `windows` that overlap [from, until], every one of them (at most
    /// [`MAX_COVERED`] per window).
    pub fn new(windows: &[StoredWindow], from: DateTime<Utc>, until: DateTime<Utc>) -> Coverage {
        let until = until + chrono::TimeDelta::milliseconds(1);
        Coverage {
            windows: windows
                .iter()
                .map(|w| {
                    (
                        w.window.scope.clone(),
                        all_occurrences(&w.window, from, until),
                    )
                })
                .filter(|(_, occurrences)| !occurrences.is_empty())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Whether the target with this id and these tags is in a window at `at`.
    pub fn covers(&self, target: i32, tags: &[String], at: DateTime<Utc>) -> bool {
        self.windows.iter().any(|(scope, occurrences)| {
            // Sorted by start and all of one length (or one alone), so the last to open by `at`
            // closes last of those: one binary search.
            let opened = occurrences.partition_point(|(start, _)| *start <= at);
            opened > 0 && at < occurrences[opened - 1].1 && scope.covers(target, tags)
        })
    }

    /// The time the windows cover for this target, merged.
    pub fn intervals(&self, target: i32, tags: &[String]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        entity::maintenance::merge(
            self.windows
                .iter()
                .filter(|(scope, _)| scope.covers(target, tags))
                .flat_map(|(_, occurrences)| occurrences.iter().copied())
                .collect(),
        )
    }
}

/// Most occurrences of one window a [`Coverage`] holds (a window every minute over two years).
pub const MAX_COVERED: usize = 1_051_200;

/// Every occurrence of `window` overlapping [from, until), in the order they start:
/// `Window::occurrences` returns at most its own bound per call, so this asks again from the last
/// one's start until the period is covered.
fn all_occurrences(window: &Window, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Interval> {
    let mut all: Vec<Interval> = Vec::new();
    let mut start = from;
    loop {
        // Those still open at `start` and those opening before `until` (a call may reach past
        // `until` to look after `start`: what opens after `until` is left out).
        let found =
            window.occurrences(start, until.max(start + chrono::TimeDelta::milliseconds(1)));
        let full = found.len() >= entity::maintenance::MAX_OCCURRENCES;
        let last = all.last().map(|(s, _)| *s);
        let before = all.len();
        all.extend(
            found
                .into_iter()
                .filter(|(s, _)| last.is_none_or(|l| *s > l) && *s < until),
        );
        match all.last() {
            // From the end of the last one kept on, only those opening after it are open: the
            // next call cannot return the same ones again.
            Some((_, end)) if full && all.len() > before && all.len() < MAX_COVERED => {
                start = *end + chrono::TimeDelta::milliseconds(1);
            }
            _ => break,
        }
    }
    all.truncate(MAX_COVERED);
    all
}

/// The tags of a target as stored (JSON text), or none when unreadable.
fn tags_of(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

/// What deciding wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Decided {
    pub changes: Vec<StateChange>,
    pub opened: u64,
    pub resolved: u64,
    /// Incidents found stored already (none, unless something decided twice).
    pub repeated: u64,
    /// Trackers whose stored JSON could not be read: they started over (logged).
    pub restarted: u64,
}

fn array(ty: ArrayType, values: Vec<Value>) -> Value {
    Value::Array(ty, Some(Box::new(values)))
}

/// A PostgreSQL `int[]` parameter (for `unnest`).
pub fn ints(values: impl IntoIterator<Item = i32>) -> Value {
    array(
        ArrayType::Int,
        values.into_iter().map(|v| Value::Int(Some(v))).collect(),
    )
}

/// A PostgreSQL `bigint[]` parameter.
pub fn bigints(values: impl IntoIterator<Item = i64>) -> Value {
    array(
        ArrayType::BigInt,
        values.into_iter().map(|v| Value::BigInt(Some(v))).collect(),
    )
}

/// A PostgreSQL `text[]` parameter.
pub fn texts(values: impl IntoIterator<Item = String>) -> Value {
    array(
        ArrayType::String,
        values.into_iter().map(|v| Value::String(Some(v))).collect(),
    )
}

/// A time as text for an array ('' for none; the statements turn it back into NULL).
fn time_text(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_default()
}

/// A PostgreSQL statement with its parameters.
pub fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// One target's tracker as read (under the batch's shared lock, or a rebuild's row lock).
struct Held {
    tracker: Tracker,
    /// The tracker as stored (None: no state row yet, or one that could not be read).
    stored: Option<Tracker>,
    thresholds: Thresholds,
    /// The partition to record (None: unknown, for a state a rebuild created).
    partition: Option<i32>,
    /// The partition recorded.
    stored_partition: Option<i32>,
}

/// Decides the state of the targets of `stored` (results just inserted in `txn`, each with
/// the partition it arrived on), in `txn`, from what `known` read of them (after
/// [`lock_shared`]): applies their results in arrival order, writes the trackers that changed
/// (creating the missing ones), the incidents opened and resolved, and announces the changes.
pub async fn decide(
    txn: &impl ConnectionTrait,
    stored: &[(Stored, i32)],
    defaults: Thresholds,
    known: &std::collections::HashMap<i32, TargetRow>,
) -> Result<Decided, DbErr> {
    let mut by_target: BTreeMap<i32, (i32, Vec<&Stored>)> = BTreeMap::new();
    for (s, partition) in stored {
        let entry = by_target
            .entry(s.target_id)
            .or_insert((*partition, Vec::new()));
        entry.0 = *partition;
        entry.1.push(s);
    }
    if by_target.is_empty() {
        return Ok(Decided::default());
    }
    for (_, results) in by_target.values_mut() {
        results.sort_by_key(|s| s.id);
    }
    let mut held: BTreeMap<i32, Held> = BTreeMap::new();
    let mut tags: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    // Results of a paused target still on their way are decided, but not announced: people
    // see it PAUSED (and its state is announced when it is resumed).
    let mut paused: Vec<i32> = Vec::new();
    let mut decided = Decided::default();
    for (target, (partition, _)) in &by_target {
        // A target removed meanwhile is not known (its results were refused before this).
        let Some(row) = known.get(target) else {
            continue;
        };
        let (tracker, stored) = match &row.tracker {
            Some(json) => {
                let (tracker, damaged) = read_tracker(*target, json);
                decided.restarted += u64::from(damaged);
                let stored = (!damaged).then(|| tracker.clone());
                (tracker, stored)
            }
            None => (Tracker::default(), None),
        };
        held.insert(
            *target,
            Held {
                tracker,
                stored,
                thresholds: thresholds(defaults, row.failures_before_down, row.successes_before_up),
                partition: Some(*partition),
                stored_partition: row.partition,
            },
        );
        tags.insert(*target, row.tags.clone());
        if row.paused {
            paused.push(*target);
        }
    }
    let coverage = {
        let slots = stored.iter().map(|(s, _)| s.slot);
        let (from, until) = (slots.clone().min(), slots.max());
        match (from, until) {
            (Some(from), Some(until)) => Coverage::new(&load_windows(txn).await?, from, until),
            _ => Coverage::default(),
        }
    };

    let mut writes = Writes::default();
    for (target, (_, results)) in &by_target {
        // A target removed meanwhile has no row (its results were refused before this).
        let Some(h) = held.get_mut(target) else {
            continue;
        };
        let mine = tags.get(target).map_or(&[][..], Vec::as_slice);
        let observations: Vec<Observation> = results
            .iter()
            .filter(|s| !s.late)
            .map(|s| s.observation(coverage.covers(*target, mine, s.slot)))
            .collect();
        let mut decisions = h.tracker.apply_in_order(h.thresholds, None, &observations);
        if paused.contains(target) {
            decisions.retain(|(_, d)| !matches!(d, Decision::Changed { .. }));
        }
        writes.add(*target, h, decisions);
    }
    writes.write(txn, &mut decided).await?;
    Ok(decided)
}

fn thresholds(defaults: Thresholds, fail: Option<i32>, pass: Option<i32>) -> Thresholds {
    let own =
        |v: Option<i32>, default: u32| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(default);
    Thresholds {
        failures_before_down: own(fail, defaults.failures_before_down),
        successes_before_up: own(pass, defaults.successes_before_up),
    }
}

/// The stored tracker, or a fresh one when it cannot be read (true: logged as such).
fn read_tracker(target: i32, json: &str) -> (Tracker, bool) {
    match Tracker::restore(json) {
        (tracker, None) => (tracker, false),
        (tracker, Some(why)) => {
            tracing::error!(
                target_id = target,
                error = why,
                "The stored state of target {target} cannot be read; it starts over (a rebuild \
                 recomputes it from the stored results)."
            );
            (tracker, true)
        }
    }
}

type TrackerWrite = (i32, String, State, Option<DateTime<Utc>>, Option<i32>);

/// What a set of targets' decisions write, gathered to be written with one statement each.
#[derive(Default)]
struct Writes {
    /// (target, tracker JSON, state shown, since, partition).
    trackers: Vec<TrackerWrite>,
    opened: Vec<(i32, Incident)>,
    resolved: Vec<(i32, Incident)>,
    changes: Vec<StateChange>,
}

impl Writes {
    fn add(&mut self, target: i32, held: &Held, decisions: Vec<(i64, Decision)>) {
        let tracker = &held.tracker;
        let unchanged =
            held.stored.as_ref() == Some(tracker) && held.partition == held.stored_partition;
        if !unchanged {
            let json = serde_json::to_string(tracker).expect("a tracker is plain data");
            self.trackers.push((
                target,
                json,
                tracker.shown(),
                tracker.shown_since(),
                held.partition,
            ));
        }
        for (_, decision) in decisions {
            match decision {
                Decision::Changed { from, to, since } => self.changes.push(StateChange {
                    target,
                    from,
                    to,
                    since,
                }),
                Decision::Opened(incident) => self.opened.push((target, incident)),
                Decision::Resolved(incident) => self.resolved.push((target, incident)),
            }
        }
    }

    async fn write(self, txn: &impl ConnectionTrait, decided: &mut Decided) -> Result<(), DbErr> {
        if !self.trackers.is_empty() {
            let t = &self.trackers;
            txn.execute_raw(stmt(
                "INSERT INTO target_states \
                     (urltarget_fk, tracker, state, state_since, kafka_partition, updated_at) \
                 SELECT t, tr::jsonb, st, NULLIF(ss, '')::timestamptz, NULLIF(p, -1), now() \
                 FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::int[]) \
                     AS u(t, tr, st, ss, p) \
                 ON CONFLICT (urltarget_fk) DO UPDATE SET tracker = EXCLUDED.tracker, \
                     state = EXCLUDED.state, state_since = EXCLUDED.state_since, \
                     kafka_partition = coalesce(EXCLUDED.kafka_partition, \
                                                target_states.kafka_partition), \
                     updated_at = EXCLUDED.updated_at",
                vec![
                    ints(t.iter().map(|w| w.0)),
                    texts(t.iter().map(|w| w.1.clone())),
                    texts(t.iter().map(|w| w.2.as_str().to_owned())),
                    texts(t.iter().map(|w| time_text(w.3))),
                    ints(t.iter().map(|w| w.4.unwrap_or(-1))),
                ],
            ))
            .await?;
        }
        if !self.opened.is_empty() {
            let o = &self.opened;
            let inserted = txn
                .execute_raw(stmt(
                    "INSERT INTO incidents \
                         (urltarget_fk, state, cause, opened_at, confirmed_at, opened_by) \
                     SELECT t, 'down', NULLIF(c, ''), oa::timestamptz, ca::timestamptz, ob \
                     FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::bigint[]) \
                         AS u(t, c, oa, ca, ob) \
                     ON CONFLICT (urltarget_fk, state, opened_at) DO NOTHING",
                    vec![
                        ints(o.iter().map(|(t, _)| *t)),
                        texts(o.iter().map(|(_, i)| i.cause.clone().unwrap_or_default())),
                        texts(o.iter().map(|(_, i)| i.opened_at.to_rfc3339())),
                        texts(o.iter().map(|(_, i)| i.confirmed_at.to_rfc3339())),
                        bigints(o.iter().map(|(_, i)| i.opened_by)),
                    ],
                ))
                .await?
                .rows_affected();
            decided.opened += inserted;
            decided.repeated += o.len() as u64 - inserted;
        }
        if !self.resolved.is_empty() {
            let r = &self.resolved;
            let updated = txn
                .execute_raw(stmt(
                    "UPDATE incidents i SET resolved_at = u.ra::timestamptz, closed_by = u.cb \
                     FROM unnest($1::int[], $2::text[], $3::text[], $4::bigint[]) \
                         AS u(t, oa, ra, cb) \
                     WHERE i.urltarget_fk = u.t AND i.state = 'down' \
                       AND i.opened_at = u.oa::timestamptz AND i.resolved_at IS NULL",
                    vec![
                        ints(r.iter().map(|(t, _)| *t)),
                        texts(r.iter().map(|(_, i)| i.opened_at.to_rfc3339())),
                        texts(r.iter().map(|(_, i)| time_text(i.resolved_at))),
                        bigints(r.iter().map(|(_, i)| i.closed_by.unwrap_or_default())),
                    ],
                ))
                .await?
                .rows_affected();
            decided.resolved += updated;
            decided.repeated += r.len() as u64 - updated;
        }
        announce(txn, &self.changes).await?;
        decided.changes.extend(self.changes);
        Ok(())
    }
}

/// Announces `changes` on [`channels::STATES`] (delivered when the transaction commits).
async fn announce(txn: &impl ConnectionTrait, changes: &[StateChange]) -> Result<(), DbErr> {
    if changes.is_empty() {
        return Ok(());
    }
    txn.execute_raw(stmt(
        "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p",
        vec![
            channels::STATES.into(),
            texts(channels::state_payloads(changes)),
        ],
    ))
    .await?;
    Ok(())
}

/// How long without a result makes a target UNKNOWN: two of its periods (its frequency in
/// minutes times `minute`) plus `grace`, for probes in flight and batches on their way.
#[derive(Debug, Clone, Copy)]
pub struct Silence {
    pub minute: std::time::Duration,
    pub grace: std::time::Duration,
}

/// Marks UNKNOWN the targets of `partitions` (whose positions `txn` has guarded) that have
/// had no result for two periods as of `now` (paused targets aside), announcing each change.
/// The state's start is the first missing slot (or the target's resume, if later). The two
/// periods also count from when the target was last resumed, so a target resumed after a long
/// pause gets the time for its first probe.
pub async fn sweep(
    txn: &impl ConnectionTrait,
    partitions: &[i32],
    now: DateTime<Utc>,
    silence: Silence,
) -> Result<Vec<StateChange>, DbErr> {
    if partitions.is_empty() {
        return Ok(Vec::new());
    }
    let minute_ms = i64::try_from(silence.minute.as_millis()).unwrap_or(i64::MAX);
    let grace_ms = i64::try_from(silence.grace.as_millis()).unwrap_or(i64::MAX);
    let rows = txn
        .query_all_raw(stmt(
            "WITH due AS ( \
                 SELECT s.urltarget_fk AS t, s.state AS was, \
                        greatest(l.slot + t.monitor_frequency * $3::bigint \
                                 * interval '1 millisecond', t.resumed_at) AS since \
                 FROM target_states s \
                 JOIN urltargets t ON t.urltargets_pk = s.urltarget_fk \
                 CROSS JOIN LATERAL ( \
                     SELECT r.scheduled_at AS slot FROM monitor_results r \
                     WHERE r.urltarget_fk = s.urltarget_fk \
                     ORDER BY r.scheduled_at DESC LIMIT 1) l \
                 WHERE s.kafka_partition = ANY($1) AND s.state <> 'unknown' AND NOT t.paused \
                   AND l.slot + (2 * t.monitor_frequency * $3::bigint + $4::bigint) \
                       * interval '1 millisecond' < $2 \
                   AND (t.resumed_at IS NULL OR t.resumed_at + (2 * t.monitor_frequency \
                       * $3::bigint + $4::bigint) * interval '1 millisecond' < $2) \
                 ORDER BY s.urltarget_fk \
                 FOR UPDATE OF s) \
             UPDATE target_states s SET state = 'unknown', state_since = due.since, \
                 tracker = jsonb_set(s.tracker, '{unknown_since}', to_jsonb(due.since)), \
                 updated_at = now() \
             FROM due WHERE s.urltarget_fk = due.t \
             RETURNING due.t, due.was, due.since",
            vec![
                ints(partitions.iter().copied()),
                Value::ChronoDateTimeUtc(Some(now)),
                minute_ms.into(),
                grace_ms.into(),
            ],
        ))
        .await?;
    let mut changes = Vec::with_capacity(rows.len());
    for row in &rows {
        let was: String = row.try_get_by_index(1)?;
        changes.push(StateChange {
            target: row.try_get_by_index(0)?,
            from: State::parse(&was).unwrap_or(State::Unknown),
            to: State::Unknown,
            since: row.try_get_by_index(2)?,
        });
    }
    changes.sort_by_key(|c| c.target);
    announce(txn, &changes).await?;
    Ok(changes)
}

/// What a rebuild did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    pub targets: u64,
    pub results: u64,
    /// Incidents of the period as the rebuild decided them.
    pub incidents: u64,
    /// Incidents written (new or different) and removed (no longer decided).
    pub written: u64,
    pub removed: u64,
    pub changes: Vec<StateChange>,
}

/// Targets rebuilt per transaction: each transaction holds their rows' locks (the ingest
/// worker waits for those targets meanwhile) and their period's results in memory.
const REBUILD_CHUNK: usize = 20;

/// Recomputes the states of `targets` (all when `None`) and their incidents opened at or after
/// `since` (all stored results when `None`) from the stored results, with the thresholds and
/// windows as they are now — what the ingest worker would have decided had they been so all
/// along. The period always runs to now: the rebuilt tracker is the target's current state.
///
/// An incident opened before `since` and still open at `since` is the starting point: the
/// replay starts DOWN with it and resolves it (again) when the results say so. A target's
/// UNKNOWN mark stays (it is about the absence of results, not about them).
pub async fn rebuild(
    db: &DatabaseConnection,
    since: Option<DateTime<Utc>>,
    targets: Option<&[i32]>,
    defaults: Thresholds,
) -> Result<Rebuilt, DbErr> {
    let windows = load_windows(db).await?;
    let ids: Vec<i32> = match targets {
        Some(ids) => {
            let mut ids = ids.to_vec();
            ids.sort_unstable();
            ids.dedup();
            ids
        }
        None => db
            .query_all_raw(stmt(
                "SELECT urltargets_pk FROM urltargets ORDER BY urltargets_pk",
                vec![],
            ))
            .await?
            .iter()
            .map(|row| row.try_get_by_index::<i32>(0))
            .collect::<Result<_, _>>()?,
    };
    let mut report = Rebuilt::default();
    for chunk in ids.chunks(REBUILD_CHUNK) {
        let txn = db.begin().await?;
        rebuild_chunk(&txn, chunk, since, defaults, &windows, &mut report).await?;
        txn.commit().await?;
    }
    Ok(report)
}

/// Before a period that starts at `since`: the runs in progress then (a target two failures
/// into counting, say), from the last results before it — as many as the largest threshold —
/// so the replay counts on from them as live processing did. Only the runs: the state starts
/// afresh (or DOWN with the incident open then, which the caller restores).
async fn warm_up(
    txn: &impl ConnectionTrait,
    held: &mut BTreeMap<i32, Held>,
    tags: &BTreeMap<i32, Vec<String>>,
    since: DateTime<Utc>,
    windows: &[StoredWindow],
) -> Result<(), DbErr> {
    let depth = held
        .values()
        .map(|h| {
            h.thresholds
                .failures_before_down
                .max(h.thresholds.successes_before_up)
        })
        .max()
        .unwrap_or(1);
    let rows = txn
        .query_all_raw(stmt(
            &format!(
                "SELECT b.* FROM unnest($1::int[]) AS u(t) CROSS JOIN LATERAL ( \
                     SELECT r.monitor_results_pk, r.urltarget_fk, r.scheduled_at, r.outcome, \
                            {CAUSE_SQL} \
                     FROM monitor_results r \
                     WHERE r.urltarget_fk = u.t AND r.scheduled_at < $2 \
                     ORDER BY r.scheduled_at DESC LIMIT $3) AS b"
            ),
            vec![
                ints(held.keys().copied()),
                Value::ChronoDateTimeUtc(Some(since)),
                i64::from(depth).into(),
            ],
        ))
        .await?;
    let mut before: BTreeMap<i32, Vec<Stored>> = BTreeMap::new();
    let mut earliest = since;
    for row in &rows {
        let s = Stored::from_row(row)?;
        earliest = earliest.min(s.slot);
        before.entry(s.target_id).or_default().push(s);
    }
    let coverage = Coverage::new(windows, earliest, since);
    for (target, mut results) in before {
        let Some(h) = held.get_mut(&target) else {
            continue;
        };
        results.sort_by_key(|s| s.id);
        let mine = tags.get(&target).map_or(&[][..], Vec::as_slice);
        let observations: Vec<Observation> = results
            .iter()
            .map(|s| s.observation(coverage.covers(target, mine, s.slot)))
            .collect();
        h.tracker.runs = Tracker::counted_runs(h.thresholds, &observations);
    }
    Ok(())
}

async fn rebuild_chunk(
    txn: &impl ConnectionTrait,
    chunk: &[i32],
    since: Option<DateTime<Utc>>,
    defaults: Thresholds,
    windows: &[StoredWindow],
    report: &mut Rebuilt,
) -> Result<(), DbErr> {
    let since_value = Value::ChronoDateTimeUtc(since);
    let period_sql = format!(
        "SELECT r.monitor_results_pk, r.urltarget_fk, r.scheduled_at, r.outcome, {CAUSE_SQL} \
         FROM monitor_results r \
         JOIN unnest($1::int[], $3::bigint[]) AS u(t, after) ON r.urltarget_fk = u.t \
         WHERE ($2::timestamptz IS NULL OR r.scheduled_at >= $2) \
           AND r.monitor_results_pk > u.after \
         ORDER BY r.urltarget_fk, r.monitor_results_pk"
    );
    // The period's results first, without any lock (the long part); what arrives meanwhile is
    // read again under the lock.
    let mut results = txn
        .query_all_raw(stmt(
            &period_sql,
            vec![
                ints(chunk.iter().copied()),
                since_value.clone(),
                bigints(chunk.iter().map(|_| 0)),
            ],
        ))
        .await?;
    // Per target: another target's result with a lower key may still be uncommitted now (the
    // worker has several writers), but one target's results are stored one batch after the
    // other, in key order.
    let mut read_up_to: BTreeMap<i32, i64> = chunk.iter().map(|t| (*t, 0)).collect();
    for row in &results {
        let (id, target): (i64, i32) = (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
        read_up_to.entry(target).and_modify(|m| *m = (*m).max(id));
    }
    // The targets first, as the ingest worker and a removal lock them (before any other lock),
    // then live decisions wait while this chunk is written (and it waits for those in
    // progress), then their states.
    txn.execute_raw(stmt(
        "SELECT 1 FROM urltargets WHERE urltargets_pk = ANY($1) ORDER BY urltargets_pk \
         FOR KEY SHARE",
        vec![ints(chunk.iter().copied())],
    ))
    .await?;
    txn.execute_raw(stmt(
        "SELECT pg_advisory_xact_lock($1)",
        vec![STATES_LOCK.into()],
    ))
    .await?;
    results.extend(
        txn.query_all_raw(stmt(
            &period_sql,
            vec![
                ints(read_up_to.keys().copied()),
                since_value.clone(),
                bigints(read_up_to.values().copied()),
            ],
        ))
        .await?,
    );
    // Rows for targets with results and none yet (results stored before states existed).
    txn.execute_raw(stmt(
        "INSERT INTO target_states (urltarget_fk, state) \
         SELECT t, 'unknown' FROM unnest($1::int[]) AS t \
         WHERE EXISTS (SELECT 1 FROM monitor_results r WHERE r.urltarget_fk = t) \
         ORDER BY t ON CONFLICT (urltarget_fk) DO NOTHING",
        vec![ints(chunk.iter().copied())],
    ))
    .await?;
    let rows = txn
        .query_all_raw(stmt(
            "SELECT s.urltarget_fk, s.tracker::text, t.failures_before_down, \
                    t.successes_before_up, t.tags::text, s.kafka_partition \
             FROM target_states s JOIN urltargets t ON t.urltargets_pk = s.urltarget_fk \
             WHERE s.urltarget_fk = ANY($1) ORDER BY s.urltarget_fk FOR UPDATE OF s",
            vec![ints(chunk.iter().copied())],
        ))
        .await?;
    let mut held: BTreeMap<i32, Held> = BTreeMap::new();
    let mut tags: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for row in &rows {
        let target: i32 = row.try_get_by_index(0)?;
        let stored_json: String = row.try_get_by_index(1)?;
        tags.insert(target, tags_of(&row.try_get_by_index::<String>(4)?));
        let (current, damaged) = Tracker::restore(&stored_json);
        // The UNKNOWN mark is kept through the replay (see below).
        let tracker = Tracker {
            unknown_since: current.unknown_since,
            ..Tracker::default()
        };
        let partition: Option<i32> = row.try_get_by_index(5)?;
        held.insert(
            target,
            Held {
                tracker,
                stored: damaged.is_none().then(|| current.clone()),
                thresholds: thresholds(
                    defaults,
                    row.try_get_by_index(2)?,
                    row.try_get_by_index(3)?,
                ),
                partition,
                stored_partition: partition,
            },
        );
    }
    let targets: Vec<i32> = held.keys().copied().collect();
    if targets.is_empty() {
        return Ok(());
    }
    if let Some(since) = since {
        warm_up(txn, &mut held, &tags, since, windows).await?;
    }
    // Incidents open when the period starts.
    if since.is_some() {
        let open = txn
            .query_all_raw(stmt(
                "SELECT urltarget_fk, opened_at, confirmed_at, cause, opened_by FROM incidents \
                 WHERE urltarget_fk = ANY($1) AND state = 'down' AND opened_at < $2 \
                   AND (resolved_at IS NULL OR resolved_at >= $2)",
                vec![ints(targets.iter().copied()), since_value.clone()],
            ))
            .await?;
        for row in &open {
            let target: i32 = row.try_get_by_index(0)?;
            if let Some(h) = held.get_mut(&target) {
                let opened_at: DateTime<Utc> = row.try_get_by_index(1)?;
                h.tracker.state = State::Down;
                h.tracker.since = Some(opened_at);
                h.tracker.incident = Some(Incident {
                    opened_at,
                    confirmed_at: row.try_get_by_index(2)?,
                    cause: row.try_get_by_index(3)?,
                    opened_by: row.try_get_by_index(4)?,
                    resolved_at: None,
                    closed_by: None,
                });
            }
        }
    }
    let stored: Vec<Stored> = results
        .iter()
        .map(Stored::from_row)
        .collect::<Result<_, _>>()?;
    let coverage = {
        let slots = stored.iter().map(|s| s.slot);
        match (slots.clone().min(), slots.max()) {
            (Some(from), Some(until)) => Coverage::new(windows, from, until),
            _ => Coverage::default(),
        }
    };
    let mut by_target: BTreeMap<i32, Vec<Observation>> = BTreeMap::new();
    for s in stored {
        let mine = tags.get(&s.target_id).map_or(&[][..], Vec::as_slice);
        let inside = coverage.covers(s.target_id, mine, s.slot);
        by_target
            .entry(s.target_id)
            .or_default()
            .push(s.observation(inside));
    }
    report.results += results.len() as u64;

    // The incidents the replay decides, as they stand at its end (keyed by first failing slot).
    let mut incidents: Vec<(i32, Incident)> = Vec::new();
    let mut writes = Writes::default();
    for (target, h) in held.iter_mut() {
        report.targets += 1;
        let observations = by_target.remove(target).unwrap_or_default();
        let reopened = h.tracker.incident.clone();
        let unknown_since = h.tracker.unknown_since;
        let decisions = h.tracker.apply_in_order(h.thresholds, None, &observations);
        // A result clears the mark; the stored one was set after the last result arrived.
        h.tracker.unknown_since = unknown_since;
        let mut mine: BTreeMap<DateTime<Utc>, Incident> = BTreeMap::new();
        if let Some(i) = reopened {
            mine.insert(i.opened_at, i);
        }
        for (_, d) in &decisions {
            match d {
                Decision::Opened(i) | Decision::Resolved(i) => {
                    mine.insert(i.opened_at, i.clone());
                }
                Decision::Changed { .. } => {}
            }
        }
        incidents.extend(mine.into_values().map(|i| (*target, i)));
        // Only the tracker (and the change people see) is written by `Writes` here; the
        // incidents are reconciled below as a whole.
        let from = h.stored.clone().unwrap_or_default();
        writes.add(*target, h, Vec::new());
        if from.shown() != h.tracker.shown() {
            writes.changes.push(StateChange {
                target: *target,
                from: from.shown(),
                to: h.tracker.shown(),
                since: h.tracker.shown_since().unwrap_or_else(Utc::now),
            });
        }
    }
    report.incidents += incidents.len() as u64;
    let mut decided = Decided::default();
    report.changes.extend(writes.changes.iter().cloned());
    writes.write(txn, &mut decided).await?;

    // Incidents: the period's stored ones become exactly the replay's.
    let keep_targets = ints(incidents.iter().map(|(t, _)| *t));
    let keep_opened = texts(incidents.iter().map(|(_, i)| i.opened_at.to_rfc3339()));
    let removed = txn
        .execute_raw(stmt(
            "DELETE FROM incidents i WHERE i.urltarget_fk = ANY($1) AND i.state = 'down' \
               AND ($2::timestamptz IS NULL OR i.opened_at >= $2 \
                    OR i.resolved_at IS NULL OR i.resolved_at >= $2) \
               AND EXISTS (SELECT 1 FROM monitor_results m \
                           WHERE m.urltarget_fk = i.urltarget_fk AND m.scheduled_at <= i.opened_at) \
               AND (i.urltarget_fk, i.opened_at) NOT IN ( \
                   SELECT t, oa::timestamptz FROM unnest($3::int[], $4::text[]) AS u(t, oa))",
            vec![
                ints(targets.iter().copied()),
                since_value,
                keep_targets.clone(),
                keep_opened.clone(),
            ],
        ))
        .await?
        .rows_affected();
    report.removed += removed;
    if !incidents.is_empty() {
        let written = txn
            .execute_raw(stmt(
                "INSERT INTO incidents (urltarget_fk, state, cause, opened_at, confirmed_at, \
                                        resolved_at, opened_by, closed_by) \
                 SELECT t, 'down', NULLIF(c, ''), oa::timestamptz, ca::timestamptz, \
                        NULLIF(ra, '')::timestamptz, ob, NULLIF(cb, 0) \
                 FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], \
                             $6::bigint[], $7::bigint[]) AS u(t, c, oa, ca, ra, ob, cb) \
                 ON CONFLICT (urltarget_fk, state, opened_at) DO UPDATE SET \
                     cause = EXCLUDED.cause, confirmed_at = EXCLUDED.confirmed_at, \
                     resolved_at = EXCLUDED.resolved_at, opened_by = EXCLUDED.opened_by, \
                     closed_by = EXCLUDED.closed_by \
                 WHERE (incidents.cause, incidents.confirmed_at, incidents.resolved_at, \
                        incidents.opened_by, incidents.closed_by) \
                       IS DISTINCT FROM (EXCLUDED.cause, EXCLUDED.confirmed_at, \
                        EXCLUDED.resolved_at, EXCLUDED.opened_by, EXCLUDED.closed_by)",
                vec![
                    keep_targets,
                    texts(
                        incidents
                            .iter()
                            .map(|(_, i)| i.cause.clone().unwrap_or_default()),
                    ),
                    keep_opened,
                    texts(incidents.iter().map(|(_, i)| i.confirmed_at.to_rfc3339())),
                    texts(incidents.iter().map(|(_, i)| time_text(i.resolved_at))),
                    bigints(incidents.iter().map(|(_, i)| i.opened_by)),
                    bigints(
                        incidents
                            .iter()
                            .map(|(_, i)| i.closed_by.unwrap_or_default()),
                    ),
                ],
            ))
            .await?
            .rows_affected();
        report.written += written;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(window: Window) -> StoredWindow {
        StoredWindow {
            id: 1,
            name: "w".into(),
            window,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn coverage_holds_every_occurrence_of_a_frequent_window_over_a_long_period() {
        // Every 15 minutes for 5 minutes, over a year: 35,040 occurrences, more than one call
        // of `Window::occurrences` returns.
        let window = Window::new(
            Schedule::recurring("*/15 * * * *", "UTC", chrono::TimeDelta::minutes(5)).unwrap(),
            Scope::All,
        )
        .unwrap();
        let from: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let until: DateTime<Utc> = "2027-01-01T00:00:00Z".parse().unwrap();
        let coverage = Coverage::new(&[stored(window)], from, until);
        let late: DateTime<Utc> = "2026-12-31T23:47:00Z".parse().unwrap();
        assert!(coverage.covers(1, &[], late));
        assert!(!coverage.covers(1, &[], late + chrono::TimeDelta::minutes(5)));
        assert!(coverage.covers(1, &[], from));
        let intervals = coverage.intervals(1, &[]);
        // [from, until], so the one opening at `until` too.
        assert_eq!(intervals.len(), 365 * 24 * 4 + 1);
        assert_eq!(
            intervals.last().unwrap().0,
            "2027-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn coverage_of_a_window_longer_than_its_step_ends_and_misses_nothing() {
        // Opens every minute for a week: 10,080 occurrences are open at any time.
        let window = Window::new(
            Schedule::recurring("* * * * *", "UTC", chrono::TimeDelta::minutes(10_080)).unwrap(),
            Scope::All,
        )
        .unwrap();
        let from: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
        let until: DateTime<Utc> = "2026-06-03T00:00:00Z".parse().unwrap();
        let coverage = Coverage::new(&[stored(window)], from, until);
        let intervals = coverage.intervals(1, &[]);
        assert_eq!(intervals.len(), 1, "{intervals:?}");
        assert!(intervals[0].0 <= from - chrono::TimeDelta::days(6));
        assert_eq!(intervals[0].1, until + chrono::TimeDelta::days(7));
        for at in [from, until - chrono::TimeDelta::minutes(1), until] {
            assert!(coverage.covers(1, &[], at), "{at}");
        }
        // One per minute opening in (from - 1 week, until]: none missed, none twice.
        let (_, occurrences) = &coverage.windows[0];
        assert_eq!(occurrences.len(), 10_080 + 2 * 1440);
        assert!(
            occurrences
                .windows(2)
                .all(|w| w[1].0 - w[0].0 == chrono::TimeDelta::minutes(1))
        );
    }

    #[test]
    fn coverage_follows_the_scope() {
        let window = Window::new(
            Schedule::once(
                "2026-06-01T10:00:00Z".parse().unwrap(),
                "2026-06-01T11:00:00Z".parse().unwrap(),
            )
            .unwrap(),
            Scope::tags(&["env:prod"]).unwrap(),
        )
        .unwrap();
        let at: DateTime<Utc> = "2026-06-01T10:30:00Z".parse().unwrap();
        let coverage = Coverage::new(&[stored(window)], at, at);
        assert!(coverage.covers(1, &["env:prod".to_owned()], at));
        assert!(!coverage.covers(1, &["env:dev".to_owned()], at));
        assert!(!coverage.covers(
            1,
            &["env:prod".to_owned()],
            at + chrono::TimeDelta::hours(1)
        ));
    }
}
